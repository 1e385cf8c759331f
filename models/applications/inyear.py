"""In-year tracking of the annual total (issue 10, parts 2 and 3).

For a target year Y and an information date ``as_of`` the tracked annual total is

    the confirmed months of Y public on ``as_of``  +  the forecast of the remaining months of Y

and its 80% interval comes from the model's JOINT sample paths of the remaining months (the
months' correlation is kept; summing monthly bounds would not).

**Information.** A month's confirmed figure is public from its publication day (the customs
``customs_month`` rows' ``available_from``; where none is recorded, the 16th of the next month,
:func:`models.applications.nowcast.actual_published`). The model is fitted on the confirmed months public on
``as_of`` and nothing else; a flash (``d10`` on the 11th, ``d20`` on the 21st) counts only from
its own ``as_of`` (the nowcast row's publication day).

**Flash.** Every month of Y not yet confirmed whose flash nowcast (``models.applications.nowcast.backtest``
rows: the bridge from the 10-/20-day figure combined with a model) was public on ``as_of`` is
conditioned on it - the latest cut public (d20 over d10). At the 11th of month m that is month m
(d10) AND month m-1 (its d20: m-1 is confirmed only on the 16th). The nowcast's value is the
month's point forecast and its 80% error spread (a log-normal matched to ``lo_80``/``hi_80``)
replaces the model's draws of that month.

**Later months stay consistent** with the flash through the model's own path covariance: the
other unconfirmed months of each path are moved by the regression of their draws on the
conditioned months' draws (Gaussian conditioning by kriging: ``y_K + (x_S - z_S) B`` with
``B = cov(z_S)^-1 cov(z_S, y_K)`` estimated from the paths). A flash that says the month is 5%
above the model lifts the later months by what the model's own dynamics imply (for ETS the
level moves; for a seasonal random walk the whole year-ahead block), and their point forecasts
by the same regression. Without a flash nothing moves.

**Cost.** One fit per (series, last confirmed month): the information dates of the 16th and
21st of month m and of the 11th of month m+1 share the fit on data through m-1 (:class:`FitCache`);
the flash dates reuse it. The same cache serves the mid-year revisions
(``models.applications.institutional.mid_year_rows``) through :func:`track_at`.

``information`` in the output: ``month`` (a confirmed month has just been published: the 16th
rule), ``d10`` / ``d20`` (a flash has just been published), ``revision`` (an institution's
revision date, only in the mid-year comparison). This module reads no file.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.applications.nowcast import actual_published
from models.core import fitcache, registry
from models.core.annual import annual_totals

BN = 1e9
TRACKING_COLUMNS: tuple[str, ...] = (
    "target_year",
    "as_of",
    "information",
    "unique_id",
    "months_observed",
    "forecast_usd_bn",
    "lo_80",
    "hi_80",
    "model",
    "actual_usd_bn",
    "ape",
    "note",
)
INFORMATION: tuple[str, ...] = ("month", "d10", "d20")
FLASH_INFORMATION: tuple[str, ...] = ("d10", "d20")
Z80 = 1.2815515655446004  # N(0,1) 90% quantile


@dataclass(frozen=True)
class InyearSettings:
    """``model``/``model_params``: the registry model forecasting the remaining months (fitted
    once per series and last confirmed month); ``n_paths``: joint draws per fit; ``seed``: the
    run seed (each fit's paths are seeded from (seed, series, last month)); ``nowcast_model``:
    the model ``models.applications.nowcast.backtest`` combines with the bridge for a series whose nowcast
    rows are not given (the total's come from the pipeline's nowcast stage, ETS).

    Why theta: tracked annual total with monthly information only, 2013-2025, mean APE by
    as-of month (Jan / Jun / Sep), total | semiconductors (ministry basis), and CPU seconds for
    both series (``benchmarks/tracking.py --model M --no-flash``, 2 cores shared):
    ets 4.24/3.24/1.31 | 10.68/6.01/2.68, 126 s; theta 4.76/2.89/1.27 | 11.53/5.02/2.78, 34 s;
    seasonal_naive 7.77/4.09/2.49 | 17.73/11.56/7.04, 9 s. Theta is as accurate as ETS at a
    quarter of its cost; seasonal naive is far worse. With the flash (``benchmarks/tracking.py``):
    mean APE as of January / June or later, total 5.64 / 1.49, semiconductors 11.02 / 3.30; the
    flash's worth at the same dates (with / without): total d10 2.61 / 3.14, d20 2.43 / 2.69;
    semiconductors d10 6.13 / 7.08, d20 5.51 / 5.95."""

    model: str = "theta"
    model_params: dict[str, Any] = field(default_factory=dict)
    n_paths: int = 1000
    seed: int = 0
    nowcast_model: str = "theta"
    fit_cache: str = ""  # models.core.fitcache's folder ("" = off)

    def __post_init__(self) -> None:
        if self.n_paths < 10:
            raise ValueError(f"inyear: n_paths must be at least 10; got {self.n_paths}")


@dataclass
class SeriesInputs:
    """What tracking needs of one series: ``y`` the confirmed monthly values (month-start index);
    ``published`` the day each month's value became public (index ``ds``; months absent: the 16th
    of the next month); ``nowcasts`` the flash nowcast rows of the series
    (``models.applications.nowcast.NOWCAST_COLUMNS``; only ``d10``/``d20`` rows are used, each from its ``as_of``).
    A series without ``nowcasts`` but with ``flash_rows`` gets them from
    :func:`with_nowcasts` (``models.applications.nowcast.backtest``)."""

    unique_id: str
    y: pd.Series
    published: pd.Series | None = None
    nowcasts: pd.DataFrame | None = None
    #: raw flash rows (``models.applications.nowcast.FLASH_COLUMNS``) to nowcast from when ``nowcasts`` is not given
    flash_rows: pd.DataFrame | None = None
    #: the flash's subject in the indicator table (e.g. ``group_semiconductors``), for the notes
    flash_subject: str = ""

    def __post_init__(self) -> None:
        y = self.y.dropna().astype(float).sort_index()
        if not isinstance(y.index, pd.DatetimeIndex):
            raise ValueError(f"inyear: {self.unique_id}: y must be indexed by month starts")
        pub = actual_published(y.index)
        if self.published is not None:
            known = self.published.reindex(y.index)
            pub = known.where(known.notna(), pub)
        self.y = y
        self.pub = pd.Series(pd.DatetimeIndex(pub.to_numpy()), index=y.index)
        flash = (
            self.nowcasts
            if self.nowcasts is not None
            else pd.DataFrame(columns=["ds", "information", "as_of", "nowcast", "lo_80", "hi_80"])
        )
        missing = [c for c in ("ds", "information", "as_of", "nowcast", "lo_80", "hi_80") if c not in flash.columns]
        if missing:
            raise ValueError(f"inyear: {self.unique_id}: nowcast rows miss column(s) {missing}")
        flash = flash[flash["information"].isin(FLASH_INFORMATION)]
        self.flash = (
            flash.assign(ds=pd.to_datetime(flash["ds"]), as_of=pd.to_datetime(flash["as_of"]))
            .sort_values(["ds", "as_of"], kind="stable")
            .reset_index(drop=True)
        )
        # the flash columns track_at reads for every information date, taken out of the frame once
        self.flash_columns = {c: self.flash[c].to_numpy() for c in ("information", "nowcast", "lo_80", "hi_80")}
        self.flash_ds, self.flash_as_of = pd.DatetimeIndex(self.flash["ds"]), pd.DatetimeIndex(self.flash["as_of"])

    def latest_flash(
        self, as_of: pd.Timestamp, last: pd.Timestamp, end: pd.Timestamp, months: pd.DatetimeIndex
    ) -> list[tuple[pd.Timestamp, str, Any, Any, Any]]:
        """(ds, information, nowcast, lo_80, hi_80) of the latest flash public on ``as_of`` of each
        month after ``last`` through ``end`` among ``months``, in month order: the rows of
        ``flash[(as_of <= as_of) & (ds > last) & (ds <= end) & ds.isin(months)].drop_duplicates("ds",
        keep="last")``, selected on arrays (decision 0185)."""
        ds = self.flash_ds
        rows = np.flatnonzero((self.flash_as_of <= as_of) & (ds > last) & (ds <= end) & ds.isin(months))
        rows = rows[~ds[rows].duplicated(keep="last")]
        cols = self.flash_columns
        return [(ds[i], cols["information"][i], cols["nowcast"][i], cols["lo_80"][i], cols["hi_80"][i]) for i in rows]

    def public_months(self, as_of: pd.Timestamp) -> pd.DatetimeIndex:
        return self.y.index[(self.pub <= as_of).to_numpy()]

    def annual_actual(self, year: int) -> float:
        months = self.y[self.y.index.year == year]
        return float(months.sum()) if len(months) == 12 else float("nan")


@dataclass
class Fit:
    """One fit: the months it forecasts, their point forecasts and joint paths (n_paths x h)."""

    model: str
    index: pd.DatetimeIndex
    point: np.ndarray
    paths: np.ndarray


class FitCache:
    """Fits by (series, last confirmed month), each forecasting through December of the next
    year (so one fit serves the year of its last month and the year after)."""

    def __init__(self, settings: InyearSettings) -> None:
        self.settings = settings
        self._fits: dict[tuple[str, pd.Timestamp], Fit | None] = {}
        self.n_fits = 0

    def get(self, inputs: SeriesInputs, last: pd.Timestamp) -> Fit | None:
        key = (inputs.unique_id, pd.Timestamp(last))
        if key not in self._fits:
            self._fits[key] = self._fit(inputs, pd.Timestamp(last))
        return self._fits[key]

    def _fit(self, inputs: SeriesInputs, last: pd.Timestamp) -> Fit | None:
        s = self.settings
        history = inputs.y.loc[:last]
        if len(history) < registry.traits_of(s.model, s.model_params).min_obs:
            return None
        model = registry.PROTOTYPES(s.model, s.model_params)  # a clone of the configured model
        h = 12 - last.month + 12
        try:
            model = fitcache.fitted(s.fit_cache, model, history, None, lambda m: m.fit(history))
            point = model.predict(h)["forecast"].to_numpy(dtype=float)
            seed = zlib.crc32(f"{s.seed}|{inputs.unique_id}|{last:%Y-%m}".encode())
            paths = model.sample_paths(h, s.n_paths, seed=seed)
        except Exception as exc:  # noqa: BLE001 - re-raised naming the series and the data
            raise ValueError(
                f"inyear: {s.model} failed on {inputs.unique_id} with data through {last:%Y-%m}: {exc}"
            ) from exc
        self.n_fits += 1
        index = pd.date_range(last + pd.offsets.MonthBegin(1), periods=h, freq="MS")
        return Fit(model=s.model, index=index, point=point, paths=paths)


def flash_draws(center: float, lo: float, hi: float, z: np.ndarray) -> np.ndarray:
    """Draws of a month from its nowcast: log-normal with the 10%/90% quantiles at lo/hi
    (``z``: standard normal draws)."""
    lo, hi = max(min(lo, center), 1e-12), max(hi, center)
    m = 0.5 * (np.log(lo) + np.log(hi))
    s = (np.log(hi) - np.log(lo)) / (2.0 * Z80)
    return np.exp(m + s * z)


def condition(
    point: np.ndarray, paths: np.ndarray, cond: Mapping[int, tuple[float, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """Point forecasts and paths conditioned on some columns: ``cond`` maps a column to (its new
    point value, its new draws). The other columns move by the regression of their draws on the
    conditioned columns' draws (kriging: ``y_K + (x_S - z_S) B``), points likewise."""
    if not cond:
        return point, paths
    point, paths = point.astype(float).copy(), paths.astype(float).copy()
    S = sorted(cond)
    K = [k for k in range(paths.shape[1]) if k not in cond]
    z = paths[:, S]
    x = np.column_stack([cond[k][1] for k in S])
    c = np.array([cond[k][0] for k in S])
    if K:
        zc = z - z.mean(axis=0)
        yk = paths[:, K] - paths[:, K].mean(axis=0)
        B, *_ = np.linalg.lstsq(zc, yk, rcond=None)  # (|S|, |K|); a constant column gets no weight
        paths[:, K] = paths[:, K] + (x - z) @ B
        point[K] = point[K] + (c - point[S]) @ B
    paths[:, S] = x
    point[S] = c
    return point, paths


def track_at(
    inputs: SeriesInputs, target_year: int, as_of: pd.Timestamp, cache: FitCache, *, information: str = "month"
) -> dict[str, Any] | None:
    """The tracked annual total of ``target_year`` with what was public on ``as_of``: one
    :data:`TRACKING_COLUMNS` row (USD bn), or None when the series has no fit then (too short a
    history). Nothing published after ``as_of`` enters: neither a confirmed month nor a flash."""
    as_of = pd.Timestamp(as_of)
    months = pd.date_range(f"{target_year}-01-01", periods=12, freq="MS")
    public = inputs.public_months(as_of)
    if public.empty:
        return None
    last = public[-1]
    observed = inputs.y[public]
    n_obs = int(observed.index.isin(months).sum())
    actual = inputs.annual_actual(target_year)
    notes: list[str] = []
    if last >= months[-1]:
        total = float(observed[observed.index.isin(months)].sum())
        lo = hi = total
        model = "observed"
    else:
        fit = cache.get(inputs, last)
        if fit is None:
            return None
        model = fit.model
        # the latest flash public on as_of of each unconfirmed month through December of the year
        # (at the 11th of January: January's d10 and the previous December's d20)
        cond: dict[int, tuple[float, np.ndarray]] = {}
        rng = np.random.default_rng(zlib.crc32(f"flash|{inputs.unique_id}|{as_of:%Y-%m-%d}".encode()))
        for ds, info, nowcast, lo_80, hi_80 in inputs.latest_flash(as_of, last, months[-1], fit.index):
            col = int(fit.index.get_loc(ds))
            z = rng.standard_normal(fit.paths.shape[0])
            cond[col] = (float(nowcast), flash_draws(float(nowcast), float(lo_80), float(hi_80), z))
            notes.append(f"{ds:%Y-%m} {info}")
        point, paths = condition(fit.point, fit.paths, cond)
        res = annual_totals(observed, fit.index, paths, target_year, point=point)
        total, lo, hi = res["forecast"], res["lo_80"], res["hi_80"]
    note = f"data through {last:%Y-%m}" + (f"; flash {', '.join(notes)}" if notes else "")
    ape = abs(total - actual) / actual * 100.0 if np.isfinite(actual) and actual else float("nan")
    return {
        "target_year": int(target_year),
        "as_of": as_of,
        "information": information,
        "unique_id": inputs.unique_id,
        "months_observed": n_obs,
        "forecast_usd_bn": total / BN,
        "lo_80": min(lo, total) / BN,
        "hi_80": max(hi, total) / BN,
        "model": model,
        "actual_usd_bn": actual / BN,
        "ape": ape,
        "note": note,
    }


def information_dates(inputs: SeriesInputs, target_year: int) -> list[tuple[pd.Timestamp, str]]:
    """The information dates of ``target_year``: each confirmed month's publication from December
    of the year before through November (``month``; after December's the year is observed) and
    each flash of a month of the year (``d10``/``d20``), in date order."""
    months = pd.date_range(f"{target_year - 1}-12-01", periods=12, freq="MS")
    dates = [(pd.Timestamp(inputs.pub[m]), "month") for m in months if m in inputs.pub.index]
    f = inputs.flash[inputs.flash["ds"].dt.year == target_year]
    dates += [(pd.Timestamp(a), str(i)) for a, i in zip(f["as_of"], f["information"])]
    order = {k: n for n, k in enumerate(INFORMATION)}
    return sorted(set(dates), key=lambda d: (d[0], order.get(d[1], 9)))


def tracking(
    series: Iterable[SeriesInputs],
    years: Iterable[int],
    settings: InyearSettings | None = None,
    *,
    cache: FitCache | None = None,
) -> pd.DataFrame:
    """Tracking rows (:data:`TRACKING_COLUMNS`) for every series, target year and information
    date of the year (:func:`information_dates`)."""
    cache = cache or FitCache(settings or InyearSettings())
    rows = []
    for inputs in series:
        for year in years:
            for as_of, info in information_dates(inputs, year):
                row = track_at(inputs, year, as_of, cache, information=info)
                if row is not None:
                    rows.append(row)
    out = pd.DataFrame(rows, columns=list(TRACKING_COLUMNS))
    order = {k: n for n, k in enumerate(INFORMATION)}
    out = out.sort_values(
        ["unique_id", "target_year", "as_of", "information"],
        key=lambda s: s.map(order) if s.name == "information" else s,
        kind="stable",
    )
    return out.reset_index(drop=True)


def tracked_as_of(rows: pd.DataFrame, unique_id: str, target_year: int, date: pd.Timestamp) -> dict[str, Any] | None:
    """The tracked total of ``unique_id`` and ``target_year`` with what was public on ``date``:
    the :func:`tracking` row of the latest information date on or before ``date`` (information
    changes only on those dates, so it IS :func:`track_at` on ``date``), or None when there is
    none (no row of the series and year on or before ``date``)."""
    date = pd.Timestamp(date)
    sel = rows[
        (rows["unique_id"].astype(str) == unique_id)
        & (rows["target_year"].astype(int) == int(target_year))
        & (pd.to_datetime(rows["as_of"]) <= date)
    ]
    if sel.empty:
        return None
    order = {k: n for n, k in enumerate(INFORMATION)}
    sel = sel.assign(_o=sel["information"].map(order)).sort_values(["as_of", "_o"], kind="stable")
    return sel.drop(columns="_o").iloc[-1].to_dict()


#: series tracked -> the subject of the customs flash conditioning it. The customs group
#: ``group_semiconductors`` is on nearly the ministry's MTI 831 basis: its whole month is
#: 1.0114 x ``item:semiconductors_ministry`` on average 2016-2025 (sd 0.0037 over 120 months,
#: yearly means 1.008-1.016), a near-constant ratio the bridge's intercept absorbs (against the
#: customs-MTI ``item:semiconductors`` 2022-2025: 1.0174, sd 0.0080, less stable).
FLASH_SUBJECTS: dict[str, str] = {"total": "total", "item:semiconductors_ministry": "group_semiconductors"}


def with_nowcasts(inputs: SeriesInputs, settings: InyearSettings) -> SeriesInputs:
    """``inputs`` with its flash nowcast rows: as given, else ``models.applications.nowcast.backtest`` on its
    raw flash rows (model ``settings.nowcast_model``), else none."""
    from models.applications.nowcast import NowcastSettings, backtest

    if inputs.nowcasts is not None and len(inputs.nowcasts) or inputs.flash_rows is None or inputs.flash_rows.empty:
        return inputs
    pub = inputs.published if inputs.published is not None else None
    rows = backtest(
        inputs.y,
        inputs.flash_rows,
        pub,
        settings=NowcastSettings(model=settings.nowcast_model, fit_cache=settings.fit_cache),
        unique_id=inputs.unique_id,
    )
    return SeriesInputs(inputs.unique_id, inputs.y, inputs.published, rows, None, inputs.flash_subject)


def track_series(job: tuple[SeriesInputs, tuple[int, ...], InyearSettings]) -> pd.DataFrame:
    """One series' tracking rows over its years (a picklable unit of work for
    ``models.core.engine.run_batches``): its nowcasts (:func:`with_nowcasts`), then :func:`tracking`."""
    inputs, years, settings = job
    return tracking([with_nowcasts(inputs, settings)], years, settings)


def series_inputs(
    frame: pd.DataFrame,
    indicators: pd.DataFrame,
    working_days: pd.DataFrame,
    *,
    subjects: Mapping[str, str] | None = None,
    nowcasts: Mapping[str, pd.DataFrame] | None = None,
) -> list[SeriesInputs]:
    """The inputs of the tracked series from the canonical frame, the indicator table and the
    flash working days (``features.calendar.flash_working_days``): ``y``, the publication day of
    each confirmed month (the ``customs_month`` rows of a series that IS the flash's subject, else
    the 16th rule), and the flash (``nowcasts[uid]`` when given, else the raw flash rows of
    ``subjects[uid]``). Series absent from the frame are skipped."""
    from models.applications.nowcast import flash_frame

    subjects = dict(FLASH_SUBJECTS if subjects is None else subjects)
    nowcasts = nowcasts or {}
    out = []
    for uid, subject in subjects.items():
        y = frame.loc[frame["unique_id"] == uid].set_index("ds")["y"]
        if y.dropna().empty:
            continue
        flash, published = None, None
        if (indicators["indicator"] == f"customs_10d:{subject}").any():
            flash, pub = flash_frame(indicators, working_days, subject)
            published = pub if subject == uid else None
        given = nowcasts.get(uid)
        out.append(
            SeriesInputs(
                uid, y, published, given if given is not None else None, None if given is not None else flash, subject
            )
        )
    return out
