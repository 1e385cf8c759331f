"""The report's chip-cycle section (flows/chip_report.py): the 12-month changes, the latest reading
and the published model's line, from the run's own data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from flows.chip_report import SEMIS, chip_cycle_readings, chip_cycle_section, twelve_month_change
from flows.report import ReportInputs

MONTHS = pd.date_range("2023-01-01", "2025-12-01", freq="MS")


def _indicators() -> pd.DataFrame:
    rows = []
    for name, growth in (
        ("phlx_close:sox", 0.02),
        ("krx_close:skhynix_000660", 0.05),
        ("bok_month:dram_export_price_usd", -0.01),
    ):
        rows.append(
            pd.DataFrame({"indicator": name, "ds": MONTHS, "value": 100 * (1 + growth) ** np.arange(len(MONTHS))})
        )
    return pd.concat(rows, ignore_index=True)


def _inputs(indicators: pd.DataFrame | None) -> ReportInputs:
    history = pd.DataFrame({"unique_id": SEMIS, "ds": MONTHS, "y": 10e9 * 1.01 ** np.arange(len(MONTHS))})
    annual = pd.DataFrame(
        {
            "unique_id": [SEMIS],
            "year": [2026],
            "model": ["cycle_blend"],
            "forecast": [180e9],
            "lo_80": [150e9],
            "hi_80": [210e9],
        }
    )
    champions = pd.DataFrame({"unique_id": [SEMIS], "champion": ["cycle_blend"]})
    return ReportInputs(
        outputs_dir=None,
        monthly=pd.DataFrame(),
        annual=annual,
        champions=champions,
        history=history,
        indicators=indicators,
    )


def test_twelve_month_changes_and_the_latest_reading():
    changes = twelve_month_change(
        pd.Series([100.0] * 12 + [150.0], index=pd.date_range("2024-01-01", periods=13, freq="MS"))
    )
    assert changes.to_dict() == {pd.Timestamp("2025-01-01"): 50.0}
    readings = chip_cycle_readings(_indicators(), _inputs(None).history.set_index("ds")["y"])
    assert list(readings.columns) == [
        "phlx_close:sox",
        "krx_close:skhynix_000660",
        "bok_month:dram_export_price_usd",
        SEMIS,
    ]
    assert readings.loc["2025-12-01", "krx_close:skhynix_000660"] == pytest_approx(100 * (1.05**12 - 1))


def pytest_approx(value):
    import pytest

    return pytest.approx(value, rel=1e-12)


def test_section_shows_the_chart_the_latest_reading_and_the_models_line():
    inputs = _inputs(_indicators())
    html = chip_cycle_section(inputs)
    assert html.startswith('<section id="chip-cycle"><h2>Chip cycle</h2><figure><img class="chart"')
    assert "<td>SK hynix (KRX close)</td><td>2025-12</td><td class=num>+79.6%</td>" in html  # 1.05^12 - 1
    assert "<td>Semiconductor exports (ministry basis)</td><td>2025-12</td><td class=num>+12.7%</td>" in html
    total_2025 = float((10e9 * 1.01 ** np.arange(36))[24:].sum())
    assert (
        f"The published model (cycle_blend) forecasts 180.0 bn USD of semiconductor exports in 2026, "
        f"{100 * (180e9 / total_2025 - 1):+.1f}% on 2025 (80% range 150.0–210.0)."
    ) in html
    assert "not switched on" in html


def test_without_the_indicator_table_a_note_not_a_chart():
    html = chip_cycle_section(_inputs(None))
    assert "<img" not in html and "No chip-cycle chart: the run&#x27;s data has no semiconductor series" in html


def test_what_the_momentum_model_makes_of_the_latest_reading_is_the_leading_models_forecast(tmp_path):
    """The report's reading equals chip_momentum run through models.families.leading_extras.LeadingExtras at the last month."""
    from pathlib import Path

    import yaml

    from features.readers import read_embedded, read_indicators
    from flows import jobs
    from flows.chip_report import momentum_reading
    from flows.settings import load_settings
    from models.core import registry

    data = Path(__file__).resolve().parents[2] / "data"
    indicators = read_indicators(data)
    frame = read_embedded(data)
    y = frame[frame["unique_id"] == SEMIS].set_index("ds")["y"].astype(float).asfreq("MS")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"models": {"leading": {SEMIS: ["chip_momentum"]}}}), encoding="utf-8")
    extras = jobs.leading_extras(load_settings(config), indicators)
    months = pd.date_range(y.index[0], "2026-12-01", freq="MS", name="ds")
    got = extras(SEMIS, y.index[-1], months)
    model = registry.create("chip_momentum", got.models[0].params).fit(y, got.exog.loc[y.index])
    expected = float(model.predict(12, got.exog.loc["2026-01-01":])["forecast"].sum())
    assert momentum_reading(indicators, y, 2026) == expected
    assert 150e9 < expected < 300e9  # the 2025 total was 173.5 bn USD
    assert momentum_reading(indicators, y, 2028) is None  # beyond the regressions' 15 months
