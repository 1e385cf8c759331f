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
    cfg = write_config(folder, csv)
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
    expected = {"forecast_monthly.csv", "forecast_annual.csv", "backtest_metrics.csv", "backtest_forecasts.csv",
                "champions.csv", "model_fits.csv", "institutional_comparison.csv", "institutional_summary.csv",
                "institutional_outlook.csv", "run.json"}
    assert expected <= {p.name for p in out.iterdir()}
    assert not list(out.glob(".staging-*"))
    monthly = pd.read_csv(out / "forecast_monthly.csv", parse_dates=["ds"])
    # every series x model x month of 2025 (history ends 2024-12)
    assert len(monthly) == len(SERIES) * 3 * 12
    assert set(monthly["model"]) == {"seasonal_naive", "naive", "ets"}
    assert monthly["ds"].min() == pd.Timestamp("2025-01-01") and monthly["ds"].max() == pd.Timestamp("2025-12-01")
    champions = pd.read_csv(out / "champions.csv")
    flagged = monthly.loc[monthly["is_champion"]].groupby("unique_id")["model"].unique()
    assert {uid: list(models) for uid, models in flagged.items()} == {
        uid: [c] for uid, c in zip(champions["unique_id"], champions["champion"])}
    annual = pd.read_csv(out / "forecast_annual.csv")
    champ = annual.loc[annual["is_champion"]].set_index("unique_id")
    # the annual champion figure is the sum of its 12 published monthly forecasts (no observed month in 2025)
    sums = monthly.loc[monthly["is_champion"]].groupby("unique_id")["forecast"].sum()
    np.testing.assert_allclose(champ.loc[sums.index, "forecast"], sums, rtol=1e-9)
    run = json.loads((out / "run.json").read_text())
    assert run["data_hash"] == result.data_hash and run["mlflow_run_id"] == result.mlflow_run_id
    assert run["prefect_flow_run_id"] == result.flow_run_id and result.flow_run_id
    assert set(run["stage_seconds"]) >= {"ingest", "validate", "backtest", "forecast", "champions", "mlflow"}
    assert run["config"]["data"]["source"] == "csv" and run["institutional_compared"] is False
    assert result.n_series == 3 and sum(result.champion_counts.values()) == 3


def test_mlflow_parent_and_children(first_run) -> None:
    _, settings, result = first_run
    client = _client(settings)
    parent = client.get_run(result.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["data_hash"] == result.data_hash
    assert parent.data.tags["code_version"] == result.code_version
    assert parent.data.tags["prefect_flow_run_id"] == result.flow_run_id
    assert parent.data.params["backtest.horizon"] == "6" and parent.data.params["target_year"] == "2025"
    assert parent.data.metrics["total_2025_usd_bn"] == pytest.approx(result.total_forecast["forecast"] / 1e9)
    children = client.search_runs([parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'")
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
    assert again.cached["backtest"] and again.cached["forecast"]
    assert again.stage_seconds["backtest"] < result.stage_seconds["backtest"]
    assert again.total_forecast == result.total_forecast


def test_failed_run_publishes_nothing_and_marks_mlflow_failed(first_run, monkeypatch: pytest.MonkeyPatch) -> None:
    import flows.pipeline as pipeline

    _, settings, _ = first_run
    out = settings.publish.dir
    before = {p.name: p.read_bytes() for p in sorted(out.iterdir())}

    def broken_report(staging, data_dir):  # fails after every table is staged
        assert (staging / "forecast_monthly.csv").is_file() and (staging / "run.json").is_file()
        raise RuntimeError("simulated report failure")

    monkeypatch.setattr(pipeline, "_write_report", broken_report)
    with pytest.raises(RuntimeError, match="simulated report failure"):
        pipeline.run_pipeline(settings)
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir())} == before
    client = _client(settings)
    experiment = client.get_experiment_by_name(settings.mlflow.experiment)
    latest = client.search_runs([experiment.experiment_id], filter_string="tags.code_version != ''",
                                order_by=["attributes.start_time DESC"], max_results=1)[0]
    assert latest.info.status == "FAILED"
    assert latest.data.tags["error"] == "RuntimeError: simulated report failure"
