"""The ONE rolling-origin backtest every model goes through.

For each series and each cutoff, the history is truncated at the cutoff (observations after it
are not handed over, nor exogenous rows after it at fit time) and passed to
``models.engine.fit_series`` — the same function the production forecast uses — which fits every
enabled model (with the same fallbacks) and forecasts through ``cutoff + horizon``. The forecasts
of the months ``cutoff+1 .. cutoff+horizon`` are scored against the actuals.

Cutoffs per series (unless given explicitly): the last ``windows`` cutoffs spaced ``step``
months so that the last one leaves ``horizon`` months to evaluate,
``cutoff_k = last_obs - horizon - step * (windows - 1 - k)`` months, k = 0 .. windows-1.
A window whose training part is too short for the full models still runs (the fallbacks are
recorded in ``fits``); a window with no actual in its evaluation months, or no observation up
to its cutoff, is skipped. When the cutoff month itself is unobserved, the models forecast from
the last observation before it and only the months after the cutoff are scored.

Champion rows (``model == 'champion'``) are honest: at window k they copy the forecasts of the
model with the best mean MASE over the earlier windows whose evaluation months had all been
observed by cutoff k (``models.champion.choose``); where there is none (the first window, or
step < horizon) the caller's ``default_champion`` is used. ``fits`` says, per window, which model
the champion copied and why.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from models.base import FORECAST_COLUMNS, regularize
from models.champion import CHAMPION, choose, select_champions
from models.engine import (FIT_COLUMNS, EngineSettings, ModelFactory, _check_exog, _months_between, _month,
                           check_models, fit_series, frame_to_series, run_batches, when_lost)
from models.metrics import coverage, mase, rmsse, smape

__all__ = ["BacktestResult", "backtest", "default_cutoffs", "BACKTEST_FORECAST_COLUMNS", "METRIC_COLUMNS"]

BACKTEST_FORECAST_COLUMNS: tuple[str, ...] = ("unique_id", "cutoff", "ds", "model", *FORECAST_COLUMNS, "y")
METRIC_COLUMNS: tuple[str, ...] = ("unique_id", "model", "cutoff", "mase", "smape", "rmsse", "coverage_80", "coverage_95")
BACKTEST_FIT_COLUMNS: tuple[str, ...] = ("unique_id", "cutoff", *FIT_COLUMNS[1:])
SEASON = 12


@dataclass
class BacktestResult:
    forecasts: pd.DataFrame  # BACKTEST_FORECAST_COLUMNS, champion rows included
    metrics: pd.DataFrame    # METRIC_COLUMNS, one row per series, model and cutoff (champion included)
    champions: pd.DataFrame  # unique_id, champion, reason, n_windows, mean_mase (JSON model -> mean MASE)
    fits: pd.DataFrame       # unique_id, cutoff, model, model_used, status, reason, error, n_obs, description


def default_cutoffs(last_obs: pd.Timestamp, *, horizon: int, windows: int, step: int) -> list[pd.Timestamp]:
    """cutoff_k = last_obs - horizon - step * (windows - 1 - k) months, oldest first."""
    last = _month(last_obs)
    return [last - pd.DateOffset(months=horizon + step * (windows - 1 - k)) for k in range(windows)]


def _score(uid: str, model: str, cutoff: pd.Timestamp, fc: pd.DataFrame, y_train: np.ndarray) -> dict[str, Any]:
    truth = fc["y"].to_numpy()
    return {
        "unique_id": uid, "model": model, "cutoff": cutoff,
        "mase": mase(truth, fc["forecast"].to_numpy(), y_train, m=SEASON),
        "smape": smape(truth, fc["forecast"].to_numpy()),
        "rmsse": rmsse(truth, fc["forecast"].to_numpy(), y_train, m=SEASON),
        "coverage_80": coverage(truth, fc["lo_80"].to_numpy(), fc["hi_80"].to_numpy()),
        "coverage_95": coverage(truth, fc["lo_95"].to_numpy(), fc["hi_95"].to_numpy()),
    }


def _backtest_series(item: tuple[str, pd.Series, list[pd.Timestamp], pd.DataFrame | None], *,
                     settings: EngineSettings, horizon: int, default_champion: str,
                     factory: ModelFactory | None) -> tuple[pd.DataFrame, list[dict], list[dict]]:
    uid, y, cutoffs, X = item
    frames: list[pd.DataFrame] = []
    metric_rows: list[dict[str, Any]] = []
    fit_rows: list[dict[str, Any]] = []
    # (last evaluated month, model -> MASE) of the windows done so far, for the champion
    done: list[tuple[pd.Timestamp, dict[str, float]]] = []
    for cutoff in cutoffs:
        window = pd.date_range(cutoff + pd.DateOffset(months=1), periods=horizon, freq="MS", name="ds")
        actual = y.reindex(window)
        history = y.loc[:cutoff]
        if actual.isna().all() or history.notna().sum() == 0:
            continue
        train = regularize(history)
        h = _months_between(train.index[-1], window[-1])
        out = fit_series(uid, train, settings, h=h, exog=X, factory=factory)
        fc = out.forecasts[out.forecasts["ds"] > cutoff].copy()
        fc.insert(1, "cutoff", cutoff)
        fc["y"] = actual.reindex(fc["ds"]).to_numpy()
        y_train = train.to_numpy()
        window_scores: dict[str, float] = {}
        for model, group in fc.groupby("model", sort=False):
            row = _score(uid, str(model), cutoff, group, y_train)
            metric_rows.append(row)
            window_scores[str(model)] = row["mase"]
        frames.append(fc)
        for row in out.fits:
            fit_rows.append({"cutoff": cutoff, **row})

        # champion of this window: best over the EARLIER windows whose evaluation months were all
        # known at this cutoff (with step < horizon an earlier window's test months run past it)
        scores: dict[str, list[float]] = {}
        for end, window_scores_done in done:
            if end <= cutoff:
                for model, value in window_scores_done.items():
                    scores.setdefault(model, []).append(value)
        choice = choose(scores, default_champion)
        if choice.n_windows == 0:
            picked, reason = default_champion, f"no earlier window fully observed by {cutoff:%Y-%m}: default champion '{default_champion}'"
        else:
            picked, reason = choice.champion, f"{choice.reason} before {cutoff:%Y-%m}"
        champ = fc[fc["model"] == picked].assign(model=CHAMPION)
        champ_row: dict[str, Any] = {"unique_id": uid, "cutoff": cutoff, "model": CHAMPION, "model_used": picked,
                                     "status": "ok", "reason": reason, "error": "", "n_obs": int(train.notna().sum()),
                                     "description": "{}"}
        if champ.empty:
            champ_row.update(status="failed", reason=f"{reason}; {picked} has no forecast in this window")
        else:
            frames.append(champ)
            metric_rows.append(_score(uid, CHAMPION, cutoff, champ, y_train))
        fit_rows.append(champ_row)
        done.append((window[-1], window_scores))

    forecasts = (pd.concat(frames, ignore_index=True) if frames else _empty_forecasts())
    return forecasts[list(BACKTEST_FORECAST_COLUMNS)], metric_rows, fit_rows


def _empty_forecasts() -> pd.DataFrame:
    dtypes = {"unique_id": object, "cutoff": "datetime64[ns]", "ds": "datetime64[ns]", "model": object}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, float)) for c in BACKTEST_FORECAST_COLUMNS})


def backtest(frame: pd.DataFrame, settings: EngineSettings, *, horizon: int, windows: int, step: int = 1,
             exog: pd.DataFrame | None = None, cutoffs: Sequence[pd.Timestamp | str] | None = None,
             default_champion: str | None = None, progress: bool = False,
             factory: ModelFactory | None = None) -> BacktestResult:
    """Rolling-origin backtest of every enabled model on every series of ``frame``.

    ``cutoffs`` (month starts) replaces the per-series default cutoffs (``windows`` and ``step``
    are then ignored); every series is evaluated at each given cutoff where it has data.
    ``default_champion`` (default 'seasonal_naive') is the champion of a first window and of a
    series without any window. ``factory`` replaces ``models.registry.create`` (tests)."""
    for name, value in (("horizon", horizon), ("windows", windows), ("step", step)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    default_champion = default_champion or "seasonal_naive"
    if default_champion not in settings.model_names:
        raise ValueError(f"default_champion '{default_champion}' is not an enabled model; enabled: "
                         f"{', '.join(settings.model_names)}")
    explicit = None
    if cutoffs is not None:
        explicit = sorted({_month(c) for c in cutoffs})
        if not explicit:
            raise ValueError("cutoffs is empty: give at least one cutoff or leave it None")
    series = frame_to_series(frame)
    if not series:
        raise ValueError("frame holds no observed value: nothing to backtest")
    exog = _check_exog(exog)
    check_models(settings, factory)

    items = []
    for uid, y in series.items():
        cuts = explicit if explicit is not None else default_cutoffs(y.index[-1], horizon=horizon, windows=windows, step=step)
        X = None
        if exog is not None:
            first = y.index[0]
            last = max(cuts) + pd.DateOffset(months=horizon)
            needed = pd.date_range(first, last, freq="MS")
            lacking = needed.difference(exog.index)
            if len(lacking):
                raise ValueError(f"exog lacks {len(lacking)} month(s) needed by series '{uid}' ({first:%Y-%m}.."
                                 f"{last:%Y-%m}), first {lacking[0]:%Y-%m}")
            X = exog.loc[first:last]
        items.append((uid, y, cuts, X))

    task = partial(_backtest_series, settings=settings, horizon=int(horizon), default_champion=default_champion,
                   factory=factory)
    costs = [float(y.notna().sum()) * len(cuts) for _, y, cuts, _ in items]
    outcomes = run_batches(task, items, n_jobs=settings.n_jobs, progress=progress, label="backtest", costs=costs,
                           executor=settings.executor, dask_address=settings.dask_address, on_lost=when_lost(task))
    forecasts = pd.concat([o[0] for o in outcomes], ignore_index=True)
    metrics = pd.DataFrame([r for o in outcomes for r in o[1]], columns=list(METRIC_COLUMNS))
    fits = pd.DataFrame([r for o in outcomes for r in o[2]], columns=list(BACKTEST_FIT_COLUMNS))
    champions = select_champions(metrics[metrics["model"] != CHAMPION], default_champion, series=list(series))
    champions = champions.set_index("unique_id").loc[list(series)].reset_index()
    return BacktestResult(forecasts=forecasts, metrics=metrics, champions=champions, fits=fits)
