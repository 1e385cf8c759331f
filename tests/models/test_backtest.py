"""The one backtest: hand-computed metrics with toy models, truncation, honest champion; rolling and fixed cutoffs."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from toys import ToyMean, ToyNaive, ToySeasonalNaive

from models.core.backtest import backtest, default_cutoffs
from models.core.engine import EngineSettings, ModelSpec
from models.selection.champion import ChampionRule


class ToySpy(ToyNaive):
    """Records the last month of y and X it is handed at fit time."""

    name = "spy"
    uses_exog = True

    def _fit(self, y, X):
        super()._fit(y, X)
        self.seen_ = {"y_last": f"{y.index.max():%Y-%m}", "X_last": f"{X.index.max():%Y-%m}", "y_len": len(y)}

    def describe(self):
        return self.seen_


TOYS = {cls.name: cls for cls in (ToyNaive, ToySeasonalNaive, ToyMean, ToySpy)}


def toy_factory(name, params):
    return TOYS[name](**params)


def _frame(uid="a", start="2019-01-01", values=range(1, 37)):
    ds = pd.date_range(start, periods=len(values), freq="MS")
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(list(values), dtype=float)})


def _settings(*names, **kw):
    kw.setdefault("n_jobs", 1)
    kw.setdefault("n_paths", 10)
    return EngineSettings(models=tuple(ModelSpec(n) for n in names), **kw)


def test_default_cutoffs_formula():
    cuts = default_cutoffs(pd.Timestamp("2021-12-01"), horizon=12, windows=4, step=6)
    assert cuts == [pd.Timestamp(s) for s in ("2019-06-01", "2019-12-01", "2020-06-01", "2020-12-01")]


# y_t = t for Jan 2019 (1) .. Dec 2021 (36); horizon 2, 2 windows, step 1 -> cutoffs 2021-09 and 2021-10
# seasonal scale on the training part: |y_t - y_{t-12}| = 12 everywhere.
@pytest.fixture(scope="module")
def result():
    return backtest(_frame(), _settings("naive", "mean"), horizon=2, windows=2, step=1, factory=toy_factory)


def test_hand_computed_metrics(result):
    m = result.metrics.set_index(["model", "cutoff"])
    sep, octo = pd.Timestamp("2021-09-01"), pd.Timestamp("2021-10-01")
    # naive from 33: errors 1, 2 -> MAE 1.5 / 12
    assert m.loc[("naive", sep), "mase"] == pytest.approx(0.125)
    assert m.loc[("naive", sep), "rmsse"] == pytest.approx(math.sqrt(2.5 / 144))
    assert m.loc[("naive", sep), "smape"] == pytest.approx(100 * (1 / 67 + 2 / 68))
    assert m.loc[("naive", sep), "coverage_80"] == 0.5  # 34 in [32, 34], 35 not
    assert m.loc[("naive", sep), "coverage_95"] == 1.0
    # seasonal naive is always 12 behind on a linear trend
    assert m.loc[("seasonal_naive", sep), "mase"] == pytest.approx(1.0)
    assert m.loc[("seasonal_naive", octo), "mase"] == pytest.approx(1.0)
    # mean of 1..33 = 17 -> errors 17, 18 ; mean of 1..34 = 17.5 -> errors 17.5, 18.5
    assert m.loc[("mean", sep), "mase"] == pytest.approx(17.5 / 12)
    assert m.loc[("mean", octo), "mase"] == pytest.approx(18 / 12)


def test_forecast_rows_and_actuals(result):
    fc = result.forecasts
    assert list(fc.columns) == [
        "unique_id",
        "cutoff",
        "ds",
        "model",
        "forecast",
        "lo_80",
        "hi_80",
        "lo_95",
        "hi_95",
        "y",
    ]
    naive = fc[(fc.model == "naive") & (fc.cutoff == pd.Timestamp("2021-09-01"))]
    assert naive["ds"].tolist() == [pd.Timestamp("2021-10-01"), pd.Timestamp("2021-11-01")]
    assert naive["forecast"].tolist() == [33.0, 33.0] and naive["y"].tolist() == [34.0, 35.0]
    assert set(fc.model) == {"seasonal_naive", "naive", "mean", "champion"}


def test_champion_rows_use_only_windows_fully_observed_by_the_cutoff(result):
    # horizon 2, step 1: the 2021-09 window is scored on Oct AND Nov 2021, and Nov was not yet
    # observed at the 2021-10 cutoff, so the second window cannot use it either: default again
    fc, fits = result.forecasts, result.fits
    champ = fc[fc.model == "champion"]
    first = champ[champ.cutoff == pd.Timestamp("2021-09-01")]["forecast"].tolist()
    second = champ[champ.cutoff == pd.Timestamp("2021-10-01")]["forecast"].tolist()
    assert first == [22.0, 23.0]  # default champion seasonal_naive (Oct, Nov 2020)
    assert second == [23.0, 24.0]  # still the default (Nov, Dec 2020)
    rows = fits[fits.model == "champion"].set_index("cutoff")
    assert rows.loc[pd.Timestamp("2021-09-01"), "model_used"] == "seasonal_naive"
    assert (
        rows.loc[pd.Timestamp("2021-09-01"), "reason"]
        == "no earlier window fully observed by 2021-09: default champion 'seasonal_naive'"
    )
    assert (
        rows.loc[pd.Timestamp("2021-10-01"), "reason"]
        == "no earlier window fully observed by 2021-10: default champion 'seasonal_naive'"
    )
    m = result.metrics.set_index(["model", "cutoff"])
    assert m.loc[("champion", pd.Timestamp("2021-09-01")), "mase"] == pytest.approx(1.0)
    assert m.loc[("champion", pd.Timestamp("2021-10-01")), "mase"] == pytest.approx(1.0)


def test_champion_rows_use_an_earlier_window_once_its_months_are_observed():
    # horizon 2, step 2: cutoffs 2021-08 (scored on Sep, Oct) and 2021-10 -> the first window counts
    # (no noise margin here: with it, one window never replaces the default, see the next test)
    out = backtest(
        _frame(),
        _settings("seasonal_naive", "naive", "mean"),
        horizon=2,
        windows=2,
        step=2,
        default_champion="seasonal_naive",
        factory=toy_factory,
        champion_rule=ChampionRule(noise_se=0),
    )
    rows = out.fits[out.fits.model == "champion"].set_index("cutoff")
    assert rows.loc[pd.Timestamp("2021-10-01"), "model_used"] == "naive"
    # naive from Aug 2021 (32): errors 1, 2 -> 1.5 / 12 = 0.125
    assert rows.loc[pd.Timestamp("2021-10-01"), "reason"] == "lowest mean MASE 0.125 over 1 window before 2021-10"
    champ = out.forecasts[(out.forecasts.model == "champion") & (out.forecasts.cutoff == pd.Timestamp("2021-10-01"))]
    assert champ["forecast"].tolist() == [34.0, 34.0]


def test_with_the_noise_margin_one_earlier_window_keeps_the_default():
    # the same windows with the default rule (1 standard error): one window has no spread, so
    # naive's better MASE there (0.125 against seasonal naive's 1.0) does not replace the default
    out = backtest(
        _frame(),
        _settings("seasonal_naive", "naive", "mean"),
        horizon=2,
        windows=2,
        step=2,
        default_champion="seasonal_naive",
        factory=toy_factory,
    )
    rows = out.fits[out.fits.model == "champion"].set_index("cutoff")
    assert rows.loc[pd.Timestamp("2021-10-01"), "model_used"] == "seasonal_naive"
    assert rows.loc[pd.Timestamp("2021-10-01"), "reason"] == (
        "mean MASE 1.000 against naive's 0.125 over 1 window: fewer than two windows score both, no spread to show "
        "the difference is more than noise; default kept before 2021-10"
    )


def test_champion_table(result):
    row = result.champions.set_index("unique_id").loc["a"]
    assert row["champion"] == "naive"
    assert row["reason"] == "lowest mean MASE 0.125 over 2 windows"
    assert json.loads(row["mean_score"]) == pytest.approx(
        {"naive": 0.125, "seasonal_naive": 1.0, "mean": 1.479167}, abs=1e-6
    )


def test_models_only_see_data_up_to_the_cutoff():
    idx = pd.date_range("2018-01-01", "2022-12-01", freq="MS", name="ds")
    exog = pd.DataFrame({"wd": np.ones(len(idx))}, index=idx)
    res = backtest(_frame(), _settings("spy"), horizon=3, windows=4, step=2, exog=exog, factory=toy_factory)
    spy = res.fits[res.fits.model == "spy"]
    assert len(spy) == 4
    for _, row in spy.iterrows():
        seen = json.loads(row["description"])
        assert seen["y_last"] == seen["X_last"] == f"{row['cutoff']:%Y-%m}"
    # the last value handed over is the cutoff's: the forecast equals it exactly
    fc = res.forecasts[res.forecasts.model == "spy"]
    assert (fc["forecast"] == fc["cutoff"].map(lambda c: (c.year - 2019) * 12 + c.month)).all()


def test_unobserved_cutoff_month_and_skipped_windows():
    frame = _frame()
    frame = frame[frame.ds != pd.Timestamp("2021-09-01")]
    cutoffs = ["2018-06-01", "2021-09-01", "2021-12-01"]  # before the data, a gap, after the data
    res = backtest(frame, _settings("naive"), horizon=2, windows=1, cutoffs=cutoffs, factory=toy_factory)
    assert res.metrics["cutoff"].unique().tolist() == [pd.Timestamp("2021-09-01")]
    naive = res.forecasts[res.forecasts.model == "naive"]
    assert naive["ds"].tolist() == [pd.Timestamp("2021-10-01"), pd.Timestamp("2021-11-01")]
    assert naive["forecast"].tolist() == [32.0, 32.0]  # from August, the last observation


def test_short_training_window_runs_with_fallback():
    res = backtest(_frame(values=range(1, 21)), _settings("mean"), horizon=2, windows=1, factory=toy_factory)
    row = res.fits[res.fits.model == "mean"].iloc[0]
    assert row["status"] == "fallback" and row["model_used"] == "seasonal_naive"
    assert row["reason"] == "short series: 18 observed months < min_obs_seasonal 24; used seasonal_naive"
    assert row["cutoff"] == pd.Timestamp("2020-06-01")


def test_series_without_window_gets_default_champion():
    frame = pd.concat([_frame(), _frame("b", "2021-12-01", [5.0])], ignore_index=True)
    res = backtest(frame, _settings("naive"), horizon=2, windows=1, default_champion="naive", factory=toy_factory)
    row = res.champions.set_index("unique_id").loc["b"]
    assert (row["champion"], row["reason"], row["n_windows"]) == ("naive", "no backtest window: default", 0)


@pytest.mark.slow  # starts loky workers
def test_identical_for_one_and_two_jobs():
    rng = np.random.default_rng(3)
    frame = pd.concat(
        [_frame(f"s{i}", values=100 + rng.standard_normal(48).cumsum()) for i in range(6)], ignore_index=True
    )
    one = backtest(frame, _settings("naive", "mean", n_jobs=1), horizon=3, windows=3, step=2, factory=toy_factory)
    two = backtest(frame, _settings("naive", "mean", n_jobs=2), horizon=3, windows=3, step=2, factory=toy_factory)
    for name in ("forecasts", "metrics", "champions", "fits"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^horizon must be a positive integer; got 0$"):
        backtest(_frame(), _settings("naive"), horizon=0, windows=1, factory=toy_factory)
    with pytest.raises(
        ValueError, match=r"^default_champion 'ensemble' is not an enabled model; enabled: seasonal_naive, naive$"
    ):
        backtest(_frame(), _settings("naive"), horizon=1, windows=1, default_champion="ensemble", factory=toy_factory)


def test_a_series_the_exog_does_not_cover_is_backtested_without_it():
    exog = pd.DataFrame({"wd": 1.0}, index=pd.date_range("2019-01-01", "2021-10-01", freq="MS"))
    frame = pd.concat([_frame(), _frame("old", start="1857-01-01")], ignore_index=True)
    res = backtest(frame, _settings("naive"), horizon=2, windows=1, exog=exog, factory=toy_factory)
    assert sorted(res.metrics["unique_id"].unique()) == ["a", "old"]
    # the toy naive takes no exog: nothing to record; the spy needs X and falls back, saying why
    assert (res.fits.loc[res.fits.model.isin(["naive", "seasonal_naive"]), "reason"] == "").all()
    res = backtest(frame, _settings("spy"), horizon=2, windows=1, exog=exog, factory=toy_factory)
    spy = res.fits[res.fits.model == "spy"].set_index("unique_id")
    assert spy.loc["a", "reason"] == (
        "spy failed; used seasonal_naive; fitted without the regressor(s) wd: they cover "
        "2019-01..2021-10, the series needs 2019-01..2021-12 (2 month(s) lacking, first 2021-11)"
    )
    assert spy.loc["old", "reason"].endswith(
        "they cover no month, the series needs 1857-01..1859-12 (36 month(s) lacking, first 1857-01)"
    )


# Fixed information sets (the institutional comparison's backtest): cutoff October Y-1, horizon 14
# to December Y, annual total of Y. Series a: y_t = t from Jan 2018 (1) to Dec 2021 (48).
# Seasonal naive repeats the last 12 months, so its total of Y is Jan..Oct(Y-1) + Nov..Dec(Y-2):
#   2020: (13 + .. + 22) + 11 + 12 = 175 + 23 = 198;   2021: (25 + .. + 34) + 23 + 24 = 295 + 47 = 342.
# Series b: y_t = 2t from Jan 2018 to Oct 2020, only the October 2020 cutoff: nothing of its window
# is observed, so it is kept only with keep_unscored; total of 2021 = 2 x 342 = 684.
FIXED_CUTOFFS = {"a": ["2019-10-01", "2020-10-01"], "b": ["2020-10-01"]}


def _fixed_frame():
    return pd.concat(
        [_frame("a", "2018-01-01", range(1, 49)), _frame("b", "2018-01-01", [2.0 * t for t in range(1, 35)])],
        ignore_index=True,
    )


@pytest.fixture(scope="module")
def fixed():
    return backtest(
        _fixed_frame(),
        _settings("naive", min_obs_seasonal=12),
        horizon=14,
        cutoffs=FIXED_CUTOFFS,
        annual=True,
        keep_unscored=True,
        factory=toy_factory,
    )


def test_fixed_cutoffs_give_the_hand_computed_annual_totals(fixed):
    annual = fixed.annual
    assert list(annual.columns) == [
        "unique_id",
        "cutoff",
        "year",
        "model",
        "forecast",
        "lo_80",
        "hi_80",
        "lo_95",
        "hi_95",
        "observed",
        "n_observed",
        "n_forecast",
        "reason",
    ]
    sn = annual[annual["model"] == "seasonal_naive"].set_index(["unique_id", "cutoff"])
    expected = {("a", "2019-10-01", 2020): 198.0, ("a", "2020-10-01", 2021): 342.0, ("b", "2020-10-01", 2021): 684.0}
    assert len(sn) == len(expected)
    for (uid, cutoff, year), total in expected.items():
        row = sn.loc[(uid, pd.Timestamp(cutoff))]
        assert row["year"] == year
        assert (row["n_observed"], row["n_forecast"], row["observed"]) == (0, 12, 0.0)
        # the toy's paths have no noise: every bound of the total is the total
        assert [row[c] for c in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")] == [total] * 5
    # naive: 12 x the October value
    naive = annual[annual["model"] == "naive"].set_index(["unique_id", "cutoff"])
    assert naive.loc[("a", pd.Timestamp("2020-10-01")), "forecast"] == 12 * 34.0


def test_fixed_cutoffs_monthly_forecasts_run_to_december_of_the_target_year(fixed):
    fc = fixed.forecasts[
        (fixed.forecasts["model"] == "seasonal_naive")
        & (fixed.forecasts["unique_id"] == "a")
        & (fixed.forecasts["cutoff"] == pd.Timestamp("2020-10-01"))
    ]
    assert fc["ds"].tolist() == list(pd.date_range("2020-11-01", "2021-12-01", freq="MS"))
    assert fc["forecast"].tolist() == [23.0, 24.0, *range(25, 35), 23.0, 24.0]
    assert fc["y"].tolist() == list(map(float, range(35, 49)))


def test_unscored_window_is_a_forecast_without_metrics(fixed):
    assert sorted(fixed.metrics.loc[fixed.metrics["unique_id"] == "b", "cutoff"]) == []
    assert fixed.forecasts.loc[fixed.forecasts["unique_id"] == "b", "y"].isna().all()
    champion = fixed.annual[(fixed.annual["unique_id"] == "b") & (fixed.annual["model"] == "champion")]
    assert champion["forecast"].tolist() == [684.0]  # the default champion, seasonal naive
    without = backtest(
        _fixed_frame(),
        _settings("naive", min_obs_seasonal=12),
        horizon=14,
        cutoffs=FIXED_CUTOFFS,
        annual=True,
        factory=toy_factory,
    )
    assert "b" not in set(without.forecasts["unique_id"]) and "b" not in set(without.annual["unique_id"])
    assert without.champions.set_index("unique_id").loc["b", "reason"] == "no backtest window: default"


def test_fixed_cutoffs_champion_rows_follow_the_one_rule(fixed):
    # a, 2020-10: the 2019-10 window runs to Dec 2020, not yet observed -> the default champion
    rows = fixed.fits[(fixed.fits["model"] == "champion") & (fixed.fits["unique_id"] == "a")].set_index("cutoff")
    assert rows.loc[pd.Timestamp("2020-10-01"), "model_used"] == "seasonal_naive"
    assert (
        rows.loc[pd.Timestamp("2020-10-01"), "reason"]
        == "no earlier window fully observed by 2020-10: default champion 'seasonal_naive'"
    )
    assert json.loads(rows.loc[pd.Timestamp("2020-10-01"), "description"]) == {"n_windows": 0, "mean_score": {}}
    champion = fixed.annual[(fixed.annual["unique_id"] == "a") & (fixed.annual["model"] == "champion")]
    assert champion["forecast"].tolist() == [198.0, 342.0]
    assert (
        fixed.annual is not None
        and backtest(_frame(), _settings("naive"), horizon=2, windows=1, factory=toy_factory).annual is None
    )


def test_per_series_cutoffs_bad_arguments():
    frame = _fixed_frame()
    with pytest.raises(ValueError, match=r"^cutoffs has no entry for series 'b'$"):
        backtest(frame, _settings("naive"), horizon=14, cutoffs={"a": ["2020-10-01"]}, factory=toy_factory)
    with pytest.raises(ValueError, match=r"^cutoffs names series not in frame: 'zz'$"):
        backtest(frame, _settings("naive"), horizon=14, cutoffs={**FIXED_CUTOFFS, "zz": []}, factory=toy_factory)
    with pytest.raises(ValueError, match=r"^give windows \(rolling cutoffs\) or cutoffs \(fixed information sets\)$"):
        backtest(frame, _settings("naive"), horizon=14, factory=toy_factory)
