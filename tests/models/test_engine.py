"""The engine with hand-computable toy models injected through ``factory``."""

import json

import numpy as np
import pandas as pd
import pytest
from toys import ToyMean, ToyNaive, ToySeasonalNaive, _bounds

from models.core.base import Forecaster
from models.core.engine import EngineSettings, ModelSpec, fit_series, forecast, frame_to_series, series_seed


class ToyBoom(ToyMean):
    name = "boom"

    def _fit(self, y, X):
        raise RuntimeError(f"boom on {len(y)} months")


class ToyNaN(ToyMean):
    name = "nan"

    def _predict(self, h, X_future):
        return _bounds(np.full(h, np.nan), 1.0)


class ToyNeedy(ToyMean):
    name = "needy"
    min_obs = 30


class ToyExog(Forecaster):
    """Forecast = 2 x the regressor; records the months of X seen at fit time."""

    name = "exog"
    uses_exog = True

    def _fit(self, y, X):
        self.fit_months_ = (X.index.min(), X.index.max(), len(X))

    def _predict(self, h, X_future):
        return _bounds(2.0 * X_future["wd"].to_numpy(dtype=float), 1.0)

    def _sample_paths(self, h, n_paths, rng, X_future):
        return np.tile(2.0 * X_future["wd"].to_numpy(dtype=float), (n_paths, 1))

    def describe(self):
        return {"fit_first": self.fit_months_[0], "fit_last": self.fit_months_[1], "fit_rows": self.fit_months_[2]}


TOYS = {cls.name: cls for cls in (ToyNaive, ToySeasonalNaive, ToyMean, ToyBoom, ToyNaN, ToyNeedy, ToyExog)}


def toy_factory(name, params):
    if name not in TOYS:
        raise KeyError(f"unknown model '{name}'")
    return TOYS[name](**params)


def _frame(**series: tuple[str, list]) -> pd.DataFrame:
    parts = []
    for uid, (start, values) in series.items():
        ds = pd.date_range(start, periods=len(values), freq="MS")
        parts.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.asarray(values, dtype=float)}))
    return pd.concat(parts, ignore_index=True)


def _settings(*names, **kw) -> EngineSettings:
    kw.setdefault("n_jobs", 1)
    kw.setdefault("n_paths", 50)
    return EngineSettings(models=tuple(ModelSpec(n) for n in names), **kw)


ONE_TO_24 = ("2020-01-01", list(range(1, 25)))


# ----------------------------------------------------------------------------- settings
def test_seasonal_naive_is_always_added_first():
    assert _settings("mean").model_names == ("seasonal_naive", "mean")
    assert _settings("mean", "seasonal_naive").model_names == ("mean", "seasonal_naive")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"models": ()}, "EngineSettings.models is empty: enable at least one model"),
        ({"models": (ModelSpec("ets"), ModelSpec("ets"))}, "EngineSettings.models lists ets more than once"),
        (
            {"models": (ModelSpec("champion"),)},
            "'champion' is reserved for the backtest's champion rows; it cannot be a model name",
        ),
        ({"models": ("ets",), "max_missing_share": 1.5}, "max_missing_share must be between 0 and 1; got 1.5"),
        ({"models": ("ets",), "n_jobs": 0}, "n_jobs must be a positive integer or -1 (all cores); got 0"),
    ],
)
def test_settings_validation(kwargs, message):
    with pytest.raises(ValueError, match="^" + __import__("re").escape(message) + "$"):
        EngineSettings(**kwargs)


# ----------------------------------------------------------------------------- forecasts
def test_hand_computed_forecasts_with_horizon():
    res = forecast(_frame(a=ONE_TO_24), _settings("mean"), horizon=3, factory=toy_factory)
    fc = res.forecasts
    assert list(fc.columns) == ["unique_id", "ds", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95"]
    sn = fc[fc.model == "seasonal_naive"]
    assert sn["ds"].tolist() == list(pd.date_range("2022-01-01", periods=3, freq="MS"))
    assert sn["forecast"].tolist() == [13.0, 14.0, 15.0]  # Jan-Mar 2021
    assert sn["hi_95"].tolist() == [17.0, 18.0, 19.0]
    mean = fc[fc.model == "mean"]
    assert mean["forecast"].tolist() == [12.5] * 3 and mean["lo_80"].tolist() == [7.5] * 3
    fits = res.fits.set_index("model")
    assert fits.loc["mean", "status"] == "ok" and fits.loc["mean", "model_used"] == "mean"
    assert json.loads(fits.loc["mean", "description"]) == {"mean": 12.5}
    assert fits.loc["mean", "n_obs"] == 24


def test_until_gives_each_series_its_own_horizon():
    frame = _frame(a=ONE_TO_24, b=("2019-11-01", list(range(1, 25))))  # b ends 2021-10
    res = forecast(frame, _settings("mean"), until="2022-02-01", factory=toy_factory)
    last = res.forecasts.groupby("unique_id")["ds"].agg(["min", "max", "count"])
    assert last.loc["a"].tolist() == [pd.Timestamp("2022-01-01"), pd.Timestamp("2022-02-01"), 4]  # 2 months x 2 models
    assert last.loc["b"].tolist() == [pd.Timestamp("2021-11-01"), pd.Timestamp("2022-02-01"), 8]


def test_series_already_past_until_is_skipped():
    res = forecast(_frame(a=ONE_TO_24), _settings("mean"), until="2021-12-01", factory=toy_factory)
    assert res.forecasts.empty
    assert res.fits["status"].tolist() == ["skipped", "skipped"]
    assert res.fits["reason"].iloc[0] == "nothing to forecast: last observation 2021-12 is at or after the horizon end"


def test_short_series_falls_back_to_seasonal_naive_then_naive():
    frame = _frame(mid=("2020-01-01", list(range(1, 16))), tiny=("2020-01-01", [3, 4, 5, 6, 7, 8, 9, 10]))
    res = forecast(frame, _settings("mean"), horizon=2, factory=toy_factory)
    fits = res.fits.set_index(["unique_id", "model"])
    assert fits.loc[("mid", "mean"), "status"] == "fallback"
    assert fits.loc[("mid", "mean"), "model_used"] == "seasonal_naive"
    assert (
        fits.loc[("mid", "mean"), "reason"]
        == "short series: 15 observed months < min_obs_seasonal 24; used seasonal_naive"
    )
    assert fits.loc[("mid", "seasonal_naive"), "status"] == "ok"
    # 8 months: below 12 -> naive for every model, seasonal_naive included
    assert fits.loc[("tiny", "seasonal_naive"), "model_used"] == "naive"
    assert fits.loc[("tiny", "mean"), "reason"] == "short series: 8 observed months < min_obs_seasonal 24; used naive"
    tiny = res.forecasts[res.forecasts.unique_id == "tiny"]
    assert tiny["forecast"].tolist() == [10.0] * 4
    mid_mean = res.forecasts[(res.forecasts.unique_id == "mid") & (res.forecasts.model == "mean")]
    assert mid_mean["forecast"].tolist() == [4.0, 5.0]  # seasonal naive: Apr, May 2020


def test_sparse_series_falls_back():
    values = [float(v) if v % 3 == 0 else np.nan for v in range(1, 91)]  # 30 of 90 months observed
    res = forecast(_frame(s=("2015-01-01", values)), _settings("mean"), horizon=1, factory=toy_factory)
    row = res.fits.set_index("model").loc["mean"]
    assert row["status"] == "fallback"
    # the toy seasonal naive repeats the last 12 months, NaN included -> rejected, then naive
    assert row["reason"] == "sparse series: 58 of 88 months missing (66% > max_missing_share 50%); used naive"
    assert (
        row["error"] == "seasonal_naive: ValueError: seasonal_naive returned a non-finite forecast or bound for 2022-07"
    )
    assert res.forecasts.set_index("model").loc["mean", "forecast"] == 90.0


def test_failing_model_is_recorded_and_replaced():
    res = forecast(_frame(a=ONE_TO_24), _settings("boom", "nan"), horizon=1, factory=toy_factory)
    fits = res.fits.set_index("model")
    assert fits.loc["boom", "status"] == "fallback"
    assert fits.loc["boom", "reason"] == "boom failed; used seasonal_naive"
    assert fits.loc["boom", "error"] == "boom: RuntimeError: boom on 24 months"
    assert fits.loc["nan", "error"] == "nan: ValueError: nan returned a non-finite forecast or bound for 2022-01"
    got = res.forecasts.set_index("model")["forecast"]
    assert got["boom"] == got["nan"] == 13.0


def test_model_needing_more_history_falls_back():
    res = forecast(_frame(a=ONE_TO_24), _settings("needy", min_obs_seasonal=12), horizon=1, factory=toy_factory)
    assert (
        res.fits.set_index("model").loc["needy", "reason"]
        == "needy needs 30 observed months; series has 24; used seasonal_naive"
    )


def test_every_fallback_failing_gives_failed_without_crash():
    settings = _settings("mean", fallback="boom")
    res = forecast(_frame(a=("2020-01-01", [1, 2, 3])), settings, horizon=1, factory=toy_factory)
    row = res.fits.set_index("model").loc["mean"]
    assert row["status"] == "failed" and row["model_used"] is None
    assert row["error"] == "boom: RuntimeError: boom on 3 months"
    assert row["reason"] == "short series: 3 observed months < min_obs_seasonal 24; every fallback failed"
    assert res.forecasts.empty


def test_exog_history_at_fit_future_at_predict():
    idx = pd.date_range("2019-01-01", "2022-12-01", freq="MS", name="ds")
    exog = pd.DataFrame({"wd": np.arange(len(idx), dtype=float)}, index=idx)
    res = forecast(_frame(a=ONE_TO_24), _settings("exog"), horizon=2, exog=exog, factory=toy_factory)
    desc = json.loads(res.fits.set_index("model").loc["exog", "description"])
    assert desc == {"fit_first": "2020-01-01 00:00:00", "fit_last": "2021-12-01 00:00:00", "fit_rows": 24}
    got = res.forecasts[res.forecasts.model == "exog"]["forecast"].tolist()
    assert got == [2.0 * 36, 2.0 * 37]  # wd of 2022-01 is 36 (months since 2019-01)


class ToyExogOptional(ToyExog):
    """Uses the regressor when given, else the mean (as the real models do)."""

    name = "exog_opt"

    def _fit(self, y, X):
        self.mean_ = float(np.nanmean(y.to_numpy()))
        self.fit_months_ = (None, None, 0) if X is None else (X.index.min(), X.index.max(), len(X))

    def _predict(self, h, X_future):
        values = np.full(h, self.mean_) if X_future is None else 2.0 * X_future["wd"].to_numpy(dtype=float)
        return _bounds(values, 1.0)

    def _sample_paths(self, h, n_paths, rng, X_future):
        return np.tile(self._predict(h, X_future)["forecast"], (n_paths, 1))


TOYS[ToyExogOptional.name] = ToyExogOptional


def test_a_series_the_exog_does_not_cover_runs_without_it_and_says_why():
    """A series from the 1850s and one ending 2110 beside one the exog (1950-2099) covers: the run goes on."""
    idx = pd.date_range("1950-01-01", "2099-12-01", freq="MS", name="ds")
    exog = pd.DataFrame({"wd": np.full(len(idx), 21.0)}, index=idx)
    frame = _frame(a=ONE_TO_24, old=("1857-01-01", list(range(1, 25))), late=("2090-01-01", [5.0] * 252))
    res = forecast(frame, _settings("mean", "exog_opt"), horizon=2, exog=exog, factory=toy_factory)
    fits = res.fits.set_index(["unique_id", "model"])
    assert (fits["status"] == "ok").all()
    assert fits.loc[("a", "exog_opt"), "reason"] == ""
    assert fits.loc[("old", "exog_opt"), "reason"] == (
        "fitted without the regressor(s) wd: they cover no month, the series needs 1857-01..1859-02 "
        "(26 month(s) lacking, first 1857-01)"
    )
    assert fits.loc[("late", "exog_opt"), "reason"] == (
        "fitted without the regressor(s) wd: they cover 2090-01..2099-12, the series needs 2090-01..2111-02 "
        "(134 month(s) lacking, first 2100-01)"
    )
    assert fits.loc[("old", "mean"), "reason"] == fits.loc[("late", "seasonal_naive"), "reason"] == ""  # no exog used
    got = res.forecasts.set_index(["unique_id", "model"])["forecast"].sort_index()
    assert got.loc[("a", "exog_opt")].tolist() == [42.0, 42.0]  # 2 x 21 working days
    assert got.loc[("old", "exog_opt")].tolist() == [12.5, 12.5]  # the mean, no regressor
    assert got.loc[("late", "exog_opt")].tolist() == [5.0, 5.0]


def test_a_model_needing_the_exog_falls_back_when_a_series_lacks_it():
    idx = pd.date_range("2020-01-01", "2021-12-01", freq="MS")
    exog = pd.DataFrame({"wd": 1.0}, index=idx)  # the 2 forecast months are not covered
    res = forecast(_frame(a=ONE_TO_24), _settings("exog"), horizon=2, exog=exog, factory=toy_factory)
    row = res.fits.set_index("model").loc["exog"]
    assert row["status"] == "fallback" and row["model_used"] == "seasonal_naive"
    assert row["reason"] == (
        "exog failed; used seasonal_naive; fitted without the regressor(s) wd: they cover "
        "2020-01..2021-12, the series needs 2020-01..2022-02 (2 month(s) lacking, first 2022-01)"
    )


def test_annual_totals_hand_computed():
    # a: 1..24 over 2020-2021 ; forecast 2022 through Dec with until -> 12 months
    res = forecast(_frame(a=ONE_TO_24), _settings("mean"), until="2022-12-01", annual_year=2022, factory=toy_factory)
    annual = res.annual.set_index("model")
    assert annual.loc["mean", "forecast"] == pytest.approx(12 * 12.5)
    assert annual.loc["mean", "lo_95"] == annual.loc["mean", "hi_95"] == pytest.approx(150.0)  # zero-noise paths
    assert annual.loc["seasonal_naive", "forecast"] == pytest.approx(sum(range(13, 25)))
    assert annual.loc["mean", "observed"] == 0.0 and annual.loc["mean", "n_forecast"] == 12
    # a year partly observed: 2021 is fully observed -> forecast = observed sum
    res = forecast(_frame(a=ONE_TO_24), _settings("mean"), horizon=1, annual_year=2021, factory=toy_factory)
    assert res.annual["forecast"].tolist() == [sum(range(13, 25))] * 2


@pytest.mark.slow  # starts loky workers
def test_results_identical_for_one_and_two_jobs():
    rng = np.random.default_rng(1)
    frame = _frame(**{f"s{i}": ("2018-01-01", list(100 + rng.standard_normal(40).cumsum())) for i in range(7)})
    one = forecast(
        frame, _settings("naive", "mean", n_jobs=1), until="2021-12-01", annual_year=2021, factory=toy_factory
    )
    two = forecast(
        frame, _settings("naive", "mean", n_jobs=2), until="2021-12-01", annual_year=2021, factory=toy_factory
    )
    pd.testing.assert_frame_equal(one.forecasts, two.forecasts)
    pd.testing.assert_frame_equal(one.fits, two.fits)
    pd.testing.assert_frame_equal(one.annual, two.annual)
    # the naive paths are random: the interval is not degenerate, and seeds differ per series
    naive = one.annual[one.annual.model == "naive"]
    assert (naive["hi_80"] > naive["lo_80"]).all()


def test_seed_is_stable_and_distinct():
    assert series_seed(0, "total", "arima") == series_seed(0, "total", "arima")
    assert (
        len(
            {
                series_seed(0, "total", "arima"),
                series_seed(0, "total", "ets"),
                series_seed(1, "total", "arima"),
                series_seed(0, "item:ships", "arima"),
            }
        )
        == 4
    )


def test_seed_comes_from_series_model_and_cutoff_only():
    # issue 19 item 8: the seed is the run seed's, the series', the model's and the cutoff's, never the worker's
    cutoff = pd.Timestamp("2024-10-01")
    assert series_seed(0, "total", "arima", cutoff) == series_seed(0, "total", "arima", pd.Timestamp("2024-10-01"))
    assert series_seed(0, "total", "arima", cutoff) == 3917821212  # the same number in every process and version
    assert (
        len(
            {
                series_seed(0, "total", "arima", cutoff),
                series_seed(0, "total", "arima", pd.Timestamp("2024-04-01")),
                series_seed(0, "total", "arima"),
            }
        )
        == 3
    )


def test_keep_models_returns_fitted_models():
    res = forecast(_frame(a=ONE_TO_24), _settings("mean"), horizon=1, keep_models=True, factory=toy_factory)
    assert set(res.fitted) == {("a", "seasonal_naive"), ("a", "mean")}
    assert res.fitted[("a", "mean")].mean_ == 12.5


def test_input_frame_is_not_modified():
    frame = _frame(a=ONE_TO_24)
    before = frame.copy()
    forecast(frame, _settings("mean"), horizon=1, factory=toy_factory)
    pd.testing.assert_frame_equal(frame, before)


# ----------------------------------------------------------------------------- bad input
def test_exactly_one_of_horizon_and_until():
    with pytest.raises(ValueError, match=r"^give exactly one of horizon \(months\) or until \(last forecast month\)$"):
        forecast(_frame(a=ONE_TO_24), _settings("mean"), factory=toy_factory)


def test_unknown_model_fails_at_start():
    with pytest.raises(
        ValueError, match=r"^model 'nope' cannot be created with params \{\}: KeyError: \"unknown model 'nope'\"$"
    ):
        forecast(_frame(a=ONE_TO_24), _settings("nope"), horizon=1, factory=toy_factory)


def test_frame_errors():
    frame = _frame(a=ONE_TO_24)
    with pytest.raises(ValueError, match=r"^frame lacks column\(s\) \['y'\]; has \['unique_id', 'ds'\]$"):
        frame_to_series(frame.drop(columns="y"))
    dup = pd.concat([frame, frame.iloc[[3]]], ignore_index=True)
    with pytest.raises(
        ValueError, match=r"^frame has duplicate \(unique_id, ds\): series 'a' month 2020-04 \(row 24\)$"
    ):
        frame_to_series(dup)
    mid = frame.assign(ds=frame["ds"] + pd.Timedelta(days=14))
    with pytest.raises(
        ValueError, match=r"^frame column 'ds' must hold month starts; row 0 \(a\) has 2020-01-15 00:00:00$"
    ):
        frame_to_series(mid)


def test_missing_rows_become_nan_months():
    frame = _frame(a=ONE_TO_24).drop(index=[5, 6])
    y = frame_to_series(frame)["a"]
    assert len(y) == 24
    assert y[y.isna()].index.tolist() == [pd.Timestamp("2020-06-01"), pd.Timestamp("2020-07-01")]


def test_fit_series_directly():
    y = frame_to_series(_frame(a=ONE_TO_24))["a"]
    out = fit_series("a", y, _settings("mean"), h=2, factory=toy_factory)
    assert out.forecasts["model"].tolist() == ["seasonal_naive"] * 2 + ["mean"] * 2
    assert [r.status for r in out.fits] == ["ok", "ok"]


def test_ensemble_adopts_the_members_fitted_on_their_own():
    """The ensemble reuses the standalone fits (same series, same params) instead of refitting."""
    from models.core.engine import EngineSettings, ModelSpec, forecast

    idx = pd.date_range("2020-01-01", periods=36, freq="MS")
    values = np.r_[np.arange(1, 13), np.arange(1, 13) + 12.0, np.arange(1, 13) + 24.0] * 10.0
    frame = pd.DataFrame({"unique_id": "s", "ds": idx, "y": values})
    settings = EngineSettings(
        models=(
            ModelSpec("seasonal_naive"),
            ModelSpec("naive"),
            ModelSpec("ensemble", {"members": {"naive": {}, "seasonal_naive": {}}}),
        ),
        n_jobs=1,
        min_obs_seasonal=24,
    )
    result = forecast(frame, settings, horizon=2, keep_models=True)
    ensemble = result.fitted[("s", "ensemble")]
    assert ensemble.members_["naive"] is result.fitted[("s", "naive")]
    assert ensemble.members_["seasonal_naive"] is result.fitted[("s", "seasonal_naive")]
    got = result.forecasts.set_index(["model", "ds"])["forecast"]
    # naive: 360, 360; seasonal naive: 250, 260; median of two = their mean
    assert got[("ensemble", pd.Timestamp("2023-01-01"))] == pytest.approx((360 + 250) / 2)
    assert got[("ensemble", pd.Timestamp("2023-02-01"))] == pytest.approx((360 + 260) / 2)


def _double(x: int) -> int:
    return 2 * x


def test_progress_prints_about_ten_lines_per_stage(capsys):
    from models.core.engine import run_batches

    assert run_batches(_double, list(range(100)), n_jobs=1, progress=True, label="toy") == [2 * x for x in range(100)]
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" done")[0] for line in lines] == [f"[toy] {n}/100" for n in range(10, 101, 10)]
