"""The one validation every source goes through: raw rows in, the canonical frame out.

The canonical frame (the data contract between modules) is a long DataFrame with

- ``unique_id``: str, the series id (``total``, ``item:<slug>``, ``destination:<slug>``),
- ``ds``: datetime64[ns], the month start (day 1, midnight),
- ``y``: float64, exports in USD, finite and >= 0 (any finite number in a signed series),
- any extra columns (e.g. ``source``), kept as they came,

sorted by ``unique_id, ds`` with a fresh RangeIndex. An unobserved month has no row.

Every reader (embedded dataset, user CSV, customs API) hands its raw rows to
:func:`check_frame`, which collects ALL problems. Strict (:func:`validate_frame`: the embedded
dataset, the customs API; a user CSV with ``data.strict``) it raises ONE
:class:`DataValidationError` listing the first 20, so a user fixes a file in one pass. Not strict
(a user CSV by default) a series with a bad row is left out (:class:`SeriesExclusion`, one
warning line each) and the other series are returned.

Conventions
-----------
Row locations. By default a row is named by its line in a CSV file: the header is line 1,
so the row at 0-based position ``i`` of the frame is ``line i + 2`` (true for a CSV without
blank lines or quoted line breaks; :func:`features.readers.read_user_csv` passes the exact
line numbers). Callers whose rows do not come from a file pass ``locations`` (one label per
row, e.g. ``"row 3"``).

Months. ``ds`` accepts ``YYYY-MM`` (canonical), ``YYYY-MM-01``, ``YYYYMM`` and ``YYYY.MM``
(the customs API's form), or timestamps. A full date whose day is not 1 (``2024-03-15``) is
an ERROR, not rounded down: a file of daily or weekly dates mislabelled as monthly would
otherwise be silently merged into duplicates or wrong months.

Values. ``y`` accepts plain numbers (``1234``, ``1234.5``, ``1.2e9``) and numbers with comma
thousands separators in groups of three (``1,234,567`` as Excel writes them). A decimal comma
(``1,5``) is rejected, not guessed. Empty cells, ``NaN`` and ``inf`` are errors: a month without
data must have no row (a gap stays a gap). A negative value is an error unless its series is
admitted as signed (``allow_negative``, ``signed``: a trade balance). A value more than
``plausibility_factor`` times its series' median absolute value is an error (the 1e30 of a typo).

Units. If a ``unit`` column exists, every row must say ``USD`` (case-insensitive); a series
with several units, or with another unit, is named with what was found.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa

from features.errors import DataWarning, ExportcastError  # noqa: F401 - DataWarning is raised by the readers

REQUIRED_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "y")
MAX_LISTED_ERRORS = 20
EXPECTED_MONTH_FORMS = "YYYY-MM or YYYY-MM-DD"
#: a value more than this many times its series' median absolute value is implausible (config
#: data.plausibility_factor), e.g. the 1e30 of a stray exponent
DEFAULT_PLAUSIBILITY_FACTOR = 1e6

# The output contract, checked on every frame validate_frame returns (a cheap guard that the
# code below keeps its promise; user-facing messages are the ones built by hand below).
CANONICAL_SCHEMA = pa.DataFrameSchema(
    {
        "unique_id": pa.Column(str, nullable=False),
        "ds": pa.Column("datetime64[ns]", nullable=False, checks=pa.Check(lambda s: s.dt.is_month_start)),
        "y": pa.Column("float64", nullable=False, checks=pa.Check.ge(0)),
    },
    strict=False,
    unique=["unique_id", "ds"],
)
# the same contract for a frame with signed series (--allow-negative, data.signed): y any finite number
SIGNED_SCHEMA = CANONICAL_SCHEMA.update_column("y", checks=[])

# YYYY-MM, YYYY-MM-DD, YYYYMM, YYYY.MM (whitespace around is tolerated)
_MONTH_PATTERN = re.compile(r"^(?P<year>\d{4})(?:-(?P<m1>\d{2})(?:-(?P<day>\d{2}))?|(?P<m2>\d{2})|\.(?P<m3>\d{2}))$")
_THOUSANDS_PATTERN = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")


class DataValidationError(ExportcastError, ValueError):
    """Input data breaks the canonical contract.

    ``str(error)`` is the full report (header + one problem per line); ``errors`` holds every
    problem found (not only the 20 listed in the message) and ``origin`` the file or API call.
    """

    def __init__(self, origin: str, errors: Sequence[str]):
        self.origin = origin
        self.errors: list[str] = list(errors)
        super().__init__(format_errors(origin, self.errors))

    def __reduce__(self):  # picklable: `exportcast run` gets it back from the pipeline process
        return (type(self), (self.origin, self.errors))


def format_errors(origin: str, errors: Sequence[str]) -> str:
    """``<origin>: N problem(s) found`` then the first 20 problems, one per line."""
    n = len(errors)
    noun = "problem" if n == 1 else "problems"
    shown = list(errors[:MAX_LISTED_ERRORS])
    header = f"{origin}: {n} {noun} found" + (f" (first {MAX_LISTED_ERRORS} listed)" if n > len(shown) else "")
    return header + "\n" + "\n".join(shown)


@dataclass(frozen=True)
class SeriesExclusion:
    """A series left out of the frame because of bad rows (:func:`check_frame`, not strict).

    ``problems`` holds every problem of the series, each a full message naming the file, row,
    column and reason, in file order."""

    unique_id: str
    problems: tuple[str, ...]

    def warning(self) -> str:
        """The ONE line a user sees: the series, its first bad row and reason, how many more."""
        more = len(self.problems) - 1
        tail = f" (+{more} more problem{'s' if more > 1 else ''} in this series)" if more else ""
        return f"series {self.unique_id!r} excluded, the other series are kept: {self.problems[0]}{tail}"


@dataclass(frozen=True)
class CheckedFrame:
    """What :func:`check_frame` returns: the canonical frame of the valid series and the
    series excluded with their problems (empty when strict or when every series is clean)."""

    frame: pd.DataFrame
    excluded: tuple[SeriesExclusion, ...] = ()


def validate_frame(
    df: pd.DataFrame,
    origin: str,
    *,
    known_series: Collection[str] | None = None,
    locations: Sequence[str] | None = None,
    allow_negative: bool = False,
    signed: Collection[str] = (),
    plausibility_factor: float | None = DEFAULT_PLAUSIBILITY_FACTOR,
) -> pd.DataFrame:
    """Check raw rows and return the canonical frame (see the module docstring), refusing the
    whole frame on any problem: :func:`check_frame` with ``strict=True`` (the embedded dataset
    and the customs API are read this way).

    Raises DataValidationError listing every problem (the first 20 in the message).
    """
    return check_frame(
        df,
        origin,
        known_series=known_series,
        locations=locations,
        strict=True,
        allow_negative=allow_negative,
        signed=signed,
        plausibility_factor=plausibility_factor,
    ).frame


def check_frame(
    df: pd.DataFrame,
    origin: str,
    *,
    known_series: Collection[str] | None = None,
    locations: Sequence[str] | None = None,
    strict: bool = True,
    allow_negative: bool = False,
    signed: Collection[str] = (),
    plausibility_factor: float | None = DEFAULT_PLAUSIBILITY_FACTOR,
) -> CheckedFrame:
    """THE validation: raw rows in, the canonical frame of the valid series out.

    ``origin`` names the file or API call in every message ("data/exports_monthly.csv",
    "customs API Newtrade 202501-202512"). ``known_series``, if given, is the set of allowed
    ``unique_id`` values. ``locations`` names each row (default ``line i + 2``, the CSV
    convention). The input frame is not modified.

    - ``strict``: any problem refuses the whole frame (DataValidationError listing them all).
      Not strict (a user's file, ``data.strict: false``): a series with a bad row (a value that
      is not a finite number, a month that is not a month, a duplicated month, a negative value
      in a series not admitted as signed, an implausible value, a unit other than USD) is left
      out and described in ``excluded``; the other series are returned. Problems that belong to
      no series (a missing column, an empty ``unique_id``, a series ``known_series`` lacks)
      still refuse the frame, and so does a frame whose every series is excluded (the error
      lists every problem, as strict).
    - ``allow_negative`` admits negative values in every series, ``signed`` in the series it
      names (a trade balance).
    - ``plausibility_factor``: a value whose absolute value exceeds this factor times its
      series' :func:`plausibility_scale` (the median of its absolute values) is a bad row; None:
      no check. Absolute values, so that a signed series whose median is near zero or negative
      is judged against its typical size. Only too-large values are bad: a zero or small month
      is a real figure.
    """
    _check_columns(df, origin)
    if locations is None:
        locations = [f"line {i + 2}" for i in range(len(df))]
    elif len(locations) != len(df):
        raise ValueError(f"{origin}: {len(locations)} locations given for {len(df)} rows")
    ids, id_ok = _clean_ids(df["unique_id"])
    rows = _RowProblems(origin, locations, ids, id_ok)
    ds, ds_ok, y, row_ok = _check_rows(df, rows, allow_negative, {str(s) for s in signed}, plausibility_factor)
    _check_duplicates(rows, ds, ds_ok, row_ok)
    series_errors, present, first_pos = _series_problems(df, rows, row_ok, known_series)
    problems = rows.messages() + series_errors
    excluded = _exclusions(problems, first_pos)
    if problems and (strict or excluded is None or len(excluded) == len(present)):
        raise DataValidationError(origin, [m for m, _ in problems])
    return CheckedFrame(_canonical_frame(df, ids, ds, y, excluded), tuple(excluded or ()))


def _check_columns(df: pd.DataFrame, origin: str) -> None:
    """A frame with the required columns and at least one row."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{origin}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        found = ", ".join(repr(str(c)) for c in df.columns) or "none"
        raise DataValidationError(
            origin,
            [
                f"{origin}: missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(c) for c in missing)} (found columns: {found}; "
                f"expected {', '.join(REQUIRED_COLUMNS)})"
            ],
        )
    if len(df) == 0:
        raise DataValidationError(origin, [f"{origin}: no data rows (the frame is empty)"])


@dataclass
class _RowProblems:
    """The problems found row by row: (row position, column order, message, its series; None:
    the row names no series), and how to name a row's cell."""

    origin: str
    locations: Sequence[str]
    ids: np.ndarray
    id_ok: np.ndarray
    found: list[tuple[int, int, str, str | None]] = field(default_factory=list)

    def where(self, pos: int, column: str) -> str:
        return f"{self.origin} {self.locations[pos]}, column {column}"

    def add(self, pos: int, column: str, message: str) -> None:
        self.found.append(
            (
                pos,
                REQUIRED_COLUMNS.index(column) if column in REQUIRED_COLUMNS else 3,
                message,
                str(self.ids[pos]) if self.id_ok[pos] else None,
            )
        )

    def messages(self) -> list[tuple[str, str | None]]:
        """(message, its series), in row order then column order."""
        return [(m, uid) for _, _, m, uid in sorted(self.found, key=lambda e: (e[0], e[1]))]


def _check_rows(
    df: pd.DataFrame,
    rows: _RowProblems,
    allow_negative: bool,
    signed_ids: set[str],
    plausibility_factor: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The parsed months, which parsed, the values, and which rows are usable; each bad cell is
    in ``rows``."""
    ids, id_ok, add, where = rows.ids, rows.id_ok, rows.add, rows.where
    for pos in np.flatnonzero(~id_ok):
        add(pos, "unique_id", f"{where(pos, 'unique_id')}: empty unique_id")

    ds, ds_problems = _parse_months(df["ds"])
    ds_ok = ~np.isin(np.arange(len(df)), list(ds_problems))
    for pos, problem in ds_problems.items():
        add(pos, "ds", f"{where(pos, 'ds')}: {problem}")

    y, y_problems = _parse_values(df["y"], nonnegative=False)
    raw_y = df["y"].tolist()
    for pos in np.flatnonzero(y < 0):  # negative: a problem unless the series is admitted as signed
        if not (allow_negative or (id_ok[pos] and ids[pos] in signed_ids)):
            y_problems[int(pos)] = f"{_shown(raw_y[pos])} is negative (exports in USD are >= 0)"
    for pos, problem in y_problems.items():
        add(pos, "y", f"{where(pos, 'y')}: {problem}")

    row_ok = id_ok & ds_ok & ~np.isin(np.arange(len(df)), list(y_problems))
    if plausibility_factor is not None:
        for pos, problem in _implausible(ids, y, row_ok, plausibility_factor).items():
            add(pos, "y", f"{where(pos, 'y')}: {_shown(raw_y[pos])} is implausible: {problem}")
            row_ok[pos] = False

    return ds, ds_ok, y, row_ok


def _check_duplicates(rows: _RowProblems, ds: np.ndarray, ds_ok: np.ndarray, row_ok: np.ndarray) -> None:
    """Duplicates among rows whose key parsed (2024-01 and 202401 are the same month): the
    later rows are problems and not usable."""
    ids, id_ok, origin, locations, add = rows.ids, rows.id_ok, rows.origin, rows.locations, rows.add
    keyed = pd.DataFrame({"unique_id": ids, "ds": ds, "pos": np.arange(len(ids))})[id_ok & ds_ok]
    dup = keyed.duplicated(["unique_id", "ds"], keep=False)
    if dup.any():
        for _, group in keyed[dup].groupby(["unique_id", "ds"], sort=False):
            first = int(group["pos"].iloc[0])
            for pos in group["pos"].iloc[1:]:
                pos = int(pos)
                uid, month = group["unique_id"].iloc[0], group["ds"].iloc[0].strftime("%Y-%m")
                add(
                    pos,
                    "ds",
                    f"{origin} {locations[pos]}: duplicate of {locations[first]} (unique_id {uid!r}, ds {month})",
                )
                row_ok[pos] = False


def _series_problems(
    df: pd.DataFrame, rows: _RowProblems, row_ok: np.ndarray, known_series: Collection[str] | None
) -> tuple[list[tuple[str, str | None]], pd.Index, dict[str, int]]:
    """Series-wide problems (message, its series; None: a problem of the file, not of one
    series): unknown series, units other than USD, no usable row. Also the series present and
    the first row of each."""
    ids, id_ok, origin, locations = rows.ids, rows.id_ok, rows.origin, rows.locations
    series_errors: list[tuple[str, str | None]] = []
    codes, present = pd.factorize(pd.Series(ids).where(id_ok), sort=True)  # -1 = empty id
    n_rows = np.bincount(codes[codes >= 0], minlength=len(present))
    n_usable = np.bincount(codes[(codes >= 0) & row_ok], minlength=len(present))
    first_pos = {uid: int(pos) for pos, uid in reversed(list(enumerate(ids))) if uid != ""}
    if known_series is not None:
        known = set(known_series)
        for k, uid in enumerate(present):
            if uid not in known:
                n = int(n_rows[k])
                series_errors.append(
                    (
                        f"{origin}, column unique_id: unknown series {uid!r} ({n} row{'s' if n > 1 else ''}, "
                        f"first at {locations[first_pos[uid]]}); known series: {_short_list(sorted(known))}",
                        None,
                    )
                )
    if "unit" in df.columns:
        units = pd.Series([_unit_text(u) for u in df["unit"]], dtype=object)
        found_units = pd.DataFrame({"code": codes, "unit": units, "key": units.str.upper()})[codes >= 0]
        found_units = found_units.drop_duplicates(["code", "key"])  # 'USD' and 'usd' are one unit
        for k, group in found_units.groupby("code", sort=True):
            uid, found = present[k], list(group["unit"])
            if len(found) > 1:
                series_errors.append(
                    (
                        f"{origin}, series {uid!r}, column unit: mixed units "
                        f"{', '.join(repr(u) for u in found)} (every value must be in USD)",
                        uid,
                    )
                )
            elif found[0].upper() != "USD":
                series_errors.append(
                    (f"{origin}, series {uid!r}, column unit: unit {found[0]!r} found (values must be in USD)", uid)
                )
    for k, uid in enumerate(present):
        if n_usable[k] == 0:
            n = int(n_rows[k])
            series_errors.append(
                (
                    f"{origin}, series {uid!r}: no usable row after cleaning "
                    f"(all {n} row{'s have' if n > 1 else ' has'} errors)",
                    uid,
                )
            )

    return series_errors, present, first_pos


def _canonical_frame(
    df: pd.DataFrame, ids: np.ndarray, ds: np.ndarray, y: np.ndarray, excluded: list[SeriesExclusion] | None
) -> pd.DataFrame:
    """The canonical frame of the series kept, checked against the output contract."""
    out = df.copy()
    out["unique_id"] = pd.Series(ids, index=df.index, dtype=object)
    out["ds"] = ds
    out["y"] = y.astype("float64")
    if excluded:
        out = out[~out["unique_id"].isin([e.unique_id for e in excluded])]
    extra = [c for c in df.columns if c not in REQUIRED_COLUMNS]
    out = out[list(REQUIRED_COLUMNS) + extra].sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    schema = SIGNED_SCHEMA if (out["y"] < 0).any() else CANONICAL_SCHEMA
    return schema.validate(out)


def _exclusions(problems: list[tuple[str, str | None]], first_pos: dict[str, int]) -> list[SeriesExclusion] | None:
    """The problems grouped by series, in the order the series first appear; None when a
    problem belongs to no series (the file must be refused). A series with no usable row is
    described by its rows' problems (the summary line is kept only when there are none)."""
    if any(uid is None for _, uid in problems):
        return None
    out = []
    for uid in sorted({uid for _, uid in problems}, key=lambda u: first_pos[u]):
        own = [m for m, u in problems if u == uid]
        rows = [m for m in own if "no usable row after cleaning" not in m]
        out.append(SeriesExclusion(uid, tuple(rows or own)))
    return out


def plausibility_scale(values: np.ndarray) -> float:
    """The scale a series' values are judged against: the median of their absolute values, or
    of their non-zero absolute values when more than half are zero (0.0 when all are)."""
    magnitude = np.abs(np.asarray(values, dtype=float))
    scale = float(np.median(magnitude)) if magnitude.size else 0.0
    if scale == 0.0 and (magnitude > 0).any():
        scale = float(np.median(magnitude[magnitude > 0]))
    return scale


def _implausible(ids: np.ndarray, y: np.ndarray, row_ok: np.ndarray, factor: float) -> dict[int, str]:
    """{row: why} for the usable rows whose absolute value exceeds ``factor`` times their series'
    :func:`plausibility_scale` (computed over the series' usable rows)."""
    problems: dict[int, str] = {}
    usable = pd.DataFrame({"uid": ids, "y": y, "pos": np.arange(len(y))})[row_ok]
    for _, group in usable.groupby("uid", sort=False):
        scale = plausibility_scale(group["y"].to_numpy())
        limit = factor * scale
        for pos, value in zip(group["pos"], group["y"]):
            if scale > 0 and abs(value) > limit:
                problems[int(pos)] = (
                    f"more than {factor:g} times the series' median absolute value {scale:.6g} "
                    f"(limit {limit:.6g}, data.plausibility_factor)"
                )
    return problems


def parse_month(value: object) -> pd.Timestamp:
    """One month in any accepted form -> its month-start Timestamp; ValueError with the reason."""
    month, problem = _parse_month(value)
    if problem is not None:
        raise ValueError(problem)
    return month


# ---------------------------------------------------------------------------------- helpers
def _is_missing(value: object) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _clean_ids(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """unique_id as stripped str; the mask says which rows have a non-empty id."""
    ids = np.array(["" if _is_missing(v) else str(v).strip() for v in column], dtype=object)
    return ids, ids != ""


def _parse_month(value: object) -> tuple[pd.Timestamp | None, str | None]:
    if _is_missing(value):
        return None, "empty month (expected YYYY-MM or YYYY-MM-DD)"
    if isinstance(value, pd.Period):
        if value.freqstr not in ("M", "ME"):
            return None, f"period {value!s} is not monthly"
        return value.to_timestamp(), None
    if isinstance(value, (pd.Timestamp, np.datetime64, datetime.date)):
        ts = pd.Timestamp(value)
        if ts.tz is not None:
            return None, f"{ts!s} has a timezone (month starts carry no timezone)"
        if ts.day != 1 or ts != ts.normalize():
            return None, f"{ts!s} is not a month start (day 1, midnight)"
        return ts, None
    text = str(value).strip()
    match = _MONTH_PATTERN.match(text)
    if match is None:
        return None, f"{text!r} is not a month (expected {EXPECTED_MONTH_FORMS})"
    year = int(match["year"])
    month = int(match["m1"] or match["m2"] or match["m3"])
    if not 1 <= month <= 12:
        return None, f"{text!r} is not a month (month {month:02d} out of 01-12; expected {EXPECTED_MONTH_FORMS})"
    if match["day"] is not None and match["day"] != "01":
        return None, f"{text!r} is not a month start (day {match['day']}; write YYYY-MM or YYYY-MM-01)"
    return pd.Timestamp(year=year, month=month, day=1), None


def _parse_months(column: pd.Series) -> tuple[np.ndarray, dict[int, str]]:
    """Month starts as datetime64[ns] (NaT where a problem is reported) and {row: problem}."""
    months = np.full(len(column), np.datetime64("NaT"), dtype="datetime64[ns]")
    problems: dict[int, str] = {}
    cache: dict[str, tuple[pd.Timestamp | None, str | None]] = {}  # a month repeats once per series
    for pos, value in enumerate(column.tolist()):
        if isinstance(value, str):
            if value not in cache:
                cache[value] = _parse_month(value)
            month, problem = cache[value]
        else:
            month, problem = _parse_month(value)
        if problem is not None:
            problems[pos] = problem
        else:
            months[pos] = month.to_datetime64()
    return months, problems


def _shown(value: object) -> str:
    """A raw cell as messages quote it: a string in quotes, a number as Python writes it."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, (int, float)) else repr(str(value).strip())


def _parse_value(value: object, nonnegative: bool = True) -> tuple[float, str | None]:
    if _is_missing(value):
        if isinstance(value, float) and math.isnan(value):
            return math.nan, "missing value NaN (an unobserved month must have no row)"
        return math.nan, "empty value (an unobserved month must have no row)"
    if isinstance(value, (bool, np.bool_)):
        return math.nan, f"{value!r} is not a number"
    if isinstance(value, (int, float, np.integer, np.floating)):
        number, raw = float(value), repr(value) if not isinstance(value, np.generic) else repr(value.item())
    else:
        raw = str(value).strip()
        if raw == "":
            return math.nan, "empty value (an unobserved month must have no row)"
        text = raw.replace(",", "") if _THOUSANDS_PATTERN.match(raw) else raw
        try:
            if "_" in text:  # float() would take "1_000"; a data file should not
                raise ValueError(text)
            number = float(text)
        except ValueError:
            return math.nan, f"{raw!r} is not a number"
        raw = repr(raw)
    if math.isnan(number):
        return math.nan, f"{raw} is not a number (NaN)"
    if math.isinf(number):
        return math.nan, f"{raw} is not a finite number"
    if number < 0 and nonnegative:
        return math.nan, f"{raw} is negative (exports in USD are >= 0)"
    return number, None


def _unit_text(value: object) -> str:
    return "" if _is_missing(value) else str(value).strip()


def _parse_values(column: pd.Series, nonnegative: bool = True) -> tuple[np.ndarray, dict[int, str]]:
    """Values as float64 and {row: problem}. Fast path: what pandas reads as a finite number
    (>= 0 when ``nonnegative``) is accepted; every other row goes through _parse_value for its
    verdict and message."""
    if pd.api.types.is_bool_dtype(column):
        fast = np.full(len(column), np.nan)
    else:
        fast = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    values = fast.copy()
    problems: dict[int, str] = {}
    raw = column.tolist()
    for pos in np.flatnonzero(~(np.isfinite(fast) & ((fast >= 0) | (not nonnegative)))):
        values[pos], problem = _parse_value(raw[pos], nonnegative)
        if problem is not None:
            problems[int(pos)] = problem
    return values, problems


def _short_list(items: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


# ====================================================================== indicator contract
# The indicator table (data/indicators_monthly.csv): a long table, one row per indicator and
# month, each value with the first date it was public. Separate from the export contract above:
# indicators are inputs a forecast may use once public, not series to forecast.
INDICATOR_COLUMNS: tuple[str, ...] = ("indicator", "ds", "value", "unit", "available_from", "source")
#: ``<release>_<cut>:<subject>``: the cut is ``10d`` (days 1-10), ``20d`` (days 1-20) or ``month``
INDICATOR_PATTERN = re.compile(r"^(?P<release>[a-z0-9]+)_(?P<cut>10d|20d|month|close):(?P<subject>[a-z0-9_]+)$")
#: (``close``: a market price at the close of the month's last trading day, e.g. ``phlx_close:sox``)
#: cumulative cuts in order: a part of a month cannot exceed a longer part or the whole month
CUT_ORDER: dict[str, int] = {"10d": 0, "20d": 1, "month": 2}
CUT_LABELS: dict[str, str] = {
    "10d": "days 1-10",
    "20d": "days 1-20",
    "month": "whole-month",
    "close": "month-end close",
}
#: the earliest day of the month a cut can be public (days 1-10 are complete on the 11th, ...);
#: a whole-month figure is public at the earliest on the 1st of the next month; a month-end close
#: on its last trading day, never before the 22nd (no exchange closes the month's last 9 days)
CUT_EARLIEST_DAY: dict[str, int] = {"10d": 11, "20d": 21, "close": 22}
#: units a value may have (as written -> canonical): export figures in USD; market prices
#: (``close`` cuts) in their currency or index points, price indices (``index``) as published
INDICATOR_UNITS: dict[str, str] = {"USD": "USD", "KRW": "KRW", "POINTS": "points", "INDEX": "index"}

INDICATOR_SCHEMA = pa.DataFrameSchema(
    {
        "indicator": pa.Column(str, checks=pa.Check.str_matches(INDICATOR_PATTERN.pattern)),
        "ds": pa.Column("datetime64[ns]", checks=pa.Check(lambda s: s.dt.is_month_start)),
        "value": pa.Column("float64", checks=pa.Check.ge(0)),
        "unit": pa.Column(str, checks=pa.Check.isin(list(INDICATOR_UNITS.values()))),
        "available_from": pa.Column("datetime64[ns]"),
        "source": pa.Column(str, checks=pa.Check.str_length(min_value=1)),
    },
    strict=False,
    unique=["indicator", "ds"],
)


def validate_indicators(df: pd.DataFrame, origin: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the indicator table; return ``(accepted, rejected)``.

    Structural problems (a missing column, a malformed indicator name, month, value, unit, date
    or source, a duplicate ``(indicator, ds)``, a figure dated public before it could exist)
    raise ONE :class:`DataValidationError` listing them, like :func:`validate_frame`.

    Rows that are well formed but implausible are NOT dropped: they are returned in ``rejected``
    with a ``reason``. The rule is generic (it names no row): within one subject and month,
    cumulative cuts must be ordered, days 1-10 <= days 1-20 <= whole month, whatever release each
    figure comes from. A part-month figure above a whole-month figure is rejected (the whole month
    is the complete count); where two part-month figures conflict with no whole month to tell
    which is wrong, both are rejected.

    Both frames are typed (``ds`` and ``available_from`` datetime64[ns], ``value`` float64) and
    sorted by ``indicator, ds``; ``rejected`` has the extra column ``reason``."""
    _check_indicator_columns(df, origin)
    rows = _IndicatorRows.parse(df)
    errors = _indicator_cell_errors(df, origin, rows) + _indicator_date_errors(origin, rows)
    if not errors:
        errors.extend(_price_series_problems(origin, rows.names, rows.ds, rows.values, rows.units))
    if errors:
        raise DataValidationError(origin, errors)

    out = pd.DataFrame(
        {
            "indicator": pd.Series(rows.names, dtype=object),
            "ds": rows.ds,
            "value": rows.values.astype("float64"),
            "unit": pd.Series(rows.units, dtype=object),
            "available_from": rows.available.astype("datetime64[ns]").to_numpy(),
            "source": [str(s).strip() for s in df["source"]],
        }
    )
    extra = [c for c in df.columns if c not in INDICATOR_COLUMNS]
    for column in extra:
        out[column] = df[column].to_numpy()
    reasons = _cut_order_rejections(out, [m["cut"] for m in rows.matches], [m["subject"] for m in rows.matches])
    rejected_mask = np.array([bool(r) for r in reasons])
    accepted = out[~rejected_mask].sort_values(["indicator", "ds"], kind="stable").reset_index(drop=True)
    rejected = out[rejected_mask].assign(reason=[r for r in reasons if r])
    rejected = rejected.sort_values(["indicator", "ds"], kind="stable").reset_index(drop=True)
    return INDICATOR_SCHEMA.validate(accepted), rejected


def _check_indicator_columns(df: pd.DataFrame, origin: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{origin}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in INDICATOR_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(
            origin,
            [
                f"{origin}: missing column{'s' if len(missing) > 1 else ''} {', '.join(repr(c) for c in missing)} "
                f"(expected {', '.join(INDICATOR_COLUMNS)})"
            ],
        )
    if len(df) == 0:
        raise DataValidationError(origin, [f"{origin}: no data rows (the table is empty)"])


@dataclass(frozen=True)
class _IndicatorRows:
    """The indicator table's cells parsed, with the problems of each column."""

    names: list[str]
    matches: list[re.Match[str] | None]
    ds: np.ndarray
    ds_problems: dict[int, str]
    values: np.ndarray
    value_problems: dict[int, str]
    units: list[str]
    available: pd.Series

    @classmethod
    def parse(cls, df: pd.DataFrame) -> _IndicatorRows:
        names = [("" if _is_missing(v) else str(v).strip()) for v in df["indicator"]]
        ds, ds_problems = _parse_months(df["ds"])
        values, value_problems = _parse_values(df["value"])
        available = pd.to_datetime(
            pd.Series(df["available_from"], dtype=object).map(lambda v: None if _is_missing(v) else str(v).strip()),
            format="%Y-%m-%d",
            errors="coerce",
        )
        return cls(
            names=names,
            matches=[INDICATOR_PATTERN.match(n) for n in names],
            ds=ds,
            ds_problems=ds_problems,
            values=values,
            value_problems=value_problems,
            units=[INDICATOR_UNITS.get(_unit_text(u).upper(), "") for u in df["unit"]],
            available=available,
        )


def _indicator_cell_errors(df: pd.DataFrame, origin: str, rows: _IndicatorRows) -> list[str]:
    """A malformed indicator name, month, value, unit, date or source, column by column."""
    errors: list[str] = []
    for pos, (name, match) in enumerate(zip(rows.names, rows.matches)):
        if match is None:
            errors.append(
                f"{origin} line {pos + 2}, column indicator: {name!r} is not "
                f"'<release>_<10d|20d|month|close>:<subject>' (lower case, digits, underscores)"
            )
    for pos, problem in rows.ds_problems.items():
        errors.append(f"{origin} line {pos + 2}, column ds: {problem}")
    for pos, problem in rows.value_problems.items():
        errors.append(f"{origin} line {pos + 2}, column value: {problem}")
    for pos, unit in enumerate(df["unit"]):
        if not rows.units[pos]:
            errors.append(
                f"{origin} line {pos + 2}, column unit: {_unit_text(unit)!r} (values must be in "
                f"{', '.join(INDICATOR_UNITS.values())})"
            )
    for pos in np.flatnonzero(rows.available.isna().to_numpy()):
        errors.append(
            f"{origin} line {pos + 2}, column available_from: "
            f"{df['available_from'].iloc[pos]!r} is not a date YYYY-MM-DD"
        )
    for pos, source in enumerate(df["source"]):
        if _unit_text(source) == "":
            errors.append(f"{origin} line {pos + 2}, column source: empty source")
    return errors


def _indicator_date_errors(origin: str, rows: _IndicatorRows) -> list[str]:
    """A figure dated public before it could exist, and a duplicate ``(indicator, ds)``."""
    errors: list[str] = []
    names, ds, available = rows.names, rows.ds, rows.available
    for pos, match in enumerate(rows.matches):
        if match is None or pos in rows.ds_problems or pd.isna(available.iloc[pos]):
            continue
        month = pd.Timestamp(ds[pos])
        cut = match["cut"]
        earliest = (
            month + pd.offsets.MonthBegin(1) if cut == "month" else month + pd.Timedelta(days=CUT_EARLIEST_DAY[cut] - 1)
        )
        if available.iloc[pos] < earliest:
            errors.append(
                f"{origin} line {pos + 2}, column available_from: {available.iloc[pos]:%Y-%m-%d} "
                f"is before the {CUT_LABELS[cut]} figure of {month:%Y-%m} could exist "
                f"({earliest:%Y-%m-%d})"
            )
    keyed = pd.DataFrame({"indicator": names, "ds": ds})
    for pos in np.flatnonzero(keyed.duplicated(keep="first").to_numpy()):
        first = int(np.flatnonzero(((keyed["indicator"] == names[pos]) & (keyed["ds"] == ds[pos])).to_numpy())[0])
        errors.append(
            f"{origin} line {pos + 2}: duplicate of line {first + 2} "
            f"(indicator {names[pos]!r}, ds {pd.Timestamp(ds[pos]):%Y-%m})"
        )
    return errors


def _price_series_problems(
    origin: str, names: list[str], ds: np.ndarray, values: np.ndarray, units: list[str]
) -> list[str]:
    """A price series (a unit other than USD: a market close, a price index) must have its rows in
    month order, positive values and no month missing inside its span: its changes over 6 and 12
    months are what a model reads, and a gap or a zero would make them up."""
    problems = []
    seen: dict[str, list[int]] = {}
    for pos, (name, unit) in enumerate(zip(names, units)):
        if unit != "USD":
            seen.setdefault(name, []).append(pos)
    for name, rows in seen.items():
        months = pd.DatetimeIndex([ds[p] for p in rows])
        for i in range(1, len(rows)):
            if months[i] <= months[i - 1]:
                problems.append(
                    f"{origin} line {rows[i] + 2}, indicator {name!r}: month {months[i]:%Y-%m} follows "
                    f"{months[i - 1]:%Y-%m} (a price series' rows must be in month order)"
                )
                break
        for p in rows:
            if not values[p] > 0:
                problems.append(
                    f"{origin} line {p + 2}, indicator {name!r}, column value: {values[p]:g} in "
                    f"{pd.Timestamp(ds[p]):%Y-%m} (a price must be positive)"
                )
                break
        span = pd.date_range(months.min(), months.max(), freq="MS")
        gaps = span.difference(months)
        if len(gaps):
            problems.append(
                f"{origin}, indicator {name!r}: month {gaps[0]:%Y-%m} missing inside its span "
                f"{span[0]:%Y-%m}..{span[-1]:%Y-%m} ({len(gaps)} month{'s' if len(gaps) > 1 else ''} missing)"
            )
    return problems


def _bn(value: float) -> str:
    return f"{value / 1e9:.3f} bn USD" if value >= 1e8 else f"{value:.0f} USD"


def _cut_order_rejections(frame: pd.DataFrame, cuts: list[str], subjects: list[str]) -> list[str]:
    """Per row: '' or why the row breaks the order of cumulative cuts (see validate_indicators)."""
    reasons = [""] * len(frame)
    groups: dict[tuple[str, pd.Timestamp], list[int]] = {}
    for pos, (subject, month) in enumerate(zip(subjects, frame["ds"])):
        groups.setdefault((subject, month), []).append(pos)
    values, names = frame["value"].to_numpy(), frame["indicator"].tolist()
    for (_, month), rows in groups.items():
        if len({cuts[p] for p in rows}) < 2:
            continue
        wholes = [p for p in rows if cuts[p] == "month"]
        parts = [p for p in rows if cuts[p] in CUT_EARLIEST_DAY and cuts[p] != "close"]
        for p in parts:  # a part of the month above the whole month: the part is wrong
            above = [w for w in wholes if values[p] > values[w]]
            if above:
                w = above[0]
                reasons[p] = (
                    f"{CUT_LABELS[cuts[p]]} figure {_bn(values[p])} exceeds the whole-month figure "
                    f"{_bn(values[w])} of the same month ({names[w]}): a part of a month cannot "
                    f"exceed the month"
                )
        for p in parts:  # days 1-10 above days 1-20, neither above the month: cannot tell which
            if reasons[p] or cuts[p] != "10d":
                continue
            for q in parts:
                if cuts[q] == "20d" and not reasons[q] and values[p] > values[q]:
                    clash = (
                        f"days 1-10 figure {_bn(values[p])} ({names[p]}) exceeds the days 1-20 figure "
                        f"{_bn(values[q])} ({names[q]}) of {pd.Timestamp(month):%Y-%m}: one of the two is "
                        f"wrong and nothing tells which"
                    )
                    reasons[p] = reasons[p] or clash
                    reasons[q] = clash
    return reasons
