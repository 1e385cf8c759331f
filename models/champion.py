"""Champion choice: per series, the model with the lowest mean MASE over backtest windows.

Rules (fixed, so the choice is reproducible and explainable):

- The score of a model is the mean of its finite MASE values over the windows. Only models
  scored on the largest number of windows compete, so that a model that failed (or had no
  scale) in a hard window cannot win on the easy ones.
- Ties (scores within ``TIE_TOLERANCE``) go to the simpler model by ``COMPLEXITY_ORDER``;
  names not listed come after the listed ones, alphabetically.
- No scored window: the caller's default champion, with the reason "no backtest window: default".
- At a cutoff (``choose_at``: the champion of a backtest window, or of a target year in the
  institutional comparison) only the earlier windows whose evaluated months were ALL observed by
  that cutoff count: a window still running past the cutoff had not been scored yet.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import pandas as pd

__all__ = ["COMPLEXITY_ORDER", "TIE_TOLERANCE", "CHAMPION", "Choice", "complexity_key", "default_champion", "choose",
           "choose_at", "select_champions"]

COMPLEXITY_ORDER: tuple[str, ...] = ("naive", "seasonal_naive", "theta", "ets", "arima", "prophet", "ensemble")
TIE_TOLERANCE = 1e-9
#: the model name under which champion rows appear in backtest outputs
CHAMPION = "champion"


def complexity_key(name: str) -> tuple[int, str]:
    """Sort key: listed models by COMPLEXITY_ORDER, then unknown names alphabetically."""
    try:
        return (COMPLEXITY_ORDER.index(name), "")
    except ValueError:
        return (len(COMPLEXITY_ORDER), name)


def default_champion(model_names: Iterable[str]) -> str:
    """The a-priori champion where no earlier window (or year) exists to choose one: the ensemble
    when it is enabled, else seasonal naive (the engine always fits it), else the first model."""
    names = list(model_names)
    for candidate in ("ensemble", "seasonal_naive"):
        if candidate in names:
            return candidate
    return names[0]


@dataclass(frozen=True)
class Choice:
    champion: str
    reason: str
    n_windows: int
    mean_mase: dict[str, float]


def choose(scores: Mapping[str, Iterable[float]], default: str) -> Choice:
    """Pick the champion from per-model MASE values (one per window).

    ``scores`` maps model name -> MASE of each window (NaN allowed). ``default`` is returned when
    no model has a finite score."""
    finite = {name: [float(v) for v in values if v is not None and math.isfinite(float(v))]
              for name, values in scores.items() if name != CHAMPION}
    n_windows = max((len(v) for v in finite.values()), default=0)
    means = {name: sum(v) / len(v) for name, v in finite.items() if v}
    if n_windows == 0:
        return Choice(default, "no backtest window: default", 0, means)
    contenders = {name: means[name] for name, v in finite.items() if len(v) == n_windows}
    best = min(contenders.values())
    tied = [name for name, score in contenders.items() if score - best <= TIE_TOLERANCE]
    champion = min(tied, key=complexity_key)
    reason = f"lowest mean MASE {contenders[champion]:.3f} over {n_windows} window{'s' if n_windows != 1 else ''}"
    if len(tied) > 1:
        others = ", ".join(sorted((t for t in tied if t != champion), key=complexity_key))
        reason += f" (tied with {others}; simpler model kept)"
    return Choice(champion, reason, n_windows, means)


def choose_at(windows: Iterable[tuple[pd.Timestamp, Mapping[str, float]]], cutoff: pd.Timestamp,
              default: str) -> Choice:
    """The champion at ``cutoff``: ``choose`` over the ``windows`` (last evaluated month, model ->
    MASE) whose last evaluated month is at or before ``cutoff``; the reason names the cutoff.

    This is the one rule of an honest champion: the rolling backtest applies it at each window,
    the institutional comparison at each target year's information cutoff."""
    cutoff = pd.Timestamp(cutoff)
    scores: dict[str, list[float]] = {}
    for end, window_scores in windows:
        if pd.Timestamp(end) <= cutoff:
            for model, value in window_scores.items():
                scores.setdefault(str(model), []).append(value)
    choice = choose(scores, default)
    if choice.n_windows == 0:
        return replace(choice, reason=f"no earlier window fully observed by {cutoff:%Y-%m}: default champion '{default}'")
    return replace(choice, reason=f"{choice.reason} before {cutoff:%Y-%m}")


def select_champions(metrics: pd.DataFrame, default: str, *, series: Iterable[str] = ()) -> pd.DataFrame:
    """One row per series: unique_id, champion, reason, n_windows, mean_mase (JSON object model ->
    mean MASE, models in complexity order).

    ``metrics`` has columns unique_id, model, cutoff, mase (rows of the ``champion`` pseudo-model
    are ignored). ``series`` lists extra series without any window (they get ``default``)."""
    missing = {"unique_id", "model", "mase"} - set(metrics.columns)
    if missing:
        raise ValueError(f"metrics lacks column(s) {sorted(missing)}; has {list(metrics.columns)}")
    rows = []
    seen: set[str] = set()
    for uid, group in metrics.groupby("unique_id", sort=True):
        scores = {str(model): g["mase"].tolist() for model, g in group.groupby("model", sort=False)}
        rows.append(_row(str(uid), choose(scores, default)))
        seen.add(str(uid))
    for uid in series:
        if uid not in seen:
            rows.append(_row(uid, choose({}, default)))
            seen.add(uid)
    return pd.DataFrame(rows, columns=["unique_id", "champion", "reason", "n_windows", "mean_mase"])


def _row(uid: str, choice: Choice) -> dict[str, object]:
    ordered = {name: round(choice.mean_mase[name], 6) for name in sorted(choice.mean_mase, key=complexity_key)}
    return {"unique_id": uid, "champion": choice.champion, "reason": choice.reason,
            "n_windows": choice.n_windows, "mean_mase": json.dumps(ordered)}
