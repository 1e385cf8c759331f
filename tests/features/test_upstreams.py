"""features/upstreams.py: the upstream of each raw file, overrides, extraction and the file checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from features import upstreams as up

REPO = Path(__file__).resolve().parents[2]
TRADE = "psicsh+Korea-trade-dashboard/trade_industry.csv"
TENDAY = "jroh7115-arch+macro-dashboard/export_10day.csv"


def test_docs_table_lists_every_raw_file_with_its_upstream() -> None:
    rows = [
        line
        for line in (REPO / "docs" / "upstreams.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
    ]
    documented = {}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rel = cells[0].strip("`")
        documented[rel] = None if cells[1].startswith("none") else tuple(re.findall(r"`([^`]+)`", cells[1]))
    expected = {f.rel: (f.repo, f.path) if f.repo else None for f in up.RAW_FILES}
    assert documented == expected


def test_every_staged_raw_file_is_listed() -> None:
    raw = REPO.parent / "shared" / "data" / "raw"
    if not raw.is_dir():
        pytest.skip("needs ../shared/data/raw")
    staged = {p.relative_to(raw).as_posix() for p in raw.rglob("*") if p.is_file()}
    assert staged == {f.rel for f in up.RAW_FILES}


def test_defaults_base_and_overrides() -> None:
    defaults = up.resolve_upstreams()
    assert (
        defaults[TRADE] == "https://raw.githubusercontent.com/psicsh/Korea-trade-dashboard/HEAD/data/trade_industry.csv"
    )
    assert defaults["press-compiled/monthly_totals_2022_2024.csv"] is None
    mirrored = up.resolve_upstreams({TRADE: "/srv/trade.csv"}, "http://127.0.0.1:8000/")
    assert mirrored[TRADE] == "/srv/trade.csv"
    assert mirrored[TENDAY] == "http://127.0.0.1:8000/jroh7115-arch%2Bmacro-dashboard/export_10day.csv"
    assert mirrored["market-compiled/sox_monthly.csv"] is None
    with pytest.raises(up.UpstreamError, match=r"^data.upstream names 'nope.csv', which is not a raw file"):
        up.resolve_upstreams({"nope.csv": "x"})


def test_export_10day_is_extracted_from_data_js_only_when_the_upstream_is_the_js() -> None:
    js = (
        'const DATA = {"other": [1, 2], "export_10day": {"202601": {"01~10": {"전체": 15000000, "반도체": 4000000.0}, '
        '"월전체": {"전체": 60000000}}}, "next": {}};\n'
    ).encode()
    assert up.needs_extraction(TENDAY, "https://x/data.js") == "export_10day"
    assert up.needs_extraction(TENDAY, "http://mirror/export_10day.csv") is None
    assert up.extract_export_10day(js, "u", TENDAY).decode("utf-8") == (
        "month,period,item,export_1000usd\n2026-01,01~10,전체,15000000\n2026-01,01~10,반도체,4000000\n"
        "2026-01,월전체,전체,60000000\n"
    )
    with pytest.raises(up.UpstreamError, match=r"^u \(.*export_10day.csv\): the export_10day block is not JSON"):
        up.extract_export_10day(js[:60], "u", TENDAY)


@pytest.mark.parametrize(
    ("content", "previous", "message"),
    [
        (b"<!doctype html><html></html>", None, "an HTML page, not the file (an error or login page?)"),
        (b"a,b\n1,2\n3", None, "truncated: the last line has no line end"),
        (b"a,b\n1,2\n3\n", None, "truncated: line 3 has 1 of 2 fields"),
        (b"a,b\n1,2\n", b"a,b\n1,2\n3,4\n", "truncated: 1 rows, the active vintage's copy has 2"),
        (b"\xff\xfe,\n", None, "not UTF-8 text (byte 0): not the file"),
    ],
)
def test_a_file_that_is_not_a_whole_copy_is_refused(content: bytes, previous: bytes | None, message: str) -> None:
    with pytest.raises(up.UpstreamError) as err:
        up.check_raw_file(TRADE, "http://m/t.csv", content, previous)
    assert str(err.value) == f"http://m/t.csv ({TRADE}): {message}"
    up.check_raw_file(TRADE, "http://m/t.csv", b"a,b\n1,2\n3,4\n", b"a,b\n1,2\n")  # a longer file passes
