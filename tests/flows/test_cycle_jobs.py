"""The cycle model as a leading model (config ``models.leading``; models/families/leading_extras.py LeadingExtras,
``reads='reference'``): at each cutoff its dynamics are estimated on exactly the reference values
public on that cutoff's information date, and it is skipped, with the reason, where the reference
or the series' own history is too short."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from features.indicators import available_from
from flows import jobs
from flows.settings import load_settings
from models.families.cycle import GrowthAR

WSTS = "wsts_month:billings_worldwide"
OWN = pd.date_range("2016-01-01", "2021-12-01", freq="MS")


def _wsts(start: str = "1995-01-01", end: str = "2021-12-01") -> pd.DataFrame:
    months = pd.date_range(start, end, freq="MS")
    rng = np.random.default_rng(5)
    t = np.arange(len(months))
    values = 10e9 * np.exp(0.005 * t + 0.25 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.03, len(t)))
    return pd.DataFrame(
        {
            "indicator": WSTS,
            "ds": months,
            "value": values,
            "unit": "USD",
            "available_from": [pd.Timestamp(available_from("month", f"{m:%Y-%m}", release="wsts")) for m in months],
            "source": "test",
        }
    )


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(6)
    t = np.arange(len(OWN))
    y = 8e9 * np.exp(0.006 * t + 0.35 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 0.05, len(t)))
    return pd.DataFrame({"unique_id": "item:semis", "ds": OWN, "y": y})


def _settings(tmp_path: Path, leading: dict | None = None):
    config = {
        "models": {
            "enabled": ["seasonal_naive", "naive"],
            "leading": leading or {"item:semis": ["cycle_wsts"]},
            "params": {"cycle_wsts": {"max_lag": 12}, "cycle_blend": {"max_lag": 12}},
            "n_paths": 50,
        },
        "backtest": {"combinations": False},
        "runtime": {"n_jobs": 1, "seed": 0},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(path)


def test_the_dynamics_are_estimated_on_exactly_the_values_public_on_the_information_date(tmp_path):
    wsts = _wsts()
    extras = jobs.leading_extras(_settings(tmp_path), wsts)
    out = extras("item:semis", pd.Timestamp("2020-06-01"), OWN)
    # information date 2020-07-16: WSTS public through 2020-05 (released 2020-07-15), not 2020-06
    public = wsts[wsts["available_from"] <= pd.Timestamp("2020-07-16")]
    assert public["ds"].max() == pd.Timestamp("2020-05-01")
    expected = GrowthAR.estimate(public["value"].to_numpy(), max_lag=12)
    (spec,) = out.models
    assert spec.name == "cycle_wsts" and out.exog is None and out.skipped == ()
    assert spec.params == {"max_lag": 12} | expected.params()
    # a value public after the information date changes nothing; one public before changes the dynamics
    later = wsts.copy()
    later.loc[later["ds"] == pd.Timestamp("2020-06-01"), "value"] *= 3
    assert (
        jobs.leading_extras(_settings(tmp_path), later)("item:semis", pd.Timestamp("2020-06-01"), OWN).models
        == out.models
    )
    earlier = wsts.copy()
    earlier.loc[earlier["ds"] == pd.Timestamp("2020-05-01"), "value"] *= 3
    assert (
        jobs.leading_extras(_settings(tmp_path), earlier)("item:semis", pd.Timestamp("2020-06-01"), OWN).models
        != out.models
    )


def test_too_short_a_reference_or_own_history_skips_the_model_with_the_reason(tmp_path):
    extras = jobs.leading_extras(_settings(tmp_path), _wsts(start="2014-01-01"))
    short_reference = extras("item:semis", pd.Timestamp("2019-06-01"), OWN)
    assert short_reference.models == ()
    assert short_reference.skipped == (
        (
            "cycle_wsts",
            "reference 'wsts_month:billings_worldwide' as public on 2019-07-16: "
            "growth AR: the reference has 53 months of 12-month growth; needs 60",
        ),
    )
    extras = jobs.leading_extras(_settings(tmp_path), _wsts())
    order = GrowthAR.estimate(_wsts().query("available_from <= '2017-07-16'")["value"].to_numpy(), max_lag=12).order
    short_own = extras("item:semis", pd.Timestamp("2017-06-01"), OWN)
    assert short_own.models == ()
    assert short_own.skipped == (
        (
            "cycle_wsts",
            f"18 months of history by cutoff 2017-06; cycle_wsts with the dynamics of "
            f"order {order} of 'wsts_month:billings_worldwide' needs {24 + order}",
        ),
    )


def test_a_cycle_model_without_a_reference_is_a_setup_error(tmp_path):
    from exportcast.errors import ModelSetupError

    with pytest.raises(
        ModelSetupError,
        match=r"^models.leading\['item:semis'\]: model 'cycle' reads no indicator; set "
        r"models.params.cycle.reference \(the indicator its dynamics are learned on\)$",
    ):
        jobs.leading_extras(_settings(tmp_path, {"item:semis": ["cycle"]}), _wsts())


@pytest.mark.slow
def test_the_backtest_runs_the_cycle_model_where_it_can_and_skips_it_where_it_cannot(tmp_path):
    settings = _settings(tmp_path)
    out = jobs.backtest_frame(_frame(), settings, horizon=6, windows=2, step=12, indicators=_wsts())
    fits = out.fits[out.fits["model"] == "cycle_wsts"].sort_values("cutoff")
    assert fits["status"].tolist() == ["ok", "ok"]
    assert set(out.metrics["model"]) >= {"cycle_wsts", "seasonal_naive"}
    # the backtest's forecast at a cutoff is the model with the dynamics public then, fitted on the history then
    from models.core import registry

    cutoff = pd.Timestamp("2021-06-01")
    months = pd.date_range(OWN[0], cutoff + pd.DateOffset(months=6), freq="MS", name="ds")
    (spec,) = jobs.leading_extras(settings, _wsts())("item:semis", cutoff, months).models
    y = _frame().set_index("ds")["y"]
    expected = registry.create("cycle_wsts", dict(spec.params)).fit(y.loc[:cutoff]).predict(6)["forecast"]
    got = out.forecasts[(out.forecasts["model"] == "cycle_wsts") & (out.forecasts["cutoff"] == cutoff)]
    assert got["forecast"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-12)
    early = jobs.backtest_frame(
        _frame(), settings, horizon=6, windows=1, step=6, indicators=_wsts(), cutoffs=[pd.Timestamp("2017-06-01")]
    )
    skipped = early.fits[early.fits["model"] == "cycle_wsts"]
    assert skipped["status"].tolist() == ["skipped"]
    assert "cycle_wsts" not in set(early.metrics["model"])


def test_another_source_without_an_indicator_path_reads_the_embedded_table_and_says_so(tmp_path):
    from exportcast.errors import DataWarning
    from features.readers import read_indicators

    data_dir = Path(__file__).resolve().parents[2] / "data"
    settings = _settings(tmp_path).updated("data", source="csv", path=tmp_path / "mine.csv")
    with pytest.warns(
        DataWarning,
        match=r"^data.indicators_path is not set: the leading models \(item:semis\) read the "
        r"embedded indicator table .*indicators_monthly.csv, through 2025-12$",
    ):
        table = jobs.leading_indicators(settings, data_dir)
    pd.testing.assert_frame_equal(table, read_indicators(data_dir))
    own = tmp_path / "indicators.csv"
    _wsts().assign(
        ds=lambda f: f["ds"].dt.strftime("%Y-%m-%d"),
        available_from=lambda f: f["available_from"].dt.strftime("%Y-%m-%d"),
    ).to_csv(own, index=False)
    mine = jobs.leading_indicators(settings.updated("data", indicators_path=own), data_dir)
    assert mine["value"].to_numpy() == pytest.approx(_wsts()["value"].to_numpy())
    assert jobs.leading_indicators(settings.updated("models", leading={}), data_dir) is None


def test_leading_for_keeps_the_series_the_data_has_and_names_the_others(tmp_path):
    from exportcast.errors import DataWarning

    settings = _settings(tmp_path, {"item:semis": ["cycle_wsts"], "item:other": ["cycle_wsts"]})
    with pytest.warns(
        DataWarning,
        match=r"^models.leading names series the data does not have: item:other; their "
        r"leading models do not run$",
    ):
        kept = jobs.leading_for(settings, _frame())
    assert kept.models.leading == {"item:semis": ["cycle_wsts"]}
    with pytest.warns(DataWarning):
        assert (
            jobs.leading_extras(jobs.leading_for(settings, _frame().assign(unique_id="total")), None) is None
        )  # nothing to run, no table needed
    assert jobs.leading_for(kept, _frame()) is kept


def test_the_blend_reads_the_same_reference_and_shares_the_cycle_models_estimate(tmp_path):
    wsts = _wsts()
    extras = jobs.leading_extras(_settings(tmp_path, {"item:semis": ["cycle_wsts", "cycle_blend"]}), wsts)
    cycle, blend = extras("item:semis", pd.Timestamp("2020-06-01"), OWN).models
    public = wsts[wsts["available_from"] <= pd.Timestamp("2020-07-16")]
    assert (cycle.name, blend.name) == ("cycle_wsts", "cycle_blend")
    assert (
        blend.params
        == cycle.params
        == {"max_lag": 12} | GrowthAR.estimate(public["value"].to_numpy(), max_lag=12).params()
    )
    assert len(extras._dynamics) == 1  # one estimate per reference, search and information date, not per model
    order = GrowthAR.estimate(wsts.query("available_from <= '2017-07-16'")["value"].to_numpy(), max_lag=12).order
    short_own = extras("item:semis", pd.Timestamp("2017-06-01"), OWN)
    assert short_own.models == ()
    assert short_own.skipped == tuple(
        (
            name,
            f"18 months of history by cutoff 2017-06; {name} with the dynamics of order {order} of "
            f"'wsts_month:billings_worldwide' needs {24 + order}",
        )
        for name in ("cycle_wsts", "cycle_blend")
    )


def test_the_leading_warning_needs_the_series_in_the_sources_universe_or_verbose(tmp_path):
    """Issue 19, item 10: a user CSV that simply lacks the configured series gets no warning; a
    source that can have it (e.g. the embedded data, a data.series selection) does, and --verbose
    (runtime.verbose) names it in every case, once."""
    import warnings

    from exportcast.errors import DataWarning

    settings = _settings(tmp_path, {"item:semis": ["cycle_wsts"], "item:other": ["cycle_wsts"]})
    frame = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        kept = jobs.leading_for(settings, frame, universe=["item:semis"])
    assert kept.models.leading == {"item:semis": ["cycle_wsts"]}
    message = r"^models.leading names series the data does not have: item:other; their leading models do not run$"
    with pytest.warns(DataWarning, match=message) as caught:
        jobs.leading_for(settings, frame, universe=["item:semis", "item:other"])
    assert len(caught) == 1
    with pytest.warns(DataWarning, match=message) as caught:
        jobs.leading_for(settings.updated("runtime", verbose=True), frame, universe=["item:semis"])
    assert len(caught) == 1


def test_the_universe_of_a_source(tmp_path):
    from features.readers import DEFAULT_DATA_DIR

    settings = _settings(tmp_path)
    embedded = jobs.series_universe(settings, _frame(), DEFAULT_DATA_DIR)
    assert "item:semiconductors_ministry" in embedded and "total" in embedded and "item:semis" not in embedded
    user = settings.updated("data", source="csv", path=str(tmp_path / "x.csv"))
    assert jobs.series_universe(user, _frame(), DEFAULT_DATA_DIR) == ["item:semis"]
    customs = jobs.series_universe(settings.updated("data", source="customs_api"), _frame(), DEFAULT_DATA_DIR)
    assert customs[:5] == ["total", "item:semiconductors", "item:automobiles", "item:ships", "item:secondary_batteries"]
