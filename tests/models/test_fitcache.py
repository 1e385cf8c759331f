"""The content-addressed fit cache (models/core/fitcache.py): a warm run serves every fit from the
cache and publishes the same bytes as the cold one; a changed value misses."""

import numpy as np
import pandas as pd
import pytest

from models.core import fitcache, registry
from models.core.backtest import backtest
from models.core.engine import EngineSettings, ModelSpec, forecast

MODELS = (ModelSpec("seasonal_naive"), ModelSpec("ets", {"damped_trend": True}), ModelSpec("theta"))


def _frame(bump: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    ds = pd.date_range("2015-01-01", periods=72, freq="MS")
    t = np.arange(72)
    parts = []
    for i, uid in enumerate(("a", "b")):
        y = (100 + 10 * i) * np.exp(0.01 * t) * (1 + 0.1 * np.sin(2 * np.pi * t / 12)) * np.exp(rng.normal(0, 0.02, 72))
        parts.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    frame = pd.concat(parts, ignore_index=True)
    frame.loc[(frame["unique_id"] == "b") & (frame["ds"] == "2019-06-01"), "y"] *= bump
    return frame


def _published(frame: pd.DataFrame, settings: EngineSettings) -> bytes:
    """The CSV bytes of a forecast (with annual totals from sample paths) and a 2-window backtest."""
    fc = forecast(frame, settings, horizon=12, annual_year=2021)
    bt = backtest(frame, settings, horizon=6, windows=2, step=6)
    return b"".join(
        t.to_csv(index=False, float_format="%.17g").encode()
        for t in (fc.forecasts, fc.annual, fc.fits, bt.forecasts, bt.metrics)
    )


def _outcomes(log) -> list[tuple[str, str]]:
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [(line.split("\t")[0], line.split("\t")[2]) for line in lines]


@pytest.fixture
def fit_log(tmp_path, monkeypatch):
    log = tmp_path / "fits.log"
    monkeypatch.setenv(fitcache.LOG_ENV, str(log))
    return log


def test_warm_run_is_all_hits_and_byte_identical_and_a_changed_value_misses(tmp_path, fit_log):
    settings = EngineSettings(models=MODELS, n_jobs=1, n_paths=50, fit_cache=str(tmp_path / "cache"))
    cold = _published(_frame(), settings)
    first = _outcomes(fit_log)
    # 2 series x 3 models x (1 forecast + 2 backtest windows)
    assert len(first) == 18 and {o for _, o in first} == {"miss"}
    warm = _published(_frame(), settings)
    second = _outcomes(fit_log)
    assert len(second) == 18 and {o for _, o in second} == {"hit"}
    assert warm == cold
    off = EngineSettings(models=MODELS, n_jobs=1, n_paths=50)
    assert _published(_frame(), off) == cold  # the cache changes nothing
    assert {o for _, o in _outcomes(fit_log)} == {"off"}

    _published(_frame(bump=1.5), settings)  # one value of series b, 2019-06, inside every history
    changed = _outcomes(fit_log)
    assert len(changed) == 18
    assert sum(o == "miss" for _, o in changed) == 9  # series b: 3 models x 3 cutoffs
    assert sum(o == "hit" for _, o in changed) == 9  # series a unchanged


def test_key_depends_on_content_params_regressors_and_code(monkeypatch):
    y = pd.Series([1.0, 2.0, np.nan, 4.0], index=pd.date_range("2020-01-01", periods=4, freq="MS"))
    X = pd.DataFrame({"working_days": [20.0, 21, 22, 20]}, index=y.index)
    ets = registry.create("ets", {"damped_trend": True})
    key = fitcache.fit_key(ets, y, None, False)
    assert fitcache.fit_key(registry.create("ets", {}), y.copy(), None, False) == key  # defaults filled in
    assert fitcache.fit_key(registry.create("ets", {"damped_trend": False}), y, None, False) != key
    assert fitcache.fit_key(registry.create("theta", {}), y, None, False) != key
    assert fitcache.fit_key(ets, y, None, True) != key
    assert fitcache.fit_key(ets, y, X, False) != key
    assert fitcache.fit_key(ets, y, X.assign(working_days=X["working_days"] + 1), False) != fitcache.fit_key(
        ets, y, X, False
    )
    shifted = y.copy()
    shifted.index = shifted.index + pd.DateOffset(months=1)
    assert fitcache.fit_key(ets, shifted, None, False) != key
    monkeypatch.setattr(fitcache, "code_version", lambda: "another")
    assert fitcache.fit_key(ets, y, None, False) != key


def test_a_fit_is_shared_across_horizons_and_paths(tmp_path, fit_log):
    y = _frame().query("unique_id == 'a'").set_index("ds")["y"]
    first = fitcache.fitted(str(tmp_path), registry.create("ets", {}), y, None, lambda m: m.fit(y))
    again = fitcache.fitted(str(tmp_path), registry.create("ets", {}), y, None, lambda m: m.fit(y))
    assert _outcomes(fit_log) == [("ets", "miss"), ("ets", "hit")]
    assert again is not first
    pd.testing.assert_frame_equal(again.predict(7), first.predict(7), check_exact=True)
    np.testing.assert_array_equal(again.sample_paths(5, 20, seed=3), first.sample_paths(5, 20, seed=3))


def test_off_and_models_from_outside_models_are_fitted_each_time(tmp_path, fit_log):
    class Outside:
        name = "outside"
        params: dict = {}

    calls = []
    y = pd.Series([1.0, 2.0], index=pd.date_range("2020-01-01", periods=2, freq="MS"))
    ets = registry.create("ets", {})
    assert fitcache.fitted("off", ets, y, None, calls.append) is ets
    outside = Outside()
    assert fitcache.fitted(str(tmp_path), outside, y, None, calls.append) is outside
    assert calls == [ets, outside] and not (tmp_path / "joblib").exists()
    assert _outcomes(fit_log) == [("ets", "off"), ("outside", "off")]
