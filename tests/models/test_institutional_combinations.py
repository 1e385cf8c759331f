"""The combinations as candidates of the institutional comparison, and the accuracy table of issue 9.

The toy models and data are those of ``test_institutional.py`` (naive and seasonal naive on the
hand-made ``total``): with data through October of Y-1,
    naive Y = 12 x Oct(Y-1), seasonal naive Y = Nov(Y-2) + Dec(Y-2) + Jan..Oct(Y-1).
Year 2013's monthly MASE (window Nov 2012 .. Dec 2013): naive 50/14, seasonal naive 140/14.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.applications.institutional import ACCURACY_COLUMNS, accuracy_table, compare_with_institutions
from models.selection.champion import ChampionRule
from tests.models.test_institutional import (
    ACTUAL,
    BN,
    NAIVE,
    SEASONAL,
    SETTINGS,
    _months,
    _year,
    semis_frame,
    total_frame,
    toy_actuals,
    toy_factory,
    toy_projections,
)

COMBOS = ("combo_mean", "combo_trimmed", "combo_inv_mase")


def frame16() -> pd.DataFrame:
    """``total`` with 2016 observed too (70 bn a month), so that 2016 is a compared year."""
    return pd.concat([total_frame(), _months("2016-01-01", _year(70), "total")], ignore_index=True)


def _compare(frame: pd.DataFrame, **kwargs):
    return compare_with_institutions(
        frame, toy_projections(), toy_actuals(), SETTINGS, info_month=10, first_year=2013, factory=toy_factory, **kwargs
    )


@pytest.fixture(scope="module")
def result():
    return _compare(pd.concat([frame16(), semis_frame()], ignore_index=True))


def _model(result, year: int, model: str) -> pd.Series:
    c = result.comparison
    rows = c[
        (c["unique_id"] == "total") & (c["target_year"] == year) & (c["model"] == model) & (c["institution"] == "KITA")
    ]
    assert len(rows) == 1, f"{len(rows)} rows for {year} {model}"
    return rows.iloc[0]


def test_combinations_are_candidates_with_weights_from_earlier_years_only(result):
    # 2013, 2014: no year fully observed by Oct 2012 / Oct 2013 -> equal weights = the mean
    for year in (2013, 2014):
        mean = (NAIVE[year] + SEASONAL[year]) / 2
        assert _model(result, year, "combo_mean")["model_usd_bn"] == pytest.approx(mean)
        assert _model(result, year, "combo_trimmed")["model_usd_bn"] == pytest.approx(mean)  # 2 members: nothing cut
        assert _model(result, year, "combo_inv_mase")["model_usd_bn"] == pytest.approx(mean)
    # 2015 (cutoff Oct 2014): only 2013 is fully observed; weights 1/(50/14) : 1/(140/14) -> 140/190 : 50/190
    w_naive = 140 / 190
    expected = w_naive * NAIVE[2015] + (1 - w_naive) * SEASONAL[2015]
    assert _model(result, 2015, "combo_inv_mase")["model_usd_bn"] == pytest.approx(expected)
    # 80% bounds combined quantile by quantile: naive x [0.84, 1.16], seasonal naive x [0.96, 1.04]
    lo = w_naive * NAIVE[2015] * 0.84 + (1 - w_naive) * SEASONAL[2015] * 0.96
    assert _model(result, 2015, "combo_inv_mase")["model_lo_80"] == pytest.approx(lo)
    assert _model(result, 2015, "combo_inv_mase")["model_ape"] == pytest.approx(
        abs(expected - ACTUAL[2015]) / ACTUAL[2015] * 100
    )
    # the combinations are in the summary beside the single models
    s = result.summary[(result.summary["unique_id"] == "total") & (result.summary["institution"] == "KITA")]
    assert list(s["model"]) == ["champion", "seasonal_naive", "naive", *COMBOS]


def test_champion_chooses_among_singles_and_combinations(result):
    champs = result.champions[result.champions["unique_id"] == "total"].set_index("target_year")
    # 2015: on 2013 only. combo_mean forecasts 55 a month (60 in Oct 2013): errors 5, 5, 9 x 5, 30, 5, 5 -> 95/14,
    # worse than naive's 50/14, so naive is the best candidate; on one window (the default rule's
    # margin: no spread) it does not replace the default
    assert _model(result, 2015, "champion")["champion_model"] == "seasonal_naive"
    assert champs.loc[2015, "champion_model"] == "seasonal_naive"
    assert champs.loc[2015, "champion_reason"].startswith(
        f"mean MASE {140 / 14:.3f} against naive's {50 / 14:.3f} over 1 window"
    )
    no_margin = _compare(
        pd.concat([frame16(), semis_frame()], ignore_index=True), champion_rule=ChampionRule(noise_se=0)
    )
    champs = no_margin.champions[no_margin.champions["unique_id"] == "total"].set_index("target_year")
    assert champs.loc[2015, "champion_model"] == "naive"
    assert champs.loc[2015, "champion_reason"] == f"lowest mean MASE {50 / 14:.3f} over 1 window before 2014-10"
    assert _model(no_margin, 2015, "champion")["champion_model"] == "naive"


def test_a_later_years_actuals_do_not_move_an_earlier_years_weights_or_champion(result):
    """Nov-Dec 2014 are after the 2015 cutoff (Oct 2014) but inside the 2014 window: if the 2014
    window entered 2015's weights or champion, wrecking those two months would move them."""
    wrecked = frame16()
    late = wrecked["ds"].isin(pd.to_datetime(["2014-11-01", "2014-12-01"]))
    wrecked.loc[late, "y"] = 200 * BN
    after = _compare(pd.concat([wrecked, semis_frame()], ignore_index=True))
    for year in (2013, 2014, 2015):
        for model in (*COMBOS, "champion"):
            assert _model(after, year, model)["model_usd_bn"] == _model(result, year, model)["model_usd_bn"], (
                year,
                model,
            )
        assert (
            after.champions.set_index(["unique_id", "target_year"]).loc[("total", year), "champion_model"]
            == result.champions.set_index(["unique_id", "target_year"]).loc[("total", year), "champion_model"]
        )
    # the 2016 weights (cutoff Oct 2015) do see the 2014 window: the wreck moves them, so the test can fail
    assert _model(after, 2016, "combo_inv_mase")["model_usd_bn"] != pytest.approx(
        _model(result, 2016, "combo_inv_mase")["model_usd_bn"]
    )


def test_combinations_off_gives_the_singles_only():
    out = _compare(pd.concat([total_frame(), semis_frame()], ignore_index=True), combinations=False)
    assert set(out.comparison["model"]) == {"champion", "seasonal_naive", "naive"}


# --------------------------------------------------------------------------- the accuracy table
def _comparison_row(year, institution, inst_ape, inst_err, model, model_ape, model_err, in_80, uid="total"):
    return {
        "target_year": year,
        "unique_id": uid,
        "institution": institution,
        "kind": "pre-year outlook",
        "model": model,
        "model_ape": model_ape,
        "model_error_pct": model_err,
        "model_in_80": in_80,
        "institution_ape": inst_ape,
        "institution_error_pct": inst_err,
        "in_summary": True,
        "model_data_through": f"{year - 1}-10",
    }


def hand_comparison() -> pd.DataFrame:
    """KITA 2013-2015 (APE 4, 6, 2; errors +4, -6, +2), KIET 2013-2014 (APE 3, 5; errors -3, +5);
    ets (APE 2, 4, 9; errors -2, +4, +9; in the 80% range in 2013 and 2015), the champion (APE 1, 2, 3)."""
    kita = {2013: (4.0, 4.0), 2014: (6.0, -6.0), 2015: (2.0, 2.0)}
    kiet = {2013: (3.0, -3.0), 2014: (5.0, 5.0)}
    ets = {2013: (2.0, -2.0, True), 2014: (4.0, 4.0, False), 2015: (9.0, 9.0, True)}
    champ = {2013: (1.0, 1.0, True), 2014: (2.0, -2.0, True), 2015: (3.0, 3.0, False)}
    rows = []
    for inst, figures in (("KITA", kita), ("KIET", kiet)):
        for year, (iape, ierr) in figures.items():
            for model, table in (("ets", ets), ("champion", champ)):
                rows.append(_comparison_row(year, inst, iape, ierr, model, *table[year]))
    rows.append({**_comparison_row(2015, "MOTIE", 1.0, 1.0, "ets", 9.0, 9.0, True)})  # not in the table
    rows.append({**_comparison_row(2014, "KITA", 50.0, 50.0, "ets", 4.0, 4.0, False), "in_summary": False})  # a reprint
    rows.append({**_comparison_row(2012, "KITA", 50.0, 50.0, "ets", 4.0, 4.0, False)})  # before first_year
    return pd.DataFrame(rows)


def test_accuracy_table_numbers_by_hand():
    t = accuracy_table(hand_comparison(), ("total",), first_year=2013, last_year=2025).set_index("forecast")
    assert list(t.columns) == [c for c in ACCURACY_COLUMNS if c != "forecast"]
    assert list(t.index) == ["KITA", "KIET", "ets", "mint", "champion"]
    # KITA: MAPE (4+6+2)/3 = 4, bias 0; KIET: 4, bias 1 -> tie on MAPE: the first listed (KITA) is the best
    assert t.loc["KITA", "mape"] == pytest.approx(4.0)
    assert t.loc["KITA", "bias_pct"] == pytest.approx(0.0)
    assert t.loc["KIET", "mape"] == pytest.approx(4.0)
    assert t.loc["KIET", "bias_pct"] == pytest.approx(1.0)
    assert (t["best_institution"] == "KITA").all()
    # KIET on KITA's years: only 2013, 2014 -> (3+5)/2 against KITA's (4+6)/2 on the same years
    assert t.loc["KIET", "ratio_to_best_institution"] == pytest.approx(0.8)
    assert np.isnan(t.loc["KITA", "coverage_80"])
    # ets over 2013-2015: MAPE 5, bias (-2+4+9)/3, coverage 2/3, ratio 5/4
    assert t.loc["ets", "mape"] == pytest.approx(5.0)
    assert t.loc["ets", "bias_pct"] == pytest.approx(11 / 3)
    assert t.loc["ets", "coverage_80"] == pytest.approx(2 / 3)
    assert t.loc["ets", "ratio_to_best_institution"] == pytest.approx(5 / 4)
    assert t.loc["ets", "n_years"] == 3 and t.loc["ets", "years"] == "2013-2015"
    assert t.loc["ets", "information"] == "own monthly history through October of Y-1"
    # champion: MAPE 2, bias 2/3, coverage 2/3, ratio 2/4
    assert t.loc["champion", "mape"] == pytest.approx(2.0)
    assert t.loc["champion", "bias_pct"] == pytest.approx(2 / 3)
    assert t.loc["champion", "coverage_80"] == pytest.approx(2 / 3)
    assert t.loc["champion", "ratio_to_best_institution"] == pytest.approx(0.5)
    # no reconciled candidate in this comparison: a row says why (the total: MinT never changes it)
    assert t.loc["mint", "information"] == (
        "not computed here; equal to the champion by construction: MinT keeps "
        "the base forecast of the total (the immutable parent, models/selection/reconcile.py)"
    )
    assert t.loc["mint", "n_years"] == 0 and np.isnan(t.loc["mint", "mape"])
    assert t.loc["KITA", "information"].startswith("everything they knew in November of Y-1")


def test_accuracy_table_ratio_on_the_best_institutions_own_years():
    c = hand_comparison()
    c.loc[(c["institution"] == "KIET") & (c["target_year"] == 2014), "institution_ape"] = 1.0  # KIET: (3+1)/2 = 2
    t = accuracy_table(c, ("total",)).set_index("forecast")
    assert (t["best_institution"] == "KIET").all()
    # ets on KIET's years 2013-2014: (2+4)/2 = 3 -> 3 / 2; KITA on them: (4+6)/2 = 5 -> 5/2
    assert t.loc["ets", "ratio_to_best_institution"] == pytest.approx(1.5)
    assert t.loc["KITA", "ratio_to_best_institution"] == pytest.approx(2.5)
    assert t.loc["ets", "mape"] == pytest.approx(5.0)  # its MAPE stays over every year of the table


def test_accuracy_table_ratio_of_a_later_starter_is_on_the_years_it_has():
    # a model with 2014-2015 only: on KITA's years it has, (3 + 1) / 2 = 2 against KITA's (6 + 2) / 2 = 4
    c = pd.concat(
        [
            hand_comparison(),
            pd.DataFrame(
                [
                    _comparison_row(2014, "KITA", 6.0, -6.0, "cycle", 3.0, 3.0, True),
                    _comparison_row(2015, "KITA", 2.0, 2.0, "cycle", 1.0, 1.0, True),
                ]
            ),
        ]
    )
    t = accuracy_table(c, ("total",), first_year=2013, last_year=2025).set_index("forecast")
    assert t.loc["cycle", "mape"] == pytest.approx(2.0) and t.loc["cycle", "n_years"] == 2
    assert t.loc["cycle", "ratio_to_best_institution"] == pytest.approx(0.5)
    assert t.loc["ets", "ratio_to_best_institution"] == pytest.approx(5 / 4)  # every year: unchanged


def test_accuracy_table_says_why_a_series_other_than_the_total_has_no_reconciled_row():
    c = hand_comparison().assign(unique_id="item:semiconductors_ministry")
    t = accuracy_table(c, ("item:semiconductors_ministry",)).set_index("forecast")
    assert t.loc["mint", "information"] == (
        "not available: the comparison reconciles nothing (the hierarchy's items and destinations start in "
        "2021-2022, data/series.csv; the ministry-basis semiconductors is not a node of the hierarchy)"
    )
    assert t.loc["mint", "n_years"] == 0


def test_outlook_of_a_combination_champion_without_the_callers_annual_forecast():
    """Data through June 2015, outlook 2016 fitted here (no ``latest_annual``): naive 12 x 66 = 792,
    seasonal naive Jul-Dec 60 + Jan-Jun 66 -> 756; a combo_mean champion shows (792 + 756) / 2."""
    frame = total_frame()
    frame = frame[frame["ds"] <= pd.Timestamp("2015-06-01")]
    out = compare_with_institutions(
        frame,
        toy_projections(),
        toy_actuals(),
        SETTINGS,
        info_month=10,
        first_year=2013,
        last_year=2015,
        target_year=2016,
        factory=toy_factory,
        latest_champions={"total": "combo_mean"},
    )
    kita = out.outlook[out.outlook["institution"] == "KITA"].iloc[0]
    assert kita["champion_model"] == "combo_mean"
    assert kita["model_usd_bn"] == pytest.approx((792 + 756) / 2)


def test_a_fitted_blend_is_listed_and_labelled_as_a_combination():
    c = pd.concat(
        [
            hand_comparison(),
            pd.DataFrame(
                [
                    _comparison_row(2014, "KITA", 6.0, -6.0, "cycle_blend", 3.0, 3.0, True),
                    _comparison_row(2014, "KITA", 6.0, -6.0, "ensemble", 4.0, 4.0, True),
                ]
            ),
        ]
    )
    t = accuracy_table(c, ("total",), first_year=2013, last_year=2025).set_index("forecast")
    assert list(t.index) == ["KITA", "KIET", "ets", "cycle_blend", "ensemble", "mint", "champion"]
    assert t.loc["ets", "kind"] == "single"
    assert t.loc["cycle_blend", "kind"] == "combination" and t.loc["ensemble", "kind"] == "combination"
    assert t.loc["cycle_blend", "information"] == (
        "own monthly history through October of Y-1 + a blend: the mean of ETS, Theta and the cycle model (its "
        "dynamics learned on WSTS world billings public by then)"
    )
    assert t.loc["cycle_blend", "mape"] == pytest.approx(3.0) and t.loc[
        "cycle_blend", "ratio_to_best_institution"
    ] == pytest.approx(0.5)
