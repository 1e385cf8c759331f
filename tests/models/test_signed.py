"""Signed series (issue 19, item 3) and the plausibility limit on outputs (item 4): additive forms,
no clip at zero, models that need positive values step aside, model_fits.reason says which."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.core import registry
from models.core.engine import EngineSettings, ModelSpec, fit_series, plausibility_scale
from tests.models.toys import ToyNaive


def _balance(level: float = -2e9, n: int = 48, seed: int = 3) -> pd.Series:
    """A seasonal series around ``level`` (USD), month starts from 2022-01."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2022-01-01", periods=n, freq="MS", name="ds")
    season = 3e8 * np.sin(2 * np.pi * np.arange(n) / 12)
    return pd.Series(level + season + rng.normal(0, 5e7, n), index=ds)


def test_a_signed_series_is_never_clipped_at_zero():
    y = pd.Series([1.0, 2.0, 1.0, 3.0, 0.5], index=pd.date_range("2024-01-01", periods=5, freq="MS"))
    unsigned = registry.create("naive", {}).fit(y).predict(3)
    signed = registry.create("naive", {}).fit(y, signed=True).predict(3)
    assert unsigned["lo_95"].min() == 0.0  # an export series: bounds below zero raised to zero
    assert signed["lo_95"].min() < -1.0 and signed["forecast"].tolist() == [0.5, 0.5, 0.5]


def test_arima_and_prophet_take_their_additive_forms_on_a_signed_series():
    y = _balance(level=3e9)  # positive history, declared signed
    arima = registry.create("arima", {"max_p": 1, "max_q": 1, "max_P": 0, "max_Q": 0, "max_d": 1})
    assert arima.fit(y).describe()["log"] is True
    assert arima.fit(y, signed=True).describe()["log"] is False
    assert arima.sign_notes() == ["arima on levels, not logs"]
    prophet = registry.create("prophet", {"seasonality_mode": "multiplicative", "n_samples": 200, "calibrate": False})
    prophet.fit(y, signed=True)
    assert prophet.describe()["seasonality_mode"] == "additive"
    assert prophet.sign_notes() == ["prophet with additive seasonality (not multiplicative)"]


def test_the_engine_records_which_models_switched_and_which_stepped_aside():
    y = _balance()
    settings = EngineSettings(models=(ModelSpec("ets"), ModelSpec("theta"), ModelSpec("cycle")), n_jobs=1, n_paths=50)
    out = fit_series("balance:agrifood", y, settings, h=6)
    reasons = {r.model: (r.status, r.reason) for r in out.fits}
    assert reasons == {
        "seasonal_naive": ("ok", "signed series: seasonal_naive unchanged (already additive), no clip at zero"),
        "ets": ("ok", "signed series: ets with additive error and seasonality, no clip at zero"),
        "theta": ("ok", "signed series: theta with additive deseasonalisation, no clip at zero"),
        "cycle": (
            "fallback",
            "signed series: cycle steps aside (it works on the 12-month log growth of a positive "
            "series); used seasonal_naive",
        ),
    }
    assert (out.forecasts[["forecast", "lo_95", "hi_95"]] < 0).all().all()  # a negative history, negative forecasts


def test_a_forecast_beyond_the_plausibility_limit_falls_back():
    class Exploding(ToyNaive):
        def _predict(self, h, X_future):
            out = super()._predict(h, X_future)
            return {k: v * np.r_[np.ones(h - 1), 1e9] for k, v in out.items()}

    def factory(name, params):
        return Exploding() if name == "boom" else ToyNaive()

    y = pd.Series(np.arange(1.0, 25.0), index=pd.date_range("2022-01-01", periods=24, freq="MS"))
    settings = EngineSettings(models=(ModelSpec("boom"),), fallback="naive", n_jobs=1, plausibility_factor=1e6)
    row = next(r for r in fit_series("a", y, settings, h=3, factory=factory).fits if r.model == "boom")
    assert row.status == "fallback" and row.model_used == "seasonal_naive"
    assert row.error == (
        "boom: ValueError: boom forecast or bound for 2024-03 reaches 2.6e+10, more than 1e+06 "
        "times the series' median absolute value 12.5 (data.plausibility_factor)"
    )
    assert plausibility_scale(y.to_numpy()) == 12.5


def test_the_engine_and_the_contract_judge_with_the_same_scale():
    from features.contract import plausibility_scale as contract_scale

    for values in ([-4.0, 1.0, 2.0], [0.0, 0.0, 0.0, 5.0, -7.0], [0.0], [3e9, 2e9]):
        assert plausibility_scale(np.array(values)) == contract_scale(np.array(values))
