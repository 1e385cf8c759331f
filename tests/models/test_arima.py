"""Automatic SARIMAX: selection, log scale, paths, exogenous handling, failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.core import registry
from models.core.base import ModelInputError
from models.families.arima import ArimaFitError, css_fit


def weekday_frame(start: str = "2009-01-01", end: str = "2030-12-01") -> pd.DataFrame:
    idx = pd.date_range(start, end, freq="MS", name="ds")
    nxt = idx + pd.offsets.MonthBegin(1)
    days = np.busday_count(idx.values.astype("datetime64[D]"), nxt.values.astype("datetime64[D]"))
    return pd.DataFrame({"working_days": days.astype(float)}, index=idx)


def synthetic(n: int = 120, seed: int = 7) -> pd.Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 30e9 * (1 + 0.004 * t) * (1 + 0.08 * np.sin(2 * np.pi * t / 12)) * np.exp(rng.normal(0, 0.03, n))
    return pd.Series(level, index=pd.date_range("2010-01-01", periods=n, freq="MS", name="ds"), name="y")


FAST = {"max_p": 1, "max_q": 1, "max_candidates": 6}


@pytest.fixture(scope="module")
def model():
    return registry.create("arima", FAST).fit(synthetic())


def test_describe_reports_the_selected_specification(model):
    info = model.describe()
    assert info["log"] is True
    assert len(info["order"]) == 3 and info["seasonal_order"][3] == 12
    assert info["seasonal_order"][1] == 1  # strong 8% seasonal swing against 3% noise
    assert info["spec"].startswith(f"ARIMA({info['order'][0]},{info['order'][1]},{info['order'][2]})")
    assert np.isfinite(info["aicc"]) and info["seasonal_strength"] > 0.64
    assert len(info["candidates"]) <= 6


def test_forecast_is_the_lognormal_mean_and_bounds_are_exp_quantiles(model):
    res = model._results()
    pred = res.get_forecast(12)
    mu, var = np.asarray(pred.predicted_mean), np.asarray(pred.var_pred_mean)
    fc = model.predict(12)
    np.testing.assert_allclose(fc.forecast, np.exp(mu + var / 2))
    np.testing.assert_allclose(fc.lo_95, np.exp(mu - 1.959963984540054 * np.sqrt(var)))
    paths = model.sample_paths(12, 20000, seed=0)
    np.testing.assert_allclose(np.log(paths).mean(axis=0), mu, atol=0.004)
    np.testing.assert_allclose(np.log(paths).std(axis=0), np.sqrt(var), rtol=0.03)
    np.testing.assert_allclose(paths.mean(axis=0), fc.forecast, rtol=0.01)


def test_non_positive_series_is_modelled_on_its_own_scale():
    y = synthetic() - 40e9  # crosses zero
    info = registry.create("arima", FAST).fit(y).describe()
    assert info["log"] is False
    with pytest.raises(ModelInputError, match=r"^arima: log=true needs a strictly positive series$"):
        registry.create("arima", {**FAST, "log": True}).fit(y)


def test_short_series_gets_no_seasonal_differencing():
    info = registry.create("arima", FAST).fit(synthetic(n=30)).describe()
    assert info["seasonal_order"][1] == 0


def test_working_days_are_required_at_predict_time_once_used():
    X = weekday_frame()
    fitted = registry.create("arima", {**FAST, "working_days": True}).fit(synthetic(), X)
    assert fitted.describe()["working_days"] is True
    with pytest.raises(
        ModelInputError,
        match=r"^arima: fitted with the working-day regressor; predict needs X with a 'working_days' column$",
    ):
        fitted.predict(3)
    fc = fitted.predict(3, X)
    assert np.isfinite(fc.to_numpy()).all()
    # without the flag the frame is ignored
    assert registry.create("arima", FAST).fit(synthetic(), X).describe()["working_days"] is False


def test_every_candidate_failing_raises_a_clear_error():
    flat = pd.Series(5e9, index=pd.date_range("2015-01-01", periods=48, freq="MS"))
    with pytest.raises(ArimaFitError, match=r"^arima: every starting candidate failed \(d=0, D=0\): "):
        registry.create("arima", FAST).fit(flat)


def test_css_recovers_an_ar1_coefficient():
    rng = np.random.default_rng(3)
    e = rng.normal(size=2000)
    w = np.zeros(2000)
    for t in range(1, 2000):
        w[t] = 0.6 * w[t - 1] + e[t]
    _, theta = css_fit(w, None, (1, 0, 0, 0), constant=False, n_drop=1)
    assert theta[0] == pytest.approx(0.6, abs=0.03)


def test_bad_settings_are_refused():
    with pytest.raises(ModelInputError, match=r"^arima: max_p must be a non-negative integer; got -1$"):
        registry.create("arima", {"max_p": -1})
    with pytest.raises(ModelInputError, match=r"^arima: estimation must be 'css' or 'mle'; got 'ols'$"):
        registry.create("arima", {"estimation": "ols"})


# ------------------------------------------------------------------ accuracy on real data
DATA = __import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "exports_monthly.csv"
RAW = (
    __import__("pathlib").Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "raw"
    / "Navy10021+Korea_Export_Prediction_App"
    / "bi_data.csv"
)


def korea_total() -> pd.Series:
    """Korea's total monthly exports (USD): the embedded dataset, else the raw staged file."""
    if DATA.exists():
        frame = pd.read_csv(DATA, parse_dates=["ds"])
        return frame[frame["unique_id"] == "total"].set_index("ds")["y"].astype(float).sort_index()
    raw = pd.read_csv(RAW)
    return pd.Series(raw["KOR_export"].to_numpy(float), index=pd.to_datetime(raw["Date"]).rename("ds")).sort_index()


def mape_2019(name: str, params: dict | None = None, cutoff: str = "2018-12") -> float:
    y = korea_total()
    train = y[:cutoff]
    actual = y[pd.Timestamp(cutoff) + pd.offsets.MonthBegin(1) :].iloc[:12]
    fc = registry.create(name, params or {}).fit(train).predict(12)
    return float(np.mean(np.abs(fc["forecast"].to_numpy() - actual.to_numpy()) / actual.to_numpy()) * 100)


@pytest.mark.slow
def test_ets_beats_seasonal_naive_on_2019_total():
    snaive = mape_2019("seasonal_naive")
    ets = mape_2019("ets")
    # measured 2026-11 on data/exports_monthly.csv: seasonal_naive 11.66%, ets 7.71%
    assert ets < snaive
    assert ets < 9.5


@pytest.mark.slow
def test_arima_2019_total_within_its_measured_error():
    # measured: arima 14.96% (ARIMA(2,1,0)(1,0,0)[12] with drift on logs) against seasonal_naive
    # 11.66%. 2019 followed the 2018 peak (exports fell 10%): the drift carried 2018's growth on.
    assert mape_2019("arima") < 17.0


@pytest.mark.slow
def test_arima_beats_seasonal_naive_on_2019_total():
    # 2019 fell 10% after the 2018 peak; with the drift a searched term (not imposed) ARIMA
    # measured 10.74% MAPE against seasonal naive's 11.66% (with an imposed drift it was 14.96%)
    assert mape_2019("arima") < mape_2019("seasonal_naive")


@pytest.mark.slow
def test_arima_beats_seasonal_naive_across_origins():
    # measured MAPE (arima vs seasonal_naive), forecasting the next 12 months from each cutoff:
    # 2016-12 6.90 vs 13.42, 2017-12 4.82 vs 7.19, 2018-12 10.74 vs 11.66, 2019-12 8.91 vs 11.25,
    # 2022-12 5.50 vs 11.18, 2023-12 2.49 vs 7.53; means 6.56 vs 10.37 (2020-21 skipped: COVID origins)
    cutoffs = ["2016-12", "2017-12", "2018-12", "2019-12", "2022-12", "2023-12"]
    arima = np.mean([mape_2019("arima", cutoff=c) for c in cutoffs])
    snaive = np.mean([mape_2019("seasonal_naive", cutoff=c) for c in cutoffs])
    assert arima < snaive
    assert arima < 8.0  # measured 6.56


def _fill_freed_heap(byte: int) -> None:
    """Allocate blocks of the sizes a CSS fit's Jacobian takes, fill them with ``byte`` and free
    them: the next allocations of that size reuse this memory (glibc malloc)."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    sizes = [size for size in (512, 2048, 8192, 14256, 16632, 32768) for _ in range(8)]
    blocks = [libc.malloc(size) for size in sizes]
    for block, size in zip(blocks, sizes):
        libc.memset(block, byte, size)
    for block in blocks:
        libc.free(block)


def test_css_fit_does_not_read_freed_heap_memory():
    """scipy 1.17's C MINPACK reads one element past the Jacobian when it recomputes the last
    column's norm (docs/decisions/0124): the US ARIMA(2,1,2)(1,0,1) CSS fit ended a few 1e-6
    elsewhere after the freed memory held 0x7f bytes. ``css_fit`` gives the same bits whatever
    the heap held."""
    frame = pd.read_csv(DATA, parse_dates=["ds"])
    y = frame[frame["unique_id"] == "destination:united_states"].set_index("ds")["y"].astype(float).sort_index()
    w = np.diff(np.log(y.to_numpy()))
    fits = {}
    for byte in (0x00, 0x7F, 0xFF, 0x7F):
        _fill_freed_heap(byte)
        fits.setdefault(css_fit(w, None, (2, 2, 1, 1), constant=False, n_drop=14)[1].tobytes(), []).append(byte)
    assert len(fits) == 1, f"{len(fits)} different fits: {list(fits.values())}"
    theta = np.frombuffer(next(iter(fits)))
    assert theta.round(4).tolist() == [-0.5591, -0.1029, 0.0108, -0.2025, 0.988, -0.8315]
