"""The indicator table: built from the raw files, the indicator contract (a generic rule rejects
the two rows wrong in the source, with the reason), the publication dates and the reader."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features import indicators as ind
from features.contract import DataValidationError, validate_indicators
from features.readers import read_indicators

RAW = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "raw"
REPO_DATA = Path(__file__).resolve().parents[2] / "data"
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason=f"shared raw data not found at {RAW}")
PRESS_SRC = "press-first-print:rohan-joshua-git+south-korea-export-forecast/customs_flash.csv"


@pytest.fixture(scope="module")
def built():
    if not RAW.is_dir():
        pytest.skip(f"shared raw data not found at {RAW}")
    return ind.build_indicators(RAW)


@needs_raw
def test_both_wrong_source_rows_are_rejected_by_the_generic_rule_with_the_reason(built):
    accepted, rejected, checks = built
    got = [(r.indicator, f"{r.ds:%Y-%m}", r.value, r.source, r.reason) for r in rejected.itertuples()]
    assert got == [
        (
            "press_10d:total",
            "2022-02",
            71.0e9,
            f"{PRESS_SRC} (news_id 156495135)",
            "days 1-10 figure 71.000 bn USD exceeds the whole-month figure 54.156 bn USD of the same month "
            "(customs_month:total): a part of a month cannot exceed the month",
        ),
        (
            "press_20d:total",
            "2022-09",
            500.4e9,
            f"{PRESS_SRC} (news_id 156526764)",
            "days 1-20 figure 500.400 bn USD exceeds the whole-month figure 57.176 bn USD of the same month "
            "(customs_month:total): a part of a month cannot exceed the month",
        ),
    ]
    assert not (
        (accepted.indicator.str.startswith("press_"))
        & accepted.ds.isin([pd.Timestamp("2022-02-01"), pd.Timestamp("2022-09-01")])
    ).any()
    # the committed record of the rejected rows
    assert (REPO_DATA / "indicators_rejected.csv").read_text(encoding="utf-8").splitlines()[
        0
    ] == "indicator,ds,value,unit,available_from,source,reason"
    assert len((REPO_DATA / "indicators_rejected.csv").read_text(encoding="utf-8").splitlines()) == 3


@needs_raw
def test_table_content_and_publication_dates(built):
    accepted, _, checks = built
    counts = accepted.indicator.value_counts()
    customs = [i for i in counts.index if i.startswith("customs_")]
    assert len(customs) == 33 and (counts[customs] == 120).all()  # 11 subjects x 3 cuts, 2016-2025
    assert counts["press_10d:total"] == 20 and counts["press_20d:total"] == 24
    assert all(counts[f"wsts_month:{s}"] == 480 for s in ind.WSTS_REGIONS.values())
    assert len(accepted) == 6404 + 380 + 370 + 312 + 372  # + SOX, Samsung, SK hynix, the DRAM index
    assert (
        "press first prints: 80 rows, 34 equal to the customs file within 0.05 bn (not repeated), "
        "46 kept as press_* rows"
    ) in checks
    row = accepted.set_index(["indicator", "ds"])
    m = pd.Timestamp("2024-10-01")
    assert row.loc[("customs_10d:total", m), "available_from"] == pd.Timestamp("2024-10-11")
    assert row.loc[("customs_20d:total", m), "available_from"] == pd.Timestamp("2024-10-21")
    assert row.loc[("customs_month:total", m), "available_from"] == pd.Timestamp("2024-11-16")
    assert row.loc[("wsts_month:billings_worldwide", m), "available_from"] == pd.Timestamp("2024-12-15")
    assert row.loc[("wsts_month:billings_worldwide", pd.Timestamp("2025-12-01")), "available_from"] == pd.Timestamp(
        "2026-02-15"
    )
    # the customs whole-month total is the dataset's confirmed total (2022-07: 60,241,774 thousand USD)
    assert row.loc[("customs_month:total", pd.Timestamp("2022-07-01")), "value"] == 60_241_774_000
    assert row.loc[("customs_10d:group_semiconductors", pd.Timestamp("2016-01-01")), "value"] == 1_108_532_000
    # a press first print kept where it differs from the later provisional figure (2023-04: 14.0 vs 13.52)
    assert row.loc[("press_10d:total", pd.Timestamp("2023-04-01")), "value"] == 14.0e9
    assert "WSTS Worldwide 2024: 630.549 bn USD vs published 630.55" in checks


@needs_raw
def test_chip_market_series_units_values_and_publication_dates(built):
    accepted, _, _ = built
    row = accepted.set_index(["indicator", "ds"])
    spans = accepted.groupby("indicator")["ds"].agg(["min", "max", "size"])
    assert spans.loc["phlx_close:sox"].tolist() == [pd.Timestamp("1994-05-01"), pd.Timestamp("2025-12-01"), 380]
    assert spans.loc["krx_close:samsung_005930"].tolist() == [
        pd.Timestamp("1995-03-01"),
        pd.Timestamp("2025-12-01"),
        370,
    ]
    assert spans.loc["krx_close:skhynix_000660"].tolist() == [
        pd.Timestamp("2000-01-01"),
        pd.Timestamp("2025-12-01"),
        312,
    ]
    assert spans.loc["bok_month:dram_export_price_usd"].tolist() == [
        pd.Timestamp("1995-01-01"),
        pd.Timestamp("2025-12-01"),
        372,
    ]
    assert "bok_month:dram_export_price_krw" not in spans.index  # the KRW copy is left out
    units = accepted.groupby("indicator")["unit"].unique().map(list)
    assert units["phlx_close:sox"] == ["points"] and units["krx_close:skhynix_000660"] == ["KRW"]
    assert units["bok_month:dram_export_price_usd"] == ["index"] and units["wsts_month:billings_worldwide"] == ["USD"]
    # values as in the files (adjustments already there: SOX halved before 1995-07, SK hynix x 2835/2650)
    assert row.loc[("phlx_close:sox", pd.Timestamp("2022-12-01")), "value"] == 2532.1127  # 2,532.11 printed
    assert row.loc[("phlx_close:sox", pd.Timestamp("1994-05-01")), "value"] == 121.775
    assert row.loc[("krx_close:samsung_005930", pd.Timestamp("2024-12-01")), "value"] == 53_200
    assert row.loc[("krx_close:skhynix_000660", pd.Timestamp("2023-12-01")), "value"] == 141_500
    assert row.loc[("krx_close:skhynix_000660", pd.Timestamp("2000-01-01")), "value"] == 554_399.8
    assert row.loc[("bok_month:dram_export_price_usd", pd.Timestamp("2025-12-01")), "value"] == 111.22
    # a close: the month's last weekday (2023-12: Friday the 29th; 2025-11: Friday the 28th);
    # the price index: the 15th of the next month
    assert row.loc[("krx_close:skhynix_000660", pd.Timestamp("2023-12-01")), "available_from"] == pd.Timestamp(
        "2023-12-29"
    )
    assert row.loc[("phlx_close:sox", pd.Timestamp("2025-11-01")), "available_from"] == pd.Timestamp("2025-11-28")
    assert row.loc[("bok_month:dram_export_price_usd", pd.Timestamp("2025-12-01")), "available_from"] == pd.Timestamp(
        "2026-01-15"
    )
    source = row.loc[("krx_close:skhynix_000660", pd.Timestamp("2025-12-01")), "source"]
    assert source == (
        "market-price:market-compiled/skhynix_000660_monthly.csv "
        "(voxprepstudiohelp-stack/sfd-pipeline data/ohlcv/000660.csv @ee008bed)"
    )


def test_committed_prices_are_written_as_in_the_files():
    text = (REPO_DATA / "indicators_monthly.csv").read_text(encoding="utf-8")
    assert "\nphlx_close:sox,1994-05-01,121.775,points,1994-05-31," in text
    assert "\nkrx_close:samsung_005930,1995-03-01,1814,KRW,1995-03-31," in text
    assert "\nbok_month:dram_export_price_usd,2025-12-01,111.22,index,2026-01-15," in text
    table = read_indicators(REPO_DATA)
    assert table.loc[table.indicator == "phlx_close:sox", "value"].iloc[0] == 121.775


def test_available_from_rules():
    assert ind.available_from("close", "2025-08") == "2025-08-29"  # Sunday the 31st: Friday the 29th
    assert ind.available_from("close", "2025-12") == "2025-12-31"
    assert ind.available_from("month", "2025-12", release="bok") == "2026-01-15"
    assert ind.available_from("10d", "2025-12") == "2025-12-11"
    assert ind.available_from("20d", "2025-12") == "2025-12-21"
    assert ind.available_from("month", "2025-12") == "2026-01-16"
    assert ind.available_from("month", "2025-11", release="wsts") == "2026-01-15"
    assert ind.available_from("month", "2025-10", release="wsts") == "2025-12-15"


def _frame(rows):
    return pd.DataFrame(rows, columns=["indicator", "ds", "value", "unit", "available_from", "source"])


def test_generic_rule_rejects_a_part_month_above_the_month_or_a_conflicting_cut():
    rows = [
        ["customs_month:total", "2030-01-01", "50000000000", "USD", "2030-02-16", "s"],
        ["customs_10d:total", "2030-01-01", "15000000000", "USD", "2030-01-11", "s"],
        ["press_20d:total", "2030-01-01", "60000000000", "USD", "2030-01-21", "p"],  # above the month
        ["customs_10d:group_x", "2030-02-01", "9", "USD", "2030-02-11", "s"],  # 10d above 20d,
        ["customs_20d:group_x", "2030-02-01", "8", "USD", "2030-02-21", "s"],  # no month
        ["customs_10d:group_x", "2030-03-01", "7", "USD", "2030-03-11", "s"],  # fine
    ]
    accepted, rejected = validate_indicators(_frame(rows), "t.csv")
    assert [(r.indicator, f"{r.ds:%Y-%m}") for r in accepted.itertuples()] == [
        ("customs_10d:group_x", "2030-03"),
        ("customs_10d:total", "2030-01"),
        ("customs_month:total", "2030-01"),
    ]
    assert dict(zip(rejected.indicator + " " + rejected.ds.dt.strftime("%Y-%m"), rejected.reason)) == {
        "customs_10d:group_x 2030-02": "days 1-10 figure 9 USD (customs_10d:group_x) exceeds the days 1-20 "
        "figure 8 USD (customs_20d:group_x) of 2030-02: one of the two is "
        "wrong and nothing tells which",
        "customs_20d:group_x 2030-02": "days 1-10 figure 9 USD (customs_10d:group_x) exceeds the days 1-20 "
        "figure 8 USD (customs_20d:group_x) of 2030-02: one of the two is "
        "wrong and nothing tells which",
        "press_20d:total 2030-01": "days 1-20 figure 60.000 bn USD exceeds the whole-month figure 50.000 bn USD "
        "of the same month (customs_month:total): a part of a month cannot exceed the "
        "month",
    }
    assert list(rejected.columns) == ["indicator", "ds", "value", "unit", "available_from", "source", "reason"]
    assert str(accepted.ds.dtype) == "datetime64[ns]" and str(accepted.available_from.dtype) == "datetime64[ns]"


def test_structural_problems_raise_one_error_naming_line_and_column():
    rows = [
        ["Customs 10d total", "2030-01-01", "1", "USD", "2030-01-11", "s"],
        ["customs_10d:total", "2030-01-15", "1", "USD", "2030-01-11", "s"],
        ["customs_20d:total", "2030-01-01", "-1", "EUR", "2030-01-20", ""],
        ["customs_month:total", "2030-01-01", "1", "USD", "2030-01-31", "s"],
        ["customs_month:total", "2030-01", "1", "USD", "2030/02/16", "s"],
    ]
    with pytest.raises(DataValidationError) as info:
        validate_indicators(_frame(rows), "t.csv")
    assert info.value.errors == [
        "t.csv line 2, column indicator: 'Customs 10d total' is not '<release>_<10d|20d|month|close>:<subject>' "
        "(lower case, digits, underscores)",
        "t.csv line 3, column ds: '2030-01-15' is not a month start (day 15; write YYYY-MM or YYYY-MM-01)",
        "t.csv line 4, column value: '-1' is negative (exports in USD are >= 0)",
        "t.csv line 4, column unit: 'EUR' (values must be in USD, KRW, points, index)",
        "t.csv line 6, column available_from: '2030/02/16' is not a date YYYY-MM-DD",
        "t.csv line 4, column source: empty source",
        "t.csv line 4, column available_from: 2030-01-20 is before the days 1-20 figure of 2030-01 could "
        "exist (2030-01-21)",
        "t.csv line 5, column available_from: 2030-01-31 is before the whole-month figure of 2030-01 could "
        "exist (2030-02-01)",
        "t.csv line 6: duplicate of line 5 (indicator 'customs_month:total', ds 2030-01)",
    ]
    with pytest.raises(
        DataValidationError,
        match=r"t.csv line 3: duplicate of line 2 \(indicator "
        r"'customs_10d:total', ds 2030-01\)",
    ):
        validate_indicators(_frame([rows[1][:1] + ["2030-01"] + rows[1][2:]] * 2), "t.csv")


def test_price_series_in_month_order_positive_and_without_a_gap():
    good = [["krx_close:x", f"2030-0{m}-01", "10.5", "KRW", f"2030-0{m}-28", "s"] for m in (1, 2, 3)]
    accepted, rejected = validate_indicators(
        _frame(good + [["bok_month:p", "2030-01-01", "99.5", "Index", "2030-02-15", "s"]]), "t.csv"
    )
    assert accepted["unit"].tolist() == ["index", "KRW", "KRW", "KRW"] and rejected.empty
    rows = [
        ["krx_close:x", "2030-02-01", "10", "KRW", "2030-02-28", "s"],
        ["krx_close:x", "2030-01-01", "11", "KRW", "2030-01-31", "s"],  # out of order
        ["phlx_close:y", "2030-01-01", "0", "points", "2030-01-31", "s"],  # not positive
        ["phlx_close:y", "2030-04-01", "5", "points", "2030-04-30", "s"],  # 02, 03 missing
        ["bok_month:z", "2030-01-01", "5", "index", "2030-02-15", "s"],
        ["phlx_close:w", "2030-01-01", "5", "points", "2030-01-21", "s"],  # before the 22nd
    ]
    with pytest.raises(DataValidationError) as info:
        validate_indicators(_frame(rows), "t.csv")
    assert info.value.errors == [
        "t.csv line 7, column available_from: 2030-01-21 is before the month-end close figure of 2030-01 could "
        "exist (2030-01-22)"
    ]
    with pytest.raises(DataValidationError) as info:
        validate_indicators(_frame(rows[:5]), "t.csv")
    assert info.value.errors == [
        "t.csv line 3, indicator 'krx_close:x': month 2030-01 follows 2030-02 (a price series' rows must be in month order)",
        "t.csv line 4, indicator 'phlx_close:y', column value: 0 in 2030-01 (a price must be positive)",
        "t.csv, indicator 'phlx_close:y': month 2030-02 missing inside its span 2030-01..2030-04 (2 months missing)",
    ]


def test_reader_types_filters_by_as_of_and_refuses_a_row_the_contract_rejects(tmp_path):
    frame = read_indicators(REPO_DATA)
    assert list(frame.columns) == ["indicator", "ds", "value", "unit", "available_from", "source"]
    assert len(frame) == 7838 and frame.value.dtype == "float64"
    as_of = read_indicators(REPO_DATA, as_of="2025-12-11")
    assert as_of.available_from.max() == pd.Timestamp("2025-12-11")
    assert set(as_of[as_of.ds == pd.Timestamp("2025-12-01")].indicator) == {"customs_10d:total", "press_10d:total"} | {
        f"customs_10d:{s}" for s in ind.CUSTOMS_SUBJECTS.values() if s != "total"
    }
    (tmp_path / "indicators_monthly.csv").write_text(
        "indicator,ds,value,unit,available_from,source\n"
        "customs_month:total,2030-01-01,10,USD,2030-02-16,s\n"
        "press_10d:total,2030-01-01,11,USD,2030-01-11,p\n",
        encoding="utf-8",
    )
    with pytest.raises(DataValidationError) as info:
        read_indicators(tmp_path)
    assert info.value.errors == [
        f"{tmp_path / 'indicators_monthly.csv'}: press_10d:total 2030-01: days 1-10 figure 11 USD exceeds "
        f"the whole-month figure 10 USD of the same month (customs_month:total): a part of a month cannot "
        f"exceed the month"
    ]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_raw_flash_and_wsts_readers(tmp_path):
    _write(
        tmp_path / ind.CUSTOMS_FLASH,
        "date,period,news_id,export_usd,export_yoy_pct\n"
        "2022-02-01,10d,156495135,71000000000.0,7.6\n"
        "2022-02-01,20d,7,32000000000.0,1.0\n",
    )
    assert ind.read_customs_flash(tmp_path) == {
        "10d": {"2022-02": (71_000_000_000, "156495135")},
        "20d": {"2022-02": (32_000_000_000, "7")},
    }
    _write(tmp_path / ind.CUSTOMS_FLASH, "date,period,news_id,export_usd\n2022-02-01,30d,1,1.0\n")
    with pytest.raises(ind.DatasetCheckError) as info:
        ind.read_customs_flash(tmp_path)
    assert str(info.value) == f"{ind.CUSTOMS_FLASH} line 2, column period: expected 10d or 20d, found '30d'"
    _write(
        tmp_path / ind.WSTS,
        "date,Americas,Europe,Japan,Asia Pacific,Worldwide\n1986-01-01,555850,346467,638547,105050,1645914\n",
    )
    assert ind.read_wsts(tmp_path)["Worldwide"] == {"1986-01": 1_645_914_000}  # thousand USD x 1000
    _write(
        tmp_path / ind.WSTS,
        "date,Americas,Europe,Japan,Asia Pacific,Worldwide\n1986-01-01,555850,346467,638547,105050,1645917\n",
    )
    with pytest.raises(ind.DatasetCheckError) as info:
        ind.read_wsts(tmp_path)
    assert str(info.value) == (
        f"{ind.WSTS} line 2: the regions sum to 1645914000 USD, Worldwide is 1645917000 USD (tolerance 2000 USD)"
    )


def test_the_sixteenth_rule_has_one_home() -> None:
    from features.leading import information_date
    from features.publication import confirmed_on
    from models.applications.nowcast import actual_published

    months = pd.DatetimeIndex(["2023-12-01", "2024-02-01"])
    assert list(confirmed_on(months)) == [pd.Timestamp("2024-01-16"), pd.Timestamp("2024-03-16")]
    assert ind.available_from("month", "2023-12") == "2024-01-16"
    assert information_date("2023-12-01") == pd.Timestamp("2024-01-16")
    assert list(actual_published(months)) == list(confirmed_on(months))
