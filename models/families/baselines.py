"""Baseline forecasters: naive, seasonal naive, ETS and Theta.

``naive`` and ``seasonal_naive`` are the yardsticks: closed-form, hand-computable, and
tolerant of missing months. ``ets`` and ``theta`` wrap statsmodels' ``ETSModel`` and
``ThetaModel``; neither accepts NaN, so missing months are filled for them only, inside the
model, by :func:`seasonal_interpolate` (the data itself is never filled).

Conventions shared by every model here:

* innovations of the random-walk baselines are zero-mean by assumption, so their scale is the
  root mean square of the (seasonal) differences, i.e. the standard deviation about zero
  (the residual scale of a random walk without drift);
* bounds are Gaussian ``forecast +/- z * sd`` for the random-walk baselines, by simulation
  for ETS and from the model's own intervals for Theta.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from models.core.base import LEVELS, Forecaster, ModelInputError, Traits, Z
from models.core.registry import register

SEASON = 12
#: two-sided normal quantiles for the 80% and 95% intervals


def _gaussian_bounds(mean: np.ndarray, sd: np.ndarray) -> dict[str, np.ndarray]:
    out = {"forecast": np.asarray(mean, dtype=float)}
    for level, z in Z.items():
        out[f"lo_{level}"] = mean - z * sd
        out[f"hi_{level}"] = mean + z * sd
    return out


def _quantile_bounds(mean: np.ndarray, draws: np.ndarray) -> dict[str, np.ndarray]:
    """Bounds from draws of shape (n_draws, h): the central 80% and 95% quantile ranges."""
    out = {"forecast": np.asarray(mean, dtype=float)}
    for level in LEVELS:
        tail = (100 - level) / 200
        out[f"lo_{level}"] = np.quantile(draws, tail, axis=0)
        out[f"hi_{level}"] = np.quantile(draws, 1 - tail, axis=0)
    return out


def seasonal_interpolate(y: pd.Series, period: int = SEASON, iterations: int = 3, *, signed: bool = False) -> pd.Series:
    """Fill NaN months of a regular monthly series, keeping observed values untouched.

    Start from linear interpolation in time; then repeat: estimate the seasonal profile as the
    calendar-month mean of the series minus its centred 2x12 moving average, linearly
    interpolate the seasonally adjusted series across the gaps and add the profile back.
    For strictly positive series the work is done on logs (multiplicative seasonality), unless
    ``signed`` (a series that may be negative: the additive form).
    Used only inside models that cannot take NaN (ETS, Theta, the ARIMA order tests).
    """
    missing = y.isna()
    if not missing.any():
        return y.copy()
    positive = bool((y.dropna() > 0).all()) and not signed
    work = np.log(y) if positive else y.copy()
    filled = work.interpolate(method="linear", limit_direction="both")
    if len(work) >= 2 * period:
        position = np.arange(len(work)) % period
        for _ in range(iterations):
            trend = filled.rolling(period, center=True, min_periods=period).mean()
            trend = trend.rolling(2, min_periods=1).mean().shift(-1).interpolate(limit_direction="both")
            detrended = (work - trend).to_numpy()
            profile = np.array(
                [
                    np.nanmean(detrended[position == k]) if np.isfinite(detrended[position == k]).any() else 0.0
                    for k in range(period)
                ]
            )
            profile = np.nan_to_num(profile - profile.mean())
            seasonal = pd.Series(profile[position], index=work.index)
            adjusted = (work - seasonal).interpolate(method="linear", limit_direction="both")
            filled = work.where(~missing, adjusted + seasonal)
    out = np.exp(filled) if positive else filled
    return out.where(missing, y)


# --------------------------------------------------------------------------- naive
@register
class Naive(Forecaster):
    """Random walk: every forecast month equals the last observed value.

    Innovation scale: ``sigma^2 = mean((y_t - y_s)^2 / (t - s))`` over consecutive observed
    months s < t (for a gap-free series, the mean squared 1-step difference); the k-step
    forecast has sd ``sigma * sqrt(k)``. Paths are the random walk with N(0, sigma^2) steps.
    Needs two observed months (one difference) to measure its uncertainty.
    """

    name = "naive"
    traits = Traits(family="baseline", complexity=0, min_obs=2)

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        obs = y.dropna()
        steps = np.diff(np.arange(len(y))[y.notna().to_numpy()]).astype(float)
        diffs = np.diff(obs.to_numpy())
        self.last_value_ = float(obs.iloc[-1])
        self.sigma_ = float(math.sqrt(np.mean(diffs**2 / steps)))

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        sd = self.sigma_ * np.sqrt(np.arange(1, h + 1))
        return _gaussian_bounds(np.full(h, self.last_value_), sd)

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        return self.last_value_ + np.cumsum(rng.normal(0.0, self.sigma_, size=(n_paths, h)), axis=1)

    def describe(self) -> dict[str, Any]:
        return {"sigma": self.sigma_}


# ------------------------------------------------------------------ seasonal naive
@register
class SeasonalNaive(Forecaster):
    """Seasonal random walk with period 12: ``y_t = y_{t-12} + e_t``.

    The forecast of a month is the most recent observed value of the same calendar month
    (normally last year's). Missing months are handled by the model itself: an observed
    ``y_t`` whose nearest observed same-month value is ``j`` years back contributes
    ``(y_t - y_{t-12j})^2 / j`` to ``sigma^2`` (its variance is ``j sigma^2``), and a forecast
    anchored ``j`` years back has sd ``sigma * sqrt(j)`` -- ``sqrt(ceil(k/12))`` for step k
    when nothing is missing, as in Hyndman & Athanasopoulos (FPP3, 5.5).

    Sample paths accumulate one seasonal step per year: step s (s = 1 for the first
    year-ahead block, 2 for the second, ...) adds ``sigma * (sqrt(rho) c_s + sqrt(1-rho) u_{s,m})``
    to month k, where ``c_s`` is one N(0,1) shock shared by every month of the block and
    ``u_{s,m}`` is an N(0,1) shock of the target's calendar month m (shared by month k and k+12). ``rho`` (param ``block_correlation``, default
    1.0) is the correlation of the forecast errors within a year-ahead block; the marginal sd
    of every month is the formula's whatever ``rho``. The default 1.0 treats a year's twelve
    seasonal differences as moving together (a year of slump or boom), which is what the
    formula's constant variance within a block implies for annual totals; 0.0 gives the
    textbook independent calendar-month random walks (far narrower annual intervals).
    """

    name = "seasonal_naive"
    traits = Traits(family="baseline", complexity=1, min_obs=SEASON)

    def __init__(self, block_correlation: float = 1.0, **params: Any) -> None:
        if not 0.0 <= float(block_correlation) <= 1.0:
            raise ModelInputError(f"seasonal_naive: block_correlation must be in [0, 1]; got {block_correlation!r}")
        super().__init__(block_correlation=float(block_correlation), **params)

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        values = y.to_numpy()
        observed = ~np.isnan(values)
        n = len(values)
        # anchor per calendar position (index mod 12): position in y of its last observation
        anchors: dict[int, int] = {}
        contributions: list[float] = []
        for t in range(n):
            if not observed[t]:
                continue
            back = t - SEASON
            while back >= 0 and not observed[back]:
                back -= SEASON
            if back >= 0:
                years = (t - back) // SEASON
                contributions.append((values[t] - values[back]) ** 2 / years)
            anchors[t % SEASON] = t
        if len(anchors) < SEASON:
            absent = sorted(
                {(y.index[0] + pd.DateOffset(months=k)).month for k in range(SEASON)}
                - {y.index[t].month for t in anchors.values()}
            )
            raise ModelInputError(
                "seasonal_naive: no observation for calendar month(s) "
                f"{', '.join(f'{m:02d}' for m in absent)} in the history"
            )
        self.sigma_basis_ = "seasonal differences"
        if not contributions:
            # exactly one year of history (e.g. a series that starts last January): no seasonal
            # difference to measure. The point forecast is still last year's month; the spread
            # is proxied by the month-to-month changes (which carry the seasonal swings too, so
            # the intervals err wide), and the fallback is recorded in describe().
            steps = np.diff(values)
            steps = steps[~np.isnan(steps)]
            if not len(steps):
                raise ModelInputError(
                    "seasonal_naive: no pair of consecutive or 12-apart observed months to measure the spread"
                )
            contributions = list(steps**2)
            self.sigma_basis_ = "month-to-month changes (no pair of observed months 12 apart)"
        self.n_ = n
        self.anchor_pos_ = anchors
        self.anchor_value_ = {k: float(values[t]) for k, t in anchors.items()}
        self.sigma_ = float(math.sqrt(np.mean(contributions)))

    def _steps(self, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per forecast step k=1..h: anchor value, years back to the anchor j_k, and the
        block index b_k = ceil(k/12) of the target month."""
        target = np.arange(self.n_, self.n_ + h)
        anchor_pos = np.array([self.anchor_pos_[t % SEASON] for t in target])
        values = np.array([self.anchor_value_[t % SEASON] for t in target])
        years = (target - anchor_pos) // SEASON
        blocks = (np.arange(1, h + 1) + SEASON - 1) // SEASON
        return values, years, blocks

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        values, years, _ = self._steps(h)
        return _gaussian_bounds(values, self.sigma_ * np.sqrt(years))

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        values, years, blocks = self._steps(h)
        rho = self.params["block_correlation"]
        first = int((blocks - years + 1).min())  # earliest seasonal step (< 1 when an anchor is older than a year)
        last = int(blocks.max())
        n_steps = last - first + 1
        common = rng.standard_normal((n_paths, n_steps))
        # a month's own shock belongs to its calendar month: month k and month k+12 share step s's
        own = rng.standard_normal((n_paths, n_steps, SEASON))[:, :, (self.n_ + np.arange(h)) % SEASON]
        shocks = math.sqrt(rho) * common[:, :, None] + math.sqrt(1.0 - rho) * own
        step_index = np.arange(first, last + 1)[:, None]
        # month k takes the seasonal steps b_k - j_k + 1 .. b_k
        active = (step_index <= blocks[None, :]) & (step_index > (blocks - years)[None, :])
        return values + self.sigma_ * (shocks * active[None, :, :]).sum(axis=1)

    def describe(self) -> dict[str, Any]:
        return {
            "sigma": self.sigma_,
            "sigma_basis": self.sigma_basis_,
            "block_correlation": self.params["block_correlation"],
        }


# ----------------------------------------------------------------------------- ETS
def _ets_classes() -> tuple[type, type]:
    """statsmodels' ETSModel and ETSResults without the parameter covariance that
    ``ETSResults.__init__`` computes eagerly: a complex-step Hessian of the likelihood (about a
    quarter of a fit) that nothing here reads (bounds and paths come from ``simulate``, the
    description from ``aicc``). The covariance is still computed, the same way, on first access
    to ``cov_params_default`` / ``cov_params_approx``. Built on first use (statsmodels is imported
    lazily); module-level names (``_LeanETSModel``, ``_LeanETSResults``) so that fits pickle."""
    global _ETS_CLASSES
    if _ETS_CLASSES is None:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel, ETSResults, ETSResultsWrapper

        class _LeanETSResults(ETSResults):
            _deferring = False

            def __init__(self, model: Any, params: Any, results: Any) -> None:
                self._deferring = True  # ETSResults.__init__ reads cov_params_approx: skip it there
                try:
                    super().__init__(model, params, results)
                finally:
                    self._deferring = False

            @property
            def cov_params_approx(self) -> Any:
                return None if self._deferring else super().cov_params_approx

            @property
            def cov_params_default(self) -> Any:
                if self.__dict__.get("_cov_default") is None:
                    self._cov_default = self.cov_params_approx
                return self._cov_default

            @cov_params_default.setter
            def cov_params_default(self, value: Any) -> None:
                self._cov_default = value

        from statsmodels.tsa.exponential_smoothing.base import StateSpaceMLEModel

        from models.families.ets_fit import after_model

        class _LeanETSModel(ETSModel, after_model(StateSpaceMLEModel)):  # ETSModel.fit's super().fit
            @property
            def _res_classes(self) -> dict[str, tuple[type, type]]:
                return {"fit": (_LeanETSResults, ETSResultsWrapper)}

            def _loglike_internal(
                self,
                params: Any,
                yhat: Any,
                xhat: Any,
                is_fixed: Any = None,
                fixed_values: Any = None,
                use_beta_star: bool = False,
                use_gamma_star: bool = False,
            ) -> Any:
                """statsmodels 0.15's ``ETSModel._loglike_internal`` (the function the optimiser
                calls ~20 times per gradient) with numpy's reductions called directly:
                ``np.add.reduce(x) / n`` is what ``np.mean`` computes and ``np.add.reduce`` what
                ``np.sum`` does, without their Python dispatch. Same operations, same bits."""
                if np.iscomplexobj(params):
                    data = np.asarray(self.endog, dtype=complex)
                else:
                    data = self.endog
                if is_fixed is None:
                    is_fixed = np.zeros(self._k_params_internal, dtype=np.int64)
                    fixed_values = np.empty(self._k_params_internal, dtype=params.dtype)
                else:
                    is_fixed = np.ascontiguousarray(is_fixed, dtype=np.int64)
                self._smoothing_func(params, data, yhat, xhat, is_fixed, fixed_values, use_beta_star, use_gamma_star)
                res = self._residuals(yhat, data=data)
                logL = -self.nobs / 2 * (np.log(2 * np.pi * (np.add.reduce(res**2) / res.size)) + 1)
                if self.error == "mul":
                    yhat[yhat == 0] = 1e-32
                    logL -= np.add.reduce(np.log(np.abs(yhat)))
                return logL

        for cls in (_LeanETSResults, _LeanETSModel):
            cls.__module__, cls.__qualname__ = __name__, cls.__name__
        _ETS_CLASSES = (_LeanETSModel, _LeanETSResults)
    return _ETS_CLASSES


_ETS_CLASSES: tuple[type, type] | None = None


def __getattr__(name: str) -> type:  # unpickling a fitted ETS finds its classes here
    if name == "_LeanETSModel":
        return _ets_classes()[0]
    if name == "_LeanETSResults":
        return _ets_classes()[1]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@register
class ETS(Forecaster):
    """Exponential smoothing state-space model (statsmodels ``ETSModel``).

    Params: ``error`` ('add' | 'mul' | 'auto' = multiplicative when the series is strictly
    positive), ``trend`` ('add' | None), ``damped_trend`` (bool, default True), ``seasonal``
    ('add' | 'mul' | 'auto' as for error | None); seasonality (period 12) only with >= 24
    months of history. ``n_sim`` simulations (seeded by ``seed``) give the bounds;
    ``maxiter`` caps the optimiser. Missing months are filled inside the model by
    :func:`seasonal_interpolate` (ETS cannot take NaN).
    """

    name = "ets"
    traits = Traits(family="baseline", complexity=3, min_obs=10)

    def __init__(
        self,
        error: str = "auto",
        trend: str | None = "add",
        damped_trend: bool = True,
        seasonal: str | None = "auto",
        n_sim: int = 1000,
        seed: int = 0,
        maxiter: int = 200,
        **params: Any,
    ) -> None:
        for key, value, allowed in (
            ("error", error, ("add", "mul", "auto")),
            ("trend", trend, ("add", None)),
            ("seasonal", seasonal, ("add", "mul", "auto", None)),
        ):
            if value not in allowed:
                raise ModelInputError(f"ets: {key} must be one of {allowed}; got {value!r}")
        super().__init__(
            error=error,
            trend=trend,
            damped_trend=bool(damped_trend),
            seasonal=seasonal,
            n_sim=int(n_sim),
            seed=int(seed),
            maxiter=int(maxiter),
            **params,
        )

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        ETSModel = _ets_classes()[0]  # statsmodels' ETSModel, without the unread covariance

        filled = seasonal_interpolate(y, signed=self.signed_)
        positive = bool((filled > 0).all()) and not self.signed_
        if self.signed_:
            self._signed_form("ets with additive error and seasonality")
        error = self.params["error"]
        error = ("mul" if positive else "add") if error == "auto" else error
        seasonal = self.params["seasonal"]
        seasonal = ("mul" if positive else "add") if seasonal == "auto" else seasonal
        if len(filled) < 2 * SEASON:
            seasonal = None
        if not positive and "mul" in (error, seasonal):
            raise ModelInputError("ets: multiplicative error or seasonality needs a strictly positive series")
        trend = self.params["trend"]
        scale = float(filled.abs().mean()) or 1.0  # fit on a unit scale: USD 1e9 levels upset the optimiser
        # a plain array: statsmodels then builds no date index for each forecast and simulation
        # (pandas' month-start ranges and its wrapping were ~5% of a worker's CPU); same numbers
        endog = (filled / scale).to_numpy(dtype=float)
        model = ETSModel(
            endog,
            error=error,
            trend=trend,
            damped_trend=bool(trend and self.params["damped_trend"]),
            seasonal=seasonal,
            seasonal_periods=SEASON if seasonal else None,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.result_ = model.fit(disp=False, maxiter=self.params["maxiter"])
        if not np.isfinite(self.result_.llf):
            raise RuntimeError("ets: the likelihood is not finite after fitting")
        self.scale_ = scale
        self.spec_ = {
            "error": error,
            "trend": trend,
            "damped_trend": bool(trend and self.params["damped_trend"]),
            "seasonal": seasonal,
            "n_filled": int(y.isna().sum()),
        }

    def _simulate(self, h: int, n: int, seed: int | np.random.Generator) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sims = self.result_.simulate(nsimulations=h, anchor="end", repetitions=n, rng=np.random.default_rng(seed))
        return np.asarray(sims, dtype=float).reshape(h, n).T * self.scale_

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        return self._memoised(h, lambda: self._predict_uncached(h))  # no regressor, seeded draws

    def _predict_uncached(self, h: int) -> dict[str, np.ndarray]:
        mean = np.asarray(self.result_.forecast(h), dtype=float) * self.scale_
        return _quantile_bounds(mean, self._simulate(h, self.params["n_sim"], self.params["seed"]))

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        return self._simulate(h, n_paths, rng)

    def describe(self) -> dict[str, Any]:
        return {**self.spec_, "aicc": float(self.result_.aicc)}


def _ima11_css_sigma2(y: np.ndarray) -> float:
    """Innovation variance of ARIMA(0,1,1) with constant by conditional sum of squares.

    d_t = c + e_t + theta e_{t-1}, c = mean(d), theta on a 0.005 grid in (-0.995, 0.995); the
    recursion runs over time once, vectorised over every candidate theta.
    """
    d = np.diff(y)
    d = d - d.mean()
    thetas = np.linspace(-0.995, 0.995, 399)
    e_prev = np.zeros_like(thetas)
    sse = np.zeros_like(thetas)
    for value in d:
        e = value - thetas * e_prev
        sse += e * e
        e_prev = e
    n = max(len(d) - 2, 1)  # two estimated parameters: c and theta
    return float(sse.min() / n)


def _theta_fit(model: Any) -> Any:
    """``ThetaModel.fit()`` (its default two-step estimate: OLS slope b0, then an SES) with the SES
    results from the Kalman filter alone: statsmodels' ``fit`` also runs the Kalman smoother and
    builds the parameter covariance, about half the time of a Theta fit, and the Theta results read
    only the SES's alpha and one-step forecast, which the filter gives bit for bit the same. The
    same statsmodels calls as ``ThetaModel.fit`` (statsmodels 0.15) otherwise; ``use_test`` is off
    here, so no seasonality test runs."""
    from statsmodels.tsa.forecasting.theta import ThetaModelResults
    from statsmodels.tsa.statespace.exponential_smoothing import ExponentialSmoothing
    from statsmodels.tsa.tsatools import add_trend

    y, seasonal = model._deseasonalize_data()
    ct = add_trend(y, "ct", prepend=True)[:, :2]
    ct[:, 1] -= 1
    _, b0 = np.linalg.lstsq(ct, y, rcond=None)[0]
    ses = ExponentialSmoothing(y, initial_level=y[0], initialization_method="known")
    res = ses.filter(ses.fit(disp=False, return_params=True), cov_type="none")
    return ThetaModelResults(b0, res.params[0], None, res.forecast(1), seasonal, False, model)


# --------------------------------------------------------------------------- Theta
@register
class Theta(Forecaster):
    """Theta method (statsmodels ``ThetaModel``, Hyndman & Billah's SES-with-drift form).

    Deseasonalised with period 12 (multiplicative when the series is strictly positive,
    additive otherwise) when there are >= 24 months. Bounds are the model's own
    ``prediction_intervals``. Paths (an approximation: statsmodels offers no simulation):
    Gaussian draws whose marginal sd at step k is the one implied by the model's 95% interval,
    joined by a random-walk structure -- statsmodels' forecast error variance is
    ``v_k = sigma^2 (1 + (k-1)(1 + (alpha-1)^2))``, so ``W_k = sum_{i<=k} sqrt(v_i - v_{i-1}) z_i`` and
    the path is ``mean_k + sd_k * W_k / sqrt(v_k)`` (correlation sqrt(v_j / v_k) for j < k).
    Missing months are filled inside the model by :func:`seasonal_interpolate`.
    """

    name = "theta"
    traits = Traits(family="baseline", complexity=2, min_obs=4)

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        from statsmodels.tsa.forecasting.theta import ThetaModel

        self._bands = (None, None)  # _mean_sd's memo belongs to the previous fit
        filled = seasonal_interpolate(y, signed=self.signed_)
        positive = bool((filled > 0).all()) and not self.signed_
        if self.signed_:
            self._signed_form("theta with additive deseasonalisation")
        seasonal = len(filled) >= 2 * SEASON
        scale = float(filled.abs().mean()) or 1.0
        endog = (filled / scale).rename("y")
        endog.index.freq = "MS"
        model = ThetaModel(
            endog,
            period=SEASON,
            deseasonalize=seasonal,
            use_test=False,
            method="multiplicative" if positive else "additive",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.result_ = _theta_fit(model)
        # statsmodels estimates sigma^2 by an exact-likelihood SARIMAX(0,1,1)+c fit (seconds per series
        # here); the conditional-sum-of-squares estimate of the same model is equivalent for our use and
        # ~100x faster. Set it on the results so prediction_intervals uses it.
        self.result_._sigma2 = _ima11_css_sigma2(np.asarray(self.result_.model._y, dtype=float))
        self.sigma2_ = float(self.result_.sigma2)
        self.scale_ = scale
        self.alpha_ = float(self.result_.params["alpha"])
        self.spec_ = {
            "deseasonalize": seasonal,
            "method": "multiplicative" if positive else "additive",
            "alpha": self.alpha_,
            "sigma2": self.sigma2_,
            "b0": float(self.result_.params["b0"]) * scale,
            "n_filled": int(y.isna().sum()),
        }

    def _mean_sd(self, h: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Forecast, the sd implied by the 95% interval, and the bounds; kept for the last h, as
        predict and sample_paths both ask. The bounds are statsmodels' ``prediction_intervals``
        (``forecast + sigma_h * norm.ppf(alpha / 2)``, sigma_h from its IMA variance), worked out
        here from one ``forecast`` call instead of one per interval: the same operations, the same
        bits."""
        if getattr(self, "_bands", (None,))[0] == h:
            return self._bands[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predictions = self.result_.forecast(h)
            model_alpha = self.result_.params.iloc[1]
            sigma_h = np.sqrt((1 + np.arange(h) * (1 + (model_alpha - 1) ** 2)) * self.result_.sigma2)
        mean = np.asarray(predictions, dtype=float) * self.scale_
        out: dict[str, np.ndarray] = {"forecast": mean}
        for level in LEVELS:
            quantile = ndtri((1 - level / 100) / 2)  # = scipy.stats.norm.ppf, same bits
            out[f"lo_{level}"] = (predictions + sigma_h * quantile).to_numpy() * self.scale_
            out[f"hi_{level}"] = (predictions + sigma_h * -quantile).to_numpy() * self.scale_
        sd = (out["hi_95"] - out["lo_95"]) / (2 * Z[95])
        self._bands = (h, (mean, sd, out))
        return mean, sd, out

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        return self._mean_sd(h)[2]

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        mean, sd, _ = self._mean_sd(h)
        v = 1.0 + np.arange(h) * (1.0 + (self.alpha_ - 1.0) ** 2)  # statsmodels' Theta variance, in sigma^2 units
        increments = np.sqrt(np.diff(np.concatenate([[0.0], v])))
        walk = np.cumsum(rng.standard_normal((n_paths, h)) * increments, axis=1)
        return mean + sd * walk / np.sqrt(v)

    def describe(self) -> dict[str, Any]:
        return dict(self.spec_)
