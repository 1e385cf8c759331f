"""A generic monthly CSV whose series lie outside the Korean working-day calendar (1950-2099):
`backtest` and `forecast` run every series; those outside run without the regressor and
model_fits.csv says why (issue 11, defect 5)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from exportcast.cli import app

runner = CliRunner()
SPANS = {"old": ("1857-01", 120), "now": ("2015-01", 120), "late": ("2090-01", 252)}


def _csv(tmp_path):
    rows = ["unique_id,ds,y"]
    for uid, (start, n) in SPANS.items():
        for k, ds in enumerate(pd.date_range(start, periods=n, freq="MS")):
            rows.append(f"{uid},{ds:%Y-%m},{1000 + 2 * k + 100 * math.sin(2 * math.pi * ds.month / 12):.3f}")
    path = tmp_path / "benchmark.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _reasons(fits: pd.DataFrame) -> dict[str, str]:
    prophet = fits[fits["model"] == "prophet"].fillna({"reason": ""})
    return {uid: " | ".join(sorted(set(group["reason"]))) for uid, group in prophet.groupby("unique_id")}


@pytest.mark.slow  # real Prophet fits
def test_forecast_runs_series_outside_the_calendar_without_the_regressor(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTCAST__RUNTIME__N_JOBS", "1")
    out = tmp_path / "fc"
    result = runner.invoke(
        app,
        [
            "forecast",
            "--input",
            str(_csv(tmp_path)),
            "--horizon",
            "6",
            "--models",
            "seasonal_naive,prophet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    fits = pd.read_csv(out / "model_fits.csv")
    assert set(fits["status"]) == {"ok"}
    assert _reasons(fits) == {
        "now": "",
        "old": "fitted without the regressor(s) working_days: they cover no month, the series needs "
        "1857-01..1867-06 (126 month(s) lacking, first 1857-01)",
        "late": "fitted without the regressor(s) working_days: they cover 2090-01..2099-12, the series needs "
        "2090-01..2111-06 (138 month(s) lacking, first 2100-01)",
    }
    described = fits[fits["model"] == "prophet"].set_index("unique_id")["description"]
    assert '"working_days": true' in described["now"] and '"working_days": false' in described["old"]
    forecasts = pd.read_csv(out / "forecast.csv")
    assert forecasts.groupby("unique_id")["ds"].max().to_dict() == {
        "late": "2111-06-01",
        "now": "2025-06-01",
        "old": "1867-06-01",
    }


@pytest.mark.slow  # real Prophet fits
def test_backtest_runs_series_outside_the_calendar_without_the_regressor(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTCAST__RUNTIME__N_JOBS", "1")
    out = tmp_path / "bt"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--input",
            str(_csv(tmp_path)),
            "--horizon",
            "6",
            "--windows",
            "2",
            "--step",
            "6",
            "--models",
            "seasonal_naive,prophet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(out / "backtest_metrics.csv")
    assert sorted(metrics["unique_id"].unique()) == ["late", "now", "old"]
    prophet = metrics[metrics["model"] == "prophet"]
    assert sorted(zip(prophet["unique_id"], prophet["cutoff"])) == [
        ("late", "2109-12-01"),
        ("late", "2110-06-01"),
        ("now", "2023-12-01"),
        ("now", "2024-06-01"),
        ("old", "1865-12-01"),
        ("old", "1866-06-01"),
    ]
    assert prophet["mase"].notna().all()
    champions = pd.read_csv(out / "champions.csv")
    assert sorted(champions["unique_id"]) == ["late", "now", "old"]


def test_settings_without_a_working_day_model_skip_the_calendar(tmp_path):
    from flows.jobs import uses_working_days, working_day_exog
    from flows.settings import load_settings

    frame = pd.DataFrame({"unique_id": "old", "ds": pd.date_range("1857-01", periods=3, freq="MS"), "y": 1.0})
    settings = load_settings(None)
    assert uses_working_days(settings)  # prophet (and the ensemble through it) by default
    plain = settings.updated("models", enabled=["seasonal_naive", "ets", "arima"])  # arima: working_days false
    assert not uses_working_days(plain)
    assert working_day_exog(frame, pd.Timestamp("1950-02-01"), plain) is None
    exog = working_day_exog(frame, pd.Timestamp("1950-02-01"), settings)
    assert exog.index.tolist() == [pd.Timestamp("1950-01-01"), pd.Timestamp("1950-02-01")]
    assert working_day_exog(frame, pd.Timestamp("1860-01-01"), settings) is None
