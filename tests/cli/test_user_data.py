"""A user's own CSV through `exportcast` in a subprocess (issue 19, items 2, 3, 4 and 10): a series
with a bad row is left out with one warning, --strict refuses the file, signed series forecast with
--allow-negative (a real trade balance), a value of 1e30 is a bad row, and the shipped leading
model's series is not reported missing from a user's data unless --verbose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
TRADE = REPO.parent / "shared" / "data" / "raw" / "psicsh+Korea-trade-dashboard" / "trade_industry.csv"
LEADING = (
    "warning: models.leading names series the data does not have: item:semiconductors_ministry; their "
    "leading models do not run"
)


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTCAST__")}
    environ.update({"PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "exportcast.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _warnings(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]


def _config(folder: Path, enabled: str) -> Path:
    """Fast models; models.leading as shipped (the ministry's semiconductors, absent here)."""
    path = folder / "config.yaml"
    path.write_text(f"models:\n  enabled: [{enabled}]\n", encoding="utf-8")
    return path


@pytest.fixture
def three(tmp_path: Path) -> Path:
    """Series a clean; b with text in a number and a duplicated month; c with a 1e30 (36 months each)."""
    months = pd.date_range("2021-01-01", periods=36, freq="MS").strftime("%Y-%m")
    rows = [
        (uid, m, f"{level * (1 + 0.01 * i):.0f}")
        for uid, level in (("a", 1e9), ("b", 2e9), ("c", 3e9))
        for i, m in enumerate(months)
    ]
    rows[40] = ("b", rows[40][1], "12x")  # line 42
    rows[45] = ("b", rows[44][1], rows[45][2])  # line 47 repeats line 46's month
    rows[80] = ("c", rows[80][1], "1e30")  # line 82
    path = tmp_path / "three.csv"
    pd.DataFrame(rows, columns=["unique_id", "ds", "y"]).to_csv(path, index=False)
    return path


B_WARNING = (
    "warning: series 'b' excluded, the other series are kept: three.csv line 42, column y: '12x' is not a "
    "number (+1 more problem in this series)"
)
C_WARNING = (
    "warning: series 'c' excluded, the other series are kept: three.csv line 82, column y: '1e30' is "
    "implausible: more than 1e+06 times the series' median absolute value 3.555e+09 (limit 3.555e+15, "
    "data.plausibility_factor)"
)


@pytest.mark.slow  # two forecasts and three validations in subprocesses
def test_bad_rows_exclude_their_series_strict_refuses_and_the_leading_warning_needs_verbose(three):
    folder = three.parent
    cfg = _config(folder, "seasonal_naive, naive")
    proc = _cli(folder, "forecast", "--input", "three.csv", "--horizon", "6", "--out", "fc", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert _warnings(proc) == [B_WARNING, C_WARNING]  # item 10: no models.leading warning for a user CSV
    forecast = pd.read_csv(folder / "fc" / "forecast.csv")
    assert forecast["unique_id"].unique().tolist() == ["a"]
    assert np.abs(forecast[["forecast", "lo_95", "hi_95"]].to_numpy()).max() < 1e6 * 1.175e9  # nothing implausible
    verbose = _cli(
        folder, "--verbose", "forecast", "--input", "three.csv", "--horizon", "6", "--out", "fc", "--config", str(cfg)
    )
    assert verbose.returncode == 0 and _warnings(verbose) == [B_WARNING, C_WARNING, LEADING]

    strict = [
        "three.csv: 3 problems found",
        "three.csv line 42, column y: '12x' is not a number",
        "three.csv line 47: duplicate of line 46 (unique_id 'b', ds 2021-09)",
        "three.csv line 82, column y: '1e30' is implausible: more than 1e+06 times the series' median absolute "
        "value 3.555e+09 (limit 3.555e+15, data.plausibility_factor)",
    ]
    for args, env in ((["--strict"], None), ([], {"EXPORTCAST__DATA__STRICT": "true"})):
        refused = _cli(folder, "validate", "--input", "three.csv", "--config", str(cfg), *args, env=env)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert refused.stderr.splitlines() == [f"error: {strict[0]}", *strict[1:]]
    wider = _cli(
        folder,
        "validate",
        "--input",
        "three.csv",
        "--config",
        str(cfg),
        env={"EXPORTCAST__DATA__PLAUSIBILITY_FACTOR": "1e22"},
    )
    assert wider.returncode == 0 and _warnings(wider) == [B_WARNING]
    assert wider.stdout.splitlines()[0] == "three.csv: 72 rows, 2 series, OK"


def _balances(folder: Path) -> Path:
    """Real trade balances (export - import, USD) of three MTI items, 2022-01..2025-12: agricultural
    food always negative, computers both signs, automobiles always positive."""
    trade = pd.read_csv(TRADE)
    trade = trade[trade["industry_code"].isin(["AGRIFOOD", "COMPUTER", "AUTO"])]
    balance = trade["export_usd"] - trade["import_usd"]
    assert np.allclose(balance, trade["balance_usd"])  # PROVENANCE.md: balance = export - import on every row
    path = folder / "balance.csv"
    pd.DataFrame(
        {"unique_id": "balance:" + trade["industry_code"].str.lower(), "ds": trade["period"], "y": balance}
    ).to_csv(path, index=False)
    return path


@pytest.mark.slow  # ARIMA and Prophet on three series in a subprocess
@pytest.mark.skipif(not TRADE.is_file(), reason="needs ../shared/data/raw (the shared raw files)")
def test_a_real_trade_balance_is_forecast_signed_with_allow_negative(tmp_path):
    _balances(tmp_path)
    cfg = _config(tmp_path, "seasonal_naive, arima, prophet")
    without = _cli(tmp_path, "validate", "--input", "balance.csv", "--config", str(cfg))
    assert without.returncode == 0 and [w.split(":")[1] for w in _warnings(without)] == [
        " series 'balance",
        " series 'balance",
    ]  # agrifood and computer excluded: negative
    assert "balance.csv line 2, column y: '-3229268128.0' is negative (exports in USD are >= 0)" in without.stderr
    proc = _cli(
        tmp_path,
        "forecast",
        "--input",
        "balance.csv",
        "--horizon",
        "12",
        "--out",
        "fc",
        "--config",
        str(cfg),
        "--allow-negative",
    )
    assert proc.returncode == 0, proc.stderr
    assert _warnings(proc) == []
    fits = pd.read_csv(tmp_path / "fc" / "model_fits.csv")
    assert (fits["status"] == "ok").all()
    reasons = fits.set_index(["unique_id", "model"])["reason"]
    for uid in ("balance:agrifood", "balance:computer", "balance:auto"):
        assert reasons[(uid, "arima")] == "signed series: arima on levels, not logs, no clip at zero"
        assert reasons[(uid, "prophet")] == (
            "signed series: prophet with additive seasonality (not multiplicative), no clip at zero"
        )
    assert not fits["description"].str.contains("nonnegative_clip").any()
    forecast = pd.read_csv(tmp_path / "fc" / "forecast.csv").set_index("unique_id")
    agrifood = forecast.loc["balance:agrifood"]
    assert (agrifood[["forecast", "lo_95", "hi_95"]] < 0).all().all()  # a negative history, negative forecasts
    computer = forecast.loc["balance:computer"]
    assert (computer["lo_95"] < 0).all() and (computer["hi_95"] > 0).any()  # bounds on both sides of zero, unclipped
    assert (forecast.loc["balance:auto", "forecast"] > 0).all()
