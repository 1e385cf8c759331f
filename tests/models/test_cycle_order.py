"""The growth AR's order from one QR decomposition (``aic_order``, decision 0188) is the order
statsmodels' ``ar_select_order`` chooses, on world semiconductor billings as public at every
eighth month's release since the reference first has 60 months of growth."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.ar_model import ar_select_order

from models.families.cycle import GrowthAR, aic_order, log_growth

DATA = Path(__file__).resolve().parents[2] / "data" / "indicators_monthly.csv"
REFERENCE = "wsts_month:billings_worldwide"


def statsmodels_order(g: np.ndarray, cap: int) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lags = ar_select_order(g, maxlag=cap, ic="aic", trend="c", glob=False).ar_lags
    return max(lags) if lags else 0


def releases() -> list[np.ndarray]:
    table = pd.read_csv(DATA, parse_dates=["ds", "available_from"])
    rows = table[table["indicator"] == REFERENCE]
    out = []
    for released in sorted(rows["available_from"].unique()):
        public = rows[rows["available_from"] <= released].sort_values("ds")["value"].to_numpy(dtype=float)
        g = log_growth(public)
        if len(g) >= 60:
            out.append(g)
    return out[::8] + out[-1:]


def test_the_order_is_statsmodels_order_at_every_release():
    growths = releases()
    assert len(growths) > 45
    orders = []
    for g in growths:
        cap = max(1, min(36, len(g) // 3))
        orders.append(aic_order(g, cap))
        assert orders[-1] == statsmodels_order(g, cap), len(g)
    assert len(set(orders)) > 3  # the search does choose: several orders over the releases


def test_a_rank_deficient_design_is_left_to_statsmodels():
    g = np.tile([0.1, -0.1], 40)  # lag 3 repeats lag 1: the design is singular
    assert aic_order(g, 5) is None
    logs = np.zeros(len(g) + 12)
    for t in range(12, len(logs)):
        logs[t] = logs[t - 12] + g[t - 12]  # a reference whose 12-month growth is g
    np.testing.assert_allclose(log_growth(np.exp(logs)), g, atol=1e-12)
    assert GrowthAR.estimate(np.exp(logs), max_lag=5, min_reference=60).order == statsmodels_order(
        log_growth(np.exp(logs)), 5
    )


@pytest.mark.parametrize("cap", [1, 3, 12])
def test_small_caps(cap):
    rng = np.random.default_rng(cap)
    g = np.convolve(rng.normal(size=200), [1.0, 0.6, 0.3], mode="valid")
    assert aic_order(g, cap) == statsmodels_order(g, cap)
