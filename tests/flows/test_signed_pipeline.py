"""The monthly pipeline on a real trade balance (issue 19, item 3): signed series forecast through
every stage (backtest, forecast, combinations, MLflow, publish, report) with negative values where
the history is negative, the additive forms named in model_fits.reason, nothing clipped at zero."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.cli.test_user_data import TRADE, _balances
from tests.flows.conftest import write_config

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not TRADE.is_file(), reason="needs ../shared/data/raw")]


def test_the_pipeline_forecasts_a_trade_balance_with_allow_negative(prefect_harness, tmp_path):
    from flows.pipeline import run_pipeline
    from flows.settings import load_settings

    csv = _balances(tmp_path)
    cfg = write_config(
        tmp_path,
        csv,
        **{
            "target_year": 2026,
            "data.allow_negative": True,
            "models.enabled": ["seasonal_naive", "naive", "ets", "arima"],
        },
    )
    result = run_pipeline(load_settings(cfg))
    out = result.outputs_dir
    fits = pd.read_csv(out / "model_fits.csv").set_index(["unique_id", "model"])
    for uid in ("balance:agrifood", "balance:computer", "balance:auto"):
        assert (
            fits.loc[(uid, "ets"), "reason"]
            == "signed series: ets with additive error and seasonality, no clip at zero"
        )
        assert fits.loc[(uid, "arima"), "reason"] == "signed series: arima on levels, not logs, no clip at zero"
        assert fits.loc[(uid, "arima"), "status"] == "ok"
    assert not fits["description"].str.contains("nonnegative_clip").any()
    monthly = pd.read_csv(out / "forecast_monthly.csv").set_index("unique_id")
    assert (monthly.loc["balance:agrifood", ["forecast", "lo_95", "hi_95"]] < 0).all().all()
    assert (monthly.loc["balance:computer", "lo_95"] < 0).all()
    annual = pd.read_csv(out / "forecast_annual.csv")
    champion = annual[annual["is_champion"]].set_index("unique_id")
    assert champion.loc["balance:agrifood", "hi_95"] < 0 and champion.loc["balance:auto", "forecast"] > 0
    assert np.isfinite(champion[["forecast", "lo_80", "hi_80"]].to_numpy()).all()
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["data"]["allow_negative"] is True and run["data"]["n_series"] == 3
    assert (out / "report.html").is_file()
