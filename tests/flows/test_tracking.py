from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.tracking import ForecasterSet, mean_metrics
from models.core import registry


def _series() -> pd.Series:
    idx = pd.date_range("2022-01-01", periods=24, freq="MS", name="ds")
    return pd.Series(np.arange(1.0, 25.0), index=idx)


def test_mean_metrics_same_keys_and_hand_computed_means() -> None:
    metrics = pd.DataFrame(
        {
            "unique_id": ["a", "a", "b"],
            "mase": [1.0, 2.0, np.nan],
            "smape": [10.0, 20.0, 30.0],
            "rmsse": [0.5, 0.5, 0.5],
            "coverage_80": [1.0, 0.5, 0.0],
            "coverage_95": [np.inf, 1.0, 1.0],
        }
    )
    got = mean_metrics(metrics)
    assert list(got) == ["mase", "smape", "rmsse", "coverage_80", "coverage_95"]
    assert got == {"mase": 1.5, "smape": 20.0, "rmsse": 0.5, "coverage_80": 0.5, "coverage_95": 1.0}
    empty = mean_metrics(pd.DataFrame(columns=["unique_id", "mase"]))
    assert list(empty) == list(got) and all(np.isnan(v) for v in empty.values())


def test_forecaster_set_predicts_by_horizon_and_until() -> None:
    model = registry.create("naive").fit(_series())
    fset = ForecasterSet({"total": model}, {"total": "naive"})
    by_h = fset.predict(None, pd.DataFrame({"unique_id": ["total"], "horizon": [3]}))
    assert list(by_h.columns) == ["unique_id", "ds", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert list(by_h["ds"]) == list(pd.date_range("2024-01-01", periods=3, freq="MS"))
    assert list(by_h["forecast"]) == [24.0, 24.0, 24.0]  # naive: the last value
    by_until = fset.predict(None, pd.DataFrame({"unique_id": ["total"], "until": ["2024-03"]}))
    pd.testing.assert_frame_equal(by_h, by_until)
    direct = model.predict(3).reset_index(drop=True)
    np.testing.assert_array_equal(by_h["hi_95"].to_numpy(), direct["hi_95"].to_numpy())


def test_forecaster_set_gives_each_series_its_own_regressor_columns() -> None:
    """A leading model (ARIMAX on 'lead:x') gets the shared exog joined with ITS series' columns;
    the other series' model gets no such column: each forecasts as it did in the pipeline."""
    rng = np.random.default_rng(3)
    idx = pd.date_range("2020-01-01", periods=48, freq="MS", name="ds")
    future = pd.date_range("2024-01-01", periods=3, freq="MS", name="ds")
    x = pd.Series(100 + np.cumsum(rng.normal(0, 1, 51)), index=idx.append(future))
    y = pd.Series(2.0 * x[idx].to_numpy() * np.exp(rng.normal(0, 0.01, 48)), index=idx)
    X = pd.DataFrame({"lead:x": x})
    leading = registry.create("arimax", {"regressor": "lead:x", "n_draws": 100}).fit(y, X.loc[idx])
    naive = registry.create("naive").fit(_series())
    fset = ForecasterSet(
        {"total": leading, "other": naive}, {"total": "arimax", "other": "naive"}, series_exog={"total": X.loc[future]}
    )
    out = fset.predict(None, pd.DataFrame({"unique_id": ["total", "other"], "horizon": [3, 2]}))
    expected = leading.predict(3, X.loc[future]).reset_index(drop=True)
    np.testing.assert_allclose(
        out.loc[out["unique_id"] == "total", "forecast"].to_numpy(), expected["forecast"].to_numpy()
    )
    assert out.loc[out["unique_id"] == "other", "forecast"].tolist() == [24.0, 24.0]


def test_forecaster_set_bad_input_messages() -> None:
    fset = ForecasterSet({"total": registry.create("naive").fit(_series())}, {"total": "naive"})
    with pytest.raises(KeyError, match="row 0: no fitted model for series 'item:ships'; known: total"):
        fset.predict(None, pd.DataFrame({"unique_id": ["item:ships"], "horizon": [1]}))
    with pytest.raises(ValueError, match=r"needs a 'horizon' or an 'until' column; got \['unique_id'\]"):
        fset.predict(None, pd.DataFrame({"unique_id": ["total"]}))
    with pytest.raises(ValueError, match="row 0: until 2023-12 is not after the last observed month 2023-12"):
        fset.predict(None, pd.DataFrame({"unique_id": ["total"], "until": ["2023-12"]}))
    with pytest.raises(ValueError, match="row 0: horizon must be a positive whole number of months; got 0"):
        fset.predict(None, pd.DataFrame({"unique_id": ["total"], "horizon": [0]}))
    with pytest.raises(ValueError, match=r"model_names lacks the model name of series \['x'\]"):
        ForecasterSet({"x": object()}, {})


def test_parent_run_gets_tables_as_artifacts_and_headline_metrics(tmp_path) -> None:
    import mlflow

    from flows.settings import MlflowSettings
    from flows.tracking import PipelineTracker

    settings = MlflowSettings(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        artifact_location=str(tmp_path / "artifacts"),
        experiment="t",
        registered_model="t-model",
    )
    table = pd.DataFrame({"target_year": [2024], "institution": ["KITA"], "institution_ape": [1.5]})
    with PipelineTracker(settings, run_name="r", tags={"k": "v"}, params={"p": 1}) as tracker:
        tracker.log_tables({"institutional_comparison.csv": table}, "institutional")
        tracker.log_headline({"model_mape_vs_kita": 7.5, "skipped": float("nan")})
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    run = client.get_run(tracker.run_id)
    assert run.data.metrics == {"model_mape_vs_kita": 7.5}
    assert [a.path for a in client.list_artifacts(tracker.run_id, "institutional")] == [
        "institutional/institutional_comparison.csv"
    ]
    local = client.download_artifacts(tracker.run_id, "institutional/institutional_comparison.csv", str(tmp_path))
    pd.testing.assert_frame_equal(pd.read_csv(local), table)


# ------------------------------------------------------------------ runs left RUNNING by a dead process
def _store(tmp_path):
    from flows.settings import MlflowSettings

    return MlflowSettings(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        artifact_location=str(tmp_path / "artifacts"),
        experiment="t",
        registered_model="t-model",
    )


def _dead_process_tags() -> dict[str, str]:
    """The tags a run would carry for a process that has since died."""
    import subprocess
    import sys

    from flows.tracking import process_tags

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        tags = process_tags(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return tags


def test_reaper_fails_runs_of_dead_processes_and_their_children_only(tmp_path) -> None:
    import socket

    from mlflow import MlflowClient

    from flows.tracking import (
        HOST_TAG,
        NOTE_TAG,
        PID_TAG,
        REAPED_TAG,
        START_TAG,
        configure,
        process_tags,
        reap_stale_runs,
    )

    settings = _store(tmp_path)
    exp = configure(settings)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    dead = _dead_process_tags()
    alive = process_tags()
    reused = {**alive, START_TAG: f"{float(alive[START_TAG]) - 3600:.3f}"}  # same pid, another process
    elsewhere = {**dead, HOST_TAG: socket.gethostname() + "-other"}
    runs = {
        name: client.create_run(exp, run_name=name, tags={**tags, "prefect_flow_run_id": f"fr-{name}"}).info.run_id
        for name, tags in [
            ("dead", dead),
            ("alive", alive),
            ("reused", reused),
            ("elsewhere", elsewhere),
            ("untagged", {}),
        ]
    }
    kid = client.create_run(exp, run_name="ets", tags={"mlflow.parentRunId": runs["dead"]}).info.run_id
    finished_kid = client.create_run(exp, run_name="naive", tags={"mlflow.parentRunId": runs["dead"]}).info.run_id
    client.set_terminated(finished_kid, "FINISHED")

    stale = reap_stale_runs(client, exp, by="run-X")

    status = {name: client.get_run(rid).info.status for name, rid in runs.items()}
    assert status == {
        "dead": "FAILED",
        "alive": "RUNNING",
        "reused": "FAILED",
        "elsewhere": "RUNNING",
        "untagged": "RUNNING",
    }
    assert client.get_run(kid).info.status == "FAILED"
    assert client.get_run(finished_kid).info.status == "FINISHED"
    by_id = {s.run_id: s for s in stale}
    assert set(by_id) == {runs["dead"], runs["reused"]}
    assert by_id[runs["dead"]].child_run_ids == (kid,)
    assert by_id[runs["dead"]].prefect_flow_run_id == "fr-dead"
    parent_tags = client.get_run(runs["dead"]).data.tags
    note = parent_tags[NOTE_TAG]
    assert note.startswith(
        f"left RUNNING by process {dead[PID_TAG]} on {socket.gethostname()}, dead; marked FAILED by run run-X at "
    )
    assert note == by_id[runs["dead"]].note and parent_tags[REAPED_TAG] == "run-X"
    assert client.get_run(kid).data.tags[NOTE_TAG] == f"parent run {runs['dead']} {note}"
    assert client.get_run(runs["dead"]).info.end_time is not None


def test_tracker_records_its_process_and_reaps_on_enter(tmp_path, monkeypatch) -> None:
    import os
    import socket

    import psutil
    from mlflow import MlflowClient

    import flows.prefect_runs
    from flows.tracking import HOST_TAG, PID_TAG, START_TAG, PipelineTracker, configure

    settings = _store(tmp_path)
    exp = configure(settings)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    stale = client.create_run(
        exp, run_name="old", tags={**_dead_process_tags(), "prefect_flow_run_id": "fr-1"}
    ).info.run_id
    crashed: list[dict[str, str]] = []
    monkeypatch.setattr(flows.prefect_runs, "crash_flow_runs", lambda notes: crashed.append(dict(notes)) or list(notes))
    with PipelineTracker(settings, run_name="r", tags={}, params={}) as tracker:
        tags = client.get_run(tracker.run_id).data.tags
        assert client.get_run(tracker.run_id).info.status == "RUNNING"
    assert tags[PID_TAG] == str(os.getpid()) and tags[HOST_TAG] == socket.gethostname()
    assert float(tags[START_TAG]) == pytest.approx(psutil.Process().create_time(), abs=0.001)
    assert client.get_run(stale).info.status == "FAILED"
    assert [s.run_id for s in tracker.stale_runs] == [stale]
    assert crashed == [{"fr-1": tracker.stale_runs[0].note}]
    assert f"marked FAILED by run {tracker.run_id}" in crashed[0]["fr-1"]


def test_experiment_opens_on_runs_and_run_logs_its_dataset(tmp_path) -> None:
    from mlflow import MlflowClient

    from flows.pipeline import data_hash
    from flows.settings import DataSettings
    from flows.tracking import PipelineTracker

    settings = _store(tmp_path)
    frame = pd.DataFrame(
        {
            "unique_id": ["a"] * 3 + ["b"] * 2,
            "ds": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-02-01", "2024-04-01"]),
            "y": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    csv = tmp_path / "my exports.csv"
    digest = data_hash(frame)
    with PipelineTracker(settings, run_name="r", tags={}, params={}) as tracker:
        tracker.log_dataset(frame, digest, DataSettings(source="csv", path=csv))
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    assert client.get_experiment(tracker.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    inputs = client.get_run(tracker.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset, tags = inputs[0].dataset, {t.key: t.value for t in inputs[0].tags}
    assert dataset.name == "my exports.csv" and dataset.digest == digest[:36] and len(digest) == 64
    assert str(csv.resolve()) in dataset.source
    assert tags == {
        "mlflow.data.context": "training",
        "data_hash": digest,
        "source": "csv",
        "rows": "5",
        "series": "2",
        "months": "4",
        "first_month": "2024-01",
        "last_month": "2024-04",
    }


def test_a_stopped_pipeline_process_fails_its_own_runs_only(tmp_path) -> None:
    from mlflow import MlflowClient

    from flows.tracking import NOTE_TAG, configure, fail_runs_of_this_process, process_tags

    settings = _store(tmp_path)
    exp = configure(settings)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    mine = client.create_run(exp, run_name="mine", tags=process_tags()).info.run_id
    kid = client.create_run(exp, run_name="ets", tags={"mlflow.parentRunId": mine}).info.run_id
    other = client.create_run(exp, run_name="other", tags=_dead_process_tags()).info.run_id

    assert sorted(fail_runs_of_this_process(settings, "stopped: interrupted by SIGTERM")) == sorted([mine, kid])
    assert [client.get_run(r).info.status for r in (mine, kid, other)] == ["FAILED", "FAILED", "RUNNING"]
    assert client.get_run(mine).data.tags[NOTE_TAG] == "stopped: interrupted by SIGTERM"


class _Stop(KeyboardInterrupt):
    """Stands in for the interruption a signal raises (Prefect's TerminationSignal, Interrupted)."""


def _interrupted_while_holding_the_write_lock(db) -> None:
    import sqlite3

    connection = sqlite3.connect(db)  # like an MLflow write cut short: its connection lives in this frame
    connection.execute("BEGIN IMMEDIATE")  # the sqlite write lock
    raise _Stop()


def test_a_run_interrupted_inside_a_write_is_marked_failed_at_once(tmp_path) -> None:
    # the interrupted write's connection, kept alive by the traceback, held the write lock: marking
    # the run FAILED waited MLflow's 20 s busy timeout, failed, and its error replaced the stop
    from mlflow import MlflowClient

    from flows.tracking import PipelineTracker

    settings = _store(tmp_path)
    with pytest.raises(_Stop):
        with PipelineTracker(settings, run_name="r", tags={}, params={}) as tracker:
            _interrupted_while_holding_the_write_lock(tmp_path / "mlflow.db")
    run = MlflowClient(tracking_uri=settings.tracking_uri).get_run(tracker.run_id)
    # before: the marking waited out the busy timeout, failed, and the run stayed RUNNING
    assert (run.info.status, run.data.tags["error"]) == ("FAILED", "_Stop: ")


def test_a_failure_to_mark_the_run_failed_does_not_hide_the_error(tmp_path, monkeypatch, capsys) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    from flows.tracking import PipelineTracker

    settings = _store(tmp_path)

    def locked(self, status, error):
        raise MlflowException("(sqlite3.OperationalError) database is locked")

    with pytest.raises(ValueError, match="^row 3 column y is not a number$"):
        with PipelineTracker(settings, run_name="r", tags={}, params={}) as tracker:
            monkeypatch.setattr(PipelineTracker, "_end_runs", locked)
            raise ValueError("row 3 column y is not a number")
    assert capsys.readouterr().err.endswith(
        f"\nexportcast: could not mark MLflow run {tracker.run_id} FAILED "
        "((sqlite3.OperationalError) database is locked)\n"
    )
    monkeypatch.undo()
    mlflow.end_run()  # the run this test left active in the process
