"""Vintages: every accepted update of the dataset, kept immutable in the data home, and the update.

The data home (config ``data.home``, outside git) holds::

    <home>/vintages/v0001/  raw/      the raw files the vintage was built from
                            data/     the canonical files (exports_monthly.csv, series.csv,
                                      indicators_monthly.csv, indicators_rejected.csv, and the
                                      institutional tables carried over)
                            vintage.parquet    one row: id, created_at, data_through, dataset_hash,
                                               rows_added, rows_revised, rows_removed
                            upstreams.parquet  one row per raw file: rel, upstream, sha256, etag
                            revisions.parquet  unique_id, ds, old, new, vintage
    <home>/staging/         work folders of the update in progress (removed by the next update)
    <home>/.update.lock     held (flock) by the update in progress

A vintage is built completely in ``staging/``, with every check of the dataset builder, and
only then renamed into ``vintages/`` (one ``rename``: atomic). The active vintage is the
highest-numbered folder of ``vintages/``; without one, the committed ``data/`` (the seed) is
active. A killed update leaves at most a staging folder, which the next update removes under
the lock. Why Parquet and folders (not DuckDB): docs/decisions/0130-vintage-store.md.

:func:`read` gives the dataset as any vintage had it (``as_of`` = a vintage id or a date), so
that an evaluation can replay what was known when; :func:`revisions` every revised value.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd

from features import upstreams as up
from features.errors import ExportcastError

SEED_DIR = Path(__file__).resolve().parent.parent / "data"
VINTAGES = "vintages"
STAGING = "staging"
LOCK = ".update.lock"
RAW = "raw"
DATA = "data"
VINTAGE_FILE = "vintage.parquet"
UPSTREAMS_FILE = "upstreams.parquet"
REVISIONS_FILE = "revisions.parquet"
EXPORTS_FILE = "exports_monthly.csv"
INDICATORS_FILE = "indicators_monthly.csv"
#: the canonical files ``exportcast data export`` writes
EXPORT_FILES: tuple[str, ...] = ("exports_monthly.csv", "series.csv", "indicators_monthly.csv")
#: files of the data folder that no raw file builds: carried from the previous vintage (or the seed)
CARRIED_FILES: tuple[str, ...] = ("institutional_projections.csv", "annual_actuals.csv")
REVISION_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "old", "new", "vintage")
VINTAGE_ID = re.compile(r"v(\d{4,})")
SEED_ID = "seed"


class UpdateError(ExportcastError, RuntimeError):
    """An update was refused; the one-line message names the upstream, the raw file and the
    failed check, and says the active data are unchanged."""


@dataclass(frozen=True)
class Vintage:
    """One accepted dataset (a folder of ``<home>/vintages``), or the seed (``id == "seed"``)."""

    id: str
    path: Path
    created_at: str = ""
    data_through: str = ""
    dataset_hash: str = ""
    rows_added: int = 0
    rows_revised: int = 0
    rows_removed: int = 0
    upstreams: dict[str, dict[str, str | None]] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.path if self.id == SEED_ID else self.path / DATA

    @property
    def raw_dir(self) -> Path:
        return self.path / RAW

    def describe(self) -> str:
        return "the seed data/" if self.id == SEED_ID else f"vintage {self.id}, data through {self.data_through}"


@dataclass(frozen=True)
class UpdateOutcome:
    """What an update did: the vintage made (None: nothing new), the vintage active before, the
    raw files that changed, and the one line that says so."""

    vintage: Vintage | None
    previous: Vintage
    changed: tuple[str, ...]
    message: str


# ============================================================================ reading
def seed_vintage(seed_dir: Path = SEED_DIR) -> Vintage:
    exports = Path(seed_dir) / EXPORTS_FILE
    through = _data_through(exports) if exports.is_file() else ""
    return Vintage(
        SEED_ID, Path(seed_dir), data_through=through, dataset_hash=_file_sha(exports) if exports.is_file() else ""
    )


def list_vintages(home: Path) -> list[Vintage]:
    """The vintages of ``home``, oldest first (folders of ``vintages/`` that are complete)."""
    folder = Path(home) / VINTAGES
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        if VINTAGE_ID.fullmatch(entry.name) and (entry / VINTAGE_FILE).is_file():
            found.append(_load_vintage(entry))
    return sorted(found, key=lambda v: int(v.id[1:]))


def active(home: Path | None, seed_dir: Path = SEED_DIR) -> Vintage:
    """The active vintage of ``home``: the latest one, else the seed."""
    vintages = list_vintages(home) if home is not None else []
    return vintages[-1] if vintages else seed_vintage(seed_dir)


def active_data_dir(home: Path | None, seed_dir: Path = SEED_DIR) -> Path:
    """The folder every reader reads: the active vintage's canonical files, else the seed ``data/``."""
    return active(home, seed_dir).data_dir


def vintage_at(home: Path | None, as_of: str | pd.Timestamp | None = None, seed_dir: Path = SEED_DIR) -> Vintage:
    """The vintage named by ``as_of`` (a vintage id or ``seed``), or the one active at the date
    ``as_of`` (the latest created on or before it; the seed before the first); None: the active one."""
    vintages = list_vintages(home) if home is not None else []
    if as_of is None:
        return vintages[-1] if vintages else seed_vintage(seed_dir)
    if isinstance(as_of, str) and (as_of == SEED_ID or VINTAGE_ID.fullmatch(as_of)):
        if as_of == SEED_ID:
            return seed_vintage(seed_dir)
        for v in vintages:
            if v.id == as_of:
                return v
        raise UpdateError(
            f"no vintage {as_of} in {Path(home) / VINTAGES if home else 'the data home'}; "
            f"have: {', '.join(v.id for v in vintages) or 'none (only the seed)'}"
        )
    when = pd.Timestamp(as_of)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    known = [v for v in vintages if pd.Timestamp(v.created_at) <= when]
    return known[-1] if known else seed_vintage(seed_dir)


def read(home: Path | None, as_of: str | pd.Timestamp | None = None, seed_dir: Path = SEED_DIR) -> pd.DataFrame:
    """The canonical frame (``unique_id, ds, y, source``) of the vintage :func:`vintage_at` picks."""
    from features.readers import read_embedded

    return read_embedded(vintage_at(home, as_of, seed_dir).data_dir)


def revisions(home: Path | None) -> pd.DataFrame:
    """Every revised (or withdrawn: ``new`` empty) value of every vintage: ``unique_id, ds, old, new, vintage``."""
    parts = [pd.read_parquet(v.path / REVISIONS_FILE) for v in (list_vintages(home) if home else [])]
    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in zip(REVISION_COLUMNS, ("object", "datetime64[ns]", "float64", "float64", "object"))
            }
        )
    return pd.concat(parts, ignore_index=True)


def export(home: Path | None, out: Path, seed_dir: Path = SEED_DIR) -> tuple[Vintage, list[Path]]:
    """Write the active vintage's canonical files (:data:`EXPORT_FILES`) into ``out``, atomically each."""
    vintage = active(home, seed_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in EXPORT_FILES:
        written.append(_copy_atomic(vintage.data_dir / name, out / name))
    return vintage, written


def _load_vintage(path: Path) -> Vintage:
    row = pd.read_parquet(path / VINTAGE_FILE).iloc[0]
    files = pd.read_parquet(path / UPSTREAMS_FILE) if (path / UPSTREAMS_FILE).is_file() else pd.DataFrame()
    ups = {
        str(r.rel): {
            "upstream": r.upstream,
            "sha256": r.sha256,
            "etag": r.etag if isinstance(r.etag, str) and r.etag else None,
        }
        for r in files.itertuples()
    }
    return Vintage(
        id=str(row["id"]),
        path=path,
        created_at=str(row["created_at"]),
        data_through=str(row["data_through"]),
        dataset_hash=str(row["dataset_hash"]),
        rows_added=int(row["rows_added"]),
        rows_revised=int(row["rows_revised"]),
        rows_removed=int(row["rows_removed"]),
        upstreams=ups,
    )


# ============================================================================ the update
def update(
    home: Path,
    upstreams: Mapping[str, str | None],
    local_raw: Path,
    *,
    policy: up.FetchPolicy,
    seed_dir: Path = SEED_DIR,
    client: httpx.Client | None = None,
) -> UpdateOutcome:
    """Fetch every upstream, and when a raw file changed, build the dataset from the new raw files
    in a staging folder with every check, compare it with the active data, and make it the active
    vintage. Raises :class:`UpdateError` (one line; the active data untouched) on any failure."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    with _update_lock(home):
        shutil.rmtree(home / STAGING, ignore_errors=True)  # debris of a killed update
        previous = active(home, seed_dir)
        staging = home / STAGING / uuid.uuid4().hex
        try:
            return _update(home, staging, previous, upstreams, Path(local_raw), policy, seed_dir, client)
        finally:
            shutil.rmtree(home / STAGING, ignore_errors=True)


def _update(
    home: Path,
    staging: Path,
    previous: Vintage,
    upstreams: Mapping[str, str | None],
    local_raw: Path,
    policy: up.FetchPolicy,
    seed_dir: Path,
    client: httpx.Client | None,
) -> UpdateOutcome:
    unchanged = f"the active data are unchanged ({previous.describe()})"
    raw_dir = staging / RAW
    records: dict[str, dict[str, str | None]] = {}
    changed: list[str] = []
    http = client or httpx.Client(timeout=policy.timeout, follow_redirects=True)
    try:
        for raw in up.RAW_FILES:
            target = upstreams.get(raw.rel)
            before = previous.upstreams.get(raw.rel, {})
            old_bytes = _read_if(previous.raw_dir / raw.rel) if previous.id != SEED_ID else None
            try:
                content, etag = _acquire(raw.rel, target, local_raw, policy, http, before, old_bytes)
            except up.UpstreamError as err:
                raise UpdateError(f"update refused: {err}; {unchanged}") from None
            digest = up.sha256(content)
            records[raw.rel] = {"upstream": target or str(local_raw / raw.rel), "sha256": digest, "etag": etag}
            if digest != before.get("sha256"):
                changed.append(raw.rel)
            _write(raw_dir / raw.rel, content)
    finally:
        if client is None:
            http.close()
    if previous.id != SEED_ID and not changed:
        return UpdateOutcome(None, previous, (), f"nothing new: every upstream is as in {previous.describe()}")
    vintage_dir = staging / "vintage"
    _build(raw_dir, vintage_dir / DATA, previous, records, changed, unchanged)
    os.replace(raw_dir, vintage_dir / RAW)
    for name in CARRIED_FILES:
        if (previous.data_dir / name).is_file():
            shutil.copyfile(previous.data_dir / name, vintage_dir / DATA / name)
    dataset_hash = _file_sha(vintage_dir / DATA / EXPORTS_FILE)
    if (
        previous.id == SEED_ID
        and dataset_hash == previous.dataset_hash
        and _file_sha(vintage_dir / DATA / INDICATORS_FILE) == _file_sha(previous.data_dir / INDICATORS_FILE)
    ):
        return UpdateOutcome(None, previous, tuple(changed), "nothing new: the upstreams hold the seed data/")
    vintage_id = _next_id(home)
    added, revised = _compare(previous.data_dir / EXPORTS_FILE, vintage_dir / DATA / EXPORTS_FILE, vintage_id)
    n_removed = int(revised["new"].isna().sum())
    vintage = Vintage(
        id=vintage_id,
        path=home / VINTAGES / vintage_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data_through=_data_through(vintage_dir / DATA / EXPORTS_FILE),
        dataset_hash=dataset_hash,
        rows_added=added,
        rows_revised=len(revised) - n_removed,
        rows_removed=n_removed,
        upstreams=records,
    )
    _write_metadata(vintage_dir, vintage, revised)
    _fsync_tree(vintage_dir)
    (home / VINTAGES).mkdir(exist_ok=True)
    os.rename(vintage_dir, vintage.path)  # the commit: the new vintage is active from here
    _fsync_dir(home / VINTAGES)
    return UpdateOutcome(
        vintage,
        previous,
        tuple(changed),
        (
            f"new vintage {vintage.id}: data through {vintage.data_through} (was {previous.data_through}), "
            f"{vintage.rows_added} rows added, {vintage.rows_revised} revised"
            + (f", {vintage.rows_removed} withdrawn" if vintage.rows_removed else "")
            + f"; {len(changed)} raw file{'s' if len(changed) != 1 else ''} changed"
        ),
    )


def _acquire(
    rel: str,
    target: str | None,
    local_raw: Path,
    policy: up.FetchPolicy,
    http: httpx.Client,
    before: Mapping[str, str | None],
    old_bytes: bytes | None,
) -> tuple[bytes, str | None]:
    """The checked bytes of one raw file and its ETag: fetched from its upstream (the previous
    copy when the upstream answered 304), or copied from the local raw folder."""
    if target is None:
        path = local_raw / rel
        if not path.is_file():
            raise up.UpstreamError(f"{path} ({rel}): local raw file not found (data.raw: {local_raw})")
        return path.read_bytes(), None
    etag = before.get("etag") if old_bytes is not None else None
    fetched = up.fetch(rel, target, policy=policy, client=http, etag=etag)
    if fetched.content is None:  # 304 Not Modified
        return old_bytes or b"", fetched.etag
    content = fetched.content
    extraction = up.needs_extraction(rel, target)
    if extraction == "export_10day":
        content = up.extract_export_10day(content, target, rel)
    up.check_raw_file(rel, target, content, previous=old_bytes)
    return content, fetched.etag


def _build(
    raw_dir: Path,
    out: Path,
    previous: Vintage,
    records: Mapping[str, Mapping[str, str | None]],
    changed: list[str],
    unchanged: str,
) -> None:
    from features.dataset_builder import DatasetCheckError, build_dataset

    out.mkdir(parents=True, exist_ok=True)
    try:
        build_dataset(raw_dir, out)
    except DatasetCheckError as err:
        message = " ".join(str(err).split())
        named = [rel for rel in up.files_named_by_check(message) if rel in records] or changed
        sources = ", ".join(f"{records[rel]['upstream']} ({rel})" for rel in named[:3])
        more = f" and {len(named) - 3} more" if len(named) > 3 else ""
        raise UpdateError(f"update refused: {sources}{more}: dataset check failed: {message}; {unchanged}") from None


def _compare(old_path: Path, new_path: Path, vintage_id: str) -> tuple[int, pd.DataFrame]:
    """Rows added, and the revisions (value changed, or withdrawn: ``new`` empty) of new vs old."""
    old = (
        _values(old_path)
        if old_path.is_file()
        else pd.DataFrame(
            {
                "unique_id": pd.Series(dtype=str),
                "ds": pd.Series(dtype="datetime64[ns]"),
                "y": pd.Series(dtype="float64"),
            }
        )
    )
    new = _values(new_path)
    merged = old.merge(new, on=["unique_id", "ds"], how="outer", suffixes=("_old", "_new"), indicator=True)
    added = int((merged["_merge"] == "right_only").sum())
    changed = merged.loc[
        (merged["_merge"] == "left_only") | ((merged["_merge"] == "both") & (merged["y_old"] != merged["y_new"]))
    ]
    table = (
        pd.DataFrame(
            {
                "unique_id": changed["unique_id"].astype(str),
                "ds": changed["ds"],
                "old": changed["y_old"].astype("float64"),
                "new": changed["y_new"].astype("float64"),
                "vintage": vintage_id,
            }
        )
        .sort_values(["unique_id", "ds"])
        .reset_index(drop=True)
    )
    return added, table


def _values(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, usecols=["unique_id", "ds", "y"], dtype={"unique_id": str})
    frame["ds"] = pd.to_datetime(frame["ds"])
    frame["y"] = frame["y"].astype("float64")
    return frame


def _data_through(exports: Path) -> str:
    frame = _values(exports)
    total = frame.loc[frame["unique_id"] == "total", "ds"]
    return f"{(total if not total.empty else frame['ds']).max():%Y-%m}"


def _next_id(home: Path) -> str:
    folder = home / VINTAGES
    numbers = [
        int(m.group(1)) for e in (folder.iterdir() if folder.is_dir() else []) if (m := VINTAGE_ID.fullmatch(e.name))
    ]
    return f"v{max(numbers, default=0) + 1:04d}"


def _write_metadata(folder: Path, vintage: Vintage, revised: pd.DataFrame) -> None:
    meta = pd.DataFrame(
        [
            {
                "id": vintage.id,
                "created_at": vintage.created_at,
                "data_through": vintage.data_through,
                "dataset_hash": vintage.dataset_hash,
                "rows_added": vintage.rows_added,
                "rows_revised": vintage.rows_revised,
                "rows_removed": vintage.rows_removed,
            }
        ]
    )
    meta.to_parquet(folder / VINTAGE_FILE, index=False)
    files = pd.DataFrame(
        [{"rel": rel, **rec} for rel, rec in sorted(vintage.upstreams.items())],
        columns=["rel", "upstream", "sha256", "etag"],
    ).astype({"etag": "object"})
    files.to_parquet(folder / UPSTREAMS_FILE, index=False)
    revised.to_parquet(folder / REVISIONS_FILE, index=False)


@contextlib.contextmanager
def _update_lock(home: Path) -> Iterator[None]:
    """One update at a time per data home (flock: released by the kernel if the process dies)."""
    handle = open(home / LOCK, "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpdateError(
                f"another update of {home} is running (lock {home / LOCK}); try again when it ends"
            ) from None
        yield
    finally:
        handle.close()


# ============================================================================ small file helpers
def _read_if(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if Path(path).is_file() else ""


def _copy_atomic(src: Path, dst: Path) -> Path:
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(src, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    for path in sorted([folder, *(p for p in folder.rglob("*") if p.is_dir())]):
        _fsync_dir(path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
