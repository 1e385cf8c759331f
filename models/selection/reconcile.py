"""Coherent forecasts over the hierarchy: MinT reconciliation in its linear-constraint form.

The hierarchy of ``data/series.csv`` is TWO partitions of the same total: ``total`` = the 21 item
children (20 MTI items + ``item:other``) and ``total`` = the 10 destination children (China, US,
Japan, India, five customs regions, ``destination:rest_of_world``). There is no item x destination
cross, so no single bottom level exists and a summing matrix S over one bottom level cannot state
both constraints. The constraints are written instead as a matrix C (one row per partition:
``parent - sum(children) = 0``); a vector of forecasts y is coherent when C y = 0.

**The method.** MinT (Wickramasuriya, Athanasopoulos & Hyndman, JASA 2019) in its zero-constrained
(projection) form (Di Fonzo & Girolimetto, IJF 2023; Panagiotelis et al., IJF 2021, show the
reconciled forecast depends only on the coherent subspace and W, not on how it is parameterised):

    y~ = P y^,   P = I - W C' (C W C')^-1 C

the W-orthogonal projection of the base forecasts y^ on {y : C y = 0}. It moves each series by an
amount proportional to its error (co)variance in W: a series the models forecast badly absorbs
more of the incoherence. One P per reconciliation is applied to every forecast month and to every
sample path (``reconcile_paths``), so monthly bounds and annual totals from the reconciled paths
are coherent path by path.

**The total is kept** (``reconcile(keep=...)``, default: the parents). Its rows and columns of W
are 0, so P leaves the parent's base forecast as it is and the children absorb the whole
incoherence, still in proportion to their (co)variances: MinT with an immutable forecast (Zhang,
Kang, Panagiotelis & Li, EJOR 2023). Why: measured on the backtest of the embedded data (3
cutoffs, ``benchmarks/reconcile.py``), plain MinT moved the total towards the sum of its 48-month
children and made it worse (mean MASE 0.387 -> 0.458) while it improved the items a little
(0.759 -> 0.755); with the total kept the total stays 0.387 and the items improve more (0.748).
The seasonal-naive residuals do not know that the total, with 26 years of history, is forecast
far better than its children; keeping it says so. (A choice made after looking at those 3 windows:
the README says so.)

**Joint paths** (``copula_order``). Each series' sample paths come from its own model, drawn
independently of the other series', so path i of the total and path i of a child are unrelated
draws. Applied to such paths the projection moves every child by its share of an incoherence
that is mostly sampling noise (the total's draw against the sum of the children's independent
draws), and the children's ranges widened: steel's 2026 annual 80% range went from 1.6 to 3.7 USD
bn (2.2 with the ordering). Before the projection the whole paths of each series are therefore re-ordered so that their
ranks follow the ranks of that series' seasonal residuals at n_paths months drawn (with
replacement) from the residual history: the empirical copula of the residuals (the "Schaake
shuffle" / empirical copula reordering of Ben Taieb, Taylor & Hyndman, JASA 2021, "Hierarchical
probabilistic forecasting of electricity demand with smart meter data"; Clark et al. 2004).
Whole paths are permuted (ranked by their sum over the horizon), not month by month, so every
series keeps exactly its own draws, its monthly marginals and the month-to-month correlation
inside a path that its annual range depends on; only which draw of one series goes with which
draw of another changes.

**W** (``covariance``): ``mint_shrink`` (default) is the sample covariance of the residuals shrunk
towards its diagonal, the target and intensity of Schaefer & Strimmer (2005) used by
Wickramasuriya et al.: the correlations are shrunk towards 0 by
lambda = sum_{i!=j} Var^(r_ij) / sum_{i!=j} r_ij^2 (clipped to [0, 1]), which keeps W positive
definite with fewer residual months than series. ``wls_var`` keeps the diagonal only and ``ols``
is the identity (the textbook example: the adjustment is shared equally).

**Residuals** (``seasonal_residuals``): the errors of the seasonal-naive forecast,
y_t - y_{t-12}, over the months up to the information cutoff where every series of the hierarchy is
observed. Why these (measured in ``benchmarks/reconcile.py``, see the README): the base champions
are many different models (ARIMA, Prophet, ETS, Theta, combinations) and the model protocol
returns no in-sample residuals; the backtest errors known at a cutoff are few (at the first
backtest cutoff none, at the second six months of one window) so they could not give a W at every
cutoff, and a W that exists only in later windows would make the backtest of ``mint`` measure two
different methods. The seasonal differences exist at every cutoff (12 months at the first backtest
cutoff, 36 for the published forecast), use only data up to the cutoff, and are 12-step-ahead
errors like the ones being reconciled (MinT needs W only up to scale: Wickramasuriya et al.'s
W_h = k_h W_1 assumption).

Note: the seasonal differences of coherent data are themselves coherent (C e = 0 in every month),
so their sample covariance S has C S = 0 and plain MinT shrink, W = (1 - lambda) S + lambda diag(S),
gives exactly the WLS projection on diag(S) (W C' = lambda diag(S) C'): the correlations only
matter once the total is kept (then the children's block of W enters C W C' in full).

**Why not Nixtla's hierarchicalforecast.** Its reconcilers (1.5.3) take a summing matrix S over
one bottom level plus in-sample fitted values; the two partitions have no common bottom level
(the trick of a signed S, e.g. rest_of_world = items - other destinations, would work for the point
forecast but not with its tag/level checks and bottom-up sampling), and our models expose no
in-sample fitted values. The projection above is one linear solve with numpy; adding the package
(numba, a QP solver) for it would be weight without function.

Pure: no Prefect, MLflow or files. The caller (``models.core.backtest`` at each cutoff; ``flows/jobs``
for the published forecast) passes the base forecasts, the hierarchy and the history.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from models.core.annual import annual_totals
from models.core.base import FORECAST_COLUMNS, Forecaster
from models.core.engine import ForecastResult, _annual_row, series_seed, with_own_columns
from models.core.fits import FitRow, fits_frame
from models.errors import ExportcastError

__all__ = [
    "HierarchyError",
    "RECONCILED",
    "COVARIANCES",
    "Hierarchy",
    "hierarchy_from_table",
    "seasonal_residuals",
    "covariance",
    "projection",
    "Reconciliation",
    "reconcile",
    "reconcile_forecasts",
    "copula_order",
    "reconcile_paths",
    "Reconciled",
    "COHERENCE_TOLERANCE",
]


class HierarchyError(ExportcastError, ValueError):
    """The hierarchy table or the data do not allow a reconciliation; the message names the series."""


#: the model name of the reconciled champion set in the backtest and the published tables
RECONCILED = "mint"
COVARIANCES: tuple[str, ...] = ("mint_shrink", "wls_var", "ols")
#: the history must add up within this relative gap in every month where all its series are observed
COHERENCE_TOLERANCE = 1e-3
SEASON = 12
_BOUNDS = ("lo_80", "hi_80", "lo_95", "hi_95")
_QUANTILES = {"lo_95": 0.025, "lo_80": 0.10, "hi_80": 0.90, "hi_95": 0.975}


# =========================================================================== the hierarchy
@dataclass(frozen=True)
class Hierarchy:
    """Series (parents first) and the constraint matrix C: C y = 0 for coherent y."""

    series: tuple[str, ...]
    partitions: tuple[tuple[str, str, tuple[str, ...]], ...]  # (parent, hierarchy name, children)

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for p, _, _ in self.partitions))

    @property
    def constraints(self) -> np.ndarray:
        index = {uid: i for i, uid in enumerate(self.series)}
        C = np.zeros((len(self.partitions), len(self.series)))
        for row, (parent, _, children) in enumerate(self.partitions):
            C[row, index[parent]] = 1.0
            for child in children:
                C[row, index[child]] -= 1.0
        return C

    def level_of(self) -> dict[str, str]:
        """Series -> level for reporting: 'parent' for a parent, else the partition's name."""
        out: dict[str, str] = {}
        for parent, name, children in self.partitions:
            out.setdefault(parent, "parent")
            for child in children:
                out.setdefault(child, name)
        for parent, _, _ in self.partitions:
            out[parent] = "parent"
        return out

    def gaps(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per partition ('parent/name'): |parent - sum(children)| / |parent|, element by element."""
        out = {}
        for parent, name, children in self.partitions:
            p = np.asarray(values[parent], dtype=float)
            s = sum(np.asarray(values[c], dtype=float) for c in children)
            out[f"{parent}/{name}"] = np.abs(p - s) / np.maximum(np.abs(p), 1e-12)
        return out


def hierarchy_from_table(table: pd.DataFrame, history: Mapping[str, pd.Series] | None = None) -> Hierarchy | None:
    """The hierarchy of a series table (columns ``unique_id``, ``hierarchy``, ``parent``; rows
    with an empty parent are outside it). None when no row names a parent.

    With ``history`` (unique_id -> monthly series), checks what a reconciliation needs and raises
    ValueError with one line naming the series: every parent and child is in the data, every
    series of the hierarchy ends in the same month, and the history adds up (each parent equals
    the sum of its children within ``COHERENCE_TOLERANCE`` in every month where all are observed:
    a child missing from the data shows here)."""
    missing = [c for c in ("unique_id", "hierarchy", "parent") if c not in table.columns]
    if missing:
        raise HierarchyError(f"hierarchy: the series table lacks column(s) {missing}; has {list(table.columns)}")
    rows = table.loc[
        table["parent"].notna() & (table["parent"].astype(str).str.strip() != ""), ["unique_id", "hierarchy", "parent"]
    ]
    if rows.empty:
        return None
    dup = rows["unique_id"].duplicated()
    if dup.any():
        raise HierarchyError(f"hierarchy: series '{rows['unique_id'][dup].iloc[0]}' is listed more than once")
    partitions: list[tuple[str, str, tuple[str, ...]]] = []
    for (parent, name), group in rows.groupby(
        [rows["parent"].astype(str).str.strip(), rows["hierarchy"].fillna("").astype(str)], sort=True
    ):
        children = tuple(sorted(group["unique_id"].astype(str)))
        if parent in children:
            raise HierarchyError(f"hierarchy: series '{parent}' is its own parent")
        partitions.append((parent, name, children))
    parents = list(dict.fromkeys(p for p, _, _ in partitions))
    series = tuple(dict.fromkeys([*parents, *(c for _, _, ch in partitions for c in ch)]))
    hierarchy = Hierarchy(series=series, partitions=tuple(partitions))
    if history is not None:
        _check_history(hierarchy, history)
    return hierarchy


def _check_history(hierarchy: Hierarchy, history: Mapping[str, pd.Series]) -> None:
    for parent, name, children in hierarchy.partitions:
        if parent not in history:
            raise HierarchyError(
                f"hierarchy: parent '{parent}' of the {name} series ({children[0]}, ...) is not in the data"
            )
        for child in children:
            if child not in history:
                raise HierarchyError(f"hierarchy: series '{child}' ({name} child of '{parent}') is not in the data")
    last = {uid: history[uid].dropna().index.max() for uid in hierarchy.series}
    for parent, name, children in hierarchy.partitions:
        for child in children:
            if last[child] != last[parent]:
                raise HierarchyError(
                    f"hierarchy: series '{child}' ends {last[child]:%Y-%m}, its parent '{parent}' ends "
                    f"{last[parent]:%Y-%m}: every series of the hierarchy must end in the same month"
                )
        wide = pd.concat({uid: history[uid] for uid in (parent, *children)}, axis=1).dropna()
        if wide.empty:
            raise HierarchyError(f"hierarchy: '{parent}' and its {name} children share no observed month")
        total = wide[parent].to_numpy()
        gap = np.abs(total - wide[list(children)].sum(axis=1).to_numpy()) / np.maximum(np.abs(total), 1e-12)
        worst = int(np.argmax(gap))
        if gap[worst] > COHERENCE_TOLERANCE:
            raise HierarchyError(
                f"hierarchy: '{parent}' differs from the sum of its {name} children by "
                f"{100 * gap[worst]:.2f}% in {wide.index[worst]:%Y-%m} (tolerance "
                f"{100 * COHERENCE_TOLERANCE:.1f}%): a child is missing or mislabelled"
            )


# =========================================================================== W
def seasonal_residuals(
    history: Mapping[str, pd.Series], series: Sequence[str], cutoff: pd.Timestamp | None = None, season: int = SEASON
) -> np.ndarray:
    """Seasonal-naive errors y_t - y_{t-season} (rows: months <= ``cutoff`` where every series
    and its lag are observed; columns: ``series`` in order). May have zero rows."""
    wide = pd.concat({uid: history[uid] for uid in series}, axis=1)
    if cutoff is not None:
        wide = wide.loc[: pd.Timestamp(cutoff)]
    wide = wide.asfreq("MS")
    diff = (wide - wide.shift(season)).dropna()
    return diff.to_numpy(dtype=float)


def covariance(residuals: np.ndarray, method: str = "mint_shrink") -> tuple[np.ndarray, float]:
    """W (n x n) and the shrinkage intensity lambda (1.0 for wls_var, nan for ols) from residuals
    (rows: time, columns: series). With fewer than 2 rows every method falls back to ``ols``."""
    if method not in COVARIANCES:
        raise ValueError(f"reconciliation covariance must be one of {', '.join(COVARIANCES)}; got {method!r}")
    r = np.asarray(residuals, dtype=float)
    n = r.shape[1]
    if method == "ols" or r.shape[0] < 2:
        return np.eye(n), float("nan")
    centred = r - r.mean(axis=0)
    t = r.shape[0]
    var = (centred**2).sum(axis=0) / (t - 1)
    floor = max(float(var.max()) * 1e-12, 1e-300)
    var = np.maximum(var, floor)
    if method == "wls_var":
        return np.diag(var), 1.0
    # Schaefer-Strimmer (2005) target D (diagonal): shrink the correlations towards 0
    sd = np.sqrt(var)
    z = centred / sd
    w = z[:, :, None] * z[:, None, :]  # t x n x n
    corr = w.sum(axis=0) / (t - 1)
    var_corr = t / (t - 1) ** 3 * ((w - w.mean(axis=0)) ** 2).sum(axis=0)
    off = ~np.eye(n, dtype=bool)
    denominator = float((corr[off] ** 2).sum())
    lam = 1.0 if denominator <= 0 else float(np.clip(var_corr[off].sum() / denominator, 0.0, 1.0))
    shrunk = corr * (1.0 - lam)
    np.fill_diagonal(shrunk, 1.0)
    return shrunk * np.outer(sd, sd), lam


def projection(C: np.ndarray, W: np.ndarray) -> np.ndarray:
    """P = I - W C' (C W C')^-1 C: the W-orthogonal projection onto {y : C y = 0}."""
    C = np.asarray(C, dtype=float)
    W = np.asarray(W, dtype=float)
    WCt = W @ C.T
    return np.eye(W.shape[0]) - WCt @ np.linalg.solve(C @ WCt, C)


# =========================================================================== reconcile
@dataclass(frozen=True)
class Reconciliation:
    """What one reconciliation used: P (rows/columns in ``series`` order) and how W was made."""

    series: tuple[str, ...]
    P: np.ndarray
    method: str
    shrinkage: float
    n_residuals: int
    kept: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "shrinkage": None if np.isnan(self.shrinkage) else round(self.shrinkage, 6),
            "n_residual_months": self.n_residuals,
            "kept": list(self.kept),
        }


def reconcile(
    hierarchy: Hierarchy,
    history: Mapping[str, pd.Series] | None = None,
    *,
    cutoff: pd.Timestamp | None = None,
    method: str = "mint_shrink",
    residuals: np.ndarray | None = None,
    keep: Sequence[str] | None = None,
) -> Reconciliation:
    """The reconciliation at ``cutoff``: W from ``residuals`` (rows: time, columns:
    ``hierarchy.series``) or, when None, from the seasonal residuals of ``history`` up to the cutoff.

    ``keep``: series whose base forecast is kept as it is (immutable; their rows and columns of W
    are set to 0, so P leaves them unchanged and the other series absorb the whole incoherence).
    None (default) keeps the parents (see the module docstring); () is plain MinT."""
    if residuals is None:
        if history is None and method != "ols":
            raise ValueError("reconcile needs the history or the residuals to estimate W")
        residuals = (
            np.zeros((0, len(hierarchy.series)))
            if history is None
            else seasonal_residuals(history, hierarchy.series, cutoff)
        )
    residuals = np.asarray(residuals, dtype=float)
    if residuals.ndim != 2 or residuals.shape[1] != len(hierarchy.series):
        raise ValueError(
            f"residuals must have {len(hierarchy.series)} columns (one per series of the hierarchy); "
            f"got shape {residuals.shape}"
        )
    W, lam = covariance(residuals, method)
    kept = tuple(hierarchy.parents if keep is None else keep)
    unknown = [k for k in kept if k not in hierarchy.series]
    if unknown:
        raise ValueError(f"reconcile: series '{unknown[0]}' to keep is not in the hierarchy")
    for uid in kept:
        j = hierarchy.series.index(uid)
        W[j, :] = 0.0
        W[:, j] = 0.0
    return Reconciliation(
        hierarchy.series, projection(hierarchy.constraints, W), method, lam, int(residuals.shape[0]), kept
    )


def reconcile_forecasts(forecasts: pd.DataFrame, rec: Reconciliation, *, name: str = RECONCILED) -> pd.DataFrame:
    """Reconciled rows of ONE set of base forecasts: ``forecasts`` holds, for every series of
    ``rec`` and the same months, one row per (unique_id, ds) with FORECAST_COLUMNS (other columns,
    e.g. cutoff and y, are copied). The point forecast is P y^ month by month; each bound is moved
    by its series' adjustment (the base interval shifted; ``reconcile_paths`` gives bounds from
    reconciled paths where the paths exist). Raises ValueError naming a series without a forecast
    or with different months."""
    base = _wide(forecasts, rec.series)
    adjusted = base @ rec.P.T  # months x series
    shift = adjusted - base
    out = forecasts[forecasts["unique_id"].isin(rec.series)].copy()
    col = {uid: i for i, uid in enumerate(rec.series)}
    months = {m: i for i, m in enumerate(_months(forecasts, rec.series))}
    rows = [months[d] for d in out["ds"]]
    cols = [col[u] for u in out["unique_id"]]
    delta = shift[rows, cols]
    for c in FORECAST_COLUMNS:
        out[c] = out[c].to_numpy(dtype=float) + delta
    out["model"] = name
    return out.reset_index(drop=True)


def _months(forecasts: pd.DataFrame, series: Sequence[str]) -> pd.DatetimeIndex:
    first = forecasts.loc[forecasts["unique_id"] == series[0], "ds"]
    return pd.DatetimeIndex(sorted(first))


def _wide(forecasts: pd.DataFrame, series: Sequence[str]) -> np.ndarray:
    """months x series matrix of the point forecasts; every series must cover the same months."""
    months = _months(forecasts, series)
    out = np.empty((len(months), len(series)))
    for j, uid in enumerate(series):
        rows = forecasts.loc[forecasts["unique_id"] == uid].set_index("ds")["forecast"]
        if rows.empty:
            raise ValueError(f"reconcile: series '{uid}' of the hierarchy has no base forecast")
        if rows.index.has_duplicates:
            raise ValueError(
                f"reconcile: series '{uid}' has more than one base forecast for "
                f"{rows.index[rows.index.duplicated()][0]:%Y-%m}"
            )
        if len(rows) != len(months) or not pd.DatetimeIndex(sorted(rows.index)).equals(months):
            raise ValueError(
                f"reconcile: series '{uid}' is forecast for {len(rows)} month(s) "
                f"{_span(rows.index)}, series '{series[0]}' for {len(months)} {_span(months)}: "
                "every series of the hierarchy must be forecast for the same months"
            )
        out[:, j] = rows.reindex(months).to_numpy(dtype=float)
    return out


def _span(index: pd.Index) -> str:
    return f"({pd.Timestamp(min(index)):%Y-%m}..{pd.Timestamp(max(index)):%Y-%m})" if len(index) else "(none)"


def copula_order(
    paths: Mapping[str, np.ndarray], residuals: np.ndarray, series: Sequence[str], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Whole sample paths of each series re-ordered by the empirical copula of ``residuals``
    (rows: months, columns: ``series`` in order; rows with a missing value are dropped): n_paths
    rows are drawn with replacement, and the path of rank k (by its sum over the horizon) of a
    series goes where that series' residual has rank k among the drawn rows (ties, from a month
    drawn twice, broken at random). Each series keeps its own (n_paths, h) draws, permuted by
    row. With fewer than 2 complete residual rows the paths are returned as they are.
    Series of ``paths`` not in ``series`` are returned unchanged."""
    out = {uid: np.asarray(p, dtype=float) for uid, p in paths.items()}
    r = np.asarray(residuals, dtype=float)
    if r.ndim != 2 or r.shape[1] != len(series):
        raise ValueError(f"residuals must have {len(series)} columns (one per series); got shape {r.shape}")
    r = r[np.isfinite(r).all(axis=1)]
    if r.shape[0] < 2 or not out:
        return out
    n_paths = {out[uid].shape[0] for uid in series if uid in out}
    if len(n_paths) != 1:
        raise ValueError(f"reconcile: the series' sample paths differ in number: {sorted(n_paths)}")
    n = n_paths.pop()
    months = rng.integers(0, r.shape[0], size=n)
    for j, uid in enumerate(series):
        if uid not in out:
            continue
        by_level = np.argsort(np.nansum(out[uid], axis=1), kind="stable")  # path index of rank 0..n-1
        rank = np.empty(n, dtype=int)
        rank[np.lexsort((rng.random(n), r[months, j]))] = np.arange(n)  # rank of each drawn residual
        out[uid] = out[uid][by_level[rank]]
    return out


def reconcile_paths(
    paths: Mapping[str, np.ndarray], rec: Reconciliation, point: Mapping[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """The same P applied to every sample path: ``paths`` maps each series to (n_paths, h) draws,
    path i of every series taken as one joint draw. With ``point`` (series -> h base point
    forecasts) each series' paths are first centred on its point forecast, so that the mean of the
    reconciled paths is the reconciled point forecast exactly."""
    stack = []
    for uid in rec.series:
        if uid not in paths:
            raise ValueError(f"reconcile: series '{uid}' of the hierarchy has no sample paths")
        p = np.asarray(paths[uid], dtype=float)
        if point is not None:
            p = p - p.mean(axis=0) + np.asarray(point[uid], dtype=float)
        stack.append(p)
    shapes = {s.shape for s in stack}
    if len(shapes) != 1:
        raise ValueError(f"reconcile: the series' sample paths differ in shape: {sorted(shapes)}")
    joint = np.stack(stack, axis=-1)  # n_paths x h x series
    out = joint @ rec.P.T
    return {uid: out[:, :, j] for j, uid in enumerate(rec.series)}


def bounds_from_paths(paths: np.ndarray) -> dict[str, np.ndarray]:
    """Monthly interval bounds (lo_80, hi_80, lo_95, hi_95) from (n_paths, h) draws."""
    return {k: np.quantile(paths, q, axis=0) for k, q in _QUANTILES.items()}


# =========================================================================== the fitted form
class Reconciled(Forecaster):
    """A series' reconciled forecast as a fitted model (for the registry): the base champion's
    forecast plus the reconciliation's adjustment of each reconciled month (months beyond them,
    none: reconciliation is of the published months only). Never fitted itself."""

    name = RECONCILED

    def __init__(self, base: Forecaster, adjustment: np.ndarray, base_name: str, details: Mapping[str, Any]) -> None:
        super().__init__(base=base_name)
        self.base_, self.adjustment_ = base, np.asarray(adjustment, dtype=float)
        self.base_name, self.details = base_name, dict(details)
        self.last_ds_, self.n_obs_ = base.last_ds_, base.n_obs_
        self.nonnegative_ = False  # clipping would break the sums
        self.clipped_: dict[str, int] = {}
        self.uses_exog = bool(getattr(base, "uses_exog", False))  # type: ignore[misc]
        self._fitted = True

    def _shift(self, h: int) -> np.ndarray:
        out = np.zeros(h)
        k = min(h, len(self.adjustment_))
        out[:k] = self.adjustment_[:k]
        return out

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        raise NotImplementedError("a reconciled forecast is built from a fitted base model; it is never fitted itself")

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        fc = self.base_.predict(h, X_future if self.uses_exog else None)
        shift = self._shift(h)
        return {c: fc[c].to_numpy(dtype=float) + shift for c in FORECAST_COLUMNS}

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        paths = self.base_.sample_paths(
            h, n_paths, int(rng.integers(0, 2**32 - 1)), X_future if self.uses_exog else None
        )
        return paths + self._shift(h)

    def describe(self) -> dict[str, Any]:
        return {"base": self.base_name, **self.details}


def describe_json(base: str, rec: Reconciliation) -> str:
    return json.dumps({"base": base, **rec.describe()}, sort_keys=True)


# =========================================================================== choose and publish
def compare_levels(
    metrics: pd.DataFrame, hierarchy: Hierarchy, *, base: str = "champion", metric: str = "mase", name: str = RECONCILED
) -> pd.DataFrame:
    """Mean ``metric`` per level of the hierarchy (parent, then each partition) and over all its
    series, reconciled vs base, over the (series, cutoff) windows where both are scored: columns
    level, n, base, reconciled."""
    m = metrics[metrics["unique_id"].isin(hierarchy.series) & metrics["model"].isin([base, name])]
    wide = m.pivot_table(index=["unique_id", "cutoff"], columns="model", values=metric, aggfunc="first")
    if wide.empty or base not in wide or name not in wide:
        return pd.DataFrame(columns=["level", "n", "base", "reconciled"])
    wide = wide[[base, name]].dropna()
    level = hierarchy.level_of()
    wide["level"] = [level[u] for u in wide.index.get_level_values("unique_id")]
    rows = [
        {"level": lv, "n": len(g), "base": float(g[base].mean()), "reconciled": float(g[name].mean())}
        for lv, g in wide.groupby("level", sort=False)
    ]
    rows.append(
        {"level": "all", "n": len(wide), "base": float(wide[base].mean()), "reconciled": float(wide[name].mean())}
    )
    order = {"parent": 0, "all": 99}
    return (
        pd.DataFrame(rows)
        .sort_values("level", key=lambda s: s.map(lambda v: order.get(v, 1)), kind="stable")
        .reset_index(drop=True)
    )


def choose_reconciled(metrics: pd.DataFrame, hierarchy: Hierarchy, *, metric: str = "mase") -> tuple[bool, str]:
    """Whether the reconciled set beats (or ties) the base champions: mean ``metric`` over every
    series of the hierarchy and every scored window (all windows are fully observed when the
    published forecast is made, the honest rule's information set), and the sentence saying so."""
    levels = compare_levels(metrics, hierarchy, metric=metric)
    if levels.empty:
        return False, "no backtest window scored both the reconciled and the base forecasts"
    row = levels[levels["level"] == "all"].iloc[0]
    better = bool(row["reconciled"] <= row["base"] + 1e-12)
    detail = ", ".join(f"{r.level} {r.reconciled:.3f} vs {r.base:.3f}" for r in levels.itertuples() if r.level != "all")
    verdict = "no worse than" if better else "WORSE than"
    return better, (
        f"reconciled mean {metric.upper()} {row['reconciled']:.3f} {verdict} the base champions' "
        f"{row['base']:.3f} over {int(row['n'])} series-windows ({detail})"
    )


def reconcile_published(
    fc: ForecastResult,
    champion_of: Mapping[str, str],
    history: Mapping[str, pd.Series],
    hierarchy: Hierarchy,
    *,
    n_paths: int,
    seed: int,
    year: int | None,
    exog: pd.DataFrame | None = None,
    own_exog: Mapping[str, pd.DataFrame] | None = None,
    method: str = "mint_shrink",
    name: str = RECONCILED,
) -> ForecastResult:
    """The published forecast ``fc`` with its reconciled rows: the champion of each hierarchy series
    (``champion_of``), its fitted model's sample paths (drawn with the engine's seed for that
    series and model, so a kept series' paths and annual interval are its base ones), and ONE P
    (W from the whole history) applied to the point forecasts and to every path. Monthly bounds
    are quantiles of the reconciled paths (widened to hold the point where a base model's paths are
    not centred on its point, e.g. the median ensemble); the annual total of ``year`` sums each
    reconciled path, its point the sum of the reconciled monthly points. ``own_exog``: a series'
    own regressor columns (its leading models' indicator as of the forecast), joined to ``exog``
    as in the engine. Forecasts, annual totals, fits and fitted models gain the ``name`` rows (the
    base rows untouched)."""
    base = _champion_rows(fc.forecasts, champion_of, hierarchy)
    residuals = seasonal_residuals(history, hierarchy.series)  # W's residuals, and the copula of the paths
    rec = reconcile(hierarchy, method=method, residuals=residuals)
    out = reconcile_forecasts(base, rec, name=name)
    months = pd.DatetimeIndex(sorted(base.loc[base["unique_id"] == hierarchy.series[0], "ds"]))
    points = {
        uid: base.loc[base["unique_id"] == uid].sort_values("ds")["forecast"].to_numpy(dtype=float)
        for uid in hierarchy.series
    }
    paths = _champion_paths(fc.fitted, champion_of, history, hierarchy, months, n_paths, seed, exog, own_exog)
    cutoff = max(history[uid].index[-1] for uid in hierarchy.series)
    paths = copula_order(
        paths, residuals, hierarchy.series, np.random.default_rng(series_seed(seed, "copula", RECONCILED, cutoff))
    )
    joint = reconcile_paths(paths, rec)  # not re-centred: a kept series keeps its base paths and interval
    new_annual, new_fits, new_fitted = [], [], dict(fc.fitted)
    out = out.sort_values(["unique_id", "ds"]).reset_index(drop=True)
    for uid in hierarchy.series:
        mask = (out["unique_id"] == uid).to_numpy()
        point = out.loc[mask, "forecast"].to_numpy(dtype=float)
        drawn = _bounded(out, mask, point, joint[uid], history[uid])
        champ = champion_of[uid]
        if year is not None:
            new_annual.append(
                _annual_row(uid, name, year, annual_totals(history[uid], months, drawn, year, point=point))
            )
        n_obs = fc.fits.loc[(fc.fits["unique_id"] == uid) & (fc.fits["model"] == champ), "n_obs"]
        new_fits.append(
            FitRow(
                uid,
                name,
                name,
                "ok",
                n_obs=int(n_obs.iloc[0]) if len(n_obs) else 0,
                description=describe_json(champ, rec),
            )
        )
        new_fitted[(uid, name)] = Reconciled(fc.fitted[(uid, champ)], point - points[uid], champ, rec.describe())
    annual = fc.annual
    return replace(
        fc,
        forecasts=pd.concat([fc.forecasts, out[list(fc.forecasts.columns)]], ignore_index=True),
        annual=None
        if annual is None
        else pd.concat([annual, pd.DataFrame(new_annual, columns=annual.columns)], ignore_index=True),
        fits=pd.concat([fc.fits, fits_frame(new_fits)], ignore_index=True),
        fitted=new_fitted,
    )


def _champion_rows(forecasts: pd.DataFrame, champion_of: Mapping[str, str], hierarchy: Hierarchy) -> pd.DataFrame:
    """The forecast rows of each hierarchy series' champion, by month."""
    base_rows = []
    for uid in hierarchy.series:
        champ = champion_of.get(uid)
        rows = forecasts[(forecasts["unique_id"] == uid) & (forecasts["model"] == champ)]
        if rows.empty:
            raise ValueError(f"reconcile: series '{uid}' has no forecast of its champion '{champ}'")
        base_rows.append(rows.sort_values("ds"))
    return pd.concat(base_rows, ignore_index=True)


def _champion_paths(
    fitted: Mapping[tuple[str, str], Forecaster],
    champion_of: Mapping[str, str],
    history: Mapping[str, pd.Series],
    hierarchy: Hierarchy,
    months: pd.DatetimeIndex,
    n_paths: int,
    seed: int,
    exog: pd.DataFrame | None,
    own_exog: Mapping[str, pd.DataFrame] | None,
) -> dict[str, np.ndarray]:
    """Each hierarchy series' champion's sample paths over ``months``, drawn with the engine's seed
    and the regressors the engine gave it."""
    paths = {}
    for uid in hierarchy.series:
        champ = champion_of[uid]
        model = fitted.get((uid, champ))
        if model is None:
            raise ValueError(f"reconcile: series '{uid}' has no fitted champion '{champ}' to draw sample paths from")
        X = None
        if getattr(model, "uses_exog", False):
            shared = exog.reindex(months) if exog is not None else None
            if shared is not None and shared.isna().any().any():
                shared = None  # working days outside the calendar: as in the engine, the model ran without them
            own = (own_exog or {}).get(uid)  # NaN there means "not public yet": the model forecasts it
            X = with_own_columns(shared, own.reindex(months) if own is not None else None)
        paths[uid] = model.sample_paths(len(months), n_paths, series_seed(seed, uid, champ, history[uid].index[-1]), X)
    return paths


def _bounded(out: pd.DataFrame, mask: np.ndarray, point: np.ndarray, paths: np.ndarray, y: pd.Series) -> np.ndarray:
    """Set one series' monthly bounds in ``out`` (rows ``mask``) from its reconciled ``paths``;
    the paths the bounds and the annual total come from."""
    # the bounds of a series that cannot be negative (exports) come from its reconciled paths
    # floored at zero: the projection can push a small series' path below zero; the points
    # (the reconciled means, coherent) are not taken from the paths and are not changed
    drawn = np.maximum(paths, 0.0) if float(np.nanmin(y.to_numpy())) >= 0 else paths
    b = bounds_from_paths(drawn)
    out.loc[mask, "lo_95"] = np.minimum(b["lo_95"], np.minimum(b["lo_80"], point))
    out.loc[mask, "lo_80"] = np.minimum(b["lo_80"], point)
    out.loc[mask, "hi_80"] = np.maximum(b["hi_80"], point)
    out.loc[mask, "hi_95"] = np.maximum(b["hi_95"], np.maximum(b["hi_80"], point))
    return drawn


def reconciled_champions(
    champions: pd.DataFrame,
    hierarchy: Hierarchy,
    metrics: pd.DataFrame,
    *,
    use: bool,
    reason: str,
    metric: str = "mase",
    name: str = RECONCILED,
) -> pd.DataFrame:
    """The champions table of the published forecast: every series of the hierarchy gets the
    reconciled set as champion (``name``), so that the published champions are coherent; the reason
    keeps the base champion and says whether the backtest found reconciliation no worse (``use``)
    or kept it for coherence although worse. ``mean_score`` gains the series' reconciled mean."""
    out = champions.copy()
    m = metrics[(metrics["model"] == name)].groupby("unique_id")[metric].mean()
    for i in out.index[out["unique_id"].isin(hierarchy.series)]:
        uid, base = str(out.at[i, "unique_id"]), str(out.at[i, "champion"])
        why = "published" if use else "published for coherence although"
        out.at[i, "reason"] = (
            f"reconciled over the hierarchy (base champion {base}: {out.at[i, 'reason']}); {why} {reason}"
        )
        out.at[i, "champion"] = name
        try:
            scores = json.loads(out.at[i, "mean_score"]) if isinstance(out.at[i, "mean_score"], str) else {}
        except json.JSONDecodeError:
            scores = {}
        if uid in m.index and np.isfinite(m[uid]):
            scores[name] = round(float(m[uid]), 6)
        out.at[i, "mean_score"] = json.dumps(scores)
    return out
