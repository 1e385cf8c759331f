"""ETS and ARIMA forecast a horizon once per fitted model (decision 0188): the ensemble asks its
fitted members for the same forecast again, and gets the same bits without a second simulation
or Kalman forecast."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.core import registry
from models.families import arima, baselines


def series(n: int = 60) -> pd.Series:
    rng = np.random.default_rng(4)
    t = np.arange(n)
    values = 20e9 * (1 + 0.004 * t) * (1 + 0.08 * np.sin(2 * np.pi * t / 12)) * np.exp(rng.normal(0, 0.03, n))
    return pd.Series(values, index=pd.date_range("2019-01-01", periods=n, freq="MS", name="ds"))


def working_days(index: pd.DatetimeIndex, extra: float = 0.0) -> pd.DataFrame:
    nxt = index + pd.offsets.MonthBegin(1)
    days = np.busday_count(index.values.astype("datetime64[D]"), nxt.values.astype("datetime64[D]")) + extra
    return pd.DataFrame({"working_days": days.astype(float)}, index=index)


def counting(monkeypatch, cls: type, method: str) -> list[int]:
    calls, original = [], getattr(cls, method)

    def counted(self, h, *args):
        calls.append(h)
        return original(self, h, *args)

    monkeypatch.setattr(cls, method, counted)
    return calls


def test_ets_simulates_a_horizon_once_and_gives_the_same_bits(monkeypatch):
    calls = counting(monkeypatch, baselines.ETS, "_simulate")
    model = registry.create("ets", {"n_sim": 200}).fit(series())
    first, again = model.predict(6), model.predict(6)
    assert calls == [6]
    assert first.to_numpy().tobytes() == again.to_numpy().tobytes()
    first.iloc[0, 0] = -1.0  # the caller's frame is its own
    assert model.predict(6).iloc[0, 0] != -1.0
    model.predict(9)
    assert calls == [6, 9]
    fresh = registry.create("ets", {"n_sim": 200}).fit(series())
    assert fresh.predict(9).to_numpy().tobytes() == model.predict(9).to_numpy().tobytes()


def test_arima_forecasts_once_per_horizon_and_regressor_values(monkeypatch):
    calls = counting(monkeypatch, arima.Arima, "_predict_uncached")
    y = series()
    months = pd.date_range(y.index[0], periods=len(y) + 12, freq="MS")
    X = working_days(months)
    model = registry.create("arima", {"working_days": True}).fit(y, X.loc[y.index])
    future = X.iloc[-12:]
    first, again = model.predict(12, future), model.predict(12, future)
    assert calls == [12]
    assert first.to_numpy().tobytes() == again.to_numpy().tobytes()
    other = model.predict(12, working_days(future.index, extra=1.0))
    assert calls == [12, 12]
    assert not np.array_equal(other.to_numpy(), first.to_numpy())
