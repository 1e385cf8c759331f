"""Atomic publishing of a run's outputs.

Every table is first written completely into a staging folder inside the output folder
(``<dir>/.staging-<run id>/``, same filesystem, so a rename is atomic), flushed and fsynced;
``finalize(staging)`` then adds files built from the run (the report). Only when every file is
complete is each one moved into place with ``os.replace``. ``run.json`` goes last, so it always
describes files that are already in place: ``on_published(run_info)`` is called after the other
files are in place and returns the final run.json content (the pipeline moves the registry's
``champion`` alias there, only after a successful publish, and records where it points).
A run that fails before the moves publishes nothing and leaves the previous outputs
byte-identical; the staging folder is removed in every case.

What the tables hold and how they are formatted is flows/results.py (the one schema).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from exportcast.errors import ExportcastError
from flows.preflight import check_publish_dir  # noqa: F401 - its home is flows/preflight.py (a light import)
from flows.results import RUN_JSON, csv_bytes, format_table, json_bytes

STAGING_PREFIX = ".staging-"
#: staging folders older than this are leftovers of a killed run and are removed
STALE_STAGING_SECONDS = 24 * 3600


class PublishError(ExportcastError, RuntimeError):
    """Publishing failed (a table breaks its schema, a table name is not a plain file name, or a live staging folder exists)."""


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


def publish(
    tables: Mapping[str, pd.DataFrame],
    run_info: Mapping[str, Any],
    out_dir: Path,
    *,
    run_id: str,
    finalize: Callable[[Path], Any] | None = None,
    on_published: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    run_json: str = RUN_JSON,
) -> list[Path]:
    """Stage every table (CSV, formatted to its schema in flows/results.py), call
    ``finalize(staging_dir)`` (e.g. write the report), move every staged file into ``out_dir``,
    then write ``run.json`` (``on_published(run_info)`` when given, else ``run_info``) last.
    Returns the published paths (run.json last). ``run_json``: the name of that record (the
    flash-nowcast flow writes ``flash_run.json``, leaving the monthly run's ``run.json`` alone)."""
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
        if finalize is not None:
            finalize(staging)
        if (staging / run_json).exists():
            raise PublishError(f"{run_json} is written by publish itself, last; finalize must not stage it")
        _fsync_dir(staging)
        published = []
        for src in sorted((p for p in staging.iterdir() if p.is_file()), key=lambda p: p.name):
            dst = out_dir / src.name
            os.replace(src, dst)
            published.append(dst)
        _fsync_dir(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    final = on_published(run_info) if on_published is not None else run_info
    published.append(write_atomic(out_dir / run_json, json_bytes(final)))
    return published


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
