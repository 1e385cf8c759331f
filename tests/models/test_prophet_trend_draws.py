"""Prophet's draws: the trend alone is drawn, the same draws as Prophet's full predictive samples."""

import numpy as np
import pandas as pd

from models.families.prophet_model import ProphetModel, _with_seed


def test_trend_draws_equal_the_trend_of_prophets_predictive_samples():
    t = np.arange(48)
    y = pd.Series(
        1e9
        * np.exp(0.005 * t)
        * (1 + 0.1 * np.sin(2 * np.pi * t / 12))
        * np.exp(np.random.default_rng(1).normal(0, 0.03, 48)),
        index=pd.date_range("2020-01-01", periods=48, freq="MS"),
    )
    X = pd.DataFrame({"working_days": 20.0 + (t % 3)}, index=y.index)
    model = ProphetModel(working_days=True, calibrate=False, n_samples=50).fit(y, X)
    months = pd.date_range("2024-01-01", periods=6, freq="MS")
    future = model._frame(months, pd.DataFrame({"working_days": [21.0, 20, 22, 21, 20, 19]}, index=months), "predict")
    model.model_.uncertainty_samples = 300
    full = np.asarray(_with_seed(11, model.model_.predictive_samples, future)["trend"]).T
    alone = _with_seed(11, model._trend_draws, future, 300)
    assert alone.shape == (300, 6)
    np.testing.assert_array_equal(alone, full)
    assert np.ptp(alone[:, -1]) > 0  # they are draws, not one line
