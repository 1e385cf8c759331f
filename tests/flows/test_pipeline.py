"""End-to-end flow on the tiny synthetic dataset (3 series x 60 months, 3 fast models):
outputs, MLflow runs and registry, the champion pyfunc, failure handling, caching, secrets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.flows.conftest import SERIES, synthetic_frame, write_config

pytestmark = pytest.mark.slow
SECRET = "KCS-TEST-SECRET-7f3a9c21e4"
METRIC_KEYS = {"mase", "smape", "rmsse", "coverage_80", "coverage_95"}


@pytest.fixture(scope="module")
def first_run(prefect_harness, tmp_path_factory: pytest.TempPathFactory):
    from flows.pipeline import run_pipeline
    from flows.settings import load_settings

    folder = tmp_path_factory.mktemp("pipeline")
    csv = folder / "exports.csv"
    frame = synthetic_frame()
    frame.assign(ds=frame["ds"].dt.strftime("%Y-%m")).to_csv(csv, index=False, float_format="%.2f")
    # this run's source (csv) is made the production source: it registers a version and takes the alias
    cfg = write_config(folder, csv, **{"mlflow.production_source": "csv"})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KCS_SERVICE_KEY", SECRET)
        settings = load_settings(cfg)
        result = run_pipeline(settings)
    return folder, settings, result


def _client(settings):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow.tracking_uri, registry_uri=settings.mlflow.tracking_uri)


def test_outputs_are_published(first_run) -> None:
    folder, settings, result = first_run
    out = settings.publish.dir
    expected = {
        "forecast_monthly.csv",
        "forecast_annual.csv",
        "backtest_metrics.csv",
        "backtest_forecasts.csv",
        "champions.csv",
        "model_fits.csv",
        "institutional_comparison.csv",
        "institutional_summary.csv",
        "institutional_outlook.csv",
        "run.json",
    }
    assert expected <= {p.name for p in out.iterdir()}
    assert not list(out.glob(".staging-*"))
    monthly = pd.read_csv(out / "forecast_monthly.csv", parse_dates=["ds"])
    # every series x model x month of 2025 (history ends 2024-12); 3 models + the 3 combinations
    assert len(monthly) == len(SERIES) * 6 * 12
    assert set(monthly["model"]) == {"seasonal_naive", "naive", "ets", "combo_mean", "combo_trimmed", "combo_inv_mase"}
    assert monthly["ds"].min() == pd.Timestamp("2025-01-01") and monthly["ds"].max() == pd.Timestamp("2025-12-01")
    champions = pd.read_csv(out / "champions.csv")
    flagged = monthly.loc[monthly["is_champion"]].groupby("unique_id")["model"].unique()
    assert {uid: list(models) for uid, models in flagged.items()} == {
        uid: [c] for uid, c in zip(champions["unique_id"], champions["champion"])
    }
    annual = pd.read_csv(out / "forecast_annual.csv")
    champ = annual.loc[annual["is_champion"]].set_index("unique_id")
    # the annual champion figure is the sum of its 12 published monthly forecasts (no observed month in 2025)
    sums = monthly.loc[monthly["is_champion"]].groupby("unique_id")["forecast"].sum()
    np.testing.assert_allclose(champ.loc[sums.index, "forecast"], sums, rtol=1e-9)
    run = json.loads((out / "run.json").read_text())
    assert run == result.run.to_json()
    assert (
        run["mlflow_run_id"]
        and run["prefect_flow_run_id"]
        and run["git_head"]
        and run["started_at"] <= run["finished_at"]
    )
    assert set(run["stage_seconds"]) == {"ingest", "validate", "backtest", "forecast", "mlflow", "publish"}
    assert run["config"]["data"]["source"] == "csv" and run["institutional_compared"] is False
    assert run["data"]["n_series"] == 3 and sum(run["champion_counts"].values()) == 3
    assert run["champion_counts"] == dict(champions["champion"].value_counts().sort_index())
    # the registry record says where the alias points after this run: the version it registered
    version = _client(settings).get_model_version_by_alias(settings.mlflow.registered_model, "champion").version
    assert run["champion_model"] == {
        "name": settings.mlflow.registered_model,
        "alias": "champion",
        "version": str(version),
        "promoted": True,
        "reason": "published run on the production source csv",
    }


def test_mlflow_parent_and_children(first_run) -> None:
    _, settings, result = first_run
    client = _client(settings)
    parent = client.get_run(result.run.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    run = result.run
    assert parent.data.tags["data_hash"] == run.data_hash
    assert parent.data.tags["code_version"] == run.code_version
    assert parent.data.tags["prefect_flow_run_id"] == run.prefect_flow_run_id
    assert parent.data.params["backtest.horizon"] == "6" and parent.data.params["target_year"] == "2025"
    assert parent.data.metrics["total_2025_usd_bn"] == pytest.approx(run.total_forecast["forecast"] / 1e9)
    # timings live in run.json and MLflow, not in the CSVs
    for stage, seconds in run.stage_seconds.items():
        assert parent.data.metrics[f"seconds_{stage}"] == pytest.approx(seconds)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run.mlflow_run_id}'"
    )
    by_name = {r.info.run_name: r for r in children}
    assert set(by_name) == {"seasonal_naive", "naive", "ets", "champion"}
    for run in by_name.values():
        assert METRIC_KEYS <= set(run.data.metrics), run.info.run_name
    assert by_name["ets"].data.params["damped_trend"] == "True"
    # the child metric is the mean over series and windows of the published backtest metrics
    metrics = pd.read_csv(settings.publish.dir / "backtest_metrics.csv")
    assert by_name["ets"].data.metrics["mase"] == pytest.approx(metrics.loc[metrics["model"] == "ets", "mase"].mean())
    artifacts = {a.path for a in client.list_artifacts(by_name["ets"].info.run_id, "tables")}
    assert {"tables/ets_fits.csv", "tables/ets_metrics_per_series.csv"} <= artifacts


def test_champion_pyfunc_reproduces_the_published_forecast(first_run) -> None:
    import mlflow

    _, settings, _ = first_run
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    mlflow.set_registry_uri(settings.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{settings.mlflow.registered_model}@champion")
    got = model.predict(pd.DataFrame({"unique_id": list(SERIES), "until": ["2025-12"] * 3}))
    monthly = pd.read_csv(settings.publish.dir / "forecast_monthly.csv", parse_dates=["ds"])
    want = monthly.loc[monthly["is_champion"]].drop(columns="is_champion")
    key = ["unique_id", "ds"]
    merged = want.merge(got, on=key, suffixes=("_pub", "_model"), validate="one_to_one")
    assert len(merged) == 36
    assert (merged["model_pub"] == merged["model_model"]).all()
    for col in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95"):
        # the CSV holds 6 decimals of ~1e10 USD: compare relatively (1e-9 is 1000x tighter than 1e-6)
        np.testing.assert_allclose(merged[f"{col}_model"], merged[f"{col}_pub"], rtol=1e-9, atol=0)


def test_secret_never_reaches_mlflow(first_run) -> None:
    folder, settings, _ = first_run
    needle = SECRET.encode()
    scanned = 0
    for path in (folder / "mlruns").rglob("*"):
        if path.is_file():
            scanned += 1
            assert needle not in path.read_bytes(), path
    assert scanned > 5  # the db and the artifacts were scanned


def test_unchanged_rerun_is_cached(first_run) -> None:
    from flows.pipeline import run_pipeline

    _, settings, result = first_run
    again = run_pipeline(settings)
    assert again.run.cached["backtest"] and again.run.cached["forecast"]
    assert again.run.stage_seconds["backtest"] < result.run.stage_seconds["backtest"]
    assert again.run.total_forecast == result.run.total_forecast


def _registry_state(settings) -> tuple[str, int]:
    """(version the champion alias points to, number of registered versions)."""
    client = _client(settings)
    name = settings.mlflow.registered_model
    return (
        str(client.get_model_version_by_alias(name, "champion").version),
        len(client.search_model_versions(f"name='{name}'")),
    )


def test_failed_run_publishes_nothing_and_marks_mlflow_failed(first_run, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.pipeline as pipeline

    _, settings, _ = first_run
    out = settings.publish.dir
    before = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    registry = _registry_state(settings)

    def broken_report(results, staging, data_dir, n_jobs):  # fails after every table is staged
        assert (staging / "forecast_monthly.csv").is_file() and not (staging / "run.json").exists()
        raise RuntimeError("simulated report failure")

    monkeypatch.setattr(pipeline, "_write_report", broken_report)
    with pytest.raises(RuntimeError, match="simulated report failure"):
        pipeline.run_pipeline(settings)
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir())} == before
    # a run whose publishing failed registers nothing and leaves the alias where run.json says it is
    assert _registry_state(settings) == registry
    assert json.loads(before["run.json"])["champion_model"]["version"] == registry[0]
    client = _client(settings)
    experiment = client.get_experiment_by_name(settings.mlflow.experiment)
    latest = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.code_version != ''",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert latest.info.status == "FAILED"
    assert latest.data.tags["error"] == "RuntimeError: simulated report failure"


def test_failure_just_before_publishing_leaves_the_registry(first_run) -> None:
    from prefect import flow

    from flows.pipeline import execute

    _, settings, _ = first_run
    registry = _registry_state(settings)

    def refuse(results):  # the results are assembled and logged; publishing is next
        assert results.champion_of and results.run.total_forecast
        raise RuntimeError("simulated failure before publishing")

    @flow(name="monthly-forecast-before-publish-failure")
    def failing() -> None:
        execute(settings, before_publish=refuse)

    with pytest.raises(RuntimeError, match="simulated failure before publishing"):
        failing()
    assert _registry_state(settings) == registry


# ---------------------------------------------------------------------- a user's CSV
USER_SERIES = ("north", "south", "west")


@pytest.fixture(scope="module")
def user_runs(first_run, tmp_path_factory: pytest.TempPathFactory):
    """Two runs on a user CSV with ids of its own (not the embedded naming), ARIMA enabled (it
    times its fits), in the MLflow store of ``first_run`` whose version holds the alias; the
    production source is the default (embedded). The second run refits (cache refreshed)."""
    from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

    from flows.pipeline import run_pipeline
    from flows.settings import load_settings

    _, first_settings, _ = first_run
    folder = tmp_path_factory.mktemp("user")
    csv = folder / "my_exports.csv"
    frame = synthetic_frame(seed=11)
    frame["unique_id"] = frame["unique_id"].map(dict(zip(SERIES, USER_SERIES)))
    frame.assign(ds=frame["ds"].dt.strftime("%Y-%m")).to_csv(csv, index=False, float_format="%.2f")
    m = first_settings.mlflow
    cfg = write_config(
        folder,
        csv,
        **{
            "models.enabled": ["seasonal_naive", "naive", "arima"],
            "mlflow.tracking_uri": m.tracking_uri,
            "mlflow.artifact_location": m.artifact_location,
            "mlflow.registered_model": m.registered_model,
            "mlflow.experiment": m.experiment,
        },
    )
    settings = load_settings(cfg)
    registry_before = _registry_state(settings)
    out = settings.publish.dir
    first = run_pipeline(settings)
    first_bytes = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}):
        second = run_pipeline(settings)
    second_bytes = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    return settings, registry_before, (first, first_bytes), (second, second_bytes)


def test_user_csv_run_does_not_take_the_alias(user_runs) -> None:
    settings, registry_before, (first, _), (second, _) = user_runs
    assert _registry_state(settings) == registry_before
    for result in (first, second):
        assert result.run.champion_model == {
            "name": settings.mlflow.registered_model,
            "alias": "champion",
            "version": registry_before[0],
            "promoted": False,
            "reason": "data source csv is not the production source embedded (mlflow.production_source)",
        }
    run = json.loads((settings.publish.dir / "run.json").read_text())
    assert run["champion_model"]["version"] == registry_before[0] and run["champion_model"]["promoted"] is False


def test_reruns_publish_byte_identical_csvs_and_keep_timings_in_run_json(user_runs) -> None:
    settings, _, (first, first_bytes), (second, second_bytes) = user_runs
    assert not second.run.cached["backtest"] and not second.run.cached["forecast"]  # really refitted
    csvs = sorted(name for name in first_bytes if name.endswith(".csv"))
    # nowcast.csv and tracking.csv header-only: they need the embedded source; changes.csv header-only and
    # forecast_archive.csv the (empty) archive: a user-CSV run is not a production run
    assert len(csvs) == 13
    assert [name for name in csvs if first_bytes[name] != second_bytes[name]] == []
    fits = pd.read_csv(settings.publish.dir / "model_fits.csv")
    assert (fits["model"] == "arima").sum() == 3 and not fits["description"].str.contains("fit_seconds").any()
    assert fits.loc[fits["model"] == "arima", "description"].str.contains('"spec": "ARIMA').all()
    # timed by the engine for every requested model (not read back from ARIMA's description)
    assert set(second.run.fit_seconds) == {"seasonal_naive", "naive", "arima"} and second.run.fit_seconds["arima"] > 0
    parent = _client(settings).get_run(second.run.mlflow_run_id)
    assert parent.data.metrics["fit_seconds_arima"] == pytest.approx(second.run.fit_seconds["arima"])


def _section(text: str, name: str) -> str:
    return text.split(f'<section id="{name}">')[1].split("</section>")[0]


def test_report_on_a_user_csv_describes_the_users_data(user_runs, tmp_path) -> None:
    import re

    from flows.report import write_report

    settings, *_ = user_runs
    out = settings.publish.dir
    champions = dict(pd.read_csv(out / "champions.csv")[["unique_id", "champion"]].values)
    assert set(champions) == set(USER_SERIES)
    rebuilt = write_report(out, out_path=tmp_path / "rebuilt.html").read_text(encoding="utf-8")
    for text in ((out / "report.html").read_text(encoding="utf-8"), rebuilt):
        headline = _section(text, "headline")
        assert "no champion forecast" not in headline
        rows = dict(re.findall(r"<tr><td>(north|south|west)</td><td>([^<]*)</td>", headline))
        assert rows == champions
        # one fan chart per user series, each with its 60 months of history and 12 forecast months
        alts = re.findall(r'alt="([^"]*)"', _section(text, "fans"))
        assert sorted(alts) == sorted(
            f"{uid}: 60 months of history and 12 forecast months ({champions[uid]}) with 80% and 95% bands"
            for uid in USER_SERIES
        )
        data = _section(text, "data")
        fresh = re.findall(
            r"<tr><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td class=num>(\d+)</td>"
            r"<td class=num>(\d+)</td><td>([^<]*)</td></tr>",
            data,
        )
        assert fresh == [(uid, "2020-01", "2024-12", "60", "0", str(settings.data.path)) for uid in USER_SERIES]
        assert "Latest month in the data: <b>2024-12</b>" in data


def test_ingest_retries_only_when_the_customs_api_was_unreachable_or_down():
    from features.contract import DataValidationError
    from features.customs_api import CustomsAuthError, CustomsServiceDownError, CustomsUnreachableError
    from flows.pipeline import _retry_transport_errors

    class _State:
        def __init__(self, exc):
            self.exc = exc

        def result(self):
            if self.exc is not None:
                raise self.exc

    verdicts = {
        type(e).__name__: _retry_transport_errors(None, None, _State(e))
        for e in (
            CustomsUnreachableError("x"),
            CustomsServiceDownError("x"),
            CustomsAuthError("x"),
            DataValidationError("bad.csv", ["x"]),
            ValueError("x"),
        )
    }
    assert verdicts == {
        "CustomsUnreachableError": True,
        "CustomsServiceDownError": True,
        "CustomsAuthError": False,
        "DataValidationError": False,
        "ValueError": False,
    }
    assert _retry_transport_errors(None, None, _State(None)) is False
