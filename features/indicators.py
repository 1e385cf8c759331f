"""The indicator table: customs flash cuts, the press first prints where they differ, and WSTS
semiconductor billings, each value with the first date it was public.

    accepted, rejected, checks = build_indicators(Path("../shared/data/raw"))
    write_indicators(accepted, rejected, Path("data"))

``data/indicators_monthly.csv`` is a long table ``indicator, ds, value, unit, available_from,
source`` (value in whole USD; ``available_from`` = YYYY-MM-DD). Indicator names are
``<release>_<cut>:<subject>`` (cut ``10d`` = days 1-10, ``20d`` = days 1-20, ``month`` = the
whole month):

- ``customs_10d|20d|month:total`` and ``...:group_<slug>``: the Korea Customs Service's
  provisional figures (export_10day.csv, 2016-01..2025-12) for the total and its 10 item groups.
  The groups are the CUSTOMS service's own (passenger cars only, a wider steel group, ...), NOT
  MTI items, hence the ``group_`` prefix: indicators or long-history proxies, never MTI series.
- ``press_10d|20d:total``: the press first print of a flash release (customs_flash.csv), ONLY
  where it differs from the customs file beyond the press rounding (0.05 bn USD): the first
  release a forecaster saw that month, later revised.
- ``wsts_month:billings_<region>``: World Semiconductor Trade Statistics billings (thousand USD
  in the source), a candidate leading indicator of semiconductor exports.
- the chip market (``market-compiled/``, issue 24), prices, not export figures (unit column):
  ``phlx_close:sox`` the Philadelphia Semiconductor Index (``points``), ``krx_close:samsung_005930``
  and ``krx_close:skhynix_000660`` the Korea Exchange month-end closes (``KRW``; the split and
  capital-reduction adjustments are in the files), ``bok_month:dram_export_price_usd`` the Bank
  of Korea's DRAM export price index, contract-currency (= USD) basis, 2020 = 100 (``index``).
  The KRW-basis copy of the index is left out: it starts only in 2019, and Korea's exports are
  counted in USD (the won's moves are in the KRX closes already).

Publication dates (``available_from``), conservative where the date is not in the file: the
rules of ``features.publication`` (the customs flash on the 11th and 21st, a whole month on the
16th of the next month, WSTS on the 15th of the second month after, ...).

The table goes through :func:`features.contract.validate_indicators`; rows it rejects (e.g. a
part-month figure above the whole month) are written to ``indicators_rejected.csv`` with the
reason, never silently dropped.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pandas as pd

from features.contract import INDICATOR_COLUMNS, validate_indicators
from features.publication import available_from
from features.raw_tables import (
    CUSTOMS_FLASH,
    EXPORT_10DAY,
    TENDAY_CUTS,
    WSTS,
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

INDICATORS_FILE = "indicators_monthly.csv"
REJECTED_FILE = "indicators_rejected.csv"
REJECTED_COLUMNS: tuple[str, ...] = (*INDICATOR_COLUMNS, "reason")

# export_10day item (Korean, as in the source) -> subject
CUSTOMS_SUBJECTS: dict[str, str] = {
    "전체": "total",
    "반도체": "group_semiconductors",
    "철강제품": "group_steel_products",
    "승용차": "group_passenger_cars",
    "석유제품": "group_petroleum_products",
    "무선통신기기": "group_wireless_devices",
    "선박": "group_ships",
    "자동차부품": "group_auto_parts",
    "컴퓨터주변기기": "group_computer_peripherals",
    "정밀기기": "group_precision_instruments",
    "가전제품": "group_home_appliances",
}
CUSTOMS_CUTS: dict[str, str] = {"01~10": "10d", "01~20": "20d", "월전체": "month"}
FLASH_CUTS: dict[str, str] = {"10d": "10d", "20d": "20d"}
WSTS_REGIONS: dict[str, str] = {
    "Americas": "billings_americas",
    "Europe": "billings_europe",
    "Japan": "billings_japan",
    "Asia Pacific": "billings_asia_pacific",
    "Worldwide": "billings_worldwide",
}
# the press prints 0.1 bn USD: a first print differs from the customs file when further apart
# than that rounding
PRESS_ROUNDING_USD = 50_000_000
# WSTS checks (PROVENANCE.md): Worldwide annual sums, USD bn, to their rounding; the regions sum
# to Worldwide within 2 thousand USD on every row
WSTS_WORLDWIDE_USD_BN = {2022: Decimal("574.08"), 2023: Decimal("526.89"), 2024: Decimal("630.55")}
WSTS_REGION_SUM_TOLERANCE_USD = 2_000

SRC_CUSTOMS = f"customs-provisional:{EXPORT_10DAY}"
SRC_PRESS = f"press-first-print:{CUSTOMS_FLASH}"
SRC_WSTS = f"wsts:{WSTS}"

MARKET_DIR = "market-compiled"
#: indicator -> (file under market-compiled/, value column, unit)
MARKET_SERIES: dict[str, tuple[str, str, str]] = {
    "phlx_close:sox": ("sox_monthly.csv", "close", "points"),
    "krx_close:samsung_005930": ("samsung_005930_monthly.csv", "close", "KRW"),
    "krx_close:skhynix_000660": ("skhynix_000660_monthly.csv", "close", "KRW"),
    "bok_month:dram_export_price_usd": ("dram_export_price_index_usd_monthly.csv", "value", "index"),
}


def read_customs_flash(raw_dir: Path) -> dict[str, dict[str, tuple[int, str]]]:
    """customs_flash.csv: cut ('10d' | '20d') -> month -> (USD, news_id)."""
    frame = read_raw_table(raw_dir, CUSTOMS_FLASH, ["date", "period", "news_id", "export_usd"])
    rows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    news: dict[tuple[str, str], str] = {}
    for i, rec in enumerate(frame.itertuples(index=False)):
        line = line_number(i)
        cut = rec.period.strip()
        if cut not in FLASH_CUTS:
            raise DatasetCheckError(
                f"{CUSTOMS_FLASH} line {line}, column period: expected 10d or 20d, found {rec.period!r}"
            )
        month = parse_raw_month(rec.date, CUSTOMS_FLASH, line, "date")
        rows[cut].append((month, parse_raw_usd(rec.export_usd, CUSTOMS_FLASH, line, "export_usd"), line))
        news[(cut, month)] = rec.news_id.strip()
    collected = {cut: collect_months(r, CUSTOMS_FLASH, cut) for cut, r in rows.items()}
    return {cut: {m: (v, news[(cut, m)]) for m, v in months.items()} for cut, months in collected.items()}


def read_wsts(raw_dir: Path) -> dict[str, Monthly]:
    """wsts_billings.csv: region column -> months, thousand USD -> USD. Checks that the regions
    sum to Worldwide within rounding on every row."""
    frame = read_raw_table(raw_dir, WSTS, ["date", *WSTS_REGIONS])
    out: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for i, rec in enumerate(frame.to_dict("records")):
        line = line_number(i)
        month = parse_raw_month(rec["date"], WSTS, line, "date")
        values = {col: parse_raw_usd(rec[col], WSTS, line, col, scale=1000) for col in WSTS_REGIONS}
        parts = sum(v for col, v in values.items() if col != "Worldwide")
        if abs(parts - values["Worldwide"]) > WSTS_REGION_SUM_TOLERANCE_USD:
            raise DatasetCheckError(
                f"{WSTS} line {line}: the regions sum to {parts} USD, Worldwide is "
                f"{values['Worldwide']} USD (tolerance {WSTS_REGION_SUM_TOLERANCE_USD} USD)"
            )
        for col, usd in values.items():
            out[col].append((month, usd, line))
    return {col: collect_months(r, WSTS, col) for col, r in out.items()}


def read_market(raw_dir: Path) -> list[tuple[str, str, float, str, str, str]]:
    """The chip-market rows (``MARKET_SERIES``) in each file's order, as indicator rows; the value
    as written (a positive decimal), the source naming the row's repository, path and commit."""
    rows = []
    for name, (file, column, unit) in MARKET_SERIES.items():
        rel = f"{MARKET_DIR}/{file}"
        frame = read_raw_table(raw_dir, rel, ["month", column, "source_repo", "source_path", "source_commit"])
        release, cut = name.split(":")[0].split("_")
        for i, rec in enumerate(frame.to_dict("records")):
            month = parse_raw_month(rec["month"], rel, line_number(i), "month")
            try:
                value = float(Decimal(rec[column].strip()))
            except InvalidOperation:
                raise DatasetCheckError(
                    f"{rel} line {line_number(i)}, column {column}: not a number: {rec[column]!r}"
                ) from None
            source = f"market-price:{rel} ({rec['source_repo']} {rec['source_path']} @{rec['source_commit'][:8]})"
            rows.append((name, f"{month}-01", value, unit, available_from(cut, month, release=release), source))
    return rows


def build_indicators(raw_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The candidate rows from the raw files, through the indicator contract:
    ``(accepted, rejected, checks)``."""
    raw_dir = Path(raw_dir)
    rows: list[tuple[str, str, int, str, str, str]] = []
    tenday = read_export_10day(raw_dir)
    for (item, cut_raw), months in sorted(tenday.items()):
        if item not in CUSTOMS_SUBJECTS:
            raise DatasetCheckError(f"{EXPORT_10DAY}: unknown item {item!r} (known: {', '.join(CUSTOMS_SUBJECTS)})")
        cut = CUSTOMS_CUTS[cut_raw]
        name = f"customs_{cut}:{CUSTOMS_SUBJECTS[item]}"
        rows.extend((name, f"{m}-01", v, "USD", available_from(cut, m), SRC_CUSTOMS) for m, v in months.items())
    total_cut = {CUSTOMS_CUTS[c]: tenday[("전체", c)] for c in TENDAY_CUTS}
    flash = read_customs_flash(raw_dir)
    n_flash = n_same = 0
    for cut, months in sorted(flash.items()):
        for month, (usd, news_id) in sorted(months.items()):
            n_flash += 1
            reference = total_cut[cut].get(month)
            if reference is not None and abs(usd - reference) <= PRESS_ROUNDING_USD:
                n_same += 1
                continue
            rows.append(
                (
                    f"press_{cut}:total",
                    f"{month}-01",
                    usd,
                    "USD",
                    available_from(cut, month),
                    f"{SRC_PRESS} (news_id {news_id})",
                )
            )
    wsts = read_wsts(raw_dir)
    checks = []
    for year, anchor in WSTS_WORLDWIDE_USD_BN.items():
        in_year = [v for m, v in wsts["Worldwide"].items() if m.startswith(f"{year}-")]
        total_bn = Decimal(sum(in_year)) / 10**9
        if len(in_year) != 12 or abs(total_bn - anchor) > Decimal("0.005"):
            raise DatasetCheckError(
                f"{WSTS} {year}: Worldwide sums to {total_bn:.3f} bn USD over "
                f"{len(in_year)} months, WSTS published {anchor} bn"
            )
        checks.append(f"WSTS Worldwide {year}: {total_bn:.3f} bn USD vs published {anchor}")
    for col, subject in WSTS_REGIONS.items():
        rows.extend(
            (f"wsts_month:{subject}", f"{m}-01", v, "USD", available_from("month", m, release="wsts"), SRC_WSTS)
            for m, v in wsts[col].items()
        )
    rows.extend(read_market(raw_dir))
    frame = pd.DataFrame(rows, columns=list(INDICATOR_COLUMNS))
    accepted, rejected = validate_indicators(frame, "indicators built from the raw files")
    checks.append(
        f"press first prints: {n_flash} rows, {n_same} equal to the customs file within "
        f"0.05 bn (not repeated), {n_flash - n_same} kept as press_* rows"
    )
    checks.append(
        f"indicators: {len(accepted)} rows accepted, {len(rejected)} rejected by the contract"
        + "".join(f"; rejected {r.indicator} {r.ds:%Y-%m}: {r.reason}" for r in rejected.itertuples())
    )
    return accepted, rejected, checks


def _rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[tuple[object, ...]]:
    out = []
    for rec in frame.sort_values(["indicator", "ds"], kind="stable").to_dict("records"):
        value = int(rec["value"]) if rec["unit"] == "USD" else format(rec["value"], ".12g")  # a price as written
        row = dict(rec, ds=f"{rec['ds']:%Y-%m-%d}", value=value, available_from=f"{rec['available_from']:%Y-%m-%d}")
        out.append(tuple(row[c] for c in columns))
    return out


def write_indicators(accepted: pd.DataFrame, rejected: pd.DataFrame, out_dir: Path) -> None:
    """Write both tables atomically (whole USD, prices as written, dates YYYY-MM-DD, sorted by
    indicator and ds)."""
    write_csv_atomic(Path(out_dir) / INDICATORS_FILE, INDICATOR_COLUMNS, _rows(accepted, INDICATOR_COLUMNS))
    write_csv_atomic(Path(out_dir) / REJECTED_FILE, REJECTED_COLUMNS, _rows(rejected, REJECTED_COLUMNS))
