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
    rows = pd.concat([
        pd.DataFrame({"unique_id": "total", "ds": ds.strftime("%Y-%m-%d"), "y": total, "source": "customs-confirmed:test"}),
        pd.DataFrame({"unique_id": "item:semiconductors", "ds": semis_ds.strftime("%Y-%m-%d"), "y": 10.0 * BN,
                      "source": "ministry-mti-kosis:test"}),
    ])
    rows.to_csv(folder / "exports_monthly.csv", index=False, float_format="%.0f")
    pd.DataFrame([
        {"unique_id": "total", "level": "total", "name_en": "Total exports", "name_ko": "총수출", "code": "", "unit": "USD",
         "first_month": "2018-01", "last_month": "2025-12", "n_obs": 96, "n_missing": 0, "sources": "customs-confirmed:test"},
        {"unique_id": "item:semiconductors", "level": "item", "name_en": "Semiconductors", "name_ko": "반도체", "code": "831",
         "unit": "USD", "first_month": "2018-01", "last_month": "2025-11", "n_obs": 95, "n_missing": 0,
         "sources": "ministry-mti-kosis:test"},
    ]).to_csv(folder / "series.csv", index=False)
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
            monthly.append(pd.DataFrame({"unique_id": uid, "ds": months.strftime("%Y-%m-%d"), "model": model,
                                         "forecast": f, "lo_80": 0.95 * f, "hi_80": 1.05 * f, "lo_95": 0.9 * f,
                                         "hi_95": 1.1 * f, "is_champion": model == "ets"}))
    _write(folder, "forecast_monthly.csv", pd.concat(monthly).assign(ds=lambda t: pd.to_datetime(t["ds"])))
    annual = pd.DataFrame([
        # champion (ets) figures in USD
        {"unique_id": "total", "year": 2026, "model": "ets", "forecast": 720.4e9, "lo_80": 700.1e9, "hi_80": 740.9e9,
         "lo_95": 690.0e9, "hi_95": 750.2e9, "observed": 0.0, "is_champion": True},
        {"unique_id": "total", "year": 2026, "model": "seasonal_naive", "forecast": 708.0e9, "lo_80": 650e9, "hi_80": 760e9,
         "lo_95": 600e9, "hi_95": 800e9, "observed": 0.0, "is_champion": False},
        {"unique_id": "item:semiconductors", "year": 2026, "model": "ets", "forecast": 150.0e9, "lo_80": 140.0e9,
         "hi_80": 160.0e9, "lo_95": 135.0e9, "hi_95": 165.0e9, "observed": 0.0, "is_champion": True},
        {"unique_id": "item:semiconductors", "year": 2026, "model": "seasonal_naive", "forecast": 120.0e9, "lo_80": 110e9,
         "hi_80": 130e9, "lo_95": 100e9, "hi_95": 140e9, "observed": 0.0, "is_champion": False},
    ])
    _write(folder, "forecast_annual.csv", annual)
    metrics = []
    for uid, scores in (("total", {"seasonal_naive": (1.0, 1.2), "ets": (0.6, 0.8)}),
                        ("item:semiconductors", {"seasonal_naive": (0.9, 0.7), "ets": (1.1, 1.3)})):
        for model, values in scores.items():
            for cutoff, v in zip(("2024-06-01", "2024-12-01"), values):
                metrics.append({"unique_id": uid, "model": model, "cutoff": cutoff, "mase": v, "smape": 5.0, "rmsse": v,
                                "coverage_80": 0.8, "coverage_95": 0.95})
    _write(folder, "backtest_metrics.csv", pd.DataFrame(metrics))
    _write(folder, "champions.csv", pd.DataFrame([
        {"unique_id": "total", "champion": "ets", "reason": "lowest mean MASE 0.700 over 2 windows", "n_windows": 2},
        {"unique_id": "item:semiconductors", "champion": "ets", "reason": "chosen <by hand> & for the test", "n_windows": 2},
    ]))
    _write(folder, "model_fits.csv", pd.DataFrame([
        {"unique_id": "total", "model": "ets", "model_used": "ets", "status": "ok", "reason": "", "error": "", "n_obs": 96,
         "description": "{}"},
        {"unique_id": "item:semiconductors", "model": "ets", "model_used": "seasonal_naive", "status": "fallback",
         "reason": "ets failed; used seasonal_naive", "error": "ValueError: boom", "n_obs": 95, "description": "{}"},
    ]))
    if institutional:
        comparison = []
        for year, kita, actual, model in ((2022, 680.0, 683.6, 690.0), (2023, 700.0, 632.2, 650.0), (2024, 690.0, 683.8, 670.0)):
            for name, level in (("KITA", kita), ("KIET <script>alert(1)</script>", kita - 10)):
                comparison.append({"target_year": year, "unique_id": "total", "institution": name, "kind": "pre-year outlook",
                                   "published": f"{year - 1}-11-20", "published_in_target_year": False,
                                   "projected_usd_bn": level, "projected_growth_pct": np.nan, "projected_level_usd_bn": level,
                                   "level_basis": "level as published", "model": "champion", "champion_model": "ets",
                                   "model_usd_bn": model, "model_lo_80": model - 20, "model_hi_80": model + 20,
                                   "actual_usd_bn": actual, "institution_ape": abs(level - actual) / actual * 100,
                                   "model_ape": abs(model - actual) / actual * 100, "in_summary": True})
        _write(folder, "institutional_comparison.csv", pd.DataFrame(comparison))
        _write(folder, "institutional_summary.csv", pd.DataFrame([
            {"unique_id": "total", "institution": "KITA", "n_years": 3, "years": "2022-2024", "institution_mape": 4.61,
             "model": "champion", "model_mape": 2.81, "model_coverage_80": 2 / 3, "institution_bias_pct": 3.52,
             "model_bias_pct": 1.23},
            {"unique_id": "total", "institution": "KITA", "n_years": 3, "years": "2022-2024", "institution_mape": 4.61,
             "model": "ets", "model_mape": 2.5, "model_coverage_80": 1.0, "institution_bias_pct": 3.52, "model_bias_pct": 0.5},
        ]))
        _write(folder, "institutional_outlook.csv", pd.DataFrame([
            {"target_year": 2026, "unique_id": "total", "institution": "KITA", "kind": "pre-year outlook",
             "published": "2025-12-05", "projected_usd_bn": 711.0, "projected_growth_pct": 1.0, "projected_level_usd_bn": 711.0,
             "model_usd_bn": 720.4, "model_lo_80": 700.1, "model_hi_80": 740.9, "model_growth_pct": 1.75},
            {"target_year": 2026, "unique_id": "item:semiconductors", "institution": "KIET", "kind": "pre-year outlook",
             "published": "2025-11-24", "projected_usd_bn": np.nan, "projected_growth_pct": 4.7,
             "projected_level_usd_bn": 125.0, "model_usd_bn": 150.0, "model_lo_80": 140.0, "model_hi_80": 160.0,
             "model_growth_pct": 2.0},
        ]))
    # run.json as the pipeline writes it (RunRecord: the same class the report reads)
    run = RunRecord(run_id="abc123", target_year=2026, git_head="deadbeef0123456789", started_at="2026-01-16T00:00:00+00:00",
                    data_source="embedded", data_origin="data/exports_monthly.csv", institutional_compared=institutional)
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
    assert cells == ["ets → seasonal_naive", "150.0", "140.0–160.0", "135.0–165.0", "incomplete (11/12 months)", "–"]
    total_row = re.search(r"<tr><td>Total exports</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", total_row) == ["ets", "720.4", "700.1–740.9", "690.0–750.2", "708.0", "+1.8%"]


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
    assert re.findall(r"<td[^>]*>(.*?)</td>", row) == ["3", "4.61%", "2.81%", "67%", "+3.52%", "+1.23%"]
    # outlook: KIET's growth-only semiconductor projection is marked as derived
    outlook = re.search(r"<tr><td>Semiconductors</td><td>KIET</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", outlook) == ["pre-year outlook", "–", "+4.7%", "125.0 *", "150.0",
                                                           "140.0–160.0", "+2.0%"]


def test_champions_fallbacks_and_freshness(report):
    _, text = report
    assert "ets failed; used seasonal_naive ValueError: boom" in text
    assert "Latest month in the data: <b>2025-12</b>" in text
    fresh = re.search(r"<tr><td>item:semiconductors</td>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", fresh)[:5] == ["Semiconductors", "2018-01", "2025-11", "95", "0"]
    # named as text relative to the checkout, not linked: a copied report keeps it
    assert re.search(r"Provenance of every raw file: <code>[./]*[^<]*data/PROVENANCE\.md</code> \(relative to the "
                     r"exportcast checkout", text)
    assert "PROVENANCE.md\"" not in text and "<a href" not in text.split('<section id="data">')[1]
    assert "run</b> abc123" in text and "code</b> deadbeef0123<" in text and "started</b> 2026-01-16T00:00:00+00:00" in text


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
    assert "Total exports 2026: <b>720.4 bn USD</b> <span" in text      # no 2025 actual: no change
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
    with pytest.raises(FileNotFoundError, match=r"forecast_annual\.csv not found: the report needs the published forecasts$"):
        write_report(out)
    with pytest.raises(FileNotFoundError, match=r"^outputs folder .*nope does not exist"):
        write_report(tmp_path / "nope")
    out = write_outputs(tmp_path / "outputs2")
    pd.read_csv(out / "champions.csv").drop(columns=["reason"]).to_csv(out / "champions.csv", index=False)
    with pytest.raises(ReportError, match=r"champions\.csv: missing column\(s\) reason; has unique_id, champion, "
                                          r"n_windows, mean_mase$"):
        write_report(out)
    (out / "run.json").write_text("{not json", encoding="utf-8")
    _write(out, "champions.csv", pd.DataFrame({"unique_id": ["total"], "champion": ["ets"], "reason": ["r"]}))
    with pytest.raises(ReportError, match=r"run\.json: not valid JSON \(line 1: "):
        write_report(out)


def test_institution_colours_are_distinct_and_the_same_in_every_chart():
    names = ["BOK", "FKI", "HRI", "KCCI", "KDB", "KDI", "KERI", "KEXIM", "KIAF", "KIET", "KITA", "KOTRA", "LGERI",
             "MOTIE", "NABO", "OECD"]
    colors = institution_colors(names)
    assert list(colors) == sorted(names)
    assert len(set(colors.values())) == len(names)          # 16 institutions, 16 colours (8 before: repeated)
    assert institution_colors(reversed(names + ["KITA"])) == colors  # order and repeats do not change a colour
