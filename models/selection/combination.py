"""Combination candidates for the champion rule, computed from the members' own forecasts.

Beside the single models (and ``ensemble``, the median of its members, fitted as a model), the
backtest offers the champion rule three more combinations of the single models of each window:

- ``combo_mean``: the equal-weight mean;
- ``combo_trimmed``: the mean after cutting ``TRIM`` of the members at each end, month by month
  (with the five single models: the lowest and the highest are dropped);
- ``combo_inv_mase``: weights proportional to 1 / (mean MASE of the member) over the EARLIER
  windows only: for the window at cutoff c, the windows whose evaluated months were all observed
  by c (the champion rule's own information set, ``models.selection.champion.choose_at``); with no such
  window, equal weights (the weights are then the mean's).

Why this design (the smallest honest one): a combination of forecasts needs no fit of its own,
so it is computed from the members' forecasts of the SAME window, and no member is refitted; the
weights of a window use only what was known at its cutoff, so the backtest score of the
weighted combination is the one it would really have had. The members are the single models of
the window (``pool``): every enabled model whose class is not a combination (``Traits.combination``:
not the ``combo_*`` themselves, not ``ensemble``).

Every combination of the project is a ``Combination`` (below): members, a reducer, weights and a
path rule. The ``combo_*`` are ``Combined`` (members already fitted, paths pooled); the median
ensemble and the cycle and momentum blends fit their members and pair their paths by rank
(``models.selection.ensemble``); docs/models.md and docs/decisions/0160 say why both rules stay.

The bounds are combined like the forecast, quantile by quantile ("quantile averaging",
Lichtendahl, Grushka-Cockayne & Winkler, Management Science 2013: averaging quantiles gives a
combined distribution with the members' average spread, better calibrated than averaging
independent draws, which shrinks the spread as members are added). Every reducer here is
monotone, so lo_95 <= lo_80 <= forecast <= hi_80 <= hi_95 holds as it does for every member.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from models.core import registry
from models.core.base import FORECAST_COLUMNS, Forecaster, Traits
from models.core.fits import FitRow, fits_frame
from models.core.registry import register

if TYPE_CHECKING:  # pragma: no cover
    from models.core.engine import ForecastResult

__all__ = [
    "TRIM",
    "REDUCERS",
    "RANK_PAIRED",
    "LINEAR_POOL",
    "Combination",
    "Combined",
    "describe_combination",
    "pool",
    "inverse_mase_weights",
    "combine_values",
    "combine_window",
    "combine_annual",
    "backtest_windows",
    "add_combinations",
]

#: share of the members cut at EACH end by the trimmed mean (scipy.stats.trim_mean: 5 members -> 1 cut at each end)
TRIM = 0.2
#: the model name of the champion rows (``models.selection.champion.CHAMPION``): never a member
_CHAMPION = "champion"


def __getattr__(name: str) -> Any:
    """``COMBINATIONS``: the combinations computed after the fit, as the registry lists them."""
    if name == "COMBINATIONS":
        return tuple(registry.combinations())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pool(model_names: Iterable[str]) -> list[str]:
    """The members of the combinations: the models among ``model_names`` that combine nothing
    (``Traits.combination`` false; order kept)."""
    return [name for name in model_names if name != _CHAMPION and not registry.is_combination(name)]


def inverse_mase_weights(
    windows: Iterable[tuple[pd.Timestamp, Mapping[str, float]]],
    members: Sequence[str],
    cutoff: pd.Timestamp | None = None,
) -> dict[str, float]:
    """Weights (summing to 1) of ``members``, proportional to 1 / mean MASE over the ``windows``
    (last evaluated month, model -> MASE) whose last evaluated month is at or before ``cutoff``
    (None: every window, as for the published forecast).

    A member counts only if it has a finite, positive MASE in every counted window (a member that
    failed in a hard window is not rewarded for it); {} (equal weights) when no window counts or
    no member qualifies."""
    known = [scores for end, scores in windows if cutoff is None or pd.Timestamp(end) <= pd.Timestamp(cutoff)]
    if not known:
        return {}
    inverse: dict[str, float] = {}
    for member in members:
        values = [float(w[member]) if w.get(member) is not None else math.nan for w in known]
        if all(math.isfinite(v) and v > 0 for v in values):
            inverse[member] = len(values) / sum(values)
    total = sum(inverse.values())
    return {m: v / total for m, v in inverse.items()} if total > 0 else {}


# --------------------------------------------------------------------------- reducers
Reducer = Callable[[np.ndarray, Sequence[str], Mapping[str, float]], np.ndarray]


def _median(values: np.ndarray, members: Sequence[str], weights: Mapping[str, float]) -> np.ndarray:
    return np.median(values, axis=0)


def _mean(values: np.ndarray, members: Sequence[str], weights: Mapping[str, float]) -> np.ndarray:
    return np.mean(values, axis=0)


def _trimmed_mean(values: np.ndarray, members: Sequence[str], weights: Mapping[str, float]) -> np.ndarray:
    """``scipy.stats.trim_mean(values, TRIM, axis=0)``, its own arithmetic (partition, then the
    mean of the middle) without its NaN-policy wrapper, which cost 20x the reduction on a window's
    5 x 12 values; a NaN goes to scipy (its NaN policy: propagate)."""
    if not np.isfinite(values).all():
        from scipy.stats import trim_mean  # here: scipy.stats costs a second to import

        return np.asarray(trim_mean(values, TRIM, axis=0), dtype=float)
    low = int(TRIM * values.shape[0])
    high = values.shape[0] - low
    return np.partition(values, (low, high - 1), axis=0)[low:high].mean(axis=0)


def _weighted(values: np.ndarray, members: Sequence[str], weights: Mapping[str, float]) -> np.ndarray:
    """``weights`` renormalised over the members present (a member without a weight gets none);
    no weight for any present member: the mean."""
    w = np.array([float(weights.get(m, 0.0)) for m in members])
    if w.sum() <= 0:
        return values.mean(axis=0)
    return (w / w.sum()) @ values


#: how the members' values are reduced along the first axis (members), month by month
REDUCERS: dict[str, Reducer] = {
    "median": _median,
    "mean": _mean,
    "trimmed_mean": _trimmed_mean,
    "weighted": _weighted,
}
#: path rule: the members' draws ranked by their total over the horizon, the k-th path the
#: reduction of every member's k-th (``Combination._rank_paired_paths``)
RANK_PAIRED = "rank_paired"
#: path rule: each path one member's, the member drawn with the combination's weights
#: (``Combination._linear_pool_paths``)
LINEAR_POOL = "linear_pool"


class Combination(Forecaster):
    """A combination of member models: members, a reducer, weights, and a path rule.

    - ``reduce`` (a ``REDUCERS`` key): forecast and each bound are the members' values reduced
      month by month ("quantile averaging": every reducer is monotone, so lo_95 <= lo_80 <=
      forecast <= hi_80 <= hi_95 holds as it does for every member);
    - ``weights`` (member -> weight): read by the ``weighted`` reducer and the linear pool;
    - ``path_rule``, how joint sample paths (the annual totals' draws) are combined:
      ``RANK_PAIRED`` (each member draws with its own seed, the draws are ranked by their total
      over the horizon and the k-th path is the reduction of the members' k-th: the combined
      total's spread is about the reduced members' quantiles, as the bounds are) or
      ``LINEAR_POOL`` (each path is one member's path, the member drawn with the weights, equal
      unless the reducer is ``weighted``: every path keeps its member's month-to-month
      correlation). The fitted combinations (``ensemble``, the cycle and momentum blends) pair by
      rank; the combinations of already fitted models (``combo_*``) pool. Both are kept because
      each is what the published figures were measured and made with (docs/models.md).

    ``exog_to_every_member``: every member receives the exogenous columns (the ensemble and the
    blends, as they always did), or only the members that read them (``uses_exog``: the ``combo_*``,
    whose members the engine fitted that way). ``members_`` holds the fitted members (name -> model)."""

    traits = Traits(family="combination", combination=True, uses_exog=True)
    reduce: ClassVar[str] = "median"
    path_rule: ClassVar[str] = RANK_PAIRED
    exog_to_every_member: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.members_: dict[str, Forecaster] = {}
        self.weights: dict[str, float] = {}

    def combine(self, values: np.ndarray, members: Sequence[str]) -> np.ndarray:
        """``values`` (n_members x ..., rows in ``members`` order) reduced over the members."""
        return REDUCERS[self.reduce](np.asarray(values, dtype=float), members, self.weights)

    def _member_exog(self, member: Forecaster, X: pd.DataFrame | None) -> pd.DataFrame | None:
        return X if self.exog_to_every_member or getattr(member, "uses_exog", False) else None

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        names = list(self.members_)
        frames = [self.members_[m].predict(h, self._member_exog(self.members_[m], X_future)) for m in names]
        return {c: self.combine(np.stack([f[c].to_numpy() for f in frames]), names) for c in FORECAST_COLUMNS}

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        if self.path_rule == RANK_PAIRED:
            return self._rank_paired_paths(h, n_paths, rng, X_future)
        if self.path_rule == LINEAR_POOL:
            return self._linear_pool_paths(h, n_paths, rng, X_future)
        raise ValueError(f"{self.name}: unknown path rule {self.path_rule!r}; known: {RANK_PAIRED}, {LINEAR_POOL}")

    def _rank_paired_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        names = list(self.members_)
        seeds = rng.integers(0, 2**32 - 1, size=len(names))
        paths = [
            self.members_[m].sample_paths(h, n_paths, int(s), self._member_exog(self.members_[m], X_future))
            for m, s in zip(names, seeds)
        ]
        # members' draws are independent: the median of one draw of each is far less spread than
        # any member (annual 80% width 15% of the total against the members' 28-36%, 2013-2025).
        # Pair them by rank of their total over the horizon instead (the k-th smallest of each),
        # so the median path's total is about the median of the members' quantiles, as the
        # monthly bounds are the median of the members' bounds.
        ranked = np.stack([p[np.argsort(p.sum(axis=1), kind="stable")] for p in paths])
        return self.combine(ranked, names)[rng.permutation(n_paths)]

    def _linear_pool_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        names = list(self.members_)
        w = (
            np.array([float(self.weights.get(m, 0.0)) for m in names])
            if self.reduce == "weighted"
            else np.zeros(len(names))
        )
        w = w / w.sum() if w.sum() > 0 else np.full(len(names), 1 / len(names))
        counts = rng.multinomial(n_paths, w)
        paths = [
            self.members_[m].sample_paths(
                h, int(k), int(rng.integers(0, 2**32 - 1)), self._member_exog(self.members_[m], X_future)
            )
            for m, k in zip(names, counts)
            if k > 0
        ]
        return np.concatenate(paths, axis=0)[rng.permutation(n_paths)]


class Combined(Combination):
    """A combination of members ALREADY fitted on the same history (nothing is refitted; darts'
    ``train_forecasting_models=False``): the published forecast of a combination candidate, and
    its fitted model for the registry. ``predict`` combines the members' forecasts and bounds as
    the backtest does (``combine_values``); the paths are the linear pool of the members."""

    traits = Traits(family="combination", combination=True, configurable=False)
    reduce = "mean"
    path_rule = LINEAR_POOL

    def __init__(self, members: Mapping[str, Forecaster], weights: Mapping[str, float] | None = None) -> None:
        if not members:
            raise ValueError(f"{self.name}: no fitted member to combine")
        super().__init__(weights=dict(weights or {}))
        self.members_, self.weights = dict(members), dict(weights or {})
        first = next(iter(self.members_.values()))
        self.last_ds_, self.n_obs_ = first.last_ds_, first.n_obs_
        self.nonnegative_ = all(m.nonnegative_ for m in self.members_.values())
        # the members' regressors: a caller passes X_future only if a member reads it
        self.uses_exog = any(getattr(m, "uses_exog", False) for m in self.members_.values())  # type: ignore[misc]
        self._fitted = True

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        raise NotImplementedError("a combination is built from fitted members; it is never fitted itself")

    def describe(self) -> dict[str, Any]:
        return {"members": list(self.members_), "weights": {m: round(v, 6) for m, v in self.weights.items()}}


@register
class CombinationMean(Combined):
    """``combo_mean``: the equal-weight mean."""

    name = "combo_mean"
    traits = Traits(family="combination", complexity=7, combination=True, configurable=False)
    reduce = "mean"


@register
class CombinationTrimmed(Combined):
    """``combo_trimmed``: the mean after cutting ``TRIM`` of the members at each end."""

    name = "combo_trimmed"
    traits = Traits(family="combination", complexity=8, combination=True, configurable=False)
    reduce = "trimmed_mean"


@register
class CombinationInverseMase(Combined):
    """``combo_inv_mase``: weights proportional to 1 / mean MASE over the earlier windows."""

    name = "combo_inv_mase"
    traits = Traits(family="combination", complexity=9, combination=True, configurable=False)
    reduce = "weighted"


def _combination_class(method: str) -> type[Combined]:
    known = registry.combinations()
    if method not in known:
        raise ValueError(f"unknown combination {method!r}; known: {', '.join(known)}")
    return registry.get(method)  # type: ignore[return-value]


def combine_values(
    values: np.ndarray, method: str, members: Sequence[str], weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """Combine ``values`` (n_members x n, rows in ``members`` order) column by column with the
    reducer of the combination ``method`` (``combo_inv_mase``: ``weights`` renormalised over the
    members present, a member without a weight gets none; no weight for any present member: the
    mean)."""
    reducer = REDUCERS[_combination_class(method).reduce]
    return reducer(np.asarray(values, dtype=float), members, weights or {})


def combine_window(
    forecasts: pd.DataFrame,
    members: Sequence[str],
    weights: Mapping[str, float] | None = None,
    methods: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of every combination in ``methods`` (default: every ``combo_*``) from the members'
    rows of ONE window (or one series' forecast): ``forecasts`` has a ``model`` column, ``ds`` and
    FORECAST_COLUMNS; the other columns (unique_id, cutoff, y, ...) are copied from the first
    member's rows. Members without rows are left out; no member at all: an empty frame."""
    model_of_row = forecasts["model"].to_numpy()
    rows_of = {m: np.flatnonzero(model_of_row == m) for m in members}
    present = [m for m in members if len(rows_of[m])]
    if not present:
        return forecasts.iloc[0:0].copy()
    # the first member's rows, in month order, are the template of every combination's rows
    ds = forecasts["ds"].to_numpy()
    first = rows_of[present[0]]
    template = first[np.argsort(ds[first], kind="stable")]
    months = pd.Index(ds[template])
    # each column's members stacked once (members x months, NaN where a member lacks a month),
    # then reduced by every method
    at_month = {m: pd.Index(ds[rows_of[m]]).get_indexer(months) for m in present}
    stacked = {
        col: _stack_members(forecasts[col].to_numpy(dtype=float), rows_of, at_month, present)
        for col in FORECAST_COLUMNS
    }
    methods = list(registry.combinations() if methods is None else methods)
    out = forecasts.iloc[np.tile(template, len(methods))].reset_index(drop=True)
    out["model"] = np.repeat(np.array(methods, dtype=object), len(template))
    for col in FORECAST_COLUMNS:
        out[col] = np.concatenate([combine_values(stacked[col], method, present, weights) for method in methods])
    return out


def _stack_members(
    column: np.ndarray, rows_of: Mapping[str, np.ndarray], at_month: Mapping[str, np.ndarray], present: Sequence[str]
) -> np.ndarray:
    """One column's values, members x months (``at_month[m]``: the position of each month among
    member m's rows, -1 where it has none: NaN)."""
    stacked = np.full((len(present), len(next(iter(at_month.values())))), np.nan)
    for i, m in enumerate(present):
        found = at_month[m] >= 0
        stacked[i, found] = column[rows_of[m][at_month[m][found]]]
    return stacked


_ANNUAL_COMBINED = ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")


def combine_annual(
    rows: Sequence[Mapping[str, object]],
    members: Sequence[str],
    weights: Mapping[str, float] | None = None,
    methods: Sequence[str] | None = None,
) -> list[dict[str, object]]:
    """Annual-total rows (``models.core.engine.ANNUAL_COLUMNS``) of every combination (default:
    every ``combo_*``) from the members' annual rows of ONE window or series: forecast and bounds
    combined like the monthly ones (quantile by quantile), the observed part and the counts copied
    from the first member."""
    by_model = {str(r["model"]): r for r in rows}
    present = [m for m in members if m in by_model]
    if not present:
        return []
    out = []
    for method in registry.combinations() if methods is None else methods:
        row = dict(by_model[present[0]], model=method)
        for col in _ANNUAL_COMBINED:
            values = np.array([[float(by_model[m][col])] for m in present])  # type: ignore[arg-type]
            row[col] = float(combine_values(values, method, present, weights)[0])
        out.append(row)
    return out


def backtest_windows(metrics: pd.DataFrame, unique_id: str) -> list[tuple[pd.Timestamp, dict[str, float]]]:
    """One series' scored backtest windows as (cutoff, model -> MASE), the input of the weights."""
    m = metrics[metrics["unique_id"] == unique_id]
    return [
        (pd.Timestamp(c), dict(zip(g["model"].astype(str), g["mase"].astype(float))))
        for c, g in m.groupby("cutoff", sort=True)
    ]


def add_combinations(fc: ForecastResult, metrics: pd.DataFrame, members: Sequence[str]) -> ForecastResult:
    """The published forecast ``fc`` with its combination rows, per series, from the members'
    forecasts of the SAME run (no refit); the inverse-MASE weights from ALL the series' backtest
    windows (``metrics``: the backtest's metric table). Forecasts, annual totals, fits and fitted
    models gain the combinations (a fitted ``Combined`` where every member's fitted model is known)."""
    forecasts, annual, fits, fitted = fc.forecasts, fc.annual, fc.fits, fc.fitted
    f_out, a_out, fit_rows, fitted_out = [forecasts], [] if annual is None else [annual], [], dict(fitted)
    for uid, group in forecasts.groupby("unique_id", sort=False):
        present = [m for m in members if (group["model"] == m).any()]
        if not present:
            continue
        weights = inverse_mase_weights(backtest_windows(metrics, str(uid)), present)
        f_out.append(combine_window(group, present, weights))
        if annual is not None:
            rows = annual[annual["unique_id"] == uid].to_dict("records")
            a_out.append(pd.DataFrame(combine_annual(rows, present, weights), columns=annual.columns))
        n_obs = fits.loc[fits["unique_id"] == uid, "n_obs"]
        for method in registry.combinations():
            fit_rows.append(
                FitRow(
                    uid,
                    method,
                    method,
                    "ok",
                    n_obs=int(n_obs.iloc[0]) if len(n_obs) else 0,
                    description=json.dumps(describe_combination(method, present, weights)),
                )
            )
            if all((uid, m) in fitted for m in present):
                members_fitted = {m: fitted[(uid, m)] for m in present}
                fitted_out[(str(uid), method)] = _combination_class(method)(members_fitted, weights)
    return replace(
        fc,
        forecasts=pd.concat(f_out, ignore_index=True),
        annual=pd.concat(a_out, ignore_index=True) if annual is not None else None,
        fits=pd.concat([fits, fits_frame(fit_rows)], ignore_index=True),
        fitted=fitted_out,
    )


def describe_combination(method: str, present: Sequence[str], weights: Mapping[str, float]) -> dict[str, Any]:
    """A published combination's ``model_fits.description``: its members (and, for the weighted
    reduction, its weights)."""
    if _combination_class(method).reduce != "weighted":
        return {"members": present}
    return {"members": present, "weights": {m: round(weights[m], 6) for m in present if m in weights}}
