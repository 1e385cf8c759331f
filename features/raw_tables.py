"""Reading the staged raw files: the parsing rules shared by the dataset builder
(:mod:`features.dataset_builder`) and the indicator table (:mod:`features.indicators`).

A raw CSV is read as strings with its required columns checked; months and USD amounts are
parsed exactly (decimal arithmetic, whole dollars), a repeated month is an error, and every
message names the file, line and column. Output CSVs are written atomically.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd

EXPORT_10DAY = "jroh7115-arch+macro-dashboard/export_10day.csv"
CUSTOMS_FLASH = "rohan-joshua-git+south-korea-export-forecast/customs_flash.csv"
WSTS = "rohan-joshua-git+south-korea-export-forecast/wsts_billings.csv"

TENDAY_CUTS = ("01~10", "01~20", "월전체")


class DatasetCheckError(ValueError):
    """A raw file is malformed, two sources disagree beyond tolerance, or the built dataset fails
    a check (anchors, duplicates, non-finite or negative values, missing source)."""


Monthly = dict[str, int]  # "YYYY-MM" -> USD


def read_raw_table(
    raw_dir: Path, rel: str, required: Iterable[str], error: type[Exception] | None = None
) -> pd.DataFrame:
    """A raw third-party CSV as strings (no NA guessing: 'NA' is Namibia; BOM tolerated, CRLF
    handled by the parser), with its required columns checked; ``error`` is the exception raised
    (default DatasetCheckError), naming the file."""
    error = error or DatasetCheckError
    path = raw_dir / rel
    if not path.is_file():
        raise error(f"{rel}: file not found under {raw_dir}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise error(f"{rel}: missing column(s) {missing}; found {list(frame.columns)}")
    return frame


def parse_raw_month(text: str, rel: str, line: int, column: str) -> str:
    """'2025-01' or '2025-01-01' -> '2025-01'."""
    value = text.strip()
    if len(value) == 10 and value.endswith("-01"):
        value = value[:7]
    if len(value) != 7 or value[4] != "-" or not (value[:4] + value[5:]).isdigit() or not 1 <= int(value[5:]) <= 12:
        raise DatasetCheckError(
            f"{rel} line {line}, column {column}: expected a month YYYY-MM or YYYY-MM-01, found {text!r}"
        )
    return value


def parse_raw_usd(text: str, rel: str, line: int, column: str, scale: int = 1) -> int:
    """Exact whole-dollar value of ``text * scale``; raises unless finite, >= 0 and whole."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise DatasetCheckError(f"{rel} line {line}, column {column}: not a number: {text!r}") from None
    if not number.is_finite() or number < 0:
        raise DatasetCheckError(
            f"{rel} line {line}, column {column}: expected a finite non-negative amount, found {text!r}"
        )
    usd = number * scale
    if usd != usd.to_integral_value():
        raise DatasetCheckError(
            f"{rel} line {line}, column {column}: {text!r} x {scale} is not a whole number of dollars"
        )
    return int(usd)


def collect_months(rows: Iterable[tuple[str, int, int]], rel: str, label: str) -> Monthly:
    """(month, usd, line) rows -> month -> usd; a repeated month is an error."""
    out: Monthly = {}
    lines: dict[str, int] = {}
    for month, usd, line in rows:
        if month in out:
            raise DatasetCheckError(f"{rel}: duplicate month {month} for {label} (lines {lines[month]} and {line})")
        out[month], lines[month] = usd, line
    return out


def line_number(index: int) -> int:
    """The file line of the ``index``-th data row."""
    return index + 2  # header is line 1


def read_export_10day(raw_dir: Path) -> dict[tuple[str, str], Monthly]:
    """The customs provisional file: (item as in the source, cut) -> months, thousand USD -> USD.
    Cuts: '01~10' (days 1-10), '01~20' (days 1-20), '월전체' (the whole month)."""
    frame = read_raw_table(raw_dir, EXPORT_10DAY, ["month", "period", "item", "export_1000usd"])
    rows: dict[tuple[str, str], list[tuple[str, int, int]]] = defaultdict(list)
    for i, rec in enumerate(frame.itertuples(index=False)):
        line = line_number(i)
        cut = rec.period.strip()
        if cut not in TENDAY_CUTS:
            raise DatasetCheckError(
                f"{EXPORT_10DAY} line {line}, column period: expected one of "
                f"{', '.join(TENDAY_CUTS)}, found {rec.period!r}"
            )
        rows[(rec.item.strip(), cut)].append(
            (
                parse_raw_month(rec.month, EXPORT_10DAY, line, "month"),
                parse_raw_usd(rec.export_1000usd, EXPORT_10DAY, line, "export_1000usd", scale=1000),
                line,
            )
        )
    return {key: collect_months(r, EXPORT_10DAY, f"{key[0]} {key[1]}") for key, r in rows.items()}


def write_csv_atomic(path: Path, header: Iterable[str], rows: Iterable[Iterable[object]]) -> None:
    """Write a CSV (UTF-8, ``\\n`` line ends, minimal quoting) by replacing ``path`` atomically:
    readers see the old file or the new one, never half of it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(buffer.getvalue())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the data files are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
