"""Institutional projections of Korea's exports and the annual actuals, normalised.

    build_projections(Path("../shared/data/projections"), Path("data"))

Reads ``projections.csv`` and ``actuals.csv`` (see that folder's README) and writes, byte for
byte deterministically (UTF-8, ``\\n`` line ends, sorted rows, atomic replace):

- ``institutional_projections.csv``: every input row (241), with the institution's short name,
  the publication date as ISO where the raw text is an exact date, the kind of projection
  (``pre-year outlook``, ``mid-year revision``, ``target``, ``survey``), the flag
  ``published_in_target_year`` and the scope mapped to one of our series ids (blank when the
  scope is not a series of ours). Figures are parsed into numbers only where the raw text is a
  plain number; ranges and bounds (``540-550``, ``>600``) leave the number blank and are kept,
  as printed, in ``projected_usd_bn_raw`` / ``projected_growth_pct_raw``.
- ``annual_actuals.csv``: every row of ``actuals.csv`` with the year as an integer, the
  part-year qualifier (``Jan-Nov``) in ``partial_year`` and the scope mapped like above.

Every mapping table below is exhaustive for the staged files: an institution or scope that is not
in a table raises ``ProjectionsError`` naming the file, line and value, so a new row cannot slip
through unmapped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.raw_tables import read_raw_table, write_csv_atomic

PROJECTIONS_IN = "projections.csv"
ACTUALS_IN = "actuals.csv"
PROJECTIONS_OUT = "institutional_projections.csv"
ACTUALS_OUT = "annual_actuals.csv"

PROJECTION_COLUMNS = (
    "institution",
    "institution_raw",
    "published",
    "published_raw",
    "published_in_target_year",
    "target_year",
    "kind",
    "scope",
    "unique_id",
    "projected_usd_bn",
    "projected_growth_pct",
    "source_url",
    "source_title",
    "note",
    "projected_usd_bn_raw",
    "projected_growth_pct_raw",
)
ACTUAL_COLUMNS = (
    "year",
    "unique_id",
    "actual_usd_bn",
    "actual_growth_pct",
    "source_url",
    "note",
    "scope",
    "partial_year",
    "actual_usd_bn_raw",
    "actual_growth_pct_raw",
)

KINDS = ("pre-year outlook", "mid-year revision", "target", "survey")

# institution as printed -> short name. The trade ministry is MOTIE under all of its names (MKE
# until 2013, MOTIE, MOTIR); FKI's think tank KERI ran the 2022 company survey with it.
INSTITUTIONS: dict[str, str] = {
    "KITA IIT": "KITA",
    "KIET": "KIET",
    "MKE/MOTIE (trade ministry)": "MOTIE",
    "KOTRA": "KOTRA",
    "Bank of Korea": "BOK",
    "KDI": "KDI",
    "Hyundai Research Institute": "HRI",
    "LG Economic Research Institute": "LGERI",
    "KEXIM Overseas Economic Research Institute": "KEXIM",
    "KCCI with industry associations": "KCCI",
    "KDB (Korea Development Bank)": "KDB",
    "OECD": "OECD",
    "National Assembly Budget Office": "NABO",
    "Korea Economic Research Institute (KERI)": "KERI",
    "FKI company survey": "FKI",
    "FKI/KERI company survey": "FKI",
    "KIAF (Korea Industry Alliance Forum)": "KIAF",
}

# scope base (the text before any " (" qualifier) -> series id; "" = not a series of ours.
# Left blank on purpose: aggregates (ICT devices, N major industries, groups), narrower or
# different categories (SSD, bio, electric vehicles, food & beverages vs agri-fishery-food,
# "batteries" whose category is not stated), regions that are not ours (Europe is not the EU,
# North America is not the US), and KDI's "goods exports" (possibly national accounts).
SCOPES: dict[str, str] = {
    "total exports": "total",
    "goods exports": "",
    # the institutions' semiconductor outlooks and actuals are on the ministry's MTI 831 basis:
    # the KOSIS series (2013+), not the customs-MTI 2026-basis item:semiconductors (2022+), which
    # differs by more than 1% in 2022 (see features.dataset_builder)
    "semiconductors": "item:semiconductors_ministry",
    "automobiles": "item:automobiles",
    "auto parts": "item:auto_parts",
    "ships": "item:ships",
    "ships incl. offshore": "item:ships",  # MTI 746 includes offshore structures
    "general machinery": "item:general_machinery",
    "petroleum products": "item:petroleum_products",
    "petroleum refining": "item:petroleum_products",  # KIET's name for the same industry
    "petrochemicals": "item:petrochemicals",
    "steel": "item:steel",
    "displays": "item:displays",
    "wireless communication devices": "item:wireless_devices",
    "computers": "item:computers",
    "home appliances": "item:home_appliances",
    "textiles": "item:textiles",
    "secondary batteries": "item:secondary_batteries",
    "lithium secondary batteries": "item:secondary_batteries",
    "bio-health": "item:bio_health",
    "exports to China": "destination:china",
    "exports to Japan": "destination:japan",
    "exports to India": "destination:india",
    "exports to ASEAN": "destination:asean",
    "exports to Europe": "",
    "exports to North America": "",
    "batteries": "",
    "bio": "",
    "electric vehicles": "",
    "SSD": "",
    "ICT devices": "",
    "food & beverages": "",
    "IT new-industry group": "",
    "machinery group": "",
    "materials group": "",
    "10 major industries": "",
    "11 key industries": "",
    "12 major industries": "",
    "13 major industries": "",
}

# scope qualifiers (text inside the parentheses) that decide the kind; anything else (customs,
# outlook, minister remark, ...) leaves the decision to the publication date.
_MID_YEAR = re.compile(r"mid-year|revision|revised|in-year")
_TARGET = re.compile(r"\btarget\b")
_SURVEY = re.compile(r"\bsurvey\b")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR_MONTH = re.compile(r"^(\d{4})(?:-(\d{2}))?")
_CITED = re.compile(r"cited (\d{4})-(\d{2})-\d{2}")


class ProjectionsError(ValueError):
    """A projections or actuals row cannot be normalised (unknown institution or scope, bad year)."""


@dataclass(frozen=True)
class _When:
    """What the raw 'published' text says: an exact ISO date, or the year (and month) known."""

    iso: str  # "" unless the raw text is exactly YYYY-MM-DD
    year: int | None
    month: int | None
    cited_only: bool  # only a citation date is known (publication was on or before it)


def _parse_published(raw: str) -> _When:
    text = raw.strip()
    if _ISO_DATE.fullmatch(text):
        pd.Timestamp(text)  # raises on an impossible date such as 2021-02-30
        return _When(text, int(text[:4]), int(text[5:7]), False)
    match = _YEAR_MONTH.match(text)
    if match:
        return _When("", int(match.group(1)), int(match.group(2)) if match.group(2) else None, False)
    cited = _CITED.search(text)
    if cited:
        return _When("", int(cited.group(1)), int(cited.group(2)), True)
    return _When("", None, None, True)


def _kind(scope: str, institution_raw: str, note: str, when: _When, target_year: int) -> str:
    """survey > target > mid-year revision (stated in scope or note) > by date: published in the
    target year after January means in-year; otherwise a pre-year outlook (the ministry's and
    KOTRA's January outlooks count here, flagged by published_in_target_year)."""
    scope_l, note_l = scope.lower(), note.lower()
    if _SURVEY.search(scope_l) or _SURVEY.search(institution_raw.lower()):
        return "survey"
    if _TARGET.search(scope_l):
        return "target"
    if _MID_YEAR.search(scope_l) or note_l.startswith("in-year"):
        return "mid-year revision"
    if (
        when.year is not None
        and when.year >= target_year
        and not when.cited_only
        and when.month is not None
        and when.month > 1
    ):
        return "mid-year revision"
    return "pre-year outlook"


def _in_target_year(when: _When, target_year: int) -> bool:
    """True when the publication is known to fall in the target year or later, or when only a
    citation date in the target year is known (then it is not shown to precede the year)."""
    return when.year is not None and when.year >= target_year


def _number(raw: str) -> str:
    """A plain decimal number as printed; anything else (range, bound, blank) -> ''."""
    text = raw.strip()
    return text if re.fullmatch(r"[+-]?\d+(\.\d+)?", text) else ""


def _map_scope(scope: str, rel: str, line: int) -> str:
    base = scope.split(" (")[0].strip()
    if base not in SCOPES:
        raise ProjectionsError(
            f"{rel} line {line}, column scope: unknown scope {scope!r}; add {base!r} to features.projections.SCOPES"
        )
    return SCOPES[base]


def _read(directory: Path, name: str, required: Iterable[str]) -> pd.DataFrame:
    return read_raw_table(directory, name, required, error=ProjectionsError)


def _year(raw: str, rel: str, line: int, column: str) -> tuple[int, str]:
    """'2025' -> (2025, ''); '2025 (Jan-Nov)' -> (2025, 'Jan-Nov')."""
    match = re.fullmatch(r"(\d{4})(?:\s*\(([^)]*)\))?", raw.strip())
    if not match:
        raise ProjectionsError(f"{rel} line {line}, column {column}: expected a year, found {raw!r}")
    return int(match.group(1)), (match.group(2) or "").strip()


def normalise_projections(raw: pd.DataFrame, rel: str = PROJECTIONS_IN) -> pd.DataFrame:
    """Raw projections rows -> the normalised table (columns PROJECTION_COLUMNS), sorted."""
    records = []
    for i, row in enumerate(raw.to_dict("records")):
        line = i + 2
        institution_raw = row["institution"].strip()
        if institution_raw not in INSTITUTIONS:
            raise ProjectionsError(
                f"{rel} line {line}, column institution: unknown institution "
                f"{institution_raw!r}; add it to features.projections.INSTITUTIONS"
            )
        target_year, _ = _year(row["target_year"], rel, line, "target_year")
        when = _parse_published(row["published"])
        records.append(
            {
                "institution": INSTITUTIONS[institution_raw],
                "institution_raw": institution_raw,
                "published": when.iso,
                "published_raw": row["published"].strip(),
                "published_in_target_year": "true" if _in_target_year(when, target_year) else "false",
                "target_year": target_year,
                "kind": _kind(row["scope"], institution_raw, row["note"], when, target_year),
                "scope": row["scope"].strip(),
                "unique_id": _map_scope(row["scope"], rel, line),
                "projected_usd_bn": _number(row["projected_usd_bn"]),
                "projected_growth_pct": _number(row["projected_growth_pct"]),
                "source_url": row["source_url"].strip(),
                "source_title": row["source_title"].strip(),
                "note": row["note"].strip(),
                "projected_usd_bn_raw": row["projected_usd_bn"].strip(),
                "projected_growth_pct_raw": row["projected_growth_pct"].strip(),
                "_line": line,
            }
        )
    frame = pd.DataFrame.from_records(records)
    # deterministic order: target year, institution, publication, scope; the input line breaks ties
    frame = frame.sort_values(["target_year", "institution", "published_raw", "scope", "_line"], kind="mergesort")
    return frame.drop(columns="_line").reset_index(drop=True)[list(PROJECTION_COLUMNS)]


def normalise_actuals(raw: pd.DataFrame, rel: str = ACTUALS_IN) -> pd.DataFrame:
    records = []
    for i, row in enumerate(raw.to_dict("records")):
        line = i + 2
        year, partial = _year(row["year"], rel, line, "year")
        records.append(
            {
                "year": year,
                "unique_id": _map_scope(row["scope"], rel, line),
                "actual_usd_bn": _number(row["actual_usd_bn"]),
                "actual_growth_pct": _number(row["actual_growth_pct"]),
                "source_url": row["source_url"].strip(),
                "note": row["note"].strip(),
                "scope": row["scope"].strip(),
                "partial_year": partial,
                "actual_usd_bn_raw": row["actual_usd_bn"].strip(),
                "actual_growth_pct_raw": row["actual_growth_pct"].strip(),
                "_line": line,
            }
        )
    frame = pd.DataFrame.from_records(records)
    frame = frame.sort_values(["year", "unique_id", "partial_year", "_line"], kind="mergesort")
    return frame.drop(columns="_line").reset_index(drop=True)[list(ACTUAL_COLUMNS)]


def build_projections(projections_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Normalise ``projections.csv`` and ``actuals.csv`` from ``projections_dir`` into
    ``institutional_projections.csv`` and ``annual_actuals.csv`` in ``out_dir``; returns the two
    paths. Raises ``ProjectionsError`` (nothing written) on an unmapped value."""
    projections_dir, out_dir = Path(projections_dir), Path(out_dir)
    projections = normalise_projections(
        _read(
            projections_dir,
            PROJECTIONS_IN,
            (
                "institution",
                "published",
                "target_year",
                "scope",
                "projected_usd_bn",
                "projected_growth_pct",
                "source_url",
                "source_title",
                "note",
            ),
        )
    )
    actuals = normalise_actuals(
        _read(
            projections_dir, ACTUALS_IN, ("year", "scope", "actual_usd_bn", "actual_growth_pct", "source_url", "note")
        )
    )
    written = (out_dir / PROJECTIONS_OUT, out_dir / ACTUALS_OUT)
    write_csv_atomic(written[0], projections.columns, projections.astype(str).itertuples(index=False, name=None))
    write_csv_atomic(written[1], actuals.columns, actuals.astype(str).itertuples(index=False, name=None))
    return written
