"""The command line: bad input gets the contract's message (every command's --help: test_help.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from exportcast.cli import app

runner = CliRunner()


def test_validate_accepts_a_good_file(tmp_path):
    path = tmp_path / "good.csv"
    path.write_text("unique_id,ds,y\ntotal,2024-01,100\ntotal,2024-02,110\nitem:x,2024-01-01,5\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", "--input", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: 3 rows, 2 series, OK" in result.output
    assert "total: 2024-01..2024-02 (2 months)" in result.output


def test_validate_names_file_line_and_column_of_bad_input(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("unique_id,ds,y\ntotal,2024-01,100\ntotal,2024-13,110\ntotal,2024-03,-5\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", "--input", str(path)])
    assert result.exit_code == 2
    assert f"error: {path}: 2 problems found" in result.output
    assert "line 3, column ds: '2024-13' is not a month" in result.output
    assert "line 4" in result.output and "-5" in result.output


def test_validate_missing_file(tmp_path):
    result = runner.invoke(app, ["validate", "--input", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "nope.csv" in result.output


def test_models_lists_the_registry():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for name in ("seasonal_naive", "arima", "prophet", "ensemble"):
        assert name in result.output


def _seasonal_csv(tmp_path):
    """Two series, 36 months: a(t) = 100 + month-of-year, b = 2 a; seasonal naive is exact."""
    rows = ["unique_id,ds,y"]
    for uid, scale in (("a", 1), ("b", 2)):
        for k in range(36):
            year, month = 2020 + k // 12, k % 12 + 1
            rows.append(f"{uid},{year}-{month:02d},{scale * (100 + month)}")
    path = tmp_path / "series.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_forecast_command_writes_hand_computable_forecasts(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTCAST__RUNTIME__N_JOBS", "1")
    out = tmp_path / "fc"
    result = runner.invoke(
        app,
        [
            "forecast",
            "--input",
            str(_seasonal_csv(tmp_path)),
            "--horizon",
            "3",
            "--models",
            "seasonal_naive,naive",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    import pandas as pd

    fc = pd.read_csv(out / "forecast.csv")
    assert list(fc.columns) == ["unique_id", "ds", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95"]
    snaive = fc[(fc.unique_id == "b") & (fc.model == "seasonal_naive")]
    assert snaive["ds"].tolist() == ["2023-01-01", "2023-02-01", "2023-03-01"]
    assert snaive["forecast"].tolist() == [202.0, 204.0, 206.0]
    naive = fc[(fc.unique_id == "a") & (fc.model == "naive")]
    assert naive["forecast"].tolist() == [112.0, 112.0, 112.0]
    fits = pd.read_csv(out / "model_fits.csv")
    assert set(fits["status"]) == {"ok"}


def test_backtest_command_scores_every_model_and_the_champion(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPORTCAST__RUNTIME__N_JOBS", "1")
    out = tmp_path / "bt"
    result = runner.invoke(
        app,
        [
            "backtest",
            "--input",
            str(_seasonal_csv(tmp_path)),
            "--horizon",
            "6",
            "--windows",
            "2",
            "--step",
            "3",
            "--models",
            "seasonal_naive,naive",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    import pandas as pd

    metrics = pd.read_csv(out / "backtest_metrics.csv")
    assert list(metrics.columns) == [
        "unique_id",
        "model",
        "cutoff",
        "mase",
        "smape",
        "rmsse",
        "coverage_80",
        "coverage_95",
    ]
    assert sorted(metrics["cutoff"].unique()) == ["2022-03-01", "2022-06-01"]
    # the series repeat exactly every year: seasonal naive makes no error at all
    assert (metrics.loc[metrics.model == "seasonal_naive", "mase"] == 0).all()
    # the models, the combinations of them (backtest.combinations) and the champion
    assert set(metrics["model"]) == {
        "seasonal_naive",
        "naive",
        "combo_mean",
        "combo_trimmed",
        "combo_inv_mase",
        "champion",
    }
    champions = pd.read_csv(out / "champions.csv")
    assert champions.set_index("unique_id")["champion"].to_dict() == {"a": "seasonal_naive", "b": "seasonal_naive"}
    forecasts = pd.read_csv(out / "backtest_forecasts.csv")
    assert {"unique_id", "cutoff", "ds", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "y"} <= set(
        forecasts.columns
    )


def test_backtest_command_rejects_a_bad_file_with_the_contract_message(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("unique_id,ds,y\na,2024-01,1\na,2024-02,abc\n", encoding="utf-8")
    result = runner.invoke(app, ["backtest", "--input", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert f"error: {path}: 1 problem found" in result.output
    assert "line 3, column y: 'abc'" in result.output
    assert not (tmp_path / "o").exists()


def test_forecast_command_files_are_identical_across_reruns_and_timings_are_printed(tmp_path):
    """ARIMA's fit time is a run-dependent figure: printed, never written into model_fits.csv."""
    import numpy as np

    rng = np.random.default_rng(7)
    rows = ["unique_id,ds,y"] + [
        f"a,{2018 + k // 12}-{k % 12 + 1:02d},{100 + 10 * np.sin(k * np.pi / 6) + rng.normal(0, 2):.3f}"
        for k in range(60)
    ]
    path = tmp_path / "noisy.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    outputs = []
    for k in range(2):
        out = tmp_path / f"fc{k}"
        result = runner.invoke(
            app, ["forecast", "--input", str(path), "--horizon", "3", "--models", "arima", "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert "fit seconds: arima " in result.output
        outputs.append({name: (out / name).read_bytes() for name in ("forecast.csv", "model_fits.csv")})
    assert b"fit_seconds" not in outputs[0]["model_fits.csv"]
    assert outputs[0] == outputs[1]


@pytest.mark.slow
def test_data_build_writes_every_table_and_prints_its_report(tmp_path):
    from pathlib import Path

    raw = Path(__file__).resolve().parents[3] / "shared" / "data" / "raw"
    if not raw.is_dir():
        pytest.skip(f"shared raw data not found at {raw}")
    result = runner.invoke(app, ["data", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "indicators: 7838 rows accepted, 2 rejected by the contract" in result.output
    assert f"wrote {tmp_path}/institutional_projections.csv and {tmp_path}/annual_actuals.csv" in result.output
    assert (tmp_path / "indicators_monthly.csv").is_file() and (tmp_path / "annual_actuals.csv").is_file()
