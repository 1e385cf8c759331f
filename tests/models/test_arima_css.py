"""ARIMA's CSS search: the explicit Jacobian over the numba ARMA filter gives the bits of the
reference path (``np.convolve`` polynomials, ``scipy.signal.lfilter``, scipy's forward differences);
docs/decisions/0183."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize._numdiff import approx_derivative
from scipy.signal import lfilter

from models.families.arima import CssProblem, css_fit

DATA = Path(__file__).resolve().parents[2] / "data" / "exports_monthly.csv"
SERIES = ("total", "destination:vietnam", "item:auto_parts")
ORDERS = ((2, 2, 1, 1), (0, 0, 0, 0), (1, 0, 1, 0), (0, 1, 0, 1), (1, 2, 1, 0))


@pytest.fixture(scope="module")
def differenced() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per series: the seasonally and once differenced log series (as the search fits it on the
    long series) and a differenced log working-days-like regressor of the same length."""
    frame = pd.read_csv(DATA, parse_dates=["ds"])
    out = {}
    for uid in SERIES:
        y = np.log(frame[frame["unique_id"] == uid].sort_values("ds")["y"].to_numpy(dtype=float))
        w = np.diff(y[12:] - y[:-12])
        regressor = np.log(20.0 + (np.arange(len(y)) * 7 % 5))
        out[uid] = w, np.diff(regressor[12:] - regressor[:-12])
    return out


def _fit_bits(w, wx, order, constant, fast):
    try:
        aicc, theta = css_fit(w, wx, order, constant, 14, fast=fast)
    except Exception as exc:  # a rejected candidate must be rejected by both paths alike
        return f"{type(exc).__name__}: {exc}"
    return np.float64(aicc).tobytes() + theta.tobytes()


def test_fast_css_fits_give_the_reference_bits(differenced):
    compared = fitted = 0
    for w, x in differenced.values():
        for order in ORDERS:
            for constant in (False, True):
                for wx in (None, x):
                    if sum(order) == 0 and not constant and wx is None:
                        continue
                    fast, reference = (_fit_bits(w, wx, order, constant, f) for f in (True, False))
                    assert fast == reference, (order, constant, wx is not None)
                    compared += 1
                    fitted += isinstance(fast, bytes)
    assert compared == 57 and fitted >= 40, (compared, fitted)


def test_jacobian_is_scipys_forward_difference_to_the_bit(differenced):
    rng = np.random.default_rng(22)
    w, x = differenced["destination:vietnam"]
    for order, constant, wx in (((2, 2, 1, 1), True, x), ((1, 0, 1, 0), True, None), ((0, 1, 0, 1), False, x)):
        problem = CssProblem(w, wx, order, constant, 14)
        starts = (
            np.zeros(sum(order) + problem.n_reg + 1),
            np.append(rng.normal(0, 0.4, sum(order) + problem.n_reg), 0),
        )
        for theta in starts:
            padded = functools.partial(_without_last, problem.reference_residuals)
            expected = approx_derivative(padded, theta, method="2-point")
            got = problem.jacobian(theta)
            assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(expected).tobytes()
            assert not got[:, -1].any()  # the inert parameter's column is exactly zero (decision 0124)


def test_arma_filter_by_hand():
    """ARMA(1,1), e_t = u_t - 0.5 u_(t-1) - 0.25 e_(t-1) on u = 1, 2, 3, 4 (exact in binary)."""
    u = np.array([1.0, 2.0, 3.0, 4.0])
    problem = CssProblem(u, None, (1, 1, 0, 0), False, 0)
    theta = np.array([0.5, 0.25])
    assert problem.residuals(theta).tolist() == [1.0, 1.25, 1.6875, 2.078125]
    assert problem.reference_residuals(theta).tolist() == [1.0, 1.25, 1.6875, 2.078125]
    assert lfilter([1.0, -0.5], [1.0, 0.25], u).tolist() == [1.0, 1.25, 1.6875, 2.078125]


def test_seasonal_product_coefficient_by_hand():
    """(1 - 0.5 B)(1 - 0.5 B^12) u with u = 1 at month 0 and month 13: the residual at month 13 is
    1 - 0.5 * 0 - 0.5 * 0 + 0.25 * 1 = 1.25 (the product term), with an MA part of 0."""
    u = np.zeros(16)
    u[0], u[13] = 1.0, 1.0
    problem = CssProblem(u, None, (1, 1, 1, 0), False, 0)
    theta = np.array([0.5, 0.0, 0.5])
    e = problem.residuals(theta)
    assert e[[0, 1, 12, 13, 14]].tolist() == [1.0, -0.5, -0.5, 1.25, -0.5]
    assert e.tobytes() == problem.reference_residuals(theta).tobytes()


def test_orders_of_12_or_more_keep_the_reference_path():
    w = np.sin(np.arange(80.0))
    assert CssProblem(w, None, (2, 2, 1, 1), False, 14).fast
    assert not CssProblem(w, None, (12, 0, 0, 0), False, 14).fast
    assert not CssProblem(w, None, (0, 12, 0, 0), False, 14).fast


def _without_last(residuals, theta):
    return residuals(theta[:-1])


CACHE_PROBE = (
    "import numpy as np; from models.families import arima; f = arima._arma_filter(); out = np.empty((1, 4)); "
    "f(np.zeros((1, 2)), 1, 1, 0, 0, 2, np.ones((1, 4)), out); print(out[0].tolist(), sum(f.stats.cache_hits.values()))"
)


@pytest.mark.slow
def test_a_fresh_process_loads_the_compiled_filter_from_numbas_cache(tmp_path):
    """Every worker process pays the numba start-up: the second process must load the kernel from
    the cache the first one wrote, not compile it again (a jitted helper referenced from the kernel
    once made every process miss the cache)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    runs = [
        subprocess.run(
            [sys.executable, "-c", CACHE_PROBE], cwd=root, env=env, capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    assert [r.stdout.split() for r in runs] == [
        ["[1.0,", "1.0,", "1.0,", "1.0]", "0"],
        ["[1.0,", "1.0,", "1.0,", "1.0]", "1"],
    ]
