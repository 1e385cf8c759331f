"""Build the canonical monthly export dataset from the staged raw public files.

    report = build_dataset(Path("../shared/data/raw"), Path("data"))
    print(report)        # one line per series: span, observations, gaps, sources

Reads the raw files listed in ``raw/PROVENANCE.md`` and writes, deterministically (same input ->
byte-identical output; sorted rows, integer USD, UTF-8, ``\\n`` line ends, atomic replace):

- ``exports_monthly.csv``: ``unique_id, ds, y, source``; one row per series and observed month,
  no row for an unobserved month (a gap stays a gap: nothing is interpolated).
- ``series.csv``: one row per series (``unique_id, level, name_en, name_ko, code, unit,
  first_month, last_month, n_obs, n_missing, sources``), total first, then the 15 flagship items,
  the other items, the destination countries (by 2025 exports) and the regions.

Every value is read from a raw file by code: USD files as given (checked to be whole dollars),
thousand-USD and bn-USD figures scaled exactly (decimal arithmetic) to whole dollars.

Source choices (one definition per series; overlaps are checked, not spliced):
- ``total``: customs-confirmed monthly totals 2000-2021 (Navy10021 bi_data) and 2025 (customs
  total file); 2022-2024 from the press-compiled file's 36 "primary" rows, the ministry's
  preliminary figure for every month. We keep the preliminary figure even for the 12 months where
  the file also has a customs-confirmed print: those prints are mostly rounded to 0.1 bn USD
  ("503억"), cover a third of the months, and mixing them would make 2022-2024 a patchwork of two
  vintages; the preliminary rows give one consistent vintage whose annual sums lie within 0.13% of
  the confirmed annual totals (checked below against the anchors). Each row's ``source`` says
  which release it is.
- ``item:semiconductors``: KOSIS (ministry MTI 831 basis) 2013-2025, the longest series of that
  definition; checked against KITA's MTI 831 (2022-2025) and industry20 (2025).
- the six other KITA items (MTI 741, 742, 746, 812, 813, 837): KITA K-stat 2022-2025, checked
  against industry20 in 2025 (same MTI codes, same customs data: they agree to KITA's rounding to
  the thousand dollars). Displays: KITA's 837 is "flat panel displays AND sensors"; industry20's
  디스플레이 is a narrower aggregate (0.8-1.6% lower in every 2025 month), so the KITA 837
  definition is kept and the narrower one is only checked to lie in that band.
- the 13 other items: industry20 (customs HSK10 mapped to MTI with the official link table), 2025.
- destinations: the five of bi_data (2000-2021), China and the US from the press-compiled
  primary rows (ministry preliminary, some 2022-2024 months), and the all-country customs file
  (2025) for the 15 largest destinations of 2025; regions are sums of member countries
  (``features.regions``) for the months of the all-country file.
"""
from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable

import pandas as pd

from features.regions import COUNTRY_NAMES_EN, REGIONS, slugify

# --------------------------------------------------------------------------- constants
# Official annual totals of Korea's exports, USD bn, customs confirmed, as listed under "Anchors
# used for checks" in data/raw/PROVENANCE.md. Published facts used only to CHECK the build.
OFFICIAL_ANNUAL_TOTALS_USD_BN: dict[int, Decimal] = {
    2010: Decimal("466.4"), 2018: Decimal("604.9"), 2021: Decimal("644.4"),
    2022: Decimal("683.6"), 2023: Decimal("632.2"), 2024: Decimal("683.8"),
    2025: Decimal("709.3"),
}
# 2022-2024 are built from ministry preliminary months, which differ from confirmed ones by up to
# ~0.5% a month and 0.13% a year (2023): 0.2% leaves room for that and nothing more.
TOTAL_ANCHOR_TOLERANCE = Decimal("0.002")
# Ministry semiconductor exports 2024, USD bn (PROVENANCE.md, "ministry 141.9").
SEMICONDUCTORS_2024_USD_BN = Decimal("141.9")
SEMICONDUCTORS_ANCHOR_TOLERANCE = Decimal("0.005")

# Agreement tolerances between overlapping sources, as relative bands on (other - chosen) / chosen
# or absolute USD. Measured on the staged files (see BuildReport.checks for the figures).
# KOSIS vs KITA, MTI 831: KITA's 2022-2023 months are an earlier vintage, up to 2.46% below
# KOSIS (2023-01); from 2024 they agree within 0.1%. 3% bounds a vintage revision, not a
# definition change (customs HS 8541+8542 would be ~20% lower).
SEMIS_KOSIS_VS_KITA_BAND = (Decimal("-0.03"), Decimal("0.03"))
# KOSIS vs industry20 semiconductors, 2025: within 0.1% in every month.
SEMIS_KOSIS_VS_INDUSTRY20_BAND = (Decimal("-0.002"), Decimal("0.002"))
# KITA (thousand USD) vs industry20 (USD), same MTI code: equal up to KITA's rounding to the
# thousand dollars.
KITA_ROUNDING_USD = 500
# industry20 displays vs KITA 837 (displays AND sensors): the narrower aggregate lies 0% to 2%
# below the wider one (measured 0.84% to 1.59%).
DISPLAYS_INDUSTRY20_VS_KITA_BAND = (Decimal("-0.02"), Decimal("0"))

N_TOP_DESTINATIONS = 15
DESTINATION_RANK_YEAR = 2025

# Raw files, relative to the raw directory (repository folder / file, as staged).
BI_DATA = "Navy10021+Korea_Export_Prediction_App/bi_data.csv"
KOSIS_SEMIS = "namyikim+predict_stock/semiconductor_exports.csv"
KITA_ITEMS = "HwaniKimcloud+korea_export_dashboard/industry_monthly.csv"
INDUSTRY20 = "HwaniKimcloud+korea_export_dashboard/industry20_monthly.csv"
TOTAL_2025 = "HwaniKimcloud+korea_export_dashboard/korea_total_export_monthly.csv"
COUNTRIES = "HwaniKimcloud+korea_export_dashboard/country_monthly.csv"
PRESS = "press-compiled/monthly_totals_2022_2024.csv"

# `source` values: "<release/basis>:<raw file>"
SRC_BI = f"customs-confirmed:{BI_DATA}"
SRC_KOSIS = f"ministry-mti-kosis:{KOSIS_SEMIS}"
SRC_KITA = f"kita-mti:{KITA_ITEMS}"
SRC_INDUSTRY20 = f"customs-hsk-to-mti:{INDUSTRY20}"
SRC_TOTAL_2025 = f"customs-confirmed:{TOTAL_2025}"
SRC_COUNTRIES = f"customs-confirmed:{COUNTRIES}"
SRC_PRESS = f"ministry-preliminary:{PRESS}"

EXPORTS_FILE = "exports_monthly.csv"
SERIES_FILE = "series.csv"
EXPORTS_COLUMNS = ("unique_id", "ds", "y", "source")
SERIES_COLUMNS = ("unique_id", "level", "name_en", "name_ko", "code", "unit", "first_month",
                  "last_month", "n_obs", "n_missing", "sources")


@dataclass(frozen=True)
class ItemSpec:
    slug: str
    name_en: str
    name_ko: str            # the industry20 label (산업20), also the ministry's item name
    code: str               # MTI code where known, else ""
    flagship: bool
    kita_label: str | None  # the 산업 label in KITA's industry_monthly.csv, if covered


ITEMS: tuple[ItemSpec, ...] = (
    # the ministry's 15 flagship items, in the order of its monthly release
    ItemSpec("semiconductors", "Semiconductors", "반도체", "831", True, "반도체 (831)"),
    ItemSpec("automobiles", "Automobiles", "자동차", "741", True, "자동차 (741)"),
    ItemSpec("auto_parts", "Auto parts", "자동차부품", "742", True, "자동차부품 (742)"),
    ItemSpec("ships", "Ships, offshore structures and parts", "선박류", "746", True,
             "선박해양구조물및부품 (746)"),
    ItemSpec("general_machinery", "General machinery", "일반기계", "", True, None),
    ItemSpec("petroleum_products", "Petroleum products", "석유제품", "", True, None),
    ItemSpec("petrochemicals", "Petrochemicals", "석유화학", "", True, None),
    ItemSpec("steel", "Steel products", "철강제품", "", True, None),
    ItemSpec("displays", "Flat panel displays and sensors", "디스플레이", "837", True,
             "평판디스플레이 및 센서 (837)"),
    ItemSpec("wireless_devices", "Wireless communication devices", "무선통신기기", "812", True,
             "무선통신기기 (812)"),
    ItemSpec("computers", "Computers", "컴퓨터", "813", True, "컴퓨터 (813)"),
    ItemSpec("home_appliances", "Home appliances", "가전", "", True, None),
    ItemSpec("textiles", "Textiles", "섬유류", "", True, None),
    ItemSpec("secondary_batteries", "Secondary batteries", "이차전지", "", True, None),
    ItemSpec("bio_health", "Bio-health", "바이오헬스", "", True, None),
    # the other five items of industry20
    ItemSpec("electrical_equipment", "Electrical equipment", "전기기기", "", False, None),
    ItemSpec("nonferrous_metals", "Non-ferrous metals", "비철금속", "", False, None),
    ItemSpec("agrifood", "Agricultural, fishery and food products", "농수산식품", "", False, None),
    ItemSpec("cosmetics", "Cosmetics", "화장품", "", False, None),
    ItemSpec("household_goods", "Household goods", "생활용품", "", False, None),
)

# bi_data destination columns -> ISO alpha-2
BI_DESTINATIONS = {"export_CHI": "CN", "export_USA": "US", "export_VET": "VN",
                   "export_Hong": "HK", "export_JAP": "JP"}
# press-compiled columns -> ISO alpha-2
PRESS_DESTINATIONS = {"china_usd_bn": "CN", "us_usd_bn": "US"}


class DatasetCheckError(ValueError):
    """A raw file is malformed, two sources disagree beyond tolerance, or the built dataset fails
    a check (anchors, duplicates, non-finite or negative values, missing source)."""


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class SeriesSummary:
    unique_id: str
    level: str
    name_en: str
    name_ko: str
    code: str
    first_month: str
    last_month: str
    n_obs: int
    n_missing: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class BuildReport:
    out_dir: Path
    series: tuple[SeriesSummary, ...]
    checks: tuple[str, ...] = field(default=())

    @property
    def n_rows(self) -> int:
        return sum(s.n_obs for s in self.series)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [(s.unique_id, s.first_month, s.last_month, s.n_obs, s.n_missing, ";".join(s.sources))
             for s in self.series],
            columns=["series", "first", "last", "n_obs", "n_missing", "sources"])

    def __str__(self) -> str:
        lines = [f"{len(self.series)} series, {self.n_rows} rows -> {self.out_dir}"]
        lines.append(self.to_frame().to_string(index=False))
        lines.append("checks:")
        lines.extend(f"  {c}" for c in self.checks)
        return "\n".join(lines)


# --------------------------------------------------------------------------- parsing helpers
Monthly = dict[str, int]   # "YYYY-MM" -> USD


def read_raw_table(raw_dir: Path, rel: str, required: Iterable[str],
                   error: type[Exception] | None = None) -> pd.DataFrame:
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


def _month(text: str, rel: str, line: int, column: str) -> str:
    """'2025-01' or '2025-01-01' -> '2025-01'."""
    value = text.strip()
    if len(value) == 10 and value.endswith("-01"):
        value = value[:7]
    if len(value) != 7 or value[4] != "-" or not (value[:4] + value[5:]).isdigit() \
            or not 1 <= int(value[5:]) <= 12:
        raise DatasetCheckError(f"{rel} line {line}, column {column}: expected a month "
                                f"YYYY-MM or YYYY-MM-01, found {text!r}")
    return value


def _usd(text: str, rel: str, line: int, column: str, scale: int = 1) -> int:
    """Exact whole-dollar value of ``text * scale``; raises unless finite, >= 0 and whole."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise DatasetCheckError(f"{rel} line {line}, column {column}: not a number: {text!r}") from None
    if not number.is_finite() or number < 0:
        raise DatasetCheckError(f"{rel} line {line}, column {column}: expected a finite "
                                f"non-negative amount, found {text!r}")
    usd = number * scale
    if usd != usd.to_integral_value():
        raise DatasetCheckError(f"{rel} line {line}, column {column}: {text!r} x {scale} is not a "
                                f"whole number of dollars")
    return int(usd)


def _collect(rows: Iterable[tuple[str, int, int]], rel: str, label: str) -> Monthly:
    """(month, usd, line) rows -> month -> usd; a repeated month is an error."""
    out: Monthly = {}
    lines: dict[str, int] = {}
    for month, usd, line in rows:
        if month in out:
            raise DatasetCheckError(f"{rel}: duplicate month {month} for {label} "
                                    f"(lines {lines[month]} and {line})")
        out[month], lines[month] = usd, line
    return out


def _line(index: int) -> int:
    return index + 2   # header is line 1


# --------------------------------------------------------------------------- readers
def _read_bi_data(raw_dir: Path) -> dict[str, Monthly]:
    """Total ('total') and the five destination columns, by ISO code."""
    frame = read_raw_table(raw_dir, BI_DATA, ["Date", "KOR_export", *BI_DESTINATIONS])
    columns = {"total": "KOR_export", **{iso: col for col, iso in BI_DESTINATIONS.items()}}
    months = [_month(m, BI_DATA, _line(i), "Date") for i, m in enumerate(frame["Date"])]
    return {key: _collect(((m, _usd(v, BI_DATA, _line(i), col), _line(i))
                           for i, (m, v) in enumerate(zip(months, frame[col]))), BI_DATA, col)
            for key, col in columns.items()}


def _read_kosis_semis(raw_dir: Path) -> Monthly:
    frame = read_raw_table(raw_dir, KOSIS_SEMIS, ["month", "value"])
    return _collect(((_month(m, KOSIS_SEMIS, _line(i), "month"),
                      _usd(v, KOSIS_SEMIS, _line(i), "value"), _line(i))
                     for i, (m, v) in enumerate(zip(frame["month"], frame["value"]))),
                    KOSIS_SEMIS, "semiconductors")


def _read_kita(raw_dir: Path) -> dict[str, Monthly]:
    """KITA item label -> months. Values are thousand USD (수출액_천달러); the file's USD column
    must equal them x 1000. The 전체수출 ('total') columns are NOT Korea's total and are ignored."""
    frame = read_raw_table(raw_dir, KITA_ITEMS, ["기준월", "산업", "수출액_천달러", "수출액_USD"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for i, rec in enumerate(frame.itertuples(index=False)):
        line = _line(i)
        usd = _usd(rec.수출액_천달러, KITA_ITEMS, line, "수출액_천달러", scale=1000)
        stated = _usd(rec.수출액_USD, KITA_ITEMS, line, "수출액_USD")
        if usd != stated:
            raise DatasetCheckError(f"{KITA_ITEMS} line {line}: 수출액_천달러 x 1000 = {usd} but "
                                    f"수출액_USD = {stated}")
        rows[rec.산업].append((_month(rec.기준월, KITA_ITEMS, line, "기준월"), usd, line))
    return {label: _collect(r, KITA_ITEMS, label) for label, r in rows.items()}


def _read_industry20(raw_dir: Path) -> dict[str, Monthly]:
    frame = read_raw_table(raw_dir, INDUSTRY20, ["기준월", "산업20", "수출액_USD"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for i, rec in enumerate(frame.itertuples(index=False)):
        line = _line(i)
        rows[rec.산업20].append((_month(rec.기준월, INDUSTRY20, line, "기준월"),
                               _usd(rec.수출액_USD, INDUSTRY20, line, "수출액_USD"), line))
    return {label: _collect(r, INDUSTRY20, label) for label, r in rows.items()}


def _read_total_2025(raw_dir: Path) -> Monthly:
    frame = read_raw_table(raw_dir, TOTAL_2025, ["기준월", "수출액_USD"])
    return _collect(((_month(m, TOTAL_2025, _line(i), "기준월"),
                      _usd(v, TOTAL_2025, _line(i), "수출액_USD"), _line(i))
                     for i, (m, v) in enumerate(zip(frame["기준월"], frame["수출액_USD"]))),
                    TOTAL_2025, "total")


def _read_countries(raw_dir: Path) -> tuple[dict[str, Monthly], dict[str, str]]:
    """ISO code -> months (수출액_USD only: the YoY columns of this file are wrong), and ISO code
    -> Korean name."""
    frame = read_raw_table(raw_dir, COUNTRIES, ["국가코드", "국가", "기준월", "수출액_USD"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    names_ko: dict[str, str] = {}
    for i, rec in enumerate(frame.itertuples(index=False)):
        line = _line(i)
        code = rec.국가코드.strip()
        # ISO alpha-2, plus the customs office's own two-character codes (Z1 IMF, ZZ other,
        # RK overseas Koreans, AN the former Netherlands Antilles): they count in the total.
        if not re.fullmatch(r"[A-Z][A-Z0-9]", code):
            raise DatasetCheckError(f"{COUNTRIES} line {line}, column 국가코드: expected a "
                                    f"two-character country code, found {rec.국가코드!r}")
        names_ko.setdefault(code, rec.국가.strip())
        rows[code].append((_month(rec.기준월, COUNTRIES, line, "기준월"),
                           _usd(rec.수출액_USD, COUNTRIES, line, "수출액_USD"), line))
    return {code: _collect(r, COUNTRIES, code) for code, r in rows.items()}, names_ko


def _read_press(raw_dir: Path) -> dict[str, Monthly]:
    """From the rows whose note starts with 'primary' (one ministry preliminary release per
    month): 'total' and the China / US columns (by ISO code) where printed. bn USD -> USD."""
    frame = read_raw_table(raw_dir, PRESS, ["month", "total_usd_bn", *PRESS_DESTINATIONS, "note"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for i, rec in enumerate(frame.to_dict("records")):
        if not rec["note"].strip().lower().startswith("primary"):
            continue
        line = _line(i)
        month = _month(rec["month"], PRESS, line, "month")
        for key, col in (("total", "total_usd_bn"), *((iso, c) for c, iso in PRESS_DESTINATIONS.items())):
            if rec[col].strip():
                rows[key].append((month, _usd(rec[col], PRESS, line, col, scale=10**9), line))
    if "total" not in rows:
        raise DatasetCheckError(f"{PRESS}: no row whose note starts with 'primary'")
    return {key: _collect(r, PRESS, f"{key} (primary rows)") for key, r in rows.items()}


# --------------------------------------------------------------------------- checks
def _pct(x: Decimal) -> str:
    return f"{x * 100:+.3f}%"


def _check_band(series_id: str, chosen_label: str, chosen: Monthly, other_label: str,
                other: Monthly, band: tuple[Decimal, Decimal]) -> str:
    """Every overlapping month: (other - chosen) / chosen within band. Returns a summary line."""
    overlap = sorted(set(chosen) & set(other))
    if not overlap:
        raise DatasetCheckError(f"{series_id}: {chosen_label} and {other_label} have no month in "
                                f"common to check")
    low, high = band
    diffs = []
    for month in overlap:
        a, b = chosen[month], other[month]
        rel = (Decimal(b) - Decimal(a)) / Decimal(a) if a else Decimal("Infinity")
        if not low <= rel <= high:
            raise DatasetCheckError(
                f"{series_id} {month}: {other_label} gives {b} USD, {chosen_label} gives {a} USD; "
                f"relative difference {_pct(rel)} is outside the tolerance [{_pct(low)}, {_pct(high)}]")
        diffs.append(rel)
    return (f"{series_id}: {other_label} vs {chosen_label}, {len(overlap)} months "
            f"{overlap[0]}..{overlap[-1]}: relative difference {_pct(min(diffs))} .. {_pct(max(diffs))} "
            f"(tolerance [{_pct(low)}, {_pct(high)}])")


def _check_abs(series_id: str, chosen_label: str, chosen: Monthly, other_label: str,
               other: Monthly, tolerance_usd: int) -> str:
    overlap = sorted(set(chosen) & set(other))
    if not overlap:
        raise DatasetCheckError(f"{series_id}: {chosen_label} and {other_label} have no month in "
                                f"common to check")
    worst = 0
    for month in overlap:
        a, b = chosen[month], other[month]
        if abs(b - a) > tolerance_usd:
            raise DatasetCheckError(
                f"{series_id} {month}: {other_label} gives {b} USD, {chosen_label} gives {a} USD; "
                f"difference {b - a:+d} USD exceeds the tolerance of {tolerance_usd} USD")
        worst = max(worst, abs(b - a))
    return (f"{series_id}: {other_label} vs {chosen_label}, {len(overlap)} months "
            f"{overlap[0]}..{overlap[-1]}: largest difference {worst} USD (tolerance {tolerance_usd} USD)")


def _check_annual(series_id: str, months: Monthly, year: int, anchor_bn: Decimal,
                  tolerance: Decimal) -> str:
    in_year = {m: v for m, v in months.items() if m.startswith(f"{year}-")}
    if len(in_year) != 12:
        raise DatasetCheckError(f"{series_id} {year}: {len(in_year)} of 12 months observed; cannot "
                                f"compare with the official {anchor_bn} bn USD")
    total_bn = Decimal(sum(in_year.values())) / 10**9
    rel = total_bn / anchor_bn - 1
    if abs(rel) > tolerance:
        raise DatasetCheckError(f"{series_id} {year}: annual sum {total_bn:.3f} bn USD differs from "
                                f"the official {anchor_bn} bn by {_pct(rel)} (tolerance "
                                f"±{tolerance * 100:.1f}%)")
    return (f"{series_id} {year}: {total_bn:.3f} bn USD vs official {anchor_bn} ({_pct(rel)}, "
            f"tolerance ±{tolerance * 100:.1f}%)")


# --------------------------------------------------------------------------- assembly
@dataclass
class _Series:
    unique_id: str
    level: str
    name_en: str
    name_ko: str
    code: str
    rows: dict[str, tuple[int, str]] = field(default_factory=dict)   # month -> (usd, source)

    def add(self, months: Monthly, source: str) -> None:
        for month, usd in months.items():
            if month in self.rows:
                raise DatasetCheckError(
                    f"duplicate (unique_id, ds) = ({self.unique_id}, {month}-01): "
                    f"{self.rows[month][1]} and {source}")
            self.rows[month] = (usd, source)


def _assemble(raw_dir: Path) -> tuple[list[_Series], list[str]]:
    bi = _read_bi_data(raw_dir)
    kosis = _read_kosis_semis(raw_dir)
    kita = _read_kita(raw_dir)
    industry20 = _read_industry20(raw_dir)
    total_2025 = _read_total_2025(raw_dir)
    countries, names_ko = _read_countries(raw_dir)
    press = _read_press(raw_dir)
    checks: list[str] = []

    # --- overlapping sources agree (checked before anything is assembled)
    for item in ITEMS:
        if item.name_ko not in industry20:
            raise DatasetCheckError(f"{INDUSTRY20}: no rows for item {item.name_ko!r} ({item.slug})")
        if item.kita_label is not None and item.kita_label not in kita:
            raise DatasetCheckError(f"{KITA_ITEMS}: no rows for item {item.kita_label!r} ({item.slug})")
    semis_item = next(item for item in ITEMS if item.slug == "semiconductors")
    semis_id = f"item:{semis_item.slug}"
    checks.append(_check_band(semis_id, "KOSIS", kosis, f"KITA {semis_item.code}",
                              kita[semis_item.kita_label], SEMIS_KOSIS_VS_KITA_BAND))
    checks.append(_check_band(semis_id, "KOSIS", kosis, "industry20", industry20[semis_item.name_ko],
                              SEMIS_KOSIS_VS_INDUSTRY20_BAND))
    for item in ITEMS:
        if item.kita_label is None:
            continue
        uid = f"item:{item.slug}"
        if item.slug == "displays":
            checks.append(_check_band(uid, "KITA 837", kita[item.kita_label], "industry20",
                                      industry20[item.name_ko], DISPLAYS_INDUSTRY20_VS_KITA_BAND))
        else:
            checks.append(_check_abs(uid, f"KITA {item.code}", kita[item.kita_label], "industry20",
                                     industry20[item.name_ko], KITA_ROUNDING_USD))
    country_sum: Monthly = defaultdict(int)
    for months in countries.values():
        for month, usd in months.items():
            country_sum[month] += usd
    checks.append(_check_abs("total", "customs total", total_2025, "sum over all countries",
                             dict(country_sum), 0))

    # --- total
    series: list[_Series] = []
    total = _Series("total", "total", "Total exports", "총수출", "")
    total.add(bi["total"], SRC_BI)
    total.add(press["total"], SRC_PRESS)
    total.add(total_2025, SRC_TOTAL_2025)
    series.append(total)

    # --- items, flagship first (ITEMS order)
    for item in ITEMS:
        s = _Series(f"item:{item.slug}", "item", item.name_en, item.name_ko, item.code)
        if item.slug == "semiconductors":
            s.add(kosis, SRC_KOSIS)
        elif item.kita_label is not None:
            s.add(kita[item.kita_label], SRC_KITA)
        else:
            s.add(industry20[item.name_ko], SRC_INDUSTRY20)
        series.append(s)

    # --- destination countries: the five of bi_data + the top N of the rank year, by rank
    year_prefix = f"{DESTINATION_RANK_YEAR}-"
    totals_in_year = {code: sum(v for m, v in months.items() if m.startswith(year_prefix))
                      for code, months in countries.items()}
    ranked = sorted((code for code in totals_in_year if totals_in_year[code] > 0),
                    key=lambda code: (-totals_in_year[code], code))
    top = ranked[:N_TOP_DESTINATIONS]
    chosen = top + sorted(set(BI_DESTINATIONS.values()) - set(top))
    for rank, code in enumerate(chosen, start=1):
        if code not in COUNTRY_NAMES_EN:
            raise DatasetCheckError(f"{COUNTRIES}: destination {code} ({names_ko.get(code, '?')}, "
                                    f"rank {rank} in {DESTINATION_RANK_YEAR}) has no English name "
                                    f"in features.regions.COUNTRY_NAMES_EN")
        name_en = COUNTRY_NAMES_EN[code]
        s = _Series(f"destination:{slugify(name_en)}", "destination", name_en,
                    names_ko.get(code, ""), code)
        if code in bi:
            s.add(bi[code], SRC_BI)
        if code in press:
            s.add(press[code], SRC_PRESS)
        s.add(countries.get(code, {}), SRC_COUNTRIES)
        series.append(s)

    # --- regions: sum of members for every month of the all-country file. That file is complete
    # (its countries sum to the customs total to the dollar, checked above), so a member with no
    # row in a month exported nothing recorded that month. A month with no member row has no row.
    file_months = sorted(country_sum)
    for region in REGIONS:
        s = _Series(f"destination:{region.slug}", "destination", region.name_en, region.name_ko, "")
        sums: Monthly = {}
        for month in file_months:
            present = [countries[c][month] for c in sorted(region.members)
                       if c in countries and month in countries[c]]
            if present:
                sums[month] = sum(present)
        s.add(sums, SRC_COUNTRIES)
        series.append(s)

    # --- checks on the assembled dataset
    for year, anchor in OFFICIAL_ANNUAL_TOTALS_USD_BN.items():
        checks.append(_check_annual("total", {m: v for m, (v, _) in total.rows.items()}, year,
                                    anchor, TOTAL_ANCHOR_TOLERANCE))
    semis = next(s for s in series if s.unique_id == semis_id)
    checks.append(_check_annual(semis_id, {m: v for m, (v, _) in semis.rows.items()}, 2024,
                                SEMICONDUCTORS_2024_USD_BN, SEMICONDUCTORS_ANCHOR_TOLERANCE))
    ids = [s.unique_id for s in series]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise DatasetCheckError(f"series ids built twice: {dupes}")
    for s in series:
        if not s.rows:
            raise DatasetCheckError(f"{s.unique_id}: no observation in the raw files")
        for month, (usd, source) in s.rows.items():
            if usd < 0:
                raise DatasetCheckError(f"{s.unique_id} {month}: negative value {usd}")
            if not source:
                raise DatasetCheckError(f"{s.unique_id} {month}: row without a source")
    checks.append(f"{len(series)} series, {sum(len(s.rows) for s in series)} rows: no duplicate "
                  f"(unique_id, ds), every y a finite non-negative whole number of USD, every row "
                  f"with a source")
    return series, checks


def _months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:]) - int(first[5:]) + 1


def _summary(s: _Series) -> SeriesSummary:
    months = sorted(s.rows)
    sources: list[str] = []
    for month in months:             # distinct sources in order of first appearance
        if s.rows[month][1] not in sources:
            sources.append(s.rows[month][1])
    return SeriesSummary(s.unique_id, s.level, s.name_en, s.name_ko, s.code, months[0], months[-1],
                         len(months), _months_between(months[0], months[-1]) - len(months),
                         tuple(sources))


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
        os.chmod(tmp, 0o644)   # mkstemp creates 0600; the data files are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- entry point
def build_dataset(raw_dir: Path, out_dir: Path) -> BuildReport:
    """Read the raw files in ``raw_dir``, run every check, write ``exports_monthly.csv`` and
    ``series.csv`` into ``out_dir``. Raises ``DatasetCheckError`` (nothing is written) if a file is
    malformed, overlapping sources disagree beyond tolerance, or a check fails."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise DatasetCheckError(f"raw directory {raw_dir} does not exist")
    series, checks = _assemble(raw_dir)
    summaries = tuple(_summary(s) for s in series)

    exports_rows = sorted(((s.unique_id, f"{month}-01", usd, source)
                           for s in series for month, (usd, source) in s.rows.items()),
                          key=lambda row: (row[0], row[1]))
    series_rows = [(m.unique_id, m.level, m.name_en, m.name_ko, m.code, "USD", m.first_month,
                    m.last_month, m.n_obs, m.n_missing, ";".join(m.sources)) for m in summaries]
    write_csv_atomic(out_dir / EXPORTS_FILE, EXPORTS_COLUMNS, exports_rows)
    write_csv_atomic(out_dir / SERIES_FILE, SERIES_COLUMNS, series_rows)
    return BuildReport(out_dir=out_dir, series=summaries, checks=tuple(checks))
