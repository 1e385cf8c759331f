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
the window (``pool``): every enabled model except the combinations themselves and ``ensemble``.

The bounds are combined like the forecast, quantile by quantile ("quantile averaging",
Lichtendahl, Grushka-Cockayne & Winkler, Management Science 2013: averaging quantiles gives a
combined distribution with the members' average spread, better calibrated than averaging
independent draws, which shrinks the spread as members are added). Every reducer here is
monotone, so lo_95 <= lo_80 <= forecast <= hi_80 <= hi_95 holds as it does for every member.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import trim_mean

from models.core.base import FORECAST_COLUMNS, Forecaster
from models.core.fits import FitRow, fits_frame

if TYPE_CHECKING:  # pragma: no cover
    from models.core.engine import ForecastResult

__all__ = [
    "COMBINATIONS",
    "TRIM",
    "Combined",
    "pool",
    "inverse_mase_weights",
    "combine_values",
    "combine_window",
    "combine_annual",
    "backtest_windows",
    "add_combinations",
]

COMBINATIONS: tuple[str, ...] = ("combo_mean", "combo_trimmed", "combo_inv_mase")
#: share of the members cut at EACH end by the trimmed mean (scipy.stats.trim_mean: 5 members -> 1 cut at each end)
TRIM = 0.2
#: the median ensemble is a fitted model (models/selection/ensemble.py), not a member of the other combinations
_NOT_MEMBERS = frozenset({*COMBINATIONS, "ensemble", "champion"})


def pool(model_names: Iterable[str]) -> list[str]:
    """The members of the combinations: the single models among ``model_names`` (order kept)."""
    return [name for name in model_names if name not in _NOT_MEMBERS]


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


def combine_values(
    values: np.ndarray, method: str, members: Sequence[str], weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """Combine ``values`` (n_members x n, rows in ``members`` order) column by column.

    ``combo_inv_mase`` uses ``weights`` renormalised over the members present (a member without
    a weight gets none); no weight for any present member: the mean."""
    values = np.asarray(values, dtype=float)
    if method == "combo_mean":
        return values.mean(axis=0)
    if method == "combo_trimmed":
        return np.asarray(trim_mean(values, TRIM, axis=0), dtype=float)
    if method == "combo_inv_mase":
        w = np.array([float((weights or {}).get(m, 0.0)) for m in members])
        if w.sum() <= 0:
            return values.mean(axis=0)
        return (w / w.sum()) @ values
    raise ValueError(f"unknown combination {method!r}; known: {', '.join(COMBINATIONS)}")


def combine_window(
    forecasts: pd.DataFrame,
    members: Sequence[str],
    weights: Mapping[str, float] | None = None,
    methods: Sequence[str] = COMBINATIONS,
) -> pd.DataFrame:
    """Rows of every combination in ``methods`` from the members' rows of ONE window (or one
    series' forecast): ``forecasts`` has a ``model`` column, ``ds`` and FORECAST_COLUMNS; the
    other columns (unique_id, cutoff, y, ...) are copied from the first member's rows. Members
    without rows are left out; no member at all: an empty frame."""
    present = [m for m in members if (forecasts["model"] == m).any()]
    if not present:
        return forecasts.iloc[0:0].copy()
    by_model = {m: forecasts[forecasts["model"] == m].set_index("ds").sort_index() for m in present}
    template = by_model[present[0]]
    months = template.index
    frames = []
    for method in methods:
        out = template.copy()
        out["model"] = method
        for col in FORECAST_COLUMNS:
            stacked = np.stack([by_model[m][col].reindex(months).to_numpy(dtype=float) for m in present])
            out[col] = combine_values(stacked, method, present, weights)
        frames.append(out.reset_index()[list(forecasts.columns)])
    return pd.concat(frames, ignore_index=True)


_ANNUAL_COMBINED = ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")


def combine_annual(
    rows: Sequence[Mapping[str, object]],
    members: Sequence[str],
    weights: Mapping[str, float] | None = None,
    methods: Sequence[str] = COMBINATIONS,
) -> list[dict[str, object]]:
    """Annual-total rows (``models.core.engine.ANNUAL_COLUMNS``) of every combination from the
    members' annual rows of ONE window or series: forecast and bounds combined like the monthly
    ones (quantile by quantile), the observed part and the counts copied from the first member."""
    by_model = {str(r["model"]): r for r in rows}
    present = [m for m in members if m in by_model]
    if not present:
        return []
    out = []
    for method in methods:
        row = dict(by_model[present[0]], model=method)
        for col in _ANNUAL_COMBINED:
            values = np.array([[float(by_model[m][col])] for m in present])  # type: ignore[arg-type]
            row[col] = float(combine_values(values, method, present, weights)[0])
        out.append(row)
    return out


class Combined(Forecaster):
    """A combination of members ALREADY fitted on the same history (nothing is refitted): the
    published forecast of a combination candidate, and its fitted model for the registry.

    ``predict`` combines the members' forecasts and bounds like the backtest (``combine_values``);
    ``sample_paths`` is the linear pool of the members (each path is one member's path, the member
    drawn with the combination's weights, equal for the mean and the trimmed mean), so an annual
    total keeps the month-to-month correlation of the member that drew it."""

    name = "combination"

    def __init__(
        self, method: str, members: Mapping[str, Forecaster], weights: Mapping[str, float] | None = None
    ) -> None:
        if method not in COMBINATIONS:
            raise ValueError(f"unknown combination {method!r}; known: {', '.join(COMBINATIONS)}")
        if not members:
            raise ValueError(f"{method}: no fitted member to combine")
        super().__init__(method=method, weights=dict(weights or {}))
        self.method, self.members_, self.weights = method, dict(members), dict(weights or {})
        first = next(iter(self.members_.values()))
        self.last_ds_, self.n_obs_ = first.last_ds_, first.n_obs_
        self.nonnegative_ = all(m.nonnegative_ for m in self.members_.values())
        self.uses_exog = any(getattr(m, "uses_exog", False) for m in self.members_.values())  # type: ignore[misc]
        self._fitted = True

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        raise NotImplementedError("a combination is built from fitted members; it is never fitted itself")

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        names = list(self.members_)
        frames = [
            self.members_[m].predict(h, X_future if getattr(self.members_[m], "uses_exog", False) else None)
            for m in names
        ]
        return {
            c: combine_values(np.stack([f[c].to_numpy() for f in frames]), self.method, names, self.weights)
            for c in FORECAST_COLUMNS
        }

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        names = list(self.members_)
        w = (
            np.array([float(self.weights.get(m, 0.0)) for m in names])
            if self.method == "combo_inv_mase"
            else np.zeros(len(names))
        )
        w = w / w.sum() if w.sum() > 0 else np.full(len(names), 1 / len(names))
        counts = rng.multinomial(n_paths, w)
        paths = [
            self.members_[m].sample_paths(
                h,
                int(k),
                int(rng.integers(0, 2**32 - 1)),
                X_future if getattr(self.members_[m], "uses_exog", False) else None,
            )
            for m, k in zip(names, counts)
            if k > 0
        ]
        return np.concatenate(paths, axis=0)[rng.permutation(n_paths)]

    def describe(self) -> dict[str, Any]:
        return {"members": list(self.members_), "weights": {m: round(v, 6) for m, v in self.weights.items()}}


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
        for method in COMBINATIONS:
            fit_rows.append(
                FitRow(
                    uid,
                    method,
                    method,
                    "ok",
                    n_obs=int(n_obs.iloc[0]) if len(n_obs) else 0,
                    description=json.dumps(_description(method, present, weights)),
                )
            )
            if all((uid, m) in fitted for m in present):
                fitted_out[(str(uid), method)] = Combined(method, {m: fitted[(uid, m)] for m in present}, weights)
    return replace(
        fc,
        forecasts=pd.concat(f_out, ignore_index=True),
        annual=pd.concat(a_out, ignore_index=True) if annual is not None else None,
        fits=pd.concat([fits, fits_frame(fit_rows)], ignore_index=True),
        fitted=fitted_out,
    )


def _description(method: str, present: Sequence[str], weights: Mapping[str, float]) -> dict[str, Any]:
    """A published combination's ``model_fits.description``: its members (and the inverse-MASE weights)."""
    if method != "combo_inv_mase":
        return {"members": present}
    return {"members": present, "weights": {m: round(weights[m], 6) for m in present if m in weights}}
