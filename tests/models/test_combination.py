"""Combination candidates: hand-computed inverse-MASE weights and combinations, no leakage of later windows."""

import json

import numpy as np
import pandas as pd
import pytest
from toys import ToyNaive, ToySeasonalNaive

from models.core.backtest import backtest
from models.core.engine import EngineSettings, ModelSpec
from models.selection.combination import combine_annual, combine_values, combine_window, inverse_mase_weights, pool

ts = pd.Timestamp
NAN = float("nan")
FC = ("forecast", "lo_80", "hi_80", "lo_95", "hi_95")


def test_pool_is_the_single_models():
    assert pool(["seasonal_naive", "ets", "ensemble", "combo_mean", "arima", "champion"]) == [
        "seasonal_naive",
        "ets",
        "arima",
    ]


def test_inverse_mase_weights_hand_computed():
    windows = [
        (ts("2020-12-01"), {"ets": 0.5, "arima": 1.0, "theta": 2.0}),
        (ts("2021-06-01"), {"ets": 1.5, "arima": 3.0, "theta": NAN}),
    ]
    # ets mean 1.0, arima mean 2.0 -> 1/1 : 1/2 -> 2/3, 1/3; theta lacks a window: no weight
    assert inverse_mase_weights(windows, ["ets", "arima", "theta"]) == pytest.approx({"ets": 2 / 3, "arima": 1 / 3})
    # at 2021-03 only the first window is known: 1/0.5 : 1/1 : 1/2 = 2 : 1 : 0.5 -> 4/7, 2/7, 1/7
    assert inverse_mase_weights(windows, ["ets", "arima", "theta"], ts("2021-03-01")) == pytest.approx(
        {"ets": 4 / 7, "arima": 2 / 7, "theta": 1 / 7}
    )
    assert inverse_mase_weights(windows, ["ets"], ts("2020-11-01")) == {}


def test_combinations_hand_computed():
    values = np.array([[10.0, 1.0], [40.0, 2.0], [20.0, 3.0], [0.0, 4.0], [100.0, 5.0]])
    members = ["a", "b", "c", "d", "e"]
    assert combine_values(values, "combo_mean", members).tolist() == pytest.approx([34.0, 3.0])
    # 5 members, 20% cut at each end: drop 0 and 100 -> (10 + 20 + 40) / 3
    assert combine_values(values, "combo_trimmed", members).tolist() == pytest.approx([70 / 3, 3.0])
    w = {"a": 0.5, "b": 0.25, "c": 0.25}  # d, e have no weight
    assert combine_values(values, "combo_inv_mase", members, w).tolist() == pytest.approx(
        [5 + 10 + 5, 0.5 + 0.5 + 0.75]
    )
    assert combine_values(values, "combo_inv_mase", members, {}).tolist() == pytest.approx([34.0, 3.0])
    with pytest.raises(
        ValueError, match=r"^unknown combination 'combo_max'; known: combo_mean, combo_trimmed, combo_inv_mase$"
    ):
        combine_values(values, "combo_max", members)


def test_combined_bounds_stay_ordered_and_annual_rows_combine_alike():
    ds = pd.date_range("2021-01-01", periods=2, freq="MS")
    rows = []
    for model, f, width in (("ets", 100.0, 10.0), ("arima", 130.0, 40.0), ("theta", 90.0, 5.0)):
        rows.append(
            pd.DataFrame(
                {
                    "unique_id": "a",
                    "ds": ds,
                    "model": model,
                    "forecast": f,
                    "lo_80": f - width,
                    "hi_80": f + width,
                    "lo_95": f - 2 * width,
                    "hi_95": f + 2 * width,
                }
            )
        )
    out = combine_window(pd.concat(rows, ignore_index=True), ["ets", "arima", "theta"], {"ets": 0.5, "arima": 0.5})
    inv = out[out["model"] == "combo_inv_mase"].iloc[0]
    assert (inv["forecast"], inv["lo_80"], inv["hi_95"]) == pytest.approx((115.0, 90.0, 165.0))
    mean = out[out["model"] == "combo_mean"].iloc[0]
    assert (mean["forecast"], mean["lo_95"]) == pytest.approx((320 / 3, (80 + 50 + 80) / 3))
    cols = ["lo_95", "lo_80", "forecast", "hi_80", "hi_95"]
    assert (np.diff(out[cols].to_numpy(), axis=1) >= 0).all()
    annual = [
        {
            "unique_id": "a",
            "year": 2021,
            "model": m,
            "forecast": f,
            "lo_80": f - 1,
            "hi_80": f + 1,
            "lo_95": f - 2,
            "hi_95": f + 2,
            "observed": 7.0,
            "n_observed": 3,
            "n_forecast": 9,
            "reason": "",
        }
        for m, f in (("ets", 10.0), ("arima", 20.0))
    ]
    combined = {r["model"]: r for r in combine_annual(annual, ["ets", "arima"], {"ets": 0.75, "arima": 0.25})}
    assert combined["combo_inv_mase"]["forecast"] == pytest.approx(12.5)
    assert combined["combo_mean"]["hi_95"] == pytest.approx(17.0)
    assert (combined["combo_mean"]["observed"], combined["combo_mean"]["n_forecast"]) == (7.0, 9)


TOYS = {cls.name: cls for cls in (ToyNaive, ToySeasonalNaive)}


def _frame(values):
    ds = pd.date_range("2019-01-01", periods=len(values), freq="MS")
    return pd.DataFrame({"unique_id": "a", "ds": ds, "y": np.asarray(values, dtype=float)})


def _run(values, cutoffs=("2021-06-01", "2021-08-01", "2021-10-01")):
    settings = EngineSettings(models=(ModelSpec("naive"),), n_jobs=1, n_paths=10)
    return backtest(
        _frame(values),
        settings,
        horizon=2,
        cutoffs=list(cutoffs),
        factory=lambda name, params: TOYS[name](**params),
        combinations=True,
    )


def _weights(result):
    fits = result.fits[result.fits["model"] == "combo_inv_mase"].set_index("cutoff")
    return {f"{c:%Y-%m}": json.loads(d)["weights"] for c, d in fits["description"].items()}


def test_backtest_weights_come_from_earlier_windows_only():
    # y_t = t (Jan 2019 = 1): seasonal scale 12; naive misses by 1, 2 (MASE 0.125), seasonal naive by 12 (MASE 1)
    result = _run(list(range(1, 37)))
    # 2021-06: no earlier window -> equal weights; 2021-08: the window ending 2021-08 counts -> 8/9, 1/9
    assert _weights(result) == {
        "2021-06": {},
        "2021-08": pytest.approx({"seasonal_naive": 1 / 9, "naive": 8 / 9}, abs=1e-6),
        "2021-10": pytest.approx({"seasonal_naive": 1 / 9, "naive": 8 / 9}, abs=1e-6),
    }
    fc = result.forecasts.set_index(["cutoff", "model", "ds"])["forecast"]
    # cutoff 2021-08 (t = 32), month 2021-09: naive 32, seasonal naive 21 -> 8/9 * 32 + 1/9 * 21; 2021-10: 22
    assert fc[(ts("2021-08-01"), "combo_inv_mase", ts("2021-09-01"))] == pytest.approx(277 / 9)
    assert fc[(ts("2021-08-01"), "combo_mean", ts("2021-09-01"))] == pytest.approx(26.5)
    assert fc[(ts("2021-06-01"), "combo_inv_mase", ts("2021-07-01"))] == pytest.approx(24.5)  # (30 + 19) / 2
    m = result.metrics.set_index(["model", "cutoff"])["mase"]
    assert m[("combo_inv_mase", ts("2021-08-01"))] == pytest.approx(((33 - 277 / 9) + (34 - 278 / 9)) / 2 / 12)
    assert set(result.metrics["model"]) == {
        "seasonal_naive",
        "naive",
        "combo_mean",
        "combo_trimmed",
        "combo_inv_mase",
        "champion",
    }


def test_no_window_after_the_cutoff_enters_a_weight():
    # monthly cutoffs, horizon 2: the window at 2021-07 is evaluated on 2021-08 AND 2021-09, so at
    # the cutoff 2021-08 it was not fully observed and must not weigh; only the 2021-06 window does
    cutoffs = ("2021-06-01", "2021-07-01", "2021-08-01", "2021-09-01")
    base = list(range(1, 37))
    wrecked = base[:32] + [500.0, -300.0, 900.0, 0.0]  # every month after 2021-08 changed
    a, b = _weights(_run(base, cutoffs)), _weights(_run(wrecked, cutoffs))
    assert a["2021-08"] == pytest.approx({"seasonal_naive": 1 / 9, "naive": 8 / 9}, abs=1e-6)
    assert b["2021-08"] == a["2021-08"]  # not a trace of the months after the cutoff
    assert a["2021-07"] == b["2021-07"] == {}  # the 2021-06 window ends 2021-08: not observed by 2021-07
    assert a["2021-09"] != b["2021-09"]  # by 2021-09 the 2021-07 window (through 2021-09) counts, wrecked or not


def test_published_combinations_use_every_window_and_refit_nothing():
    from models.core.engine import forecast
    from models.selection.combination import add_combinations

    settings = EngineSettings(models=(ModelSpec("naive"),), n_jobs=1, n_paths=200)
    factory = lambda name, params: TOYS[name](**params)  # noqa: E731
    frame = _frame(list(range(1, 37)))
    fc = forecast(frame, settings, horizon=2, annual_year=2022, keep_models=True, factory=factory)
    metrics = pd.DataFrame(
        {
            "unique_id": "a",
            "cutoff": pd.to_datetime(["2020-01-01"] * 2 + ["2020-07-01"] * 2),
            "model": ["seasonal_naive", "naive"] * 2,
            "mase": [1.0, 0.5, 3.0, 0.5],
        }
    )
    out = add_combinations(fc, metrics, ["seasonal_naive", "naive"])
    f, a, fits, fitted = out.forecasts, out.annual, out.fits, out.fitted
    # weights: seasonal naive 1 / 2, naive 1 / 0.5 -> 0.2, 0.8; Jan 2022: naive 36, seasonal naive 25
    row = f[(f["model"] == "combo_inv_mase")].iloc[0]
    assert row["forecast"] == pytest.approx(0.2 * 25 + 0.8 * 36)
    desc = json.loads(fits.set_index("model").loc["combo_inv_mase", "description"])
    assert desc == {"members": ["seasonal_naive", "naive"], "weights": {"seasonal_naive": 0.2, "naive": 0.8}}
    assert set(a["model"]) >= {"combo_mean", "combo_trimmed", "combo_inv_mase"}
    model = fitted[("a", "combo_inv_mase")]
    assert model.members_["naive"] is fc.fitted[("a", "naive")]  # the fitted member itself, not a refit
    assert model.predict(2)["forecast"].tolist() == pytest.approx(
        f[f["model"] == "combo_inv_mase"]["forecast"].tolist()
    )
    assert model.sample_paths(2, 50, seed=1).shape == (50, 2)


def test_a_window_in_any_row_order_with_a_month_missing_hand_computed():
    """combine_window reads the members' rows by month whatever their order: the first member's
    months are the rows; a member without a month gives NaN there (the trimmed mean's NaN goes to
    scipy, which propagates it); the other columns come from the first member's rows."""
    months = pd.date_range("2025-01-01", periods=3, freq="MS")
    rows = []
    for model, values in {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0], "c": [7.0, 8.0, 9.0]}.items():
        for month, v in zip(months, values):
            if not (model == "c" and month == months[1]):
                rows.append({"unique_id": "x", "ds": month, "model": model, "y": v * 10, **dict.fromkeys(FC, v)})
    forecasts = pd.DataFrame(rows).iloc[[7, 0, 3, 6, 2, 5, 1, 4]].reset_index(drop=True)
    out = combine_window(forecasts, ["a", "b", "c", "absent"], {"a": 0.5, "b": 0.5})
    assert out["model"].tolist() == ["combo_mean"] * 3 + ["combo_trimmed"] * 3 + ["combo_inv_mase"] * 3
    assert out["ds"].tolist() == list(months) * 3
    assert out["y"].tolist() == [10.0, 20.0, 30.0] * 3  # the first member's
    # the weighted mean: c weighs 0, but 0 x NaN is NaN
    np.testing.assert_array_equal(out["forecast"], [4.0, NAN, 6.0, 4.0, NAN, 6.0, 2.5, NAN, 4.5])
    np.testing.assert_array_equal(out["hi_95"], out["forecast"])
    assert list(out.columns) == list(forecasts.columns)
    assert combine_window(forecasts, ["absent"]).empty
