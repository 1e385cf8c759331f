"""Readers: every source of monthly exports becomes the canonical frame through ONE validation.

- :func:`read_user_csv`: a user's long CSV ``unique_id,ds,y`` (extra columns kept).
- :func:`read_embedded`: the project's dataset ``data/exports_monthly.csv``.
- :func:`read_series_metadata`: ``data/series.csv``, one row per series.
- :func:`read_source`: the dispatcher used by the flows (``embedded`` | ``csv`` | ``customs_api``).

CSV files
---------
Encoding: UTF-8, UTF-8 with BOM, or cp949 (what Korean Excel writes for "CSV"). The bytes
are decoded as UTF-8 (a BOM is dropped) and, if that fails, as cp949; a file that is
neither is rejected naming the first undecodable byte.

Cells are read as text, nothing is converted by pandas (so ``2025.10`` stays a month, ``NA``
stays visible as the text found). Header names are stripped of surrounding spaces. Blank
lines are skipped but counted, so messages name the true line of the file (header = line 1).
A file that does not end with a line end gets a :class:`features.contract.DataWarning`
naming its last line: a download or copy cut mid-number would otherwise pass unnoticed.
Numbers may carry comma thousands separators (``"1,234,567"``, quoted as Excel writes it);
see :mod:`features.contract` for every rule.
"""

from __future__ import annotations

import csv
import io
import logging
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from features.contract import (
    DEFAULT_PLAUSIBILITY_FACTOR,
    DataValidationError,
    DataWarning,
    check_frame,
    parse_month,
    validate_frame,
)

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
EXPORTS_FILE = "exports_monthly.csv"
SERIES_FILE = "series.csv"
SOURCES = ("embedded", "csv", "customs_api")
SERIES_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "level",
    "name_en",
    "name_ko",
    "code",
    "unit",
    "first_month",
    "last_month",
    "n_obs",
    "n_missing",
    "sources",
)
ENCODINGS: tuple[str, ...] = ("utf-8-sig", "cp949")


def read_user_csv(
    path: Path | str,
    *,
    known_series: Collection[str] | None = None,
    strict: bool = False,
    allow_negative: bool = False,
    signed: Collection[str] = (),
    plausibility_factor: float | None = DEFAULT_PLAUSIBILITY_FACTOR,
) -> pd.DataFrame:
    """A user's long CSV (``unique_id, ds, y`` + extra columns) -> the canonical frame.

    A series with a bad row is left out with ONE :class:`DataWarning` naming the file, the
    series, the row and the reason, and the other series are returned; ``strict`` refuses the
    whole file instead (``features.contract.check_frame`` says which problems are a series' and
    which the file's, and how ``allow_negative``, ``signed`` and ``plausibility_factor`` work).

    Raises FileNotFoundError for a missing file and DataValidationError (naming the file,
    line, column and what was found) for a problem of the file or one in every series.
    """
    path = Path(path)
    raw, lines = _read_csv_cells(path)
    checked = check_frame(
        raw,
        str(path),
        known_series=known_series,
        locations=[f"line {n}" for n in lines],
        strict=strict,
        allow_negative=allow_negative,
        signed=signed,
        plausibility_factor=plausibility_factor,
    )
    for exclusion in checked.excluded:
        warnings.warn(exclusion.warning(), DataWarning, stacklevel=2)
    return checked.frame


def read_embedded(data_dir: Path | str | None = None) -> pd.DataFrame:
    """The embedded dataset ``<data_dir>/exports_monthly.csv`` (columns unique_id, ds, y,
    source), validated. When ``series.csv`` sits beside it, every unique_id must be listed
    there (the two files are built together)."""
    data_dir = _data_dir(data_dir)
    path = data_dir / EXPORTS_FILE
    known = None
    if (data_dir / SERIES_FILE).exists():
        known = read_series_metadata(data_dir)["unique_id"].tolist()
    raw, lines = _read_csv_cells(path)
    return validate_frame(raw, str(path), known_series=known, locations=[f"line {n}" for n in lines])


def read_series_metadata(data_dir: Path | str | None = None) -> pd.DataFrame:
    """``<data_dir>/series.csv`` with typed columns: ``first_month``/``last_month`` as month
    starts (datetime64[ns]), ``n_obs``/``n_missing`` as int64, the rest as str (``code``
    keeps its leading zeros; an empty cell is an empty string)."""
    path = _data_dir(data_dir) / SERIES_FILE
    raw, lines = _read_csv_cells(path)
    origin = str(path)
    missing = [c for c in SERIES_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(
            origin,
            [
                f"{origin}: missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} "
                f"(found columns: {', '.join(repr(c) for c in raw.columns) or 'none'})"
            ],
        )
    errors: list[str] = []
    out = raw.copy()
    ids = out["unique_id"].str.strip()
    for pos in ids.index[ids == ""]:
        errors.append(f"{origin} line {lines[pos]}, column unique_id: empty unique_id")
    for pos in ids.index[ids.duplicated() & (ids != "")]:
        first = ids.index[ids == ids[pos]][0]
        errors.append(f"{origin} line {lines[pos]}, column unique_id: duplicate of line {lines[first]} ({ids[pos]!r})")
    out["unique_id"] = ids
    for column in ("first_month", "last_month"):
        parsed = []
        for pos, text in out[column].items():
            try:
                parsed.append(parse_month(text))
            except ValueError as err:
                errors.append(f"{origin} line {lines[pos]}, column {column}: {err}")
                parsed.append(pd.NaT)
        out[column] = pd.to_datetime(pd.Series(parsed, index=out.index, dtype="object")).astype("datetime64[ns]")
    for column in ("n_obs", "n_missing"):
        text = out[column].str.strip()
        bad = ~text.str.fullmatch(r"\d+")
        for pos in text.index[bad]:
            errors.append(
                f"{origin} line {lines[pos]}, column {column}: {text[pos]!r} is not a count (expected 0, 1, 2, ...)"
            )
        out[column] = pd.to_numeric(text.where(~bad, "0")).astype("int64")
    if errors:
        raise DataValidationError(origin, errors)
    return out.reset_index(drop=True)


def read_source(
    kind: str,
    *,
    path: Path | str | None = None,
    series: Collection[str] | None = None,
    customs: Any = None,
    data_dir: Path | str | None = None,
    checks: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The canonical frame from the configured source, restricted to ``series`` if given.

    - ``"embedded"``: :func:`read_embedded` (``data_dir`` overrides the repo's ``data/``);
    - ``"csv"``: :func:`read_user_csv` on ``path`` (required);
    - ``"customs_api"``: the Korea Customs Service open API (key in ``KCS_SERVICE_KEY``);
      ``customs`` holds ``start``, ``end`` (YYYYMM), ``hs_to_item`` ({item id: [HS codes]})
      and optionally ``countries`` ({destination id: ISO code}), ``base_url`` and ``client`` (a
      :class:`features.customs_api.CustomsClient`), as a mapping or an object with those
      attributes. Only the calls needed for ``series`` are made.

    ``checks``: the keyword arguments of :func:`read_user_csv` for a ``"csv"`` source
    (``strict``, ``allow_negative``, ``signed``, ``plausibility_factor``: config ``data``); the
    embedded dataset and the customs API are always read strictly.

    A requested series that the source does not have is a DataValidationError naming it.
    """
    if kind not in SOURCES:
        raise ValueError(f"unknown data source {kind!r}: expected one of {', '.join(SOURCES)}")
    wanted = None if series is None else list(dict.fromkeys(str(s) for s in series))
    if wanted is not None and not wanted:
        raise ValueError("series: an empty list selects nothing; use None for every series")
    if kind == "embedded":
        frame = read_embedded(data_dir)
        origin = str(_data_dir(data_dir) / EXPORTS_FILE)
    elif kind == "csv":
        if path is None:
            raise ValueError("data source 'csv' needs a path (config key data.path)")
        frame = read_user_csv(path, **dict(checks or {}))
        origin = str(path)
    else:
        frame, origin = _read_customs(customs, wanted)
    if wanted is None:
        return frame
    unknown = [s for s in wanted if s not in set(frame["unique_id"])]
    if unknown:
        available = sorted(set(frame["unique_id"]))
        shown = ", ".join(repr(s) for s in available[:15]) + (", ..." if len(available) > 15 else "")
        raise DataValidationError(
            origin,
            [
                f"{origin}: requested series not found: {', '.join(repr(s) for s in unknown)} "
                f"(the source has {len(available)} series: {shown})"
            ],
        )
    return frame[frame["unique_id"].isin(wanted)].reset_index(drop=True)


# ---------------------------------------------------------------------------------- helpers
def _data_dir(data_dir: Path | str | None) -> Path:
    return DEFAULT_DATA_DIR if data_dir is None else Path(data_dir)


def _decode(path: Path, payload: bytes) -> str:
    failures = []
    for encoding in ENCODINGS:
        try:
            text = payload.decode(encoding)
        except UnicodeDecodeError as err:
            failures.append(f"{encoding}: byte 0x{payload[err.start]:02x} at offset {err.start}")
            continue
        if encoding != ENCODINGS[0]:
            log.info("%s decoded as %s", path, encoding)
        return text
    raise DataValidationError(
        str(path), [f"{path}: cannot decode the file as UTF-8 or cp949 ({'; '.join(failures)}); save it as 'CSV UTF-8'"]
    )


def _read_csv_cells(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """Every cell as stripped-header text, and the file line number of each row."""
    if not path.exists():
        raise FileNotFoundError(2, f"{path}: no such file", str(path))
    if path.is_dir():
        raise IsADirectoryError(21, f"{path}: is a directory, expected a CSV file", str(path))
    text = _decode(path, path.read_bytes())
    if text and not text.endswith(("\n", "\r")):
        last = text.splitlines()[-1]
        warnings.warn(
            f"{path} line {len(text.splitlines())}: the file does not end with a line end, so its last line may "
            f"be cut short (it reads {last!r}); check it against the source",
            DataWarning,
            stacklevel=3,
        )
    rows: list[list[str]] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    errors: list[str] = []
    ended = 0  # line on which the previous record ended (a quoted cell may span lines)
    try:
        for row in reader:
            line, ended = ended + 1, reader.line_num
            if not row or all(cell.strip() == "" for cell in row):
                continue  # blank line: skipped, but counted by line_num
            if header is None:
                header = [cell.strip() for cell in row]
                continue
            rows.append(row)
            lines.append(line)
    except csv.Error as err:
        raise DataValidationError(str(path), [f"{path} line {reader.line_num}: not a valid CSV line ({err})"]) from None
    if header is None:
        raise DataValidationError(str(path), [f"{path}: the file is empty (no header line)"])
    for row, line in zip(rows, lines):
        if len(row) != len(header):
            errors.append(f"{path} line {line}: {len(row)} fields, the header has {len(header)}")
    if errors:
        raise DataValidationError(str(path), errors)
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise DataValidationError(
            str(path), [f"{path} line 1: duplicate column name {', '.join(map(repr, duplicated))}"]
        )
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    return frame, lines


def _customs_option(customs: Any, name: str, default: Any = None) -> Any:
    if customs is None:
        return default
    if isinstance(customs, Mapping):
        return customs.get(name, default)
    return getattr(customs, name, default)


def _read_customs(customs: Any, wanted: list[str] | None) -> tuple[pd.DataFrame, str]:
    from features import customs_api  # local: only this source needs httpx

    start, end = _customs_option(customs, "start"), _customs_option(customs, "end")
    if start is None or end is None:
        raise ValueError("data source 'customs_api' needs data.customs.start and data.customs.end (YYYYMM)")
    start, end = str(start), str(end)
    hs_to_item = dict(_customs_option(customs, "hs_to_item") or {})
    countries = _customs_option(customs, "countries")
    countries = dict(customs_api.DEFAULT_COUNTRIES if countries is None else countries)
    client = _customs_option(customs, "client")

    def needed(uid: str) -> bool:
        return wanted is None or uid in wanted

    hs_to_item = {uid: codes for uid, codes in hs_to_item.items() if needed(uid)}
    countries = {uid: code for uid, code in countries.items() if needed(uid)}
    origin = f"customs API {start}-{end}"
    own_client = client is None
    if own_client:
        base_url = _customs_option(customs, "base_url")
        client = customs_api.CustomsClient(**({"base_url": str(base_url)} if base_url else {}))
    try:
        frames = []
        if needed("total"):
            frames.append(customs_api.fetch_total(start, end, client=client))
        if hs_to_item:
            frames.append(customs_api.fetch_items(hs_to_item, start, end, client=client))
        if countries:
            frames.append(customs_api.fetch_countries(countries, start, end, client=client))
    finally:
        if own_client:
            client.close()
    frames = [f for f in frames if len(f)]
    if not frames:
        raise DataValidationError(origin, [f"{origin}: the API returned no month for the requested series"])
    frame = pd.concat(frames, ignore_index=True).sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    return frame, origin


# ---------------------------------------------------------------------------------- indicators
INDICATORS_FILE = "indicators_monthly.csv"


def read_indicators(data_dir: Path | str | None = None, *, as_of: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """``<data_dir>/indicators_monthly.csv`` through the indicator contract
    (:func:`features.contract.validate_indicators`): columns ``indicator, ds, value, unit,
    available_from, source`` with ``ds``/``available_from`` as datetime64[ns] and ``value`` as
    float64 (USD), sorted by ``indicator, ds``.

    ``as_of`` (a date) keeps only the values public on that day (``available_from <= as_of``): the
    information set of a forecast made then. The committed table holds only accepted rows (the
    builder writes rejected ones to ``indicators_rejected.csv``), so a row the contract rejects
    here is an error naming its line and reason."""
    return read_indicator_csv(_data_dir(data_dir) / INDICATORS_FILE, as_of=as_of)


def read_indicator_csv(path: Path | str, *, as_of: str | pd.Timestamp | None = None) -> pd.DataFrame:
    """An indicator table in the format of ``indicators_monthly.csv`` at any ``path`` (a user's
    flash figures, ``data.indicators_path``), read and checked exactly as :func:`read_indicators`."""
    from features.contract import validate_indicators

    path = Path(path)
    raw, lines = _read_csv_cells(path)
    accepted, rejected = validate_indicators(raw, str(path))
    if len(rejected):
        raise DataValidationError(
            str(path), [f"{path}: {r.indicator} {r.ds:%Y-%m}: {r.reason}" for r in rejected.itertuples()]
        )
    if as_of is not None:
        cut = pd.Timestamp(as_of)
        accepted = accepted[accepted["available_from"] <= cut].reset_index(drop=True)
    return accepted
