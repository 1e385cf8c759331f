"""The AR(1) residual process behind correlated annual draws (models.core.annual: fit_ar1, ar1_paths,
ar1_sum_sd) and the annual interval it gives, by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from models.core.annual import MAX_PHI, annual_totals, ar1_paths, ar1_sum_sd, fit_ar1

Z90 = norm.ppf(0.9)  # 1.2816: the 80% interval of a normal is mean +- Z90 sd


def test_sum_sd_by_hand():
    # h = 3, phi = 0.5: sum_{i,j} phi^|i-j| = 3 + 2 (2 x 0.5 + 1 x 0.25) = 5.5
    assert ar1_sum_sd(3, 0.5, 2.0) == pytest.approx(2.0 * math.sqrt(5.5))
    # phi = 0: the iid case, sigma sqrt(h)
    assert ar1_sum_sd(12, 0.0, 1.0) == pytest.approx(math.sqrt(12))
    # phi = 0.8 over a year: 12 + 2 sum_{k=1}^{11} (12 - k) 0.8^k = 70.75 -> sd 8.41, 2.43x the iid sqrt(12)
    assert ar1_sum_sd(12, 0.8, 1.0) == pytest.approx(math.sqrt(12 + 2 * sum((12 - k) * 0.8**k for k in range(1, 12))))
    assert ar1_sum_sd(12, 0.8, 1.0) == pytest.approx(8.4112, abs=1e-4)


def test_paths_have_the_marginal_sd_the_lag_one_correlation_and_the_sum_sd():
    paths = ar1_paths(40_000, 12, 0.8, 1.0, np.random.default_rng(0))
    assert paths.std(axis=0) == pytest.approx(np.ones(12), rel=0.03)
    lag1 = np.corrcoef(paths[:, 5], paths[:, 6])[0, 1]
    assert lag1 == pytest.approx(0.8, abs=0.01)
    assert paths.sum(axis=1).std() == pytest.approx(8.4112, rel=0.02)
    assert abs(paths.sum(axis=1).mean()) < 0.1  # centred: the point forecast they are added to is unchanged


def test_annual_interval_of_a_hand_built_ar1_residual_model_has_the_computed_width():
    """Year 2025 forecast from October 2024: Nov-Dec 2024 + the 12 months of 2025 = 100 each plus
    AR(1) residuals (phi 0.8, sigma 5). The 80% interval of the total is 1200 +- Z90 x 5 x 8.4112
    = 1200 +- 53.90 (width 107.8); iid residuals would give 1200 +- 22.20."""
    history = pd.Series(100.0, index=pd.date_range("2023-01-01", periods=22, freq="MS"))
    idx = pd.date_range("2024-11-01", periods=14, freq="MS")
    paths = 100.0 + ar1_paths(40_000, 14, 0.8, 5.0, np.random.default_rng(1))
    out = annual_totals(history, idx, paths, 2025, point=np.full(14, 100.0))
    half = Z90 * 5.0 * 8.4112
    assert half == pytest.approx(53.90, abs=0.01)
    assert out["forecast"] == pytest.approx(1200.0)
    assert out["hi_80"] - out["lo_80"] == pytest.approx(2 * half, rel=0.03)
    assert out["lo_80"] == pytest.approx(1200.0 - half, abs=3.0)
    iid = 100.0 + 5.0 * np.random.default_rng(2).standard_normal((40_000, 14))
    narrow = annual_totals(history, idx, iid, 2025)
    assert narrow["hi_80"] - narrow["lo_80"] == pytest.approx(2 * Z90 * 5.0 * math.sqrt(12), rel=0.03)


def test_fit_ar1_recovers_the_process_and_skips_pairs_across_gaps():
    e = ar1_paths(1, 3000, 0.6, 2.0, np.random.default_rng(3))[0]
    phi, sigma = fit_ar1(e)
    assert phi == pytest.approx(0.6, abs=0.04)
    assert sigma == pytest.approx(2.0, rel=0.05)
    gappy = e.copy()
    gappy[::10] = np.nan  # a missing month every 10: no pair across a gap
    assert fit_ar1(gappy)[0] == pytest.approx(0.6, abs=0.05)
    assert fit_ar1(np.arange(200.0))[0] == MAX_PHI  # a trend, not a stationary residual: held at 0.95
    assert fit_ar1(np.array([1.0, np.nan])) == (0.0, 0.0)  # too few residuals
    assert fit_ar1(np.full(10, 3.0)) == (0.0, 0.0)  # no spread
