"""The dataset builder: checks on the real staged files, determinism, the committed data, and
exact error messages on small hand-made raw directories."""
from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from features import dataset_builder as db
from features.dataset_builder import DatasetCheckError, build_dataset
from features.regions import ASEAN, EU27, slugify

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RAW = SHARED_DATA / "raw"
REPO_DATA = Path(__file__).resolve().parents[2] / "data"
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason=f"shared raw data not found at {RAW}")


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
def test_total_annual_sums_match_official_anchors(built):
    _, _, exports, _ = built
    # sums of the built months (3 decimals) next to the official customs totals of PROVENANCE.md;
    # 2022-2024 equal PROVENANCE's stated sums of the 36 primary rows (683.86 / 633.01 / 684.55)
    expected = {2010: 466.384, 2018: 604.860, 2021: 644.400, 2022: 683.860, 2023: 633.006,
                2024: 684.550, 2025: 709.330}
    for year, value in expected.items():
        total = _annual_bn(exports, "total", year)
        assert round(total, 3) == value
        anchor = float(db.OFFICIAL_ANNUAL_TOTALS_USD_BN[year])
        assert abs(total / anchor - 1) <= 0.002


@needs_raw
def test_semiconductors_2024_within_half_percent_of_ministry(built):
    _, _, exports, _ = built
    total = _annual_bn(exports, "item:semiconductors", 2024)
    assert round(total, 3) == 142.086            # PROVENANCE: KOSIS 2024 = 142.1 bn
    assert abs(total / 141.9 - 1) <= 0.005


@needs_raw
def test_rows_are_unique_sorted_whole_dollars_with_source(built):
    _, _, exports, _ = built
    assert list(exports.columns) == ["unique_id", "ds", "y", "source"]
    assert not exports.duplicated(["unique_id", "ds"]).any()
    assert (exports.y >= 0).all()
    assert (exports.source.str.len() > 0).all()
    assert exports.ds.str.fullmatch(r"\d{4}-\d{2}-01").all()
    assert list(zip(exports.unique_id, exports.ds)) == sorted(zip(exports.unique_id, exports.ds))
    assert len(exports) == 2499


@needs_raw
def test_values_come_from_the_raw_files(built):
    _, _, exports, _ = built
    y = exports.set_index(["unique_id", "ds"])
    # first row of bi_data (12162424632.0), KOSIS's first month, the press 2022-01 primary row
    # (55.32 bn), the customs total for 2025-11 (PROVENANCE: 60.75 confirmed)
    assert y.loc[("total", "2000-01-01"), "y"] == 12_162_424_632
    assert y.loc[("total", "2000-01-01"), "source"] == db.SRC_BI
    assert y.loc[("total", "2022-01-01"), "y"] == 55_320_000_000
    assert y.loc[("total", "2022-01-01"), "source"] == db.SRC_PRESS
    assert y.loc[("total", "2025-11-01"), "y"] == 60_752_618_324
    assert y.loc[("total", "2025-11-01"), "source"] == db.SRC_TOTAL_2025
    assert y.loc[("item:semiconductors", "2013-01-01"), "y"] == 4_034_855_878
    assert y.loc[("destination:china", "2023-03-01"), "y"] == 10_420_000_000
    assert y.loc[("destination:china", "2023-03-01"), "source"] == db.SRC_PRESS
    # KITA thousand-USD figure x 1000 (wireless devices 2022-01: 1,350,522 thousand USD)
    assert y.loc[("item:wireless_devices", "2022-01-01"), "y"] == 1_350_522_000
    # 2025 country sums of PROVENANCE.md: China 130.78, US 122.85, Vietnam 62.78 bn
    for uid, bn in {"destination:china": 130.78, "destination:united_states": 122.85,
                    "destination:vietnam": 62.78}.items():
        assert round(_annual_bn(exports, uid, 2025), 2) == bn


@needs_raw
def test_one_source_per_item_and_total_2022_2024_is_preliminary(built):
    _, _, exports, _ = built
    sources = exports.groupby("unique_id").source.unique()
    assert list(sources["item:semiconductors"]) == [db.SRC_KOSIS]
    for slug in ("automobiles", "auto_parts", "ships", "displays", "wireless_devices", "computers"):
        assert list(sources[f"item:{slug}"]) == [db.SRC_KITA]
    for slug in ("steel", "bio_health", "cosmetics"):
        assert list(sources[f"item:{slug}"]) == [db.SRC_INDUSTRY20]
    total = exports[exports.unique_id == "total"]
    mid = total[(total.ds >= "2022-01-01") & (total.ds <= "2024-12-01")]
    assert len(mid) == 36 and (mid.source == db.SRC_PRESS).all()


@needs_raw
def test_gaps_stay_gaps(built):
    _, _, exports, series = built
    vietnam = exports[exports.unique_id == "destination:vietnam"]
    assert not vietnam.ds.between("2022-01-01", "2024-12-01").any()
    meta = series.set_index("unique_id")
    # 312 months 2000-01..2025-12; China: 264 bi_data + 14 press + 12 customs-2025 = 290
    assert meta.loc["destination:china", ["n_obs", "n_missing"]].tolist() == ["290", "22"]
    assert meta.loc["destination:united_states", ["n_obs", "n_missing"]].tolist() == ["289", "23"]
    assert meta.loc["destination:vietnam", ["n_obs", "n_missing"]].tolist() == ["276", "36"]
    assert meta.loc["total", ["first_month", "last_month", "n_obs", "n_missing"]].tolist() == \
        ["2000-01", "2025-12", "312", "0"]


@needs_raw
def test_series_table_order_codes_and_names(built):
    _, report, exports, series = built
    assert list(series.columns) == list(db.SERIES_COLUMNS)
    ids = series.unique_id.tolist()
    assert ids[0] == "total"
    assert ids[1:16] == [f"item:{i.slug}" for i in db.ITEMS if i.flagship]
    assert ids[16:21] == ["item:electrical_equipment", "item:nonferrous_metals", "item:agrifood",
                          "item:cosmetics", "item:household_goods"]
    top15 = ["china", "united_states", "vietnam", "taiwan", "hong_kong", "japan", "singapore",
             "india", "australia", "malaysia", "mexico", "philippines", "canada", "netherlands",
             "germany"]
    assert ids[21:36] == [f"destination:{s}" for s in top15]
    assert ids[36:] == ["destination:asean", "destination:eu", "destination:middle_east",
                        "destination:latin_america", "destination:cis"]
    codes = series.set_index("unique_id").code
    assert codes["item:semiconductors"] == "831" and codes["item:displays"] == "837"
    assert codes["item:steel"] == "" and codes["total"] == "" and codes["destination:eu"] == ""
    assert codes["destination:hong_kong"] == "HK"
    assert (series.unit == "USD").all()
    assert set(exports.unique_id) == set(ids)
    # the report carries the same summary
    assert [s.unique_id for s in report.series] == ids
    assert "total 2023: 633.006 bn USD vs official 632.2 (+0.127%, tolerance ±0.2%)" in report.checks
    assert "item:displays: industry20 vs KITA 837, 12 months 2025-01..2025-12: relative difference " \
           "-1.586% .. -0.842% (tolerance [-2.000%, +0.000%])" in report.checks


@needs_raw
def test_regions_are_sums_of_member_countries(built):
    _, _, exports, _ = built
    countries = pd.read_csv(RAW / db.COUNTRIES, dtype={"수출액_USD": "int64"}, keep_default_na=False)
    y = exports.set_index(["unique_id", "ds"]).y
    for slug, members in (("asean", ASEAN), ("eu", EU27)):
        expected = countries[countries.국가코드.isin(members)].groupby("기준월").수출액_USD.sum()
        assert len(expected) == 12
        for month, value in expected.items():
            assert y[(f"destination:{slug}", month)] == value
    assert "GB" not in EU27 and "TL" not in ASEAN


@needs_raw
def test_rebuild_is_byte_identical(built, tmp_path):
    out, _, _, _ = built
    build_dataset(RAW, tmp_path)
    for name in ("exports_monthly.csv", "series.csv"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
        assert b"\r\n" not in (tmp_path / name).read_bytes()


@needs_raw
def test_committed_data_equals_a_fresh_build(built):
    out, _, _, _ = built
    for name in ("exports_monthly.csv", "series.csv"):
        assert (REPO_DATA / name).read_bytes() == (out / name).read_bytes(), \
            f"data/{name} drifted from the builder: rerun build_dataset(raw, data)"


# --------------------------------------------------------------------------- hand-made raw dirs
FLAGSHIP_SAME_CODE = ("자동차", "자동차부품", "선박류", "무선통신기기", "컴퓨터")


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def make_raw(root: Path, *, bi_rows=None, kita_semis_thousand=1000, countries=None,
             press_rows=None) -> Path:
    """A minimal raw directory whose sources agree, for one month (2025-01) plus the given
    bi_data / press rows. USD figures are small whole numbers chosen by hand."""
    bi_rows = bi_rows if bi_rows is not None else [["2010-01", 100, 10, 20, 30, 40, 50]]
    _write(root / db.BI_DATA, ["Date", "KOR_export", "export_CHI", "export_USA", "export_VET",
                               "export_Hong", "export_JAP", "oil_price"],
           [row + [58.25] for row in bi_rows])
    _write(root / db.KOSIS_SEMIS, ["month", "value"], [["2025-01-01", "1000000.0"]])
    kita = [["2025-01-01", item.kita_label, kita_semis_thousand if item.slug == "semiconductors"
             else 2000, (kita_semis_thousand if item.slug == "semiconductors" else 2000) * 1000]
            for item in db.ITEMS if item.kita_label]
    _write(root / db.KITA_ITEMS, ["기준월", "산업", "수출액_천달러", "수출액_USD"], kita)
    values = {"반도체": 1_000_000, "디스플레이": 1_990_000, **{k: 2_000_000 for k in FLAGSHIP_SAME_CODE}}
    _write(root / db.INDUSTRY20, ["기준월", "산업20", "수출액_USD"],
           [["2025-01-01", item.name_ko, f"{values.get(item.name_ko, 500)}.0"] for item in db.ITEMS])
    _write(root / db.TOTAL_2025, ["기준월", "수출액_USD"], [["2025-01-01", 5_000_000]])
    countries = countries if countries is not None else [["CN", "중국", "2025-01-01", 3_000_000],
                                                         ["US", "미국", "2025-01-01", 2_000_000]]
    _write(root / db.COUNTRIES, ["국가코드", "국가", "기준월", "수출액_USD"], countries)
    press_rows = press_rows if press_rows is not None else [["2022-01", "55.32", "", "", "primary; x"]]
    _write(root / db.PRESS, ["month", "total_usd_bn", "china_usd_bn", "us_usd_bn", "note"], press_rows)
    return root


def _raises(raw: Path, out: Path, message: str) -> None:
    with pytest.raises(DatasetCheckError) as info:
        build_dataset(raw, out)
    assert str(info.value) == message
    assert not (out / "exports_monthly.csv").exists()   # nothing written on a failed check


def test_small_raw_dir_passes_source_checks_and_stops_at_the_anchor(tmp_path):
    raw = make_raw(tmp_path / "raw")
    _raises(raw, tmp_path / "out",
            "total 2010: 1 of 12 months observed; cannot compare with the official 466.4 bn USD")


def test_violated_tolerance_names_series_month_and_values(tmp_path):
    raw = make_raw(tmp_path / "raw", kita_semis_thousand=1040)   # KITA 4% above KOSIS
    _raises(raw, tmp_path / "out",
            "item:semiconductors 2025-01: KITA 831 gives 1040000 USD, KOSIS gives 1000000 USD; "
            "relative difference +4.000% is outside the tolerance [-3.000%, +3.000%]")


def test_duplicate_month_in_a_raw_file_names_file_and_lines(tmp_path):
    row = ["2010-01", 100, 10, 20, 30, 40, 50]
    raw = make_raw(tmp_path / "raw", bi_rows=[row, row])
    _raises(raw, tmp_path / "out",
            "Navy10021+Korea_Export_Prediction_App/bi_data.csv: duplicate month 2010-01 for "
            "KOR_export (lines 2 and 3)")


def test_two_sources_for_the_same_series_month_is_a_duplicate(tmp_path):
    raw = make_raw(tmp_path / "raw", press_rows=[["2025-01", "5.0", "", "", "primary; x"]])
    _raises(raw, tmp_path / "out",
            "duplicate (unique_id, ds) = (total, 2025-01-01): "
            "ministry-preliminary:press-compiled/monthly_totals_2022_2024.csv and "
            "customs-confirmed:HwaniKimcloud+korea_export_dashboard/korea_total_export_monthly.csv")


def test_countries_must_sum_to_the_customs_total(tmp_path):
    raw = make_raw(tmp_path / "raw", countries=[["CN", "중국", "2025-01-01", 3_000_000],
                                                ["US", "미국", "2025-01-01", 1_999_999]])
    _raises(raw, tmp_path / "out",
            "total 2025-01: sum over all countries gives 4999999 USD, customs total gives 5000000 "
            "USD; difference -1 USD exceeds the tolerance of 0 USD")


def test_annual_anchor_violation_names_year_sum_and_anchor(tmp_path):
    # 11 months of 39 bn and one of 41 bn: 470 bn against the official 466.4 bn (+0.772%)
    rows = [[f"2010-{m:02d}", 41_000_000_000 if m == 12 else 39_000_000_000, 1, 1, 1, 1, 1]
            for m in range(1, 13)]
    raw = make_raw(tmp_path / "raw", bi_rows=rows)
    _raises(raw, tmp_path / "out",
            "total 2010: annual sum 470.000 bn USD differs from the official 466.4 bn by +0.772% "
            "(tolerance ±0.2%)")


@pytest.mark.parametrize(("value", "message"), [
    ("12.5", "Navy10021+Korea_Export_Prediction_App/bi_data.csv line 2, column KOR_export: "
             "'12.5' x 1 is not a whole number of dollars"),
    ("-3", "Navy10021+Korea_Export_Prediction_App/bi_data.csv line 2, column KOR_export: "
           "expected a finite non-negative amount, found '-3'"),
    ("n/a", "Navy10021+Korea_Export_Prediction_App/bi_data.csv line 2, column KOR_export: "
            "not a number: 'n/a'"),
])
def test_bad_values_name_file_line_and_column(tmp_path, value, message):
    raw = make_raw(tmp_path / "raw", bi_rows=[["2010-01", value, 10, 20, 30, 40, 50]])
    _raises(raw, tmp_path / "out", message)


def test_bad_month_and_missing_column(tmp_path):
    raw = make_raw(tmp_path / "raw", bi_rows=[["2010/01", 100, 10, 20, 30, 40, 50]])
    _raises(raw, tmp_path / "out",
            "Navy10021+Korea_Export_Prediction_App/bi_data.csv line 2, column Date: expected a "
            "month YYYY-MM or YYYY-MM-01, found '2010/01'")
    make_raw(raw)   # every file valid again, then one column renamed
    _write(raw / db.TOTAL_2025, ["기준월", "total_usd"], [["2025-01-01", 5]])
    _raises(raw, tmp_path / "out",
            "HwaniKimcloud+korea_export_dashboard/korea_total_export_monthly.csv: missing "
            "column(s) ['수출액_USD']; found ['기준월', 'total_usd']")


def test_press_uses_primary_rows_only_and_scales_bn_exactly(tmp_path):
    # a customs print for the same month is ignored; 55.125 bn -> 55,125,000,000 USD exactly
    raw = make_raw(tmp_path / "raw", press_rows=[
        ["2023-03", "55.125", "10.42", "", "primary; 551억2500만"],
        ["2023-03", "55.1", "", "", "customs confirmed 551억"],
    ])
    press = db._read_press(raw)
    assert press == {"total": {"2023-03": 55_125_000_000}, "CN": {"2023-03": 10_420_000_000}}


def test_customs_special_codes_are_accepted_and_na_is_namibia(tmp_path):
    raw = make_raw(tmp_path / "raw", countries=[["CN", "중국", "2025-01-01", 3_000_000],
                                                ["US", "미국", "2025-01-01", 1_999_000],
                                                ["Z1", "국제통화기금", "2025-01-01", 0],
                                                ["NA", "나미비아", "2025-01-01", 1_000]])
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
        2010: Decimal("466.4"), 2018: Decimal("604.9"), 2021: Decimal("644.4"),
        2022: Decimal("683.6"), 2023: Decimal("632.2"), 2024: Decimal("683.8"),
        2025: Decimal("709.3")}
