"""The institutional comparison says what was fitted (issue 19 item 9): a model that fell back is
labelled with what ran, a year where no model fitted beyond the fallback is flagged, and neither
counts as a model's skill in the summary, the accuracy table or the run summary."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from models.applications.institutional import accuracy_table, compare_with_institutions, counted_as_skill, what_ran

REPO = Path(__file__).resolve().parents[2]


def _fit(uid, cutoff, model, used, status, description=""):
    return {
        "unique_id": uid,
        "cutoff": pd.Timestamp(cutoff),
        "model": model,
        "model_used": used,
        "status": status,
        "reason": "",
        "error": "",
        "n_obs": 10,
        "description": description,
    }


def test_what_ran_resolves_combinations_and_the_champion():
    members = json.dumps({"members": ["seasonal_naive", "ets", "theta"]})
    fits = pd.DataFrame(
        [
            # 2022-10: 10 months, everything fell back to naive
            _fit("a", "2022-10-01", "seasonal_naive", "naive", "fallback"),
            _fit("a", "2022-10-01", "ets", "naive", "fallback"),
            _fit("a", "2022-10-01", "theta", "naive", "fallback"),
            _fit("a", "2022-10-01", "combo_mean", "combo_mean", "ok", members),
            _fit("a", "2022-10-01", "champion", "combo_mean", "ok"),
            # 2023-10: seasonal naive ran as asked, ets and theta fell back to it
            _fit("a", "2023-10-01", "seasonal_naive", "seasonal_naive", "ok"),
            _fit("a", "2023-10-01", "ets", "seasonal_naive", "fallback"),
            _fit("a", "2023-10-01", "theta", "seasonal_naive", "fallback"),
            _fit("a", "2023-10-01", "combo_mean", "combo_mean", "ok", members),
            _fit("a", "2023-10-01", "champion", "ets", "ok"),
            # 2024-10: theta fitted; ets failed outright (no forecast)
            _fit("a", "2024-10-01", "seasonal_naive", "seasonal_naive", "ok"),
            _fit("a", "2024-10-01", "ets", None, "failed"),
            _fit("a", "2024-10-01", "theta", "theta", "ok"),
            _fit("a", "2024-10-01", "combo_mean", "combo_mean", "ok", members),
            _fit("a", "2024-10-01", "champion", "combo_mean", "ok"),
        ]
    )
    ran, only = what_ran(fits, {"seasonal_naive", "naive"})
    c22, c23, c24 = pd.Timestamp("2022-10-01"), pd.Timestamp("2023-10-01"), pd.Timestamp("2024-10-01")
    assert ran[("a", c22, "ets")] == ("naive", True)
    assert ran[("a", c22, "combo_mean")] == ("naive", True)  # every member ran naive: so did the combination
    assert ran[("a", c22, "champion")] == ("naive", True)
    assert ran[("a", c23, "seasonal_naive")] == ("seasonal_naive", False)
    assert ran[("a", c23, "ets")] == ("seasonal_naive", True)
    assert ran[("a", c23, "combo_mean")] == ("seasonal_naive", True)  # no member beyond the fallback
    assert ran[("a", c23, "champion")] == ("seasonal_naive", True)
    assert ran[("a", c24, "combo_mean")] == ("combo_mean", False)
    assert ran[("a", c24, "champion")] == ("combo_mean", False)
    assert ("a", c24, "ets") not in ran  # a failed model has no figure
    assert only == {("a", c22): True, ("a", c23): True, ("a", c24): False}


def test_fallback_models_that_ran_as_asked_flag_nothing():
    members = json.dumps({"members": ["seasonal_naive", "naive"]})
    fits = pd.DataFrame(
        [
            _fit("a", "2014-10-01", "seasonal_naive", "seasonal_naive", "ok"),
            _fit("a", "2014-10-01", "naive", "naive", "ok"),
            _fit("a", "2014-10-01", "combo_mean", "combo_mean", "ok", members),
            _fit("a", "2014-10-01", "champion", "combo_mean", "ok"),
        ]
    )
    ran, only = what_ran(fits, {"seasonal_naive", "naive"})
    cutoff = pd.Timestamp("2014-10-01")
    assert ran[("a", cutoff, "combo_mean")] == ("combo_mean", False)
    assert ran[("a", cutoff, "champion")] == ("combo_mean", False)
    assert only == {("a", cutoff): False}


def test_counted_as_skill_drops_fallbacks_and_the_champion_of_a_fallback_only_year():
    rows = pd.DataFrame(
        {
            "model": ["champion", "seasonal_naive", "ets", "champion", "ets"],
            "model_fell_back": [False, False, True, False, "False"],
            "fallback_only": [True, True, True, False, "false"],
        }
    )
    assert counted_as_skill(rows).tolist() == [False, True, False, True, True]
    assert counted_as_skill(rows[["model"]]).all()  # a comparison without the columns: everything counts


@pytest.fixture(scope="module")
def automobiles():
    """item:automobiles (2022-01..) against KIET's 2023 and 2024 outlooks, seasonal naive and ETS."""
    from features.readers import read_embedded
    from models.core.engine import EngineSettings, ModelSpec

    frame = read_embedded(REPO / "data")
    frame = frame[frame["unique_id"] == "item:automobiles"]
    projections = pd.read_csv(REPO / "data" / "institutional_projections.csv")
    actuals = pd.read_csv(REPO / "data" / "annual_actuals.csv")
    settings = EngineSettings(
        models=(ModelSpec("seasonal_naive", {}), ModelSpec("ets", {"damped_trend": True})), n_paths=200, n_jobs=1
    )
    return compare_with_institutions(
        frame,
        projections,
        actuals,
        settings,
        first_year=2013,
        last_year=2025,
        target_year=2026,
        combinations=False,
        selection_first_year=None,
    )


@pytest.mark.slow  # fits on the real item (seconds)
def test_the_items_2023_and_2024_are_flagged_and_labelled_with_what_ran(automobiles):
    c = automobiles.comparison
    c = c[(c["kind"] == "pre-year outlook") & (c["institution"] == "KIET")].set_index(["target_year", "model"])
    assert sorted(set(c.index.get_level_values(0))) == [2023, 2024]
    # 2023: data through 2022-10 = 10 months: even seasonal naive (12 months) fell back to naive
    assert c.loc[(2023, "seasonal_naive"), "model_used"] == "naive"
    assert c.loc[(2023, "ets"), "model_used"] == "naive"
    assert c.loc[(2023, "champion"), "model_used"] == "naive"
    # 2024: 22 months: ETS (24) fell back to seasonal naive, which ran as asked
    assert c.loc[(2024, "ets"), "model_used"] == "seasonal_naive"
    assert bool(c.loc[(2024, "ets"), "model_fell_back"]) and not bool(
        c.loc[(2024, "seasonal_naive"), "model_fell_back"]
    )
    assert c["fallback_only"].astype(bool).all()  # no model fitted beyond the fallback in either year
    # the figures are the same (what ran), only the labels differed before
    assert c.loc[(2024, "ets"), "model_usd_bn"] == c.loc[(2024, "seasonal_naive"), "model_usd_bn"]
    assert c.loc[(2024, "seasonal_naive"), "model_ape"] == pytest.approx(2.876613, abs=1e-5)
    assert c.loc[(2024, "seasonal_naive"), "institution_ape"] == pytest.approx(2.117720, abs=1e-5)


@pytest.mark.slow  # fits on the real item (seconds)
def test_the_summary_counts_only_what_ran_as_asked(automobiles):
    s = automobiles.summary
    s = s[(s["unique_id"] == "item:automobiles") & (s["institution"] == "KIET") & (s["section"] == "pre-year outlook")]
    # ETS fell back in both years and the champion had nothing to choose from: no row of their skill
    assert s["model"].tolist() == ["seasonal_naive"]
    row = s.iloc[0]
    assert (row["n_years"], row["years"], row["years_fell_back"]) == (1, "2024", "2023")
    assert row["model_mape"] == pytest.approx(2.876613, abs=1e-5)
    assert row["institution_mape"] == pytest.approx(2.117720, abs=1e-5)  # over the same (counted) year
    assert "2023 not counted: the model fell back" in row["note"]


@pytest.mark.slow  # fits on the real item (seconds)
def test_the_accuracy_table_leaves_out_fallback_figures(automobiles):
    table = accuracy_table(automobiles.comparison, ("item:automobiles",), institutions=("KIET",))
    by = table.set_index("forecast")
    assert by.loc["KIET", "n_years"] == 2
    assert by.loc["seasonal_naive", "years"] == "2024" and by.loc["seasonal_naive", "n_years"] == 1
    assert "ets" not in by.index and "champion" not in by.index  # no year of their own skill


@pytest.mark.slow  # fits on the real item (seconds)
def test_the_run_summary_names_the_fallback_years(automobiles):
    from flows.pipeline import institutional_text

    text = institutional_text(automobiles.summary, automobiles.outlook, 2026, automobiles.comparison)
    lines = text.splitlines()
    assert (
        "  no model fitted beyond the fallback (seasonal naive / naive: too little history; no model's skill): "
        "2023-2024: item:automobiles"
    ) in lines
    assert not any("champion" in line and "item:automobiles" in line for line in lines)
