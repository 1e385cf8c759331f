"""The ONE backtest every model goes through: rolling origins, or fixed information sets.

For each series and each cutoff, the history is truncated at the cutoff (observations after it
are not handed over, nor exogenous rows after it at fit time) and passed to
``models.core.engine.fit_series`` — the same function the production forecast uses — which fits every
enabled model (with the same fallbacks) and forecasts through ``cutoff + horizon``. The forecasts
of the months ``cutoff+1 .. cutoff+horizon`` are scored against the actuals.

Cutoffs per series (unless given explicitly): the last ``windows`` cutoffs spaced ``step``
months so that the last one leaves ``horizon`` months to evaluate,
``cutoff_k = last_obs - horizon - step * (windows - 1 - k)`` months, k = 0 .. windows-1.
Explicit ``cutoffs`` are fixed information sets: one list for every series, or one list per
series (e.g. the institutional comparison: for target year Y the cutoff is October of Y-1 and
the horizon 14 runs to December of Y, for the series whose October data existed).
A window whose training part is too short for the full models still runs (the fallbacks are
recorded in ``fits``); a window with no observation up to its cutoff is skipped, and so is a
window with no actual in its evaluation months unless ``keep_unscored`` (then it is a forecast
from that information set: forecasts, annual totals and champion rows, but no metric row).
When the cutoff month itself is unobserved, the models forecast from the last observation
before it and only the months after the cutoff are scored.

With ``annual=True`` every window also totals the calendar year of its last month (e.g. year Y
for cutoff October Y-1 and horizon 14) from the models' joint sample paths
(``models.core.annual.annual_totals``: observed months of the year + sampled forecast months).

Every (series, cutoff) window is one unit of work for the worker pool, dispatched longest
history first. Champion rows (``model == 'champion'``) are added afterwards, per series in
cutoff order, and are honest: at window k they copy the model chosen by
``models.selection.champion.choose_at`` — best mean of the rule's metric (within the noise margin of the default, the default) over the earlier windows whose evaluation months
had all been observed by cutoff k; where there is none (the first window, or step < horizon)
the caller's ``default_champion``. ``fits`` says, per window, which model the champion copied
and why (its ``description`` holds the number of windows and the mean MASE it was chosen on).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from models.core.base import FORECAST_COLUMNS, regularize
from models.core.engine import (
    ANNUAL_COLUMNS,
    FIT_COLUMNS,
    EngineSettings,
    ExtrasAt,
    ModelFactory,
    SeriesExtras,
    _check_exog,
    _month,
    _months_between,
    check_models,
    fit_series,
    frame_to_series,
    run_batches,
    when_lost,
)
from models.core.fits import FitRow, fits_frame
from models.core.metrics import coverage, mase, rmsse, smape
from models.selection.champion import CHAMPION, ChampionRule, choose_at, complexity_key, select_champions
from models.selection.combination import (
    COMBINATIONS,
    combine_annual,
    combine_window,
    describe_combination,
    inverse_mase_weights,
    pool,
)
from models.selection.reconcile import RECONCILED, Hierarchy, describe_json, reconcile, reconcile_forecasts

__all__ = [
    "BacktestResult",
    "BacktestSpec",
    "backtest",
    "run_backtest",
    "default_cutoffs",
    "BACKTEST_FORECAST_COLUMNS",
    "METRIC_COLUMNS",
    "BACKTEST_FIT_COLUMNS",
    "BACKTEST_ANNUAL_COLUMNS",
]

BACKTEST_FORECAST_COLUMNS: tuple[str, ...] = ("unique_id", "cutoff", "ds", "model", *FORECAST_COLUMNS, "y")
METRIC_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "model",
    "cutoff",
    "mase",
    "smape",
    "rmsse",
    "coverage_80",
    "coverage_95",
)
BACKTEST_FIT_COLUMNS: tuple[str, ...] = ("unique_id", "cutoff", *FIT_COLUMNS[1:])
BACKTEST_ANNUAL_COLUMNS: tuple[str, ...] = ("unique_id", "cutoff", *ANNUAL_COLUMNS[1:])
SEASON = 12

Cutoffs = Sequence[pd.Timestamp | str] | Mapping[str, Sequence[pd.Timestamp | str]]


@dataclass
class BacktestResult:
    forecasts: pd.DataFrame  # BACKTEST_FORECAST_COLUMNS, champion rows included
    metrics: pd.DataFrame  # METRIC_COLUMNS, one row per series, model and scored cutoff (champion included)
    champions: pd.DataFrame  # unique_id, champion, reason, n_windows, metric, mean_score (JSON model -> mean)
    fits: pd.DataFrame  # unique_id, cutoff, model, model_used, status, reason, error, n_obs, description
    annual: pd.DataFrame | None = None  # BACKTEST_ANNUAL_COLUMNS (champion included) when annual=True


@dataclass
class _Window:
    """What one (series, cutoff) window produced, before the champion is added."""

    unique_id: str
    cutoff: pd.Timestamp
    end: pd.Timestamp  # last evaluated month
    forecasts: pd.DataFrame
    metrics: list[dict[str, Any]]
    fits: list[FitRow]
    annual: list[dict[str, Any]]
    y_train: np.ndarray  # the history handed to the models (scale of MASE / RMSSE)


def default_cutoffs(last_obs: pd.Timestamp, *, horizon: int, windows: int, step: int) -> list[pd.Timestamp]:
    """cutoff_k = last_obs - horizon - step * (windows - 1 - k) months, oldest first."""
    last = _month(last_obs)
    return [last - pd.DateOffset(months=horizon + step * (windows - 1 - k)) for k in range(windows)]


def _score(uid: str, model: str, cutoff: pd.Timestamp, fc: pd.DataFrame, y_train: np.ndarray) -> dict[str, Any]:
    truth = fc["y"].to_numpy()
    return {
        "unique_id": uid,
        "model": model,
        "cutoff": cutoff,
        "mase": mase(truth, fc["forecast"].to_numpy(), y_train, m=SEASON),
        "smape": smape(truth, fc["forecast"].to_numpy()),
        "rmsse": rmsse(truth, fc["forecast"].to_numpy(), y_train, m=SEASON),
        "coverage_80": coverage(truth, fc["lo_80"].to_numpy(), fc["hi_80"].to_numpy()),
        "coverage_95": coverage(truth, fc["lo_95"].to_numpy(), fc["hi_95"].to_numpy()),
    }


def _window_task(
    item: tuple[str, pd.Series, pd.Timestamp, pd.DataFrame | None, SeriesExtras | None],
    *,
    settings: EngineSettings,
    horizon: int,
    annual: bool,
    keep_unscored: bool,
    factory: ModelFactory | None,
) -> _Window | None:
    """Fit every model on one series' history through one cutoff and score the window (None: skipped)."""
    uid, y, cutoff, X, extras = item
    window = pd.date_range(cutoff + pd.DateOffset(months=1), periods=horizon, freq="MS", name="ds")
    actual = y.reindex(window)
    history = y.loc[:cutoff]
    scored = bool(actual.notna().any())
    if history.notna().sum() == 0 or not (scored or keep_unscored):
        return None
    train = regularize(history)
    h = _months_between(train.index[-1], window[-1])
    out = fit_series(
        uid,
        train,
        settings,
        h=h,
        exog=X,
        annual_year=int(window[-1].year) if annual else None,
        factory=factory,
        extras=extras,
    )
    fc = out.forecasts[out.forecasts["ds"] > cutoff].copy()
    fc.insert(1, "cutoff", cutoff)
    fc["y"] = actual.reindex(fc["ds"]).to_numpy()
    y_train = train.to_numpy()
    metric_rows = (
        [_score(uid, str(model), cutoff, group, y_train) for model, group in fc.groupby("model", sort=False)]
        if scored
        else []
    )
    fit_rows = [replace(row, cutoff=cutoff) for row in out.fits]
    annual_rows = [
        {"unique_id": row["unique_id"], "cutoff": cutoff, **{k: row[k] for k in ANNUAL_COLUMNS[1:]}}
        for row in out.annual
    ]
    return _Window(
        uid, cutoff, window[-1], fc[list(BACKTEST_FORECAST_COLUMNS)], metric_rows, fit_rows, annual_rows, y_train
    )


def _with_champions(
    windows: list[_Window], default_champion: str, rule: ChampionRule, members: Sequence[str] = ()
) -> tuple[list[pd.DataFrame], list[dict], list[FitRow], list[dict]]:
    """One series' windows (cutoff order) with the combination rows (``members``: their single
    models; none: no combination) and the champion rows of each, both from earlier windows only."""
    frames: list[pd.DataFrame] = []
    metric_rows: list[dict[str, Any]] = []
    fit_rows: list[FitRow] = []
    annual_rows: list[dict[str, Any]] = []
    done: list[tuple[pd.Timestamp, dict[str, float]]] = []  # (last evaluated month, model -> metric)
    done_mase: list[tuple[pd.Timestamp, dict[str, float]]] = []  # the same windows' MASE (combination weights)
    for w in windows:
        uid, cutoff, fc = w.unique_id, w.cutoff, w.forecasts
        window_metrics, window_annual = list(w.metrics), list(w.annual)
        if members:
            weights = inverse_mase_weights(done_mase, members, cutoff)
            combo = combine_window(fc, members, weights)
            if not combo.empty:
                fc = pd.concat([fc, combo], ignore_index=True)
                if w.metrics:
                    window_metrics += [
                        _score(uid, str(m), cutoff, g, w.y_train) for m, g in combo.groupby("model", sort=False)
                    ]
                window_annual += combine_annual(w.annual, members, weights)
                used = [m for m in members if (w.forecasts["model"] == m).any()]
                fit_rows.extend(
                    FitRow(
                        uid,
                        name,
                        name,
                        "ok",
                        n_obs=int(np.isfinite(w.y_train).sum()),
                        description=json.dumps(describe_combination(name, used, weights)),
                        cutoff=cutoff,
                    )
                    for name in COMBINATIONS
                )
        frames.append(fc)
        metric_rows.extend(window_metrics)
        fit_rows.extend(w.fits)
        annual_rows.extend(window_annual)
        choice = choose_at(done, cutoff, default_champion, metric=rule.metric, noise_se=rule.noise_se)
        picked = choice.champion
        chosen_on = {
            "n_windows": choice.n_windows,  # mean_score: the mean of the champion metric (reason names it)
            "mean_score": {m: round(choice.mean_score[m], 6) for m in sorted(choice.mean_score, key=complexity_key)},
        }
        champ = fc[fc["model"] == picked].assign(model=CHAMPION)
        champ_row = FitRow(
            uid,
            CHAMPION,
            picked,
            "ok",
            reason=choice.reason,
            n_obs=int(np.isfinite(w.y_train).sum()),
            description=json.dumps(chosen_on),
            cutoff=cutoff,
        )
        if champ.empty:
            champ_row = replace(
                champ_row, status="failed", reason=f"{choice.reason}; {picked} has no forecast in this window"
            )
        else:
            frames.append(champ)
            if w.metrics:
                metric_rows.append(_score(uid, CHAMPION, cutoff, champ, w.y_train))
            annual_rows.extend({**row, "model": CHAMPION} for row in window_annual if row["model"] == picked)
        fit_rows.append(champ_row)
        done.append((w.end, {row["model"]: row[rule.metric] for row in window_metrics}))
        done_mase.append((w.end, {row["model"]: row["mase"] for row in window_metrics}))
    return frames, metric_rows, fit_rows, annual_rows


def _reconciled_windows(
    forecasts: pd.DataFrame,
    fit_rows: list[FitRow],
    by_series: Mapping[str, list[_Window]],
    series: Mapping[str, pd.Series],
    hierarchy: Hierarchy,
    method: str,
) -> tuple[pd.DataFrame, list[dict[str, Any]], list[FitRow]]:
    """The ``mint`` rows of every cutoff shared by all the hierarchy's series: their champion
    rows of that window reconciled with W from the history up to the cutoff, scored like any model."""
    windows = {(w.unique_id, w.cutoff): w for uid in hierarchy.series for w in by_series.get(uid, [])}
    cutoffs = sorted(set.intersection(*({c for (u, c) in windows if u == uid} for uid in hierarchy.series)))
    picked = {(r.unique_id, r.cutoff): r.model_used for r in fit_rows if r.model == CHAMPION}
    champ = forecasts[(forecasts["model"] == CHAMPION) & forecasts["unique_id"].isin(hierarchy.series)]
    frames, metric_rows, fits = [], [], []
    for cutoff in cutoffs:
        base = champ[champ["cutoff"] == cutoff]
        try:
            rec = reconcile(hierarchy, series, cutoff=cutoff, method=method)
            out = reconcile_forecasts(base, rec)
        except ValueError as exc:
            fits.extend(
                FitRow(uid, RECONCILED, RECONCILED, "failed", reason=str(exc), cutoff=cutoff)
                for uid in hierarchy.series
            )
            continue
        frames.append(out[list(BACKTEST_FORECAST_COLUMNS)])
        for uid, group in out.groupby("unique_id", sort=False):
            w = windows[(str(uid), cutoff)]
            if w.metrics:
                metric_rows.append(_score(str(uid), RECONCILED, cutoff, group, w.y_train))
            fits.append(
                FitRow(
                    uid,
                    RECONCILED,
                    RECONCILED,
                    "ok",
                    n_obs=int(np.isfinite(w.y_train).sum()),
                    description=describe_json(str(picked.get((str(uid), cutoff), "")), rec),
                    cutoff=cutoff,
                )
            )
    return (pd.concat(frames, ignore_index=True) if frames else _empty_forecasts()), metric_rows, fits


def _empty_forecasts() -> pd.DataFrame:
    dtypes = {"unique_id": object, "cutoff": "datetime64[ns]", "ds": "datetime64[ns]", "model": object}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, float)) for c in BACKTEST_FORECAST_COLUMNS})


def _explicit_cutoffs(cutoffs: Cutoffs, series: Mapping[str, pd.Series]) -> dict[str, list[pd.Timestamp]]:
    """Explicit cutoffs per series (month starts, sorted, unique)."""
    if isinstance(cutoffs, Mapping):
        lacking = [uid for uid in series if uid not in cutoffs]
        unknown = sorted(str(uid) for uid in cutoffs if uid not in series)
        if lacking:
            raise ValueError(
                f"cutoffs has no entry for series {', '.join(repr(u) for u in lacking[:5])}"
                + (f" (+{len(lacking) - 5} more)" if len(lacking) > 5 else "")
            )
        if unknown:
            raise ValueError(f"cutoffs names series not in frame: {', '.join(repr(u) for u in unknown[:5])}")
        return {uid: sorted({_month(c) for c in cutoffs[uid]}) for uid in series}
    if isinstance(cutoffs, (str, pd.Timestamp)):
        raise ValueError(f"cutoffs must be a list of months (or a mapping series -> list); got {cutoffs!r}")
    shared = sorted({_month(c) for c in cutoffs})
    if not shared:
        raise ValueError("cutoffs is empty: give at least one cutoff or leave it None")
    return {uid: shared for uid in series}


@dataclass(frozen=True)
class BacktestSpec:
    """What a backtest evaluates (the arguments of :func:`backtest` but the inputs).

    ``windows`` and ``step`` give the rolling cutoffs of each series (``default_cutoffs``).
    ``cutoffs`` (month starts) replaces them: a list applies to every series (evaluated at each
    cutoff where it has data), a mapping unique_id -> list gives each series its own (every
    series of the frame needs an entry; an empty list means no window).
    ``default_champion`` (default 'seasonal_naive') is the champion of a first window and of a
    series without any window. ``annual``: also the calendar-year total of each window's last
    month (``result.annual``). ``keep_unscored``: keep windows with no actual yet (a forecast from
    a fixed information set).
    ``champion_rule`` (``models.selection.champion.ChampionRule``, config ``backtest.champion_metric`` and
    ``backtest.champion_noise_se``): the metric the champion rule ranks on and its noise margin. ``combinations``: add the combination candidates
    of ``models.selection.combination`` (computed from the single models' forecasts of each window, weights
    from earlier windows only) as models the champion rule chooses among. ``hierarchy``
    (``models.selection.reconcile``): at each cutoff shared by its series, the champion rows of its series
    are reconciled (W from data up to the cutoff, ``reconcile_method``) and scored as the model
    ``mint``; it is a hierarchy-wide candidate, not one of each series' champion candidates."""

    horizon: int
    windows: int | None = None
    step: int = 1
    cutoffs: Cutoffs | None = None
    default_champion: str | None = None
    annual: bool = False
    keep_unscored: bool = False
    champion_rule: ChampionRule = ChampionRule()
    combinations: bool = False
    hierarchy: Hierarchy | None = None
    reconcile_method: str = "mint_shrink"

    def checked(self, settings: EngineSettings) -> BacktestSpec:
        """The spec with its default champion filled in; raises on a bad value."""
        horizon, windows, step = self.horizon, self.windows, self.step
        if not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer; got {horizon!r}")
        if self.cutoffs is None and windows is None:
            raise ValueError("give windows (rolling cutoffs) or cutoffs (fixed information sets)")
        for name, value in (("windows", windows), ("step", step)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        default_champion = self.default_champion or "seasonal_naive"
        if default_champion not in settings.model_names:
            raise ValueError(
                f"default_champion '{default_champion}' is not an enabled model; enabled: "
                f"{', '.join(settings.model_names)}"
            )
        return replace(self, default_champion=default_champion)


def backtest(
    frame: pd.DataFrame,
    settings: EngineSettings,
    *,
    exog: pd.DataFrame | None = None,
    extras: ExtrasAt | None = None,
    progress: bool = False,
    factory: ModelFactory | None = None,
    **spec: Any,
) -> BacktestResult:
    """:func:`run_backtest` with the :class:`BacktestSpec` given as keywords (``horizon=``,
    ``windows=``, ``cutoffs=``, ...)."""
    return run_backtest(
        frame, settings, BacktestSpec(**spec), exog=exog, extras=extras, progress=progress, factory=factory
    )


def run_backtest(
    frame: pd.DataFrame,
    settings: EngineSettings,
    spec: BacktestSpec,
    *,
    exog: pd.DataFrame | None = None,
    extras: ExtrasAt | None = None,
    progress: bool = False,
    factory: ModelFactory | None = None,
) -> BacktestResult:
    """Backtest of every enabled model on every series of ``frame``: rolling origins by default,
    fixed information sets with ``spec.cutoffs`` (:class:`BacktestSpec`).

    ``exog``: the shared regressors (e.g. working days). ``factory`` replaces
    ``models.core.registry.create`` (tests). ``extras`` (``models.core.engine.ExtrasAt``): a series'
    own models at each cutoff, e.g. a leading-indicator ARIMAX with the indicator as it was public
    at that cutoff; asked once per window in this process, before the windows are dispatched.
    Their rows are scored and compete for champion like any model; not combination members."""
    spec = spec.checked(settings)
    series = frame_to_series(frame)
    if not series:
        raise ValueError("frame holds no observed value: nothing to backtest")
    explicit = None if spec.cutoffs is None else _explicit_cutoffs(spec.cutoffs, series)
    exog = _check_exog(exog)
    check_models(settings, factory)
    items, costs = _window_items(series, spec, explicit, exog, extras)
    task = partial(
        _window_task,
        settings=settings,
        horizon=int(spec.horizon),
        annual=bool(spec.annual),
        keep_unscored=bool(spec.keep_unscored),
        factory=factory,
    )
    outcomes = run_batches(
        task,
        items,
        n_jobs=settings.n_jobs,
        progress=progress,
        label="backtest" if explicit is None else "backtest at given cutoffs",  # two may run at once
        costs=costs,
        executor=settings.executor,
        dask_address=settings.dask_address,
        on_lost=when_lost(task),
    )
    by_series: dict[str, list[_Window]] = {}
    for w in outcomes:
        if w is not None:
            by_series.setdefault(w.unique_id, []).append(w)
    return _result(series, by_series, spec, settings)


def _window_items(
    series: Mapping[str, pd.Series],
    spec: BacktestSpec,
    explicit: Mapping[str, list[pd.Timestamp]] | None,
    exog: pd.DataFrame | None,
    extras: ExtrasAt | None,
) -> tuple[list[tuple], list[float]]:
    """One unit of work per (series, cutoff), with its cost (the months of history)."""
    horizon = spec.horizon
    items, costs = [], []
    for uid, y in series.items():
        cuts = (
            explicit[uid]
            if explicit is not None
            else default_cutoffs(y.index[-1], horizon=horizon, windows=spec.windows, step=spec.step)
        )
        if not cuts:
            continue
        X = None
        if exog is not None:  # a series the exog does not cover runs without it (fit_series records why)
            X = exog.loc[y.index[0] : max(cuts) + pd.DateOffset(months=horizon)]
        for cutoff in cuts:
            months = pd.date_range(y.index[0], cutoff + pd.DateOffset(months=horizon), freq="MS", name="ds")
            items.append((uid, y, cutoff, X, None if extras is None else extras(uid, cutoff, months)))
            costs.append(float(y.loc[:cutoff].notna().sum()))
    return items, costs


def _result(
    series: Mapping[str, pd.Series],
    by_series: Mapping[str, list[_Window]],
    spec: BacktestSpec,
    settings: EngineSettings,
) -> BacktestResult:
    """The windows with their combination, champion and reconciled rows, as tables."""
    frames: list[pd.DataFrame] = []
    metric_rows: list[dict[str, Any]] = []
    fit_rows: list[FitRow] = []
    annual_rows: list[dict[str, Any]] = []
    default_champion, rule = str(spec.default_champion), spec.champion_rule
    for uid in series:
        f, m, fi, a = _with_champions(
            by_series.get(uid, []), default_champion, rule, pool(settings.model_names) if spec.combinations else ()
        )
        frames += f
        metric_rows += m
        fit_rows += fi
        annual_rows += a
    if spec.hierarchy is not None and frames:
        f, m, fi = _reconciled_windows(
            pd.concat(frames, ignore_index=True), fit_rows, by_series, series, spec.hierarchy, spec.reconcile_method
        )
        frames.append(f)
        metric_rows += m
        fit_rows += fi
    forecasts = pd.concat(frames, ignore_index=True) if frames else _empty_forecasts()
    metrics = pd.DataFrame(metric_rows, columns=list(METRIC_COLUMNS))
    champions = select_champions(
        metrics[~metrics["model"].isin([CHAMPION, RECONCILED])],
        default_champion,
        series=list(series),
        metric=rule.metric,
        noise_se=rule.noise_se,
    )
    champions = champions.set_index("unique_id").loc[list(series)].reset_index()
    annual_table = pd.DataFrame(annual_rows, columns=list(BACKTEST_ANNUAL_COLUMNS)) if spec.annual else None
    return BacktestResult(
        forecasts=forecasts,
        metrics=metrics,
        champions=champions,
        fits=fits_frame(fit_rows, with_cutoff=True),
        annual=annual_table,
    )
