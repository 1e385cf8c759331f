"""Atomic publishing of a run's outputs.

Every file is first written completely into a staging folder inside the output folder
(``<dir>/.staging-<run id>/``, same filesystem, so a rename is atomic), flushed and fsynced.
Only when every file (and the report, built from the staged files) is complete is each one
moved into place with ``os.replace``; ``run.json`` goes last, so it always describes
files that are already in place. A run that fails before that point publishes nothing and
leaves the previous outputs byte-identical; the staging folder is removed in every case.

Format: UTF-8 CSV, ``\\n`` line ends, no index, dates as ``YYYY-MM-DD``, floats in fixed
point with 6 decimals (``%.6f``: no exponent, the same text on every platform; USD levels
keep sub-cent precision, metrics keep 1e-6), a gap is an empty field.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from exportcast.errors import ExportcastError

FLOAT_FORMAT = "%.6f"
DATE_FORMAT = "%Y-%m-%d"
STAGING_PREFIX = ".staging-"
#: staging folders older than this are leftovers of a killed run and are removed
STALE_STAGING_SECONDS = 24 * 3600

#: the published tables, their required columns (in this order; extra columns follow) and sort keys
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "forecast_monthly.csv": (
        ("unique_id", "ds", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "is_champion"),
        ("unique_id", "model", "ds"),
    ),
    "forecast_annual.csv": (
        ("unique_id", "year", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "observed", "is_champion"),
        ("unique_id", "model", "year"),
    ),
    "backtest_metrics.csv": (
        ("unique_id", "model", "cutoff", "mase", "smape", "rmsse", "coverage_80", "coverage_95"),
        ("unique_id", "model", "cutoff"),
    ),
    "backtest_forecasts.csv": (
        ("unique_id", "cutoff", "ds", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95", "y"),
        ("unique_id", "model", "cutoff", "ds"),
    ),
    "champions.csv": (("unique_id", "champion", "reason"), ("unique_id",)),
    "model_fits.csv": (
        ("unique_id", "model", "model_used", "status", "reason", "error", "n_obs", "description"),
        ("unique_id", "model"),
    ),
    "institutional_comparison.csv": ((), ("target_year", "unique_id", "institution", "published", "model")),
    "institutional_summary.csv": ((), ("unique_id", "institution", "model")),
}
RUN_JSON = "run.json"


class PublishError(ExportcastError, RuntimeError):
    """A table handed to ``publish`` breaks its published schema, or writing failed."""


def format_table(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Order columns (required first) and rows (sort keys) of a published table."""
    required, sort_keys = TABLES.get(name, ((), ()))
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PublishError(f"{name}: missing column(s) {missing}; got {list(frame.columns)}")
    columns = list(required) + [c for c in frame.columns if c not in required]
    out = frame.loc[:, columns]
    keys = [k for k in sort_keys if k in out.columns]
    if keys:
        out = out.sort_values(keys, kind="stable")
    return out.reset_index(drop=True)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The published CSV text of a frame (stable float and date formats)."""
    text = frame.to_csv(index=False, float_format=FLOAT_FORMAT, date_format=DATE_FORMAT, lineterminator="\n")
    return text.encode("utf-8")


def json_bytes(payload: Mapping[str, Any]) -> bytes:
    return (json.dumps(_jsonable(payload), indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        _write_synced(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def check_publish_dir(out_dir: Path) -> Path:
    """Make sure ``out_dir`` (config ``publish.dir``) exists and is writable: created if
    missing, then a probe file is written and removed. Called before any compute, so a run
    that could not publish fails at once with a message naming the folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PublishError(f"publish.dir {out_dir}: is a file, not a folder; choose a folder for the outputs "
                           "(config publish.dir or EXPORTCAST__PUBLISH__DIR)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-probe-{os.getpid()}"
        _write_synced(probe, b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PublishError(
            f"publish.dir {out_dir}: cannot write the outputs there ({reason}); "
            "choose a writable folder (config publish.dir or EXPORTCAST__PUBLISH__DIR)"
        ) from exc
    return out_dir


def publish(
    tables: Mapping[str, pd.DataFrame],
    run_info: Mapping[str, Any],
    out_dir: Path,
    *,
    run_id: str,
    finalize: Callable[[Path], Any] | None = None,
) -> list[Path]:
    """Stage every table (CSV) and ``run.json`` in ``out_dir/.staging-<run_id>``, call
    ``finalize(staging_dir)`` (e.g. build the report from the staged files), then move every
    staged file into ``out_dir``. Returns the published paths (run.json last)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out_dir)
    staging = out_dir / f"{STAGING_PREFIX}{run_id}"
    if staging.exists():
        raise PublishError(f"staging folder {staging} already exists: another run with id {run_id} is publishing")
    staging.mkdir()
    try:
        for name, frame in tables.items():
            if not name.endswith(".csv") or "/" in name:
                raise PublishError(f"table name must be a plain '<name>.csv'; got {name!r}")
            _write_synced(staging / name, csv_bytes(format_table(name, frame)))
        _write_synced(staging / RUN_JSON, json_bytes(run_info))
        if finalize is not None:
            finalize(staging)
        _fsync_dir(staging)
        staged = sorted((p for p in staging.iterdir() if p.is_file() and p.name != RUN_JSON), key=lambda p: p.name)
        staged.append(staging / RUN_JSON)
        published = []
        for src in staged:
            dst = out_dir / src.name
            os.replace(src, dst)
            published.append(dst)
        _fsync_dir(out_dir)
        return published
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# ------------------------------------------------------------------ helpers
def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _remove_stale_staging(out_dir: Path) -> None:
    now = time.time()
    for entry in out_dir.glob(f"{STAGING_PREFIX}*"):
        try:
            if entry.is_dir() and now - entry.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:  # pragma: no cover - raced with another cleaner
            continue


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)
