"""The dataset builder: checks on the real staged files, determinism, the committed data, and
exact error messages on small hand-made raw directories."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from features import dataset_builder as db
from features import raw_tables
from features.dataset_builder import DatasetCheckError, build_dataset, check_hierarchy
from features.regions import ASEAN, CIS, EU27, LATIN_AMERICA, MIDDLE_EAST, REGIONS, slugify

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RAW = SHARED_DATA / "raw"
REPO_DATA = Path(__file__).resolve().parents[2] / "data"
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason=f"shared raw data not found at {RAW}")
BUILT_FILES = ("exports_monthly.csv", "series.csv", "indicators_monthly.csv", "indicators_rejected.csv")


# --------------------------------------------------------------------------- real staged files
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not RAW.is_dir():
        pytest.skip(f"shared raw data not found at {RAW}")
    out = tmp_path_factory.mktemp("build")
    report = build_dataset(RAW, out)
    exports = pd.read_csv(out / "exports_monthly.csv", dtype={"y": "int64"}, keep_default_na=False)
    series = pd.read_csv(out / "series.csv", dtype=str, keep_default_na=False)
    return out, report, exports, series


def _annual_bn(exports: pd.DataFrame, unique_id: str, year: int) -> float:
    rows = exports[(exports.unique_id == unique_id) & exports.ds.str.startswith(f"{year}-")]
    assert len(rows) == 12, f"{unique_id} {year} has {len(rows)} months"
    return rows.y.sum() / 1e9


@needs_raw
def test_total_is_customs_confirmed_in_every_month_and_matches_the_anchors(built):
    _, report, exports, _ = built
    expected = {2010: 466.384, 2018: 604.860, 2021: 644.400, 2022: 683.585, 2023: 632.226, 2024: 683.609, 2025: 709.330}
    for year, value in expected.items():
        total = _annual_bn(exports, "total", year)
        assert round(total, 3) == value
        assert abs(total / float(db.OFFICIAL_ANNUAL_TOTALS_USD_BN[year]) - 1) <= 0.0005
    total = exports[exports.unique_id == "total"]
    assert len(total) == 312 and total.source.str.startswith("customs-confirmed:").all()
    mid = total[total.ds.between("2022-01-01", "2024-12-01")]
    assert len(mid) == 36 and (mid.source == db.SRC_TENDAY).all()
    # the preliminary figures are evidence only: within 0.76% (to its rounding) of the confirmed
    assert (
        "total: ministry preliminary (press, evidence only) vs customs-confirmed (export_10day), 36 "
        "months 2022-01..2024-12: relative difference -0.481% .. +0.761% (tolerance [-0.765%, +0.765%])"
        in report.checks
    )
    assert "total 2024: 683.609 bn USD vs official 683.8 (-0.028%, tolerance ±0.05%)" in report.checks


@needs_raw
def test_extended_anchor_checks(built):
    _, report, exports, _ = built
    for uid, year, anchor in db.ANNUAL_ANCHORS_USD_BN:
        assert abs(_annual_bn(exports, uid, year) - float(anchor)) <= 0.005, (uid, year)
    assert "destination:china 2022: 155.789 bn USD vs official 155.79 (-0.001 bn, tolerance ±0.005 bn)" in report.checks
    assert "item:ships 2024: 25.634 bn USD vs official 25.63 (+0.004 bn, tolerance ±0.005 bn)" in report.checks
    assert (
        "item:semiconductors 2022: 129.229 bn USD vs official 129.23 (-0.001 bn, tolerance ±0.005 bn)" in report.checks
    )
    assert {(u, y) for u, y, _ in db.ANNUAL_ANCHORS_USD_BN} == {
        ("destination:china", 2022),
        ("destination:china", 2023),
        ("destination:china", 2024),
        ("destination:united_states", 2023),
        ("destination:united_states", 2024),
        ("item:semiconductors", 2022),
        ("item:semiconductors", 2023),
        ("item:semiconductors", 2024),
        ("item:automobiles", 2023),
        ("item:ships", 2024),
    }


@needs_raw
def test_items_from_2022_on_the_customs_mti_basis(built):
    _, report, exports, series = built
    meta = series.set_index("unique_id")
    sources = exports.groupby("unique_id").source.unique()
    for item in db.ITEMS:
        uid = f"item:{item.slug}"
        if item.slug == "auto_parts":
            continue
        assert meta.loc[uid, ["first_month", "last_month", "n_obs", "n_missing"]].tolist() == [
            "2022-01",
            "2025-12",
            "48",
            "0",
        ], uid
        assert list(sources[uid]) == [db.SRC_TRADE_INDUSTRY], uid
    # semiconductors: KOSIS differs from customs-MTI by more than 1% in 2022 and 2023, so the long
    # series is a separate one, outside the hierarchy
    assert (
        "item:semiconductors: KOSIS (ministry MTI 831) vs customs-MTI, annual sums: 2022 +1.266%, "
        "2023 +1.089%, 2024 +0.117%, 2025 +0.049% (tolerance ±2.0%); NOT every year within 1%: "
        "item:semiconductors is customs-MTI, KOSIS is item:semiconductors_ministry"
    ) in report.checks
    assert meta.loc["item:semiconductors_ministry", ["first_month", "n_obs", "parent"]].tolist() == [
        "2013-01",
        "156",
        "",
    ]
    assert list(sources["item:semiconductors_ministry"]) == [db.SRC_KOSIS]
    # the KITA items agree with customs-MTI to the thousand dollars, except displays (837 is wider)
    assert (
        "item:automobiles: KITA 자동차 (741) vs customs-MTI (evidence), 48 months 2022-01..2025-12: "
        "relative difference -0.000% .. +0.000%"
    ) in report.checks
    assert (
        "item:displays: KITA 평판디스플레이 및 센서 (837) vs customs-MTI (evidence), 48 months "
        "2022-01..2025-12: relative difference +0.483% .. +1.612%"
    ) in report.checks


@needs_raw
def test_auto_parts_2011_2025_on_one_basis(built):
    _, _, exports, series = built
    rows = exports[exports.unique_id == "item:auto_parts"].set_index("ds")
    assert len(rows) == 180 and rows.index[0] == "2011-01-01" and rows.index[-1] == "2025-12-01"
    assert (rows.loc[:"2021-12-01", "source"] == db.SRC_KSTAT_742).all()
    assert (rows.loc["2022-01-01":, "source"] == db.SRC_TRADE_INDUSTRY).all()
    # K-stat thousand USD x 1000; October is written 2011.1 in the file (2,031,299 thousand USD)
    assert rows.loc["2011-10-01", "y"] == 2_031_299_000
    assert rows.loc["2011-01-01", "y"] == 1_770_908_000
    assert round(_annual_bn(exports, "item:auto_parts", 2018), 2) == 23.12  # PROVENANCE
    assert round(_annual_bn(exports, "item:auto_parts", 2021), 2) == 22.78
    assert round(_annual_bn(exports, "item:auto_parts", 2022), 2) == 23.24


@needs_raw
def test_china_us_japan_have_no_gap_and_customs_regions_start_2021_08(built):
    _, _, exports, series = built
    meta = series.set_index("unique_id")
    for slug in ("china", "united_states", "japan"):
        assert meta.loc[f"destination:{slug}", ["first_month", "last_month", "n_obs", "n_missing"]].tolist() == [
            "2000-01",
            "2025-12",
            "312",
            "0",
        ]
    for slug in ("india", "asean", "eu", "middle_east", "latin_america", "cis", "rest_of_world"):
        assert meta.loc[f"destination:{slug}", ["first_month", "last_month", "n_obs", "n_missing"]].tolist() == [
            "2021-08",
            "2025-12",
            "53",
            "0",
        ], slug
    # Vietnam and Hong Kong keep their gap; a gap stays a gap
    vietnam = exports[exports.unique_id == "destination:vietnam"]
    assert not vietnam.ds.between("2022-01-01", "2024-12-01").any()
    assert meta.loc["destination:vietnam", ["n_obs", "n_missing"]].tolist() == ["276", "36"]
    # the customs Middle East (28.0 bn in 2025) replaces the narrower aggregate (17.3 bn)
    assert round(_annual_bn(exports, "destination:middle_east", 2025), 1) == 28.0


@needs_raw
def test_regions_equal_the_sum_of_their_members_in_every_month_of_2025_to_the_dollar(built):
    _, _, exports, series = built
    countries = pd.read_csv(RAW / db.COUNTRIES, dtype={"수출액_USD": "int64"}, keep_default_na=False)
    y = exports.set_index(["unique_id", "ds"]).y
    for region in REGIONS:
        expected = countries[countries.국가코드.isin(region.members)].groupby("기준월").수출액_USD.sum()
        assert len(expected) == 12
        for month, value in expected.items():
            assert y[(f"destination:{region.slug}", month)] == value, (region.slug, month)
    sizes = {r.slug: len(r.members) for r in REGIONS}
    assert sizes == {"asean": 11, "eu": 27, "middle_east": 16, "latin_america": 33, "cis": 12}
    assert "TL" in ASEAN and "GB" not in EU27 and {"EG", "PS", "TR"} <= MIDDLE_EAST
    assert {"GE", "UA"} <= CIS and "PR" not in LATIN_AMERICA
    # every region's name states its membership
    names = series.set_index("unique_id").name_en
    for region in REGIONS:
        assert str(len(region.members)) in names[f"destination:{region.slug}"]


@needs_raw
def test_hierarchy_partition_holds_in_every_month_where_all_parts_are_known(built):
    _, report, exports, series = built
    y = exports.pivot(index="ds", columns="unique_id", values="y")
    nodes = series[series.parent != ""]
    assert set(nodes.parent) == {"total"}
    for hierarchy, expected_children in (("item", 21), ("destination", 10)):
        children = nodes[nodes.hierarchy == hierarchy].unique_id.tolist()
        assert len(children) == expected_children
        known = y[["total", *children]].dropna()
        assert len(known) == (48 if hierarchy == "item" else 53)
        assert (known[children].sum(axis=1) == known["total"]).all()
    assert "item:other" in nodes.unique_id.tolist() and "destination:rest_of_world" in nodes.unique_id.tolist()
    # other is 12.5% .. 17.3% of the total (PROVENANCE: the 20 items are 85-89% in 2025)
    share = (y["item:other"] / y["total"]).dropna()
    assert round(share.min(), 3) == 0.125 and round(share.max(), 3) == 0.173
    assert (
        "total = sum of its 21 item children in all 48 months 2022-01..2025-12 where all are observed, to the dollar"
    ) in report.checks
    assert (
        "total = sum of its 10 destination children in all 53 months 2021-08..2025-12 where all "
        "are observed, to the dollar"
    ) in report.checks


@needs_raw
def test_series_table_columns_order_definitions_and_backtest_flag(built):
    _, report, exports, series = built
    assert list(series.columns) == list(db.SERIES_COLUMNS)
    ids = series.unique_id.tolist()
    assert ids[0] == "total"
    assert ids[1:21] == [f"item:{i.slug}" for i in db.ITEMS]
    assert ids[21:23] == ["item:other", "item:semiconductors_ministry"]
    top15 = [
        "china",
        "united_states",
        "vietnam",
        "taiwan",
        "hong_kong",
        "japan",
        "singapore",
        "india",
        "australia",
        "malaysia",
        "mexico",
        "philippines",
        "canada",
        "netherlands",
        "germany",
    ]
    assert ids[23:38] == [f"destination:{s}" for s in top15]
    assert ids[38:] == [
        "destination:asean",
        "destination:eu",
        "destination:middle_east",
        "destination:latin_america",
        "destination:cis",
        "destination:rest_of_world",
    ]
    meta = series.set_index("unique_id")
    assert (series.definition.str.len() > 20).all()
    assert (series.unit == "USD").all()
    assert meta.loc["total", ["hierarchy", "parent"]].tolist() == ["", ""]
    assert meta.loc["destination:vietnam", ["hierarchy", "parent"]].tolist() == ["destination", ""]
    assert "part of destination:asean" in meta.loc["destination:vietnam", "definition"]
    assert (
        meta.loc["destination:taiwan", "backtest"]
        == "no: 12 observed months, a backtest window needs 36 (24 to fit the seasonal models, 12 to score)"
    )
    short = series[series.backtest != "yes"].unique_id.tolist()
    assert short == [
        "destination:taiwan",
        "destination:singapore",
        "destination:australia",
        "destination:malaysia",
        "destination:mexico",
        "destination:philippines",
        "destination:canada",
        "destination:netherlands",
        "destination:germany",
    ]
    assert set(exports.unique_id) == set(ids)
    assert [s.unique_id for s in report.series] == ids


@needs_raw
def test_rows_are_unique_sorted_whole_dollars_with_source(built):
    _, _, exports, _ = built
    assert list(exports.columns) == ["unique_id", "ds", "y", "source"]
    assert not exports.duplicated(["unique_id", "ds"]).any()
    assert (exports.y >= 0).all()
    assert (exports.source.str.len() > 0).all()
    assert exports.ds.str.fullmatch(r"\d{4}-\d{2}-01").all()
    assert list(zip(exports.unique_id, exports.ds)) == sorted(zip(exports.unique_id, exports.ds))
    assert len(exports) == 3575


@needs_raw
def test_values_come_from_the_raw_files(built):
    _, _, exports, _ = built
    y = exports.set_index(["unique_id", "ds"])
    assert y.loc[("total", "2000-01-01"), "y"] == 12_162_424_632
    assert y.loc[("total", "2000-01-01"), "source"] == db.SRC_BI
    # export_10day 2022-07 whole month, thousand USD x 1000 (the press preliminary said 60.7 bn)
    assert y.loc[("total", "2022-07-01"), "y"] == 60_241_774_000
    assert y.loc[("total", "2025-11-01"), "y"] == 60_752_618_324
    assert y.loc[("total", "2025-11-01"), "source"] == db.SRC_TOTAL_2025
    assert y.loc[("item:semiconductors_ministry", "2013-01-01"), "y"] == 4_034_855_878
    assert y.loc[("destination:china", "2023-03-01"), "source"] == db.SRC_TRADE_REGION
    assert y.loc[("destination:china", "2021-12-01"), "source"] == db.SRC_BI
    for uid, bn in {
        "destination:china": 130.78,
        "destination:united_states": 122.85,
        "destination:vietnam": 62.78,
        "destination:india": 19.23,
    }.items():
        assert round(_annual_bn(exports, uid, 2025), 2) == bn


@needs_raw
def test_rebuild_is_byte_identical(built, tmp_path):
    out, _, _, _ = built
    build_dataset(RAW, tmp_path)
    for name in BUILT_FILES:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
        assert b"\r\n" not in (tmp_path / name).read_bytes()


@needs_raw
def test_committed_data_equals_a_fresh_build(built):
    out, _, _, _ = built
    for name in BUILT_FILES:
        assert (REPO_DATA / name).read_bytes() == (out / name).read_bytes(), (
            f"data/{name} drifted from the builder: rerun exportcast data build"
        )


def test_hierarchy_check_names_the_parent_month_and_sums():
    nodes = {
        "total": ("", "", {"2025-01": 10, "2025-02": 12, "2025-03": 9}),
        "item:a": ("item", "total", {"2025-01": 4, "2025-02": 5}),
        "item:b": ("item", "total", {"2025-01": 6, "2025-02": 7, "2025-03": 1}),
    }
    assert check_hierarchy(nodes) == [
        "total = sum of its 2 item children in all 2 months 2025-01..2025-02 where all are observed, to the dollar"
    ]
    nodes["item:b"][2]["2025-02"] = 8
    with pytest.raises(DatasetCheckError) as info:
        check_hierarchy(nodes)
    assert str(info.value) == "total 2025-02: its 2 item children sum to 13 USD, the series has 12 USD"
    nodes["item:c"] = ("item", "item:x", {})
    with pytest.raises(DatasetCheckError, match=r"^item:c: parent 'item:x' is not a series$"):
        check_hierarchy(nodes)


# --------------------------------------------------------------------------- hand-made raw dirs
MONTHS_2025 = [f"2025-{m:02d}" for m in range(1, 13)]
# 2025 exports by country (USD, every month): CN, US, JP, IN, one member of each region, and one
# country outside them all; they sum to the customs total 5,000,000
COUNTRIES_2025 = {
    "CN": 2_000_000,
    "US": 1_500_000,
    "JP": 500_000,
    "IN": 400_000,
    "VN": 300_000,
    "DE": 200_000,
    "AE": 50_000,
    "MX": 30_000,
    "RU": 10_000,
    "AU": 10_000,
}
REGION_OF = {"ASEAN": "VN", "EU27": "DE", "MIDDLE_EAST": "AE", "LATAM": "MX", "CIS": "RU"}
BI_2021_12 = ["2021-12", 1_000_000, 100_000, 200_000, 10, 10, 50_000]


def _write(path: Path, header: list[str], rows: list[list[object]], *, title: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        for line in title or []:
            handle.write(line + "\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _item_usd(item: db.ItemSpec) -> int:
    if item.slug == "semiconductors":
        return 1_000_000
    return 2_000 if item.kita_label else 500


def make_raw(
    root: Path,
    *,
    bi_rows=None,
    kita_auto_parts_thousand=2,
    countries=None,
    press_rows=None,
    asean_2025_03=None,
    kstat_rows=None,
) -> Path:
    """A minimal raw directory whose sources agree: 2025 in every file that covers it, 2021-12
    (bi_data, the customs 10-day file, trade_region) and 2022-01 (the customs 10-day file, press)
    for the overlaps, and 36 WSTS months. USD figures are small whole numbers chosen by hand."""
    bi_rows = bi_rows if bi_rows is not None else [["2010-01", 100, 10, 20, 30, 40, 50]]
    if not any(row[0] == "2021-12" for row in bi_rows):
        bi_rows = bi_rows + [BI_2021_12]
    _write(
        root / db.BI_DATA,
        ["Date", "KOR_export", "export_CHI", "export_USA", "export_VET", "export_Hong", "export_JAP", "oil_price"],
        [row + [58.25] for row in bi_rows],
    )
    _write(root / db.KOSIS_SEMIS, ["month", "value"], [[f"{m}-01", "1000000.0"] for m in MONTHS_2025])
    _write(
        root / db.KITA_ITEMS,
        ["기준월", "산업", "수출액_천달러", "수출액_USD"],
        [
            [f"{m}-01", item.kita_label, k, k * 1000]
            for m in MONTHS_2025
            for item in db.ITEMS
            if item.kita_label
            for k in [kita_auto_parts_thousand if item.slug == "auto_parts" else _item_usd(item) // 1000]
        ],
    )
    _write(
        root / db.INDUSTRY20,
        ["기준월", "산업20", "수출액_USD"],
        [[f"{m}-01", item.name_ko, f"{_item_usd(item)}.0"] for m in MONTHS_2025 for item in db.ITEMS],
    )
    _write(
        root / db.TRADE_INDUSTRY,
        ["period", "industry_code", "export_usd"],
        [[m, item.customs_code, f"{_item_usd(item)}.0"] for m in MONTHS_2025 for item in db.ITEMS],
    )
    _write(root / db.TOTAL_2025, ["기준월", "수출액_USD"], [[f"{m}-01", 5_000_000] for m in MONTHS_2025])
    countries = (
        countries
        if countries is not None
        else [[code, code, f"{m}-01", usd] for m in MONTHS_2025 for code, usd in COUNTRIES_2025.items()]
    )
    _write(root / db.COUNTRIES, ["국가코드", "국가", "기준월", "수출액_USD"], countries)
    regions = [["2021-12", code, f"{usd}.0"] for code, usd in (("CN", 100_000), ("US", 200_000), ("JP", 50_000))]
    for m in MONTHS_2025:
        regions += [[m, code, f"{COUNTRIES_2025[code]}.0"] for code in ("CN", "US", "JP", "IN")]
        regions += [[m, code, f"{COUNTRIES_2025[member]}.0"] for code, member in REGION_OF.items()]
    if asean_2025_03 is not None:
        regions = [[m, c, f"{asean_2025_03}.0" if (m, c) == ("2025-03", "ASEAN") else v] for m, c, v in regions]
    _write(root / db.TRADE_REGION, ["period", "region_code", "export_usd"], regions)
    groups = {
        db.REGION_JSON_NAMES[r.code]: sorted(r.members - db.REGION_EXTRA_MEMBERS.get(r.code, frozenset()))
        for r in REGIONS
    }
    (root / db.REGION_GROUPS).write_text(json.dumps({"regions": groups}), encoding="utf-8")
    tenday = [["2021-12", "월전체", "전체", 1_000], ["2022-01", "월전체", "전체", 55_320_000]]
    tenday += [
        [m, cut, "전체", k] for m in MONTHS_2025 for cut, k in (("01~10", 1_000), ("01~20", 3_000), ("월전체", 5_000))
    ]
    _write(root / raw_tables.EXPORT_10DAY, ["month", "period", "item", "export_1000usd"], tenday)
    press_rows = press_rows if press_rows is not None else [["2022-01", "55.32", "", "", "primary; x"]]
    _write(root / db.PRESS, ["month", "total_usd_bn", "china_usd_bn", "us_usd_bn", "note"], press_rows)
    kstat_rows = kstat_rows if kstat_rows is not None else [["2011.09", 1000, "0.0"], ["2011.1", 1100, "10.0"]]
    _write(
        root / db.AUTO_PARTS_KSTAT,
        ["년월", "수출 금액", "수출 증감률", "수입 금액", "수입 증감률"],
        [row + [1, 0] for row in kstat_rows],
        title=["K-stat,,,,", '"title line",,,,'],
    )
    _write(
        root / raw_tables.CUSTOMS_FLASH,
        ["date", "period", "news_id", "export_usd"],
        [["2025-01-01", "10d", "1", "1000000.0"]],
    )
    wsts = []
    for year, total in ((2022, 574_080_000), (2023, 526_890_000), (2024, 630_550_000)):
        monthly = [total // 12] * 11 + [total - 11 * (total // 12)]
        wsts += [[f"{year}-{m:02d}-01", w - 3, 1, 1, 1, w] for m, w in enumerate(monthly, start=1)]
    _write(root / raw_tables.WSTS, ["date", "Americas", "Europe", "Japan", "Asia Pacific", "Worldwide"], wsts)
    return root


def _raises(raw: Path, out: Path, message: str) -> None:
    with pytest.raises(DatasetCheckError) as info:
        build_dataset(raw, out)
    assert str(info.value) == message
    assert not (out / "exports_monthly.csv").exists()  # nothing written on a failed check


def test_small_raw_dir_passes_source_checks_and_stops_at_the_anchor(tmp_path):
    raw = make_raw(tmp_path / "raw")
    _raises(raw, tmp_path / "out", "total 2010: 1 of 12 months observed; cannot compare with the official 466.4 bn USD")


def test_violated_tolerance_names_series_month_and_values(tmp_path):
    raw = make_raw(tmp_path / "raw", kita_auto_parts_thousand=3)  # KITA 742 50% above customs-MTI
    _raises(
        raw,
        tmp_path / "out",
        "item:auto_parts 2025-01: KITA K-stat 742 gives 3000 USD, customs-MTI gives 2000 USD; "
        "relative difference +50.000% is outside the tolerance [-0.100%, +0.100%]",
    )


def test_region_must_equal_the_sum_of_its_members_to_the_dollar(tmp_path):
    raw = make_raw(tmp_path / "raw", asean_2025_03=300_001)
    _raises(
        raw,
        tmp_path / "out",
        "destination:asean 2025-03: sum of its 11 members (all-country file) gives 300000 USD, "
        "trade_region gives 300001 USD; difference -1 USD exceeds the tolerance of 0 USD",
    )


def test_preliminary_figure_too_far_from_the_confirmed_one(tmp_path):
    raw = make_raw(tmp_path / "raw", press_rows=[["2022-01", "55.8", "", "", "primary; x"]])
    _raises(
        raw,
        tmp_path / "out",
        "total 2022-01: ministry preliminary (press, evidence only) gives 55800000000 USD, "
        "customs-confirmed (export_10day) gives 55320000000 USD; relative difference +0.868% is "
        "outside the tolerance [-0.765%, +0.765%]",
    )


def test_duplicate_month_in_a_raw_file_names_file_and_lines(tmp_path):
    row = ["2010-01", 100, 10, 20, 30, 40, 50]
    raw = make_raw(tmp_path / "raw", bi_rows=[row, row])
    _raises(
        raw,
        tmp_path / "out",
        "Navy10021+Korea_Export_Prediction_App/bi_data.csv: duplicate month 2010-01 for KOR_export (lines 2 and 3)",
    )


def test_two_sources_for_the_same_series_month_is_a_duplicate(tmp_path):
    raw = make_raw(
        tmp_path / "raw", bi_rows=[["2010-01", 100, 10, 20, 30, 40, 50], ["2022-01", 100, 10, 20, 30, 40, 50]]
    )
    _raises(
        raw,
        tmp_path / "out",
        "duplicate (unique_id, ds) = (total, 2022-01-01): "
        "customs-confirmed:Navy10021+Korea_Export_Prediction_App/bi_data.csv and "
        "customs-confirmed:jroh7115-arch+macro-dashboard/export_10day.csv",
    )


def test_countries_must_sum_to_the_customs_total(tmp_path):
    countries = [
        [code, code, f"{m}-01", usd - (1 if (code, m) == ("AU", "2025-01") else 0)]
        for m in MONTHS_2025
        for code, usd in COUNTRIES_2025.items()
    ]
    raw = make_raw(tmp_path / "raw", countries=countries)
    _raises(
        raw,
        tmp_path / "out",
        "total 2025-01: sum over all countries gives 4999999 USD, customs total gives 5000000 "
        "USD; difference -1 USD exceeds the tolerance of 0 USD",
    )


def test_annual_anchor_violation_names_year_sum_and_anchor(tmp_path):
    # 11 months of 39 bn and one of 41 bn: 470 bn against the official 466.4 bn (+0.772%)
    rows = [[f"2010-{m:02d}", 41_000_000_000 if m == 12 else 39_000_000_000, 1, 1, 1, 1, 1] for m in range(1, 13)]
    raw = make_raw(tmp_path / "raw", bi_rows=rows)
    _raises(
        raw,
        tmp_path / "out",
        "total 2010: annual sum 470.000 bn USD differs from the official 466.4 bn by +0.772% (tolerance ±0.05%)",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "12.5",
            "Navy10021+Korea_Export_Prediction_App/bi_data.csv line 2, column KOR_export: "
            "'12.5' x 1 is not a whole number of dollars",
        ),
        (
            "-3",
            "Navy10021+Korea_Export_Prediction_App/bi_data.csv line 2, column KOR_export: "
            "expected a finite non-negative amount, found '-3'",
        ),
        ("n/a", "Navy10021+Korea_Export_Prediction_App/bi_data.csv line 2, column KOR_export: not a number: 'n/a'"),
    ],
)
def test_bad_values_name_file_line_and_column(tmp_path, value, message):
    raw = make_raw(tmp_path / "raw", bi_rows=[["2010-01", value, 10, 20, 30, 40, 50]])
    _raises(raw, tmp_path / "out", message)


def test_bad_month_and_missing_column(tmp_path):
    raw = make_raw(tmp_path / "raw", bi_rows=[["2010/01", 100, 10, 20, 30, 40, 50]])
    _raises(
        raw,
        tmp_path / "out",
        "Navy10021+Korea_Export_Prediction_App/bi_data.csv line 2, column Date: expected a "
        "month YYYY-MM or YYYY-MM-01, found '2010/01'",
    )
    make_raw(raw)  # every file valid again, then one column renamed
    _write(raw / db.TOTAL_2025, ["기준월", "total_usd"], [["2025-01-01", 5]])
    _raises(
        raw,
        tmp_path / "out",
        "HwaniKimcloud+korea_export_dashboard/korea_total_export_monthly.csv: missing "
        "column(s) ['수출액_USD']; found ['기준월', 'total_usd']",
    )


# --------------------------------------------------------------------------- the new raw readers
def test_kstat_october_is_written_yyyy_1_and_the_change_is_month_on_month(tmp_path):
    raw = make_raw(
        tmp_path / "raw",
        kstat_rows=[
            ["2011.09", 1000, "8.5"],
            ["2011.1", 950, "-5.0"],
            ["2011.11", 1045, "10.0"],
            ["2011.12", 1000, "-4.3"],
            ["2012.01", 2000, "100.0"],
        ],
    )
    assert db._read_auto_parts_kstat(raw) == {
        "2011-09": 1_000_000,
        "2011-10": 950_000,
        "2011-11": 1_045_000,
        "2011-12": 1_000_000,
        "2012-01": 2_000_000,
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [["2011.01", 1000, "0"], ["2011.1", 1000, "0.0"]],
            "line 5, column 년월: '2011.1' read as 2011-10, expected 2011-02 (the month after line 4)",
        ),
        (
            [["2011.09", 1000, "0"], ["2011.1", 1100, "-10.0"]],
            "line 5, column 수출 증감률: stated -10.0% but the change on the previous month is 10.00%",
        ),
        ([["2011.13", 1000, "0"]], "line 4, column 년월: expected YYYY.MM (October as YYYY.1), found '2011.13'"),
        ([["2011-01", 1000, "0"]], "line 4, column 년월: expected YYYY.MM (October as YYYY.1), found '2011-01'"),
    ],
)
def test_kstat_reader_names_the_line_of_a_bad_row(tmp_path, rows, message):
    raw = make_raw(tmp_path / "raw", kstat_rows=rows)
    with pytest.raises(DatasetCheckError) as info:
        db._read_auto_parts_kstat(raw)
    assert str(info.value) == f"{db.AUTO_PARTS_KSTAT} {message}"


def test_new_readers_parse_the_customs_files(tmp_path):
    raw = make_raw(tmp_path / "raw")
    assert db._read_trade_industry(raw)["SEMICON"]["2025-07"] == 1_000_000
    assert db._read_trade_region(raw)["ASEAN"]["2025-01"] == 300_000
    assert db._read_trade_region(raw)["CN"]["2021-12"] == 100_000
    tenday = raw_tables.read_export_10day(raw)
    assert tenday[("전체", "01~20")]["2025-02"] == 3_000_000  # thousand USD x 1000
    assert tenday[("전체", "월전체")]["2022-01"] == 55_320_000_000
    assert db._read_region_groups(raw)["중동"] == MIDDLE_EAST - {"EG", "PS"}
    _write(
        raw / raw_tables.EXPORT_10DAY, ["month", "period", "item", "export_1000usd"], [["2025-01", "1~10", "전체", 1]]
    )
    with pytest.raises(DatasetCheckError) as info:
        raw_tables.read_export_10day(raw)
    assert str(info.value) == (
        f"{raw_tables.EXPORT_10DAY} line 2, column period: expected one of 01~10, 01~20, 월전체, found '1~10'"
    )


def test_press_uses_primary_rows_only_and_scales_bn_exactly(tmp_path):
    # a customs print for the same month is ignored; 55.125 bn -> 55,125,000,000 USD exactly
    raw = make_raw(
        tmp_path / "raw",
        press_rows=[
            ["2023-03", "55.125", "10.42", "", "primary; 551억2500만"],
            ["2023-03", "55.1", "", "", "customs confirmed 551억"],
        ],
    )
    press = db._read_press(raw)
    assert press == {"total": {"2023-03": 55_125_000_000}, "CN": {"2023-03": 10_420_000_000}}


def test_customs_special_codes_are_accepted_and_na_is_namibia(tmp_path):
    raw = make_raw(
        tmp_path / "raw",
        countries=[
            ["CN", "중국", "2025-01-01", 3_000_000],
            ["US", "미국", "2025-01-01", 1_999_000],
            ["Z1", "국제통화기금", "2025-01-01", 0],
            ["NA", "나미비아", "2025-01-01", 1_000],
        ],
    )
    countries, names = db._read_countries(raw)
    assert set(countries) == {"CN", "US", "Z1", "NA"} and names["NA"] == "나미비아"


def test_slugify():
    assert slugify("United States") == "united_states"
    assert slugify("Türkiye") == "turkiye"
    assert slugify("Hong Kong") == "hong_kong"
    with pytest.raises(ValueError, match="empty slug"):
        slugify("---")


def test_anchor_constants_are_the_provenance_figures():
    assert db.OFFICIAL_ANNUAL_TOTALS_USD_BN == {
        2010: Decimal("466.4"),
        2018: Decimal("604.9"),
        2021: Decimal("644.4"),
        2022: Decimal("683.6"),
        2023: Decimal("632.2"),
        2024: Decimal("683.8"),
        2025: Decimal("709.3"),
    }
