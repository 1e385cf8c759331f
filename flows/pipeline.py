"""The monthly pipeline: Prefect flow ``monthly-forecast`` (``exportcast run`` / ``make run``).

    ingest -> validate -> {backtest, forecast, nowcast -> tracking, institutional replays} -> champions
           -> institutional comparison -> reconcile -> mlflow -> publish (+ report)

- ``ingest`` is the only task with retries, and it retries only transport errors of the
  customs API (a malformed file fails at once: retrying cannot fix it).
- ``validate``: the readers validate at the edge; this step checks the frame is the canonical
  contract, summarises it and computes the data hash used by the caches and the bookkeeping.
- ``tracking`` (the in-year tracked annual totals, ``models.applications.inyear``) reuses the nowcast stage's
  rows for the total, and ``institutional`` reads the tracking rows for the mid-year revisions,
  hence the order nowcast -> tracking -> institutional.
- ``backtest``, ``forecast``, ``nowcast``, ``tracking`` and ``institutional`` are cached: the Prefect cache key is
  (task, data hash, the config sections the step reads, code version = hash of the sources of
  ``models/``, ``features/`` and the pipeline), and results are persisted under PREFECT_HOME
  (``PREFECT_LOCAL_STORAGE_PATH``), so an unchanged rerun loads them instead of refitting.
- With ``runtime.overlap_stages`` the stages that fit models run at once (``_fit_and_compare``):
  backtest, forecast, the nowcast then the tracking, and the institutional replays, each in a
  thread of the flow, all spreading their series over ONE pool of ``runtime.n_jobs`` worker
  processes (off by default: no gain measured on 2 cores, decision 0186). A core that one
  stage leaves idle (its last series, its work in this process) fits another stage's series;
  the results do not depend on the order (seeds per series, model and cutoff). The
  institutional comparison itself is made from the replays once the forecast and the tracking
  are in (docs/decisions/0186).
- The stage results become the run's published results in ONE place (flows/results.py: the
  table schemas, the champion flags, the headline, run.json); MLflow (flows/tracking.py), the
  publisher (flows/publish.py) and the report (flows/report.py) all read those results.
- MLflow: one parent run per pipeline run, marked FAILED when a step raises; publishing is
  atomic, so a failed run leaves the previous outputs. The registry's ``champion`` alias moves
  only after a successful publish of a run on ``mlflow.production_source``.
- Progress goes to the terminal (stderr): one line per stage and one per batch of series.

``run_pipeline(settings)`` runs the same flow with settings already loaded (tests, CLI).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError

from flows import jobs
from flows.archive import append_archive, archive_metrics, with_archive
from flows.plan import RunPlan, build_plan
from flows.publish import publish
from flows.results import RegistryRecord, Results, RunRecord, assemble
from flows.settings import DataSettings, RuntimeSettings, Settings

if TYPE_CHECKING:  # pragma: no cover
    from models.applications.institutional import InstitutionalResult, Replay, ReplayInputs
    from models.core.backtest import BacktestResult
    from models.core.engine import ForecastResult
    from models.selection.reconcile import Hierarchy

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config.yaml"
FLOW_NAME = "monthly-forecast"
#: sources hashed into the code version (a change invalidates the caches)
CODE_DIRS: tuple[str, ...] = ("models", "features")
CODE_FILES: tuple[str, ...] = ("flows/jobs.py", "flows/pipeline.py", "flows/plan.py")
PROJECTIONS_FILE = "institutional_projections.csv"
ACTUALS_FILE = "annual_actuals.csv"
INDICATORS_FILE = "indicators_monthly.csv"
KEY_PACKAGES: tuple[str, ...] = ("pandas", "numpy", "statsmodels", "prophet", "mlflow", "prefect", "pydantic")


# ====================================================================== result
@dataclass(frozen=True)
class PipelineResult:
    """What a pipeline run returns: where it published, and its run.json."""

    outputs_dir: Path
    paths: list[Path]
    run: RunRecord
    institutional_text: str = ""

    def summary(self) -> str:
        run = self.run
        lines = [
            f"exportcast monthly-forecast: {run.data.get('n_series')} series from {run.data_source} "
            f"(data {run.data_hash[:12]}, code {run.code_version[:12]})"
        ]
        counts = ", ".join(
            f"{name} {n}" for name, n in sorted(run.champion_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        lines.append(f"champions: {counts or 'none'}")
        if run.total_forecast:
            t = run.total_forecast
            lines.append(
                f"total exports {run.target_year} ({t['model']}): USD {t['forecast'] / 1e9:,.1f} bn "
                f"(80%: {t['lo_80'] / 1e9:,.1f} - {t['hi_80'] / 1e9:,.1f} bn)"
            )
        lines.append(f"outputs: {self.outputs_dir} ({', '.join(p.name for p in self.paths)})")
        if run.mlflow_run_id:
            lines.append(f"mlflow run: {run.mlflow_run_id}")
        registry = run.registry
        if registry is not None:
            where = f"version {registry.version}" if registry.version else "no version"
            moved = "moved to" if registry.promoted else "left at"
            lines.append(f"registry: {registry.name}@{registry.alias} {moved} {where} ({registry.reason})")
        stages = ", ".join(
            f"{k} {v:.1f}s{' (cached)' if run.cached.get(k) else ''}" for k, v in run.stage_seconds.items()
        )
        lines.append(f"seconds: {stages}")
        if self.institutional_text:
            lines += ["", self.institutional_text]
        return "\n".join(lines)


# ====================================================================== versions and hashes
def code_version(root: Path = REPO_ROOT) -> str:
    """sha256 over the Python sources the cached steps depend on (paths and contents)."""
    digest = hashlib.sha256()
    files = [p for d in CODE_DIRS for p in sorted((root / d).rglob("*.py"))] + [root / f for f in CODE_FILES]
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def data_hash(frame: pd.DataFrame) -> str:
    """sha256 of the canonical columns (rows by series and month; values in full precision)."""
    return table_hash(frame[["unique_id", "ds", "y"]])  # (unique_id, ds) is unique: sorting by y changes nothing


def table_hash(table: pd.DataFrame) -> str:
    """sha256 of a table's content (rows sorted by every column, stably; values in full precision)."""
    ordered = table.sort_values(list(table.columns), kind="stable")
    text = ordered.to_csv(index=False, date_format="%Y-%m-%d", float_format="%.17g", lineterminator="\n")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()


def git_head(root: Path = REPO_ROOT) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def package_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Key of a cached step: the task name plus its ``key`` parameter (data hash, the config
    sections it reads, code version); the frame itself is represented by its hash."""
    payload = json.dumps({"task": context.task.name, "key": parameters["key"]}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _retry_transport_errors(task_: Any, task_run: Any, state: Any) -> bool:
    """Retry ingest only when the customs API could not be reached or was down (the client has
    already retried with backoff; these retries span minutes); bad data fails at once."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - classify the failure
        from features.customs_api import CustomsServiceDownError, CustomsUnreachableError

        return isinstance(exc, (CustomsServiceDownError, CustomsUnreachableError))
    return False


# ====================================================================== tasks
@task(name="ingest", retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=_retry_transport_errors)
def ingest(data: DataSettings) -> pd.DataFrame:
    from features.readers import read_source
    from flows.update import active_data_dir

    customs = data.customs.model_dump() if data.source == "customs_api" else None
    # the embedded source is the active vintage of data.home (features/vintages.py), else data/
    return read_source(
        data.source,
        path=data.path,
        series=data.series,
        customs=customs,
        checks=data.checks(),
        data_dir=active_data_dir(data) if data.source == "embedded" else None,
    )


@task(name="validate")
def validate(frame: pd.DataFrame) -> tuple[str, dict[str, Any]]:
    missing = [c for c in ("unique_id", "ds", "y") if c not in frame.columns]
    if missing:
        raise ValueError(f"ingested frame lacks column(s) {missing}; got {list(frame.columns)}")
    if frame.empty:
        raise ValueError("ingested frame has no rows: nothing to forecast")
    if not pd.api.types.is_datetime64_any_dtype(frame["ds"]):
        raise ValueError(f"ingested frame: column ds must be datetime64; got {frame['ds'].dtype}")
    if frame.duplicated(["unique_id", "ds"]).any():
        first = frame.loc[frame.duplicated(["unique_id", "ds"]), ["unique_id", "ds"]].iloc[0]
        raise ValueError(f"ingested frame: duplicate row for series '{first['unique_id']}' month {first['ds']:%Y-%m}")
    summary = {
        "n_series": int(frame["unique_id"].nunique()),
        "n_rows": int(len(frame)),
        "first_month": f"{frame['ds'].min():%Y-%m}",
        "last_month": f"{frame['ds'].max():%Y-%m}",
    }
    return data_hash(frame), summary


@task(name="backtest", cache_key_fn=_cache_key, persist_result=True)
def backtest_step(frame: pd.DataFrame, plan: RunPlan, key: dict[str, Any], progress: bool = False) -> BacktestResult:
    """The rolling-origin backtest of config ``backtest`` (``key`` must name the plan's content)."""
    bt = plan.settings.backtest
    return jobs.backtest_with(plan, frame, horizon=bt.horizon, windows=bt.windows, step=bt.step, progress=progress)


def load_hierarchy(frame: pd.DataFrame, settings: Settings, data_dir: Path) -> Hierarchy | None:
    """The hierarchy of the embedded dataset (``series.csv``: hierarchy, parent), checked against
    the frame; None for a user CSV, the customs API or a run on selected series (a partial
    hierarchy cannot be made to add up)."""
    from features.readers import SERIES_FILE, read_series_metadata
    from models.core.engine import frame_to_series
    from models.selection.reconcile import hierarchy_from_table

    if settings.data.source != "embedded" or settings.data.series is not None or not (data_dir / SERIES_FILE).is_file():
        return None
    return hierarchy_from_table(read_series_metadata(data_dir), frame_to_series(frame))


def plan_run(settings: Settings, frame: pd.DataFrame, data_dir: Path, digest: str, version: str) -> RunPlan:
    """The run's plan (``flows.plan``): the hierarchy, the leading models of series the data has,
    their indicators, the working days through the last month a stage forecasts, the cache key."""
    base_key = {
        "data_hash": digest,
        "code_version": version,
        "seed": settings.runtime.seed,
        **data_checks_key(settings.data),
    }
    hierarchy = load_hierarchy(frame, settings, data_dir)
    # the leading models of series the data has
    settings = jobs.leading_for(settings, frame, jobs.series_universe(settings, frame, data_dir))
    # the leading models' indicators (config models.leading; None when it is empty)
    indicators = jobs.leading_indicators(settings, data_dir)
    if indicators is not None:
        base_key["leading_indicators"] = table_hash(indicators[["indicator", "ds", "value", "available_from"]])
    until = max(settings.forecast_end, frame["ds"].max() + settings.backtest.horizon * jobs.MONTH)
    return build_plan(settings, frame, until=until, indicators=indicators, hierarchy=hierarchy, cache_key=base_key)


def reconcile_step(fc: ForecastResult, bt: BacktestResult, frame: pd.DataFrame, plan: RunPlan) -> ForecastResult:
    """The published forecast with the reconciled champion set (``mint`` rows, the base rows kept)
    and, chosen, the champions table that makes ``mint`` the champion of every hierarchy series
    (coherent champions), its reason the sentence comparing reconciled and base in the backtest
    (printed). ``fc``'s champions must be chosen (``with_champions``). Each leading series draws
    its paths with its own indicator columns (``RunPlan.own_exog``), as it forecast."""
    from models.core.engine import frame_to_series
    from models.selection.champion import with_champions
    from models.selection.reconcile import choose_reconciled, reconcile_published, reconciled_champions

    settings, hierarchy = plan.settings, plan.hierarchy
    if hierarchy is None:
        raise ValueError("reconcile_step: the plan has no hierarchy to reconcile over")
    fc = reconcile_published(
        fc,
        fc.champion_of(),
        frame_to_series(frame),
        hierarchy,
        n_paths=plan.engine.n_paths,
        seed=plan.engine.seed,
        year=settings.target_year,
        exog=plan.exog_through(settings.forecast_end),
        own_exog=plan.own_exog(frame, settings.forecast_end),
    )
    metric = plan.champion_rule.metric
    use, reason = choose_reconciled(bt.metrics, hierarchy, metric=metric)
    progress(f"reconcile: {reason}")
    return with_champions(
        fc, reconciled_champions(fc.champions, hierarchy, bt.metrics, use=use, reason=reason, metric=metric)
    )


@task(name="forecast", cache_key_fn=_cache_key, persist_result=True)
def forecast_step(frame: pd.DataFrame, plan: RunPlan, key: dict[str, Any], progress: bool = False) -> ForecastResult:
    """The published forecast of every model through ``forecast_end``, with the target year's totals."""
    settings = plan.settings
    return jobs.forecast_with(
        plan,
        frame,
        until=settings.forecast_end,
        annual_year=settings.target_year,
        keep_models=True,
        progress=progress,
    )


@task(name="institutional", cache_key_fn=_cache_key, persist_result=True)
def institutional_step(
    frame: pd.DataFrame, plan: RunPlan, data_dir: Path, key: dict[str, Any], progress: bool = False
) -> Replay:
    """The October outlooks of every compared year replayed by every model (the comparison's model
    fits, ``models.applications.institutional.replay_outlooks``); :func:`compare_institutions`
    makes the comparison from them once the forecast and the tracking are in."""
    from models.applications.institutional import replay_outlooks

    projections, actuals = _institutional_tables(data_dir)
    return replay_outlooks(frame, projections, actuals, plan.engine, _replay_inputs(plan, progress=progress))


def compare_institutions(
    frame: pd.DataFrame,
    plan: RunPlan,
    data_dir: Path,
    replay: Replay,
    latest_annual: pd.DataFrame | None = None,
    latest_champions: dict[str, str] | None = None,
    tracking: pd.DataFrame | None = None,
) -> InstitutionalResult:
    """The institutional comparison from the replayed outlooks (no model is fitted here)."""
    from models.applications.institutional import compare_with_institutions

    projections, actuals = _institutional_tables(data_dir)
    inputs = replace(
        _replay_inputs(plan),
        replay=replay,
        latest_annual=latest_annual,
        latest_champions=latest_champions,
        tracking=tracking,
    )
    return compare_with_institutions(frame, projections, actuals, plan.engine, inputs)


def _institutional_tables(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_csv(data_dir / PROJECTIONS_FILE), pd.read_csv(data_dir / ACTUALS_FILE)


def _replay_inputs(plan: RunPlan, progress: bool = False) -> ReplayInputs:
    """The comparison's options from the config (``institutional``, ``backtest.combinations``)."""
    from models.applications.institutional import ReplayInputs

    settings = plan.settings
    return ReplayInputs(
        info_month=settings.institutional.info_month,
        first_year=settings.institutional.first_year,
        target_year=settings.target_year,
        exog=plan.exog_through(settings.forecast_end),
        progress=progress,
        combinations=settings.backtest.combinations,
        champion_rule=plan.champion_rule,
        selection_first_year=settings.institutional.selection_first_year,
        extras=plan.extras,
    )


@task(name="nowcast", cache_key_fn=_cache_key, persist_result=True)
def nowcast_step(
    frame: pd.DataFrame,
    data_dir: Path,
    key: dict[str, Any],
    unique_id: str = "total",
    indicators: pd.DataFrame | None = None,
    fit_cache: str = "",
    n_jobs: int = 1,
) -> pd.DataFrame:
    """The month-by-month nowcast backtest of ``unique_id`` from the customs flash
    (``indicators``, already read and validated; default ``data_dir/indicators_monthly.csv``):
    models.applications.nowcast rows for outputs/nowcast.csv. ``key`` must name the indicators' content."""
    from features.calendar import flash_working_days
    from features.readers import read_indicators
    from models.applications.nowcast import NowcastSettings, backtest, flash_frame

    if indicators is None:
        indicators = read_indicators(data_dir)
    months = indicators.loc[indicators["indicator"].str.endswith(f":{unique_id}"), "ds"]
    flash, published = flash_frame(indicators, flash_working_days(months.min(), months.max()), unique_id)
    y = frame.loc[frame["unique_id"] == unique_id].set_index("ds")["y"]
    return backtest(
        y, flash, published, unique_id=unique_id, settings=NowcastSettings(fit_cache=fit_cache, n_jobs=n_jobs)
    )


@task(name="tracking", cache_key_fn=_cache_key, persist_result=True)
def tracking_step(
    frame: pd.DataFrame,
    settings: Settings,
    data_dir: Path,
    nowcast: pd.DataFrame | None,
    key: dict[str, Any],
    progress: bool = False,
) -> pd.DataFrame:
    """The in-year tracked annual totals of the embedded data (outputs/tracking.csv): the indicator
    file of ``data_dir`` through :func:`tracking_table`."""
    from features.readers import read_indicators

    return tracking_table(frame, read_indicators(data_dir), settings, nowcast, progress=progress)


def tracking_table(
    frame: pd.DataFrame,
    indicators: pd.DataFrame,
    settings: Settings,
    nowcast: pd.DataFrame | None,
    progress: bool = False,
) -> pd.DataFrame:
    """The in-year tracked annual totals (``models.applications.inyear``) of the total and semiconductors for the
    institutional-comparison years through the target year: the total's flash nowcasts are
    ``nowcast``'s rows (the nowcast stage's), semiconductors' are made here from the customs
    group's flash when ``indicators`` has it; one series per worker (``runtime.n_jobs``). The
    monthly flow and the flash flow (flows/flash.py) both call it."""
    from features.calendar import flash_working_days
    from models.applications.inyear import TRACKING_COLUMNS, InyearSettings, series_inputs, track_series
    from models.core.engine import run_batches

    months = indicators.loc[indicators["indicator"].str.startswith("customs_"), "ds"]
    if months.empty:
        return pd.DataFrame(columns=list(TRACKING_COLUMNS))
    working_days = flash_working_days(months.min(), months.max())
    given = {"total": nowcast[nowcast["unique_id"] == "total"]} if nowcast is not None and not nowcast.empty else None
    inputs = series_inputs(frame, indicators, working_days, nowcasts=given)
    last = int(frame["ds"].max().year)
    years = tuple(range(settings.institutional.first_year, max(last, min(settings.target_year, last + 1)) + 1))
    inyear = InyearSettings(
        n_paths=settings.models.n_paths, seed=settings.runtime.seed, fit_cache=settings.engine_settings().fit_cache
    )
    parts = run_batches(
        track_series,
        [(i, years, inyear) for i in inputs],
        n_jobs=settings.runtime.n_jobs,
        progress=progress,
        label="tracking",
        executor=settings.runtime.executor,
        dask_address=settings.runtime.dask_address,
    )
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(TRACKING_COLUMNS))


# ====================================================================== printing
def institutional_text(
    summary: pd.DataFrame, outlook: pd.DataFrame, target_year: int, comparison: pd.DataFrame | None = None
) -> str:
    """What the flow prints of the comparison: per series and institution with at least two years,
    the institution's MAPE beside the champion's and the ensemble's over the same years (a year
    where the model fell back is not counted: ``models.applications.institutional``), the champion's 80%
    coverage and both biases; the years where every model fell back (``comparison``'s
    ``fallback_only``); then the target year's outlooks beside the model."""
    lines = [
        "pre-year outlooks vs the models (same years, fallback years not counted; MAPE %, coverage of the "
        "champion's 80% interval, bias %):"
    ]
    s = summary[(summary["n_years"] >= 2) & summary["model"].isin(["champion", "ensemble"])]
    flagged = fallback_years_text(comparison) if comparison is not None else ""
    if s.empty and not flagged:
        return ""
    wide = (
        pd.DataFrame()
        if s.empty
        else s.pivot_table(
            index=["unique_id", "institution", "n_years", "institution_mape", "institution_bias_pct"],
            columns="model",
            values=["model_mape", "model_coverage_80", "model_bias_pct"],
        ).reset_index()
    )
    for r in wide.itertuples(index=False):
        row = dict(zip([c if isinstance(c, str) else "_".join(x for x in c if x) for c in wide.columns], r))
        lines.append(
            f"  {row['unique_id']:<22} {row['institution']:<6} n={int(row['n_years']):>2}  "
            f"institution {row['institution_mape']:5.2f} (bias {row['institution_bias_pct']:+5.2f})  "
            f"champion {row.get('model_mape_champion', float('nan')):5.2f} "
            f"(80% cover {row.get('model_coverage_80_champion', float('nan')):.0%}, "
            f"bias {row.get('model_bias_pct_champion', float('nan')):+5.2f})  "
            f"ensemble {row.get('model_mape_ensemble', float('nan')):5.2f}"
        )
    if flagged:
        lines.append(flagged)
    o = outlook[
        outlook["unique_id"].isin(["total", "item:semiconductors", "item:semiconductors_ministry"])
        & (outlook["kind"] != "survey")
    ]
    if not o.empty:
        lines.append(f"{target_year} outlooks beside the published champion (USD bn):")
        for r in o.itertuples(index=False):
            lines.append(
                f"  {r.unique_id:<22} {r.institution:<6} {r.kind:<17} {r.projected_level_usd_bn:7.1f}  "
                f"model ({r.champion_model}) {r.model_usd_bn:7.1f} [80%: {r.model_lo_80:.1f}-{r.model_hi_80:.1f}]"
            )
    return "\n".join(lines)


def fallback_years_text(comparison: pd.DataFrame, shown: int = 3) -> str:
    """One line naming the series' years of the pre-year comparison where no model fitted beyond
    the fallback (``fallback_only``), grouped by years: '' when there is none."""
    if comparison.empty or "fallback_only" not in comparison.columns:
        return ""
    rows = comparison[comparison["fallback_only"].astype(bool) & (comparison["kind"] == "pre-year outlook")]
    if rows.empty:
        return ""
    from models.applications.institutional import span_text

    years_of = rows.groupby("unique_id")["target_year"].agg(lambda y: span_text(sorted(set(y.astype(int)))))
    parts = []
    for years, ids in years_of.groupby(years_of, sort=True):
        names = sorted(ids.index.astype(str))
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        parts.append(f"{years}: {', '.join(names[:shown])}{more}")
    return (
        "  no model fitted beyond the fallback (seasonal naive / naive: too little history; no model's skill): "
        + "; ".join(parts)
    )


def current_flow_run_id() -> str | None:
    """The id of the Prefect flow run this code runs in; None outside a flow run."""
    try:
        from prefect.runtime import flow_run

        return str(flow_run.id) if flow_run.id else None
    except Exception:  # noqa: BLE001 - outside a flow run
        return None


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run, else the module's logger."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("exportcast.pipeline")


def progress(message: str) -> None:
    """A progress line on the terminal (stderr, like the engine's per-batch lines); not logged."""
    print(f"[exportcast] {message}", file=sys.stderr, flush=True)


class StageRunner:
    """Runs each stage (a Prefect task), times it, notes whether the cache served it, prints
    progress. Stages may run in several threads at once (``_fit_and_compare``): ``seconds`` and
    ``cached`` list them in the order of ``names`` whatever the order they finished in."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self._seconds: dict[str, float] = {}
        self._cached: dict[str, bool] = {}

    @property
    def seconds(self) -> dict[str, float]:
        return {name: self._seconds[name] for name in self.names if name in self._seconds}

    @property
    def cached(self) -> dict[str, bool]:
        return {name: self._cached[name] for name in self.names if name in self._cached}

    def run(self, stage: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        progress(f"{self.names.index(stage) + 1}/{len(self.names)} {stage} ...")
        start = time.perf_counter()
        state = func(*args, return_state=True, **kwargs)
        result = state.result()  # raises the task's exception on failure
        self.done(stage, start, cached=state.name == "Cached")
        return result

    def done(self, stage: str, start: float, *, cached: bool = False) -> None:
        self._seconds[stage] = round(time.perf_counter() - start, 3)
        self._cached[stage] = cached
        progress(
            f"{self.names.index(stage) + 1}/{len(self.names)} {stage} done in {self._seconds[stage]:.1f} s"
            + (" (cached)" if cached else "")
        )

    def add(self, stage: str, start: float) -> None:
        """Add the seconds since ``start`` to a stage already done (its work after its task)."""
        self._seconds[stage] = round(self._seconds.get(stage, 0.0) + time.perf_counter() - start, 3)


def data_checks_key(data: DataSettings) -> dict[str, Any]:
    """The data checks that change what the models do, for the cache keys: signed series
    (additive forms, no clip) and a plausibility factor other than the default (a forecast beyond
    it falls back); empty as shipped, so that earlier caches stay valid."""
    from features.contract import DEFAULT_PLAUSIBILITY_FACTOR

    key: dict[str, Any] = {}
    if data.allow_negative or data.signed:
        key["signed"] = True if data.allow_negative else sorted(data.signed)
    if data.plausibility_factor != DEFAULT_PLAUSIBILITY_FACTOR:
        key["plausibility_factor"] = data.plausibility_factor
    return key


def promotion(settings: Settings) -> tuple[bool, str]:
    """Whether this run, once published, may move the registry's champion alias, and why (not)."""
    source, production = settings.data.source, settings.mlflow.production_source
    if source != production:
        return False, f"data source {source} is not the production source {production} (mlflow.production_source)"
    if settings.data.series is not None:
        return False, f"data.series selects {len(settings.data.series)} series: a partial run is not promoted"
    return True, f"published run on the production source {production}"


# ====================================================================== the run
def execute(
    settings: Settings, *, data_dir: Path | None = None, before_publish: Callable[[Results], None] | None = None
) -> PipelineResult:
    """Body of the flow (call it inside a flow run: the steps are Prefect tasks).
    ``data_dir``: the embedded data folder (institutional tables; default the repo's data/).
    ``before_publish``: hook called with the assembled results just before publishing (tests).
    With ``runtime.executor: dask`` every stage uses ONE Dask cluster, started by the first stage
    that fits and closed when the run ends, fails or is interrupted (``models.core.executors.dask_session``)."""
    from flows.update import resolve_target_year
    from models.core.executors import dask_session

    settings = resolve_target_year(settings)  # target_year: auto -> the year of the first unobserved month
    with dask_session():
        return _execute(settings, data_dir=data_dir, before_publish=before_publish)


def _execute(
    settings: Settings, *, data_dir: Path | None, before_publish: Callable[[Results], None] | None
) -> PipelineResult:
    from flows.tracking import PipelineTracker
    from flows.update import active_data_dir

    data_dir = Path(data_dir) if data_dir is not None else active_data_dir(settings)
    compare = settings.data.source == "embedded"
    stages = StageRunner(
        [
            "ingest",
            "validate",
            "backtest",
            "forecast",
            *(["nowcast", "tracking", "institutional"] if compare else []),
            "reconcile",
            "mlflow",
            "publish",
        ]
    )
    run = _run_record(settings, data_dir)
    with PipelineTracker(
        settings.mlflow,
        run_name=f"monthly-forecast {settings.target_year}",
        tags=_run_tags(run, settings),
        params={**settings.flat(), "code_version": run.code_version},
    ) as tracker:
        frame, digest, data_summary = _ingest(stages, tracker, settings)
        plan = plan_run(settings, frame, data_dir, digest, run.code_version)
        bt, fc, nowcast, tracking, inst = _fit_and_compare(stages, plan, frame, data_dir, compare)
        if plan.hierarchy is not None:  # coherent published champions (the base rows stay)
            start = time.perf_counter()
            progress(f"{stages.names.index('reconcile') + 1}/{len(stages.names)} reconcile ...")
            fc = reconcile_step(fc, bt, frame, plan)
            stages.done("reconcile", start)
        run = replace(
            run,
            data_hash=digest,
            data=data_summary,
            mlflow_run_id=tracker.run_id,
            mlflow_experiment_id=tracker.experiment_id,
        )
        results = assemble(frame, bt, fc, inst, run=run, nowcast=nowcast, tracking=tracking)
        results, archive_rows, scores = _with_changes(results, plan.settings)
        _log_mlflow(stages, tracker, plan, frame, fc, results, scores)
        if before_publish is not None:
            before_publish(results)
        paths, published = _publish(results, plan.settings, tracker, stages, data_dir, archive_rows)

    outcome = PipelineResult(
        outputs_dir=settings.publish.dir,
        paths=paths,
        run=published,
        institutional_text=""
        if inst is None
        else institutional_text(inst.summary, inst.outlook, settings.target_year, inst.comparison),
    )
    run_logger().info("%s", outcome.summary())
    print(outcome.summary(), flush=True)
    return outcome


def _run_record(settings: Settings, data_dir: Path) -> RunRecord:
    """The run's record before any stage ran (run.json, MLflow tags)."""
    flow_run_id = current_flow_run_id()
    return RunRecord(
        run_id=flow_run_id or uuid.uuid4().hex,
        target_year=settings.target_year,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data_source=settings.data.source,
        data_origin=data_origin_of(settings, data_dir),
        config=settings.to_dict(),
        config_file=str(settings.config_file) if settings.config_file else None,
        code_version=code_version(),
        git_head=git_head(),
        packages=package_versions(),
        prefect_flow_run_id=flow_run_id,
    )


def _run_tags(run: RunRecord, settings: Settings) -> dict[str, Any]:
    return {
        "code_version": run.code_version,
        "target_year": settings.target_year,
        "data_source": settings.data.source,
        "prefect_flow_run_id": run.prefect_flow_run_id or "",
        "git_head": run.git_head or "",
    }


def _ingest(stages: StageRunner, tracker: Any, settings: Settings) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """Ingest and validate: the frame, its hash and its summary (logged to MLflow, printed)."""
    frame = stages.run("ingest", ingest, settings.data)
    digest, data_summary = stages.run("validate", validate, frame)
    tracker.set_tags({"data_hash": digest})
    tracker.log_dataset(frame, digest, settings.data)
    progress(
        f"data: {data_summary['n_series']} series, {data_summary['n_rows']} rows, "
        f"{data_summary['first_month']}..{data_summary['last_month']} (hash {digest[:12]})"
    )
    return frame, digest, data_summary


def _fit_and_compare(
    stages: StageRunner, plan: RunPlan, frame: pd.DataFrame, data_dir: Path, compare: bool
) -> tuple[BacktestResult, ForecastResult, pd.DataFrame | None, pd.DataFrame | None, InstitutionalResult | None]:
    """The stages that fit models, at once: the backtest, the forecast, the nowcast then the
    in-year tracking, and the institutional replays each run in a thread of this process and
    spread their series over the ONE pool of ``runtime.n_jobs`` worker processes (joblib's
    reusable loky executor, or the run's Dask cluster), so that a core one stage leaves idle (its
    last series, its own work in this process) fits another stage's series. Nothing depends on
    the order: each fit's seeds come from (seed, series, model, cutoff). Then the forecast's
    combinations and champions, and the comparison from the replays (no refit)."""
    from models.selection.champion import with_champions

    runtime = plan.settings.runtime
    at_once = runtime.overlap_stages and (runtime.executor == "dask" or runtime.n_jobs != 1)
    with StageThreads(at_once=at_once) as threads:
        backtest = threads.start(_backtest, stages, plan, frame)
        forecast = threads.start(_forecast, stages, plan, frame)
        in_year = threads.start(_in_year, stages, plan, frame, data_dir) if compare else None
        replay = threads.start(_replay, stages, plan, frame, data_dir) if compare else None
        bt, fc = backtest.result(), forecast.result()
        fc = jobs.with_combinations(fc, bt, plan.settings)  # combination candidates: from the members, no refit
        fc = with_champions(fc, bt.champions)  # the backtest's champions, before reconciliation
        if in_year is None or replay is None:
            return bt, fc, *_no_compare(plan.settings)
        nowcast, tracking = in_year.result()
        replayed = replay.result()
    started = time.perf_counter()
    champions = dict(zip(bt.champions["unique_id"], bt.champions["champion"]))
    inst = compare_institutions(frame, plan, data_dir, replayed, fc.annual, champions, tracking)
    stages.add("institutional", started)
    return bt, fc, nowcast, tracking, inst


class StageThreads:
    """Stages started at once, each in a thread of the flow (the flow run's context copied to it),
    all sharing the run's one pool of worker processes; with ``at_once`` False (one worker, in
    this process: threads would only take turns) each stage runs where it is started, one after
    another, as before.

    When the block raises (a stage failed, or the run was stopped: the signal raises in the main
    thread), the worker processes are ended at once, so that the other stages' maps fail and
    their threads end within ``STOP_SECONDS``, instead of the error waiting for them to finish."""

    STOP_SECONDS = 30.0

    def __init__(self, at_once: bool) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="exportcast-stage") if at_once else None
        self.futures: list[Future] = []

    def __enter__(self) -> StageThreads:
        return self

    def start(self, func: Callable[..., Any], *args: Any) -> Future:
        if self.pool is None:
            future: Future = Future()
            future.set_result(func(*args))  # raises here, as the stages always did
            return future
        future = self.pool.submit(contextvars.copy_context().run, func, *args)
        self.futures.append(future)
        return future

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.pool is None:
            return
        if exc_type is None:
            self.pool.shutdown(wait=True)
            return
        end_worker_processes()
        futures_wait(self.futures, timeout=self.STOP_SECONDS)
        self.pool.shutdown(wait=False, cancel_futures=True)


def end_worker_processes() -> None:
    """End the joblib worker processes every map of this process shares (loky's reusable
    executor; the next map starts new ones). A Dask cluster is closed by the run's
    ``dask_session`` as the error unwinds."""
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)  # loky keeps the one executor there
    if executor is None:
        return
    previous = threading.excepthook

    def quiet_manager(args: Any) -> None:
        # loky's manager thread may meet a work item the shutdown just dropped (KeyError) when
        # another stage was submitting at that moment: an expected end, not an error to print
        if args.thread is None or args.thread.name != "ExecutorManagerThread":
            previous(args)

    threading.excepthook = quiet_manager
    try:
        executor.shutdown(wait=True, kill_workers=True)  # as joblib's own abort of a failed map
    finally:
        threading.excepthook = previous


def _backtest(stages: StageRunner, plan: RunPlan, frame: pd.DataFrame) -> BacktestResult:
    hierarchy = plan.hierarchy
    partitions = None if hierarchy is None else [list(p) for p in hierarchy.partitions]
    key = plan.key("models", "backtest", hierarchy=partitions)
    return stages.run("backtest", backtest_step, frame, plan, progress=True, key=key)


def _forecast(stages: StageRunner, plan: RunPlan, frame: pd.DataFrame) -> ForecastResult:
    return stages.run("forecast", forecast_step, frame, plan, progress=True, key=plan.key("models", "target_year"))


def _in_year(
    stages: StageRunner, plan: RunPlan, frame: pd.DataFrame, data_dir: Path
) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The nowcast, then the in-year tracking, which reads its rows for the total."""
    settings = plan.settings
    # the flash bridge and the in-year tracking work on logs: signed series step aside
    positive = frame[~frame["unique_id"].map(settings.data.is_signed)]
    indicators_hash = file_hash(data_dir / INDICATORS_FILE)
    nowcast = None
    if "total" in set(positive["unique_id"]):
        nowcast = stages.run(
            "nowcast",
            nowcast_step,
            frame,
            data_dir,
            key=plan.key(tables=indicators_hash),
            fit_cache=plan.engine.fit_cache,
            n_jobs=settings.runtime.n_jobs,
        )
    else:
        progress(
            "nowcast skipped: the total is signed (data.allow_negative / data.signed) and the flash "
            "bridge works on logs"
        )
    tracking_key = plan.key("institutional", "target_year", n_paths=settings.models.n_paths, tables=indicators_hash)
    tracking = stages.run(
        "tracking", tracking_step, positive, settings, data_dir, nowcast, progress=True, key=tracking_key
    )
    return nowcast, tracking


def _replay(stages: StageRunner, plan: RunPlan, frame: pd.DataFrame, data_dir: Path) -> Replay:
    tables = file_hash(data_dir / PROJECTIONS_FILE, data_dir / ACTUALS_FILE, data_dir / INDICATORS_FILE)
    key = plan.key("models", "institutional", "target_year", tables=tables)
    return stages.run("institutional", institutional_step, frame, plan, data_dir, key=key, progress=True)


def _no_compare(settings: Settings) -> tuple[None, None, None]:
    progress(f"institutional comparison skipped: data source is {settings.data.source} (it needs the embedded dataset)")
    return None, None, None


def _with_changes(results: Results, settings: Settings) -> tuple[Results, pd.DataFrame | None, Any]:
    """The results with what changed since the previous production run (flows/archive.py) and,
    in the fourth quarter of an auto target year, next year's total; the archive's new rows and
    the scores of earlier forecasts (``flows.archive.with_archive``)."""
    results, archive_rows, scores = with_archive(
        results,
        home=settings.data.home,
        vintage=active_vintage_id(settings),
        production=promotion(settings)[0],
        target_year=settings.target_year,
        published_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    progress(f"changes: {results.run.changes['sentence']}")
    if settings.next_year_shown:  # target_year auto, data in the fourth quarter: next year too
        results = results.with_run(
            next_year=next_year_total(results.tables["forecast_monthly.csv"], settings.target_year + 1)
        )
    return results, archive_rows, scores


def _log_mlflow(
    stages: StageRunner,
    tracker: Any,
    plan: RunPlan,
    frame: pd.DataFrame,
    fc: ForecastResult,
    results: Results,
    scores: Any,
) -> None:
    """The run's results, fitted models and headline to MLflow."""
    settings = plan.settings
    start = time.perf_counter()
    tracker.log_results(
        results,
        fc.fitted,
        plan.exog_through(settings.forecast_end),
        params_of={
            f: settings.models.params.get(f, {}) for f in (*settings.models.active(), *settings.models.leading_names())
        },
        series_exog=plan.own_exog(frame, settings.forecast_end),
        champion_params=asdict(plan.champion_rule),
    )
    tracker.log_headline(
        {
            **archive_metrics(scores),
            **{f"changes_{k}": float(v) for k, v in results.run.changes.items() if k in ("new", "revised", "forecast")},
        }
    )
    tracker.set_tags({"vintage": results.run.vintage, "changes": results.run.changes["sentence"]})
    stages.done("mlflow", start)


def _publish(
    results: Results,
    settings: Settings,
    tracker: Any,
    stages: StageRunner,
    data_dir: Path,
    archive_rows: pd.DataFrame | None = None,
) -> tuple[list[Path], RunRecord]:
    """Publish the tables and the report; once they are in place, append the run's rows to the
    forecast archive (a production run), move the registry's champion alias (only for a run on the
    production source) and write run.json with where it points."""
    allowed, reason = promotion(settings)
    start = time.perf_counter()
    final: list[RunRecord] = []

    def on_published(_: Mapping[str, Any]) -> Mapping[str, Any]:
        stages.done("publish", start)
        if archive_rows is not None:
            append_archive(settings.data.home, archive_rows)
        try:
            record = tracker.promote_champion(allowed, reason)
        except Exception as exc:  # noqa: BLE001 - the outputs are published: record the failure, do not hide them
            record = RegistryRecord(
                name=settings.mlflow.registered_model,
                promoted=False,
                reason=f"registry error, alias not moved: {type(exc).__name__}: {exc}",
            )
            progress(f"warning: {record.reason}")
        done = results.with_run(
            champion_model=asdict(record),
            stage_seconds=dict(stages.seconds),
            cached=dict(stages.cached),
            finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        tracker.log_headline(done.timing_metrics())
        final.append(done.run)
        return done.run.to_json()

    paths = publish(
        results.tables,
        results.run.to_json(),
        settings.publish.dir,
        run_id=results.run.run_id,
        finalize=lambda staging: _write_report(results, staging, data_dir, settings.runtime),
        on_published=on_published,
    )
    return paths, final[0]


def next_year_total(monthly: pd.DataFrame, year: int) -> dict[str, Any] | None:
    """The total's champion monthly forecasts of ``year`` summed (USD; point forecast, no range: the
    annual ranges are simulated for the target year only), when all 12 months are forecast."""
    rows = monthly.loc[
        (monthly["unique_id"] == "total")
        & monthly["is_champion"].astype(bool)
        & (pd.to_datetime(monthly["ds"]).dt.year == year)
    ]
    if len(rows) != 12:
        return None
    return {"year": year, "model": str(rows["model"].iloc[0]), "forecast": float(rows["forecast"].sum())}


def active_vintage_id(settings: Settings) -> str | None:
    """The data vintage a run on the embedded source reads (``seed``: the committed data/); None for another source."""
    from flows.update import active_vintage

    return active_vintage(settings).id if settings.data.source == "embedded" else None


def data_origin_of(settings: Settings, data_dir: Path) -> str:
    """Where the run's data came from, for run.json and MLflow: the CSV path, the API, or the embedded files."""
    if settings.data.source == "csv":
        return str(settings.data.path)
    if settings.data.source == "customs_api":
        return f"Korea Customs Service open API, {settings.data.customs.start}..{settings.data.customs.end}"
    return str(data_dir / "exports_monthly.csv")


def _write_report(results: Results, staging: Path, data_dir: Path, runtime: RuntimeSettings) -> None:
    from flows.report import write_results_report

    write_results_report(
        results, staging / "report.html", data_dir=data_dir, n_jobs=runtime.n_jobs, cache_dir=runtime.report_cache_dir
    )


def with_source(settings: Settings, source: str | None) -> Settings:
    if source is None or source == settings.data.source:
        return settings
    return settings.updated("data", source=source)


# ====================================================================== flows
@flow(name=FLOW_NAME, log_prints=False, description="Backtest, forecast, compare and publish Korea's monthly exports.")
def monthly_forecast(
    config_path: str | None = None, source: str | None = None, update: bool = False
) -> PipelineResult | None:
    """Load the config (``config_path``, default the repo's config.yaml), optionally override
    ``data.source``, run every step and publish. ``update`` (the monthly deployment): first
    ``exportcast data update``; when nothing is new, say so in one line and publish nothing."""
    from flows.results import RUN_JSON
    from flows.update import scheduled_settings

    path = Path(config_path) if config_path else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    settings = scheduled_settings(path, source, update, RUN_JSON)
    return None if settings is None else execute(settings)


@flow(name=FLOW_NAME, log_prints=False, description="monthly-forecast with settings already loaded")
def _monthly_forecast_with_settings(settings: Settings) -> PipelineResult:
    return execute(settings)


def run_pipeline(settings: Settings) -> PipelineResult:
    """Run the ``monthly-forecast`` flow with typed settings (what ``exportcast run`` calls)."""
    return _monthly_forecast_with_settings(settings)
