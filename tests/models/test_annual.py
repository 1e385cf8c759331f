"""Annual totals: observed months known, forecast months from path sums, gaps stay gaps."""

import math

import numpy as np
import pandas as pd
import pytest

from models.core.annual import annual_totals


def _history(start: str, values) -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="MS"), dtype=float)


HISTORY = _history("2024-01-01", range(1, 11))  # Jan..Oct 2024 = 1..10, sum 55
FORECAST_INDEX = pd.date_range("2024-11-01", periods=4, freq="MS")  # Nov 2024 .. Feb 2025
# path i (1..5): Nov = Dec = 5 i -> Nov+Dec sums 10, 20, 30, 40, 50 ; 2025 months must not count
PATHS = np.array([[5.0 * i, 5.0 * i, 1000.0, 1000.0] for i in range(1, 6)])


def test_hand_computed_totals_and_quantiles():
    out = annual_totals(HISTORY, FORECAST_INDEX, PATHS, 2024)
    # totals per path 65, 75, 85, 95, 105 ; numpy linear quantiles at q*(n-1) = 0.1, 0.4, 3.6, 3.9
    assert out["observed"] == 55.0
    assert out["forecast"] == pytest.approx(85.0)
    assert out["lo_95"] == pytest.approx(66.0)
    assert out["lo_80"] == pytest.approx(69.0)
    assert out["hi_80"] == pytest.approx(101.0)
    assert out["hi_95"] == pytest.approx(104.0)
    assert (out["n_observed"], out["n_forecast"], out["reason"]) == (10, 2, "")


def test_point_forecast_is_the_sum_of_monthly_points_when_given():
    out = annual_totals(HISTORY, FORECAST_INDEX, PATHS, 2024, point=np.array([14.0, 15.0, 7.0, 7.0]))
    assert out["forecast"] == pytest.approx(55.0 + 14.0 + 15.0)
    assert out["lo_80"] == pytest.approx(69.0)  # bounds still from the path sums


def test_year_entirely_in_the_forecast():
    out = annual_totals(HISTORY, pd.date_range("2024-11-01", periods=14, freq="MS"), np.ones((3, 14)), 2025)
    assert (out["observed"], out["n_observed"], out["n_forecast"]) == (0.0, 0, 12)
    assert out["forecast"] == out["lo_95"] == out["hi_95"] == pytest.approx(12.0)


def test_fully_observed_year_has_no_uncertainty():
    history = _history("2023-01-01", range(1, 25))  # 2023 = 1..12, sum 78
    out = annual_totals(history, pd.date_range("2025-01-01", periods=2, freq="MS"), np.zeros((4, 2)), 2023)
    assert out["forecast"] == out["lo_95"] == out["hi_95"] == 78.0
    assert out["n_forecast"] == 0


def test_gap_in_the_past_gives_nan_with_reason():
    history = HISTORY.copy()
    history.iloc[2] = np.nan  # March 2024 unobserved
    out = annual_totals(history, FORECAST_INDEX, PATHS, 2024)
    assert math.isnan(out["forecast"]) and math.isnan(out["lo_80"]) and math.isnan(out["hi_95"])
    assert out["observed"] == 52.0
    assert out["reason"] == "1 month(s) of 2024 neither observed nor forecast: 2024-03"


def test_forecast_not_reaching_year_end_is_reported():
    out = annual_totals(HISTORY, FORECAST_INDEX[:1], PATHS[:, :1], 2024)
    assert out["reason"] == "1 month(s) of 2024 neither observed nor forecast: 2024-12"


def test_correlated_paths_give_wider_annual_interval_than_independent_ones():
    rng = np.random.default_rng(0)
    n, h = 4000, 12
    common = rng.standard_normal((n, 1)) * np.ones((1, h))  # every month the same draw
    independent = rng.standard_normal((n, h))
    # same monthly margins (standard normal around 100)
    empty = pd.Series(dtype=float, index=pd.DatetimeIndex([]))
    idx = pd.date_range("2026-01-01", periods=h, freq="MS")
    corr = annual_totals(empty, idx, 100 + common, 2026)
    ind = annual_totals(empty, idx, 100 + independent, 2026)
    width_corr = corr["hi_80"] - corr["lo_80"]
    width_ind = ind["hi_80"] - ind["lo_80"]
    # theory: 2*1.2816*12 = 30.8 versus 2*1.2816*sqrt(12) = 8.9
    assert width_corr == pytest.approx(2 * 1.2816 * 12, rel=0.08)
    assert width_ind == pytest.approx(2 * 1.2816 * math.sqrt(12), rel=0.08)
    assert width_corr > 3 * width_ind


def test_shape_mismatch_is_an_error():
    with pytest.raises(
        ValueError, match=r"^paths must have shape \(n_paths, 4\) to match forecast_index; got \(5, 3\)$"
    ):
        annual_totals(HISTORY, FORECAST_INDEX, PATHS[:, :3], 2024)
