"""Seasonal ARIMA with automatic order selection (statsmodels ``SARIMAX``).

Selection, in the spirit of Hyndman & Khandakar's ``auto.arima`` (2008), kept small so one
series of ~190 months takes about a second or two:

1. **Scale.** Strictly positive series are modelled on logs (``log='auto'``): exports grow
   multiplicatively and their seasonal swings scale with the level.
2. **Seasonal differencing D** (period 12): D = 1 when the seasonal strength of an STL
   decomposition, ``F_s = max(0, 1 - Var(R) / Var(S + R))`` (Wang, Smith & Hyndman 2006), exceeds
   ``seasonal_strength_threshold`` (0.64, the threshold of ``forecast::nsdiffs``). With fewer than
   36 months D is 0: seasonal differencing would eat a third of the data. Seasonal AR/MA terms
   stay available, and the search may pick none.
3. **Differencing d**: KPSS level-stationarity tests (``statsmodels.tsa.stattools.kpss``) on the
   seasonally differenced series; difference while the test rejects at ``kpss_alpha`` (0.05),
   up to ``max_d``. Both tests need a gap-free series: missing months are filled for the TESTS
   only (``models.families.baselines.seasonal_interpolate``); the model itself is fitted on the series
   with its gaps (the state-space likelihood skips NaN months).
4. **Constant**: a mean when d + D = 0; when d + D = 1 a drift that the stepwise search may add
   or drop (one of its moves, as in Hyndman & Khandakar); never with d + D = 2 (a quadratic trend).
5. **Stepwise search** over (p, q, P, Q) scored by AICc: start from (2,2,1,1), (0,0,0,0),
   (1,0,1,0) and (0,1,0,1) (clipped to the maxima), then move to the best neighbour (one order
   +/-1, or p and q together, or P and Q together) while AICc improves, at most
   ``max_candidates`` fits. Candidates are scored by conditional sum of squares (CSS, as
   auto.arima approximates while searching) on the differenced, gap-filled series, with the
   same number of conditioning months for every candidate so AICc values compare. The SARIMAX
   ``method='lbfgs'`` likelihood search was measured at 1-30 s per candidate on this machine
   (the stationary state initialisation dominates), far over budget.
6. **Final model**: the winner in ``SARIMAX`` state-space form on the undifferenced series WITH
   its gaps (``simple_differencing=False``), parameters from CSS (``estimation='css'``, default)
   or refined by exact maximum likelihood (``'mle'``, L-BFGS from the CSS values, ``maxiter``);
   the innovation variance is the profile estimate of the exact diffuse likelihood, and the
   reported AICc is the exact one.

Working days: with param ``working_days`` true and X given, the regressor is log(working days)
on the log scale (an elasticity), working days otherwise.

Forecast on the log scale: ``mu_k`` and variance ``v_k`` from the Kalman filter. Reported
forecast = the MEAN ``exp(mu_k + v_k / 2)`` (so monthly forecasts add up to the mean of the
annual total and agree with the mean of the sample paths); bounds = ``exp(mu_k +/- z sqrt(v_k))``
(exact quantiles of the log-normal). Sample paths: the state-space model simulated from the end
of the sample on the log scale (vectorised equivalent of ``simulate(anchor='end')``), then exp.

Fitted state is the chosen specification and its parameter vector; the statsmodels results
object is rebuilt from them by one Kalman filter pass when needed (so pickles stay small).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from models.core.base import Forecaster, ModelInputError, Traits, Z
from models.core.registry import register
from models.families.baselines import seasonal_interpolate

SEASON = 12


class ArimaFitError(RuntimeError):
    """No candidate SARIMAX specification could be fitted."""


def seasonal_strength(x: pd.Series, period: int = SEASON) -> float:
    """Wang-Smith-Hyndman seasonal strength of a gap-free series from a robust STL fit."""
    from statsmodels.tsa.seasonal import STL

    if np.ptp(x.to_numpy()) == 0:
        return 0.0
    stl = STL(x.to_numpy(), period=period, robust=True).fit()
    remainder = np.asarray(stl.resid)
    seasonal = np.asarray(stl.seasonal)
    denom = float(np.var(seasonal + remainder))
    return 0.0 if denom == 0 else max(0.0, 1.0 - float(np.var(remainder)) / denom)


def kpss_ndiffs(x: np.ndarray, alpha: float, max_d: int) -> tuple[int, list[float]]:
    """Number of first differences until the KPSS level test stops rejecting; p-values seen."""
    from statsmodels.tsa.stattools import kpss

    p_values: list[float] = []
    for d in range(max_d + 1):
        if len(x) < 8 or np.ptp(x) == 0:
            return d, p_values
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # InterpolationWarning: p-value outside the table
            p_value = float(kpss(x, regression="c", nlags="auto")[1])
        p_values.append(p_value)
        if p_value >= alpha or d == max_d:
            return d, p_values
        x = np.diff(x)
    return max_d, p_values


def _poly(coefs: np.ndarray, step: int, sign: float) -> np.ndarray:
    """Lag polynomial 1 + sign*(c1 B^step + c2 B^(2 step) + ...) as an array of coefficients."""
    out = np.zeros(step * len(coefs) + 1)
    out[0] = 1.0
    out[step::step] = sign * np.asarray(coefs)
    return out


def _outside_unit_circle(poly: np.ndarray, margin: float = 1.001) -> bool:
    poly = np.trim_zeros(poly, "b")
    return len(poly) <= 1 or bool(np.all(np.abs(np.roots(poly[::-1])) > margin))


def css_fit(
    w: np.ndarray,
    wx: np.ndarray | None,
    c: tuple[int, int, int, int],
    constant: bool,
    n_drop: int,
    fast: bool = True,
) -> tuple[float, np.ndarray]:
    """Conditional-sum-of-squares fit of ARMA(p,q)(P,Q)[12] to the differenced series ``w``
    (gap-free) with optional constant and regressor ``wx``; returns (AICc, AR/MA coefficients in
    SARIMAX order ar, ma, seasonal ar, seasonal ma). The first ``n_drop`` residuals are discarded
    for every candidate, so AICc values are comparable. Non-stationary or non-invertible
    solutions are rejected.

    ``fast`` (the default) gives MINPACK an explicit Jacobian, ``CssProblem.jacobian``, that is bit
    for bit scipy's forward difference, from cheaper residuals (docs/decisions/0183); ``fast=False``
    is the reference path: scipy's own finite differences over ``CssProblem.reference_residuals``."""
    problem = CssProblem(w, wx, c, constant, n_drop)
    theta0 = np.concatenate([problem.beta0, np.zeros(sum(c))])
    if not len(theta0):
        theta = theta0
    elif fast and problem.fast:
        theta = _minpack_lm(problem.residuals, theta0, problem.jacobian)
    else:
        theta = _minpack_lm(problem.reference_residuals, theta0)
    _, ar, ma = problem.split(theta)
    if not (_outside_unit_circle(ar) and _outside_unit_circle(ma)):
        raise ArimaFitError("non-stationary or non-invertible CSS solution")
    e = problem.reference_residuals(theta)
    n = len(e)
    sse = float(e @ e)
    if not np.isfinite(sse) or sse <= n * (1e-10 * max(1.0, float(np.abs(w).max()))) ** 2:
        raise ArimaFitError(f"CSS residual sum of squares is {sse:.3g}: no noise left to model (a constant series?)")
    k = len(theta) + 1
    if n - k - 1 <= 0:
        raise ArimaFitError(f"{k} parameters for {n} residuals")
    llf = -0.5 * n * (math.log(2 * math.pi * sse / n) + 1)
    aicc = -2 * llf + 2 * k + 2 * k * (k + 1) / (n - k - 1)
    return aicc, theta


#: scipy's relative step of a forward difference (``approx_derivative(method='2-point')``)
FORWARD_STEP = np.finfo(np.float64).eps ** 0.5


class CssProblem:
    """The CSS residuals of one candidate, and their forward-difference Jacobian.

    ``reference_residuals`` is the plain form: lag polynomials by ``np.convolve`` and
    ``scipy.signal.lfilter``. ``residuals`` and ``jacobian`` give the same bits, cheaper:

    - With p < 12 and q < 12 every coefficient of (1 - phi(B))(1 - Phi(B^12)) is one product
      a_i * b_m (i + 12 m distinct), which ``np.convolve`` sums with exact zeros from a +0.0
      start: ``0.0 + a_i * b_m``. Otherwise (or with a non-finite parameter, where 0 * inf
      matters) ``fast`` is false and only the reference path is used.
    - With an MA part, ``lfilter`` runs its direct form II transposed loop (``_linear_filter``,
      b and a zero-padded to one length, divided by a[0] = 1); ``arma_filter`` repeats it
      operation for operation, for all rows at once. A pure AR filter is ``lfilter``'s
      ``np.convolve(b, x)``, called as it is.
    - ``jacobian`` is ``approx_derivative(method='2-point')`` without bounds: step
      ``FORWARD_STEP * sign(x) * max(1, |x|)`` (sign +1 at 0), ``dx = (x + h) - x``,
      column ``(f(x + h e_i) - f(x)) / dx_i``, the inert last parameter's column included."""

    def __init__(
        self, w: np.ndarray, wx: np.ndarray | None, c: tuple[int, int, int, int], constant: bool, n_drop: int
    ) -> None:
        self.w, self.orders, self.n_drop = w, c, n_drop
        self.n_reg = int(constant) + int(wx is not None)
        columns = [a for a in ((np.ones_like(w) if constant else None), wx) if a is not None]
        self.design = np.column_stack(columns) if self.n_reg else None
        self.beta0 = np.linalg.lstsq(self.design, w, rcond=None)[0] if self.n_reg else np.zeros(0)
        p, q, P, Q = c
        self.fast = p < SEASON and q < SEASON
        self.width = max(p + SEASON * P, q + SEASON * Q) + 1
        k = self.n_reg + p + q + P + Q + 1
        self.diagonal = (np.arange(1, k + 1), np.arange(k))

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p, q, P, _ = self.orders
        beta, rest = theta[: self.n_reg], theta[self.n_reg :]
        phi, th, sphi, sth = np.split(rest, np.cumsum([p, q, P]))
        ar = np.convolve(_poly(phi, 1, -1.0), _poly(sphi, SEASON, -1.0))
        ma = np.convolve(_poly(th, 1, 1.0), _poly(sth, SEASON, 1.0))
        return beta, ar, ma

    def reference_residuals(self, theta: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        beta, ar, ma = self.split(theta)
        u = self.w - self.design @ beta if self.n_reg else self.w
        return lfilter(ar, ma, u)[self.n_drop :]

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        if not np.isfinite(theta).all():
            return self.reference_residuals(theta)
        return self._residual_rows(theta[None, :], 1)[0]

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """The Jacobian of ``residuals(x[:-1])`` (the inert parameter last) by forward differences."""
        if not np.isfinite(x).all():
            from scipy.optimize._numdiff import approx_derivative

            return approx_derivative(lambda t: self.reference_residuals(t[:-1]), x, method="2-point")
        h = FORWARD_STEP * ((x >= 0).astype(float) * 2 - 1) * np.maximum(1.0, np.abs(x))
        dx = (x + h) - x
        rows = np.repeat(x[None, :], len(x) + 1, axis=0)
        rows[self.diagonal[0][: len(x)], self.diagonal[1][: len(x)]] = x + h
        f = self._residual_rows(rows[:, :-1], 1 + self.n_reg)
        return ((f[1:] - f[0]) / dx[:, None]).T

    def _residual_rows(self, thetas: np.ndarray, n_betas: int) -> np.ndarray:
        """Residuals for each row of parameters (bit for bit ``reference_residuals`` of the row);
        only the first ``n_betas`` rows may differ in the regression coefficients."""
        p, q, P, Q = self.orders
        n_reg, n = self.n_reg, len(self.w)
        u = np.empty((len(thetas), n))
        u[:] = self.w
        for r in range(n_betas if n_reg else 0):
            u[r] = self.w - self.design @ thetas[r, :n_reg]
        if n_betas > 1:
            u[n_betas:] = u[0]
        if q + Q == 0:
            ar = _lag_rows(thetas[:, n_reg : n_reg + p], thetas[:, n_reg + p :], -1.0)
            return np.stack([np.convolve(ar[r], u[r])[:n] for r in range(len(thetas))])[:, self.n_drop :]
        out = np.empty((len(thetas), n))
        _arma_filter()(np.ascontiguousarray(thetas[:, n_reg:]), p, q, P, Q, self.width, u, out)
        return out[:, self.n_drop :]


def _lag_rows(coefs: np.ndarray, seasonal: np.ndarray, sign: float) -> np.ndarray:
    """Per row, ``np.convolve(_poly(coefs, 1, sign), _poly(seasonal, SEASON, sign))``, bit for bit
    when coefs has fewer than 12 columns: each coefficient is then the single product a_i * b_m,
    which ``np.convolve`` adds to its +0.0 start."""
    rows, p, P = len(coefs), coefs.shape[1], seasonal.shape[1]
    a = np.ones((rows, p + 1))
    a[:, 1:] = sign * coefs
    b = np.ones((rows, P + 1))
    b[:, 1:] = sign * seasonal
    out = np.zeros((rows, p + SEASON * P + 1))
    where = (np.arange(p + 1)[:, None] + SEASON * np.arange(P + 1)[None, :]).ravel()
    out[:, where] = 0.0 + (a[:, :, None] * b[:, None, :]).reshape(rows, -1)
    return out


def _minpack_lm(
    residuals: Callable[[np.ndarray], np.ndarray],
    theta0: np.ndarray,
    jacobian: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Least squares by MINPACK's Levenberg-Marquardt (``least_squares(method='lm')``: faster than
    trf on these small unbounded problems, and trf ends elsewhere on MA terms near the unit circle),
    with one inert parameter last, whose Jacobian column is zero.

    The inert column is a workaround for a read past the Jacobian in scipy 1.17.1's C MINPACK:
    ``qrfac`` recomputes a downdated column norm as ``enorm(m - j, &a[(j+1) + lda*k])``, one element
    too many (the Fortran ``m - j`` with 1-based j). For the last column the extra element lies
    past the buffer: freed heap memory, whose content depends on what the process did before. The
    optimum then ended a few 1e-6 apart in two processes, or in two fits in one process (valgrind:
    "Invalid read of size 8 ... 0 bytes after a block" in enorm < qrfac < LMDER; issue 19 item 8,
    docs/decisions/0124). A zero column is never pivoted forward nor downdated, so it stays last,
    and the extra element read for the column before it is its zero: every read is inside the
    buffer and the result does not depend on the heap. The inert parameter stays 0.

    ``jacobian`` (of the padded parameters, the inert zero column last) replaces scipy's
    forward differences; it must give their bits (``CssProblem.jacobian``)."""
    from scipy.optimize import least_squares

    def padded(theta: np.ndarray) -> np.ndarray:
        return residuals(theta[:-1])

    start = np.append(theta0, 0.0)
    jac = "2-point" if jacobian is None else jacobian
    sol = least_squares(padded, start, jac=jac, method="lm", max_nfev=200 * len(theta0))
    return sol.x[:-1]


@functools.cache
def _arma_filter() -> Callable[..., None]:
    """``arma_filter(arma, p, q, P, Q, width, u, out)``: per row r, the CSS residuals of the ARMA
    parameters ``arma[r]`` (phi, theta, seasonal phi, seasonal theta) on ``u[r]``, bit for bit
    ``lfilter(ar, ma, u[r])`` of ``CssProblem.split``'s polynomials when p, q < 12 and q + Q > 0:
    the coefficients as ``_lag_rows`` builds them, then ``_linear_filter``'s direct form II
    transposed loop (b and a zero-padded to ``width``, divided by a[0] = 1), operation for
    operation. Numba, compiled once per machine into numba's cache, loaded once per process."""
    import numba

    # one function without closure variables: a jitted helper referenced from the closure made
    # every process miss numba's cache (a new index entry each time) and compile again
    @numba.njit(cache=True)
    def arma_filter(arma, p, q, P, Q, width, u, out):  # pragma: no cover - compiled
        b = np.empty(width)
        a = np.empty(width)
        z = np.empty(width - 1)
        for r in range(arma.shape[0]):
            for part in range(2):  # b: the AR polynomial (sign -1); a: the MA polynomial (sign +1)
                poly = b if part == 0 else a
                first, n, seasonal, n_seasonal, sign = (
                    (0, p, p + q, P, -1.0) if part == 0 else (p, q, p + q + P, Q, 1.0)
                )
                poly[:] = 0.0
                for i in range(n + 1):
                    c = 1.0 if i == 0 else sign * arma[r, first + i - 1]
                    for m in range(n_seasonal + 1):
                        s = 1.0 if m == 0 else sign * arma[r, seasonal + m - 1]
                        poly[i + 12 * m] = 0.0 + c * s
            a0 = a[0]
            for j in range(width):
                b[j] = b[j] / a0
                a[j] = a[j] / a0
            z[:] = 0.0
            for k in range(u.shape[1]):
                xk = u[r, k]
                yk = z[0] + b[0] * xk
                for j in range(width - 2):
                    z[j] = z[j + 1] + xk * b[j + 1] - yk * a[j + 1]
                z[width - 2] = xk * b[width - 1] - yk * a[width - 1]
                out[r, k] = yk

    return arma_filter


def _stepwise_moves(best: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The neighbours of a candidate (p, q, P, Q, k) in the stepwise search."""
    p, q, P, Q, k = best
    return [
        (p + 1, q, P, Q, k),
        (p - 1, q, P, Q, k),
        (p, q + 1, P, Q, k),
        (p, q - 1, P, Q, k),
        (p, q, P + 1, Q, k),
        (p, q, P - 1, Q, k),
        (p, q, P, Q + 1, k),
        (p, q, P, Q - 1, k),
        (p + 1, q + 1, P, Q, k),
        (p - 1, q - 1, P, Q, k),
        (p, q, P + 1, Q + 1, k),
        (p, q, P - 1, Q - 1, k),
        (p, q, P, Q, 1 - k),
    ]


@register
class Arima(Forecaster):
    """Automatic seasonal ARIMA; see the module docstring for the selection procedure."""

    name = "arima"
    traits = Traits(family="arima", complexity=4, min_obs=24, uses_exog=True)

    def __init__(
        self,
        max_p: int = 2,
        max_q: int = 2,
        max_P: int = 1,
        max_Q: int = 1,
        max_d: int = 1,
        max_D: int = 1,
        working_days: bool = False,
        log: bool | str = "auto",
        seasonal_strength_threshold: float = 0.64,
        kpss_alpha: float = 0.05,
        maxiter: int = 50,
        max_candidates: int = 16,
        estimation: str = "css",
        **params: Any,
    ) -> None:
        for key, value in (
            ("max_p", max_p),
            ("max_q", max_q),
            ("max_P", max_P),
            ("max_Q", max_Q),
            ("max_d", max_d),
            ("max_D", max_D),
        ):
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise ModelInputError(f"arima: {key} must be a non-negative integer; got {value!r}")
        if estimation not in ("css", "mle"):
            raise ModelInputError(f"arima: estimation must be 'css' or 'mle'; got {estimation!r}")
        if log not in (True, False, "auto"):
            raise ModelInputError(f"arima: log must be true, false or 'auto'; got {log!r}")
        super().__init__(
            max_p=int(max_p),
            max_q=int(max_q),
            max_P=int(max_P),
            max_Q=int(max_Q),
            max_d=int(max_d),
            max_D=min(int(max_D), 1),
            working_days=bool(working_days),
            log=log,
            seasonal_strength_threshold=float(seasonal_strength_threshold),
            kpss_alpha=float(kpss_alpha),
            maxiter=int(maxiter),
            max_candidates=int(max_candidates),
            estimation=estimation,
            **params,
        )

    # ------------------------------------------------------------------ fitting
    def _regressor(self, X: pd.DataFrame | None, where: str) -> np.ndarray | None:
        if not self.use_exog_:
            return None
        if X is None or "working_days" not in X.columns:
            raise ModelInputError(
                f"arima: fitted with the working-day regressor; {where} needs X with a 'working_days' column"
            )
        wd = X["working_days"].to_numpy(dtype=float)
        if not np.isfinite(wd).all() or (wd <= 0).any():
            raise ModelInputError(
                f"arima: working_days must be positive and finite in {where}; got {wd[~(wd > 0)][:3].tolist()}"
            )
        regressor = np.log(wd) if self.log_ else wd
        if where == "fit":
            # centred on the training mean: an uncentred log(working days) (~3.0 +/- 0.05) is nearly
            # collinear with the constant, and the CSS search then found huge offsetting coefficients
            # whose forecasts exploded on short series (seen on 24-month item series)
            self.exog_center_ = float(regressor.mean())
        return (regressor - self.exog_center_).reshape(-1, 1)

    def _model(
        self,
        endog: pd.Series,
        exog: np.ndarray | None,
        order: tuple[int, int, int],
        seasonal_order: tuple[int, int, int, int],
        trend: str,
        concentrate: bool,
    ):
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        return SARIMAX(
            np.asarray(endog, dtype=float),  # no date index: none built per forecast; same numbers
            exog=exog,
            order=order,
            seasonal_order=seasonal_order,
            trend=trend,
            simple_differencing=False,
            concentrate_scale=concentrate,
        )

    def _state_space(
        self,
        endog: pd.Series,
        exog: np.ndarray | None,
        order: tuple[int, int, int],
        seasonal_order: tuple[int, int, int, int],
        trend: str,
        css: np.ndarray,
    ):
        """SARIMAX results for a specification, from its CSS estimates (``estimation='css'``) or
        refined by exact maximum likelihood (``'mle'``, L-BFGS from the CSS values). The innovation
        variance is the concentrated (profile) estimate of the exact diffuse likelihood.
        Returns the results and the full parameter vector (sigma2 last)."""
        n_const = int(trend == "c")
        n_exog = 0 if exog is None else exog.shape[1]
        n_arma = len(css) - n_const - n_exog
        arma = css[n_const + n_exog :]
        p, q, P = order[0], order[2], seasonal_order[0]
        ar_full = np.convolve(_poly(arma[:p], 1, -1.0), _poly(arma[p + q : p + q + P], SEASON, -1.0))
        # SARIMAX's constant sits in the ARMA equation: c = mean of the differenced series x AR(1)
        start = np.concatenate([css[:n_const] * ar_full.sum(), css[n_const : n_const + n_exog], arma])
        assert len(start) == n_const + n_exog + n_arma
        concentrated = self._model(endog, exog, order, seasonal_order, trend, True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.params["estimation"] == "mle" and concentrated.k_params:
                start = np.asarray(
                    concentrated.fit(
                        start_params=start, disp=False, method="lbfgs", maxiter=self.params["maxiter"]
                    ).params,
                    dtype=float,
                )
            probe = concentrated.filter(start, cov_type="none")
        if not np.isfinite(probe.llf):
            raise ArimaFitError(f"non-finite log-likelihood {probe.llf}")
        full = np.concatenate([start, [float(probe.scale)]])
        model = self._model(endog, exog, order, seasonal_order, trend, False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = model.filter(full, cov_type="none")
        self.aicc_ = float(probe.aicc)
        return result, full

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        started = time.perf_counter()
        endog, exog, filled, searched = self._prepared(y, X)
        n = len(y)
        d, D = self._differences(filled, n)
        tried, errors = self._search(searched, exog, d, D, n)
        result, full_params, order, seasonal_order, trend = self._chosen(endog, exog, tried, d, D)
        self.order_, self.seasonal_order_, self.trend_ = order, seasonal_order, trend
        self.endog_, self.exog_ = endog, exog
        self.param_values_ = full_params
        self.search_aicc_ = {
            f"({c[0]},{d},{c[1]})({c[2]},{D},{c[3]})" + (" c" if c[4] else ""): round(v[0], 3)
            for c, v in sorted(tried.items(), key=lambda kv: kv[1][0])
        }
        self.n_failed_candidates_ = len(errors)
        self._result_cache = result
        self.fit_seconds_ = time.perf_counter() - started

    def _prepared(self, y: pd.Series, X: pd.DataFrame | None) -> tuple[pd.Series, Any, pd.Series, np.ndarray]:
        """The series to fit (logs or levels), the regressor, the gap-filled series net of the
        working-day effect (for the tests of differencing) and the one the CSS search reads."""
        p_ = self.params
        positive = bool((y.dropna() > 0).all()) and not self.signed_
        if p_["log"] is True and not positive:
            raise ModelInputError("arima: log=true needs a strictly positive series")
        self.log_ = positive if p_["log"] == "auto" else bool(p_["log"])
        if self.signed_:
            self._signed_form(f"{self.name} on levels, not logs")
        self.use_exog_ = bool(p_["working_days"] and X is not None)
        exog = self._regressor(X, "fit")
        endog = (np.log(y) if self.log_ else y).rename("y")
        endog.index.freq = "MS"
        filled = seasonal_interpolate(y, signed=self.signed_)
        filled = np.log(filled) if self.log_ else filled
        searched = filled.to_numpy()  # the CSS search fits the regressor itself: the series WITH its effect
        if exog is not None:  # test the series net of the working-day effect (by least squares on the filled series)
            design = np.column_stack([np.ones(len(exog)), exog])
            beta = np.linalg.lstsq(design, filled.to_numpy(), rcond=None)[0]
            filled = filled - exog[:, 0] * beta[1]

        return endog, exog, filled, searched

    def _differences(self, filled: pd.Series, n: int) -> tuple[int, int]:
        """(d, D): the KPSS tests' differences and the seasonal difference when the seasonality is strong."""
        p_ = self.params
        self.seasonal_strength_ = seasonal_strength(filled) if n >= 2 * SEASON else float("nan")
        D = int(n >= 3 * SEASON and p_["max_D"] >= 1 and self.seasonal_strength_ > p_["seasonal_strength_threshold"])
        x = filled.to_numpy()
        if D:
            x = x[SEASON:] - x[:-SEASON]
        d, self.kpss_p_values_ = kpss_ndiffs(x, p_["kpss_alpha"], p_["max_d"])
        return d, D

    def _search(
        self, searched: np.ndarray, exog: Any, d: int, D: int, n: int
    ) -> tuple[dict[tuple[int, ...], tuple[float, np.ndarray]], dict[tuple[int, ...], str]]:
        """The stepwise search by CSS AICc: candidate -> (AICc, parameters), and the candidates
        that failed with why."""
        p_ = self.params
        # the constant: always a mean when d + D = 0, a drift the search may add or drop when
        # d + D = 1, never with d + D = 2 (a quadratic trend)
        min_constant, max_constant = {0: (1, 1), 1: (0, 1)}.get(d + D, (0, 0))
        max_P = p_["max_P"] if n >= 2 * SEASON else 0
        max_Q = p_["max_Q"] if n >= 2 * SEASON else 0

        # a candidate is (p, q, P, Q, k): k = 1 with the constant; as in Hyndman & Khandakar's
        # stepwise search, adding or dropping the drift is one of the moves
        def clip(c: tuple[int, ...]) -> tuple[int, ...]:
            return (
                min(c[0], p_["max_p"]),
                min(c[1], p_["max_q"]),
                min(c[2], max_P),
                min(c[3], max_Q),
                min(max(c[4], min_constant), max_constant),
            )

        w = searched.copy()
        wx = None if exog is None else exog[:, 0].copy()
        for _ in range(D):
            w = w[SEASON:] - w[:-SEASON]
            wx = None if wx is None else wx[SEASON:] - wx[:-SEASON]
        for _ in range(d):
            w = np.diff(w)
            wx = None if wx is None else np.diff(wx)
        n_drop = p_["max_p"] + SEASON * max_P  # same conditioning for every candidate: comparable AICc
        if len(w) - n_drop < 8:
            raise ArimaFitError(f"arima: only {len(w)} months left after differencing (d={d}, D={D}); too few to fit")

        tried: dict[tuple[int, ...], tuple[float, np.ndarray]] = {}
        errors: dict[tuple[int, ...], str] = {}

        def evaluate(c: tuple[int, ...]) -> None:
            if c in tried or c in errors or len(tried) + len(errors) >= p_["max_candidates"]:
                return
            try:
                tried[c] = css_fit(w, wx, c[:4], bool(c[4]), n_drop)
            except Exception as exc:  # a candidate that cannot be fitted is skipped, and recorded
                errors[c] = f"{type(exc).__name__}: {exc}"

        for c in dict.fromkeys(
            clip(c) for c in ((2, 2, 1, 1, 1), (0, 0, 0, 0, 1), (1, 0, 1, 0, 1), (0, 1, 0, 1, 1), (0, 0, 0, 0, 0))
        ):
            evaluate(c)
        if not tried:
            raise ArimaFitError(
                f"arima: every starting candidate failed (d={d}, D={D}): "
                + "; ".join(f"{c}: {e}" for c, e in errors.items())
            )
        best = min(tried, key=lambda c: tried[c][0])
        while len(tried) + len(errors) < p_["max_candidates"]:
            moves = _stepwise_moves(best)
            for c in moves:
                if min(c) >= 0 and clip(c) == c:
                    evaluate(c)
            new_best = min(tried, key=lambda c: tried[c][0])
            if new_best == best:
                break
            best = new_best

        return tried, errors

    def _chosen(self, endog: pd.Series, exog: Any, tried: dict, d: int, D: int) -> tuple:
        """The best candidate that fits in state-space form on the undifferenced series with its
        gaps: (result, parameters, order, seasonal order, trend)."""
        ranked = sorted(tried, key=lambda c: tried[c][0])
        final_errors: list[str] = []
        for c in ranked:
            order, seasonal_order = (c[0], d, c[1]), (c[2], D, c[3], SEASON)
            trend = "c" if c[4] else "n"
            try:
                result, full_params = self._state_space(endog, exog, order, seasonal_order, trend, tried[c][1])
            except Exception as exc:
                final_errors.append(f"{order}{seasonal_order}: {type(exc).__name__}: {exc}")
                continue
            break
        else:
            raise ArimaFitError("arima: no candidate could be fitted on the full series: " + "; ".join(final_errors))

        return result, full_params, order, seasonal_order, trend

    def _results(self):
        """The statsmodels results of the chosen model, rebuilt by one filter pass after unpickling."""
        if getattr(self, "_result_cache", None) is None:
            model = self._model(self.endog_, self.exog_, self.order_, self.seasonal_order_, self.trend_, False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._result_cache = model.filter(self.param_values_, cov_type="none")
        return self._result_cache

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_result_cache"] = None
        return state

    # --------------------------------------------------------------- forecasting
    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        reg = self._regressor(X_future, "predict")
        key = (h, None if reg is None else np.asarray(reg, dtype=float).tobytes())
        return self._memoised(key, lambda: self._predict_uncached(h, reg))

    def _predict_uncached(self, h: int, reg: np.ndarray | None) -> dict[str, np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = self._results().get_forecast(h, exog=reg)
        mu = np.asarray(fc.predicted_mean, dtype=float)
        sd = np.sqrt(np.maximum(np.asarray(fc.var_pred_mean, dtype=float), 0.0))
        out: dict[str, np.ndarray] = {"forecast": np.exp(mu + sd**2 / 2) if self.log_ else mu}
        for level, z in Z.items():
            lo, hi = mu - z * sd, mu + z * sd
            out[f"lo_{level}"], out[f"hi_{level}"] = (np.exp(lo), np.exp(hi)) if self.log_ else (lo, hi)
        return out

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        """Joint draws from the state-space model anchored at the end of the sample (what
        ``simulate(anchor='end', repetitions=n)`` does, vectorised over paths: the statsmodels
        call loops over repetitions and takes seconds): the state of the first forecast month is
        drawn from its predictive N(a, P), then propagated with the model's transition and
        shocks; exp on the log scale."""
        res = self._results()
        model = res.model

        def matrix(name: str) -> np.ndarray:
            value = np.asarray(model[name], dtype=float)
            return (
                value[..., 0] if value.ndim == 3 or (name.startswith("state_intercept") and value.ndim == 2) else value
            )

        design, transition = matrix("design")[0], matrix("transition")
        selection, state_cov = matrix("selection"), matrix("state_cov")
        state_intercept = matrix("state_intercept").reshape(-1)
        obs_intercept = np.zeros(h)
        reg = self._regressor(X_future, "sample_paths")
        if reg is not None:
            names = model.param_names
            beta = np.array([self.param_values_[names.index(nm)] for nm in model.exog_names])
            obs_intercept = reg @ beta
        mean = np.asarray(res.predicted_state[:, -1], dtype=float)
        cov = np.asarray(res.predicted_state_cov[:, :, -1], dtype=float)
        state = mean + rng.standard_normal((n_paths, len(mean))) @ _symmetric_sqrt(cov)
        shocks = rng.standard_normal((h, n_paths, len(state_cov))) @ _symmetric_sqrt(state_cov)
        paths = np.empty((n_paths, h))
        for k in range(h):
            paths[:, k] = obs_intercept[k] + state @ design
            state = state_intercept + state @ transition.T + shocks[k] @ selection.T
        return np.exp(paths) if self.log_ else paths

    def describe(self) -> dict[str, Any]:
        p, d, q = self.order_
        P, D, Q, m = self.seasonal_order_
        return {
            "order": list(self.order_),
            "seasonal_order": list(self.seasonal_order_),
            "spec": f"ARIMA({p},{d},{q})({P},{D},{Q})[{m}]" + (" with constant" if self.trend_ == "c" else ""),
            "log": self.log_,
            "aicc": self.aicc_,
            "working_days": self.use_exog_,
            "seasonal_strength": None if math.isnan(self.seasonal_strength_) else round(self.seasonal_strength_, 4),
            "kpss_p_values": [round(v, 4) for v in self.kpss_p_values_],
            "candidates": self.search_aicc_,
            "failed_candidates": self.n_failed_candidates_,
            "fit_seconds": round(self.fit_seconds_, 3),
        }


#: eigenvalues of a covariance below this share of the largest are rounding, set to zero
ROUNDING_EIGENVALUE = 1e-12


def _symmetric_sqrt(cov: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance matrix (negative rounding clipped to 0), for
    draws ``z @ root``. Unlike the eigenvectors that ``multivariate_normal(method='eigh')`` multiplies
    the draws by, it is unique: where eigenvalues repeat (a state-space model's predicted state
    covariance has many near-zero ones) the eigenvectors are any rotation of that subspace, and a
    difference of 1e-15 in the matrix (another BLAS thread count) rotated every draw, moving the
    2025 total's 80% bounds by up to 10.6 bn between two runs (issue 19 item 8)."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    # eigenvalues within rounding of zero are zero: the square root would turn a 1e-15 difference
    # between two runs into 3e-8 (seen as a 2e-9 relative change of a 95% bound)
    values[values <= ROUNDING_EIGENVALUE * max(values.max(), 0.0)] = 0.0
    return (vectors * np.sqrt(values)) @ vectors.T
