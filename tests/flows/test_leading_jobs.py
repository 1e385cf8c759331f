"""Leading models in the one backtest (config ``models.leading``; models/families/leading_extras.py LeadingExtras):
at every cutoff the model sees only the indicator values public on that cutoff's information
date (the 16th of the month after it), through the whole backtest path the pipeline runs.

Synthetic ``total`` 2016-01 .. 2021-12 and its 10-day flash (``customs_10d:total``, a third of
the month with noise, public on the 11th of its month, as the customs service publishes it).
Cutoffs 2020-12 and 2021-06 (horizon 6, 2 windows, step 6): information dates 2021-01-16 and
2021-07-16, so the flash of the month after each cutoff is known, and nothing later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from flows import jobs
from flows.settings import load_settings

MONTHS = pd.date_range("2016-01-01", "2021-12-01", freq="MS")
FORECAST_COLUMNS = ["unique_id", "cutoff", "ds", "model", "forecast", "lo_80", "hi_80"]


def _frame_and_flash() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(11)
    t = np.arange(len(MONTHS))
    y = (
        40e9
        * (1 + 0.004 * t)
        * (1 + 0.08 * np.sin(2 * np.pi * MONTHS.month / 12))
        * np.exp(rng.normal(0, 0.04, len(t)))
    )
    frame = pd.DataFrame({"unique_id": "total", "ds": MONTHS, "y": y})
    flash = pd.DataFrame(
        {
            "indicator": "customs_10d:total",
            "ds": MONTHS,
            "value": y / 3 * np.exp(rng.normal(0, 0.01, len(t))),
            "available_from": MONTHS + pd.Timedelta(days=10),
        }
    )
    return frame, flash


def _settings(tmp_path: Path):
    config = {
        "models": {
            "enabled": ["seasonal_naive", "naive"],
            "leading": {"total": ["arimax_flash"]},
            "params": {"arimax_flash": {"n_draws": 200}},
            "n_paths": 50,
        },
        "backtest": {"combinations": False},
        "runtime": {"n_jobs": 1, "seed": 0},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(path)


def _run(settings, frame, flash, **kwargs):
    out = jobs.backtest_frame(frame, settings, horizon=6, windows=2, step=6, indicators=flash, **kwargs)
    return out.forecasts[out.forecasts["model"] != "champion"][FORECAST_COLUMNS].reset_index(drop=True), out


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    settings = _settings(tmp_path_factory.mktemp("leading"))
    frame, flash = _frame_and_flash()
    base, out = _run(settings, frame, flash)
    return settings, frame, flash, base, out


@pytest.mark.slow
def test_the_leading_model_runs_for_its_series_in_every_window(case):
    _, _, _, base, out = case
    rows = out.fits[out.fits["model"] == "arimax_flash"]
    assert rows["status"].tolist() == ["ok", "ok"]
    assert rows["cutoff"].dt.strftime("%Y-%m").tolist() == ["2020-12", "2021-06"]
    assert set(out.metrics["model"]) >= {"arimax_flash", "seasonal_naive", "naive"}
    # the flash of the month after the cutoff is known: the first month is conditioned on it
    # (its 80% range is the regression's alone, narrower than where the flash is forecast)
    lead = base[(base["model"] == "arimax_flash") & (base["cutoff"] == pd.Timestamp("2021-06-01"))]
    width = (lead["hi_80"] - lead["lo_80"]).to_numpy()
    assert width[0] < width[1]


@pytest.mark.slow
def test_leakage_values_public_after_the_last_information_date_change_nothing(case):
    settings, frame, flash, base, _ = case
    late = flash.copy()
    after = late["available_from"] > pd.Timestamp("2021-07-16")
    assert late.loc[after, "ds"].min() == pd.Timestamp("2021-08-01")
    late.loc[after, "value"] *= 3.0
    pd.testing.assert_frame_equal(_run(settings, frame, late)[0], base)


@pytest.mark.slow
def test_a_value_public_between_the_two_information_dates_moves_only_the_second_window(case):
    settings, frame, flash, base, _ = case
    changed = flash.copy()
    changed.loc[changed["ds"] == pd.Timestamp("2021-07-01"), "value"] *= 3.0  # public 2021-07-11
    moved = _run(settings, frame, changed)[0]
    first = base["cutoff"] == pd.Timestamp("2020-12-01")
    pd.testing.assert_frame_equal(moved[first], base[first])
    second_lead = ~first & (base["model"] == "arimax_flash")
    assert not np.allclose(moved.loc[second_lead, "forecast"], base.loc[second_lead, "forecast"], rtol=1e-3)
    others = ~first & (base["model"] != "arimax_flash")
    pd.testing.assert_frame_equal(moved[others], base[others])


@pytest.mark.slow
def test_shifting_publication_a_month_later_equals_dropping_the_month_no_longer_public(case):
    """Every value public one month later: at cutoff 2021-06 the flash of 2021-07 is no longer
    known. The backtest then equals the one where that row (and every later one) is absent: the
    indicator changes the forecast only through the data public at the cutoff."""
    settings, frame, flash, _, _ = case
    later = flash.assign(available_from=flash["available_from"] + pd.DateOffset(months=1))
    cut = [pd.Timestamp("2021-06-01")]
    shifted = _run(settings, frame, later, cutoffs=cut)[0]
    dropped = _run(settings, frame, flash[flash["ds"] <= pd.Timestamp("2021-06-01")], cutoffs=cut)[0]
    pd.testing.assert_frame_equal(shifted, dropped)
    kept = _run(settings, frame, flash, cutoffs=cut)[0]
    lead = kept["model"] == "arimax_flash"
    assert not np.allclose(shifted.loc[lead, "forecast"], kept.loc[lead, "forecast"], rtol=1e-3)


def test_a_cutoff_the_indicator_cannot_serve_skips_the_model_with_the_reason(tmp_path):
    settings = _settings(tmp_path)
    frame, flash = _frame_and_flash()
    extras = jobs.leading_extras(settings, flash[flash["ds"] >= pd.Timestamp("2021-01-01")])
    out = extras("total", pd.Timestamp("2020-12-01"), pd.date_range("2016-01-01", "2021-06-01", freq="MS"))
    assert out.models == () and out.exog is None
    assert out.skipped == (
        (
            "arimax_flash",
            "leading indicator 'customs_10d:total' (lag 0): month 2020-12, needed at "
            "cutoff 2020-12, is not known on the information date 2021-01-16 (no row in "
            "the table)",
        ),
    )
    assert extras("destination:china", pd.Timestamp("2020-12-01"), MONTHS).models == ()  # not a leading series


def test_a_cutoff_with_too_few_known_months_of_the_indicator_skips_the_model(tmp_path):
    # the flash from 2019-01 only: at cutoff 2020-12, 24 months are known (ARIMAX needs 24); at 2020-11, 23
    settings = _settings(tmp_path)
    frame, flash = _frame_and_flash()
    extras = jobs.leading_extras(settings, flash[flash["ds"] >= pd.Timestamp("2019-01-01")])
    months = pd.date_range("2016-01-01", "2021-06-01", freq="MS")
    assert [m.name for m in extras("total", pd.Timestamp("2020-12-01"), months).models] == ["arimax_flash"]
    short = extras("total", pd.Timestamp("2020-11-01"), months)
    assert short.models == () and short.skipped == (
        (
            "arimax_flash",
            "23 months of leading indicator 'customs_10d:total' known by cutoff 2020-11; arimax_flash needs 24",
        ),
    )


def test_leading_setup_errors_name_the_series_and_the_model(tmp_path):
    from exportcast.errors import ModelSetupError

    settings = _settings(tmp_path)
    frame, flash = _frame_and_flash()
    with pytest.raises(ModelSetupError, match=r"^models.leading needs the indicator table"):
        jobs.leading_extras(settings, None)
    wsts = settings.updated("models", leading={"total": ["arimax_wsts"]})
    with pytest.raises(
        ModelSetupError,
        match=r"^models.leading\['total'\]: model 'arimax_wsts' reads indicator "
        r"'wsts_month:billings_worldwide', which the indicator table does not have$",
    ):
        jobs.leading_extras(wsts, flash)
    bare = settings.updated("models", leading={"total": ["arimax"]})
    with pytest.raises(ModelSetupError, match=r"^models.leading\['total'\]: model 'arimax' cannot be created"):
        jobs.leading_extras(bare, flash)


def test_a_configured_series_the_data_does_not_have_is_named(tmp_path):
    from exportcast.errors import DataWarning

    settings = _settings(tmp_path).updated("models", leading={"total": ["arimax_flash"], "totla": ["arimax_flash"]})
    frame, flash = _frame_and_flash()
    with pytest.warns(
        DataWarning,
        match=r"^models.leading names series the data does not have: totla; their leading "
        r"models do not run$",
    ):
        jobs.leading_for(settings, frame)
