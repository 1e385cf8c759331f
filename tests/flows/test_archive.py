"""flows/archive.py: the forecast archive (append-only), its scores, and changes.csv; then the monthly
cycle end to end on a real local mirror: seed vintage -> run -> update -> run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from flows import archive as ar

MONTHS = pd.to_datetime(["2025-11-01", "2025-12-01"])


def _published(values: dict[str, float], year_total: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    monthly = pd.DataFrame(
        {
            "unique_id": "total",
            "ds": list(values),
            "model": ["ets", "ets"],
            "forecast": list(values.values()),
            "is_champion": True,
        }
    )
    for c, f in (("lo_80", 0.9), ("hi_80", 1.1), ("lo_95", 0.8), ("hi_95", 1.2)):
        monthly[c] = monthly["forecast"] * f
    monthly = pd.concat([monthly, monthly.assign(model="naive", is_champion=False)], ignore_index=True)
    annual = pd.DataFrame(
        {
            "unique_id": ["total"],
            "year": [2025],
            "model": ["ets"],
            "forecast": [year_total],
            "lo_80": [year_total * 0.95],
            "hi_80": [year_total * 1.05],
            "lo_95": [year_total * 0.9],
            "hi_95": [year_total * 1.1],
            "is_champion": [True],
        }
    )
    return monthly, annual


def test_archive_is_append_only_and_scored_as_actuals_arrive(tmp_path: Path) -> None:
    monthly, annual = _published(dict(zip(MONTHS, [100.0, 120.0])), 1300.0)
    rows = ar.archive_rows(monthly, annual, vintage="v0001", run_id="r1", published_at="2025-12-16T00:00:00+00:00")
    assert list(rows.columns) == list(ar.ARCHIVE_COLUMNS)
    assert rows[["kind", "ds", "model", "forecast"]].values.tolist() == [
        ["month", "2025-11-01", "ets", 100.0],
        ["month", "2025-12-01", "ets", 120.0],
        ["year", "2025", "ets", 1300.0],
    ]
    path = ar.append_archive(tmp_path, rows)
    with pytest.raises(ar.ArchiveError, match="is archived already"):
        ar.append_archive(tmp_path, rows)
    assert path.name == "20251216T000000-r1.parquet"
    history = pd.DataFrame(
        {"unique_id": "total", "ds": pd.date_range("2025-01-01", periods=11, freq="MS"), "y": [100.0] * 10 + [125.0]}
    )  # November 125 observed, December not yet
    scores = ar.score_archive(ar.read_archive(tmp_path), history)
    assert scores[["ds", "actual", "ape", "in_80", "in_95"]].values.tolist() == [
        ["2025-11-01", 125.0, 20.0, False, False]
    ]
    history = pd.concat(
        [history, pd.DataFrame({"unique_id": ["total"], "ds": [pd.Timestamp("2025-12-01")], "y": [120.0]})]
    )
    scores = ar.score_archive(ar.read_archive(tmp_path), history)  # December in: the month and the year are scored
    assert scores[["kind", "ds", "ape"]].values.tolist() == [
        ["month", "2025-11-01", 20.0],
        ["month", "2025-12-01", 0.0],
        ["year", "2025", pytest.approx(100 * 55 / 1245)],
    ]
    metrics = ar.archive_metrics(scores)
    assert metrics["archive_mape_month"] == 10.0 and metrics["archive_coverage_80_month"] == 0.5
    assert metrics["archive_n_year"] == 1.0 and metrics["archive_coverage_95_year"] == 1.0


def test_changes_list_new_and_revised_months_and_the_forecast(tmp_path: Path) -> None:
    old = pd.DataFrame(
        {
            "unique_id": "total",
            "ds": pd.date_range("2024-11-01", periods=13, freq="MS"),
            "y": np.arange(13, dtype=float) + 50e9,
        }
    )
    new = old.copy()
    new.loc[12, "y"] = 51e9  # 2025-11 revised
    new = pd.concat([new, pd.DataFrame({"unique_id": ["total"], "ds": [pd.Timestamp("2025-12-01")], "y": [66e9]})])
    prev = pd.DataFrame(
        {
            "vintage": "v0001",
            "run_id": "r1",
            "published_at": "t1",
            "unique_id": "total",
            "kind": "year",
            "ds": "2026",
            "model": "ets",
            "forecast": 700e9,
            "lo_80": 0.0,
            "hi_80": 0.0,
            "lo_95": 0.0,
            "hi_95": 0.0,
        },
        index=[0],
    )
    current = prev.assign(vintage="v0002", run_id="r2", forecast=720e9, model="mint")
    changes = ar.changes_table(old, new, prev, current, 2026)
    assert changes.values.tolist()[:2] == [
        ["total", "2025-12-01", "new", pytest.approx(np.nan, nan_ok=True), 66e9, ""],
        ["total", "2025-11-01", "revised", 50e9 + 12, 51e9, "+2.00%"],
    ]
    assert changes.values.tolist()[2] == ["total", "2026", "forecast", 700e9, 720e9, "ets -> mint"]
    assert ar.changes_sentence(changes, new, 2026, "v0001") == (
        "new this month: total 2025-12 66.0 bn, +32.0% y/y; 1 month revised; 2026 forecast 700.0 -> 720.0 bn"
    )
    assert (
        ar.changes_sentence(changes.iloc[0:0], new, 2026, None) == "first archived run: nothing earlier to compare with"
    )


# ----------------------------------------------------------------------------- the cycle end to end
@pytest.fixture
def light_in_year_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The nowcast backtest and the in-year tracking (about 4 minutes on the full embedded data, tested in
    their own modules) are replaced by header-only tables: this test is about the archive and changes."""
    from prefect import task

    import flows.pipeline as pipeline
    from models.applications.inyear import TRACKING_COLUMNS
    from models.applications.nowcast import NOWCAST_COLUMNS

    @task(name="nowcast")
    def no_nowcast(*args, **kwargs):
        return pd.DataFrame(columns=list(NOWCAST_COLUMNS))

    @task(name="tracking")
    def no_tracking(*args, **kwargs):
        return pd.DataFrame(columns=list(TRACKING_COLUMNS))

    monkeypatch.setattr(pipeline, "nowcast_step", no_nowcast)
    monkeypatch.setattr(pipeline, "tracking_step", no_tracking)


@pytest.mark.slow
def test_monthly_cycle_archives_two_vintages_and_lists_the_new_months(
    prefect_harness, light_in_year_stages, tmp_path: Path
) -> None:
    from upstream_mirror import Mirror, cut_raw, serve

    from flows.pipeline import run_pipeline
    from flows.settings import load_settings
    from flows.update import run_update

    raw = Path(__file__).resolve().parents[3] / "shared" / "data" / "raw"
    if not raw.is_dir():
        pytest.skip("needs ../shared/data/raw")
    mirror = Mirror(root=cut_raw(raw, tmp_path / "cut", "2025-11"))
    server = serve(mirror)
    config = {
        "target_year": 2026,
        "data": {"source": "embedded", "home": "home", "raw": str(raw), "upstream_base": mirror.base},
        "models": {"enabled": ["seasonal_naive", "naive"], "leading": {}, "n_paths": 50},
        "backtest": {"horizon": 3, "windows": 1, "step": 6, "combinations": False},
        "institutional": {"first_year": 2025, "selection_first_year": None},
        "publish": {"dir": "outputs"},
        "mlflow": {
            "tracking_uri": "sqlite:///mlruns/mlflow.db",
            "artifact_location": "mlruns/artifacts",
            "experiment": "exportcast-cycle",
            "registered_model": "exportcast-cycle-champion",
        },
        "runtime": {"n_jobs": 1},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = load_settings(tmp_path / "config.yaml")
    try:
        assert run_update(settings).vintage.id == "v0001"
        run_pipeline(settings)
        first_archive = (tmp_path / "outputs" / "forecast_archive.csv").read_bytes()
        mirror.root = raw
        assert run_update(settings).message.startswith(
            "new vintage v0002: data through 2025-12 (was 2025-11), 44 rows added"
        )
        run_pipeline(settings)
    finally:
        server.shutdown()
    out = tmp_path / "outputs"
    archive = pd.read_csv(out / "forecast_archive.csv", dtype={"ds": str})
    assert list(archive.columns) == list(ar.ARCHIVE_COLUMNS)
    assert sorted(archive["vintage"].unique()) == ["v0001", "v0002"] and archive["run_id"].nunique() == 2
    # earlier rows are never rewritten: the first run's export is the start of the second's
    assert (out / "forecast_archive.csv").read_bytes().startswith(first_archive)
    assert len(list((tmp_path / "home" / "archive").glob("*.parquet"))) == 2
    first = archive.loc[archive["vintage"] == "v0001"]
    assert set(first.loc[first["kind"] == "month", "ds"]) == {
        f"{m:%Y-%m-%d}" for m in pd.date_range("2025-12-01", "2026-12-01", freq="MS")
    }
    changes = pd.read_csv(out / "changes.csv", dtype={"ds": str})
    new = changes.loc[changes["change"] == "new"]
    assert len(new) == 44 and set(new["ds"]) == {"2025-12-01"}
    assert (changes["change"] == "revised").sum() == 0
    forecast = changes.loc[changes["change"] == "forecast"]
    assert len(forecast) == 44 and set(forecast["ds"]) == {"2026"} and forecast["old"].notna().all()
    total_dec = new.loc[new["unique_id"] == "total", "new"].iloc[0]
    total_dec_2024 = (
        pd.read_csv(tmp_path / "home" / "vintages" / "v0002" / "data" / "exports_monthly.csv")
        .query("unique_id == 'total' and ds == '2024-12-01'")["y"]
        .iloc[0]
    )
    total = forecast.loc[forecast["unique_id"] == "total"].iloc[0]
    sentence = (
        f"new this month: total 2025-12 {total_dec / 1e9:,.1f} bn, {(total_dec / total_dec_2024 - 1) * 100:+.1f}% y/y; "
        f"0 months revised; 2026 forecast {total['old'] / 1e9:,.1f} -> {total['new'] / 1e9:,.1f} bn"
    )
    run = json.loads((out / "run.json").read_text())
    assert run["vintage"] == "v0002" and run["changes"]["sentence"] == sentence
    assert (run["changes"]["new"], run["changes"]["previous_vintage"]) == (44, "v0001")
    report = (out / "report.html").read_text(encoding="utf-8")
    assert report.index('id="changes"') < report.index('id="headline"')
    assert sentence.capitalize().replace("->", "-&gt;") in report
    assert '<section id="track-record">' in report and "2 archived run(s) over 2 vintage(s)" in report
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    parent = mlflow.get_run(run["mlflow_run_id"])
    assert parent.data.tags["changes"] == sentence and parent.data.tags["vintage"] == "v0002"
    assert parent.data.metrics["changes_new"] == 44.0
    # the first run's month 2025-12 is now scored (44 series, one month each)
    assert parent.data.metrics["archive_n_month"] == 44.0
    shutil.rmtree(tmp_path / "cut")
