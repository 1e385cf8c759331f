"""The flash flow: Prefect flow ``flash-nowcast`` (``exportcast flash``; scheduled on the 11th and
the 21st, 09:00 Seoul time, by flows/deployment.py).

    ingest flash -> ingest -> validate -> nowcast -> in-year tables -> mlflow -> publish

- **Flash figures through the monthly flow's source switch** (``data.source``):
  ``embedded`` reads ``data/indicators_monthly.csv``; ``csv`` reads ``data.indicators_path``, a
  user file in the same indicator format, through the same contract
  (``features.contract.validate_indicators``: a bad row is an error naming the file, line and
  column); ``customs_api`` fails at once with one line, because the customs open API documents
  no 10-day/20-day endpoint (``features.customs_api.fetch_flash``). The flash is read first, so
  an unusable flash source fails before anything else is fetched or computed.
- **The monthly history** comes through the monthly flow's own ``ingest`` and ``validate`` tasks
  (flows/pipeline.py), so the nowcast sees the same data as a monthly run on the same source.
- **The nowcast** is the monthly flow's cached ``nowcast_step`` (models/applications/nowcast.py), with the
  same cache key: a flash run on data a monthly run already saw is served from the cache.
- **In-year tables** (:func:`in_year_tables`): the nowcast and the tracked annual total
  (``tracking.csv``, the monthly flow's ``tracking_table``: models/applications/inyear.py).
- **Publishing** writes ``nowcast.csv`` and ``tracking.csv`` atomically (flows/publish.py:
  staged, then moved, record last) and the record ``flash_run.json``; it never writes the
  monthly tables, ``run.json`` or the report, and never moves the registry's ``champion``
  alias. A failed flash run publishes nothing: the last published files stay as they were.
- **MLflow**: one run per flash run, tag ``kind = flash-nowcast``, with the nowcast MAPE by
  information and the latest month's nowcasts as metrics and the two tables as artifacts;
  marked FAILED when the flow raises.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, task

from exportcast.errors import ExportcastError
from flows.pipeline import (
    DEFAULT_CONFIG,
    INDICATORS_FILE,
    StageRunner,
    active_vintage_id,
    code_version,
    current_flow_run_id,
    data_origin_of,
    file_hash,
    git_head,
    ingest,
    nowcast_step,
    progress,
    run_logger,
    tracking_table,
    validate,
    with_source,
)
from flows.publish import publish
from flows.results import NOWCAST, TRACKING, format_table, jsonable
from flows.settings import DataSettings, Settings

FLOW_NAME = "flash-nowcast"
RUN_KIND = "flash-nowcast"
FLASH_RUN_JSON = "flash_run.json"
#: the series nowcast from the flash (the customs flash covers the total and 10 customs groups)
NOWCAST_SERIES = "total"
#: the flash indicators the nowcast needs (models.applications.nowcast.FLASH_INDICATORS and MONTH_INDICATOR)
FLASH_PREFIXES: tuple[str, ...] = ("customs_10d", "customs_20d", "customs_month")


class FlashSourceError(ExportcastError, ValueError):
    """The flash figures cannot be read from the configured source (one line, names the key or file)."""


# ====================================================================== result
@dataclass(frozen=True)
class FlashResult:
    """What a flash run returns: where it published, and its flash_run.json."""

    outputs_dir: Path
    paths: list[Path]
    record: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        r = self.record
        lines = [
            f"exportcast flash-nowcast: flash from {r.get('indicators_origin')} (data {str(r.get('data_hash'))[:12]})"
        ]
        latest = r.get("latest") or {}
        if latest:
            figures = ", ".join(
                f"{info} {v['nowcast_usd_bn']:.2f} bn (as of {v['as_of']})"
                for info, v in latest.get("nowcast", {}).items()
            )
            lines.append(f"latest month {latest.get('month')}: {figures}")
        mape = r.get("mape") or {}
        if mape:
            lines.append(
                "nowcast MAPE over the months with an actual: " + ", ".join(f"{k} {v:.2f}%" for k, v in mape.items())
            )
        lines.append(f"tracking: {r.get('tracking_rows', 0)} rows")
        lines.append(f"outputs: {self.outputs_dir} ({', '.join(p.name for p in self.paths)})")
        if r.get("mlflow_run_id"):
            lines.append(f"mlflow run: {r['mlflow_run_id']} (kind {RUN_KIND})")
        stages = ", ".join(
            f"{k} {v:.1f}s{' (cached)' if (r.get('cached') or {}).get(k) else ''}"
            for k, v in (r.get("stage_seconds") or {}).items()
        )
        lines.append(f"seconds: {stages}")
        return "\n".join(lines)


# ====================================================================== ingest
def indicators_origin(data: DataSettings, data_dir: Path) -> Path | None:
    """The file the flash figures come from for ``data.source`` (None: the customs API)."""
    if data.source == "embedded":
        return Path(data_dir) / INDICATORS_FILE
    if data.source == "csv":
        if data.indicators_path is None:
            raise FlashSourceError(
                "data.source is 'csv' but data.indicators_path is not set: the flash-nowcast flow needs the flash "
                "figures as a CSV in the format of data/indicators_monthly.csv "
                "(indicator,ds,value,unit,available_from,source)"
            )
        return Path(data.indicators_path)
    return None


@task(name="ingest-flash")
def ingest_flash(data: DataSettings, data_dir: Path) -> pd.DataFrame:
    """The indicator table holding the flash (validated; every row with its ``available_from``)."""
    from features.readers import read_indicator_csv

    path = indicators_origin(data, data_dir)
    if path is None:
        from features.customs_api import fetch_flash

        return fetch_flash(data.customs.start, data.customs.end)
    indicators = read_indicator_csv(path)
    have = set(indicators["indicator"])
    missing = [f"{prefix}:{NOWCAST_SERIES}" for prefix in FLASH_PREFIXES if f"{prefix}:{NOWCAST_SERIES}" not in have]
    if missing:
        raise FlashSourceError(
            f"{path}: no rows of indicator(s) {', '.join(missing)}: the nowcast of "
            f"'{NOWCAST_SERIES}' needs the 10-day, 20-day and whole-month customs figures"
        )
    return indicators


def check_flash_source(settings: Settings, source: str | None = None, *, data_dir: Path | None = None) -> None:
    """Read and check the flash of the configured source (``source`` overrides ``data.source``)
    without running anything: ``exportcast flash`` calls it before it starts the flow, so a bad
    indicator CSV or an unusable source is one line at once, not after a Prefect start-up."""
    from flows.update import active_data_dir

    ingest_flash.fn(
        with_source(settings, source).data, Path(data_dir) if data_dir is not None else active_data_dir(settings)
    )


# ====================================================================== in-year tables
def in_year_tables(
    frame: pd.DataFrame, indicators: pd.DataFrame, nowcast: pd.DataFrame, settings: Settings
) -> dict[str, pd.DataFrame]:
    """The tables a flash run publishes: ``nowcast.csv`` (the nowcast rows) and ``tracking.csv``,
    the tracked annual total (``flows.pipeline.tracking_table``, the monthly flow's own code: the
    confirmed months public by each information date + the conditional forecast of the rest, the
    flash months from ``nowcast``) computed from ``frame`` (the monthly history) and ``indicators``
    (the flash, each value with its ``available_from``)."""
    return {NOWCAST: nowcast, TRACKING: tracking_table(frame, indicators, settings, nowcast)}


# ====================================================================== record and metrics
def nowcast_metrics(nowcast: pd.DataFrame) -> dict[str, float]:
    """MAPE (%) by information over the rows with an actual, and the number of months scored."""
    scored = nowcast.dropna(subset=["ape"])
    out: dict[str, float] = {}
    for info, group in scored.groupby("information", sort=True):
        out[f"nowcast_mape_{info}"] = float(group["ape"].mean())
        out[f"nowcast_months_{info}"] = float(len(group))
    return out


def latest_nowcast(nowcast: pd.DataFrame) -> dict[str, Any]:
    """The latest month with a nowcast: its figures (USD bn) by information, with their as_of."""
    if nowcast.empty:
        return {}
    month = nowcast["ds"].max()
    rows = nowcast[nowcast["ds"] == month]
    return {
        "month": f"{month:%Y-%m}",
        "unique_id": str(rows["unique_id"].iloc[0]),
        "nowcast": {
            str(r.information): {
                "nowcast_usd_bn": float(r.nowcast) / 1e9,
                "lo_80_usd_bn": float(r.lo_80) / 1e9,
                "hi_80_usd_bn": float(r.hi_80) / 1e9,
                "as_of": f"{r.as_of:%Y-%m-%d}",
                "actual_usd_bn": None if pd.isna(r.actual) else float(r.actual) / 1e9,
            }
            for r in rows.itertuples(index=False)
        },
    }


# ====================================================================== the run
def execute_flash(
    settings: Settings,
    *,
    data_dir: Path | None = None,
    before_publish: Callable[[Mapping[str, pd.DataFrame]], None] | None = None,
) -> FlashResult:
    """Body of the flow (call it inside a flow run). ``data_dir``: the embedded data folder (the
    flash of the embedded source; default the repo's data/). ``before_publish``: hook called with
    the tables just before publishing (tests)."""
    from flows.tracking import PipelineTracker
    from flows.update import active_data_dir, resolve_target_year

    settings = resolve_target_year(settings)
    data_dir = Path(data_dir) if data_dir is not None else active_data_dir(settings)
    stages = StageRunner(["ingest-flash", "ingest", "validate", "nowcast", "in-year", "mlflow", "publish"])
    record = _flash_record(settings, data_dir)
    version = record["code_version"]
    origin = indicators_origin(settings.data, data_dir)
    tags = {
        "kind": RUN_KIND,
        "code_version": version,
        "data_source": settings.data.source,
        "prefect_flow_run_id": record["prefect_flow_run_id"] or "",
        "git_head": record["git_head"] or "",
    }
    params = {**{k: v for k, v in settings.flat().items() if k.startswith("data.")}, "code_version": version}
    with PipelineTracker(
        settings.mlflow, run_name=f"{RUN_KIND} {datetime.now(UTC):%Y-%m-%d}", tags=tags, params=params
    ) as tracker:
        indicators = stages.run("ingest-flash", ingest_flash, settings.data, data_dir)
        frame = stages.run("ingest", ingest, settings.data)
        digest, data_summary = stages.run("validate", validate, frame)
        if NOWCAST_SERIES not in set(frame["unique_id"]):
            raise FlashSourceError(
                f"{record['data_origin']}: no series '{NOWCAST_SERIES}': the flash nowcasts the "
                f"monthly total, so the data must hold it (data.series or the CSV)"
            )
        tables_hash = file_hash(origin) if origin is not None else ""
        record.update(data_hash=digest, data=data_summary, indicators_hash=tables_hash)
        tracker.set_tags({"data_hash": digest, "indicators_hash": tables_hash})
        tracker.log_dataset(frame, digest, settings.data)
        last_flash = indicators.loc[
            indicators["indicator"].str.startswith(("customs_10d:", "customs_20d:"))
            & indicators["indicator"].str.endswith(f":{NOWCAST_SERIES}"),
            "available_from",
        ].max()
        progress(
            f"flash: {len(indicators)} indicator rows from {record['indicators_origin']}, "
            f"latest flash public {last_flash:%Y-%m-%d}"
        )
        # the monthly flow's cached step, under the monthly flow's key: same data, same result
        key = {"data_hash": digest, "code_version": version, "seed": settings.runtime.seed, "tables": tables_hash}
        nowcast = stages.run(
            "nowcast", nowcast_step, frame, data_dir, key=key, unique_id=NOWCAST_SERIES, indicators=indicators
        )
        tables = _in_year(stages, tracker, frame, indicators, nowcast, settings, record)
        if before_publish is not None:
            before_publish(tables)
        paths, final = _publish_flash(tables, record, settings, tracker, stages)
    outcome = FlashResult(outputs_dir=settings.publish.dir, paths=paths, record=final)
    run_logger().info("%s", outcome.summary())
    print(outcome.summary(), flush=True)
    return outcome


def _in_year(
    stages: StageRunner,
    tracker: Any,
    frame: pd.DataFrame,
    indicators: pd.DataFrame,
    nowcast: pd.DataFrame,
    settings: Settings,
    record: dict[str, Any],
) -> dict[str, pd.DataFrame]:
    """The published tables (nowcast, tracking) and their metrics, in ``record`` and in MLflow."""
    start = time.perf_counter()
    tables = {
        name: format_table(name, table) for name, table in in_year_tables(frame, indicators, nowcast, settings).items()
    }
    stages.done("in-year", start)

    start = time.perf_counter()
    metrics = nowcast_metrics(tables[NOWCAST])
    record.update(
        mape={k.removeprefix("nowcast_mape_"): v for k, v in metrics.items() if k.startswith("nowcast_mape_")},
        latest=latest_nowcast(tables[NOWCAST]),
        nowcast_rows=len(tables[NOWCAST]),
        tracking_rows=len(tables[TRACKING]),
        mlflow_run_id=tracker.run_id,
        mlflow_experiment_id=tracker.experiment_id,
    )
    tracker.log_headline(metrics)
    tracker.log_tables(tables, "flash")
    stages.done("mlflow", start)
    return tables


def _flash_record(settings: Settings, data_dir: Path) -> dict[str, Any]:
    """The flash run's record before any stage ran (flash_run.json, MLflow tags)."""
    flow_run_id = current_flow_run_id()
    origin = indicators_origin(settings.data, data_dir)
    return {
        "kind": RUN_KIND,
        "run_id": flow_run_id or uuid.uuid4().hex,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_source": settings.data.source,
        "data_origin": data_origin_of(settings, data_dir),
        "indicators_origin": str(origin) if origin is not None else "customs API (no flash endpoint)",
        "code_version": code_version(),
        "git_head": git_head(),
        "prefect_flow_run_id": flow_run_id,
        "config_file": str(settings.config_file) if settings.config_file else None,
        "vintage": active_vintage_id(settings),
    }


def _publish_flash(
    tables: Mapping[str, pd.DataFrame], record: dict[str, Any], settings: Settings, tracker: Any, stages: StageRunner
) -> tuple[list[Path], dict[str, Any]]:
    """Publish the tables, then the record with the timings (written last); the paths and the record."""
    start = time.perf_counter()
    final: list[dict[str, Any]] = []

    def on_published(info: Mapping[str, Any]) -> Mapping[str, Any]:
        """The tables are in place: the record gets the timings and is written last."""
        stages.done("publish", start)
        tracker.log_headline({f"seconds_{k}": v for k, v in stages.seconds.items()})
        final.append(
            {
                **info,
                "stage_seconds": dict(stages.seconds),
                "cached": dict(stages.cached),
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        return final[-1]

    paths = publish(
        tables,
        jsonable(record),
        settings.publish.dir,
        run_id=record["run_id"],
        run_json=FLASH_RUN_JSON,
        on_published=on_published,
    )
    return paths, dict(final[0])


# ====================================================================== flows
@flow(
    name=FLOW_NAME,
    log_prints=False,
    description="Nowcast this month from the customs flash (10-day, 20-day) and publish nowcast.csv and tracking.csv.",
)
def flash_nowcast(
    config_path: str | None = None, source: str | None = None, update: bool = False
) -> FlashResult | None:
    """Load the config (``config_path``, default the repo's config.yaml), optionally override
    ``data.source``, nowcast and publish (the deployment's entry point). ``update`` (the flash
    deployment): first ``exportcast data update`` (the new flash); nothing new: one line, nothing published."""
    from flows.update import scheduled_settings

    path = Path(config_path) if config_path else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
    settings = scheduled_settings(path, source, update, FLASH_RUN_JSON)
    return None if settings is None else execute_flash(settings)


@flow(name=FLOW_NAME, log_prints=False, description="flash-nowcast with settings already loaded")
def _flash_nowcast_with_settings(settings: Settings, data_dir: Path | None = None) -> FlashResult:
    return execute_flash(settings, data_dir=data_dir)


def run_flash(settings: Settings, *, data_dir: Path | None = None) -> FlashResult:
    """Run the ``flash-nowcast`` flow with typed settings (what ``exportcast flash`` calls)."""
    return _flash_nowcast_with_settings(settings, data_dir)


def run_flash_with_source(settings: Settings, source: str | None) -> None:
    """The supervised process of ``exportcast flash`` (flows/supervise.py runs it in a child)."""
    from flows.prefect_server import run_on_own_server

    chosen = with_source(settings, source)
    run_on_own_server(lambda: lambda: run_flash(chosen))
