"""What a run checks and decides before Prefect starts (``exportcast run`` / ``flash``, the flows).

- **Where it publishes.** A run on the production source (``mlflow.production_source``, default
  ``embedded``) publishes to ``publish.dir`` (``outputs/``). Any other run publishes to its own
  folder and never replaces the production outputs: ``--publish-dir`` when given, else
  ``publish.non_production_dir`` when set, else ``<publish.dir>/<name>`` with the name from the
  source (``csv-<the CSV's stem>``, ``customs_api``, ``embedded``).
- **Its inputs.** The user CSV of ``data.source: csv`` exists and is a readable file, and the
  publish folder is writable: each problem is ONE ``error:`` line (exit 2) within a second or
  two, instead of a Prefect start-up and its logs. The settings themselves were checked when
  they were loaded (``flows.settings.load_settings``).

Light imports only (no pandas, no Prefect): the CLI calls this before anything heavy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from exportcast.errors import ExportcastError
from flows.settings import Settings


class InputError(ExportcastError, ValueError):
    """An input of the run (the data path, the publish folder) cannot be used; names it."""


def is_production(settings: Settings) -> bool:
    """Whether this run's data source is the production source (its outputs are ``publish.dir``)."""
    return settings.data.source == settings.mlflow.production_source


def run_name(settings: Settings) -> str:
    """The folder name of a non-production run: ``csv-<stem of data.path>`` or the source's name."""
    if settings.data.source == "csv" and settings.data.path is not None:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(settings.data.path).stem).strip("-.") or "data"
        return f"csv-{stem}"
    return settings.data.source


def publish_dir_of(settings: Settings, publish_dir: Path | None = None) -> Path:
    """Where this run publishes (see the module docstring). ``publish_dir``: ``--publish-dir``.
    A non-production run is refused the production folder itself."""
    production = Path(settings.publish.dir)
    if is_production(settings):
        return Path(publish_dir).resolve() if publish_dir is not None else production
    own = publish_dir if publish_dir is not None else settings.publish.non_production_dir
    folder = Path(own).resolve() if own is not None else production / run_name(settings)
    if folder == production.resolve():
        raise InputError(
            f"publish dir {folder}: is the production outputs folder (publish.dir), and data source "
            f"{settings.data.source} is not the production source {settings.mlflow.production_source} "
            "(mlflow.production_source); choose another folder"
        )
    return folder


def check_data_path(settings: Settings) -> None:
    """The user CSV of ``data.source: csv`` exists and can be read (the contract checks its rows later)."""
    if settings.data.source != "csv" or settings.data.path is None:
        return
    path = Path(settings.data.path)
    where = "(config data.path or EXPORTCAST__DATA__PATH)"
    if not path.exists():
        raise InputError(f"data.path {path}: no such file {where}")
    if not path.is_file():
        raise InputError(f"data.path {path}: is a folder, not a CSV file {where}")
    if not os.access(path, os.R_OK):
        raise InputError(f"data.path {path}: cannot be read (permission denied) {where}")


def check_publish_dir(out_dir: Path) -> Path:
    """Make sure ``out_dir`` (where the run publishes) exists and is writable: created if
    missing, then a probe file is written and removed. Called before any compute, so a run
    that could not publish fails at once with a message naming the folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(
            f"publish.dir {out_dir}: is a file, not a folder; choose a folder for the outputs "
            "(config publish.dir or EXPORTCAST__PUBLISH__DIR)"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-probe-{os.getpid()}"
        with open(probe, "wb") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise InputError(
            f"publish.dir {out_dir}: cannot write the outputs there ({reason}); "
            "choose a writable folder (config publish.dir or EXPORTCAST__PUBLISH__DIR)"
        ) from exc
    return out_dir


def prepare_run(settings: Settings, source: str | None = None, publish_dir: Path | None = None) -> Settings:
    """The settings a run uses: ``source`` (``--source``) applied, ``publish.dir`` set to where this
    run publishes, and its inputs checked (data path, publish folder) before anything starts."""
    if source is not None and source != settings.data.source:
        settings = settings.updated("data", source=source)
    folder = publish_dir_of(settings, publish_dir)
    check_data_path(settings)
    check_publish_dir(folder)
    return settings if folder == settings.publish.dir else settings.updated("publish", dir=folder)
