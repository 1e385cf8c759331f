"""The content-addressed fit cache (models/core/fitcache.py): a warm run serves every fit from the
cache and publishes the same bytes as the cold one; a changed value misses."""

import numpy as np
import pandas as pd
import pytest

from models.core import fitcache
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


def test_key_depends_on_content_params_seed_and_code(monkeypatch):
    y = pd.Series([1.0, 2.0, np.nan, 4.0], index=pd.date_range("2020-01-01", periods=4, freq="MS"))
    key = fitcache.fit_key("ets", {"damped_trend": True}, y, 3, None, None, n_paths=10, seed=5, timer=[1.0])
    same = y.copy()
    assert fitcache.fit_key("ets", {"damped_trend": True}, same, 3, None, None, n_paths=10, seed=5, timer=[9.0]) == key
    assert fitcache.fit_key("ets", {"damped_trend": False}, y, 3, None, None, n_paths=10, seed=5) != key
    assert fitcache.fit_key("ets", {"damped_trend": True}, y, 3, None, None, n_paths=10, seed=6) != key
    assert fitcache.fit_key("theta", {"damped_trend": True}, y, 3, None, None, n_paths=10, seed=5) != key
    shifted = y.copy()
    shifted.index = shifted.index + pd.DateOffset(months=1)
    assert fitcache.fit_key("ets", {"damped_trend": True}, shifted, 3, None, None, n_paths=10, seed=5) != key
    monkeypatch.setattr(fitcache, "code_version", lambda: "another")
    assert fitcache.fit_key("ets", {"damped_trend": True}, y, 3, None, None, n_paths=10, seed=5) != key


def test_off_and_custom_factories_bypass_the_cache(tmp_path, fit_log):
    calls = []

    def run_model(factory, name, params, *args, **kwargs):
        calls.append(name)
        return name

    assert fitcache.run("off", run_model, fitcache.registry.create, "ets", {}) == "ets"
    assert fitcache.run(str(tmp_path), run_model, lambda n, p: None, "ets", {}) == "ets"
    assert calls == ["ets", "ets"] and not (tmp_path / "joblib").exists()
    assert _outcomes(fit_log) == [("ets", "off"), ("ets", "off")]
