"""Chip-market momentum: the semiconductor cycle read from market prices (issue 24; protocol in
docs/decisions/0150-chip-cycle-protocol.md).

    regression = MomentumRegression.estimate(wsts_billings, market_features(markets), horizon=15)
    model = registry.create("chip_momentum", regression.params())
    model.fit(y, X).predict(14)          # X: the market columns (``market_columns``) on y's months

**Model.** Direct regressions of the series' 12-month log growth ``g_t = log y_t - log y_{t-12}``
at each horizon ``k = 1..horizon``:

    g_{T+k} = a_k + c_k g_T + sum_j b_jk x_j,T + e_k

with ``x`` the 12- and 6-month log changes of the market series (``MARKET_INDICATORS``: SOX, SK
hynix, the DRAM export price index in USD) at the cutoff month T. The coefficients are learned on
a REFERENCE (WSTS world semiconductor billings, its own growth in place of the series') by OLS,
on every month t where all variables are known and ``g_{t+k}`` is public, at least ``min_pairs``
months at every horizon: the Korean series is too short to learn them (2013 on), as for the cycle
model (``models.families.cycle``). ``models.families.leading_extras.LeadingExtras`` estimates them as public on each cutoff's
information date and hands them in as params (``coef``, ``sigma_ref``, ``features``); the market
variables reach the model as exog columns (``lead:chip:<indicator>:d<n>``), NaN where not public.

**Forecast.** ``log y_{T+k} = log y_{T+k-12} + g_{T+k}``, the growth at its regression mean. One
standard-normal shock ``z`` per sample path moves every horizon's growth by ``sigma_k z`` (the
errors of direct forecasts from one information set move together), ``sigma_k`` = the reference's
residual s.d. at horizon k times the ratio of the series' own one-step residual s.d. (under the same
coefficients, at least ``MIN_RESIDUALS`` months) to the reference's. So a log level's s.d. is the sum
of the loadings of the growths it adds up; forecast = the mean ``exp(mu + s^2 / 2)``, bounds
``exp(mu +/- z_level s)``. Not propagated: the coefficients' own uncertainty.

**The blend** (``chip_momentum_blend``): the equal-weight mean of ``chip_momentum`` and ``cycle_blend``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from models.core.base import Forecaster, ModelInputError, Traits
from models.core.registry import register
from models.families.baselines import seasonal_interpolate
from models.families.cycle import MIN_RESIDUALS, SEASON, CycleBlend, GrowthCycle, GrowthCycleWsts, lognormal_bounds
from models.selection.ensemble import Ensemble

#: the market series the momentum reads (indicator names of data/indicators_monthly.csv)
MARKET_INDICATORS: tuple[str, ...] = ("phlx_close:sox", "krx_close:skhynix_000660", "bok_month:dram_export_price_usd")
#: the log changes taken of each, in months
CHANGES: tuple[int, ...] = (12, 6)
COLUMN_PREFIX = "lead:chip:"  # a lead: column may hold NaN (months not public) in the engine's exog


def feature_names(indicators: tuple[str, ...] = MARKET_INDICATORS) -> list[str]:
    return [f"{COLUMN_PREFIX}{name}:d{n}" for name in indicators for n in CHANGES]


def market_features(markets: dict[str, pd.Series]) -> pd.DataFrame:
    """The market variables by month: for each indicator (a positive monthly series, gap-free) its
    12- and 6-month log changes, columns ``feature_names``; NaN where a change is not defined."""
    months = pd.DatetimeIndex(sorted(set().union(*(s.index for s in markets.values()))), name="ds")
    out = pd.DataFrame(index=months)
    for name, values in markets.items():
        logs = np.log(values.astype(float)).reindex(months)
        for n in CHANGES:
            out[f"{COLUMN_PREFIX}{name}:d{n}"] = logs - logs.shift(n)
    return out


def growth(values: pd.Series) -> pd.Series:
    """12-month log growth of a positive monthly series (index: month starts)."""
    logs = np.log(values.astype(float))
    return (logs - logs.shift(SEASON)).dropna()


@dataclass(frozen=True)
class MomentumRegression:
    """Per horizon k: ``coef[k-1]`` = (a_k, c_k, b_1k, ...) for (1, g_T, *features), ``sigma[k-1]``
    the residual s.d., ``n_pairs[k-1]`` the months it was estimated on."""

    coef: tuple[tuple[float, ...], ...]
    sigma: tuple[float, ...]
    features: tuple[str, ...]
    n_pairs: tuple[int, ...] = ()

    def params(self) -> dict[str, Any]:
        return {"coef": [list(c) for c in self.coef], "sigma_ref": list(self.sigma), "features": list(self.features)}

    @classmethod
    def estimate(
        cls, reference: pd.Series, features: pd.DataFrame, *, horizon: int = 15, min_pairs: int = 36
    ) -> MomentumRegression:
        """OLS of the reference's growth k months ahead on (1, its growth, the features) at each k."""
        if (reference <= 0).any() or not np.isfinite(reference.to_numpy(dtype=float)).all():
            raise ModelInputError("chip momentum: the reference must be positive and finite in every month")
        g = growth(reference)
        names = list(features.columns)
        base = pd.concat([g.rename("g"), features], axis=1).dropna()
        coef, sigma, pairs = [], [], []
        for k in range(1, horizon + 1):
            target = g.shift(-k, freq="MS").reindex(base.index)
            rows = base[target.notna()]
            if len(rows) < min_pairs:
                raise ModelInputError(
                    f"chip momentum: {len(rows)} months of the reference with every variable known "
                    f"and its growth {k} months later public; needs {min_pairs}"
                )
            design = np.column_stack([np.ones(len(rows)), rows.to_numpy()])
            beta, *_ = np.linalg.lstsq(design, target[rows.index].to_numpy(), rcond=None)
            resid = target[rows.index].to_numpy() - design @ beta
            coef.append(tuple(float(b) for b in beta))
            sigma.append(float(np.sqrt(np.sum(resid**2) / max(1, len(rows) - design.shape[1]))))
            pairs.append(len(rows))
        return cls(tuple(coef), tuple(sigma), tuple(names), tuple(pairs))


@register
class ChipMomentum(Forecaster):
    """The series' growth over the next months from chip-market momentum; see the module docstring."""

    name = "chip_momentum"
    traits = Traits(family="momentum", min_obs=24, uses_exog=True, reads_reference=True, leading=True)
    #: the indicator whose history teaches the coefficients, and the market series it reads
    default_reference = GrowthCycleWsts.default_reference
    market_indicators = MARKET_INDICATORS
    information = (
        "the 12- and 6-month changes of SOX, SK hynix and the DRAM export price index public by then, "
        "read through regressions learned on WSTS world billings"
    )

    def __init__(
        self,
        coef: list[list[float]] | None = None,
        sigma_ref: list[float] | None = None,
        features: list[str] | None = None,
        reference: str = "",
        horizon: int = 15,
        min_pairs: int = 36,
        **params: Any,
    ) -> None:
        if not isinstance(horizon, int) or horizon < 1:
            raise ModelInputError(f"{self.name}: horizon must be a positive integer; got {horizon!r}")
        if not isinstance(min_pairs, int) or min_pairs < 12:
            raise ModelInputError(f"{self.name}: min_pairs must be an integer >= 12; got {min_pairs!r}")
        given = [coef is not None, sigma_ref is not None, features is not None]
        if any(given) and not all(given):
            raise ModelInputError(
                f"{self.name}: give coef, sigma_ref and features together (the reference's regressions)"
            )
        if coef is not None:
            width = len(features) + 2
            if (
                len(coef) != len(sigma_ref)
                or any(len(c) != width for c in coef)
                or not all(math.isfinite(v) for c in coef for v in c)
                or not all(math.isfinite(s) and s > 0 for s in sigma_ref)
            ):
                raise ModelInputError(
                    f"{self.name}: coef must hold {width} finite numbers per horizon and sigma_ref one "
                    f"positive number per horizon; got {len(coef)} and {len(sigma_ref)} horizons"
                )
        super().__init__(
            coef=None if coef is None else [[float(v) for v in c] for c in coef],
            sigma_ref=None if sigma_ref is None else [float(s) for s in sigma_ref],
            features=None if features is None else [str(f) for f in features],
            reference=reference or self.default_reference,
            horizon=horizon,
            min_pairs=min_pairs,
            **params,
        )

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        p = self.params
        if p["coef"] is None:
            raise ModelInputError(
                f"{self.name}: its regressions come from '{self.default_reference}' and the market "
                f"series as public at the cutoff; run it under models.leading (none were given)"
            )
        if (y.dropna() <= 0).any():
            raise ModelInputError(f"{self.name}: the series must be positive (the model works on log growth)")
        missing = [f for f in p["features"] if X is None or f not in X.columns]
        if missing:
            raise ModelInputError(f"{self.name}: X lacks the market column(s) {', '.join(missing)}")
        filled = seasonal_interpolate(y)
        g = growth(filled)
        x = X[p["features"]].astype(float)
        last = filled.index[-1]
        if last not in g.index or x.loc[last].isna().any():
            lacking = [f for f in p["features"] if pd.isna(x.loc[last, f])]
            raise ModelInputError(
                f"{self.name}: at the last month {last:%Y-%m} "
                + (
                    f"the market variable(s) {', '.join(lacking)} are not known"
                    if lacking
                    else "the series has no 12-month growth"
                )
            )
        coef = np.asarray(p["coef"])
        design = pd.concat([g.rename("g"), x], axis=1).dropna()
        one_ahead = g.shift(-1, freq="MS").reindex(design.index)
        rows = design[one_ahead.notna()]
        if len(rows) < MIN_RESIDUALS:
            raise ModelInputError(
                f"{self.name}: {len(rows)} months with the series' growth, the market variables and "
                f"the next month's growth; its own residuals need {MIN_RESIDUALS}"
            )
        fitted = coef[0, 0] + rows.to_numpy() @ coef[0, 1:]
        resid = one_ahead[rows.index].to_numpy() - fitted
        self.scale_ = float(np.sqrt(np.mean(resid**2)) / p["sigma_ref"][0])
        now = np.concatenate([[1.0, g[last]], x.loc[last].to_numpy()])
        self.growth_path_ = coef @ now
        self.sigma_ = self.scale_ * np.asarray(p["sigma_ref"])
        self.logs_ = np.log(filled.to_numpy())
        self.n_residuals_ = int(len(rows))
        self.last_growth_ = float(g[last])

    def _moments(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(mu, s): future log levels = mu + s * z, one z per path."""
        if h > len(self.growth_path_):
            raise ModelInputError(
                f"{self.name}: horizon {h} beyond the {len(self.growth_path_)} months its regressions cover"
            )
        n = len(self.logs_)
        mu, s = np.empty(h), np.empty(h)
        for k in range(h):
            back = k - SEASON
            mu[k] = (mu[back] if back >= 0 else self.logs_[n + back]) + self.growth_path_[k]
            s[k] = (s[back] if back >= 0 else 0.0) + self.sigma_[k]
        return mu, s

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        return lognormal_bounds(*self._moments(h))

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        mu, s = self._moments(h)
        return np.exp(mu + rng.standard_normal((n_paths, 1)) * s)

    def describe(self) -> dict[str, Any]:
        return {
            "reference": self.params["reference"],
            "features": list(self.params["features"]),
            "growth_now_pct": round(100 * math.expm1(self.last_growth_), 3),
            "growth_path_pct": [round(100 * math.expm1(v), 3) for v in self.growth_path_],
            "sigma_scale": round(self.scale_, 6),
            "n_residuals": self.n_residuals_,
        }


@register
class ChipMomentumBlend(Ensemble):
    """The equal-weight mean of ``chip_momentum`` and ``cycle_blend`` (so 1/2 momentum and 1/6 each
    of cycle_wsts, ETS and Theta): no weight is estimated. Params: both members' (the momentum's
    regressions and the cycle's dynamics, handed in by ``models.families.leading_extras.LeadingExtras``). Every member
    must fit."""

    name = "chip_momentum_blend"
    traits = Traits(family="momentum", uses_exog=True, reads_reference=True, leading=True, combination=True)
    reduce = "mean"
    default_reference = GrowthCycleWsts.default_reference
    market_indicators = MARKET_INDICATORS
    information = (
        "a blend: the mean of chip_momentum and cycle_blend (both learned on WSTS world billings public by then)"
    )
    needed_months = staticmethod(GrowthCycle.needed_months)  # its cycle member's

    @classmethod
    def member_names(cls, params: Mapping[str, Any]) -> list[str]:
        return [ChipMomentum.name, CycleBlend.name]

    def __init__(
        self,
        coef: list[list[float]] | None = None,
        sigma_ref: list[float] | None = None,
        features: list[str] | None = None,
        intercept: float | None = None,
        phi: list[float] | None = None,
        reference: str = "",
        horizon: int = 15,
        min_pairs: int = 36,
        max_lag: int = 36,
        members: Any = None,
        **params: Any,
    ) -> None:
        momentum = ChipMomentum(
            coef=coef, sigma_ref=sigma_ref, features=features, horizon=horizon, min_pairs=min_pairs
        ).params
        cycle = CycleBlend(intercept=intercept, phi=phi, max_lag=max_lag).params
        spec = {
            "chip_momentum": {k: momentum[k] for k in ("coef", "sigma_ref", "features", "horizon", "min_pairs")},
            "cycle_blend": {k: cycle[k] for k in ("intercept", "phi", "max_lag")},
        }
        if members is not None and dict(members) != spec:
            raise ModelInputError(f"{self.name}: its members are fixed ({', '.join(spec)}); got {members!r}")
        super().__init__(
            members=spec,
            coef=momentum["coef"],
            sigma_ref=momentum["sigma_ref"],
            features=momentum["features"],
            intercept=cycle["intercept"],
            phi=cycle["phi"],
            reference=reference or self.default_reference,
            horizon=horizon,
            min_pairs=min_pairs,
            max_lag=max_lag,
            **params,
        )

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        if self.params["coef"] is None or self.params["intercept"] is None:
            raise ModelInputError(
                f"{self.name}: its members' regressions and dynamics come from "
                f"'{self.default_reference}' as public at the cutoff; run it under models.leading"
            )
        super()._fit(y, X)
        if self.failed_:
            raise ModelInputError(
                f"{self.name}: every member must fit; " + "; ".join(f"{m}: {e}" for m, e in self.failed_.items())
            )
