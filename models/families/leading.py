"""ARIMAX: the automatic ARIMA of ``models.families.arima`` with a leading indicator as regressor, a
conditional forecast with forecast regressors (issue 9, part 3).

    model = registry.create("arimax", {"regressor": "lead:wsts_month:billings_worldwide@1"})
    model.fit(y, X)                      # X[regressor]: the indicator on y's months (NaN before it starts)
    model.predict(12, X_future)          # X_future[regressor]: known months, then NaN

**Regression.** ``log y_t = beta * (log x_t - mean) + u_t`` with ``u_t`` a seasonal ARIMA chosen by
the same stepwise AICc search as ``arima`` (log scale for positive series, else levels): the
regressor is handed to ``Arima``'s search and state-space fit in place of working days. The fit
runs on the months of the history where the indicator is known (a history longer than the
indicator, e.g. the total from 2000 and the customs flash from 2016, is cut to the indicator's
span); at least ``min_obs`` observed months are needed.

**Information.** The model reads no file and knows no date: ``features.leading.leading_columns``
prepares the column as of the cutoff's information date, so a value not public then is NaN.
At forecast time the column of ``X_future`` holds the months known on that day (e.g. the 10-day
flash of the month after the cutoff), then NaN.

**Beyond the known months** the indicator itself is forecast by the same engine: an ``Arima``
(``indicator_params``) fitted on the indicator's known values (history + known forecast months).
The forecast is then a joint simulation: ``n_draws`` sample paths of the indicator, and for each
one a sample path of ``u`` from the fitted state-space model, so the indicator's uncertainty
enters the intervals and the annual totals (``sample_paths``). The reported forecast is the
mean of those paths and the bounds their quantiles (seeded by ``seed``: a rerun gives the same
numbers). Not propagated: the uncertainty of the estimated parameters (beta and the ARMA
coefficients), as in every model of the engine. When every forecast month's indicator is known,
the forecast is ARIMA's own conditional one (analytic mean and bounds).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.core.base import FORECAST_COLUMNS, LEVELS, ModelInputError, Traits
from models.core.registry import register
from models.families.arima import Arima

QUANTILES: dict[str, float] = {f"lo_{lv}": (100 - lv) / 200 for lv in LEVELS} | {
    f"hi_{lv}": 1 - (100 - lv) / 200 for lv in LEVELS
}


@register
class ArimaX(Arima):
    """Auto-ARIMA with a leading-indicator regressor; see the module docstring."""

    name = "arimax"
    traits = Traits(family="leading", min_obs=24, uses_exog=True, leading=True)
    default_regressor = ""
    #: what the model sees beyond its own history at a cutoff (the accuracy table's "information used")
    information = "its leading indicator as public by the 16th of the month after"

    def __init__(
        self,
        regressor: str = "",
        indicator_params: dict[str, Any] | None = None,
        n_draws: int = 1000,
        seed: int = 0,
        **params: Any,
    ) -> None:
        regressor = regressor or self.default_regressor
        if not isinstance(regressor, str) or not regressor:
            raise ModelInputError(
                f"{self.name}: regressor must name the indicator column of X (e.g. "
                f"'lead:wsts_month:billings_worldwide@1'); got {regressor!r}"
            )
        if not isinstance(n_draws, (int, np.integer)) or n_draws < 100:
            raise ModelInputError(f"{self.name}: n_draws must be an integer >= 100; got {n_draws!r}")
        params.pop("working_days", None)  # the regressor slot of Arima holds the indicator
        super().__init__(working_days=True, **params)
        self.params.update(
            regressor=regressor, indicator_params=dict(indicator_params or {}), n_draws=int(n_draws), seed=int(seed)
        )

    # ------------------------------------------------------------------ regressor
    def _column(self, X: pd.DataFrame | None, where: str) -> pd.Series:
        col = self.params["regressor"]
        if X is None or col not in X.columns:
            have = "no X" if X is None else f"columns {list(X.columns)}"
            raise ModelInputError(f"{self.name}: {where} needs X with the regressor column '{col}'; got {have}")
        return X[col].astype(float)

    def _regressor(self, X: pd.DataFrame | None, where: str) -> np.ndarray | None:
        x = self._column(X, where)
        bad = ~np.isfinite(x.to_numpy()) | ((x.to_numpy() <= 0) if self.log_ else False)
        if bad.any():
            month = x.index[np.flatnonzero(bad)[0]]
            raise ModelInputError(
                f"{self.name}: regressor '{self.params['regressor']}' must be "
                f"{'positive and ' if self.log_ else ''}finite in {where}; month {month:%Y-%m} has {x[month]!r}"
            )
        r = np.log(x.to_numpy()) if self.log_ else x.to_numpy()
        if where == "fit":
            self.exog_center_ = float(r.mean())
        return (r - self.exog_center_).reshape(-1, 1)

    # ------------------------------------------------------------------ fitting
    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        x = self._column(X, "fit")
        known = x.notna().to_numpy()
        if not known.any():
            raise ModelInputError(
                f"{self.name}: regressor '{self.params['regressor']}' is unknown in every month of the history"
            )
        first = int(np.argmax(known))
        if not known[first:].all():
            gap = x.index[first + int(np.argmin(known[first:]))]
            raise ModelInputError(
                f"{self.name}: regressor '{self.params['regressor']}' is unknown in month {gap:%Y-%m} "
                f"of the history (the history must end where the indicator is known)"
            )
        y, X = y.iloc[first:], X.iloc[first:]
        n_obs = int(y.notna().sum())
        if n_obs < self.min_obs:
            raise ModelInputError(
                f"{self.name}: {n_obs} observed months where regressor '{self.params['regressor']}' "
                f"is known ({y.index[0]:%Y-%m}..{y.index[-1]:%Y-%m}); needs {self.min_obs}"
            )
        self.x_hist_ = x.iloc[first:].copy()
        self.fit_start_ = y.index[0]
        self._draw_cache: dict[Any, np.ndarray] = {}
        self._inner_cache: dict[Any, Arima] = {}
        super()._fit(y, X)
        names = self._results().model.param_names
        self.beta_ = float(self.param_values_[names.index(self._results().model.exog_names[0])])

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["_draw_cache"] = {}
        state["_inner_cache"] = {}
        return state

    # ------------------------------------------------------------------ forecasting
    def _future(self, h: int, X_future: pd.DataFrame | None) -> tuple[pd.Series, int]:
        xf = self._column(X_future, "predict").iloc[:h]
        known = xf.notna().to_numpy()
        k = int(np.argmin(known)) if not known.all() else h
        if known[k:].any():
            late = xf.index[k + int(np.argmax(known[k:]))]
            raise ModelInputError(
                f"{self.name}: regressor '{self.params['regressor']}' is known in forecast month "
                f"{late:%Y-%m} after an unknown month {xf.index[k]:%Y-%m}"
            )
        return xf, k

    def _indicator_paths(self, xf: pd.Series, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, h) draws of the indicator over the forecast months: the known ones as they are, the
        rest from an ``Arima`` fitted on the indicator's known values (the same engine)."""
        h = len(xf)
        out = np.empty((n, h))
        out[:, :k] = xf.to_numpy()[:k]
        if k < h:
            key = tuple(xf.to_numpy()[:k])
            inner = self._inner_cache.get(key)
            if inner is None:  # predict and sample_paths of one information set share the fit
                inner = Arima(**self.params["indicator_params"]).fit(pd.concat([self.x_hist_, xf.iloc[:k]]))
                self._inner_cache = {key: inner}
            seed = int(rng.integers(0, 2**31 - 1))
            out[:, k:] = inner.sample_paths(h - k, n, seed=seed)
            self.indicator_model_ = inner.describe().get("spec", "")
        return out

    def _paths(self, h: int, n: int, rng: np.random.Generator, X_future: pd.DataFrame | None) -> np.ndarray:
        xf, k = self._future(h, X_future)
        x_paths = self._indicator_paths(xf, k, n, rng)
        center = np.exp(self.exog_center_) if self.log_ else self.exog_center_
        neutral = pd.DataFrame({self.params["regressor"]: np.full(h, center)}, index=xf.index)
        noise = super()._sample_paths(h, n, rng, neutral)  # the regression's error paths (regressor at its mean)
        if self.log_:
            return noise * np.exp(self.beta_ * (np.log(np.maximum(x_paths, 1e-300)) - self.exog_center_))
        return noise + self.beta_ * (x_paths - self.exog_center_)

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        xf, k = self._future(h, X_future)
        if k == h:
            return super()._predict(h, X_future)
        key = (h, tuple(xf.to_numpy()[:k]))
        if key not in self._draw_cache:
            self._draw_cache[key] = self._paths(
                h, self.params["n_draws"], np.random.default_rng(self.params["seed"]), X_future
            )
        paths = self._draw_cache[key]
        out = {"forecast": paths.mean(axis=0)}
        out.update({name: np.quantile(paths, q, axis=0) for name, q in QUANTILES.items()})
        return {c: out[c] for c in FORECAST_COLUMNS}

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        xf, k = self._future(h, X_future)
        if k == h:
            return super()._sample_paths(h, n_paths, rng, X_future)
        return self._paths(h, n_paths, rng, X_future)

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        described.pop("working_days", None)
        described.update(
            regressor=self.params["regressor"], beta=round(self.beta_, 6), fit_start=f"{self.fit_start_:%Y-%m}"
        )
        if getattr(self, "indicator_model_", ""):
            described["indicator_model"] = self.indicator_model_
        return described


@register
class ArimaXWsts(ArimaX):
    """ARIMAX on world semiconductor billings (WSTS), lagged one month: at a cutoff's information
    date (the 16th of the next month) WSTS is public through the month before the cutoff."""

    name = "arimax_wsts"
    default_regressor = "lead:wsts_month:billings_worldwide@1"
    information = "WSTS world semiconductor billings public by then (through the month before the cutoff)"


@register
class ArimaXFlash(ArimaX):
    """ARIMAX on the customs 10-day flash of the same month: at a cutoff's information date the
    flash of the month after the cutoff is public (the 11th), so the first forecast month is
    conditioned on it."""

    name = "arimax_flash"
    default_regressor = "lead:customs_10d:total"
    information = "the customs 10-day flash public by the 16th of the month after (through that month's days 1-10)"
