"""The one model protocol every forecaster follows.

A model works on ONE series: a float ``pd.Series`` indexed by a regular monthly
``DatetimeIndex`` of month starts (missing months are NaN, never absent rows). The public
methods validate and keep lifecycle state; subclasses implement the private ``_fit``,
``_predict`` and ``_sample_paths``.

    model = registry.create("arima", {"max_p": 2})
    model.fit(y, X)                        # X: optional exogenous frame indexed like y
    fc = model.predict(h, X_future)        # DataFrame index ds; forecast, lo_80, hi_80, lo_95, hi_95
    paths = model.sample_paths(h, 500, seed=0, X_future=X_future)  # (n_paths, h) joint draws

Settings (constructor kwargs, stored in ``self.params``) are separate from fitted state
(attributes ending in ``_``). Levels are in the series' own units (USD).

Non-negative series. A series whose observed history has no negative value (every export
series: the data contract rejects negative exports) is non-negative, and the public ``predict``
and ``sample_paths`` clip every forecast, bound and path at zero. This is the ONE place the
clip happens, for every model; a model whose bounds were clipped says so in ``describe()``
(key ``nonnegative_clip``: how many values were raised to zero), which the engine records in
``model_fits.csv``.

Signed series. ``fit(y, X, signed=True)`` (a series admitted with negative values: a trade
balance; ``data.allow_negative`` / ``data.signed``), or any history with a negative value, makes
the series signed (``signed_``): nothing is clipped at zero, a model that would work on logs or
multiplicatively switches to its additive form and says so in ``sign_notes()`` (the engine writes
it to ``model_fits.reason``), and a model that cannot work without positive values
(``needs_positive``, e.g. the cycle model's log growth) refuses the series with a
``ModelInputError`` naming why, so that the engine falls back.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import ndtri

LEVELS: tuple[int, ...] = (80, 95)
#: the standard normal quantile of each level's upper bound, e.g. Z[95] = 1.959963984540054
#: (``scipy.special.ndtri``: the same bits as ``scipy.stats.norm.ppf`` for these levels, without
#: importing scipy.stats, which costs a second at start-up)
Z: dict[int, float] = {level: float(ndtri(0.5 + level / 200)) for level in LEVELS}
FORECAST_COLUMNS: tuple[str, ...] = ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")
MONTH = pd.offsets.MonthBegin(1)


class NotFittedError(RuntimeError):
    """predict / sample_paths called before fit."""


class ModelInputError(ValueError):
    """The series or exogenous frame handed to a model breaks the protocol."""


def future_index(last_ds: pd.Timestamp, h: int) -> pd.DatetimeIndex:
    """The h month starts after ``last_ds``."""
    return pd.date_range(last_ds + MONTH, periods=h, freq="MS", name="ds")


def is_regular(y: pd.Series) -> bool:
    """Whether ``regularize(y)`` would give y back unchanged (as from
    ``models.core.engine.frame_to_series`` or the backtest's windows): float values on a
    month-start index with freq MS (consecutive months, validated by pandas) named ``ds``,
    observed at both ends. Such a series skips ``regularize``'s checks and its rebuilt month
    range, which cost more than a seasonal-naive fit."""
    index = y.index
    return (
        isinstance(index, pd.DatetimeIndex)
        and index.freqstr == "MS"
        and index.dtype == np.dtype("datetime64[ns]")
        and index.name == "ds"
        and len(y) > 0
        and y.dtype == np.float64
        and not (math.isnan(y.iloc[0]) or math.isnan(y.iloc[-1]))
    )


def regularize(y: pd.Series) -> pd.Series:
    """Reindex a month-start series to every month between its first and last observation
    (missing months become NaN). Leading/trailing NaN are dropped. A series that is already so
    (``is_regular``) comes back as a copy, without the checks and the rebuilt month range."""
    if is_regular(y):
        return y.copy()
    if not isinstance(y.index, pd.DatetimeIndex):
        raise ModelInputError(f"series index must be a DatetimeIndex of month starts; got {type(y.index).__name__}")
    if not y.index.is_monotonic_increasing or y.index.has_duplicates:
        raise ModelInputError("series index must be strictly increasing month starts")
    if len(y.index) and not (y.index == y.index.to_period("M").to_timestamp()).all():
        raise ModelInputError("series index must hold month starts (day 1, midnight)")
    y = y.astype(float)
    observed = y.dropna()
    if observed.empty:
        raise ModelInputError("series has no observed value")
    full = pd.date_range(observed.index[0], observed.index[-1], freq="MS", name="ds")
    return y.reindex(full)


@dataclass(frozen=True)
class Traits:
    """What a model class is and needs, declared once on the class (as sktime's ``_tags``); the
    registry (``models.core.registry``) answers every question about the models from them, so no
    name list is kept by hand elsewhere."""

    #: the model family (``baseline``, ``arima``, ``prophet``, ``leading``, ``cycle``, ``momentum``,
    #: ``combination``); '' only on the abstract base
    family: str = ""
    #: rank in the champion rule's tie break, lower = simpler; None = after every ranked model, in
    #: name order (the leading models, and any name the registry does not know)
    complexity: int | None = None
    #: minimum number of observed (non-NaN) months the model needs; the engine falls back below it
    min_obs: int = 1
    #: whether the model uses exogenous regressors when given (e.g. working days)
    uses_exog: bool = False
    #: whether its dynamics or regressions are learned on a reference series (``params['reference']``)
    reads_reference: bool = False
    #: a leading-indicator model: run for the series of ``models.leading`` only, at each cutoff with
    #: the indicator as public then (``models.families.leading_extras.LeadingExtras``)
    leading: bool = False
    #: it combines other models' forecasts (``models.selection.combination.Combination``)
    combination: bool = False
    #: it can be named in the config and fitted by name; False: a combination computed after the fit
    #: from the members' forecasts (``combo_mean``, ...)
    configurable: bool = True
    #: why the model cannot forecast a signed series ('' = it can, in an additive form if need be)
    needs_positive: str = ""


#: traits that a model also exposes as attributes of the same name (read by the protocol and the
#: engine); they are derived from ``traits``, never declared beside it
TRAIT_ATTRIBUTES: tuple[str, ...] = ("min_obs", "uses_exog", "needs_positive")


class Forecaster(ABC):
    """Base class: public methods validate, private methods implement.

    A subclass declares ``name`` and ``traits = Traits(...)``; ``min_obs``, ``uses_exog`` and
    ``needs_positive`` are read from the traits. (A test's toy model may set those three
    attributes alone: they then refine the inherited traits.)"""

    name: ClassVar[str] = ""
    traits: ClassVar[Traits] = Traits()
    min_obs: ClassVar[int] = Traits.min_obs
    uses_exog: ClassVar[bool] = Traits.uses_exog
    needs_positive: ClassVar[str] = Traits.needs_positive

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)
        self._fitted = False
        self.nonnegative_ = False
        self.clipped_: dict[str, int] = {}
        self.signed_ = False
        self.sign_notes_: list[str] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass's own ``describe`` also reports the clipping note (see the module
        docstring), so that no model has to remember to add it; the trait attributes follow the
        class's ``traits``."""
        super().__init_subclass__(**kwargs)
        cls._sync_traits()
        own = cls.__dict__.get("describe")
        if own is not None and not getattr(own, "_with_clip_note", False):

            @functools.wraps(own)
            def describe(self: Forecaster) -> dict[str, Any]:
                return self._with_clip_note(own(self))

            describe._with_clip_note = True  # type: ignore[attr-defined]
            cls.describe = describe  # type: ignore[method-assign]

    @classmethod
    def _sync_traits(cls) -> None:
        own = {a: cls.__dict__[a] for a in TRAIT_ATTRIBUTES if a in cls.__dict__}
        if "traits" in cls.__dict__:
            if own:
                raise TypeError(f"{cls.__name__}: declare {', '.join(own)} in its traits, not beside them")
        elif own:  # a toy's shorthand: refine the inherited traits
            cls.traits = dataclasses.replace(cls.traits, **own)
        for attribute in TRAIT_ATTRIBUTES:
            setattr(cls, attribute, getattr(cls.traits, attribute))

    @classmethod
    def traits_for(cls, params: Mapping[str, Any]) -> Traits:
        """The traits of this class configured with ``params``, without building a model: the
        class's own, except where a combination's depend on its members (``Ensemble``)."""
        return cls.traits

    def clone(self) -> Forecaster:
        """A copy of this configured, unfitted model, to fit on one series (statsforecast clones
        its configured prototypes per series instead of building each model again)."""
        if self._fitted:
            raise ValueError(f"clone() takes an unfitted prototype; '{self.name}' is fitted")
        return copy.deepcopy(self)

    # ----------------------------------------------------------------- public
    def fit(self, y: pd.Series, X: pd.DataFrame | None = None, *, signed: bool = False) -> Forecaster:
        """Fit on ``y``; ``signed``: the series may be negative (see the module docstring)."""
        y = regularize(y)
        n_obs = int(y.notna().sum())
        if n_obs < self.min_obs:
            raise ModelInputError(f"{self.name} needs at least {self.min_obs} observed months; got {n_obs}")
        if X is not None:
            missing = y.index.difference(X.index)
            if len(missing):
                raise ModelInputError(
                    f"exogenous frame lacks {len(missing)} month(s) of the history, first {missing[0]:%Y-%m}"
                )
            X = X.loc[y.index]
        self.last_ds_ = y.index[-1]
        self.n_obs_ = n_obs
        self.signed_ = bool(signed) or bool((y.dropna() < 0).any())
        if self.signed_ and self.needs_positive:
            raise ModelInputError(f"{self.name} steps aside on a signed series: {self.needs_positive}")
        self.nonnegative_ = not self.signed_
        self.clipped_ = {}
        self.sign_notes_ = []
        self._fit(y.copy(), None if X is None else X.copy())
        self._fitted = True
        return self

    def predict(self, h: int, X_future: pd.DataFrame | None = None) -> pd.DataFrame:
        self._check_fitted()
        idx = self._check_horizon(h)
        Xf = self._future_exog(idx, X_future)
        out = self._predict(h, Xf)
        frame = pd.DataFrame({c: np.asarray(out[c], dtype=float) for c in FORECAST_COLUMNS}, index=idx)
        # enforce lo_95 <= lo_80 <= forecast <= hi_80 <= hi_95 (numerical noise only)
        vals = np.sort(frame[["lo_95", "lo_80", "forecast", "hi_80", "hi_95"]].to_numpy(), axis=1)
        if self.nonnegative_:
            vals = self._clip("predict", vals)
        frame[["lo_95", "lo_80", "forecast", "hi_80", "hi_95"]] = vals
        return frame[list(FORECAST_COLUMNS)]

    def sample_paths(
        self, h: int, n_paths: int = 1000, seed: int = 0, X_future: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Joint draws of the next h months, shape (n_paths, h), for sums over months."""
        self._check_fitted()
        idx = self._check_horizon(h)
        Xf = self._future_exog(idx, X_future)
        paths = np.asarray(self._sample_paths(h, n_paths, np.random.default_rng(seed), Xf), dtype=float)
        if paths.shape != (n_paths, h):
            raise RuntimeError(f"{self.name}: sample_paths returned shape {paths.shape}, expected {(n_paths, h)}")
        if self.nonnegative_:
            paths = self._clip("sample_paths", paths)
        return paths

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def describe(self) -> dict[str, Any]:
        """Fitted settings worth logging (e.g. the selected ARIMA order). Override."""
        return self._with_clip_note({})

    def sign_notes(self) -> list[str]:
        """What the fit changed because the series is signed (e.g. 'levels, not logs'); [] when
        nothing did or the series is not signed."""
        return list(getattr(self, "sign_notes_", []))

    def _signed_form(self, note: str) -> None:
        """Record that the model took its additive form because the series is signed."""
        self.sign_notes_.append(note)

    def _memoised(self, key: Any, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """``compute()``'s forecast arrays, kept on the fitted model per ``key`` (what the forecast
        depends on: h, the regressor values): the engine, the ensemble (which adopts the fitted
        members) and the pyfunc ask for the same forecast again. Copies out: a caller's edits stay
        its own. For a ``_predict`` that is deterministic given the key (seeded draws)."""
        cache = self.__dict__.setdefault("_predict_cache", {})
        if key not in cache:
            cache[key] = compute()
        return {k: v.copy() for k, v in cache[key].items()}

    def _clip(self, where: str, values: np.ndarray) -> np.ndarray:
        """Values below zero raised to zero; the count is kept for ``describe()``."""
        below = int(np.count_nonzero(values < 0))
        if below:
            self.clipped_[where] = self.clipped_.get(where, 0) + below
            values = np.maximum(values, 0.0)
        return values

    def _with_clip_note(self, described: dict[str, Any]) -> dict[str, Any]:
        if not getattr(self, "clipped_", None):
            return described
        note = ", ".join(f"{n} value(s) of {where}" for where, n in sorted(self.clipped_.items()))
        return {**described, "nonnegative_clip": f"non-negative series: {note} below zero raised to zero"}

    # ---------------------------------------------------------------- private
    @abstractmethod
    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None: ...

    @abstractmethod
    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        """Return a mapping with keys FORECAST_COLUMNS, arrays of length h."""

    @abstractmethod
    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray: ...

    # ---------------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if not self._fitted:
            raise NotFittedError(f"model '{self.name}' is not fitted: call fit() before predict()")

    def _check_horizon(self, h: int) -> pd.DatetimeIndex:
        if not isinstance(h, (int, np.integer)) or h < 1:
            raise ModelInputError(f"horizon h must be a positive integer; got {h!r}")
        return future_index(self.last_ds_, int(h))

    def _future_exog(self, idx: pd.DatetimeIndex, X_future: pd.DataFrame | None) -> pd.DataFrame | None:
        if X_future is None:
            return None
        missing = idx.difference(X_future.index)
        if len(missing):
            raise ModelInputError(f"exogenous frame lacks {len(missing)} forecast month(s), first {missing[0]:%Y-%m}")
        return X_future.loc[idx].copy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"
