"""Readers: encodings, line numbers, the embedded dataset, metadata and the source dispatcher."""

from __future__ import annotations

import warnings
from pathlib import Path

import httpx
import pandas as pd
import pytest

from features.contract import DataValidationError, DataWarning
from features.customs_api import CustomsClient
from features.readers import read_embedded, read_series_metadata, read_source, read_user_csv

CSV = 'unique_id,ds,y\nitem:반도체,2024-01,"1,500"\nitem:반도체,2024-02,2500\ntotal,2024-01,9000.5\n'
EXPECTED = pd.DataFrame(
    {
        "unique_id": ["item:반도체", "item:반도체", "total"],
        "ds": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-01"]),
        "y": [1500.0, 2500.0, 9000.5],
    }
)
SERIES_HEADER = "unique_id,level,name_en,name_ko,code,unit,first_month,last_month,n_obs,n_missing,sources\n"


def write(tmp_path: Path, name: str, payload: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949"])
def test_user_csv_in_every_accepted_encoding(tmp_path, encoding):
    path = write(tmp_path, "user.csv", CSV.encode(encoding))
    pd.testing.assert_frame_equal(read_user_csv(path), EXPECTED)


def test_cp949_file_with_crlf_and_extra_columns(tmp_path):
    text = "unique_id , ds ,y,메모\r\nitem:반도체,2024-02,2500,수출\r\nitem:반도체,2024-01,1500,\r\n"
    out = read_user_csv(write(tmp_path, "excel.csv", text.encode("cp949")))
    assert out.columns.tolist() == ["unique_id", "ds", "y", "메모"]
    assert out["y"].tolist() == [1500.0, 2500.0] and out["메모"].tolist() == ["", "수출"]


def test_undecodable_file_is_named(tmp_path):
    path = write(tmp_path, "bad.csv", b"unique_id,ds,y\ntotal,2024-01,1\xff\xfe\n")
    with pytest.raises(DataValidationError) as info:
        read_user_csv(path)
    assert str(info.value) == (
        f"{path}: 1 problem found\n"
        f"{path}: cannot decode the file as UTF-8 or cp949 (utf-8-sig: byte 0xff at offset 30; "
        f"cp949: byte 0xff at offset 30); save it as 'CSV UTF-8'"
    )


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match=r"nope\.csv: no such file"):
        read_user_csv(path)


def test_messages_name_true_file_lines_despite_blank_lines_and_quoted_line_breaks(tmp_path):
    text = 'unique_id,ds,y,note\n\ntotal,2024-01,1,"two\nlines"\n\ntotal,2024-02,abc,\ntotal,2024-03-31,5,\n'
    path = write(tmp_path, "gaps.csv", text.encode())
    with pytest.raises(DataValidationError) as info:
        read_user_csv(path)
    assert str(info.value) == (
        f"{path}: 2 problems found\n"
        f"{path} line 6, column y: 'abc' is not a number\n"
        f"{path} line 7, column ds: '2024-03-31' is not a month start (day 31; write YYYY-MM or YYYY-MM-01)"
    )


def test_ragged_rows_and_empty_files(tmp_path):
    path = write(tmp_path, "ragged.csv", b"unique_id,ds,y\ntotal,2024-01\ntotal,2024-02,1,2\n")
    with pytest.raises(DataValidationError) as info:
        read_user_csv(path)
    assert info.value.errors == [
        f"{path} line 2: 2 fields, the header has 3",
        f"{path} line 3: 4 fields, the header has 3",
    ]
    empty = write(tmp_path, "empty.csv", b"\n\n")
    with pytest.raises(DataValidationError, match=r"the file is empty \(no header line\)$"):
        read_user_csv(empty)
    header_only = write(tmp_path, "header.csv", b"unique_id,ds,y\n")
    with pytest.raises(DataValidationError, match=r"header\.csv: no data rows \(the frame is empty\)$"):
        read_user_csv(header_only)


def test_month_like_cells_are_not_turned_into_numbers(tmp_path):
    # 2025.10 read as a float would be 2025.1 (January!): cells stay text until validated
    path = write(tmp_path, "dots.csv", b"unique_id,ds,y\ntotal,2025.10,1\ntotal,2025.01,2\n")
    assert read_user_csv(path)["ds"].dt.strftime("%Y-%m").tolist() == ["2025-01", "2025-10"]


def embedded_dir(tmp_path: Path, series_ids=("total", "item:ships")) -> Path:
    write(
        tmp_path,
        "exports_monthly.csv",
        b"unique_id,ds,y,source\ntotal,2025-01,10,a\ntotal,2025-02,20,a\nitem:ships,2025-01,3,b\n",
    )
    rows = "".join(f"{uid},x,n,n,,USD,2025-01,2025-02,2,0,a\n" for uid in series_ids)
    write(tmp_path, "series.csv", (SERIES_HEADER + rows).encode())
    return tmp_path


def test_read_embedded_and_series_metadata(tmp_path):
    data = embedded_dir(tmp_path)
    frame = read_embedded(data)
    assert frame[["unique_id", "y", "source"]].values.tolist() == [
        ["item:ships", 3.0, "b"],
        ["total", 10.0, "a"],
        ["total", 20.0, "a"],
    ]
    meta = read_series_metadata(data)
    assert meta["unique_id"].tolist() == ["total", "item:ships"]
    assert meta["first_month"].tolist() == [pd.Timestamp("2025-01-01")] * 2
    assert meta["n_obs"].dtype == "int64" and meta["code"].tolist() == ["", ""]


def test_embedded_series_must_be_listed_in_series_csv(tmp_path):
    data = embedded_dir(tmp_path, series_ids=("total",))
    with pytest.raises(DataValidationError, match=r"unknown series 'item:ships' \(1 row, first at line 4\)"):
        read_embedded(data)


def test_series_metadata_errors_are_named(tmp_path):
    write(
        tmp_path,
        "series.csv",
        (SERIES_HEADER + "total,x,n,n,,USD,2025-13,2025-02,two,0,a\ntotal,x,n,n,,USD,2025-01,2025-02,2,0,a\n").encode(),
    )
    with pytest.raises(DataValidationError) as info:
        read_series_metadata(tmp_path)
    path = tmp_path / "series.csv"
    assert info.value.errors == [
        f"{path} line 3, column unique_id: duplicate of line 2 ('total')",
        f"{path} line 2, column first_month: '2025-13' is not a month (month 13 out of 01-12; expected YYYY-MM or YYYY-MM-DD)",
        f"{path} line 2, column n_obs: 'two' is not a count (expected 0, 1, 2, ...)",
    ]


def test_read_source_dispatches_and_filters_series(tmp_path):
    data = embedded_dir(tmp_path)
    assert read_source("embedded", data_dir=data, series=["total"])["unique_id"].unique().tolist() == ["total"]
    user = write(tmp_path, "user.csv", CSV.encode("cp949"))
    pd.testing.assert_frame_equal(read_source("csv", path=user), EXPECTED)
    with pytest.raises(DataValidationError) as info:
        read_source("csv", path=user, series=["total", "item:ships", "destination:china"])
    assert str(info.value) == (
        f"{user}: 1 problem found\n{user}: requested series not found: 'item:ships', 'destination:china' "
        "(the source has 2 series: 'item:반도체', 'total')"
    )
    with pytest.raises(ValueError, match=r"^unknown data source 'kosis': expected one of embedded, csv, customs_api$"):
        read_source("kosis")
    with pytest.raises(ValueError, match=r"^data source 'csv' needs a path \(config key data\.path\)$"):
        read_source("csv")


def test_read_source_customs_api_makes_only_the_calls_the_series_need():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        value = {"8703": "5", "8901": "7"}[request.url.params["hsSgn"]]
        return httpx.Response(
            200,
            content=(
                "<response><header><resultCode>00</resultCode><resultMsg>OK</resultMsg></header><body><items>"
                f"<item><expDlr>{value}</expDlr><year>2025.01</year></item></items></body></response>"
            ).encode(),
        )

    client = CustomsClient("k", transport=httpx.MockTransport(handler), base_delay=0)
    customs = {
        "start": "202501",
        "end": "202501",
        "client": client,
        "hs_to_item": {"item:automobiles": ["8703"], "item:ships": ["8901"], "item:semiconductors": ["8541"]},
    }
    out = read_source("customs_api", customs=customs, series=["item:ships", "item:automobiles"])
    assert [r.url.params["hsSgn"] for r in seen] == ["8703", "8901"]
    assert out[["unique_id", "y", "source"]].values.tolist() == [
        ["item:automobiles", 5.0, "customs-api:Itemtrade"],
        ["item:ships", 7.0, "customs-api:Itemtrade"],
    ]


def test_a_file_without_a_final_line_end_warns_naming_file_and_last_line(tmp_path):
    # the download stopped inside the last number: "2500" arrived as "25"
    path = write(tmp_path, "cut.csv", b"unique_id,ds,y\ntotal,2024-01,1500\n\ntotal,2024-02,25")
    with pytest.warns(DataWarning) as caught:
        out = read_user_csv(path)
    assert [str(w.message) for w in caught] == [
        f"{path} line 4: the file does not end with a line end, so its last line may be cut short "
        "(it reads 'total,2024-02,25'); check it against the source"
    ]
    assert out["y"].tolist() == [1500.0, 25.0]  # still accepted: it may be a file written without a final line end


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_a_file_ending_with_a_line_end_does_not_warn(tmp_path, ending):
    path = write(tmp_path, "whole.csv", b"unique_id,ds,y" + ending + b"total,2024-01,1500" + ending)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert read_user_csv(path)["y"].tolist() == [1500.0]
