"""The HTML report built from a tiny, hand-written outputs folder and dataset."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.report import ReportError, fmt_bn, fmt_pct, institution_colors, write_report
from flows.results import SCHEMAS, RunRecord, csv_bytes, format_table

BN = 1e9
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


# --------------------------------------------------------------------------- fixtures
def write_dataset(folder: Path) -> Path:
    """total: 50 bn a month 2018-2024, 59 bn a month in 2025 (2025 = 708.0 bn);
    semiconductors: 10 bn a month 2018-2025 except 2025-12 unobserved (2025 incomplete)."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = pd.date_range("2018-01-01", "2025-12-01", freq="MS")
    total = np.where(ds.year == 2025, 59.0, 50.0) * BN
    semis_ds = ds[:-1]
    rows = pd.concat(
        [
            pd.DataFrame(
                {"unique_id": "total", "ds": ds.strftime("%Y-%m-%d"), "y": total, "source": "customs-confirmed:test"}
            ),
            pd.DataFrame(
                {
                    "unique_id": "item:semiconductors",
                    "ds": semis_ds.strftime("%Y-%m-%d"),
                    "y": 10.0 * BN,
                    "source": "ministry-mti-kosis:test",
                }
            ),
        ]
    )
    rows.to_csv(folder / "exports_monthly.csv", index=False, float_format="%.0f")
    pd.DataFrame(
        [
            {
                "unique_id": "total",
                "level": "total",
                "name_en": "Total exports",
                "name_ko": "총수출",
                "code": "",
                "unit": "USD",
                "first_month": "2018-01",
                "last_month": "2025-12",
                "n_obs": 96,
                "n_missing": 0,
                "sources": "customs-confirmed:test",
            },
            {
                "unique_id": "item:semiconductors",
                "level": "item",
                "name_en": "Semiconductors",
                "name_ko": "반도체",
                "code": "831",
                "unit": "USD",
                "first_month": "2018-01",
                "last_month": "2025-11",
                "n_obs": 95,
                "n_missing": 0,
                "sources": "ministry-mti-kosis:test",
            },
        ]
    ).to_csv(folder / "series.csv", index=False)
    (folder / "PROVENANCE.md").write_text("# provenance\n", encoding="utf-8")
    return folder


def _write(folder: Path, name: str, frame: pd.DataFrame) -> None:
    """A table as the pipeline publishes it: its schema's columns (absent ones left empty), sorted."""
    frame = frame.copy()
    for column in SCHEMAS[name].columns:
        if column not in frame.columns:
            frame[column] = np.nan
    (folder / name).write_bytes(csv_bytes(format_table(name, frame)))


def write_outputs(folder: Path, *, institutional: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    months = pd.date_range("2026-01-01", periods=12, freq="MS")
    monthly = []
    for uid, level in (("total", 60.0), ("item:semiconductors", 12.0)):
        for model, shift in (("seasonal_naive", 0.0), ("ets", 0.5)):
            f = (level + shift) * BN
            monthly.append(
                pd.DataFrame(
                    {
                        "unique_id": uid,
                        "ds": months.strftime("%Y-%m-%d"),
                        "model": model,
                        "forecast": f,
                        "lo_80": 0.95 * f,
                        "hi_80": 1.05 * f,
                        "lo_95": 0.9 * f,
                        "hi_95": 1.1 * f,
                        "is_champion": model == "ets",
                    }
                )
            )
    _write(folder, "forecast_monthly.csv", pd.concat(monthly).assign(ds=lambda t: pd.to_datetime(t["ds"])))
    annual = pd.DataFrame(
        [
            # champion (ets) figures in USD
            {
                "unique_id": "total",
                "year": 2026,
                "model": "ets",
                "forecast": 720.4e9,
                "lo_80": 700.1e9,
                "hi_80": 740.9e9,
                "lo_95": 690.0e9,
                "hi_95": 750.2e9,
                "observed": 0.0,
                "is_champion": True,
            },
            {
                "unique_id": "total",
                "year": 2026,
                "model": "seasonal_naive",
                "forecast": 708.0e9,
                "lo_80": 650e9,
                "hi_80": 760e9,
                "lo_95": 600e9,
                "hi_95": 800e9,
                "observed": 0.0,
                "is_champion": False,
            },
            {
                "unique_id": "item:semiconductors",
                "year": 2026,
                "model": "ets",
                "forecast": 150.0e9,
                "lo_80": 140.0e9,
                "hi_80": 160.0e9,
                "lo_95": 135.0e9,
                "hi_95": 165.0e9,
                "observed": 0.0,
                "is_champion": True,
            },
            {
                "unique_id": "item:semiconductors",
                "year": 2026,
                "model": "seasonal_naive",
                "forecast": 120.0e9,
                "lo_80": 110e9,
                "hi_80": 130e9,
                "lo_95": 100e9,
                "hi_95": 140e9,
                "observed": 0.0,
                "is_champion": False,
            },
        ]
    )
    _write(folder, "forecast_annual.csv", annual)
    metrics = []
    for uid, scores in (
        ("total", {"seasonal_naive": (1.0, 1.2), "ets": (0.6, 0.8)}),
        ("item:semiconductors", {"seasonal_naive": (0.9, 0.7), "ets": (1.1, 1.3)}),
    ):
        for model, values in scores.items():
            for cutoff, v in zip(("2024-06-01", "2024-12-01"), values):
                metrics.append(
                    {
                        "unique_id": uid,
                        "model": model,
                        "cutoff": cutoff,
                        "mase": v,
                        "smape": 5.0,
                        "rmsse": v,
                        "coverage_80": 0.8,
                        "coverage_95": 0.95,
                    }
                )
    _write(folder, "backtest_metrics.csv", pd.DataFrame(metrics))
    _write(
        folder,
        "champions.csv",
        pd.DataFrame(
            [
                {
                    "unique_id": "total",
                    "champion": "ets",
                    "reason": "lowest mean MASE 0.700 over 2 windows",
                    "n_windows": 2,
                },
                {
                    "unique_id": "item:semiconductors",
                    "champion": "ets",
                    "reason": "chosen <by hand> & for the test",
                    "n_windows": 2,
                },
            ]
        ),
    )
    _write(
        folder,
        "model_fits.csv",
        pd.DataFrame(
            [
                {
                    "unique_id": "total",
                    "model": "ets",
                    "model_used": "ets",
                    "status": "ok",
                    "reason": "",
                    "error": "",
                    "n_obs": 96,
                    "description": "{}",
                },
                {
                    "unique_id": "item:semiconductors",
                    "model": "ets",
                    "model_used": "seasonal_naive",
                    "status": "fallback",
                    "reason": "ets failed; used seasonal_naive",
                    "error": "ValueError: boom",
                    "n_obs": 95,
                    "description": "{}",
                },
            ]
        ),
    )
    if institutional:
        comparison = []
        for year, kita, actual, model in (
            (2022, 680.0, 683.6, 690.0),
            (2023, 700.0, 632.2, 650.0),
            (2024, 690.0, 683.8, 670.0),
        ):
            for name, level in (("KITA", kita), ("KIET <script>alert(1)</script>", kita - 10)):
                comparison.append(
                    {
                        "target_year": year,
                        "unique_id": "total",
                        "institution": name,
                        "kind": "pre-year outlook",
                        "published": f"{year - 1}-11-20",
                        "published_in_target_year": False,
                        "projected_usd_bn": level,
                        "projected_growth_pct": np.nan,
                        "projected_level_usd_bn": level,
                        "level_basis": "level as published",
                        "model": "champion",
                        "champion_model": "ets",
                        "model_usd_bn": model,
                        "model_lo_80": model - 20,
                        "model_hi_80": model + 20,
                        "actual_usd_bn": actual,
                        "institution_ape": abs(level - actual) / actual * 100,
                        "model_ape": abs(model - actual) / actual * 100,
                        "in_summary": True,
                    }
                )
        _write(folder, "institutional_comparison.csv", pd.DataFrame(comparison))
        _write(
            folder,
            "institutional_summary.csv",
            pd.DataFrame(
                [
                    {
                        "unique_id": "total",
                        "institution": "KITA",
                        "n_years": 3,
                        "years": "2022-2024",
                        "institution_mape": 4.61,
                        "model": "champion",
                        "model_mape": 2.81,
                        "model_coverage_80": 2 / 3,
                        "institution_bias_pct": 3.52,
                        "model_bias_pct": 1.23,
                    },
                    {
                        "unique_id": "total",
                        "institution": "KITA",
                        "n_years": 3,
                        "years": "2022-2024",
                        "institution_mape": 4.61,
                        "model": "ets",
                        "model_mape": 2.5,
                        "model_coverage_80": 1.0,
                        "institution_bias_pct": 3.52,
                        "model_bias_pct": 0.5,
                    },
                ]
            ),
        )
        _write(
            folder,
            "institutional_outlook.csv",
            pd.DataFrame(
                [
                    {
                        "target_year": 2026,
                        "unique_id": "total",
                        "institution": "KITA",
                        "kind": "pre-year outlook",
                        "published": "2025-12-05",
                        "projected_usd_bn": 711.0,
                        "projected_growth_pct": 1.0,
                        "projected_level_usd_bn": 711.0,
                        "model_usd_bn": 720.4,
                        "model_lo_80": 700.1,
                        "model_hi_80": 740.9,
                        "model_growth_pct": 1.75,
                    },
                    {
                        "target_year": 2026,
                        "unique_id": "item:semiconductors",
                        "institution": "KIET",
                        "kind": "pre-year outlook",
                        "published": "2025-11-24",
                        "projected_usd_bn": np.nan,
                        "projected_growth_pct": 4.7,
                        "projected_level_usd_bn": 125.0,
                        "model_usd_bn": 150.0,
                        "model_lo_80": 140.0,
                        "model_hi_80": 160.0,
                        "model_growth_pct": 2.0,
                    },
                ]
            ),
        )
    # run.json as the pipeline writes it (RunRecord: the same class the report reads)
    run = RunRecord(
        run_id="abc123",
        target_year=2026,
        git_head="deadbeef0123456789",
        started_at="2026-01-16T00:00:00+00:00",
        data_source="embedded",
        data_origin="data/exports_monthly.csv",
        institutional_compared=institutional,
    )
    (folder / "run.json").write_bytes(run.to_bytes())
    return folder


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, str]:
    data = write_dataset(tmp_path / "data")
    out = write_outputs(tmp_path / "outputs")
    path = write_report(out, data_dir=data)
    return path, path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- helpers
class _Structure(HTMLParser):
    """Checks that every non-void element is closed in order, and collects img and link targets."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[dict[str, str]] = []
        self.targets: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        for key in ("src", "href", "srcset", "data", "action", "poster"):
            if attrs.get(key):
                self.targets.append(attrs[key])
        if "style" in attrs and "url(" in attrs["style"]:
            self.targets.append(attrs["style"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()


def parse(text: str) -> _Structure:
    parser = _Structure()
    parser.feed(text)
    parser.close()
    return parser


# --------------------------------------------------------------------------- tests
def test_number_formats():
    assert fmt_bn(720.4) == "720.4"
    assert fmt_bn(1234.56) == "1,234.6"
    assert fmt_bn(float("nan")) == "–"
    assert fmt_pct(1.7514, signed=True) == "+1.8%"
    assert fmt_pct(-0.5, signed=True) == "-0.5%"
    assert fmt_pct(None) == "–"


def test_headline_numbers(report):
    _, text = report
    # total: 720.4 bn, 2025 = 12 x 59 = 708.0, change (720.4 - 708) / 708 = +1.75%
    assert "Total exports 2026: <b>720.4 bn USD</b>, +1.8% on 2025 (708.0 bn)" in text
    assert "80% range 700.1–740.9, 95% range 690.0–750.2" in text
    row = re.search(r"<tr><td>Semiconductors</td>(.*?)</tr>", text).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    # 2025 has 11 of 12 months for semiconductors: no actual, no change; its ets champion fell back
    # to seasonal naive (model_fits.csv), and the table says so
    # and, as its forecast repeats the past, says so in words (its last month is 2025-11)
    assert cells == [
        "ets → seasonal_naive",
        "95",
        "150.0",
        "140.0–160.0",
        "135.0–165.0",
        "incomplete (11/12 months)",
        "ets failed: repeats its last 12 months (to 2025-11)",
    ]
    total_row = re.search(r"<tr><td>Total exports</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", total_row) == [
        "ets",
        "96",
        "720.4",
        "700.1–740.9",
        "690.0–750.2",
        "708.0",
        "+1.8%",
    ]


def test_images_are_embedded_and_nothing_external_is_loaded(report):
    _, text = report
    doc = parse(text)
    # fan charts: total and semiconductors; institutional APE chart: total (3 years)
    assert len(doc.images) == 3
    for img in doc.images:
        assert img["src"].startswith("data:image/png;base64,")
        assert int(img["width"]) > 0 and int(img["height"]) > 0
        assert img["alt"]
    for target in doc.targets:
        assert not re.match(r"\s*(https?:)?//", target), target
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text, flags=re.I)
    assert "@import" not in text and "url(" not in text
    assert "<script" not in text.lower()


def test_structure_is_valid(report):
    _, text = report
    assert text.startswith("<!DOCTYPE html>")
    doc = parse(text)
    assert doc.errors == []
    assert doc.stack == []
    assert doc.tags[:3] == ["html", "head", "meta"]
    for section in ("headline", "fans", "institutions", "backtest", "champions", "data"):
        assert f'<section id="{section}">' in text
    assert '<meta charset="utf-8">' in text


def test_text_is_escaped(report):
    _, text = report
    assert "KIET &lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "chosen &lt;by hand&gt; &amp; for the test" in text


def test_backtest_table_highlights_the_best_model(report):
    _, text = report
    # total: ets mean MASE 0.70 beats seasonal naive 1.10; semiconductors: seasonal naive 0.80 beats ets 1.20
    total = re.search(r"<tr><td>Total exports</td><td class=num>2</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td class=num>(.*?)</td>", total) == ['<span class="best">0.70</span>', "1.10"]
    semis = re.search(r"<tr><td>Semiconductors</td><td class=num>2</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td class=num>(.*?)</td>", semis) == ["1.20", '<span class="best">0.80</span>']


def test_institutional_tables_and_outlook(report):
    _, text = report
    row = re.search(r"<tr><td>Total exports</td><td>KITA</td><td>2022-2024</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", row) == ["3", "4.61%", "2.81%", "67%", "+3.52%", "+1.23%", "–"]
    # outlook: KIET's growth-only semiconductor projection is marked as derived
    outlook = re.search(r"<tr><td>Semiconductors</td><td>KIET</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", outlook) == [
        "pre-year outlook",
        "–",
        "+4.7%",
        "125.0 *",
        "150.0",
        "140.0–160.0",
        "below",
        "+2.0% (ets failed: repeats its last 12 months (to 2025-11))",
    ]
    # KITA's 711.0 on the total lies inside the model's 700.1-740.9; KIET's 125.0 below 140.0-160.0
    kita = re.search(r"<tr><td>Total exports</td><td>KITA</td><td>pre-year outlook</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", kita)[5] == "inside"
    assert (
        "1 of 2 projections lie outside the model&#x27;s 80% range: KIET on Semiconductors (below). There the "
        "model and the institution disagree by more than the model&#x27;s own uncertainty"
    ) in text


def test_champions_fallbacks_and_freshness(report):
    _, text = report
    assert "ets failed; used seasonal_naive ValueError: boom" in text
    assert "Latest month in the data: <b>2025-12</b>" in text
    fresh = re.search(r"<tr><td>item:semiconductors</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", fresh)[:5] == ["Semiconductors", "2018-01", "2025-11", "95", "0"]
    # named as text relative to the checkout, not linked: a copied report keeps it
    assert re.search(
        r"Provenance of every raw file: <code>[./]*[^<]*data/PROVENANCE\.md</code> \(relative to the "
        r"exportcast checkout",
        text,
    )
    assert 'PROVENANCE.md"' not in text and "<a href" not in text.split('<section id="data">')[1]
    assert (
        "run</b> abc123" in text
        and "code</b> deadbeef0123<" in text
        and "started</b> 2026-01-16T00:00:00+00:00" in text
    )


def test_missing_institutional_files_give_a_note(tmp_path):
    data = write_dataset(tmp_path / "data")
    out = write_outputs(tmp_path / "outputs", institutional=False)
    text = write_report(out, data_dir=data).read_text(encoding="utf-8")
    assert "institutional_comparison.csv and institutional_summary.csv were not found in" in text
    assert "institutional_outlook.csv was not found in" in text
    assert len(parse(text).images) == 2
    assert parse(text).errors == []


def test_missing_dataset_gives_a_note_and_forecast_only_charts(tmp_path):
    out = write_outputs(tmp_path / "outputs")
    text = write_report(out, data_dir=tmp_path / "nowhere").read_text(encoding="utf-8")
    assert f"the dataset in {tmp_path / 'nowhere'} could not be read (FileNotFoundError" in text
    assert "Total exports 2026: <b>720.4 bn USD</b> <span" in text  # no 2025 actual: no change
    assert len(parse(text).images) == 3


def test_written_atomically_to_out_path(tmp_path):
    data = write_dataset(tmp_path / "data")
    out = write_outputs(tmp_path / "outputs")
    target = tmp_path / "site" / "index.html"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    assert write_report(out, data_dir=data, out_path=target) == target
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in target.parent.iterdir()) == ["index.html"]
    assert not (out / "report.html").exists()


def test_missing_or_broken_inputs_are_named(tmp_path):
    out = write_outputs(tmp_path / "outputs")
    (out / "forecast_annual.csv").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"forecast_annual\.csv not found: the report needs the published forecasts$"
    ):
        write_report(out)
    with pytest.raises(FileNotFoundError, match=r"^outputs folder .*nope does not exist"):
        write_report(tmp_path / "nope")
    out = write_outputs(tmp_path / "outputs2")
    pd.read_csv(out / "champions.csv").drop(columns=["reason"]).to_csv(out / "champions.csv", index=False)
    with pytest.raises(
        ReportError,
        match=r"champions\.csv: missing column\(s\) reason; has unique_id, champion, "
        r"n_windows, metric, mean_score$",
    ):
        write_report(out)
    (out / "run.json").write_text("{not json", encoding="utf-8")
    _write(out, "champions.csv", pd.DataFrame({"unique_id": ["total"], "champion": ["ets"], "reason": ["r"]}))
    with pytest.raises(ReportError, match=r"run\.json: not valid JSON \(line 1: "):
        write_report(out)


def test_institution_colours_are_distinct_and_the_same_in_every_chart():
    names = [
        "BOK",
        "FKI",
        "HRI",
        "KCCI",
        "KDB",
        "KDI",
        "KERI",
        "KEXIM",
        "KIAF",
        "KIET",
        "KITA",
        "KOTRA",
        "LGERI",
        "MOTIE",
        "NABO",
        "OECD",
    ]
    colors = institution_colors(names)
    assert list(colors) == sorted(names)
    assert len(set(colors.values())) == len(names)  # 16 institutions, 16 colours (8 before: repeated)
    assert institution_colors(reversed(names + ["KITA"])) == colors  # order and repeats do not change a colour


# --------------------------------------------------------------------------- groups, history, fallbacks
#: the hierarchy case: unique_id -> (first month, observed months, USD bn a month, level, hierarchy,
#: parent, champion, model_used, champion reason, fit status, fit reason, 2026 forecast in USD bn)
HIERARCHY_CASE = {
    "total": (
        "2018-01",
        96,
        50.0,
        "total",
        "",
        "",
        "ets",
        "ets",
        "lowest mean MASE 0.700 over 3 windows",
        "ok",
        "",
        610.0,
    ),
    "item:semiconductors": (
        "2022-01",
        48,
        10.0,
        "item",
        "item",
        "total",
        "arima",
        "arima",
        "lowest mean MASE 0.800 over 3 windows",
        "ok",
        "",
        125.0,
    ),
    "item:other": (
        "2022-01",
        48,
        40.0,
        "item",
        "item",
        "total",
        "theta",
        "theta",
        "lowest mean MASE 0.900 over 3 windows",
        "ok",
        "",
        478.0,
    ),
    "item:semiconductors_ministry": (
        "2013-01",
        156,
        10.5,
        "item",
        "item",
        "",
        "ets",
        "ets",
        "lowest mean MASE 0.750 over 3 windows",
        "ok",
        "",
        131.0,
    ),
    "destination:china": (
        "2018-01",
        96,
        12.0,
        "destination",
        "destination",
        "total",
        "prophet",
        "prophet",
        "lowest mean MASE 0.850 over 3 windows",
        "ok",
        "",
        150.0,
    ),
    "destination:rest_of_world": (
        "2021-08",
        53,
        38.0,
        "destination",
        "destination",
        "total",
        "ensemble",
        "ensemble",
        "lowest mean MASE 0.950 over 3 windows",
        "ok",
        "",
        470.0,
    ),
    # 2025 only: no backtest window, the default champion (the ensemble) fell back to seasonal naive
    "destination:taiwan": (
        "2025-01",
        12,
        3.0,
        "destination",
        "destination",
        "",
        "ensemble",
        "seasonal_naive",
        "no backtest window: default",
        "fallback",
        "short series: 12 observed months < min_obs_seasonal 24; used seasonal_naive",
        36.0,
    ),
    # 2025 only, champion seasonal naive itself (status ok: it is the fallback, never replaced by itself)
    "destination:singapore": (
        "2025-01",
        12,
        1.0,
        "destination",
        "destination",
        "",
        "seasonal_naive",
        "seasonal_naive",
        "no backtest window: default",
        "ok",
        "",
        12.0,
    ),
}
HIERARCHY_NAMES = {
    "total": "Total exports",
    "item:semiconductors": "Semiconductors",
    "item:other": "Other items",
    "item:semiconductors_ministry": "Semiconductors (ministry MTI 831)",
    "destination:china": "China",
    "destination:rest_of_world": "Rest of world",
    "destination:taiwan": "Taiwan",
    "destination:singapore": "Singapore",
}


def write_hierarchy_case(root: Path) -> tuple[Path, Path]:
    """A dataset with series.csv's hierarchy columns and the published outputs of a run on it."""
    data, out = root / "data", root / "outputs"
    data.mkdir(parents=True)
    out.mkdir(parents=True)
    history, meta, monthly, annual, champions, fits = [], [], [], [], [], []
    months = pd.date_range("2026-01-01", periods=12, freq="MS")
    for uid, (
        first,
        n,
        level_bn,
        level,
        hierarchy,
        parent,
        champion,
        used,
        why,
        status,
        reason,
        fc_bn,
    ) in HIERARCHY_CASE.items():
        ds = pd.date_range(first, periods=n, freq="MS")
        assert ds[-1] == pd.Timestamp("2025-12-01"), uid
        history.append(
            pd.DataFrame({"unique_id": uid, "ds": ds.strftime("%Y-%m-%d"), "y": level_bn * BN, "source": "test"})
        )
        meta.append(
            {
                "unique_id": uid,
                "level": level,
                "name_en": HIERARCHY_NAMES[uid],
                "name_ko": "",
                "code": "",
                "unit": "USD",
                "first_month": first,
                "last_month": "2025-12",
                "n_obs": n,
                "n_missing": 0,
                "sources": "test",
                "hierarchy": hierarchy,
                "parent": parent,
                "backtest": "yes",
                "definition": uid,
            }
        )
        f = fc_bn / 12 * BN
        monthly.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": months,
                    "model": champion,
                    "forecast": f,
                    "lo_80": 0.9 * f,
                    "hi_80": 1.1 * f,
                    "lo_95": 0.8 * f,
                    "hi_95": 1.2 * f,
                    "is_champion": True,
                }
            )
        )
        annual.append(
            {
                "unique_id": uid,
                "year": 2026,
                "model": champion,
                "forecast": fc_bn * BN,
                "lo_80": 0.95 * fc_bn * BN,
                "hi_80": 1.05 * fc_bn * BN,
                "lo_95": 0.9 * fc_bn * BN,
                "hi_95": 1.1 * fc_bn * BN,
                "observed": 0.0,
                "is_champion": True,
            }
        )
        champions.append(
            {"unique_id": uid, "champion": champion, "reason": why, "n_windows": 0 if "default" in why else 3}
        )
        fits.append(
            {
                "unique_id": uid,
                "model": champion,
                "model_used": used,
                "status": status,
                "reason": reason,
                "error": "",
                "n_obs": n,
                "description": "{}",
            }
        )
    pd.concat(history).to_csv(data / "exports_monthly.csv", index=False, float_format="%.0f")
    pd.DataFrame(meta).to_csv(data / "series.csv", index=False)
    _write(out, "forecast_monthly.csv", pd.concat(monthly))
    _write(out, "forecast_annual.csv", pd.DataFrame(annual))
    _write(out, "champions.csv", pd.DataFrame(champions))
    _write(out, "model_fits.csv", pd.DataFrame(fits))
    run = RunRecord(
        run_id="h1",
        target_year=2026,
        data_source="embedded",
        data_origin="data/exports_monthly.csv",
        institutional_compared=False,
    )
    (out / "run.json").write_bytes(run.to_bytes())
    return data, out


@pytest.fixture
def hierarchy_report(tmp_path: Path) -> str:
    data, out = write_hierarchy_case(tmp_path)
    return write_report(out, data_dir=data).read_text(encoding="utf-8")


def headline_groups(text: str) -> dict[str, list[list[str]]]:
    """The headline section's groups: heading -> rows of cells (a sub-heading row as one cell)."""
    section = text.split('<section id="headline">')[1].split("</section>")[0]
    section = section.split("<h3>Beside the institutions")[0]
    groups = {}
    for match in re.finditer(r'<h3 id="headline-(\w+)">(.*?)</h3><table.*?<tbody>(.*?)</tbody>', section):
        rows = re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(3))
        groups[match.group(2)] = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    return groups


def test_headline_is_grouped_as_total_items_and_destinations(hierarchy_report):
    groups = headline_groups(hierarchy_report)
    assert list(groups) == ["Total", "Items", "Destinations and regions"]
    names = {title: [cells[0] for cells in rows] for title, rows in groups.items()}
    # hierarchy members largest first, then the series outside the hierarchy (series.csv: no parent)
    assert names["Total"] == ["Total exports"]
    assert names["Items"] == [
        "Other items",
        "Semiconductors",
        "Outside the hierarchy (not in the partition of Total exports)",
        "Semiconductors (ministry MTI 831)",
    ]
    assert names["Destinations and regions"] == [
        "Rest of world",
        "China",
        "Outside the hierarchy (not in the partition of Total exports)",
        "Taiwan",
        "Singapore",
    ]
    # the members' sum beside their parent: items 478 + 125 = 603 vs 610 (-1.1%); destinations 470 + 150 = 620 (+1.6%)
    assert (
        "The 2 items in the hierarchy sum to 603.0 bn, -1.1% on the Total exports forecast (610.0 bn): "
        "each series is forecast on its own (not reconciled)."
    ) in hierarchy_report
    assert (
        "The 2 destinations and regions in the hierarchy sum to 620.0 bn, +1.6% on the Total exports forecast "
        "(610.0 bn)"
    ) in hierarchy_report


def test_headline_months_of_history_column(hierarchy_report):
    groups = headline_groups(hierarchy_report)
    months = {cells[0]: cells[2] for rows in groups.values() for cells in rows if len(cells) > 1}
    assert months == {
        "Total exports": "96",
        "Other items": "48",
        "Semiconductors": "48",
        "Semiconductors (ministry MTI 831)": "156",
        "Rest of world": "53",
        "China": "96",
        "Taiwan": "12",
        "Singapore": "12",
    }
    header = re.search(r'<h3 id="headline-total">Total</h3><table.*?<thead><tr>(.*?)</tr>', hierarchy_report).group(1)
    assert re.findall(r"<th[^>]*>(.*?)</th>", header) == [
        "Series",
        "Champion",
        "History (months)",
        "2026 forecast",
        "80% range",
        "95% range",
        "2025 actual",
        "Change on 2025",
    ]


def test_short_series_fallback_is_said_in_words(hierarchy_report):
    groups = headline_groups(hierarchy_report)
    rows = {cells[0]: cells for rows in groups.values() for cells in rows if len(cells) > 1}
    # Taiwan: 2025 = 12 x 3.0 = 36.0 bn, forecast 36.0 bn: the ensemble fell back to seasonal naive
    assert rows["Taiwan"][1:] == [
        "ensemble → seasonal_naive",
        "12",
        "36.0",
        "34.2–37.8",
        "32.4–39.6",
        "36.0",
        "12 months of history: repeats last year",
    ]
    # Singapore: seasonal naive is itself the default champion of a series with no backtest window
    assert rows["Singapore"][1:] == [
        "seasonal_naive",
        "12",
        "12.0",
        "11.4–12.6",
        "10.8–13.2",
        "12.0",
        "12 months of history: repeats last year",
    ]
    # the others: a number (total 610 on 600: +1.7%; China 150 on 144: +4.2%; other items 478 on 480: -0.4%)
    assert [rows[n][-1] for n in ("Total exports", "China", "Other items")] == ["+1.7%", "+4.2%", "-0.4%"]
    headline = hierarchy_report.split('<section id="headline">')[1].split("</section>")[0]
    assert "+0.0%" not in headline and "-0.0%" not in headline
    # the fan charts: the total, then one small-multiples figure per group; a fallback panel says it too
    fans = hierarchy_report.split('<section id="fans">')[1].split("</section>")[0]
    alts = [img["alt"].replace("\u00a0", " ") for img in parse(fans).images]  # "48 mo" is kept on one line
    assert len(alts) == 3
    assert alts[0].startswith("Total exports: 96 months of history and 12 forecast months (ets)")
    assert alts[1].startswith(
        "Items: small multiples of 3 series (Other items (48 mo), Semiconductors (48 mo), "
        "Semiconductors (ministry MTI 831)\n(156 mo) *)"
    )
    assert "Taiwan\n12 months of history: repeats last year *" in alts[2]


def test_groups_without_hierarchy_columns_follow_the_id(tmp_path):
    # the first fixture's series.csv has no hierarchy/parent columns: its level groups the series
    data = write_dataset(tmp_path / "data")
    out = write_outputs(tmp_path / "outputs")
    groups = headline_groups(write_report(out, data_dir=data).read_text(encoding="utf-8"))
    assert {title: [cells[0] for cells in rows] for title, rows in groups.items()} == {
        "Total": ["Total exports"],
        "Items": ["Semiconductors"],
    }


# --------------------------------------------------------------------------- this year (issue 10)
def write_this_year(folder: Path, *, tracking: bool = True) -> Path:
    """nowcast.csv: total 2024-01..2025-12, actual 60 bn every month; model only 63 bn (APE 5%, 80%
    range 61-65 misses), 10-day flash 61.8 bn (3%, range 60-63.6 holds), 20-day flash 61.2 bn in
    2024 (2%) and 60.6 bn in 2025 (1%), range 59-62 holds.
    tracking.csv: the total for 2024 (actual 680), 2025 (actual 700) and 2026 (in progress)."""
    months = pd.date_range("2024-01-01", "2025-12-01", freq="MS")
    rows = []
    for ds in months:
        d20 = 61.2 if ds.year == 2024 else 60.6
        for info, day, value, lo, hi in (
            ("none", 16, 63.0, 61.0, 65.0),
            ("d10", 11, 61.8, 60.0, 63.6),
            ("d20", 21, d20, 59.0, 62.0),
        ):
            as_of = (
                ds + pd.Timedelta(days=day - 1)
                if info != "none"
                else ds - pd.DateOffset(months=1) + pd.Timedelta(days=15)
            )
            rows.append(
                {
                    "unique_id": "total",
                    "ds": ds,
                    "information": info,
                    "as_of": as_of,
                    "nowcast": value * BN,
                    "lo_80": lo * BN,
                    "hi_80": hi * BN,
                    "actual": 60.0 * BN,
                    "ape": abs(value - 60.0) / 60.0 * 100,
                }
            )
    _write(folder, "nowcast.csv", pd.DataFrame(rows))
    track = []
    if tracking:
        for year, actual, path in (
            (
                2024,
                680.0,
                (
                    ("2024-01-16", "month", 0, 700.0),
                    ("2024-01-21", "d20", 0, 690.0),
                    ("2024-06-16", "month", 5, 681.0),
                ),
            ),
            (
                2025,
                700.0,
                (("2025-01-16", "month", 0, 680.0), ("2025-01-21", "d20", 0, 690.0), ("2025-06-16", "month", 5, 695.0)),
            ),
            (2026, np.nan, (("2026-01-16", "month", 0, 720.0), ("2026-01-21", "d20", 0, 725.0))),
        ):
            for as_of, info, observed, value in path:
                track.append(
                    {
                        "target_year": year,
                        "as_of": pd.Timestamp(as_of),
                        "information": info,
                        "unique_id": "total",
                        "months_observed": observed,
                        "forecast_usd_bn": value,
                        "lo_80": value - 30,
                        "hi_80": value + 30,
                        "model": "champion",
                        "actual_usd_bn": actual,
                        "ape": abs(value - actual) / actual * 100 if actual == actual else np.nan,
                    }
                )
    _write(folder, "tracking.csv", pd.DataFrame(track, columns=list(SCHEMAS["tracking.csv"].columns)))
    return folder


@pytest.fixture
def this_year(tmp_path: Path) -> tuple[Path, str]:
    data = write_dataset(tmp_path / "data")
    out = write_this_year(write_outputs(tmp_path / "outputs"))
    path = write_report(out, data_dir=data)
    return path, path.read_text(encoding="utf-8")


def _section(text: str, anchor: str) -> str:
    return re.search(rf'<section id="{anchor}">(.*?)</section>', text, re.S).group(1)


def test_this_year_errors_by_information_date():
    from flows.report import nowcast_errors, tracking_errors
    from flows.results import SCHEMAS as S

    folder = write_this_year(Path(__import__("tempfile").mkdtemp()))
    tracking = S["tracking.csv"].read(folder / "tracking.csv")
    errors = tracking_errors(tracking)
    # January: month (|680-700|/700 = 2.857%, |700-680|/680 = 2.941%), d20 (1.429%, 1.471%); June: month (0.714%, 0.147%)
    assert errors["as_of_month"].tolist() == [1, 1, 6]
    assert errors["information"].tolist() == ["month", "d20", "month"]
    assert errors["mape"].round(6).tolist() == [2.899160, 1.449580, 0.430672]
    assert errors["n_years"].tolist() == [2, 2, 2]
    now = nowcast_errors(S["nowcast.csv"].read(folder / "nowcast.csv"))
    assert now["information"].tolist() == ["none", "d10", "d20"]
    assert now["months"].tolist() == [24, 24, 24]
    assert now["mape"].round(6).tolist() == [5.0, 3.0, 1.5]
    assert now["vs_none"].round(6).tolist()[1:] == [0.6, 0.3]
    assert now["coverage_80"].tolist() == [0.0, 1.0, 1.0]
    assert now.attrs["recent"] == (2024, 2025)


def test_this_year_section_charts_and_tables(this_year):
    _, text = this_year
    assert '<a href="#this-year">This year</a>' in text
    section = _section(text, "this-year")
    alts = re.findall(r'<img class="chart" alt="([^"]*)"', section)
    assert alts == [
        "Total exports: forecast path of the 2026 annual total through the year (champion, 2 information dates) with "
        "its 80% range, latest 725.0 bn (695.0–755.0), 1 institutional figure",
        # then the latest complete year, converging on its actual
        "Total exports: forecast path of the 2025 annual total through the year (champion, 3 information dates) with "
        "its 80% range, latest 695.0 bn (665.0–725.0), 0 institutional figures and the actual 700.0 bn",
        "Total exports: monthly nowcasts 2024-01 to 2025-12, model only against the 10-day and 20-day flash, and the "
        "actual",
    ]
    # the target year's tracking is not the headline (ets 720.4 bn): said in words, once
    assert section.count("Why the tracked") == 1
    assert (
        "Why the tracked 725.0 bn (as of 2026-01-21) is not the headline&#x27;s 720.4 bn: the headline is the "
        "champion&#x27;s forecast (ets, chosen in the backtest, fitted on every month of the data); the tracking is "
        "champion&#x27;s in-year tracking (the months of 2026 already published plus champion&#x27;s forecast of "
        "the rest, re-made after each month&#x27;s figure and flash with what was public that day), one model for "
        "every year so that its errors by information date compare. Difference +4.6 bn (+0.6%), inside both 80% "
        "ranges."
    ) in section
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", section)]
    assert ["Jan", "2", "2.90%", "1.45%"] in rows
    assert ["Jun", "2", "0.43%", "–"] in rows
    assert ["model only (no flash)", "24", "5.00%", "5.00%", "–", "0%"] in rows
    assert ["10-day flash", "24", "3.00%", "3.00%", "0.60x", "100%"] in rows
    assert ["20-day flash", "24", "1.50%", "1.50%", "0.30x", "100%"] in rows
    assert parse(text).errors == []


def test_tracking_chart_of_a_past_year_shows_the_actual_and_mid_year_revisions(tmp_path):
    from flows.report import institution_points, load_inputs, tracking_path, tracking_year

    data = write_dataset(tmp_path / "data")
    out = write_this_year(write_outputs(tmp_path / "outputs"))
    track = SCHEMAS["tracking.csv"].read(out / "tracking.csv")
    _write(out, "tracking.csv", track[track["target_year"] < 2026])
    comp = SCHEMAS["institutional_comparison.csv"].read(out / "institutional_comparison.csv")
    mid = (
        comp[comp["target_year"] == 2024]
        .iloc[[0]]
        .assign(
            kind="mid-year revision",
            published="2025-06-27",
            institution="KITA",
            target_year=2025,
            projected_level_usd_bn=675.0,
        )
    )
    _write(out, "institutional_comparison.csv", pd.concat([comp, mid]))
    inputs = load_inputs(out, data)
    assert tracking_year(inputs) == 2025  # the target year 2026 is not in tracking.csv: the latest year
    path = tracking_path(inputs.tracking, "total", 2024)
    assert path["forecast_usd_bn"].tolist() == [700.0, 690.0, 681.0]
    points = institution_points(inputs, "total", 2024)
    assert points[["institution", "kind", "usd_bn"]].values.tolist() == [
        ["KIET <script>alert(1)</script>", "pre-year outlook", 680.0],
        ["KITA", "pre-year outlook", 690.0],
    ]
    assert institution_points(inputs, "total", 2025)[
        ["institution", "kind", "published", "usd_bn"]
    ].values.tolist() == [["KITA", "mid-year revision", pd.Timestamp("2025-06-27"), 675.0]]
    text = write_report(out, data_dir=data).read_text(encoding="utf-8")
    assert (
        "forecast path of the 2025 annual total through the year (champion, 3 information dates) with its 80% "
        "range, latest 695.0 bn (665.0–725.0), 1 institutional figure and the actual 700.0 bn" in text
    )


def test_empty_tracking_says_what_is_missing(tmp_path):
    data = write_dataset(tmp_path / "data")
    out = write_this_year(write_outputs(tmp_path / "outputs"), tracking=False)
    section = _section(write_report(out, data_dir=data).read_text(encoding="utf-8"), "this-year")
    assert (
        "No tracking chart: tracking.csv has no rows in this run. The in-year tracking of the annual total "
        "(tracking.csv) is published by the monthly and flash-nowcast flows on the embedded data (a user CSV carries "
        "no publication dates or flash)."
    ) in section
    assert (
        "Tracked annual total: no target year with an actual in tracking.csv, so no error by information date yet."
    ) in section
    assert len(re.findall(r'<img class="chart"', section)) == 1  # the nowcast chart is still drawn


def test_without_nowcast_and_tracking_files_the_section_says_so(report):
    _, text = report
    section = _section(text, "this-year")
    assert "No tracking chart: tracking.csv was not found in " in section
    assert "No nowcast chart: nowcast.csv was not found in " in section
    assert "<img" not in section


def test_the_institutional_note_says_how_far_back_the_champion_looked(tmp_path):
    data = write_dataset(tmp_path / "data")
    out = write_outputs(tmp_path / "outputs")
    plain = write_report(out, data_dir=data).read_text(encoding="utf-8")
    assert "the champion of year Y is chosen on earlier years only. APE" in plain  # run.json without the setting
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    record["config"] = {"institutional": {"first_year": 2013, "selection_first_year": 2001}}
    (out / "run.json").write_text(json.dumps(record), encoding="utf-8")
    text = write_report(out, data_dir=data).read_text(encoding="utf-8")
    assert (
        "the champion of year Y is chosen on earlier years only (every year from 2001 the series&#x27; data "
        "allows, including years before 2013 that have no institutional outlook here). APE"
    ) in text


def test_charts_drawn_on_two_workers_give_the_same_bytes(tmp_path):
    """render_report(n_jobs=2) draws the chart sections in loky workers: the same HTML, charts
    included, to the byte, as one process."""
    from flows.report import load_inputs, render_report

    inputs = load_inputs(write_outputs(tmp_path / "outputs"), write_dataset(tmp_path / "data"))
    alone = render_report(inputs)
    assert alone.count("data:image/png;base64,") >= 3
    assert render_report(inputs, n_jobs=2) == alone
