"""Toy forecasters whose forecasts and bounds are computable by hand (shared by the engine and
backtest tests; imported as a sibling module, like pytest does for test files)."""

import numpy as np

from models.core.base import Forecaster


def _bounds(f: np.ndarray, width: float) -> dict[str, np.ndarray]:
    return {"forecast": f, "lo_80": f - width, "hi_80": f + width, "lo_95": f - 2 * width, "hi_95": f + 2 * width}


class ToyNaive(Forecaster):
    """Last observed value; bounds +-1 / +-2; paths = forecast + one common N(0,1) draw per path."""

    name = "naive"

    def _fit(self, y, X):
        self.last_ = float(y.dropna().iloc[-1])

    def _predict(self, h, X_future):
        return _bounds(np.full(h, self.last_), 1.0)

    def _sample_paths(self, h, n_paths, rng, X_future):
        return self.last_ + rng.standard_normal((n_paths, 1)) * np.ones((1, h))


class ToySeasonalNaive(Forecaster):
    """Value of the same month one year before the forecast (last 12 months repeated)."""

    name = "seasonal_naive"
    min_obs = 12

    def _fit(self, y, X):
        self.season_ = y.iloc[-12:].to_numpy()

    def _predict(self, h, X_future):
        return _bounds(np.resize(self.season_, h), 2.0)

    def _sample_paths(self, h, n_paths, rng, X_future):
        return np.tile(np.resize(self.season_, h), (n_paths, 1))


class ToyMean(Forecaster):
    """Mean of the observed history; paths all equal to it (zero noise)."""

    name = "mean"

    def _fit(self, y, X):
        self.mean_ = float(y.mean())

    def _predict(self, h, X_future):
        return _bounds(np.full(h, self.mean_), 5.0)

    def _sample_paths(self, h, n_paths, rng, X_future):
        return np.full((n_paths, h), self.mean_)

    def describe(self):
        return {"mean": self.mean_}
