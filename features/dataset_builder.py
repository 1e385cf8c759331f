"""Build the canonical monthly export dataset and the indicator table from the staged raw files.

    report = build_dataset(Path("../shared/data/raw"), Path("data"))
    print(report)        # one line per series: span, observations, gaps, sources; then the checks

Reads the raw files listed in ``raw/PROVENANCE.md`` and writes, deterministically (same input ->
byte-identical output; sorted rows, integer USD, UTF-8, ``\\n`` line ends, atomic replace):

- ``exports_monthly.csv``: ``unique_id, ds, y, source``; one row per series and observed month,
  no row for an unobserved month (a gap stays a gap: nothing is interpolated).
- ``series.csv``: one row per series (``unique_id, level, name_en, name_ko, code, unit,
  first_month, last_month, n_obs, n_missing, sources, hierarchy, parent, backtest, definition``):
  the total, the 20 MTI items and ``item:other``, the destination countries (by 2025 exports),
  the customs regions and ``destination:rest_of_world``.
- ``indicators_monthly.csv`` and ``indicators_rejected.csv``: see :mod:`features.indicators`.

Every value is read from a raw file by code: USD files as given (checked to be whole dollars),
thousand-USD and bn-USD figures scaled exactly (decimal arithmetic) to whole dollars. The only
computed series are ``item:other`` and ``destination:rest_of_world`` (differences of built
series, in the months where every part is observed).

Source choices (one definition per series, written in series.csv's ``definition``):
- ``total``: customs-confirmed in every month 2000-2025: Navy10021 bi_data 2000-2021, the customs
  provisional file's whole-month total (export_10day.csv, thousand USD) 2022-2024, the customs
  total file 2025. export_10day equals the other two within its rounding to the thousand dollars
  wherever they overlap (checked). The ministry's preliminary press figures for 2022-2024
  (press-compiled/) are kept as evidence only: each lies within 0.76% of the confirmed month
  (checked).
- the 20 items: customs HSK records summed with the 2026 MTI link table (trade_industry.csv),
  2022-2025, equal to industry20 in 2025 to the dollar (checked). The six KITA items are moved to
  this basis; KITA's K-stat figures are checked against it (evidence; displays are a different
  aggregate there: 837 "displays AND sensors").
  - Semiconductors: issue 8 keeps the ministry's long MTI 831 series (KOSIS, 2013+) as
    item:semiconductors only if every overlapping year agrees with the customs-MTI series within
    1%. It does not (2022 +1.27%, 2023 +1.09%; 2024-2025 within 0.12%: the 2026 MTI revision is
    applied back to 2022 only), so item:semiconductors is the customs-MTI series like every other
    item (coherent with the hierarchy and with the 2026 releases), and KOSIS is the separate series
    item:semiconductors_ministry (not a node of the hierarchy), kept for its 13-year history and
    because the institutions' semiconductor outlooks are on its basis (features.projections maps
    them to it). Were the 1% test ever met, the builder would keep KOSIS as item:semiconductors.
  - Auto parts run 2011-2025 on one basis: K-stat MTI 742 2011-2021 (Hyeeein), then customs-MTI
    2022-2025; the two are the same basis (KITA's K-stat 742 equals customs-MTI 742 in 2022-2025
    within 0.1%, checked).
- destinations: China, the United States and Japan: bi_data 2000-2021, then the customs country
  sums of trade_region.csv 2022-2025 (equal to bi_data to the dollar in 2021-08..2021-12 and to
  the all-country file in 2025, checked): no gap 2000-01..2025-12. India and the five customs
  regions (features.regions): trade_region.csv 2021-08..2025-12; each equals the sum of its
  member countries in the all-country file in every month of 2025 to the dollar (checked).
  Vietnam, Hong Kong (bi_data + 2025) and the other countries among the 15 largest of 2025
  (2025 only) as before.
- hierarchy: ``total`` = the 20 items + ``item:other``; ``total`` = China + US + Japan + India +
  the five regions + ``destination:rest_of_world`` (disjoint, checked). Other countries are not
  nodes (their ``parent`` is empty); ``definition`` names the region they belong to.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd

from features.indicators import build_indicators, write_indicators
from features.raw_tables import (
    EXPORT_10DAY,
    DatasetCheckError,
    Monthly,
    collect_months,
    line_number,
    parse_raw_month,
    parse_raw_usd,
    read_export_10day,
    read_raw_table,
    write_csv_atomic,
)
from features.regions import COUNTRY_NAMES_EN, REGIONS, slugify

# --------------------------------------------------------------------------- constants
# Official annual totals of Korea's exports, USD bn, customs confirmed, as listed under "Anchors
# used for checks" in data/raw/PROVENANCE.md. Published facts used only to CHECK the build.
OFFICIAL_ANNUAL_TOTALS_USD_BN: dict[int, Decimal] = {
    2010: Decimal("466.4"),
    2018: Decimal("604.9"),
    2021: Decimal("644.4"),
    2022: Decimal("683.6"),
    2023: Decimal("632.2"),
    2024: Decimal("683.8"),
    2025: Decimal("709.3"),
}
# Every month is now customs-confirmed: the annual sums must equal the anchors up to their
# rounding to 0.1 bn, except that PROVENANCE's own 2024 anchor (683.8) and the customs file's
# confirmed months (683.6) differ by 0.03%: 0.05% covers that and nothing more.
TOTAL_ANCHOR_TOLERANCE = Decimal("0.0005")
# Further official annual figures (USD bn, PROVENANCE.md / issue 8), checked to their rounding.
ANNUAL_ANCHORS_USD_BN: tuple[tuple[str, int, Decimal], ...] = (
    ("destination:china", 2022, Decimal("155.79")),
    ("destination:china", 2023, Decimal("124.82")),
    ("destination:china", 2024, Decimal("133.01")),
    ("destination:united_states", 2023, Decimal("115.70")),
    ("destination:united_states", 2024, Decimal("127.76")),
    ("item:semiconductors", 2022, Decimal("129.23")),
    ("item:semiconductors", 2023, Decimal("98.63")),
    ("item:semiconductors", 2024, Decimal("141.92")),
    ("item:automobiles", 2023, Decimal("70.86")),
    ("item:ships", 2024, Decimal("25.63")),
)
ANCHOR_ROUNDING_USD_BN = Decimal("0.005")
# Ministry semiconductor exports 2024, USD bn (PROVENANCE.md, "ministry 141.9").
SEMICONDUCTORS_2024_USD_BN = Decimal("141.9")
SEMICONDUCTORS_ANCHOR_TOLERANCE = Decimal("0.005")
# The preliminary ministry figures 2022-2024 (evidence only) vs the confirmed months: PROVENANCE
# measured a median 0.23% and a maximum 0.76% (0.761%, 2022-07): 0.76% to its rounding.
PRELIMINARY_VS_CONFIRMED_BAND = (Decimal("-0.00765"), Decimal("0.00765"))
# KOSIS (ministry MTI 831) vs customs-MTI semiconductors: issue 8 keeps the long KOSIS series as
# item:semiconductors only if every overlapping year agrees within 1%. Measured: 2022 +1.266%,
# 2023 +1.089%, 2024 +0.117%, 2025 +0.049% (the report's checks), so it does not: item:semiconductors is the
# customs-MTI series like every other item, and KOSIS is the separate series
# item:semiconductors_ministry. The check below documents the disagreement and bounds it (2%).
SEMIS_KOSIS_VS_CUSTOMS_MTI_ANNUAL = Decimal("0.01")
SEMIS_KOSIS_VS_CUSTOMS_MTI_BOUND = Decimal("0.02")
# KITA K-stat 742 vs customs-MTI auto parts, 2022-2025, monthly: same basis (measured below 0.1%).
AUTO_PARTS_KITA_VS_CUSTOMS_MTI_BAND = (Decimal("-0.001"), Decimal("0.001"))
# Thousand-USD files vs USD files: equal up to the rounding to the thousand dollars.
THOUSAND_ROUNDING_USD = 500

# A backtest window needs 24 observed months to fit the seasonal models (config
# models.min_obs_seasonal) and 12 months to score (config backtest.horizon).
MIN_MONTHS_FOR_BACKTEST = 36

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
TRADE_INDUSTRY = "psicsh+Korea-trade-dashboard/trade_industry.csv"
TRADE_REGION = "psicsh+Korea-trade-dashboard/trade_region.csv"
REGION_GROUPS = "psicsh+Korea-trade-dashboard/region_groups_reference.json"
AUTO_PARTS_KSTAT = "Hyeeein+ImportAndExport/자동차부품(742)_수출입통계_시계열용 (2011~2021).csv"
TENDAY_TOTAL = "전체"

# `source` values: "<release/basis>:<raw file>"
SRC_BI = f"customs-confirmed:{BI_DATA}"
SRC_KOSIS = f"ministry-mti-kosis:{KOSIS_SEMIS}"
SRC_KITA = f"kita-mti:{KITA_ITEMS}"
SRC_INDUSTRY20 = f"customs-hsk-to-mti:{INDUSTRY20}"
SRC_TOTAL_2025 = f"customs-confirmed:{TOTAL_2025}"
SRC_COUNTRIES = f"customs-confirmed:{COUNTRIES}"
SRC_PRESS = f"ministry-preliminary:{PRESS}"
SRC_TENDAY = f"customs-confirmed:{EXPORT_10DAY}"
SRC_TRADE_INDUSTRY = f"customs-hsk-to-mti-2026:{TRADE_INDUSTRY}"
SRC_TRADE_REGION = f"customs-confirmed:{TRADE_REGION}"
SRC_KSTAT_742 = f"kita-mti:{AUTO_PARTS_KSTAT}"
SRC_OTHER = "derived:total minus the 20 items (see series.csv)"
SRC_REST = "derived:total minus the disjoint destinations (see series.csv)"

EXPORTS_FILE = "exports_monthly.csv"
SERIES_FILE = "series.csv"
EXPORTS_COLUMNS = ("unique_id", "ds", "y", "source")
SERIES_COLUMNS = (
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
    "hierarchy",
    "parent",
    "backtest",
    "definition",
)


@dataclass(frozen=True)
class ItemSpec:
    slug: str
    name_en: str
    name_ko: str  # the industry20 label (산업20), also the ministry's item name
    code: str  # MTI code where known, else ""
    flagship: bool
    kita_label: str | None  # the 산업 label in KITA's industry_monthly.csv, if covered
    customs_code: str  # industry_code in trade_industry.csv


ITEMS: tuple[ItemSpec, ...] = (
    # the ministry's 15 flagship items, in the order of its monthly release
    ItemSpec("semiconductors", "Semiconductors", "반도체", "831", True, "반도체 (831)", "SEMICON"),
    ItemSpec("automobiles", "Automobiles", "자동차", "741", True, "자동차 (741)", "AUTO"),
    ItemSpec("auto_parts", "Auto parts", "자동차부품", "742", True, "자동차부품 (742)", "AUTO_PARTS"),
    ItemSpec(
        "ships", "Ships, offshore structures and parts", "선박류", "746", True, "선박해양구조물및부품 (746)", "SHIP"
    ),
    ItemSpec("general_machinery", "General machinery", "일반기계", "", True, None, "MACHINERY"),
    ItemSpec("petroleum_products", "Petroleum products", "석유제품", "", True, None, "PETRO_PRODUCT"),
    ItemSpec("petrochemicals", "Petrochemicals", "석유화학", "", True, None, "PETROCHEM"),
    ItemSpec("steel", "Steel products", "철강제품", "", True, None, "STEEL"),
    ItemSpec("displays", "Displays", "디스플레이", "", True, "평판디스플레이 및 센서 (837)", "DISPLAY"),
    ItemSpec(
        "wireless_devices",
        "Wireless communication devices",
        "무선통신기기",
        "812",
        True,
        "무선통신기기 (812)",
        "WIRELESS",
    ),
    ItemSpec("computers", "Computers", "컴퓨터", "813", True, "컴퓨터 (813)", "COMPUTER"),
    ItemSpec("home_appliances", "Home appliances", "가전", "", True, None, "APPLIANCE"),
    ItemSpec("textiles", "Textiles", "섬유류", "", True, None, "TEXTILE"),
    ItemSpec("secondary_batteries", "Secondary batteries", "이차전지", "", True, None, "BATTERY"),
    ItemSpec("bio_health", "Bio-health", "바이오헬스", "", True, None, "BIOHEALTH"),
    # the other five items of industry20
    ItemSpec("electrical_equipment", "Electrical equipment", "전기기기", "", False, None, "ELECTRICAL"),
    ItemSpec("nonferrous_metals", "Non-ferrous metals", "비철금속", "", False, None, "NONFERROUS"),
    ItemSpec("agrifood", "Agricultural, fishery and food products", "농수산식품", "", False, None, "AGRIFOOD"),
    ItemSpec("cosmetics", "Cosmetics", "화장품", "", False, None, "COSMETICS"),
    ItemSpec("household_goods", "Household goods", "생활용품", "", False, None, "LIVING"),
)

# bi_data destination columns -> ISO alpha-2
BI_DESTINATIONS = {"export_CHI": "CN", "export_USA": "US", "export_VET": "VN", "export_Hong": "HK", "export_JAP": "JP"}
# press-compiled columns -> ISO alpha-2
PRESS_DESTINATIONS = {"china_usd_bn": "CN", "us_usd_bn": "US"}
# trade_region.csv single-country codes (the regions are in features.regions)
TRADE_REGION_COUNTRIES = ("CN", "US", "JP", "IN")
# the region_groups_reference.json name of each customs region, and the members the customs
# series has beyond it (PROVENANCE.md: the MIDDLE_EAST series also includes EG and PS)
REGION_JSON_NAMES = {"ASEAN": "아세안", "EU27": "EU", "LATAM": "중남미", "CIS": "CIS", "MIDDLE_EAST": "중동"}
REGION_EXTRA_MEMBERS = {"MIDDLE_EAST": frozenset({"EG", "PS"})}


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
    hierarchy: str = ""
    parent: str = ""
    backtest: str = ""
    definition: str = ""


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
            [
                (s.unique_id, s.first_month, s.last_month, s.n_obs, s.n_missing, ";".join(s.sources))
                for s in self.series
            ],
            columns=["series", "first", "last", "n_obs", "n_missing", "sources"],
        )

    def __str__(self) -> str:
        lines = [f"{len(self.series)} series, {self.n_rows} rows -> {self.out_dir}"]
        lines.append(self.to_frame().to_string(index=False))
        lines.append("checks:")
        lines.extend(f"  {c}" for c in self.checks)
        return "\n".join(lines)


# --------------------------------------------------------------------------- readers
def _read_bi_data(raw_dir: Path) -> dict[str, Monthly]:
    """Total ('total') and the five destination columns, by ISO code."""
    frame = read_raw_table(raw_dir, BI_DATA, ["Date", "KOR_export", *BI_DESTINATIONS])
    columns = {"total": "KOR_export", **{iso: col for col, iso in BI_DESTINATIONS.items()}}
    months = [parse_raw_month(m, BI_DATA, line_number(i), "Date") for i, m in enumerate(frame["Date"])]
    return {
        key: collect_months(
            (
                (m, parse_raw_usd(v, BI_DATA, line_number(i), col), line_number(i))
                for i, (m, v) in enumerate(zip(months, frame[col]))
            ),
            BI_DATA,
            col,
        )
        for key, col in columns.items()
    }


def _read_kosis_semis(raw_dir: Path) -> Monthly:
    frame = read_raw_table(raw_dir, KOSIS_SEMIS, ["month", "value"])
    return collect_months(
        (
            (
                parse_raw_month(m, KOSIS_SEMIS, line_number(i), "month"),
                parse_raw_usd(v, KOSIS_SEMIS, line_number(i), "value"),
                line_number(i),
            )
            for i, (m, v) in enumerate(zip(frame["month"], frame["value"]))
        ),
        KOSIS_SEMIS,
        "semiconductors",
    )


def _read_kita(raw_dir: Path) -> dict[str, Monthly]:
    """KITA item label -> months. Values are thousand USD (수출액_천달러); the file's USD column
    must equal them x 1000. The 전체수출 ('total') columns are NOT Korea's total and are ignored."""
    frame = read_raw_table(raw_dir, KITA_ITEMS, ["기준월", "산업", "수출액_천달러", "수출액_USD"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for i, rec in enumerate(frame.itertuples(index=False)):
        line = line_number(i)
        usd = parse_raw_usd(rec.수출액_천달러, KITA_ITEMS, line, "수출액_천달러", scale=1000)
        stated = parse_raw_usd(rec.수출액_USD, KITA_ITEMS, line, "수출액_USD")
        if usd != stated:
            raise DatasetCheckError(f"{KITA_ITEMS} line {line}: 수출액_천달러 x 1000 = {usd} but 수출액_USD = {stated}")
        rows[rec.산업].append((parse_raw_month(rec.기준월, KITA_ITEMS, line, "기준월"), usd, line))
    return {label: collect_months(r, KITA_ITEMS, label) for label, r in rows.items()}


def _read_industry20(raw_dir: Path) -> dict[str, Monthly]:
    frame = read_raw_table(raw_dir, INDUSTRY20, ["기준월", "산업20", "수출액_USD"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for i, rec in enumerate(frame.itertuples(index=False)):
        line = line_number(i)
        rows[rec.산업20].append(
            (
                parse_raw_month(rec.기준월, INDUSTRY20, line, "기준월"),
                parse_raw_usd(rec.수출액_USD, INDUSTRY20, line, "수출액_USD"),
                line,
            )
        )
    return {label: collect_months(r, INDUSTRY20, label) for label, r in rows.items()}


def _read_total_2025(raw_dir: Path) -> Monthly:
    frame = read_raw_table(raw_dir, TOTAL_2025, ["기준월", "수출액_USD"])
    return collect_months(
        (
            (
                parse_raw_month(m, TOTAL_2025, line_number(i), "기준월"),
                parse_raw_usd(v, TOTAL_2025, line_number(i), "수출액_USD"),
                line_number(i),
            )
            for i, (m, v) in enumerate(zip(frame["기준월"], frame["수출액_USD"]))
        ),
        TOTAL_2025,
        "total",
    )


def _read_countries(raw_dir: Path) -> tuple[dict[str, Monthly], dict[str, str]]:
    """ISO code -> months (수출액_USD only: the YoY columns of this file are wrong), and ISO code
    -> Korean name."""
    frame = read_raw_table(raw_dir, COUNTRIES, ["국가코드", "국가", "기준월", "수출액_USD"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    names_ko: dict[str, str] = {}
    for i, rec in enumerate(frame.itertuples(index=False)):
        line = line_number(i)
        code = rec.국가코드.strip()
        # ISO alpha-2, plus the customs office's own two-character codes (Z1 IMF, ZZ other,
        # RK overseas Koreans, AN the former Netherlands Antilles): they count in the total.
        if not re.fullmatch(r"[A-Z][A-Z0-9]", code):
            raise DatasetCheckError(
                f"{COUNTRIES} line {line}, column 국가코드: expected a "
                f"two-character country code, found {rec.국가코드!r}"
            )
        names_ko.setdefault(code, rec.국가.strip())
        rows[code].append(
            (
                parse_raw_month(rec.기준월, COUNTRIES, line, "기준월"),
                parse_raw_usd(rec.수출액_USD, COUNTRIES, line, "수출액_USD"),
                line,
            )
        )
    return {code: collect_months(r, COUNTRIES, code) for code, r in rows.items()}, names_ko


def _read_press(raw_dir: Path) -> dict[str, Monthly]:
    """From the rows whose note starts with 'primary' (one ministry preliminary release per
    month): 'total' and the China / US columns (by ISO code) where printed. bn USD -> USD."""
    frame = read_raw_table(raw_dir, PRESS, ["month", "total_usd_bn", *PRESS_DESTINATIONS, "note"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for i, rec in enumerate(frame.to_dict("records")):
        if not rec["note"].strip().lower().startswith("primary"):
            continue
        line = line_number(i)
        month = parse_raw_month(rec["month"], PRESS, line, "month")
        for key, col in (("total", "total_usd_bn"), *((iso, c) for c, iso in PRESS_DESTINATIONS.items())):
            if rec[col].strip():
                rows[key].append((month, parse_raw_usd(rec[col], PRESS, line, col, scale=10**9), line))
    if "total" not in rows:
        raise DatasetCheckError(f"{PRESS}: no row whose note starts with 'primary'")
    return {key: collect_months(r, PRESS, f"{key} (primary rows)") for key, r in rows.items()}


def _read_psicsh_export(raw_dir: Path, name: str, key_column: str) -> dict[str, Monthly]:
    """A psicsh customs table (period, ``key_column``, export_usd): key -> months (export_usd only)."""
    frame = read_raw_table(raw_dir, name, ["period", key_column, "export_usd"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for i, rec in enumerate(frame.itertuples(index=False)):
        line = line_number(i)
        rows[getattr(rec, key_column).strip()].append(
            (
                parse_raw_month(rec.period, name, line, "period"),
                parse_raw_usd(rec.export_usd, name, line, "export_usd"),
                line,
            )
        )
    return {code: collect_months(r, name, code) for code, r in rows.items()}


def _read_trade_industry(raw_dir: Path) -> dict[str, Monthly]:
    """Customs-MTI items (trade_industry.csv): industry_code -> months."""
    return _read_psicsh_export(raw_dir, TRADE_INDUSTRY, "industry_code")


def _read_trade_region(raw_dir: Path) -> dict[str, Monthly]:
    """Customs destinations (trade_region.csv): region_code -> months."""
    return _read_psicsh_export(raw_dir, TRADE_REGION, "region_code")


def _read_region_groups(raw_dir: Path) -> dict[str, frozenset[str]]:
    """region_groups_reference.json: Korean group name -> ISO codes."""
    path = raw_dir / REGION_GROUPS
    if not path.is_file():
        raise DatasetCheckError(f"{REGION_GROUPS}: file not found under {raw_dir}")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        groups = payload["regions"]
        return {str(name): frozenset(str(c) for c in codes) for name, codes in groups.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise DatasetCheckError(
            f"{REGION_GROUPS}: expected {{'regions': {{name: [ISO codes]}}}} ({type(err).__name__}: {err})"
        ) from None


def _kstat_month(text: str, line: int) -> str:
    """K-stat's 년월: 'YYYY.MM', except October, which the download writes 'YYYY.1' (a number
    formatted without its trailing zero). 'YYYY.10' is accepted too."""
    match = re.fullmatch(r"(\d{4})\.(\d{1,2})", text.strip())
    if match is None:
        raise DatasetCheckError(
            f"{AUTO_PARTS_KSTAT} line {line}, column 년월: expected YYYY.MM (October as YYYY.1), found {text!r}"
        )
    digits = match[2]
    month = 10 if digits == "1" else int(digits)
    if len(digits) == 2 and not 1 <= month <= 12 or (len(digits) == 1 and digits != "1"):
        raise DatasetCheckError(
            f"{AUTO_PARTS_KSTAT} line {line}, column 년월: expected YYYY.MM (October as YYYY.1), found {text!r}"
        )
    return f"{match[1]}-{month:02d}"


def _read_auto_parts_kstat(raw_dir: Path) -> Monthly:
    """K-stat MTI 742 auto parts 2011-2021 (thousand USD -> USD). Two title lines, then the header
    년월, 수출 금액, 수출 증감률 (change on the PREVIOUS month, %), ... The months must follow each
    other (this is what pins 'YYYY.1' to October), and every stated change must equal the one
    recomputed from the amounts within its rounding to 0.1 point."""
    path = raw_dir / AUTO_PARTS_KSTAT
    if not path.is_file():
        raise DatasetCheckError(f"{AUTO_PARTS_KSTAT}: file not found under {raw_dir}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skiprows=2)
    frame.columns = [c.strip() for c in frame.columns]
    required = ["년월", "수출 금액", "수출 증감률"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetCheckError(
            f"{AUTO_PARTS_KSTAT}: missing column(s) {missing} on line 3; found {list(frame.columns)}"
        )
    out: Monthly = {}
    previous: tuple[str, int] | None = None
    for i, rec in enumerate(frame.to_dict("records")):
        line = i + 4  # two title lines and the header come first
        month = _kstat_month(rec["년월"], line)
        usd = parse_raw_usd(rec["수출 금액"], AUTO_PARTS_KSTAT, line, "수출 금액", scale=1000)
        if previous is not None:
            expected_month = _next_month(previous[0])
            if month != expected_month:
                raise DatasetCheckError(
                    f"{AUTO_PARTS_KSTAT} line {line}, column 년월: "
                    f"{rec['년월']!r} read as {month}, expected {expected_month} "
                    f"(the month after line {line - 1})"
                )
            stated = Decimal(rec["수출 증감률"].strip())
            recomputed = (Decimal(usd) / Decimal(previous[1]) - 1) * 100
            if abs(recomputed - stated) > Decimal("0.051"):
                raise DatasetCheckError(
                    f"{AUTO_PARTS_KSTAT} line {line}, column 수출 증감률: "
                    f"stated {stated}% but the change on the previous month is "
                    f"{recomputed:.2f}%"
                )
        out[month] = usd
        previous = (month, usd)
    return out


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + mon // 12}-{mon % 12 + 1:02d}"


# --------------------------------------------------------------------------- checks
def _pct(x: Decimal) -> str:
    return f"{x * 100:+.3f}%"


def _check_band(
    series_id: str, chosen_label: str, chosen: Monthly, other_label: str, other: Monthly, band: tuple[Decimal, Decimal]
) -> str:
    """Every overlapping month: (other - chosen) / chosen within band. Returns a summary line."""
    overlap = sorted(set(chosen) & set(other))
    if not overlap:
        raise DatasetCheckError(f"{series_id}: {chosen_label} and {other_label} have no month in common to check")
    low, high = band
    diffs = []
    for month in overlap:
        a, b = chosen[month], other[month]
        rel = (Decimal(b) - Decimal(a)) / Decimal(a) if a else Decimal("Infinity")
        if not low <= rel <= high:
            raise DatasetCheckError(
                f"{series_id} {month}: {other_label} gives {b} USD, {chosen_label} gives {a} USD; "
                f"relative difference {_pct(rel)} is outside the tolerance [{_pct(low)}, {_pct(high)}]"
            )
        diffs.append(rel)
    return (
        f"{series_id}: {other_label} vs {chosen_label}, {len(overlap)} months "
        f"{overlap[0]}..{overlap[-1]}: relative difference {_pct(min(diffs))} .. {_pct(max(diffs))} "
        f"(tolerance [{_pct(low)}, {_pct(high)}])"
    )


def _check_abs(
    series_id: str, chosen_label: str, chosen: Monthly, other_label: str, other: Monthly, tolerance_usd: int
) -> str:
    overlap = sorted(set(chosen) & set(other))
    if not overlap:
        raise DatasetCheckError(f"{series_id}: {chosen_label} and {other_label} have no month in common to check")
    worst = 0
    for month in overlap:
        a, b = chosen[month], other[month]
        if abs(b - a) > tolerance_usd:
            raise DatasetCheckError(
                f"{series_id} {month}: {other_label} gives {b} USD, {chosen_label} gives {a} USD; "
                f"difference {b - a:+d} USD exceeds the tolerance of {tolerance_usd} USD"
            )
        worst = max(worst, abs(b - a))
    return (
        f"{series_id}: {other_label} vs {chosen_label}, {len(overlap)} months "
        f"{overlap[0]}..{overlap[-1]}: largest difference {worst} USD (tolerance {tolerance_usd} USD)"
    )


def _annual_sum_bn(series_id: str, months: Monthly, year: int, anchor_bn: Decimal) -> Decimal:
    """The calendar-year sum in bn USD; every month of the year must be observed."""
    in_year = {m: v for m, v in months.items() if m.startswith(f"{year}-")}
    if len(in_year) != 12:
        raise DatasetCheckError(
            f"{series_id} {year}: {len(in_year)} of 12 months observed; cannot "
            f"compare with the official {anchor_bn} bn USD"
        )
    return Decimal(sum(in_year.values())) / 10**9


def _year_in_progress(series_id: str, months: Monthly, year: int) -> str:
    """A note when ``year`` is the data's last year and still running (its last observed month is
    before December: raw files cut at an earlier month, as an update's earlier vintage was): its
    official annual figure did not exist yet and is checked once the year is complete. '' otherwise
    (a year missing months before the data's last month still fails the check)."""
    last = max(months, default="")
    if not last.startswith(f"{year}-") or last.endswith("-12"):
        return ""
    return (
        f"{series_id} {year}: data through {last}, the year is not complete: the official annual "
        f"figure is checked once it is"
    )


def _check_annual(series_id: str, months: Monthly, year: int, anchor_bn: Decimal, tolerance: Decimal) -> str:
    total_bn = _annual_sum_bn(series_id, months, year, anchor_bn)
    rel = total_bn / anchor_bn - 1
    if abs(rel) > tolerance:
        raise DatasetCheckError(
            f"{series_id} {year}: annual sum {total_bn:.3f} bn USD differs from "
            f"the official {anchor_bn} bn by {_pct(rel)} (tolerance "
            f"±{tolerance * 100:.2f}%)"
        )
    return (
        f"{series_id} {year}: {total_bn:.3f} bn USD vs official {anchor_bn} ({_pct(rel)}, "
        f"tolerance ±{tolerance * 100:.2f}%)"
    )


def _check_annual_abs(series_id: str, months: Monthly, year: int, anchor_bn: Decimal, tolerance_bn: Decimal) -> str:
    """Annual sum equal to a published figure up to its rounding (absolute, bn USD)."""
    total_bn = _annual_sum_bn(series_id, months, year, anchor_bn)
    if abs(total_bn - anchor_bn) > tolerance_bn:
        raise DatasetCheckError(
            f"{series_id} {year}: annual sum {total_bn:.3f} bn USD differs from "
            f"the official {anchor_bn} bn by {total_bn - anchor_bn:+.3f} bn "
            f"(tolerance ±{tolerance_bn} bn)"
        )
    return (
        f"{series_id} {year}: {total_bn:.3f} bn USD vs official {anchor_bn} "
        f"({total_bn - anchor_bn:+.3f} bn, tolerance ±{tolerance_bn} bn)"
    )


def _check_annual_band(
    series_id: str, chosen_label: str, chosen: Monthly, other_label: str, other: Monthly, tolerance: Decimal
) -> str:
    """Every calendar year both sources cover in full: |other / chosen - 1| <= tolerance."""

    def by_year(months: Monthly) -> dict[int, list[int]]:
        out: dict[int, list[int]] = defaultdict(list)
        for month, usd in months.items():
            out[int(month[:4])].append(usd)
        return {year: values for year, values in out.items() if len(values) == 12}

    a, b = by_year(chosen), by_year(other)
    years = sorted(set(a) & set(b))
    if not years:
        raise DatasetCheckError(f"{series_id}: {chosen_label} and {other_label} have no full year in common to check")
    parts = []
    for year in years:
        rel = Decimal(sum(b[year])) / Decimal(sum(a[year])) - 1
        if abs(rel) > tolerance:
            raise DatasetCheckError(
                f"{series_id} {year}: {other_label} gives {Decimal(sum(b[year])) / 10**9:.3f} bn USD, "
                f"{chosen_label} gives {Decimal(sum(a[year])) / 10**9:.3f} bn USD; relative "
                f"difference {_pct(rel)} is outside ±{tolerance * 100:.1f}%"
            )
        parts.append(f"{year} {_pct(rel)}")
    return (
        f"{series_id}: {other_label} vs {chosen_label}, annual sums: {', '.join(parts)} "
        f"(tolerance ±{tolerance * 100:.1f}%)"
    )


def _annual_agreement(chosen: Monthly, other: Monthly, tolerance: Decimal) -> bool:
    """Whether every calendar year both cover in full agrees within ``tolerance`` (relative)."""
    years = {m[:4] for m in chosen} & {m[:4] for m in other}
    for year in years:
        a = [v for m, v in chosen.items() if m.startswith(year)]
        b = [v for m, v in other.items() if m.startswith(year)]
        if len(a) == 12 and len(b) == 12 and abs(Decimal(sum(b)) / Decimal(sum(a)) - 1) > tolerance:
            return False
    return True


def _between(months: Monthly, first: str, last: str) -> Monthly:
    return {m: v for m, v in months.items() if first <= m <= last}


def _difference(parent: Monthly, parts: list[Monthly], label: str) -> Monthly:
    """parent - sum(parts) over the months where the parent and every part are observed."""
    common = set(parent)
    for part in parts:
        common &= set(part)
    out: Monthly = {}
    for month in sorted(common):
        rest = parent[month] - sum(part[month] for part in parts)
        if rest < 0:
            raise DatasetCheckError(f"{label} {month}: the parts sum to more than the total ({-rest} USD over)")
        out[month] = rest
    return out


# --------------------------------------------------------------------------- assembly
@dataclass
class _Series:
    unique_id: str
    level: str
    name_en: str
    name_ko: str
    code: str
    definition: str = ""
    hierarchy: str = ""
    parent: str = ""
    rows: dict[str, tuple[int, str]] = field(default_factory=dict)  # month -> (usd, source)

    def add(self, months: Monthly, source: str) -> None:
        for month, usd in months.items():
            if month in self.rows:
                raise DatasetCheckError(
                    f"duplicate (unique_id, ds) = ({self.unique_id}, {month}-01): {self.rows[month][1]} and {source}"
                )
            self.rows[month] = (usd, source)

    def months(self) -> Monthly:
        return {m: v for m, (v, _) in self.rows.items()}


@dataclass(frozen=True)
class _RawFiles:
    """Every raw file the dataset is built from, read and parsed (see the readers above)."""

    bi: dict[str, Monthly]
    kosis: Monthly
    kita: dict[str, Monthly]
    industry20: dict[str, Monthly]
    total_2025: Monthly
    countries: dict[str, Monthly]
    names_ko: dict[str, str]
    press: dict[str, Monthly]
    customs_mti: dict[str, Monthly]
    trade_region: dict[str, Monthly]
    groups: dict[str, frozenset[str]]
    tenday: dict[tuple[str, str], Monthly]
    auto_parts_kstat: Monthly

    @property
    def tenday_total(self) -> Monthly:
        return self.tenday[(TENDAY_TOTAL, "월전체")]

    @property
    def confirmed_2022_2024(self) -> Monthly:
        return _between(self.tenday_total, "2022-01", "2024-12")

    @property
    def country_sum(self) -> Monthly:
        """Month -> the sum over every country of the all-country file."""
        total: Monthly = defaultdict(int)
        for months in self.countries.values():
            for month, usd in months.items():
                total[month] += usd
        return dict(total)

    @property
    def semiconductors(self) -> Monthly:
        return self.customs_mti[_item("semiconductors").customs_code]


def _item(slug: str) -> ItemSpec:
    return next(item for item in ITEMS if item.slug == slug)


def _read_raw_files(raw_dir: Path) -> _RawFiles:
    countries, names_ko = _read_countries(raw_dir)
    return _RawFiles(
        bi=_read_bi_data(raw_dir),
        kosis=_read_kosis_semis(raw_dir),
        kita=_read_kita(raw_dir),
        industry20=_read_industry20(raw_dir),
        total_2025=_read_total_2025(raw_dir),
        countries=countries,
        names_ko=names_ko,
        press=_read_press(raw_dir),
        customs_mti=_read_trade_industry(raw_dir),
        trade_region=_read_trade_region(raw_dir),
        groups=_read_region_groups(raw_dir),
        tenday=read_export_10day(raw_dir),
        auto_parts_kstat=_read_auto_parts_kstat(raw_dir),
    )


def _assemble(raw_dir: Path) -> tuple[list[_Series], list[str]]:
    """The series of the dataset and the checks passed, in the order they are reported."""
    raw = _read_raw_files(raw_dir)
    _check_coverage(raw)
    checks = _total_checks(raw)
    item_checks, kosis_agrees = _item_checks(raw)
    checks += item_checks + _destination_checks(raw)
    total = _total_series(raw)
    countries, nodes = _country_series(raw)
    regions, rest, rest_check = _region_series(raw, total, nodes)
    series = [total, *_item_series(raw, total, kosis_agrees), *countries, *regions, rest]
    checks.append(rest_check)
    return series, checks + _dataset_checks(raw, series)


def _check_coverage(raw: _RawFiles) -> None:
    """The raw files hold what we use."""
    for item in ITEMS:
        if item.name_ko not in raw.industry20:
            raise DatasetCheckError(f"{INDUSTRY20}: no rows for item {item.name_ko!r} ({item.slug})")
        if item.customs_code not in raw.customs_mti:
            raise DatasetCheckError(f"{TRADE_INDUSTRY}: no rows for industry_code {item.customs_code!r} ({item.slug})")
        if item.kita_label is not None and item.kita_label not in raw.kita:
            raise DatasetCheckError(f"{KITA_ITEMS}: no rows for item {item.kita_label!r} ({item.slug})")
    for code in (*TRADE_REGION_COUNTRIES, *(r.code for r in REGIONS)):
        if code not in raw.trade_region:
            raise DatasetCheckError(f"{TRADE_REGION}: no rows for region_code {code!r}")
    if (TENDAY_TOTAL, "월전체") not in raw.tenday:
        raise DatasetCheckError(f"{EXPORT_10DAY}: no whole-month (월전체) rows for {TENDAY_TOTAL!r}")


def _total_checks(raw: _RawFiles) -> list[str]:
    """Total: customs-confirmed sources agree where they overlap."""
    bi, total_2025, tenday_total, press = raw.bi, raw.total_2025, raw.tenday_total, raw.press
    checks = [_check_abs("total", "customs total", total_2025, "sum over all countries", raw.country_sum, 0)]
    checks.append(
        _check_abs(
            "total",
            "bi_data",
            _between(bi["total"], "2016-01", "2021-12"),
            "export_10day whole month",
            tenday_total,
            THOUSAND_ROUNDING_USD,
        )
    )
    checks.append(
        _check_abs(
            "total", "customs total", total_2025, "export_10day whole month", tenday_total, THOUSAND_ROUNDING_USD
        )
    )
    checks.append(
        _check_band(
            "total",
            "customs-confirmed (export_10day)",
            raw.confirmed_2022_2024,
            "ministry preliminary (press, evidence only)",
            press["total"],
            PRELIMINARY_VS_CONFIRMED_BAND,
        )
    )

    return checks


def _item_checks(raw: _RawFiles) -> tuple[list[str], bool]:
    """Items: customs-MTI equals industry20 in 2025 to the dollar; KITA and KOSIS as evidence.
    Also whether KOSIS agrees with customs-MTI within 1% in every year (then it is the series)."""
    customs_mti, industry20, kita, kosis = raw.customs_mti, raw.industry20, raw.kita, raw.kosis
    checks: list[str] = []
    for item in ITEMS:
        uid = f"item:{item.slug}"
        checks.append(
            _check_abs(
                uid,
                "customs-MTI (trade_industry)",
                customs_mti[item.customs_code],
                "industry20",
                industry20[item.name_ko],
                0,
            )
        )
    semis_check = _check_annual_band(
        "item:semiconductors",
        "customs-MTI",
        raw.semiconductors,
        "KOSIS (ministry MTI 831)",
        kosis,
        SEMIS_KOSIS_VS_CUSTOMS_MTI_BOUND,
    )
    kosis_agrees = _annual_agreement(raw.semiconductors, kosis, SEMIS_KOSIS_VS_CUSTOMS_MTI_ANNUAL)
    checks.append(
        semis_check
        + (
            "; every year within 1%: KOSIS kept as item:semiconductors"
            if kosis_agrees
            else "; NOT every year within 1%: item:semiconductors is customs-MTI, KOSIS is item:semiconductors_ministry"
        )
    )
    for item in ITEMS:
        if item.kita_label is None or item.slug == "semiconductors":
            continue
        checks.append(
            _report_band(
                f"item:{item.slug}",
                "customs-MTI",
                customs_mti[item.customs_code],
                f"KITA {item.kita_label}",
                kita[item.kita_label],
            )
        )
    auto_parts = _item("auto_parts")
    checks.append(
        _check_band(
            "item:auto_parts",
            "customs-MTI",
            customs_mti[auto_parts.customs_code],
            "KITA K-stat 742",
            kita[auto_parts.kita_label],
            AUTO_PARTS_KITA_VS_CUSTOMS_MTI_BAND,
        )
    )

    return checks, kosis_agrees


def _destination_checks(raw: _RawFiles) -> list[str]:
    """Destinations: trade_region equals bi_data (2021) and the all-country file (2025)."""
    bi, trade_region, countries, groups = raw.bi, raw.trade_region, raw.countries, raw.groups
    checks: list[str] = []
    for code in ("CN", "US", "JP"):
        checks.append(_check_abs(f"destination {code}", "bi_data", bi[code], "trade_region", trade_region[code], 0))
    for code in TRADE_REGION_COUNTRIES:
        checks.append(
            _check_abs(
                f"destination {code}",
                "trade_region",
                _between(trade_region[code], "2025-01", "2025-12"),
                "all-country file",
                countries.get(code, {}),
                0,
            )
        )
    file_months = sorted(raw.country_sum)
    for region in REGIONS:
        json_members = groups.get(REGION_JSON_NAMES[region.code])
        expected = (json_members or frozenset()) | REGION_EXTRA_MEMBERS.get(region.code, frozenset())
        if json_members is None or expected != region.members:
            raise DatasetCheckError(
                f"destination:{region.slug}: features.regions lists {sorted(region.members)}, "
                f"{REGION_GROUPS} (+ {sorted(REGION_EXTRA_MEMBERS.get(region.code, []))}) gives "
                f"{sorted(expected)}"
            )
        member_sums = {
            m: sum(countries[c][m] for c in region.members if c in countries and m in countries[c]) for m in file_months
        }
        checks.append(
            _check_abs(
                f"destination:{region.slug}",
                "trade_region",
                _between(trade_region[region.code], "2025-01", "2025-12"),
                f"sum of its {len(region.members)} members (all-country file)",
                member_sums,
                0,
            )
        )

    return checks


def _total_series(raw: _RawFiles) -> _Series:
    total = _Series(
        "total",
        "total",
        "Total exports",
        "총수출",
        "",
        definition="Korea's total exports, customs-confirmed, every month",
        hierarchy="",
        parent="",
    )
    total.add(raw.bi["total"], SRC_BI)
    total.add(raw.confirmed_2022_2024, SRC_TENDAY)
    total.add(raw.total_2025, SRC_TOTAL_2025)
    return total


def _item_series(raw: _RawFiles, total: _Series, kosis_agrees: bool) -> list[_Series]:
    """The items, flagship first (ITEMS order), then item:other (and the ministry's semiconductors)."""
    kosis, customs_mti, auto_parts_kstat = raw.kosis, raw.customs_mti, raw.auto_parts_kstat
    items: list[_Series] = []
    for item in ITEMS:
        s = _Series(
            f"item:{item.slug}", "item", item.name_en, item.name_ko, item.code, hierarchy="item", parent="total"
        )
        if item.slug == "semiconductors" and kosis_agrees:
            s.definition = (
                "MTI 831 semiconductors, ministry basis (KOSIS); within 1% of the "
                "customs-MTI 2026 basis in every year 2022-2025"
            )
            s.add(kosis, SRC_KOSIS)
        elif item.slug == "auto_parts":
            s.definition = (
                "MTI 742 auto parts: K-stat 2011-2021, customs HSK10 with the 2026 "
                "MTI link table 2022-2025 (the same basis: KITA 742 equals it within "
                "0.1% in 2022-2025)"
            )
            s.add(auto_parts_kstat, SRC_KSTAT_742)
            s.add(customs_mti[item.customs_code], SRC_TRADE_INDUSTRY)
        else:
            s.definition = (
                f"MTI item {item.name_ko} ({item.customs_code}): customs HSK10 records with the 2026 MTI link table"
            )
            s.add(customs_mti[item.customs_code], SRC_TRADE_INDUSTRY)
        items.append(s)
    other = _Series(
        "item:other",
        "item",
        "Other items (total minus the 20 MTI items)",
        "기타 품목",
        "",
        hierarchy="item",
        parent="total",
        definition="total minus the 20 items above, in the months where all are observed",
    )
    other.add(_difference(total.months(), [s.months() for s in items], "item:other"), SRC_OTHER)
    series = [*items, other]
    if not kosis_agrees:
        ministry = _Series(
            "item:semiconductors_ministry",
            "item",
            "Semiconductors, ministry MTI 831 basis (KOSIS, 2013+)",
            "반도체 (KOSIS)",
            "831",
            hierarchy="item",
            parent="",
            definition=(
                "MTI 831 semiconductors as the ministry published them "
                "(KOSIS), 2013-2025; differs from the customs-MTI 2026 basis "
                "of item:semiconductors by more than 1% in 2022, so a "
                "separate series, not a node of the hierarchy; the basis of "
                "the institutions' semiconductor outlooks"
            ),
        )
        ministry.add(kosis, SRC_KOSIS)
        series.append(ministry)

    return series


def _country_series(raw: _RawFiles) -> tuple[list[_Series], list[_Series]]:
    """The destination countries (the 15 largest of the rank year + the five of bi_data, by
    rank), and those of them that are nodes of the hierarchy."""
    bi, trade_region, countries, names_ko = raw.bi, raw.trade_region, raw.countries, raw.names_ko
    series: list[_Series] = []
    year_prefix = f"{DESTINATION_RANK_YEAR}-"
    totals_in_year = {
        code: sum(v for m, v in months.items() if m.startswith(year_prefix)) for code, months in countries.items()
    }
    ranked = sorted(
        (code for code in totals_in_year if totals_in_year[code] > 0), key=lambda code: (-totals_in_year[code], code)
    )
    top = ranked[:N_TOP_DESTINATIONS]
    chosen = top + sorted(set(BI_DESTINATIONS.values()) - set(top))
    region_of = {c: r for r in REGIONS for c in r.members}
    nodes: list[_Series] = []
    for rank, code in enumerate(chosen, start=1):
        if code not in COUNTRY_NAMES_EN:
            raise DatasetCheckError(
                f"{COUNTRIES}: destination {code} ({names_ko.get(code, '?')}, "
                f"rank {rank} in {DESTINATION_RANK_YEAR}) has no English name "
                f"in features.regions.COUNTRY_NAMES_EN"
            )
        name_en = COUNTRY_NAMES_EN[code]
        s = _Series(
            f"destination:{slugify(name_en)}",
            "destination",
            name_en,
            names_ko.get(code, ""),
            code,
            hierarchy="destination",
        )
        if code in TRADE_REGION_COUNTRIES:
            s.parent = "total"
            s.definition = f"exports to {name_en} ({code}), customs country figures"
            if code in bi:
                s.add(bi[code], SRC_BI)
                s.add(_between(trade_region[code], "2022-01", "9999-12"), SRC_TRADE_REGION)
            else:
                s.add(trade_region[code], SRC_TRADE_REGION)
            nodes.append(s)
        else:
            region = region_of.get(code)
            part_of = f"part of destination:{region.slug}" if region else "part of destination:rest_of_world"
            s.definition = (
                f"exports to {name_en} ({code}), customs country figures; {part_of}, not a node of the hierarchy"
            )
            if code in bi:
                s.add(bi[code], SRC_BI)
            s.add(countries.get(code, {}), SRC_COUNTRIES)
        series.append(s)

    return series, nodes


def _region_series(raw: _RawFiles, total: _Series, nodes: list[_Series]) -> tuple[list[_Series], _Series, str]:
    """The regions (customs groups), the rest of the world and its check against the countries."""
    countries = raw.countries
    series: list[_Series] = []
    for region in REGIONS:
        s = _Series(
            f"destination:{region.slug}",
            "destination",
            region.name_en,
            region.name_ko,
            region.code,
            hierarchy="destination",
            parent="total",
            definition=region.definition,
        )
        s.add(raw.trade_region[region.code], SRC_TRADE_REGION)
        nodes = [*nodes, s]
        series.append(s)
    covered = [frozenset({c}) for c in TRADE_REGION_COUNTRIES] + [r.members for r in REGIONS]
    seen: set[str] = set()
    for members in covered:
        if seen & members:
            raise DatasetCheckError(f"destinations are not disjoint: {sorted(seen & members)} counted twice")
        seen |= members
    rest = _Series(
        "destination:rest_of_world",
        "destination",
        "Rest of the world (total minus China, US, Japan, India and the five regions)",
        "기타 지역",
        "",
        hierarchy="destination",
        parent="total",
        definition=(f"total minus {', '.join(n.unique_id for n in nodes)}, in the months where all are observed"),
    )
    rest.add(_difference(total.months(), [n.months() for n in nodes], "destination:rest_of_world"), SRC_REST)
    outside = {m: sum(v[m] for c, v in countries.items() if c not in seen and m in v) for m in sorted(raw.country_sum)}
    check = _check_abs(
        "destination:rest_of_world",
        "total minus the parts",
        _between(rest.months(), "2025-01", "2025-12"),
        "sum of the countries outside the parts (all-country file)",
        outside,
        0,
    )
    return series, rest, check


def _dataset_checks(raw: _RawFiles, series: list[_Series]) -> list[str]:
    """Checks on the assembled dataset: annual anchors, the hierarchy, ids, values, sources."""
    checks: list[str] = []
    total = series[0]
    by_id = {s.unique_id: s for s in series}
    for year, anchor in OFFICIAL_ANNUAL_TOTALS_USD_BN.items():
        checks.append(
            _year_in_progress("total", total.months(), year)
            or _check_annual("total", total.months(), year, anchor, TOTAL_ANCHOR_TOLERANCE)
        )
    for uid, year, anchor in ANNUAL_ANCHORS_USD_BN:
        months = by_id[uid].months() if uid != "item:semiconductors" else raw.semiconductors
        checks.append(
            _year_in_progress(uid, months, year) or _check_annual_abs(uid, months, year, anchor, ANCHOR_ROUNDING_USD_BN)
        )
    checks.append(
        _check_annual(
            "KOSIS semiconductors", raw.kosis, 2024, SEMICONDUCTORS_2024_USD_BN, SEMICONDUCTORS_ANCHOR_TOLERANCE
        )
    )
    checks.extend(check_hierarchy({s.unique_id: (s.hierarchy, s.parent, s.months()) for s in series}))
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
    checks.append(
        f"{len(series)} series, {sum(len(s.rows) for s in series)} rows: no duplicate "
        f"(unique_id, ds), every y a finite non-negative whole number of USD, every row "
        f"with a source"
    )
    return checks


def _report_band(series_id: str, chosen_label: str, chosen: Monthly, other_label: str, other: Monthly) -> str:
    """Evidence only (no tolerance): the range of (other - chosen) / chosen over the overlap."""
    overlap = sorted(set(chosen) & set(other))
    if not overlap:
        return f"{series_id}: {chosen_label} and {other_label} have no month in common"
    diffs = [(Decimal(other[m]) - Decimal(chosen[m])) / Decimal(chosen[m]) for m in overlap if chosen[m]]
    return (
        f"{series_id}: {other_label} vs {chosen_label} (evidence), {len(overlap)} months "
        f"{overlap[0]}..{overlap[-1]}: relative difference {_pct(min(diffs))} .. {_pct(max(diffs))}"
    )


def check_hierarchy(nodes: dict[str, tuple[str, str, Monthly]]) -> list[str]:
    """Each parent equals the sum of its children of one hierarchy (item | destination) in every
    month where the parent and all those children are observed, to the dollar. ``nodes``:
    unique_id -> (hierarchy, parent id or '', months)."""
    children: dict[tuple[str, str], list[str]] = defaultdict(list)
    for uid, (hierarchy, parent, _) in nodes.items():
        if parent:
            if parent not in nodes:
                raise DatasetCheckError(f"{uid}: parent {parent!r} is not a series")
            children[(parent, hierarchy)].append(uid)
    out = []
    for (parent, hierarchy), kids in sorted(children.items()):
        months = set(nodes[parent][2])
        for kid in kids:
            months &= set(nodes[kid][2])
        if not months:
            raise DatasetCheckError(
                f"{parent}: no month where it and its {len(kids)} {hierarchy} children are all observed"
            )
        for month in sorted(months):
            total = sum(nodes[kid][2][month] for kid in kids)
            if total != nodes[parent][2][month]:
                raise DatasetCheckError(
                    f"{parent} {month}: its {len(kids)} {hierarchy} children sum "
                    f"to {total} USD, the series has {nodes[parent][2][month]} USD"
                )
        out.append(
            f"{parent} = sum of its {len(kids)} {hierarchy} children in all {len(months)} "
            f"months {min(months)}..{max(months)} where all are observed, to the dollar"
        )
    return out


def _months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:]) - int(first[5:]) + 1


def _backtest_note(n_obs: int) -> str:
    if n_obs >= MIN_MONTHS_FOR_BACKTEST:
        return "yes"
    return (
        f"no: {n_obs} observed months, a backtest window needs {MIN_MONTHS_FOR_BACKTEST} "
        f"(24 to fit the seasonal models, 12 to score)"
    )


def _summary(s: _Series) -> SeriesSummary:
    months = sorted(s.rows)
    sources: list[str] = []
    for month in months:  # distinct sources in order of first appearance
        if s.rows[month][1] not in sources:
            sources.append(s.rows[month][1])
    return SeriesSummary(
        s.unique_id,
        s.level,
        s.name_en,
        s.name_ko,
        s.code,
        months[0],
        months[-1],
        len(months),
        _months_between(months[0], months[-1]) - len(months),
        tuple(sources),
        s.hierarchy,
        s.parent,
        _backtest_note(len(months)),
        s.definition,
    )


# --------------------------------------------------------------------------- entry point
def build_dataset(raw_dir: Path, out_dir: Path) -> BuildReport:
    """Read the raw files in ``raw_dir``, run every check, write ``exports_monthly.csv``,
    ``series.csv``, ``indicators_monthly.csv`` and ``indicators_rejected.csv`` into ``out_dir``.
    Raises ``DatasetCheckError`` (nothing is written) if a file is malformed, overlapping sources
    disagree beyond tolerance, or a check fails."""

    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise DatasetCheckError(f"raw directory {raw_dir} does not exist")
    series, checks = _assemble(raw_dir)
    accepted, rejected, indicator_checks = build_indicators(raw_dir)
    checks.extend(indicator_checks)
    summaries = tuple(_summary(s) for s in series)

    exports_rows = sorted(
        ((s.unique_id, f"{month}-01", usd, source) for s in series for month, (usd, source) in s.rows.items()),
        key=lambda row: (row[0], row[1]),
    )
    series_rows = [
        (
            m.unique_id,
            m.level,
            m.name_en,
            m.name_ko,
            m.code,
            "USD",
            m.first_month,
            m.last_month,
            m.n_obs,
            m.n_missing,
            ";".join(m.sources),
            m.hierarchy,
            m.parent,
            m.backtest,
            m.definition,
        )
        for m in summaries
    ]
    write_csv_atomic(out_dir / EXPORTS_FILE, EXPORTS_COLUMNS, exports_rows)
    write_csv_atomic(out_dir / SERIES_FILE, SERIES_COLUMNS, series_rows)
    write_indicators(accepted, rejected, out_dir)
    return BuildReport(out_dir=out_dir, series=summaries, checks=tuple(checks))
