"""The run plan (flows/plan.py): built once, its working days cut per stage equal to the table
computed for that stage, its cache keys; and the one fit row (models/core/fits.py)."""

from __future__ import annotations

import pandas as pd
import pytest

from flows.jobs import uses_working_days, working_day_exog
from flows.plan import build_plan
from models.core.fits import FIT_COLUMNS, FitRow, fits_frame
from tests.flows.conftest import synthetic_frame, write_config


@pytest.fixture()
def plan_and_frame(tmp_path):
    from flows.settings import load_settings

    frame = synthetic_frame()
    config = write_config(tmp_path, tmp_path / "unused.csv", **{"models.params": {"ets": {"working_days": True}}})
    settings = load_settings(config)  # a model configured with the working days: the plan computes them
    assert uses_working_days(settings)
    plan = build_plan(settings, frame, until=pd.Timestamp("2027-12-01"), cache_key={"data_hash": "d", "seed": 0})
    return plan, frame, settings


def test_each_stage_cut_equals_the_working_days_computed_for_it(plan_and_frame) -> None:
    plan, frame, settings = plan_and_frame
    for last in ("2025-06-01", "2026-12-01", "2027-12-01"):
        cut, own = plan.exog_through(pd.Timestamp(last)), working_day_exog(frame, pd.Timestamp(last), settings)
        pd.testing.assert_frame_equal(cut, own)
    assert plan.exog_through(frame["ds"].min() - pd.DateOffset(months=1)) is None
    assert plan.extras is None and plan.hierarchy is None


def test_the_plan_keys_name_the_sections_and_the_content(plan_and_frame) -> None:
    plan, _, settings = plan_and_frame
    key = plan.key("backtest", tables="t")
    assert key == {
        "data_hash": "d",
        "seed": 0,
        "backtest": settings.section_dict("backtest")["backtest"],
        "tables": "t",
    }
    other = build_plan(settings, synthetic_frame(), until=pd.Timestamp("2027-12-01"), cache_key={"data_hash": "e"})
    assert len(plan.content_hash) == 64 and plan.content_hash != other.content_hash


def test_fit_rows_serialise_to_the_model_fits_columns() -> None:
    cutoff = pd.Timestamp("2024-06-01")
    rows = [FitRow("total", "ets", "naive", "fallback", reason="r", error="e", n_obs=36, cutoff=cutoff)]
    assert list(fits_frame(rows).columns) == list(FIT_COLUMNS)
    assert fits_frame(rows).to_csv(index=False).splitlines() == [
        "unique_id,model,model_used,status,reason,error,n_obs,description",
        "total,ets,naive,fallback,r,e,36,{}",
    ]
    backtest = fits_frame(rows, with_cutoff=True)
    assert list(backtest.columns) == ["unique_id", "cutoff", *FIT_COLUMNS[1:]]
    assert backtest.loc[0, "cutoff"] == cutoff
    assert FitRow("a", "m").record() == dict(
        unique_id="a", model="m", model_used=None, status="failed", reason="", error="", n_obs=0, description="{}"
    )
