"""Fitting many series through the one model protocol.

``forecast(frame, settings, ...)`` turns a canonical long frame (unique_id, ds, y) into
forecasts of every enabled model for every series, in parallel over series. The work for ONE
series and ONE information set is done by ``fit_series``; the backtest calls the same function
on truncated histories, so a forecast and a backtest window go through one code path.

Rules applied per series and model (every decision is recorded in ``fits``):

- a series is *short* when it has fewer than ``min_obs_seasonal`` observed months, *sparse* when
  more than ``max_missing_share`` of the months between its first and last observation are
  missing; a model is also skipped when the series has fewer observed months than the model's
  ``min_obs``. Such a model is replaced by the fallback: ``seasonal_naive`` when the series has
  at least 12 observed months, else ``settings.fallback`` (status 'fallback', reason given).
  The fallback model itself is never replaced by itself.
- a model that raises in fit / predict / sample_paths, or returns a non-finite forecast, is
  replaced by the same fallback chain (status 'fallback'; ``error`` holds the exception type and
  message). When the whole chain fails the model has no forecast for that series (status
  'failed'). One bad series never stops the run.
- a series whose last observation is at or after ``until`` has nothing to forecast
  (status 'skipped').
- a signed series (``settings.signed``, or a negative value in its history; ``models.core.base``) is
  fitted with ``signed=True``: additive forms, no clip at zero, ``reason`` naming the form; a
  model that needs positive values (``needs_positive``) steps aside to the fallback chain.
- a forecast, bound or sample path beyond ``settings.plausibility_factor`` times the history's
  median absolute value fails the model (fallback chain): nothing beyond it is published 'ok'.

Forecast rows carry the *requested* model name (e.g. 'arima'); ``fits.model_used`` says which
model actually produced them.

Exogenous regressors (e.g. working days) are passed only to models with ``uses_exog``; at fit
time the model receives X on the history months only, at predict time X on the forecast months.
A series whose months the exog does not fully cover (e.g. before or after the working-day
calendar's years) is fitted without it; ``fits.reason`` of its exog-using models says why.

Models of one series alone (``SeriesExtras``, e.g. a leading-indicator ARIMAX for the total):
``extras`` (a callable ``(unique_id, cutoff, months) -> SeriesExtras``, see ``ExtrasAt``) is asked
once per series and information set, in the calling process: the extra models run after the
enabled ones, on the shared exog joined with the extra regressor columns of THAT cutoff, and a
model the extras leave out at a cutoff (its indicator cannot serve it) gets a 'skipped' fit row
with the reason and no forecast, so it is not scored there.

Seeds: the sample paths of (series, model, cutoff) use a seed derived from ``settings.seed`` and
a stable CRC32 of the series id, the model name and the cutoff (the history's last month), so
results do not depend on ``n_jobs``, on the executor (joblib or Dask, ``run_batches``), on the
batch a series lands in, on the worker or the order it runs in, or on which other series are in
the frame.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from models.core import fitcache, registry
from models.core.annual import annual_totals
from models.core.base import FORECAST_COLUMNS, Forecaster, Traits, future_index, is_regular, regularize
from models.core.executors import EXECUTORS, WorkerLost, dask_map
from models.core.fits import FIT_COLUMNS, FitRow, fits_frame
from models.errors import ModelSetupError

__all__ = [
    "ModelSpec",
    "EngineSettings",
    "ForecastResult",
    "SeriesOutcome",
    "ModelFactory",
    "SeriesExtras",
    "ExtrasAt",
    "with_own_columns",
    "forecast",
    "fit_series",
    "frame_to_series",
    "series_seed",
    "run_batches",
    "when_lost",
    "FORECAST_FRAME_COLUMNS",
    "FIT_COLUMNS",
    "ANNUAL_COLUMNS",
]

log = logging.getLogger(__name__)

ModelFactory = Callable[[str, dict[str, Any]], Forecaster]
"""Builds a model from (name, params); ``models.core.registry.PROTOTYPES`` by default: clones of one
configured model per (name, params) (tests inject toys)."""

BASELINE = "seasonal_naive"
SEASON = 12
FORECAST_FRAME_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "model", *FORECAST_COLUMNS)
ANNUAL_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "year",
    "model",
    "forecast",
    "lo_80",
    "hi_80",
    "lo_95",
    "hi_95",
    "observed",
    "n_observed",
    "n_forecast",
    "reason",
)
#: BLAS/OpenMP threads of a fit, in a worker and in this process alike: the summation order of a
#: threaded BLAS call depends on the thread count, so a fit in the pipeline process (n_jobs 1, or a
#: single item) differed from the same fit in a loky worker by 1e-15 (issue 19 item 8); the
#: parallelism is over series, so one thread per fit costs nothing
FIT_BLAS_THREADS = 1
# libraries that log on every fit; muted inside the fitting loop
_NOISY_LOGGERS = ("cmdstanpy", "prophet", "prophet.plot", "statsmodels")


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ModelSpec:
    """A model by registry name with its constructor settings."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"ModelSpec.name must be a non-empty string; got {self.name!r}")
        if not isinstance(self.params, Mapping):
            raise ValueError(f"ModelSpec('{self.name}').params must be a mapping; got {type(self.params).__name__}")


@dataclass(frozen=True)
class EngineSettings:
    """Plain settings of the engine (built by flows/settings.py from config.yaml)."""

    models: tuple[ModelSpec, ...]  # enabled models in order; seasonal_naive always added if absent
    min_obs_seasonal: int = 24  # below this many observed months a series is "short"
    max_missing_share: float = 0.5  # above this share of its span missing a series is "sparse"
    fallback: str = "naive"  # last-resort model (seasonal_naive is tried first when >= 12 obs)
    n_paths: int = 1000
    n_jobs: int = 2
    seed: int = 0
    executor: str = "joblib"  # where the per-series map runs: joblib (local processes) or dask
    dask_address: str = ""  # dask: scheduler address (tcp://host:8786); "" = a LocalCluster of n_jobs workers
    signed: bool | tuple[str, ...] = ()  # series that may be negative: True = every series, or their ids
    plausibility_factor: float | None = None  # a forecast or path beyond this many times the history's scale fails
    fit_cache: str = ""  # folder of the content-addressed fit cache (models.core.fitcache); "" = off

    def __post_init__(self) -> None:
        specs = tuple(ModelSpec(m) if isinstance(m, str) else m for m in self.models)
        if not specs:
            raise ValueError("EngineSettings.models is empty: enable at least one model")
        for spec in specs:
            if not isinstance(spec, ModelSpec):
                raise ValueError(f"EngineSettings.models must hold ModelSpec or names; got {type(spec).__name__}")
        names = [s.name for s in specs]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"EngineSettings.models lists {', '.join(duplicated)} more than once")
        if "champion" in names:
            raise ValueError("'champion' is reserved for the backtest's champion rows; it cannot be a model name")
        if BASELINE not in names:
            specs = (ModelSpec(BASELINE), *specs)
        object.__setattr__(self, "models", specs)
        if not isinstance(self.min_obs_seasonal, int) or self.min_obs_seasonal < 1:
            raise ValueError(f"min_obs_seasonal must be a positive integer; got {self.min_obs_seasonal!r}")
        if not 0.0 <= float(self.max_missing_share) <= 1.0:
            raise ValueError(f"max_missing_share must be between 0 and 1; got {self.max_missing_share!r}")
        if not isinstance(self.fallback, str) or not self.fallback:
            raise ValueError(f"fallback must be a model name; got {self.fallback!r}")
        if not isinstance(self.n_paths, int) or self.n_paths < 1:
            raise ValueError(f"n_paths must be a positive integer; got {self.n_paths!r}")
        if not isinstance(self.n_jobs, int) or self.n_jobs == 0 or self.n_jobs < -1:
            raise ValueError(f"n_jobs must be a positive integer or -1 (all cores); got {self.n_jobs!r}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}; got {self.executor!r}")
        if not isinstance(self.dask_address, str):
            raise ValueError(f"dask_address must be a string (empty = a local Dask cluster); got {self.dask_address!r}")
        if not isinstance(self.signed, bool):
            object.__setattr__(self, "signed", tuple(str(s) for s in self.signed))

    def is_signed(self, unique_id: str) -> bool:
        """Whether the series may be negative (``models.core.base``: additive forms, no clip at zero)."""
        return self.signed if isinstance(self.signed, bool) else unique_id in self.signed

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.models)

    def params_of(self, name: str) -> dict[str, Any]:
        for spec in self.models:
            if spec.name == name:
                return dict(spec.params)
        return {}


@dataclass(frozen=True)
class SeriesExtras:
    """What one series adds at one cutoff: models that run for it alone, the regressor columns
    they read (index ``ds``: the history's first month through the last forecast month; joined
    to the shared exog), and the models left out at this cutoff with the reason."""

    models: tuple[ModelSpec, ...] = ()
    exog: pd.DataFrame | None = None
    skipped: tuple[tuple[str, str], ...] = ()  # (model name, reason)


ExtrasAt = Callable[[str, pd.Timestamp, pd.DatetimeIndex], SeriesExtras]
"""(unique_id, cutoff = the history's last month, months = first month .. last forecast month)
-> the series' extras at that cutoff; called in the calling process, once per information set."""


def with_own_columns(shared: pd.DataFrame | None, own: pd.DataFrame | None) -> pd.DataFrame | None:
    """The regressors one series' models see: the shared exog (e.g. working days) with the series'
    own columns (e.g. its leading indicator) joined on the shared months; either alone when the
    other is None. The engine, the published reconciliation and the MLflow model all use it, so a
    model gets the same X wherever it forecasts."""
    if own is None:
        return shared
    if shared is None:
        return own
    return shared.join(own, how="left")


# --------------------------------------------------------------------------- results
@dataclass
class ForecastResult:
    forecasts: pd.DataFrame  # unique_id, ds, model, forecast, lo_80, hi_80, lo_95, hi_95
    fits: pd.DataFrame  # unique_id, model, model_used, status, reason, error, n_obs, description
    annual: pd.DataFrame | None = None  # ANNUAL_COLUMNS, when annual_year is given
    fitted: dict[tuple[str, str], Forecaster] = field(default_factory=dict)  # when keep_models
    # per requested model: seconds of its fits (``fit``, of the model and of any fallback tried for
    # it), timed by the engine where the model is fitted, summed over series; run-dependent, so kept
    # out of ``fits`` (whose rows are identical across runs and executors)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    # the champion of each series once chosen (``models.selection.champion.choose``): the
    # champions table (unique_id, champion, reason, ...) the published forecast flags
    champions: pd.DataFrame | None = None

    def champion_of(self) -> dict[str, str]:
        """unique_id -> the chosen champion ({} before ``choose``)."""
        if self.champions is None:
            return {}
        return {str(u): str(c) for u, c in zip(self.champions["unique_id"], self.champions["champion"])}


@dataclass
class SeriesOutcome:
    """What ``fit_series`` produced for one series and one information set."""

    forecasts: pd.DataFrame
    fits: list[FitRow]
    annual: list[dict[str, Any]]
    fitted: dict[tuple[str, str], Forecaster]
    fit_seconds: dict[str, float] = field(default_factory=dict)  # per requested model, see ForecastResult


# --------------------------------------------------------------------------- helpers
def series_seed(seed: int, unique_id: str, model: str, cutoff: pd.Timestamp | None = None) -> int:
    """Stable 32-bit seed for (run seed, series, model, cutoff = the last month of the history the
    model was fitted on): same in every process, worker and run, whatever the order of the work;
    each backtest window draws its own paths."""
    entropy = [int(seed) & 0xFFFFFFFF, zlib.crc32(unique_id.encode()), zlib.crc32(model.encode())]
    if cutoff is not None:
        entropy.append(zlib.crc32(f"{pd.Timestamp(cutoff):%Y-%m}".encode()))
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def frame_to_series(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Canonical long frame -> {unique_id: regular monthly Series (NaN for missing months)}, ids sorted.
    Rows with a missing y are unobserved months."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame; got {type(frame).__name__}")
    missing = [c for c in ("unique_id", "ds", "y") if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s) {missing}; has {list(frame.columns)}")
    if not pd.api.types.is_datetime64_any_dtype(frame["ds"]):
        raise ValueError(f"frame column 'ds' must be datetime64 month starts; got dtype {frame['ds'].dtype}")
    if not pd.api.types.is_numeric_dtype(frame["y"]):
        raise ValueError(f"frame column 'y' must be numeric; got dtype {frame['y'].dtype}")
    ds = pd.DatetimeIndex(frame["ds"])
    off = ~(ds == ds.to_period("M").to_timestamp())
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"frame column 'ds' must hold month starts; row {row} ({frame['unique_id'].iloc[row]}) has {ds[row]}"
        )
    dup = frame.duplicated(["unique_id", "ds"])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(
            f"frame has duplicate (unique_id, ds): series '{frame['unique_id'].iloc[row]}' "
            f"month {ds[row]:%Y-%m} (row {row})"
        )
    observed = frame.loc[frame["y"].notna(), ["unique_id", "ds", "y"]]
    out: dict[str, pd.Series] = {}
    if observed.empty:
        return out
    # what ``regularize`` gives each series (every month from its first to its last observation,
    # NaN where missing; index 'ds' with freq MS), from ONE month range sliced per series: pandas
    # builds a month-start range month by month in Python, so one range per series was most of
    # this function's time (and this runs in the calling process, before any worker starts)
    ds_all = pd.DatetimeIndex(observed["ds"])
    months = pd.date_range(ds_all.min(), ds_all.max(), freq="MS", name="ds")
    position = (ds_all.year - months[0].year) * 12 + (ds_all.month - months[0].month)
    observed = observed.assign(_position=np.asarray(position))
    for uid, group in observed.groupby("unique_id", sort=True):
        at = group["_position"].to_numpy()
        values = group["y"].to_numpy(dtype=float)
        first, last = int(at.min()), int(at.max())
        regular = np.full(last - first + 1, np.nan)
        regular[at - first] = values
        out[str(uid)] = pd.Series(regular, index=months[first : last + 1], name=str(uid))
    return out


def _check_exog(exog: pd.DataFrame | None) -> pd.DataFrame | None:
    if exog is None:
        return None
    if not isinstance(exog, pd.DataFrame) or not isinstance(exog.index, pd.DatetimeIndex):
        raise ValueError("exog must be a DataFrame indexed by month starts (DatetimeIndex named ds)")
    if exog.index.has_duplicates:
        raise ValueError(f"exog index has duplicate month {exog.index[exog.index.duplicated()][0]:%Y-%m}")
    if not (exog.index == exog.index.to_period("M").to_timestamp()).all():
        raise ValueError("exog index must hold month starts (day 1, midnight)")
    bad = [c for c in exog.columns if not pd.api.types.is_numeric_dtype(exog[c])]
    if bad:
        raise ValueError(f"exog column(s) {bad} are not numeric")
    # leading-indicator columns (features.leading: 'lead:...') are NaN where the value was not
    # public at the cutoff; the model that reads them forecasts those months (models.leading)
    nan_cols = [c for c in exog.columns if exog[c].isna().any() and not str(c).startswith("lead:")]
    if nan_cols:
        raise ValueError(
            f"exog column '{nan_cols[0]}' has missing values, first at {exog.index[exog[nan_cols[0]].isna()][0]:%Y-%m}"
        )
    return exog.sort_index()


def _exog_for(
    exog: pd.DataFrame | None, hist: pd.DatetimeIndex, fidx: pd.DatetimeIndex
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """X on the history months, X on the forecast months, and '' -- or (None, None, why) when
    ``exog`` does not cover every month the series needs (e.g. a series from the 1850s and a
    working-day calendar that starts in 1950): the series is then fitted without regressors,
    and ``why`` is recorded, instead of one series' exog stopping the run."""
    if exog is None:
        return None, None, ""
    needed = hist.union(fidx)
    lacking = needed.difference(exog.index)
    if len(lacking):
        columns = ", ".join(map(str, exog.columns))
        span = f"{exog.index[0]:%Y-%m}..{exog.index[-1]:%Y-%m}" if len(exog.index) else "no month"
        return (
            None,
            None,
            (
                f"fitted without the regressor(s) {columns}: they cover {span}, the series needs "
                f"{needed[0]:%Y-%m}..{needed[-1]:%Y-%m} ({len(lacking)} month(s) lacking, first {lacking[0]:%Y-%m})"
            ),
        )
    return exog.loc[hist], (exog.loc[fidx] if len(fidx) else None), ""


def _wants_exog(factory: ModelFactory, spec: ModelSpec) -> bool:
    """Whether the requested model would have used the regressors (its ``uses_exog`` tag, not
    switched off by a ``working_days: false`` parameter)."""
    try:
        model = factory(spec.name, dict(spec.params))
    except Exception:
        return False  # a model that cannot be built has its error recorded already
    return bool(getattr(model, "uses_exog", False)) and model.params.get("working_days", True) is not False


def _describe(model: Forecaster) -> str:
    try:
        return json.dumps(model.describe(), default=str, sort_keys=True)
    except Exception as exc:  # a describe bug must not lose the forecast
        return json.dumps({"describe_error": f"{type(exc).__name__}: {exc}"})


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _fallback_chain(settings: EngineSettings, n_obs: int) -> list[str]:
    chain = [BASELINE] if n_obs >= SEASON else []
    if settings.fallback not in chain:
        chain.append(settings.fallback)
    return chain


def _screen(settings: EngineSettings, y: pd.Series) -> str:
    """Why the series cannot take a full model ('' when it can)."""
    n_obs = int(y.notna().sum())
    span = len(y)
    missing_share = 1.0 - n_obs / span
    if n_obs < settings.min_obs_seasonal:
        return f"short series: {n_obs} observed months < min_obs_seasonal {settings.min_obs_seasonal}"
    if missing_share > settings.max_missing_share:
        return (
            f"sparse series: {span - n_obs} of {span} months missing ({missing_share:.0%} > "
            f"max_missing_share {settings.max_missing_share:.0%})"
        )
    return ""


# --------------------------------------------------------------------------- one series
def fit_series(
    unique_id: str,
    y: pd.Series,
    settings: EngineSettings,
    *,
    h: int,
    exog: pd.DataFrame | None = None,
    annual_year: int | None = None,
    keep_models: bool = False,
    factory: ModelFactory | None = None,
    extras: SeriesExtras | None = None,
) -> SeriesOutcome:
    """Fit every enabled model on ONE series (the history ``y``: regular monthly, NaN for
    missing months, ending at its last observation) and forecast ``h`` months after it.

    This is the single code path of forecasting and backtesting: the backtest passes the history
    truncated at its cutoff. ``exog`` must cover the history and the h forecast months.
    ``extras``: this series' own models at this information set (``SeriesExtras``), run after
    the enabled ones with their regressor columns joined to ``exog``."""
    s = _SeriesFit.open(
        unique_id, y, settings, h, exog, annual_year, keep_models, factory or registry.PROTOTYPES, extras
    )
    for name, why in extras.skipped if extras is not None else ():
        s.fits.append(FitRow(unique_id, name, status="skipped", reason=why, n_obs=s.n_obs))
    for spec in (*settings.models, *(extras.models if extras is not None else ())):
        s.fits.append(_nothing_to_forecast(s, spec) if h <= 0 else _fit_spec(s, spec))
    return s.outcome()


@dataclass
class _SeriesFit:
    """One series and one information set as ``fit_series`` works through its models: what every
    model sees, and what the models produced so far."""

    unique_id: str
    y: pd.Series
    settings: EngineSettings
    h: int
    annual_year: int | None
    keep_models: bool
    factory: ModelFactory
    n_obs: int
    fidx: pd.DatetimeIndex
    X_hist: pd.DataFrame | None
    X_fut: pd.DataFrame | None
    exog_note: str
    screen_reason: str
    signed: bool
    chain: list[str]
    year_in_horizon: bool
    frames: list[pd.DataFrame] = field(default_factory=list)
    fits: list[FitRow] = field(default_factory=list)
    annual: list[dict[str, Any]] = field(default_factory=list)
    fitted: dict[tuple[str, str], Forecaster] = field(default_factory=dict)
    # models fitted (or failed) on this history under their own params: a combining model
    # (the ensemble) adopts them instead of fitting its members again
    fitted_here: dict[str, tuple[dict[str, Any], Forecaster]] = field(default_factory=dict)
    failed_here: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        unique_id: str,
        y: pd.Series,
        settings: EngineSettings,
        h: int,
        exog: pd.DataFrame | None,
        annual_year: int | None,
        keep_models: bool,
        factory: ModelFactory,
        extras: SeriesExtras | None,
    ) -> _SeriesFit:
        y = y if is_regular(y) else regularize(y)
        n_obs = int(y.notna().sum())
        fidx = future_index(y.index[-1], h) if h > 0 else pd.DatetimeIndex([], name="ds")
        X_hist, X_fut, exog_note = _exog_for(
            with_own_columns(exog, extras.exog if extras is not None else None), y.index, fidx
        )
        return cls(
            unique_id=unique_id,
            y=y,
            settings=settings,
            h=h,
            annual_year=annual_year,
            keep_models=keep_models,
            factory=factory,
            n_obs=n_obs,
            fidx=fidx,
            X_hist=X_hist,
            X_fut=X_fut,
            exog_note=exog_note,
            screen_reason=_screen(settings, y),
            signed=settings.is_signed(unique_id) or bool((y.dropna() < 0).any()),
            chain=_fallback_chain(settings, n_obs),
            year_in_horizon=annual_year is not None and bool((fidx.year == annual_year).any()),
        )

    def outcome(self) -> SeriesOutcome:
        forecasts = (
            pd.concat(self.frames, ignore_index=True)
            if self.frames
            else pd.DataFrame(
                {
                    c: pd.Series(
                        dtype="datetime64[ns]" if c == "ds" else object if c in ("unique_id", "model") else float
                    )
                    for c in FORECAST_FRAME_COLUMNS
                }
            )
        )
        return SeriesOutcome(
            forecasts[list(FORECAST_FRAME_COLUMNS)], self.fits, self.annual, self.fitted, self.fit_seconds
        )


def _nothing_to_forecast(s: _SeriesFit, spec: ModelSpec) -> FitRow:
    """The row of a model when the series' last observation is at or after the horizon end."""
    if s.annual_year is not None:
        totals = annual_totals(s.y, s.fidx, np.zeros((1, 0)), s.annual_year)
        s.annual.append(_annual_row(s.unique_id, spec.name, s.annual_year, totals))
    return FitRow(
        s.unique_id,
        spec.name,
        status="skipped",
        reason=f"nothing to forecast: last observation {s.y.index[-1]:%Y-%m} is at or after the horizon end",
        n_obs=s.n_obs,
    )


def _set_aside(s: _SeriesFit, spec: ModelSpec) -> str:
    """Why the model goes straight to the fallback chain on this series ('' = it is tried)."""
    if spec.name in s.chain:
        return ""
    traits = _traits(s.factory, spec)
    min_obs = traits.min_obs
    aside = traits.needs_positive if s.signed else ""
    if s.screen_reason:
        return s.screen_reason
    if s.n_obs < min_obs:
        return f"{spec.name} needs {min_obs} observed months; series has {s.n_obs}"
    if aside:
        return f"signed series: {spec.name} steps aside ({aside})"
    return ""


def _fit_spec(s: _SeriesFit, spec: ModelSpec) -> FitRow:
    """Fit the model, else the fallback chain, on the series; its fit row."""
    reason = _set_aside(s, spec)
    primary = [] if reason else [spec.name]
    candidates = primary + [c for c in s.chain if c not in primary]
    errors: list[str] = []
    seed = series_seed(s.settings.seed, s.unique_id, spec.name, s.y.index[-1])
    row = FitRow(s.unique_id, spec.name, n_obs=s.n_obs)
    for name in candidates:
        params = dict(spec.params) if name == spec.name else s.settings.params_of(name)
        timer = [0.0]
        try:
            model, fc, paths = _run_model(
                s.factory,
                name,
                params,
                s.y,
                s.h,
                s.X_hist,
                s.X_fut,
                n_paths=s.settings.n_paths if s.year_in_horizon else 0,
                seed=seed,
                fitted_here=s.fitted_here,
                failed_here=s.failed_here,
                timer=timer,
                signed=s.signed,
                plausibility_factor=s.settings.plausibility_factor,
                fit_cache=s.settings.fit_cache,
            )
        except Exception as exc:  # recorded, then the next model of the chain is tried
            s.fit_seconds[spec.name] = s.fit_seconds.get(spec.name, 0.0) + timer[0]
            if name == spec.name:
                s.failed_here[name] = (params, _error_text(exc))
            errors.append(f"{name}: {_error_text(exc)}")
            if not reason:
                reason = f"{name} failed"
            continue
        s.fit_seconds[spec.name] = s.fit_seconds.get(spec.name, 0.0) + timer[0]
        row = _keep_fit(s, spec, row, name, params, (model, fc, paths), reason)
        break
    else:
        row = replace(row, reason=f"{reason}; every fallback failed" if reason else "every fallback failed")
        log.warning("series %s model %s: no forecast (%s)", s.unique_id, spec.name, "; ".join(errors))
    row = replace(row, error="; ".join(errors))
    if s.exog_note and _wants_exog(s.factory, spec):
        row = replace(row, reason="; ".join(part for part in (row.reason, s.exog_note) if part))
    return row


def _keep_fit(
    s: _SeriesFit,
    spec: ModelSpec,
    row: FitRow,
    name: str,
    params: dict[str, Any],
    result: tuple[Forecaster, pd.DataFrame, np.ndarray | None],
    reason: str,
) -> FitRow:
    """Record the forecast (and annual total, and fitted model) of ``name`` standing for ``spec``."""
    model, fc, paths = result
    status = "ok" if name == spec.name else "fallback"
    if status == "ok":
        s.fitted_here[name] = (params, model)
    row = replace(row, model_used=name, status=status, description=_describe(model))
    if status == "fallback":
        row = replace(row, reason=f"{reason}; used {name}")
    if s.signed and not row.reason.startswith("signed series"):  # a step-aside says it already
        row = replace(row, reason="; ".join(part for part in (row.reason, _signed_reason(model)) if part))
    fc = fc.rename_axis("ds").reset_index()
    fc.insert(0, "unique_id", s.unique_id)
    fc.insert(2, "model", spec.name)
    s.frames.append(fc)
    if s.annual_year is not None:
        p = paths if paths is not None else np.zeros((1, s.h))
        totals = annual_totals(s.y, s.fidx, p, s.annual_year, point=fc["forecast"].to_numpy())
        s.annual.append(_annual_row(s.unique_id, spec.name, s.annual_year, totals))
    if s.keep_models:
        s.fitted[(s.unique_id, spec.name)] = model
    return row


def _traits(factory: ModelFactory, spec: ModelSpec) -> Traits:
    """The model's traits (minimum observations, needs positive values), from its class through
    the registry: no model is built to read them. A test's toy factory is asked for its model's
    class. The defaults (``Traits()``) when the name or params are wrong: the error surfaces, and
    is recorded, when the model is run."""
    try:
        if registry.is_registry_factory(factory):
            return registry.traits_of(spec.name, spec.params)
        return type(factory(spec.name, dict(spec.params))).traits_for(dict(spec.params))
    except Exception:
        return Traits()


def _signed_reason(model: Forecaster) -> str:
    """``model_fits.reason`` of a model fitted on a signed series: the additive forms it took."""
    notes = model.sign_notes() if hasattr(model, "sign_notes") else []
    form = "; ".join(notes) if notes else f"{model.name} unchanged (already additive)"
    return f"signed series: {form}, no clip at zero"


def plausibility_scale(values: np.ndarray) -> float:
    """The scale a series' values are judged against: the median of their absolute values, or of
    their non-zero absolute values when more than half are zero (0.0 when all are). The same rule
    as ``features.contract.plausibility_scale`` (models/ imports nothing from features/)."""
    magnitude = np.abs(np.asarray(values, dtype=float))
    scale = float(np.median(magnitude)) if magnitude.size else 0.0
    if scale == 0.0 and (magnitude > 0).any():
        scale = float(np.median(magnitude[magnitude > 0]))
    return scale


def _check_plausible(
    name: str, values: np.ndarray, y: pd.Series, factor: float | None, what: str, months: pd.DatetimeIndex | None = None
) -> None:
    """Raise when a forecast value, bound or path is beyond ``factor`` times the history's scale
    (the data contract's limit on inputs, applied to outputs: nothing beyond it is published 'ok')."""
    if factor is None:
        return
    scale = plausibility_scale(y.dropna().to_numpy())
    if scale == 0.0 or not values.size:
        return
    worst = float(np.max(np.abs(values)))
    if worst > factor * scale:
        where = ""
        if months is not None:
            where = f" for {months[int(np.argmax(np.abs(values).max(axis=1)))]:%Y-%m}"
        raise ValueError(
            f"{name} {what}{where} reaches {worst:.6g}, more than {factor:g} times the series' "
            f"median absolute value {scale:.6g} (data.plausibility_factor)"
        )


def _run_model(
    factory: ModelFactory,
    name: str,
    params: dict[str, Any],
    y: pd.Series,
    h: int,
    X_hist: pd.DataFrame | None,
    X_fut: pd.DataFrame | None,
    *,
    n_paths: int,
    seed: int,
    fitted_here: Mapping[str, tuple[dict[str, Any], Forecaster]] | None = None,
    failed_here: Mapping[str, tuple[dict[str, Any], str]] | None = None,
    timer: list[float] | None = None,
    signed: bool = False,
    plausibility_factor: float | None = None,
    fit_cache: str = "",
) -> tuple[Forecaster, pd.DataFrame, np.ndarray | None]:
    """Fit, predict and sample one model; ``timer[0]`` gets the seconds of the fit (also when it fails)."""
    model = factory(name, params)
    use_x = bool(getattr(model, "uses_exog", False))
    started = time.perf_counter()
    try:
        X = X_hist if use_x else None
        if fitted_here is not None and hasattr(model, "fit_reusing"):
            fit = partial(_fit_reusing, y=y, X=X, fitted_here=fitted_here, failed_here=failed_here, signed=signed)
        else:
            fit = partial(_fit, y=y, X=X, signed=signed)
        model = fitcache.fitted(fit_cache, model, y, X, fit, signed=signed)
    finally:
        if timer is not None:
            timer[0] = time.perf_counter() - started
    fc = model.predict(h, X_fut if use_x else None)
    values = fc[list(FORECAST_COLUMNS)].to_numpy()
    if not np.isfinite(values).all():
        bad = fc.index[~np.isfinite(values).all(axis=1)][0]
        raise ValueError(f"{name} returned a non-finite forecast or bound for {bad:%Y-%m}")
    _check_plausible(name, values, y, plausibility_factor, "forecast or bound", fc.index)
    paths = None
    if n_paths:
        paths = model.sample_paths(h, n_paths, seed=seed, X_future=X_fut if use_x else None)
        if not np.isfinite(paths).all():
            raise ValueError(f"{name} returned non-finite sample paths")
        _check_plausible(name, paths, y, plausibility_factor, "sample path")
    return model, fc, paths


def _fit(model: Forecaster, *, y: pd.Series, X: pd.DataFrame | None, signed: bool) -> None:
    model.fit(y.copy(), X, signed=signed)


def _fit_reusing(model: Forecaster, *, y: pd.Series, X: pd.DataFrame | None, signed: bool, **fitted: Any) -> None:
    model.fit_reusing(y.copy(), X, fitted["fitted_here"], fitted["failed_here"], signed=signed)


def _annual_row(uid: str, model: str, year: int, totals: Mapping[str, Any]) -> dict[str, Any]:
    return {"unique_id": uid, "year": int(year), "model": model, **{k: totals[k] for k in ANNUAL_COLUMNS[3:]}}


# --------------------------------------------------------------------------- parallel
T = TypeVar("T")
R = TypeVar("R")


def _batched(items: Sequence[T], n_batches: int) -> list[list[T]]:
    n_batches = max(1, min(n_batches, len(items)))
    size = math.ceil(len(items) / n_batches) if items else 1
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _quietly(func: Callable[[T], R], batch: list[T]) -> list[R]:
    """Run func over a batch with library warnings and chatty loggers silenced (restored after)."""
    saved = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    try:
        for name in _NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                return [func(item) for item in batch]
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def run_batches(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    n_jobs: int,
    progress: bool = False,
    label: str = "series",
    costs: Sequence[float] | None = None,
    executor: str = "joblib",
    dask_address: str = "",
    on_lost: Callable[[T, str], R] | None = None,
) -> list[R]:
    """Apply ``func`` (a picklable module-level callable) to every item and return the results in
    the order of ``items``: in this process when ``n_jobs`` is 1, else over ``n_jobs`` loky
    workers (``executor='joblib'``, the default), or on a Dask cluster (``executor='dask'``:
    the scheduler at ``dask_address``, or a LocalCluster of ``n_jobs`` workers when it is empty;
    see ``models.core.executors``).

    With ``costs`` (e.g. months of history x fits) the most expensive items go first
    (longest-processing-time scheduling): a few long series among many short ones otherwise leave
    a worker idle while the other finishes a batch of heavy ones. joblib dispatches them one by
    one; Dask in batches (``models.core.executors.dask_batches``), gathered batch by batch.

    ``on_lost(item, message)`` gives the result of an item whose Dask batch was lost because its
    worker process died on every attempt (see ``when_lost``); without it such a loss raises
    ``WorkerLost``."""
    items = list(items)
    if not items:
        return []
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    if costs is not None and len(costs) != len(items):
        raise ValueError(f"costs has {len(costs)} values for {len(items)} items")
    start = time.perf_counter()
    done = 0

    shown = [0]  # the last progress decile printed: about ten lines per stage, whatever the batch size

    def report(n: int) -> None:
        decile = (10 * n) // max(len(items), 1)
        if progress and (decile > shown[0] or n == len(items)):
            shown[0] = decile
            elapsed = time.perf_counter() - start
            print(f"[{label}] {n}/{len(items)} done in {elapsed:.1f} s", file=sys.stderr, flush=True)

    workers = n_jobs if n_jobs > 0 else (__import__("os").cpu_count() or 1)
    if executor == "dask":
        return _on_dask(func, items, costs, dask_address, workers, label, on_lost, report)

    from threadpoolctl import threadpool_limits

    if n_jobs == 1 or len(items) == 1:
        results: list[R] = []
        with threadpool_limits(limits=FIT_BLAS_THREADS):  # as in a worker: same threads, same bits
            for batch in _batched(items, max(1, len(items) // 10)):
                results.extend(_quietly(func, batch))
                done += len(batch)
                report(done)
        return results

    return _on_loky(func, items, costs, n_jobs, workers, report)


def _on_dask(
    func: Callable[[T], R],
    items: list[T],
    costs: Sequence[float] | None,
    dask_address: str,
    workers: int,
    label: str,
    on_lost: Callable[[T, str], R] | None,
    report: Callable[[int], None],
) -> list[R]:
    """``run_batches`` on a Dask cluster (``models.core.executors.dask_map``)."""
    slots: list[Any] = [None] * len(items)
    done = 0
    for batch, out in dask_map(
        partial(_quietly, func),
        items,
        costs if costs is not None else [0.0] * len(items),
        address=dask_address,
        n_workers=workers,
        label=label,
    ):
        if isinstance(out, WorkerLost):
            if on_lost is None:
                raise out
            log.warning("%s: %s; its %d item(s) are recorded as failed", label, out, len(batch))
            out = [on_lost(items[i], str(out)) for i in batch]
        for i, result in zip(batch, out):
            slots[i] = result
        done += len(batch)
        report(done)
    return slots


def _on_loky(
    func: Callable[[T], R],
    items: list[T],
    costs: Sequence[float] | None,
    n_jobs: int,
    workers: int,
    report: Callable[[int], None],
) -> list[R]:
    """``run_batches`` over ``n_jobs`` loky workers (joblib), the most expensive items first."""
    from joblib import Parallel, delayed, parallel_config  # imported here: the n_jobs=1 path needs no joblib

    slots: list[Any] = [None] * len(items)
    done = 0
    if costs is not None:
        order = sorted(range(len(items)), key=lambda i: -float(costs[i]))
        batches = [[i] for i in order]
    else:
        batches = _batched(list(range(len(items))), 4 * workers)
    with parallel_config(backend="loky", inner_max_num_threads=FIT_BLAS_THREADS):
        parallel = Parallel(n_jobs=n_jobs, return_as="generator", pre_dispatch="all")
        outputs = parallel(delayed(_quietly)(func, [items[i] for i in b]) for b in batches)
        # strict: zip then asks the generator once more, so it runs to its end. Left suspended, it
        # is closed when dropped; if that lands inside joblib's retrieval loop (the last batch
        # taken before joblib counted it complete), joblib aborts the call and shuts down the one
        # executor every stage shares: the other stages' maps then fail ("The executor underlying
        # Parallel has been shutdown"), seen once in five CI runs
        for batch, out in zip(batches, outputs, strict=True):
            for i, result in zip(batch, out):
                slots[i] = result
            done += len(batch)
            report(done)
    return slots


class _LostFactory:
    """A model factory whose every model fails with the message of a lost batch (picklable)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __call__(self, name: str, params: dict[str, Any]) -> Forecaster:
        raise WorkerLost(self.message)


def _run_lost(task: Callable[..., R], item: T, message: str) -> R:
    return task(item, factory=_LostFactory(message))


def when_lost(task: Callable[..., R]) -> Callable[[T, str], R]:
    """``on_lost`` for ``run_batches`` from a per-series task that takes ``factory=``: the task
    is run here with a factory whose every model fails with the loss message, so each model of
    each series of the lost batch is recorded 'failed' (error 'WorkerLost: ...') exactly like a
    model that raised, with no forecast."""
    return partial(_run_lost, task)


# --------------------------------------------------------------------------- many series
def _month(ts: pd.Timestamp | str) -> pd.Timestamp:
    return pd.Timestamp(ts).to_period("M").to_timestamp()


def _months_between(start: pd.Timestamp, end: pd.Timestamp) -> int:
    return (end.year - start.year) * 12 + (end.month - start.month)


def _forecast_task(
    item: tuple[str, pd.Series, int, pd.DataFrame | None, int | None, SeriesExtras | None],
    *,
    settings: EngineSettings,
    keep_models: bool,
    factory: ModelFactory | None,
) -> SeriesOutcome:
    uid, y, h, X, annual_year, extras = item
    return fit_series(
        uid, y, settings, h=h, exog=X, annual_year=annual_year, keep_models=keep_models, factory=factory, extras=extras
    )


def check_models(settings: EngineSettings, factory: ModelFactory | None = None) -> None:
    """Build every enabled model and the fallback once, so that a misspelt name or bad setting
    fails the run at the start with a clear message instead of once per series."""
    factory = factory or registry.create
    for name in dict.fromkeys((*settings.model_names, settings.fallback)):
        try:
            factory(name, settings.params_of(name))
        except Exception as exc:
            raise ModelSetupError(
                f"model '{name}' cannot be created with params {settings.params_of(name)}: {_error_text(exc)}"
            ) from exc


def forecast(
    frame: pd.DataFrame,
    settings: EngineSettings,
    *,
    until: pd.Timestamp | str | Mapping[str, pd.Timestamp | str] | None = None,
    horizon: int | None = None,
    exog: pd.DataFrame | None = None,
    annual_year: int | Mapping[str, int] | None = None,
    keep_models: bool = False,
    progress: bool = False,
    factory: ModelFactory | None = None,
    extras: ExtrasAt | None = None,
) -> ForecastResult:
    """Forecast every series of ``frame`` with every enabled model (and its ``extras``, asked at
    the series' last observed month).

    Give exactly one of ``horizon`` (months after each series' own last observation) or
    ``until`` (forecast each series from its last observation through this month, e.g.
    2026-12-01: series ending at different months get different horizons).
    ``annual_year`` adds calendar-year totals (observed + sampled forecast months).
    ``until`` and ``annual_year`` may also be mappings unique_id -> value, so that one call (one
    pool of workers) serves series with different targets, e.g. the institutional comparison's
    one history per target year; every series must then have an entry.
    ``factory`` replaces ``models.core.registry.create`` (used by tests to inject toy models)."""
    if (horizon is None) == (until is None):
        raise ValueError("give exactly one of horizon (months) or until (last forecast month)")
    if horizon is not None and (not isinstance(horizon, (int, np.integer)) or horizon < 1):
        raise ValueError(f"horizon must be a positive integer; got {horizon!r}")
    series = frame_to_series(frame)
    if not series:
        raise ValueError("frame holds no observed value: nothing to forecast")
    years = _per_series(annual_year, series, "annual_year")
    for uid, year in years.items():
        if year is not None and not isinstance(year, (int, np.integer)):
            raise ValueError(
                f"annual_year must be an integer year; got {year!r}"
                + (f" for series '{uid}'" if isinstance(annual_year, Mapping) else "")
            )
    ends = {uid: None if end is None else _month(end) for uid, end in _per_series(until, series, "until").items()}
    exog = _check_exog(exog)
    check_models(settings, factory)

    items = []
    for uid, y in series.items():
        end = ends[uid]
        h = int(horizon) if horizon is not None else max(0, _months_between(y.index[-1], end))
        # a series the exog does not cover runs without it (fit_series records why)
        X = None if exog is None else exog.loc[y.index[0] : y.index[-1] + pd.DateOffset(months=h)]
        items.append((uid, y, h, X, years[uid], None if extras is None else extras(uid, y.index[-1], _span(y, h))))

    task = partial(_forecast_task, settings=settings, keep_models=keep_models, factory=factory)
    costs = [float(item[1].notna().sum()) for item in items]
    outcomes = run_batches(
        task,
        items,
        n_jobs=settings.n_jobs,
        progress=progress,
        label="forecast",
        costs=costs,
        executor=settings.executor,
        dask_address=settings.dask_address,
        on_lost=when_lost(task),
    )
    return _collect(outcomes, annual_year is not None)


def _span(y: pd.Series, h: int) -> pd.DatetimeIndex:
    """The months of the series' history and its h forecast months (what ``extras`` is asked for)."""
    return pd.date_range(y.index[0], y.index[-1] + pd.DateOffset(months=h), freq="MS", name="ds")


def _per_series(value: Any, series: Mapping[str, pd.Series], name: str) -> dict[str, Any]:
    """A scalar for every series, or a mapping that must name every series."""
    if not isinstance(value, Mapping):
        return {uid: value for uid in series}
    lacking = [uid for uid in series if uid not in value]
    if lacking:
        raise ValueError(
            f"{name} has no entry for series {', '.join(repr(u) for u in lacking[:5])}"
            + (f" (+{len(lacking) - 5} more)" if len(lacking) > 5 else "")
        )
    return {uid: value[uid] for uid in series}


def _collect(outcomes: Iterable[SeriesOutcome], with_annual: bool) -> ForecastResult:
    outcomes = list(outcomes)
    forecasts = pd.concat([o.forecasts for o in outcomes], ignore_index=True)
    fits = fits_frame(r for o in outcomes for r in o.fits)
    annual = None
    if with_annual:
        annual = pd.DataFrame([r for o in outcomes for r in o.annual], columns=list(ANNUAL_COLUMNS))
    fitted = {k: v for o in outcomes for k, v in o.fitted.items()}
    fit_seconds: dict[str, float] = {}
    for o in outcomes:
        for model, seconds in o.fit_seconds.items():
            fit_seconds[model] = fit_seconds.get(model, 0.0) + seconds
    return ForecastResult(
        forecasts=forecasts,
        fits=fits,
        annual=annual,
        fitted=fitted,
        fit_seconds={m: round(v, 3) for m, v in fit_seconds.items()},
    )
