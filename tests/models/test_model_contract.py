"""The contract every registered model honours (see models/core/base.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from models.core import registry
from models.core.base import NotFittedError
from models.families.momentum import feature_names

H = 12
MARKET_COLUMNS = feature_names()
MOMENTUM = {
    "coef": [[0.01, 0.9 - 0.03 * k] + [0.02, -0.01] * 3 for k in range(15)],
    "sigma_ref": [0.03 + 0.005 * k for k in range(15)],
    "features": MARKET_COLUMNS,
}
# fast settings for the slower models; everything else runs with its defaults
FAST: dict[str, dict] = {
    "arima": {"max_p": 1, "max_q": 1, "max_candidates": 6, "working_days": True},
    "prophet": {"n_samples": 200, "working_days": True},
    "ets": {"n_sim": 200},
    "ensemble": {"members": {"seasonal_naive": {}, "naive": {}, "ets": {"n_sim": 200}}},
    "arimax": {"regressor": "lead:test", "max_p": 1, "max_q": 1, "max_candidates": 6},
    "arimax_wsts": {"max_p": 1, "max_q": 1, "max_candidates": 6},
    "arimax_flash": {"max_p": 1, "max_q": 1, "max_candidates": 6},
    # the reference's dynamics, as models.families.leading_extras.LeadingExtras hands them in
    "cycle_wsts": {"intercept": 0.01, "phi": [0.8, 0.1, -0.2]},
    "cycle_blend": {"intercept": 0.01, "phi": [0.8, 0.1, -0.2]},
    # the reference's regressions on the market columns, as models.families.leading_extras.LeadingExtras hands them in
    "chip_momentum": MOMENTUM,
    "chip_momentum_blend": MOMENTUM | {"intercept": 0.01, "phi": [0.8, 0.1, -0.2]},
}
MODELS = registry.available()


def weekday_frame(start: str = "2009-01-01", end: str = "2030-12-01") -> pd.DataFrame:
    """Working days stand-in: Monday-Friday count of each month (no holidays)."""
    idx = pd.date_range(start, end, freq="MS", name="ds")
    nxt = idx + pd.offsets.MonthBegin(1)
    wd = np.busday_count(idx.values.astype("datetime64[D]"), nxt.values.astype("datetime64[D]")).astype(float)
    # the leading-indicator columns of the arimax models (features.leading), here known in every month
    lead = 20e9 * (1 + 0.004 * np.arange(len(idx))) * (1 + 0.05 * np.cos(2 * np.pi * np.arange(len(idx)) / 12))
    market = {c: 0.3 * np.sin(2 * np.pi * np.arange(len(idx)) / (40 + i)) for i, c in enumerate(MARKET_COLUMNS)}
    return pd.DataFrame(
        {
            "working_days": wd,
            "lead:wsts_month:billings_worldwide@1": lead,
            "lead:customs_10d:total": lead / 3,
            "lead:test": lead,
            **market,
        },
        index=idx,
    )


def synthetic(n: int = 120, seed: int = 7) -> pd.Series:
    """Trend + seasonality + noise, positive, around USD 40e9 like Korea's monthly exports."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 30e9 * (1 + 0.004 * t) * (1 + 0.08 * np.sin(2 * np.pi * t / 12)) * np.exp(rng.normal(0, 0.03, n))
    return pd.Series(level, index=pd.date_range("2010-01-01", periods=n, freq="MS", name="ds"), name="y")


@pytest.fixture(scope="module")
def X() -> pd.DataFrame:
    return weekday_frame()


@pytest.fixture(scope="module")
def fitted(X):
    """One fitted model per name on the synthetic series (shared: fitting is the slow part)."""
    y = synthetic()
    return {name: registry.create(name, FAST.get(name, {})).fit(y, X) for name in MODELS}


def test_registry_lists_every_model():
    assert set(MODELS) == {
        "seasonal_naive",
        "naive",
        "ets",
        "theta",
        "arima",
        "prophet",
        "ensemble",
        "arimax",
        "arimax_wsts",
        "arimax_flash",
        "cycle",
        "cycle_wsts",
        "cycle_blend",
        "chip_momentum",
        "chip_momentum_blend",
    }
    for name in MODELS:
        cls = registry.get(name)
        assert cls.name == name


@pytest.mark.parametrize("name", MODELS)
def test_predict_before_fit_raises(name):
    model = registry.create(name, FAST.get(name, {}))
    with pytest.raises(NotFittedError, match=rf"^model '{name}' is not fitted: call fit\(\) before predict\(\)$"):
        model.predict(3)
    with pytest.raises(NotFittedError, match=rf"^model '{name}' is not fitted"):
        model.sample_paths(3, 10)


@pytest.mark.parametrize("name", MODELS)
def test_forecast_index_continues_history_and_bounds_are_ordered(name, fitted, X):
    fc = fitted[name].predict(H, X)
    assert list(fc.columns) == ["forecast", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert fc.index[0] == pd.Timestamp("2020-01-01")  # history ends 2019-12
    assert len(fc) == H and fc.index.freqstr == "MS"
    assert np.isfinite(fc.to_numpy()).all()
    assert (fc.lo_95 <= fc.lo_80).all() and (fc.lo_80 <= fc.forecast).all()
    assert (fc.forecast <= fc.hi_80).all() and (fc.hi_80 <= fc.hi_95).all()
    # intervals are not degenerate, and the forecast is on the series' scale
    assert (fc.hi_95 - fc.lo_95 > 0).all()
    assert fc.forecast.between(20e9, 80e9).all()


@pytest.mark.parametrize("name", MODELS)
def test_inputs_are_not_modified(name, X):
    y = synthetic()
    y_before, X_before = y.copy(), X.copy()
    model = registry.create(name, FAST.get(name, {})).fit(y, X)
    model.predict(H, X)
    model.sample_paths(H, 20, seed=1, X_future=X)
    pd.testing.assert_series_equal(y, y_before)
    pd.testing.assert_frame_equal(X, X_before)


@pytest.mark.parametrize("name", MODELS)
def test_missing_months_are_accepted(name, X):
    y = synthetic()
    y.iloc[60:65] = np.nan  # five months in the middle
    model = registry.create(name, FAST.get(name, {})).fit(y, X)
    fc = model.predict(H, X)
    assert fc.index[0] == pd.Timestamp("2020-01-01")
    assert np.isfinite(fc.to_numpy()).all()
    assert model.n_obs_ == 115


@pytest.mark.parametrize("name", MODELS)
def test_pickle_round_trip_predicts_the_same(name, fitted, X):
    model = fitted[name]
    clone = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(clone.predict(H, X), model.predict(H, X))
    np.testing.assert_allclose(
        clone.sample_paths(H, 50, seed=3, X_future=X), model.sample_paths(H, 50, seed=3, X_future=X)
    )


@pytest.mark.parametrize("name", MODELS)
def test_sample_paths_shape_and_reproducibility(name, fitted, X):
    model = fitted[name]
    a = model.sample_paths(H, 200, seed=11, X_future=X)
    b = model.sample_paths(H, 200, seed=11, X_future=X)
    c = model.sample_paths(H, 200, seed=12, X_future=X)
    assert a.shape == (200, H)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.isfinite(a).all()
    # the draws sit around the point forecast: the median month lies inside the 95% interval
    fc = model.predict(H, X)
    med = np.median(a, axis=0)
    assert ((med >= fc.lo_95.to_numpy()) & (med <= fc.hi_95.to_numpy())).all()


@pytest.mark.parametrize("name", MODELS)
def test_too_short_series_is_refused(name):
    model = registry.create(name, FAST.get(name, {}))
    need = model.min_obs
    y = synthetic(n=need - 1) if need > 1 else None
    if y is None:
        pytest.skip("model accepts a single observation")
    with pytest.raises(Exception, match=rf"{name} needs at least {need} observed months; got {need - 1}"):
        model.fit(y)
