"""Champion choice: per series, the candidate with the best mean backtest metric over windows.

Rules (fixed, so the choice is reproducible and explainable):

- The metric is the configured one (``backtest.champion_metric``: mase | smape | rmsse); the
  score of a candidate is the mean of its finite values over the windows. Candidates scored on
  the largest number of windows compete, so that a model that failed (or had no scale) in a hard
  window cannot win on the easy ones.
- A candidate that STARTED later (no score in the first windows, e.g. a model whose information
  begins later or that needs a longer history, then scored on every window since) competes on
  its windows: every candidate is then ranked by its mean paired gain over the default on the
  windows both are scored on (for the candidates scored on all windows that is the ranking by
  mean), and the noise margin below is computed on those windows. Why (2026-11-30): a model
  that cannot run on the early windows (the cycle model needs a year, its lags and a year of
  residuals) was never eligible however good it was later; a paired comparison on the common
  windows is fair to both, and with few common windows its standard error is large, so the
  margin asks more of it. A model that failed after it started is still out.
- Noise margin: the best-scoring candidate replaces the caller's a-priori DEFAULT (the median
  ensemble when it is enabled) only if it beats it by more than ``NOISE_SE`` standard errors of
  their mean paired difference across windows, sd(d_w) / sqrt(n) with d_w = score_w(default) -
  score_w(best) over the windows where both are scored; otherwise the default is kept. Exact
  ties (``TIE_TOLERANCE``) go to the default, else to the simpler candidate
  (``Traits.complexity`` of each model class, via ``models.core.registry.complexity_key``;
  models without a rank and unknown names come after the ranked ones, alphabetically).
  Why a margin: with a handful of windows, a lower mean by a few hundredths is usually one lucky
  window; the paired difference removes the part of the spread that is common to both (a hard
  window is hard for everyone), so the margin measures only how consistently the challenger is
  better. Why it protects the default: the default is the one candidate chosen WITHOUT looking
  at the windows, so keeping it costs no selection error; any other candidate is picked by the
  data and must earn the switch. The default is the equal-weight median of the single models
  because of the forecast-combination evidence: simple combinations beat the selected single
  model out of sample far more often than not (M4, Makridakis et al. 2020; the "combination
  puzzle", Smith & Wallis 2009, Claeskens et al. 2016: estimated weights, of which picking one
  model is the extreme case, lose their in-sample edge to estimation noise). It is a one-sided
  test of the challenger against the default at about one standard error (the
  "one-standard-error rule", Hastie, Tibshirani & Friedman, ESL 7.10, with the no-selection
  candidate as the reference).
  Why not also "the simplest candidate within the noise of the best" when the default is beaten
  (measured, 2026-11-29): a candidate with a large spread across windows has a large standard
  error and so is "within the noise" BECAUSE it is noisy; that rule made seasonal naive the
  total's annual champion in 2019-2023 (it was 0.06 worse than theta on average, with a standard
  error of 0.14) and the champion's MAPE 8.34 against 7.87.
  With one window there is no spread, so consistency cannot be shown: the default is kept
  (with ``noise_se`` 0, no margin, the better mean of one window is enough). Until 2026-11-30 a
  single window counted as a margin of 0, so one lucky window replaced the default: the total's
  annual champion became ETS in 2005 on the one year 2003.
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
from typing import TYPE_CHECKING

import pandas as pd

from models.core import registry

if TYPE_CHECKING:  # pragma: no cover
    from models.core.engine import ForecastResult

__all__ = [
    "TIE_TOLERANCE",
    "NOISE_SE",
    "METRICS",
    "CHAMPION",
    "Choice",
    "ChampionRule",
    "complexity_key",
    "default_champion",
    "choose",
    "choose_at",
    "select_champions",
]

TIE_TOLERANCE = 1e-9
#: a contender within this many standard errors (of the mean paired difference across windows)
#: of the best mean is not distinguishable from it: the default is kept.
#: 1.0: one standard error, the "one-standard-error rule" of model selection (Hastie, Tibshirani,
#: Friedman, The Elements of Statistical Learning, 7.10). Decided before measuring it (2026-11-29,
#: see the README, "Choosing the champion"): an earlier version that kept the SIMPLEST model
#: inside the noise pushed the total's champion from the ensemble to theta, away from the
#: combination; a margin that protects only the a-priori default fixes that without tuning it.
NOISE_SE = 1.0
METRICS: tuple[str, ...] = ("mase", "smape", "rmsse")
_LABEL = {"mase": "MASE", "smape": "sMAPE", "rmsse": "RMSSE"}
#: the model name under which champion rows appear in backtest outputs
CHAMPION = "champion"


def complexity_key(name: str) -> tuple[float, str]:
    """Sort key, simplest first: the registry's (each model class's ``Traits.complexity``; models
    without a rank and unknown names after the ranked ones, alphabetically)."""
    return registry.complexity_key(name)


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
    mean_score: dict[str, float]  # candidate -> mean of ``metric`` over the windows
    metric: str = "mase"


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"champion metric must be one of {', '.join(METRICS)}; got {metric!r}")
    return metric


@dataclass(frozen=True)
class ChampionRule:
    """How champions are chosen, passed down as one object: the metric ranked on (config
    ``backtest.champion_metric``) and the noise margin in standard errors (config
    ``backtest.champion_noise_se``)."""

    metric: str = "mase"
    noise_se: float = NOISE_SE

    def __post_init__(self) -> None:
        _check_metric(self.metric)
        if not (isinstance(self.noise_se, (int, float)) and math.isfinite(self.noise_se) and self.noise_se >= 0):
            raise ValueError(f"champion noise margin must be a finite number >= 0; got {self.noise_se!r}")


def _finite(v: object) -> bool:
    return v is not None and math.isfinite(float(v))  # type: ignore[arg-type]


def noise_margin(candidate: list[float], best: list[float]) -> float:
    """Standard error of the mean paired difference candidate - best over the windows where both
    are finite (aligned by position); infinite with fewer than two such windows (no spread: the
    noise is unknown, so no difference is shown to exceed it)."""
    d = [float(c) - float(b) for c, b in zip(candidate, best) if _finite(c) and _finite(b)]
    if len(d) < 2:
        return math.inf
    mean = sum(d) / len(d)
    return math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d))


def _late_starters(raw: Mapping[str, list[float]], default: str, n_windows: int) -> list[str]:
    """Candidates that started later than the default and were scored on every window since
    (fewer windows, none failed after the first); empty unless the default was scored on all."""
    if default not in raw or sum(math.isfinite(v) for v in raw[default]) != n_windows:
        return []
    on_default = [math.isfinite(v) for v in raw[default]]
    out = []
    for name, values in raw.items():
        scored = [math.isfinite(v) for v in values]
        if name == default or not any(scored) or sum(scored) == n_windows:
            continue
        first = scored.index(True)
        if all(scored[first:]) and all(on_default[first:]):
            out.append(name)
    return out


def _paired(default: list[float], candidate: list[float]) -> tuple[float, int]:
    """Mean of default - candidate over the windows both are scored on, and their number."""
    d = [a - b for a, b in zip(default, candidate) if math.isfinite(a) and math.isfinite(b)]
    return (sum(d) / len(d) if d else -math.inf), len(d)


def choose(
    scores: Mapping[str, Iterable[float]], default: str, *, metric: str = "mase", noise_se: float = NOISE_SE
) -> Choice:
    """Pick the champion from per-candidate metric values, one per window.

    ``scores`` maps candidate name -> value of ``metric`` in each window (NaN allowed), the lists
    ALIGNED by window (position i is the same window for every candidate; pad with NaN).
    ``default`` is returned when no candidate has a finite score. See the module docstring for
    the noise margin (``noise_se`` standard errors; 0 keeps only the tie tolerance)."""
    label = _LABEL[_check_metric(metric)]
    raw = {
        name: [float(v) if _finite(v) else math.nan for v in values]
        for name, values in scores.items()
        if name != CHAMPION
    }
    finite = {name: [v for v in values if math.isfinite(v)] for name, values in raw.items()}
    n_windows = max((len(v) for v in finite.values()), default=0)
    means = {name: sum(v) / len(v) for name, v in finite.items() if v}
    if n_windows == 0:
        return Choice(default, "no backtest window: default", 0, means, metric)
    contenders = {name: means[name] for name, v in finite.items() if len(v) == n_windows}
    late = _late_starters(raw, default, n_windows)
    if late:  # ranked by their mean paired gain over the default, on the windows both have
        gains = {name: _paired(raw[default], raw[name]) for name in (*contenders, *late)}
        top = max(g for g, _ in gains.values())
        tied = [name for name, (g, _) in gains.items() if top - g <= TIE_TOLERANCE]
        champion = default if default in tied else min(tied, key=complexity_key)
        gain, shared = gains[champion]
        windows = f"the {shared} window{'s' if shared != 1 else ''} it was scored on (it started later)"
        if champion in late:
            reason = (
                f"mean {label} {means[champion]:.3f} over {windows}, {gain:.3f} below {default}'s on the same windows"
            )
        else:
            reason = (
                f"lowest mean {label} {contenders[champion]:.3f} over {n_windows} window{'s' if n_windows != 1 else ''}"
            )
        best = contenders[default] - gain  # so that the default's lead below is the paired gain
    else:
        best = min(contenders.values())
        tied = [name for name, score in contenders.items() if score - best <= TIE_TOLERANCE]
        champion = default if default in tied else min(tied, key=complexity_key)
        reason = (
            f"lowest mean {label} {contenders[champion]:.3f} over {n_windows} window{'s' if n_windows != 1 else ''}"
        )
    challenged = default in contenders and default not in tied  # the default lost on the mean: by more than the noise?
    margin = noise_margin(raw[default], raw[champion]) if challenged and noise_se > 0 else 0.0
    started_later = champion in late
    if challenged and math.isinf(margin) and started_later:
        reason = (
            f"{champion}'s mean {label} {means[champion]:.3f} over {windows} against {default}'s "
            f"{means[champion] + gain:.3f} on the same window{'s' if shared != 1 else ''}: fewer than two windows "
            f"score both, no spread to show the difference is more than noise; default kept"
        )
        champion = default
    elif challenged and math.isinf(margin):
        reason = (
            f"mean {label} {contenders[default]:.3f} against {champion}'s {best:.3f} over {n_windows} "
            f"window{'s' if n_windows != 1 else ''}: fewer than two windows score both, no spread to show "
            f"the difference is more than noise; default kept"
        )
        champion = default
    elif challenged and started_later and gain <= noise_se * margin:
        reason = (
            f"{champion}'s mean {label} {means[champion]:.3f} over {windows} is {gain:.3f} below {default}'s on "
            f"the same windows, within the noise (<= {noise_se:g} x standard error {margin:.3f}); default kept"
        )
        champion = default
    elif challenged and contenders[default] - best <= noise_se * margin:
        reason = (
            f"mean {label} {contenders[default]:.3f} over {n_windows} windows, within the noise of {champion}'s "
            f"{best:.3f} (difference {contenders[default] - best:.3f} <= {noise_se:g} x standard error "
            f"{margin:.3f}); default kept"
        )
        champion = default
    elif len(tied) > 1:
        others = ", ".join(sorted((t for t in tied if t != champion), key=complexity_key))
        reason += f" (tied with {others}; {'default' if champion == default else 'simpler model'} kept)"
    return Choice(champion, reason, n_windows, means, metric)


def choose_at(
    windows: Iterable[tuple[pd.Timestamp, Mapping[str, float]]],
    cutoff: pd.Timestamp,
    default: str,
    *,
    metric: str = "mase",
    noise_se: float = NOISE_SE,
) -> Choice:
    """The champion at ``cutoff``: ``choose`` over the ``windows`` (last evaluated month,
    candidate -> value of ``metric``) whose last evaluated month is at or before ``cutoff``; the
    reason names the cutoff.

    This is the one rule of an honest champion: the rolling backtest applies it at each window,
    the institutional comparison at each target year's information cutoff."""
    cutoff = pd.Timestamp(cutoff)
    known = [scores for end, scores in windows if pd.Timestamp(end) <= cutoff]
    names = list(dict.fromkeys(str(m) for w in known for m in w))
    scores = {name: [w.get(name, math.nan) for w in known] for name in names}
    choice = choose(scores, default, metric=metric, noise_se=noise_se)
    if choice.n_windows == 0:
        return replace(
            choice, reason=f"no earlier window fully observed by {cutoff:%Y-%m}: default champion '{default}'"
        )
    return replace(choice, reason=f"{choice.reason} before {cutoff:%Y-%m}")


def select_champions(
    metrics: pd.DataFrame, default: str, *, series: Iterable[str] = (), metric: str = "mase", noise_se: float = NOISE_SE
) -> pd.DataFrame:
    """One row per series: unique_id, champion, reason, n_windows, metric (the champion metric's
    name), mean_score (JSON object model -> mean of ``metric``, models in complexity order).

    ``metrics`` has columns unique_id, model, cutoff and the metric (rows of the ``champion``
    pseudo-model are ignored); windows are aligned by cutoff. ``series`` lists extra series
    without any window (they get ``default``)."""
    _check_metric(metric)
    missing = {"unique_id", "model", metric} - set(metrics.columns)
    if missing:
        raise ValueError(f"metrics lacks column(s) {sorted(missing)}; has {list(metrics.columns)}")
    rows = []
    seen: set[str] = set()
    for uid, group in metrics.groupby("unique_id", sort=True):
        if "cutoff" in group.columns:
            wide = group.pivot_table(index="cutoff", columns="model", values=metric, aggfunc="first", dropna=False)
            wide = wide.reindex(columns=list(dict.fromkeys(group["model"])))
            scores = {str(model): wide[model].tolist() for model in wide.columns}
        else:
            scores = {str(model): g[metric].tolist() for model, g in group.groupby("model", sort=False)}
        rows.append(_row(str(uid), choose(scores, default, metric=metric, noise_se=noise_se)))
        seen.add(str(uid))
    for uid in series:
        if uid not in seen:
            rows.append(_row(uid, choose({}, default, metric=metric)))
            seen.add(uid)
    return pd.DataFrame(rows, columns=["unique_id", "champion", "reason", "n_windows", "metric", "mean_score"])


def _row(uid: str, choice: Choice) -> dict[str, object]:
    ordered = {name: round(choice.mean_score[name], 6) for name in sorted(choice.mean_score, key=complexity_key)}
    return {
        "unique_id": uid,
        "champion": choice.champion,
        "reason": choice.reason,
        "n_windows": choice.n_windows,
        "metric": choice.metric,
        "mean_score": json.dumps(ordered),
    }


def with_champions(fc: ForecastResult, champions: pd.DataFrame) -> ForecastResult:
    """Choose: the forecast ``fc`` with each series' champion (``champions``: the table of
    :func:`select_champions`, e.g. the backtest's), the rows the published forecast flags."""
    return replace(fc, champions=champions)
