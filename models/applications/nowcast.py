"""Nowcast of the current month from the customs flash (issue 10, part 1).

The customs service publishes the exports of days 1-10 (``d10``, on the 11th) and days 1-20
(``d20``, on the 21st) of each month; the full month is confirmed around the 16th of the next.

**Bridge.** For information ``i`` in d10/d20 and month t, with the flash ``f`` and the working days
``w_part`` (days covered) and ``w_month`` (whole month)::

    log(y_s / f_s) = a + b * log(w_month_s / w_part_s) + e_s

is fitted by least squares on the earlier months s whose actual AND flash were public on the
nowcast's ``as_of`` (the flash's own publication day) - an expanding window, never a later month.
The bridge nowcast is ``f_t * exp(a + b * log(w_month_t / w_part_t))``.

**Model forecast.** A plain model of the engine's registry (``ets`` by default) fitted on the
months public on ``as_of`` forecasts month t (one month ahead for d20 and for the ``none`` rows,
two months ahead for d10, since the previous month is only confirmed on the 16th).

**Combination.** Both are combined in logs, weighted by the inverse mean squared log error of
each on the same earlier months (the bridge's errors are its leave-one-out errors on the
training months, the model's are its real forecasts of those months at the same horizon).
The 80% interval is the nowcast times ``exp`` of the 10% and 90% quantiles of the combination's
errors on those earlier months.

Rows of information ``none`` are the model's one-month-ahead forecast alone (``as_of`` = the day
the previous month was confirmed), so the value of the flash is measured on the same months.

This module reads no file: it takes the actuals, the flash rows with their working days and
the publication dates as frames (see :func:`flash_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.publication import confirmed_on
from models.core import fitcache, registry

NOWCAST_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "ds",
    "information",
    "as_of",
    "nowcast",
    "lo_80",
    "hi_80",
    "actual",
    "ape",
)
INFORMATION: tuple[str, ...] = ("none", "d10", "d20")
FLASH_COLUMNS: tuple[str, ...] = ("ds", "information", "value", "available_from", "wd_part", "wd_month")
FLASH_INDICATORS: dict[str, str] = {"d10": "customs_10d", "d20": "customs_20d"}
MONTH_INDICATOR = "customs_month"
MAX_HORIZON = 3


@dataclass(frozen=True)
class NowcastSettings:
    """``model``/``model_params``: the plain model of the registry combined with the bridge;
    ``min_train``: the fewest earlier months a bridge is fitted on (fewer: no row);
    ``model_history``: months before the first flash month whose model forecasts are made, so
    the model's error is measured from the first nowcast on."""

    model: str = "ets"
    model_params: dict[str, Any] = field(default_factory=dict)
    min_train: int = 12
    model_history: int = 24
    fit_cache: str = ""  # models.core.fitcache's folder ("" = off)
    n_jobs: int = 1  # processes for the month-by-month model fits (models.core.engine.run_batches)

    def __post_init__(self) -> None:
        if self.min_train < 3:
            raise ValueError(f"nowcast: min_train must be at least 3; got {self.min_train}")
        if self.model_history < 0:
            raise ValueError(f"nowcast: model_history must be >= 0; got {self.model_history}")


def actual_published(ds: pd.DatetimeIndex) -> pd.Series:
    """The day each month's confirmed figure is public when no date is recorded: the 16th of
    the next month (``features.publication.confirmed_on``, the customs file's rule)."""
    return pd.Series(confirmed_on(ds), index=ds)


def flash_frame(
    indicators: pd.DataFrame, working_days: pd.DataFrame, unique_id: str = "total"
) -> tuple[pd.DataFrame, pd.Series]:
    """From the indicator table (``indicator, ds, value, available_from``) and the flash working
    days (index ``ds``, columns ``d10, d20, month``, see ``features.calendar.flash_working_days``):
    the flash rows of ``unique_id`` (:data:`FLASH_COLUMNS`) and the publication day of each
    confirmed month (``customs_month`` rows), a Series indexed by ``ds``."""
    parts = []
    for info, prefix in FLASH_INDICATORS.items():
        rows = indicators[indicators["indicator"] == f"{prefix}:{unique_id}"]
        missing = rows.loc[~rows["ds"].isin(working_days.index), "ds"]
        if len(missing):
            raise ValueError(f"nowcast: no working days for {unique_id} {info} month {missing.iloc[0]:%Y-%m}")
        wd = working_days.loc[rows["ds"]]
        parts.append(
            pd.DataFrame(
                {
                    "ds": rows["ds"].to_numpy(),
                    "information": info,
                    "value": rows["value"].to_numpy(),
                    "available_from": rows["available_from"].to_numpy(),
                    "wd_part": wd[info].to_numpy(),
                    "wd_month": wd["month"].to_numpy(),
                }
            )
        )
    flash = pd.concat(parts, ignore_index=True).sort_values(["ds", "information"], kind="stable")
    month = indicators[indicators["indicator"] == f"{MONTH_INDICATOR}:{unique_id}"]
    published = pd.Series(month["available_from"].to_numpy(), index=pd.DatetimeIndex(month["ds"]), name="published")
    return flash.reset_index(drop=True), published


def bridge_fit(log_ratio: np.ndarray, log_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least squares of ``log(y/f)`` on ``[1, log(w_month/w_part)]``: the coefficients (a, b) and
    the leave-one-out errors ``e_i / (1 - h_ii)``. A calendar without variation in the training
    months (all ratios equal) is fitted with the intercept only."""
    X = np.column_stack([np.ones_like(log_days), log_days])
    if np.ptp(log_days) < 1e-12:
        X = X[:, :1]
    coef, *_ = np.linalg.lstsq(X, log_ratio, rcond=None)
    resid = log_ratio - X @ coef
    leverage = np.einsum("ij,ji->i", X, np.linalg.pinv(X.T @ X) @ X.T)
    loo = resid / np.clip(1.0 - leverage, 1e-9, None)
    if X.shape[1] == 1:
        coef = np.array([coef[0], 0.0])
    return coef, loo


def _model_forecasts(
    y: pd.Series, origins: pd.DatetimeIndex, settings: NowcastSettings, unique_id: str
) -> dict[tuple[pd.Timestamp, int], float]:
    """(target month, horizon) -> the model's mean forecast made with data through the origin.
    One fit per origin, independent of the others: spread over ``settings.n_jobs`` processes
    (``models.core.engine.run_batches``), the same figures whatever their number."""
    from models.core.engine import run_batches

    out: dict[tuple[pd.Timestamp, int], float] = {}
    min_obs = registry.traits_of(settings.model, settings.model_params).min_obs
    items = [(y.loc[:origin].dropna(), origin, settings, unique_id, min_obs) for origin in origins]
    for part in run_batches(_origin_forecast, items, n_jobs=settings.n_jobs, label="nowcast"):
        out.update(part)
    return out


def _origin_forecast(
    item: tuple[pd.Series, pd.Timestamp, NowcastSettings, str, int],
) -> dict[tuple[pd.Timestamp, int], float]:
    hist, origin, settings, unique_id, min_obs = item
    if hist.empty or hist.index[-1] != origin:
        return {}
    if len(hist) < min_obs:  # too short a history for the model: no forecast from here
        return {}
    model = registry.PROTOTYPES(settings.model, settings.model_params)  # a clone of the configured model
    try:
        pred = fitcache.fitted(settings.fit_cache, model, hist, None, lambda m: m.fit(hist)).predict(MAX_HORIZON)
    except Exception as exc:  # noqa: BLE001 - re-raised with the series and origin named
        raise ValueError(
            f"nowcast: {settings.model} failed on {unique_id} with data through {origin:%Y-%m}: {exc}"
        ) from exc
    return {(pd.Timestamp(ds), h): float(value) for h, (ds, value) in enumerate(pred["forecast"].items(), start=1)}


def _interval(center: float, errors: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(errors, [0.1, 0.9])
    return center * float(np.exp(lo)), center * float(np.exp(hi))


def backtest(
    y: pd.Series,
    flash: pd.DataFrame,
    published: pd.Series | None = None,
    *,
    settings: NowcastSettings | None = None,
    unique_id: str = "total",
) -> pd.DataFrame:
    """Nowcast rows (:data:`NOWCAST_COLUMNS`) for every month with flash data: ``none``, ``d10``
    and ``d20`` per month, each made with what was public on its ``as_of`` only.

    ``y``: the confirmed monthly values (index month starts); ``flash``: :data:`FLASH_COLUMNS`;
    ``published``: the day each month's confirmed value became public (missing months: the 16th
    of the next month, :func:`actual_published`). A month whose bridge has fewer than
    ``settings.min_train`` earlier months gets no flash row."""
    settings = settings or NowcastSettings()
    missing = [c for c in FLASH_COLUMNS if c not in flash.columns]
    if missing:
        raise ValueError(f"nowcast: flash frame misses column(s) {missing}")
    y = y.sort_index().astype(float)
    pub = actual_published(y.index)
    if published is not None:
        known = published.reindex(y.index)
        pub = known.where(known.notna(), pub)
    pub = pub[y.notna()]
    flash = flash.sort_values(["ds", "information"], kind="stable").reset_index(drop=True)
    months = pd.DatetimeIndex(sorted(flash["ds"].unique()))
    if months.empty:
        return pd.DataFrame({c: [] for c in NOWCAST_COLUMNS})
    first = months[0] - pd.DateOffset(months=settings.model_history + MAX_HORIZON)
    origins = y.index[(y.index >= first) & (y.index < months[-1])]
    preds = _model_forecasts(y, origins, settings, unique_id)

    known = _Known.of(y, flash, pub, preds)
    rows: list[dict[str, Any]] = []
    for t in months:
        actual = float(y[t]) if t in y.index and pd.notna(y[t]) else np.nan
        prev = t - pd.DateOffset(months=1)
        # information none: the one-month-ahead model forecast, made when month t-1 was confirmed
        if prev in pub.index and (t, 1) in preds:
            as_of = pub[prev]
            errs = _model_errors(known, 1, pub.index[(pub <= as_of) & (pub.index < t)])
            if len(errs) >= settings.min_train:
                center = preds[(t, 1)]
                lo, hi = _interval(center, errs.to_numpy())
                rows.append(_row(unique_id, t, "none", as_of, center, lo, hi, actual))
        for info in ("d10", "d20"):
            row = _flash_row(known, pub, settings, unique_id, t, info, actual)
            if row is not None:
                rows.append(row)
    out = pd.DataFrame(rows, columns=list(NOWCAST_COLUMNS))
    order = {k: i for i, k in enumerate(INFORMATION)}
    out = out.sort_values(
        ["unique_id", "ds", "information"], key=lambda s: s.map(order) if s.name == "information" else s, kind="stable"
    )
    return out.reset_index(drop=True)


def _model_errors(known: _Known, h: int, targets: pd.DatetimeIndex) -> pd.Series:
    """The log errors of the ``h``-month-ahead model forecasts of the ``targets`` already public."""
    vals = {s: known.log_y(s) - known.log_pred(s, h) for s in targets if (s, h) in known.preds and s in known.pub}
    return pd.Series(vals, dtype=float)


@dataclass(frozen=True)
class _Known:
    """What the month loop of :func:`backtest` looks up, indexed once (the loop used to filter
    the frames again for every month and cut: decision 0185; the same figures to the bit):
    ``y`` month -> confirmed value; ``pub`` the months with a confirmed value; ``flash``
    information -> its rows' columns as arrays (the frame's order); ``at`` (month,
    information) -> the row of that cut (the first, as ``.iloc[0]`` took); ``preds`` the model
    forecasts (:func:`_model_forecasts`); the logs of the values and forecasts, each taken once."""

    y: dict[pd.Timestamp, float]
    pub: frozenset[pd.Timestamp]
    flash: dict[str, dict[str, np.ndarray]]
    at: dict[tuple[pd.Timestamp, str], int]
    preds: dict[tuple[pd.Timestamp, int], float]
    _logs: dict[Any, float] = field(default_factory=dict)

    def log_y(self, month: pd.Timestamp) -> float:
        if month not in self._logs:
            self._logs[month] = np.log(self.y[month])
        return self._logs[month]

    def log_pred(self, month: pd.Timestamp, h: int) -> float:
        if (month, h) not in self._logs:
            self._logs[(month, h)] = np.log(self.preds[(month, h)])
        return self._logs[(month, h)]

    @classmethod
    def of(cls, y: pd.Series, flash: pd.DataFrame, pub: pd.Series, preds: dict) -> _Known:
        by_info: dict[str, dict[str, np.ndarray]] = {}
        at: dict[tuple[pd.Timestamp, str], int] = {}
        for info in ("d10", "d20"):
            rows = flash[flash["information"] == info]
            by_info[info] = {
                "ds": pd.DatetimeIndex(rows["ds"]),
                "available_from": rows["available_from"].to_numpy(),
                **{c: rows[c].to_numpy(float) for c in ("value", "wd_part", "wd_month")},
            }
            for i, ds in enumerate(by_info[info]["ds"]):
                at.setdefault((ds, info), i)
        return cls(dict(zip(y.index, y.to_numpy())), frozenset(pub.index), by_info, at, preds)


def _flash_row(
    known: _Known,
    pub: pd.Series,
    settings: NowcastSettings,
    unique_id: str,
    t: pd.Timestamp,
    info: str,
    actual: float,
) -> dict[str, Any] | None:
    """The nowcast of month ``t`` with the flash cut ``info`` (the bridge, combined with the model
    forecast when both have enough errors to weigh), or None when the cut or its training is missing."""
    i = known.at.get((t, info))
    if i is None:
        return None
    rows = known.flash[info]
    as_of = pd.Timestamp(rows["available_from"][i])
    public_months = pub.index[(pub <= as_of) & (pub.index < t)]
    if public_months.empty:
        return None
    mask = (rows["available_from"] <= as_of) & rows["ds"].isin(public_months)
    train_ds = rows["ds"][mask]
    if len(train_ds) < settings.min_train:
        return None
    log_days = np.log(rows["wd_month"][mask] / rows["wd_part"][mask])
    log_ratio = np.log(np.array([known.y[d] for d in train_ds], dtype=float) / rows["value"][mask])
    coef, loo = bridge_fit(log_ratio, log_days)
    x_t = np.log(float(rows["wd_month"][i]) / float(rows["wd_part"][i]))
    bridge = float(rows["value"][i]) * float(np.exp(coef[0] + coef[1] * x_t))
    h = (t.year - public_months[-1].year) * 12 + t.month - public_months[-1].month
    e_bridge = pd.Series(loo, index=train_ds)
    e_model = _model_errors(known, h, train_ds) if (t, h) in known.preds else pd.Series(dtype=float)
    common = e_bridge.index.intersection(e_model.index)
    if len(common) >= settings.min_train:
        eb, em = _at(e_bridge, common), _at(e_model, common)
        wb, wm = 1.0 / max(np.mean(eb**2), 1e-18), 1.0 / max(np.mean(em**2), 1e-18)
        wb, wm = wb / (wb + wm), wm / (wb + wm)
        center = float(np.exp(wb * np.log(bridge) + wm * np.log(known.preds[(t, h)])))
        errors = wb * eb + wm * em
    else:  # no model forecast to combine with: the bridge alone
        center, errors = bridge, loo
    lo, hi = _interval(center, errors)
    return _row(unique_id, t, info, as_of, center, lo, hi, actual)


def _at(values: pd.Series, labels: pd.Index) -> np.ndarray:
    """``values[labels].to_numpy()`` by position (a label lookup per call was a fifth of the loop)."""
    if not values.index.is_unique:
        return values[labels].to_numpy()
    return values.to_numpy()[values.index.get_indexer(labels)]


def _row(
    uid: str, ds: pd.Timestamp, info: str, as_of: pd.Timestamp, center: float, lo: float, hi: float, actual: float
) -> dict[str, Any]:
    ape = abs(center - actual) / abs(actual) * 100.0 if np.isfinite(actual) and actual != 0 else np.nan
    return {
        "unique_id": uid,
        "ds": pd.Timestamp(ds),
        "information": info,
        "as_of": pd.Timestamp(as_of),
        "nowcast": center,
        "lo_80": min(lo, center),
        "hi_80": max(hi, center),
        "actual": actual,
        "ape": ape,
    }
