"""The monthly pipeline: Prefect flow ``monthly-forecast`` (``exportcast run`` / ``make run``).

    ingest -> validate -> backtest -> forecast -> champions -> institutional -> publish (+ report)

- ``ingest`` is the only task with retries, and it retries only transport errors of the
  customs API (a malformed file fails at once: retrying cannot fix it).
- ``validate``: the readers validate at the edge; this step checks the frame is the canonical
  contract, summarises it and computes the data hash used by the caches and the bookkeeping.
- ``backtest``, ``forecast`` and ``institutional`` are cached: the Prefect cache key is
  (task, data hash, the config sections the step reads, code version = hash of the sources of
  ``models/``, ``features/`` and the pipeline), and results are persisted under PREFECT_HOME
  (``PREFECT_LOCAL_STORAGE_PATH``), so an unchanged rerun loads them instead of refitting.
- The steps run one after another: the engine already spreads each step over
  ``runtime.n_jobs`` processes (= the 2 cores of the machine), so running backtest and
  forecast concurrently would put 2 x n_jobs busy processes on n_jobs cores, with no gain
  and more memory.
- MLflow (flows/tracking.py): one parent run per pipeline run, marked FAILED when a step
  raises; publishing (flows/publish.py) is atomic, so a failed run leaves the previous outputs.

``run_pipeline(settings)`` runs the same flow with settings already loaded (tests, CLI).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError

from flows import jobs
from flows.publish import publish
from flows.settings import DataSettings, Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config.yaml"
FLOW_NAME = "monthly-forecast"
#: sources hashed into the code version (a change invalidates the caches)
CODE_DIRS: tuple[str, ...] = ("models", "features")
CODE_FILES: tuple[str, ...] = ("flows/jobs.py", "flows/pipeline.py")
PROJECTIONS_FILE = "institutional_projections.csv"
ACTUALS_FILE = "annual_actuals.csv"
KEY_PACKAGES: tuple[str, ...] = ("pandas", "numpy", "statsmodels", "prophet", "mlflow", "prefect", "pydantic")
MONTH = pd.offsets.MonthBegin(1)


# ====================================================================== result
@dataclass(frozen=True)
class PipelineResult:
    outputs_dir: Path
    paths: list[Path]
    run_id: str
    mlflow_run_id: str | None
    flow_run_id: str | None
    data_hash: str
    code_version: str
    n_series: int
    champion_counts: dict[str, int]
    total_forecast: dict[str, float] | None  # the total's target-year champion forecast (USD) and bounds
    stage_seconds: dict[str, float]
    cached: dict[str, bool] = field(default_factory=dict)
    champion_model_version: str | None = None
    institutional_text: str = ""

    def summary(self, target_year: int) -> str:
        lines = [f"exportcast monthly-forecast: {self.n_series} series (data {self.data_hash[:12]}, code {self.code_version[:12]})"]
        counts = ", ".join(f"{name} {n}" for name, n in sorted(self.champion_counts.items(), key=lambda kv: (-kv[1], kv[0])))
        lines.append(f"champions: {counts or 'none'}")
        if self.total_forecast:
            t = self.total_forecast
            lines.append(
                f"total exports {target_year} ({t['model']}): USD {t['forecast'] / 1e9:,.1f} bn "
                f"(80%: {t['lo_80'] / 1e9:,.1f} - {t['hi_80'] / 1e9:,.1f} bn)"
            )
        lines.append(f"outputs: {self.outputs_dir} ({', '.join(p.name for p in self.paths)})")
        if self.mlflow_run_id:
            lines.append(f"mlflow run: {self.mlflow_run_id}" + (f", champion model version {self.champion_model_version}"
                                                              if self.champion_model_version else ""))
        stages = ", ".join(f"{k} {v:.1f}s{' (cached)' if self.cached.get(k) else ''}" for k, v in self.stage_seconds.items())
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
    """sha256 of the canonical columns (sorted; values in full precision)."""
    canonical = frame[["unique_id", "ds", "y"]].sort_values(["unique_id", "ds"], kind="stable")
    text = canonical.to_csv(index=False, date_format="%Y-%m-%d", float_format="%.17g", lineterminator="\n")
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
    """Retry ingest only for network failures (customs API); bad data fails at once."""
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - classify the failure
        import httpx

        if isinstance(exc, (httpx.TransportError, TimeoutError, ConnectionError)):
            return True
        if isinstance(exc, httpx.HTTPStatusError):
            return exc.response.status_code >= 500 or exc.response.status_code == 429
        return False
    return False


# ====================================================================== tasks
@task(name="ingest", retries=3, retry_delay_seconds=[5, 30, 120], retry_condition_fn=_retry_transport_errors)
def ingest(data: DataSettings) -> pd.DataFrame:
    from features.readers import read_source

    customs = data.customs.model_dump() if data.source == "customs_api" else None
    return read_source(data.source, path=data.path, series=data.series, customs=customs)


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
def backtest_step(frame: pd.DataFrame, settings: Settings, key: dict[str, Any]) -> Any:
    bt = settings.backtest
    return jobs.backtest_frame(frame, settings, horizon=bt.horizon, windows=bt.windows, step=bt.step)


@task(name="forecast", cache_key_fn=_cache_key, persist_result=True)
def forecast_step(frame: pd.DataFrame, settings: Settings, key: dict[str, Any]) -> Any:
    return jobs.forecast_frame(frame, settings, until=settings.forecast_end, annual_year=settings.target_year,
                               keep_models=True)


@task(name="institutional", cache_key_fn=_cache_key, persist_result=True)
def institutional_step(frame: pd.DataFrame, settings: Settings, data_dir: Path, key: dict[str, Any],
                       latest_annual: pd.DataFrame | None = None,
                       latest_champions: dict[str, str] | None = None) -> Any:
    from models.institutional import compare_with_institutions

    projections = pd.read_csv(data_dir / PROJECTIONS_FILE)
    actuals = pd.read_csv(data_dir / ACTUALS_FILE)
    exog = jobs.working_day_exog(frame, settings.forecast_end)
    return compare_with_institutions(
        frame, projections, actuals, settings.engine_settings(),
        info_month=settings.institutional.info_month, first_year=settings.institutional.first_year,
        target_year=settings.target_year, exog=exog, latest_annual=latest_annual,
        latest_champions=latest_champions,
    )


# ====================================================================== assembling outputs
def flag_champions(table: pd.DataFrame, champions: pd.DataFrame) -> pd.DataFrame:
    """``table`` (rows per unique_id x model) with ``is_champion``: the row's model is the
    series' champion. Pseudo-rows named ``champion`` (if any) are dropped: the flag says it."""
    champion_of = dict(zip(champions["unique_id"].astype(str), champions["champion"].astype(str)))
    out = table.loc[table["model"] != "champion"].copy()
    out["is_champion"] = [champion_of.get(uid) == model for uid, model in zip(out["unique_id"], out["model"])]
    return out


def total_headline(annual: pd.DataFrame, year: int) -> dict[str, Any] | None:
    rows = annual.loc[(annual["unique_id"] == "total") & (annual["year"] == year) & annual["is_champion"]]
    if rows.empty:
        return None
    row = rows.iloc[0]
    return {"model": str(row["model"]), **{k: float(row[k]) for k in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")}}


def institutional_text(summary: pd.DataFrame, outlook: pd.DataFrame, target_year: int) -> str:
    """What the flow prints of the comparison: per series and institution with at least two years,
    the institution's MAPE beside the champion's and the ensemble's over the same years, the
    champion's 80% coverage and both biases; then the target year's outlooks beside the model."""
    lines = ["pre-year outlooks vs the models (same years; MAPE %, coverage of the champion's 80% interval, bias %):"]
    s = summary[(summary["n_years"] >= 2) & summary["model"].isin(["champion", "ensemble"])]
    if s.empty:
        return ""
    wide = s.pivot_table(index=["unique_id", "institution", "n_years", "institution_mape", "institution_bias_pct"],
                         columns="model", values=["model_mape", "model_coverage_80", "model_bias_pct"]).reset_index()
    for r in wide.itertuples(index=False):
        row = dict(zip([c if isinstance(c, str) else "_".join(x for x in c if x) for c in wide.columns], r))
        lines.append(f"  {row['unique_id']:<22} {row['institution']:<6} n={int(row['n_years']):>2}  "
                     f"institution {row['institution_mape']:5.2f} (bias {row['institution_bias_pct']:+5.2f})  "
                     f"champion {row.get('model_mape_champion', float('nan')):5.2f} "
                     f"(80% cover {row.get('model_coverage_80_champion', float('nan')):.0%}, "
                     f"bias {row.get('model_bias_pct_champion', float('nan')):+5.2f})  "
                     f"ensemble {row.get('model_mape_ensemble', float('nan')):5.2f}")
    o = outlook[outlook["unique_id"].isin(["total", "item:semiconductors"]) & (outlook["kind"] != "survey")]
    if not o.empty:
        lines.append(f"{target_year} outlooks beside the published champion (USD bn):")
        for r in o.itertuples(index=False):
            lines.append(f"  {r.unique_id:<22} {r.institution:<6} {r.kind:<17} {r.projected_level_usd_bn:7.1f}  "
                         f"model ({r.champion_model}) {r.model_usd_bn:7.1f} [80%: {r.model_lo_80:.1f}-{r.model_hi_80:.1f}]")
    return "\n".join(lines)


def _empty_institutional() -> dict[str, pd.DataFrame]:
    """Header-only tables, so that stale files of an earlier run do not linger."""
    from models.institutional import COMPARISON_COLUMNS, OUTLOOK_COLUMNS, SUMMARY_COLUMNS

    return {
        "institutional_comparison.csv": pd.DataFrame(columns=COMPARISON_COLUMNS),
        "institutional_summary.csv": pd.DataFrame(columns=SUMMARY_COLUMNS),
        "institutional_outlook.csv": pd.DataFrame(columns=OUTLOOK_COLUMNS),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")


def _institutional_headline(summary: pd.DataFrame) -> dict[str, float]:
    out: dict[str, float] = {}
    rows = summary.loc[(summary["unique_id"] == "total") & (summary["model"] == "champion")]
    for _, row in rows.iterrows():
        inst = _slug(row["institution"])
        out[f"institutional_mape_{inst}"] = float(row["institution_mape"])
        out[f"model_mape_vs_{inst}"] = float(row["model_mape"])
    return out


def _flow_run_id() -> str | None:
    try:
        from prefect.runtime import flow_run

        return str(flow_run.id) if flow_run.id else None
    except Exception:  # noqa: BLE001 - outside a flow run
        return None


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("exportcast.pipeline")


# ====================================================================== the run
def execute(settings: Settings, *, data_dir: Path | None = None,
            before_publish: Callable[[dict[str, pd.DataFrame]], None] | None = None) -> PipelineResult:
    """Body of the flow (call it inside a flow run: the steps are Prefect tasks).
    ``data_dir``: the embedded data folder (institutional tables; default the repo's data/).
    ``before_publish``: hook called with the tables just before publishing (tests)."""
    from features.readers import DEFAULT_DATA_DIR
    from flows.tracking import PipelineTracker

    log = _logger()
    data_dir = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    flow_run_id = _flow_run_id()
    run_id = flow_run_id or uuid.uuid4().hex
    version = code_version()
    head = git_head()
    seconds: dict[str, float] = {}
    cached: dict[str, bool] = {}

    def timed(stage: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        state = func(*args, return_state=True, **kwargs)
        result = state.result()  # raises the task's exception on failure
        seconds[stage] = round(time.perf_counter() - start, 3)
        cached[stage] = state.name == "Cached"
        return result

    tags = {"code_version": version, "target_year": settings.target_year, "prefect_flow_run_id": flow_run_id or "",
            "data_source": settings.data.source, "git_head": head or ""}
    with PipelineTracker(settings.mlflow, run_name=f"monthly-forecast {settings.target_year}", tags=tags,
                         params={**settings.flat(), "code_version": version}) as tracker:
        frame = timed("ingest", ingest, settings.data)
        digest, data_summary = timed("validate", validate, frame)
        tracker.set_tags({"data_hash": digest})
        tracker.log_dataset(frame, digest, settings.data)
        log.info("data: %s series, %s rows, %s..%s (hash %s)", data_summary["n_series"], data_summary["n_rows"],
                 data_summary["first_month"], data_summary["last_month"], digest[:12])

        base_key = {"data_hash": digest, "code_version": version, "seed": settings.runtime.seed}
        bt = timed("backtest", backtest_step, frame, settings,
                   key={**base_key, **settings.section_dict("models", "backtest")})
        fc = timed("forecast", forecast_step, frame, settings,
                   key={**base_key, **settings.section_dict("models", "target_year")})

        start = time.perf_counter()
        champions = bt.champions.copy()
        forecasts = flag_champions(fc.forecasts, champions)
        annual = flag_champions(fc.annual, champions)
        champion_counts = {str(k): int(v) for k, v in champions["champion"].value_counts().items()}
        seconds["champions"] = round(time.perf_counter() - start, 3)

        tables: dict[str, pd.DataFrame] = {
            "forecast_monthly.csv": forecasts,
            "forecast_annual.csv": annual,
            "backtest_metrics.csv": bt.metrics,
            "backtest_forecasts.csv": bt.forecasts,
            "champions.csv": champions,
            "model_fits.csv": fc.fits,
        }
        institutional_done = False
        inst_text = ""
        headline: dict[str, float] = {}
        if settings.data.source != "embedded":
            log.info("institutional comparison skipped: data source is %s (it needs the embedded dataset)",
                     settings.data.source)
            tables.update(_empty_institutional())
        else:
            key = {**base_key, **settings.section_dict("models", "institutional", "target_year"),
                   "tables": file_hash(data_dir / PROJECTIONS_FILE, data_dir / ACTUALS_FILE)}
            inst = timed("institutional", institutional_step, frame, settings, data_dir, key=key,
                         latest_annual=fc.annual,
                         latest_champions=dict(zip(champions["unique_id"], champions["champion"])))
            tables["institutional_comparison.csv"] = inst.comparison
            tables["institutional_summary.csv"] = inst.summary
            tables["institutional_outlook.csv"] = inst.outlook
            headline.update(_institutional_headline(inst.summary))
            inst_text = institutional_text(inst.summary, inst.outlook, settings.target_year)
            institutional_done = True

        # ---------------------------------------------------------- MLflow
        start = time.perf_counter()
        exog = jobs.working_day_exog(frame, settings.forecast_end)
        for family in settings.models.active():
            fitted = {uid: m for (uid, name), m in fc.fitted.items() if name == family}
            tracker.log_family(
                family, settings.models.params.get(family, {}),
                fits=fc.fits.loc[fc.fits["model"] == family], metrics=bt.metrics.loc[bt.metrics["model"] == family],
                fitted=fitted, exog=exog,
            )
        champion_of = dict(zip(champions["unique_id"].astype(str), champions["champion"].astype(str)))
        champion_models = {uid: fc.fitted[(uid, name)] for uid, name in champion_of.items() if (uid, name) in fc.fitted}
        champion_fits = fc.fits.loc[[champion_of.get(u) == m for u, m in zip(fc.fits["unique_id"], fc.fits["model"])]]
        tracker.log_family(
            "champion", {"metric": settings.backtest.champion_metric},
            fits=champion_fits, metrics=bt.metrics.loc[bt.metrics["model"] == "champion"],
            fitted=champion_models, exog=exog, model_names=champion_of, register=True,
            extra_tables={"champions.csv": champions},
        )
        total = total_headline(annual, settings.target_year)
        if total:
            year = settings.target_year
            headline.update({f"total_{year}_usd_bn": total["forecast"] / 1e9, f"total_{year}_lo_80_usd_bn": total["lo_80"] / 1e9,
                             f"total_{year}_hi_80_usd_bn": total["hi_80"] / 1e9})
        headline["n_series"] = float(data_summary["n_series"])
        tracker.log_headline(headline)
        if institutional_done:
            tracker.log_tables({name: tables[name] for name in ("institutional_comparison.csv", "institutional_summary.csv",
                                                                "institutional_outlook.csv")}, "institutional")
        seconds["mlflow"] = round(time.perf_counter() - start, 3)

        # ---------------------------------------------------------- publish (+ report)
        run_info = {
            "run_id": run_id,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "target_year": settings.target_year,
            "data_hash": digest,
            "data": data_summary,
            "config": settings.to_dict(),
            "config_file": str(settings.config_file) if settings.config_file else None,
            "code_version": version,
            "git_head": head,
            "mlflow_run_id": tracker.run_id,
            "mlflow_experiment_id": tracker.experiment_id,
            "mlflow_champion_model": {"name": settings.mlflow.registered_model, "version": tracker.champion_version,
                                      "alias": "champion"},
            "prefect_flow_run_id": flow_run_id,
            "stage_seconds": dict(seconds),
            "cached": dict(cached),
            "institutional_compared": institutional_done,
            "champion_counts": champion_counts,
            "total_forecast": total,
            "packages": package_versions(),
        }
        if before_publish is not None:
            before_publish(tables)
        start = time.perf_counter()
        paths = publish(tables, run_info, settings.publish.dir, run_id=run_id,
                        finalize=lambda staging: _write_report(staging, data_dir))
        seconds["publish"] = round(time.perf_counter() - start, 3)
        tracker.log_headline({f"seconds_{k}": v for k, v in seconds.items()})

    result = PipelineResult(
        outputs_dir=settings.publish.dir, paths=paths, run_id=run_id, mlflow_run_id=tracker.run_id,
        flow_run_id=flow_run_id, data_hash=digest, code_version=version, n_series=data_summary["n_series"],
        champion_counts=champion_counts, total_forecast=total, stage_seconds=seconds, cached=cached,
        champion_model_version=tracker.champion_version, institutional_text=inst_text,
    )
    text = result.summary(settings.target_year)
    log.info("%s", text)
    print(text)
    return result


def _write_report(staging: Path, data_dir: Path) -> None:
    from flows.report import write_report

    write_report(staging, data_dir=data_dir, out_path=staging / "report.html")


def with_source(settings: Settings, source: str | None) -> Settings:
    if source is None or source == settings.data.source:
        return settings
    return settings.updated("data", source=source)


# ====================================================================== flows
@flow(name=FLOW_NAME, log_prints=False, description="Backtest, forecast, compare and publish Korea's monthly exports.")
def monthly_forecast(config_path: str | None = None, source: str | None = None) -> PipelineResult:
    """Load the config (``config_path``, default the repo's config.yaml), optionally override
    ``data.source``, run every step and publish."""
    path = Path(config_path) if config_path else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    settings = with_source(load_settings(path), source)
    return execute(settings)


@flow(name=FLOW_NAME, log_prints=False, description="monthly-forecast with settings already loaded")
def _monthly_forecast_with_settings(settings: Settings) -> PipelineResult:
    return execute(settings)


def run_pipeline(settings: Settings) -> PipelineResult:
    """Run the ``monthly-forecast`` flow with typed settings (what ``exportcast run`` calls)."""
    return _monthly_forecast_with_settings(settings)
