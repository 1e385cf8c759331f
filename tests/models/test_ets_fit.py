"""ETS's L-BFGS with the finite-difference gradient of one loop (models/families/ets_fit.py,
decision 0190): scipy's gradient to the bit, and the stock statsmodels fit to the bit."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize._numdiff import approx_derivative
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from models.families import baselines
from models.families.ets_fit import EPSILON, two_point_gradient

DATA = Path(__file__).resolve().parents[2] / "data" / "exports_monthly.csv"


def _bumpy(x: np.ndarray) -> np.float64:
    return np.float64(np.sum(np.sin(3.0 * x) * x**2) + np.prod(np.cos(x[:2])))


@pytest.mark.parametrize(
    "x",
    [
        np.array([0.3, 0.6, 2.5, 0.0]),  # inside the bounds
        np.array([0.99999999999, 0.5, -2.0, 1.0]),  # a step forward would leave [0, 1]: scipy steps back
        np.array([1.0, 0.0, -2.0, 1.0]),  # on both bounds of the first two
        np.array([0.5, 0.5, 3.0e9, -4.0e9]),  # x + 1e-8 == x: scipy's relative step
    ],
)
def test_the_gradient_is_scipys_to_the_bit(x):
    bounds = ([0.0, 0.0, -np.inf, -np.inf], [1.0, 1.0, np.inf, np.inf])
    f0 = _bumpy(x)
    expected = approx_derivative(_bumpy, x, method="2-point", abs_step=EPSILON, f0=f0, bounds=bounds)
    got = two_point_gradient(_bumpy, x, f0, *(np.asarray(b, dtype=float) for b in bounds))
    np.testing.assert_array_equal(got, expected)


def _cases() -> list[tuple[str, np.ndarray, dict]]:
    frame = pd.read_csv(DATA, parse_dates=["ds"])
    out = []
    for uid in ("item:automobiles", "destination:asean", "destination:united_states", "total"):
        y = frame.loc[frame["unique_id"] == uid].set_index("ds")["y"].asfreq("MS").to_numpy(float)
        y = y[-60:] / np.abs(y[-60:]).mean()
        seasonal = {"seasonal": "mul", "seasonal_periods": 12}
        out.append((f"{uid} MAdM", y, {"error": "mul", **seasonal}))
        out.append((f"{uid} AAdA", y - 1.0, {"error": "add", "seasonal": "add", "seasonal_periods": 12}))
        out.append((f"{uid} MAdN, 20 months", y[-20:], {"error": "mul"}))
    return out


@pytest.mark.parametrize("label,y,spec", _cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_lean_ets_fit_is_the_stock_fit_to_the_bit(label, y, spec):
    lean_model = baselines._ets_classes()[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stock = ETSModel(y, trend="add", damped_trend=True, **spec).fit(disp=False, maxiter=200)
        lean = lean_model(y, trend="add", damped_trend=True, **spec).fit(disp=False, maxiter=200)
    np.testing.assert_array_equal(np.asarray(lean.params), np.asarray(stock.params))
    assert lean.llf == stock.llf
    assert lean.mle_retvals["iterations"] == stock.mle_retvals["iterations"]
    assert lean.mle_retvals["fcalls"] == stock.mle_retvals["fcalls"]
    np.testing.assert_array_equal(np.asarray(lean.forecast(12)), np.asarray(stock.forecast(12)))
