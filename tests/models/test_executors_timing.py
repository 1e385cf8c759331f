"""The engine times each model's fit where it is fitted (ForecastResult.fit_seconds), out of the
fit rows, so those stay identical across runs and executors."""

import time

import numpy as np
import pandas as pd
from toys import ToyMean, ToyNaive, ToySeasonalNaive

from models.core.engine import EngineSettings, ModelSpec, forecast

FIT, PREDICT = 0.1, 0.5  # seconds slept by ToySlow's fit and predict


class ToySlow(ToyMean):
    name = "slow"

    def _fit(self, y, X):
        time.sleep(FIT)
        super()._fit(y, X)

    def _predict(self, h, X_future):
        time.sleep(PREDICT)  # not fitting: must not be counted
        return super()._predict(h, X_future)


class ToyBroken(ToyMean):
    name = "broken"

    def _fit(self, y, X):
        time.sleep(FIT)
        raise RuntimeError("no convergence")


TOYS = {cls.name: cls for cls in (ToyNaive, ToySeasonalNaive, ToyMean, ToySlow, ToyBroken)}


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": f"s{i}",
                    "ds": pd.date_range("2019-01-01", periods=36, freq="MS"),
                    "y": 50.0 + rng.standard_normal(36).cumsum(),
                }
            )
            for i in range(n)
        ],
        ignore_index=True,
    )


def test_fit_seconds_are_timed_per_model_around_the_fit_only():
    settings = EngineSettings(models=(ModelSpec("slow"), ModelSpec("broken"), ModelSpec("mean")), n_jobs=1, n_paths=10)
    res = forecast(_frame(3), settings, horizon=3, factory=lambda name, params: TOYS[name](**params))
    assert set(res.fit_seconds) == {"seasonal_naive", "slow", "broken", "mean"}
    # 3 fits of 0.1 s each; the 3 predicts of 0.5 s are not in it
    assert 3 * FIT <= res.fit_seconds["slow"] < 3 * FIT + 3 * PREDICT
    # the failed fits count for the model that was asked for (its rows fell back to seasonal_naive)
    assert 3 * FIT <= res.fit_seconds["broken"] < 3 * FIT + 3 * PREDICT
    assert res.fits.set_index(["unique_id", "model"]).loc[("s0", "broken"), "status"] == "fallback"
    assert (
        0 < res.fit_seconds["mean"] < res.fit_seconds["slow"]
        and 0 < res.fit_seconds["seasonal_naive"] < res.fit_seconds["slow"]
    )
    assert "fit_seconds" not in "".join(res.fits["description"])  # the fit rows stay run-independent
