"""The one home of the published results: schemas derived from the producers' constants, the
champion flags and headline assembled once, timings kept out of the CSVs, run.json as one class."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from flows import results as res
from flows.results import RunRecord, SchemaError, assemble, split_timings


def test_schemas_are_the_producers_column_constants() -> None:
    from flows.archive import ARCHIVE_COLUMNS, CHANGES_COLUMNS
    from models.applications.institutional import COMPARISON_COLUMNS, OUTLOOK_COLUMNS, SUMMARY_COLUMNS
    from models.applications.inyear import TRACKING_COLUMNS
    from models.applications.nowcast import NOWCAST_COLUMNS
    from models.core.backtest import BACKTEST_FORECAST_COLUMNS, METRIC_COLUMNS
    from models.core.engine import ANNUAL_COLUMNS, FIT_COLUMNS, FORECAST_FRAME_COLUMNS

    cols = {name: schema.columns for name, schema in res.SCHEMAS.items()}
    assert cols == {
        "forecast_monthly.csv": (*FORECAST_FRAME_COLUMNS, "is_champion"),
        "forecast_annual.csv": (*ANNUAL_COLUMNS, "is_champion"),
        "backtest_metrics.csv": METRIC_COLUMNS,
        "backtest_forecasts.csv": BACKTEST_FORECAST_COLUMNS,
        "champions.csv": ("unique_id", "champion", "reason", "n_windows", "metric", "mean_score"),
        "model_fits.csv": FIT_COLUMNS,
        "institutional_comparison.csv": tuple(COMPARISON_COLUMNS),
        "institutional_summary.csv": tuple(SUMMARY_COLUMNS),
        "institutional_outlook.csv": tuple(OUTLOOK_COLUMNS),
        "nowcast.csv": NOWCAST_COLUMNS,
        "tracking.csv": TRACKING_COLUMNS,
        "forecast_archive.csv": ARCHIVE_COLUMNS,
        "changes.csv": CHANGES_COLUMNS,
    }


def test_champion_columns_are_what_select_champions_returns() -> None:
    from models.selection.champion import select_champions

    metrics = pd.DataFrame(
        {"unique_id": ["a", "a"], "model": ["ets", "naive"], "cutoff": ["2024-01-01"] * 2, "mase": [0.5, 0.9]}
    )
    assert tuple(select_champions(metrics, "naive").columns) == res.CHAMPION_COLUMNS


def test_split_timings_moves_fit_seconds_out_of_the_description() -> None:
    fits = pd.DataFrame(
        {
            "unique_id": ["a", "b", "a"],
            "model": ["arima", "arima", "ets"],
            "description": [
                json.dumps({"spec": "ARIMA(1,1,0)", "fit_seconds": 1.25}),
                json.dumps({"fit_seconds": 0.5, "aicc": 3.0}),
                "{}",
            ],
        }
    )
    clean, seconds = split_timings(fits)
    assert list(clean["description"]) == ['{"spec": "ARIMA(1,1,0)"}', '{"aicc": 3.0}', "{}"]
    assert seconds == {"arima": 1.75}
    assert "fit_seconds" in fits["description"].iloc[0]  # the input is not changed


def test_split_timings_removes_the_nested_timings_of_an_ensemble() -> None:
    # the ensemble's description nests its members' (arima's with fit_seconds): issue 19 item 8
    member = {"spec": "ARIMA(1,1,0)", "fit_seconds": 2.5}
    fits = pd.DataFrame(
        {
            "unique_id": ["a", "a"],
            "model": ["ensemble", "arima"],
            "description": [
                json.dumps(
                    {
                        "members": ["arima"],
                        "member_descriptions": {"arima": member},
                        "paths": [{"fit_seconds": 1.0, "n": 3}],
                    }
                ),
                json.dumps(member),
            ],
        }
    )
    clean, seconds = split_timings(fits)
    assert list(clean["description"]) == [
        '{"member_descriptions": {"arima": {"spec": "ARIMA(1,1,0)"}}, "members": ["arima"], "paths": [{"n": 3}]}',
        '{"spec": "ARIMA(1,1,0)"}',
    ]
    assert seconds == {"arima": 2.5}  # a member's seconds are counted once, under its own model


def _stage_results():
    """A hand-made backtest + forecast of two series: 'total' (champion ets) and 'b' (champion naive)."""
    months = pd.date_range("2025-01-01", periods=2, freq="MS")
    forecasts = pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": months,
                    "model": model,
                    "forecast": level,
                    "lo_80": level - 1,
                    "hi_80": level + 1,
                    "lo_95": level - 2,
                    "hi_95": level + 2,
                }
            )
            for uid in ("total", "b")
            for model, level in (("naive", 10.0), ("ets", 20.0))
        ],
        ignore_index=True,
    )
    annual = pd.DataFrame(
        [
            {
                "unique_id": uid,
                "year": 2025,
                "model": model,
                "forecast": 12 * level,
                "lo_80": 1.0,
                "hi_80": 2.0,
                "lo_95": 0.5,
                "hi_95": 3.0,
                "observed": 0.0,
                "n_observed": 0,
                "n_forecast": 12,
                "reason": "",
            }
            for uid in ("total", "b")
            for model, level in (("naive", 10.0), ("ets", 20.0))
        ]
    )
    fits = pd.DataFrame(
        [
            {
                "unique_id": uid,
                "model": model,
                "model_used": model,
                "status": "ok",
                "reason": "",
                "error": "",
                "n_obs": 36,
                "description": json.dumps({"fit_seconds": 0.25}),
            }
            for uid in ("total", "b")
            for model in ("naive", "ets")
        ]
    )
    champions = pd.DataFrame(
        {
            "unique_id": ["b", "total"],
            "champion": ["naive", "ets"],
            "reason": ["r1", "r2"],
            "n_windows": [2, 2],
            "metric": ["mase", "mase"],
            "mean_score": ["{}", "{}"],
        }
    )
    metrics = pd.DataFrame(
        columns=["unique_id", "model", "cutoff", "mase", "smape", "rmsse", "coverage_80", "coverage_95"]
    )
    bt_forecasts = pd.DataFrame(
        columns=["unique_id", "cutoff", "ds", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "y"]
    )
    bt = SimpleNamespace(champions=champions, metrics=metrics, forecasts=bt_forecasts)
    fc = SimpleNamespace(forecasts=forecasts, annual=annual, fits=fits, fit_seconds={"ets": 0.75, "naive": 0.125})
    frame = pd.DataFrame(
        {"unique_id": ["total", "b"], "ds": pd.to_datetime(["2024-12-01"] * 2), "y": [1.0, 2.0], "extra": [0, 0]}
    )
    return frame, bt, fc


def test_assemble_flags_champions_once_and_fills_run_json() -> None:
    frame, bt, fc = _stage_results()
    out = assemble(frame, bt, fc, None, run=RunRecord(run_id="r", target_year=2025))
    monthly = out.tables["forecast_monthly.csv"]
    flagged = monthly.loc[monthly["is_champion"], ["unique_id", "model"]].drop_duplicates()
    assert flagged.values.tolist() == [["b", "naive"], ["total", "ets"]]
    assert out.champion_of == {"b": "naive", "total": "ets"}
    assert out.run.champion_counts == {"ets": 1, "naive": 1}
    assert out.run.total_forecast == {
        "model": "ets",
        "forecast": 240.0,
        "lo_80": 1.0,
        "hi_80": 2.0,
        "lo_95": 0.5,
        "hi_95": 3.0,
    }
    assert out.run.fit_seconds == {"ets": 0.75, "naive": 0.125}  # the engine's timing, not the descriptions' 0.25s
    assert out.run.institutional_compared is False
    assert set(out.tables["model_fits.csv"]["description"]) == {"{}"}
    # the comparison was not run: its tables are published header-only (no stale file of an earlier run)
    assert out.tables["institutional_summary.csv"].empty
    assert list(out.tables["institutional_summary.csv"].columns) == list(
        res.SCHEMAS["institutional_summary.csv"].columns
    )
    assert list(out.history.columns) == ["unique_id", "ds", "y"]
    assert out.headline_metrics() == {
        "n_series": 2.0,
        "total_2025_usd_bn": 240.0 / 1e9,
        "total_2025_lo_80_usd_bn": 1.0 / 1e9,
        "total_2025_hi_80_usd_bn": 2.0 / 1e9,
    }


def test_run_record_round_trips_and_ignores_keys_it_does_not_write() -> None:
    run = RunRecord(
        run_id="abc",
        target_year=2026,
        git_head="deadbeef",
        stage_seconds={"forecast": 1.5},
        champion_model=dataclasses.asdict(
            res.RegistryRecord(name="m", version="3", promoted=True, reason="published run")
        ),
    )
    payload = json.loads(run.to_bytes())
    assert RunRecord.from_json(payload) == run
    assert RunRecord.from_json({**payload, "created_at": "old key"}) == run
    assert run.registry == res.RegistryRecord(
        name="m", alias="champion", version="3", promoted=True, reason="published run"
    )
    with pytest.raises(SchemaError, match=r"^run\.json: lacks run_id or target_year; has git_head$"):
        RunRecord.from_json({"git_head": "x"})


def test_report_header_reads_only_fields_the_run_record_writes() -> None:
    from flows.report import HEADER_FACTS

    fields = {f.name for f in dataclasses.fields(RunRecord)}
    assert {key for key, _ in HEADER_FACTS} <= fields


def test_schema_read_parses_dates_and_flags(tmp_path) -> None:
    frame, bt, fc = _stage_results()
    out = assemble(frame, bt, fc, None, run=RunRecord(run_id="r", target_year=2025))
    path = tmp_path / "forecast_monthly.csv"
    path.write_bytes(res.csv_bytes(out.tables["forecast_monthly.csv"]))
    back = res.SCHEMAS["forecast_monthly.csv"].read(path)
    assert back["ds"].dtype == "datetime64[ns]" and back["is_champion"].dtype == bool
    pd.testing.assert_frame_equal(
        back, out.tables["forecast_monthly.csv"].astype({"is_champion": bool}), check_dtype=False
    )
    assert np.isclose(back["forecast"].sum(), out.tables["forecast_monthly.csv"]["forecast"].sum())


def test_only_a_full_run_on_the_production_source_may_move_the_alias(tmp_path) -> None:
    from flows.pipeline import promotion
    from flows.settings import Settings

    embedded = Settings()
    assert promotion(embedded) == (True, "published run on the production source embedded")
    user = embedded.updated("data", source="csv", path=tmp_path / "my.csv")
    assert promotion(user) == (
        False,
        "data source csv is not the production source embedded (mlflow.production_source)",
    )
    assert promotion(user.updated("mlflow", production_source="csv"))[0] is True
    subset = embedded.updated("data", series=["total"])
    assert promotion(subset) == (False, "data.series selects 1 series: a partial run is not promoted")
