"""Cycle model: the series' 12-month log growth forecast by an autoregression whose lag order and
coefficients were learned on a long REFERENCE series of the same industry (issue 9, part 3).

    dynamics = GrowthAR.estimate(wsts_billings)            # AIC order up to max_lag, OLS
    model = registry.create("cycle_wsts", dynamics.params())
    model.fit(y).predict(14)

**Model.** ``g_t = log y_t - log y_{t-12}`` (the year-on-year growth) follows

    g_t = c + phi_1 g_{t-1} + ... + phi_p g_{t-p} + e_t,    e_t ~ N(0, sigma^2)

with ``c`` and ``phi`` taken from the reference (params ``intercept`` and ``phi``) and ``sigma``
from the series' OWN one-step residuals under them (Korean semiconductor exports swing more than
world billings). Without ``intercept``/``phi`` the model estimates them on its own growth (the
same AIC search), which needs a long history.

**Why.** A product cycle (semiconductors: about four years from boom to bust) is in the
autocorrelation of the growth rate, at lags of one to three years, and a series needs decades
to show it: the ministry's semiconductor series starts in 2013, world semiconductor billings
(WSTS) in 1986. A model of levels (ETS, ARIMA, Theta) extrapolates the last trend, so it misses
every turn; this one learns, from the world's 40 years, how a boom has tended to end and a slump
to recover, and applies that to the series' own recent growth. The reference's long-run growth
(``c / (1 - sum phi)``) is kept with its dynamics: a dozen years of one country's growth are too
few to estimate a mean of a cyclical series.

**Order and coefficients** (``GrowthAR.estimate``): ``statsmodels``' ``ar_select_order`` (AIC,
all lags up to p, a constant) with ``max_lag`` 36 months (three years, most of a cycle; capped
at a third of the reference's growth months), then ``AutoReg`` OLS. At least ``min_reference``
(60) months of growth are needed.

**Forecast.** ``log y_{T+k} = log y_{T+k-12} + g_{T+k}``: the future log levels are the last
year's logs plus a linear function of the future shocks (the AR's psi weights), so their mean
``mu_k`` and variance ``v_k`` are exact. Reported forecast = the MEAN ``exp(mu_k + v_k / 2)``
(as ``models.families.arima``); bounds ``exp(mu_k +/- z sqrt(v_k))``; sample paths are exact joint draws.
Not propagated: the uncertainty of the reference's coefficients. Gaps in the history are filled
for the growth only (``models.families.baselines.seasonal_interpolate``); the series must be positive.

**The blend** (``cycle_blend``, ``CycleBlend``): the equal-weight mean of ``cycle_wsts``, ETS and
Theta, the published model of the ministry's semiconductors; the cycle alone loses the world
billings of 1992-2013 to the level models, the blend wins there and since (``benchmarks/cycle.py``).

The model reads no file and knows no date: ``models.families.leading_extras.LeadingExtras`` estimates the dynamics
on the reference as public on each cutoff's information date and hands them in as params.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.core.base import LEVELS, Forecaster, ModelInputError, Traits, Z
from models.core.registry import register
from models.families.baselines import seasonal_interpolate
from models.selection.ensemble import Ensemble

SEASON = 12
#: residual months of the series' own growth its sigma needs
MIN_RESIDUALS = 12


def log_growth(values: np.ndarray) -> np.ndarray:
    """``log x_t - log x_{t-12}`` of a positive, gap-free monthly array (length n - 12)."""
    x = np.asarray(values, dtype=float)
    if len(x) <= SEASON:
        return np.empty(0)
    logs = np.log(x)
    return logs[SEASON:] - logs[:-SEASON]


def lognormal_bounds(mu: np.ndarray, sd: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and central bounds of exp(N(mu, sd^2)) month by month: the forecast is the lognormal
    mean, the bounds the exponentiated normal quantiles."""
    out = {"forecast": np.exp(mu + sd**2 / 2)}
    for level in LEVELS:
        out[f"lo_{level}"] = np.exp(mu - Z[level] * sd)
        out[f"hi_{level}"] = np.exp(mu + Z[level] * sd)
    return out


def aic_order(g: np.ndarray, cap: int) -> int | None:
    """The order ``ar_select_order(g, maxlag=cap, ic="aic", trend="c", glob=False)`` chooses,
    from ONE QR decomposition of the design with every lag (decision 0188): statsmodels fits the
    cap + 1 nested regressions (a constant and lags 1..i, the same rows from ``cap`` on) one SVD
    each; the residual sum of squares of the first i + 1 columns is the full design's plus the
    squares of the later entries of Q'y. The same criterion as statsmodels' (``-2 llf + 2 (i + 1)``
    with ``sigma2 = rss / nobs``), the first minimum as its stable sort takes. None when the
    design is rank-deficient (statsmodels' pseudo-inverse then decides)."""
    n = len(g) - cap
    y = g[cap:]
    X = np.column_stack([np.ones(n), *(g[cap - j : len(g) - j] for j in range(1, cap + 1))])
    q, r = np.linalg.qr(X)
    diagonal = np.abs(np.diag(r))
    if diagonal.min() <= 1e-8 * diagonal.max():
        return None
    qty = q.T @ y
    later = np.concatenate([np.cumsum(qty[::-1] ** 2)[::-1][1:], [0.0]])  # later[i] = sum of qty[i+1:]^2
    rss = float(np.sum((y - q @ qty) ** 2)) + later
    llf = -n * (np.log(2 * np.pi * rss / n) + 1) / 2
    return int(np.argmin(-2 * llf + 2 * (np.arange(cap + 1) + 1)))


@dataclass(frozen=True)
class GrowthAR:
    """Dynamics of the 12-month log growth: ``g_t = intercept + sum_j phi[j-1] g_{t-j} + e_t``."""

    intercept: float
    phi: tuple[float, ...]
    n_growth: int = 0  # growth months it was estimated on (0: given)

    @property
    def order(self) -> int:
        return len(self.phi)

    def params(self) -> dict[str, Any]:
        return {"intercept": self.intercept, "phi": list(self.phi)}

    def residuals(self, g: np.ndarray) -> np.ndarray:
        """One-step residuals of ``g`` under these dynamics (from its (p+1)-th value on)."""
        p = self.order
        if len(g) <= p:
            return np.empty(0)
        fitted = np.full(len(g) - p, self.intercept)
        for j, phi in enumerate(self.phi, start=1):
            fitted += phi * g[p - j : len(g) - j]
        return g[p:] - fitted

    @classmethod
    def estimate(cls, values: pd.Series | np.ndarray, *, max_lag: int = 36, min_reference: int = 60) -> GrowthAR:
        """Order by AIC (lags 1..p, a constant; p <= ``max_lag`` and <= a third of the growth
        months) and OLS coefficients on the growth of ``values`` (positive, gap-free, monthly)."""
        from statsmodels.tsa.ar_model import AutoReg, ar_select_order

        x = np.asarray(values, dtype=float)
        if not np.isfinite(x).all() or (x <= 0).any():
            raise ModelInputError("growth AR: the reference must be positive and finite in every month")
        g = log_growth(x)
        if len(g) < min_reference:
            raise ModelInputError(
                f"growth AR: the reference has {len(g)} months of 12-month growth; needs {min_reference}"
            )
        cap = max(1, min(int(max_lag), len(g) // 3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = aic_order(g, cap)
            if p is None:  # a rank-deficient design: statsmodels' own search
                lags = ar_select_order(g, maxlag=cap, ic="aic", trend="c", glob=False).ar_lags
                p = max(lags) if lags else 0
            if p == 0:
                return cls(float(g.mean()), (), len(g))
            fit = AutoReg(g, lags=p, trend="c").fit()
        params = np.asarray(fit.params, dtype=float)
        return cls(float(params[0]), tuple(float(v) for v in params[1:]), len(g))


@register
class GrowthCycle(Forecaster):
    """AR on the 12-month log growth, dynamics given (from a reference) or estimated; see the
    module docstring."""

    name = "cycle"
    traits = Traits(
        family="cycle",
        min_obs=24,
        leading=True,
        needs_positive="it works on the 12-month log growth of a positive series",
    )
    #: the indicator whose history teaches the dynamics (``models.families.leading_extras.LeadingExtras``); "" = none
    default_reference = ""
    information = "the dynamics of its own 12-month growth"

    def __init__(
        self,
        intercept: float | None = None,
        phi: list[float] | tuple[float, ...] | None = None,
        reference: str = "",
        max_lag: int = 36,
        **params: Any,
    ) -> None:
        if (intercept is None) != (phi is None):
            raise ModelInputError(f"{self.name}: give both intercept and phi (the reference's dynamics) or neither")
        if intercept is not None:
            values = [intercept, *list(phi or [])]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise ModelInputError(
                    f"{self.name}: intercept and phi must be finite numbers; got {intercept!r}, {phi!r}"
                )
        if not isinstance(max_lag, int) or max_lag < 1:
            raise ModelInputError(f"{self.name}: max_lag must be a positive integer; got {max_lag!r}")
        super().__init__(
            intercept=None if intercept is None else float(intercept),
            phi=None if phi is None else [float(v) for v in phi],
            reference=reference or self.default_reference,
            max_lag=max_lag,
            **params,
        )

    @staticmethod
    def needed_months(order: int) -> int:
        """Months of history the series needs with dynamics of this order: a year to start the
        growth, ``order`` lags and ``MIN_RESIDUALS`` residuals for sigma."""
        return SEASON + order + MIN_RESIDUALS

    # ------------------------------------------------------------------ fitting
    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        if (y.dropna() <= 0).any():
            raise ModelInputError(f"{self.name}: the series must be positive (the model works on log growth)")
        filled = seasonal_interpolate(y)
        g = log_growth(filled.to_numpy())
        if self.params["intercept"] is None and self.default_reference:
            raise ModelInputError(
                f"{self.name}: its dynamics come from '{self.default_reference}' as public at the "
                f"cutoff; run it under models.leading (none were given)"
            )
        if self.params["intercept"] is None:
            self.dynamics_ = GrowthAR.estimate(
                filled.to_numpy(), max_lag=self.params["max_lag"], min_reference=SEASON + MIN_RESIDUALS
            )
            self.source_ = "own history"
        else:
            self.dynamics_ = GrowthAR(self.params["intercept"], tuple(self.params["phi"]))
            self.source_ = self.params["reference"] or "given"
        need = self.needed_months(self.dynamics_.order)
        if len(filled) < need:
            raise ModelInputError(
                f"{self.name}: {len(filled)} months of history; dynamics of order "
                f"{self.dynamics_.order} need {need} (a year, the lags and {MIN_RESIDUALS} residuals)"
            )
        resid = self.dynamics_.residuals(g)
        self.sigma_ = float(np.sqrt(np.mean(resid**2)))
        self.n_residuals_ = int(len(resid))
        self.logs_ = np.log(filled.to_numpy())
        self.g_ = g

    # ------------------------------------------------------------------ forecasting
    def _moments(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(mu, A): future log levels = mu + A @ e with e the h future shocks (unit variance x sigma)."""
        dyn = self.dynamics_
        p = dyn.order
        g = list(self.g_)
        for _ in range(h):  # mean path of the growth: shocks at zero
            g.append(dyn.intercept + sum(dyn.phi[j] * g[-1 - j] for j in range(p)))
        g_mean = np.asarray(g[len(self.g_) :])
        psi = np.zeros(h)
        psi[0] = 1.0
        for j in range(1, h):
            psi[j] = sum(dyn.phi[i - 1] * psi[j - i] for i in range(1, min(j, p) + 1))
        Psi = np.zeros((h, h))  # g_future = g_mean + Psi @ e
        for k in range(h):
            Psi[k, : k + 1] = psi[k::-1]
        S = np.zeros((h, h))  # log y_{T+k} = base_k + sum of g over k, k-12, k-24, ... (future months)
        for k in range(h):
            S[k, k::-SEASON] = 1.0
        n = len(self.logs_)
        base = np.array([self.logs_[n - SEASON + (k % SEASON)] for k in range(h)])
        return base + S @ g_mean, S @ Psi

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        mu, A = self._moments(h)
        return lognormal_bounds(mu, self.sigma_ * np.sqrt((A**2).sum(axis=1)))

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        mu, A = self._moments(h)
        shocks = rng.standard_normal((n_paths, h)) * self.sigma_
        return np.exp(mu + shocks @ A.T)

    def describe(self) -> dict[str, Any]:
        dyn = self.dynamics_
        persistence = sum(dyn.phi)
        return {
            "dynamics_from": self.source_,
            "order": dyn.order,
            "intercept": round(dyn.intercept, 6),
            "phi": [round(v, 6) for v in dyn.phi],
            "long_run_growth_pct": (
                round(100 * (math.exp(dyn.intercept / (1 - persistence)) - 1), 3)
                if abs(1 - persistence) > 1e-9
                else None
            ),
            "sigma": round(self.sigma_, 6),
            "n_residuals": self.n_residuals_,
        }


@register
class GrowthCycleWsts(GrowthCycle):
    """The cycle model with the dynamics of world semiconductor billings (WSTS, 1986+), as public
    on each cutoff's information date."""

    name = "cycle_wsts"
    traits = dataclasses.replace(GrowthCycle.traits, reads_reference=True)
    default_reference = "wsts_month:billings_worldwide"
    information = "the semiconductor cycle's dynamics learned on WSTS world billings public by then (1986 on)"


@register
class CycleBlend(Ensemble):
    """The equal-weight mean of ``cycle_wsts`` and the level models ETS (damped) and Theta: the
    cycle's turns, hedged by the trend.

    Why a blend: on WSTS world billings (``benchmarks/cycle.py``, annual totals forecast from
    October of the year before) the cycle model alone wins 2014-2025 (MAPE 7.83 against ETS 10.15,
    Theta 10.10) but loses 1992-2013 (16.25 against 13.01, 12.65: it extrapolated the booms of the
    1990s), while the mean of the three wins both (12.18 and 7.92). Equal weights, as the
    combination literature's default: no weight is estimated, so none is chosen on those years.

    Forecast, bounds and paths are the members' mean (quantile averaging; the paths paired by rank
    of their total, ``models.selection.ensemble``). Params are the cycle member's (``intercept``, ``phi``,
    ``reference``, ``max_lag``: its dynamics are handed in by ``models.families.leading_extras.LeadingExtras`` at each
    cutoff). Unlike the median ensemble, every member must fit: without the cycle it would be
    another model under this name."""

    name = "cycle_blend"
    traits = Traits(
        family="cycle",
        uses_exog=True,
        reads_reference=True,
        leading=True,
        combination=True,
        needs_positive="its cycle member works on the 12-month log growth of a positive series",
    )
    reduce = "mean"
    default_reference = GrowthCycleWsts.default_reference
    information = (
        "a blend: the mean of ETS, Theta and the cycle model (its dynamics learned on WSTS world "
        "billings public by then)"
    )
    #: the level members, with the settings the blend was measured with
    LEVEL_MEMBERS: dict[str, dict[str, Any]] = {"ets": {"damped_trend": True}, "theta": {}}

    @classmethod
    def member_names(cls, params: Mapping[str, Any]) -> list[str]:
        return [GrowthCycleWsts.name, *cls.LEVEL_MEMBERS]

    def __init__(
        self,
        intercept: float | None = None,
        phi: list[float] | tuple[float, ...] | None = None,
        reference: str = "",
        max_lag: int = 36,
        members: Any = None,
        **params: Any,
    ) -> None:
        cycle = GrowthCycleWsts(intercept=intercept, phi=phi, reference=reference, max_lag=max_lag).params  # validated
        spec = {"cycle_wsts": {k: cycle[k] for k in ("intercept", "phi", "max_lag")}, **self.LEVEL_MEMBERS}
        if members is not None and dict(members) != spec:
            raise ModelInputError(f"{self.name}: its members are fixed ({', '.join(spec)}); got {members!r}")
        super().__init__(
            members=spec,
            intercept=cycle["intercept"],
            phi=cycle["phi"],
            reference=cycle["reference"],
            max_lag=max_lag,
            **params,
        )

    needed_months = staticmethod(GrowthCycle.needed_months)  # its cycle member's

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        if self.params["intercept"] is None:
            raise ModelInputError(
                f"{self.name}: its cycle's dynamics come from '{self.default_reference}' as public "
                f"at the cutoff; run it under models.leading (none were given)"
            )
        super()._fit(y, X)
        if self.failed_:
            raise ModelInputError(
                f"{self.name}: every member must fit; " + "; ".join(f"{m}: {e}" for m, e in self.failed_.items())
            )
