"""The report's accuracy table (institutional section): the numbers of
models.applications.institutional.accuracy_table on a hand-built comparison, with the information each used."""

from __future__ import annotations

from flows.report import _accuracy_tables
from tests.models.test_institutional_combinations import hand_comparison


def test_accuracy_table_in_the_report_names_numbers_and_information():
    html = _accuracy_tables(hand_comparison(), {"total": "Total exports"})
    assert "Accuracy of the pre-year forecasts, 2013-2025" in html
    assert "<caption>Total exports</caption>" in html
    assert "Ratio to KITA" in html
    # ets: 3 years, MAPE 5.00%, bias +3.67%, coverage 67%, ratio 1.250
    ets = html[html.index("<td>ets</td>") :]
    ets = ets[: ets.index("</tr>")]
    for cell in ("3 (2013-2015)", "5.00%", "+3.67%", "67%", "1.250", "own monthly history through October of Y-1"):
        assert cell in ets, cell
    assert "everything they knew in November of Y-1" in html
    assert "not computed here; equal to the champion by construction: MinT keeps the base forecast of the total" in html


def test_no_accuracy_table_without_its_series():
    c = hand_comparison()
    c["unique_id"] = "destination:china"
    assert _accuracy_tables(c, {}) == ""
