"""ETS and Theta: statsmodels (the project's models) against statsforecast's AutoETS / AutoTheta,
on the project's rolling backtest of every embedded series (a script, not a test).

    .venv/bin/python benchmarks/ets_theta_statsforecast.py   # statsforecast: pip install -c constraints.txt -e '.[bench]'

Each statsforecast model is wrapped as a model of this script's own factory (``ets_sf_*``,
``theta_sf_*``: point forecast and the model's own 80/95% intervals; no sample paths, which the
rolling backtest does not use) and fitted on the same history as the project's model (missing
months filled by ``seasonal_interpolate``, on a unit scale). Every model runs alone (with the
always-added seasonal naive) in this process (n_jobs 1), on config.yaml's horizon, windows and
step. Printed: wall seconds per model run, and its mean MASE over the series-windows it shares
with the project's model. statsforecast's first call compiles with numba: a warm-up run on one
series comes first and is not timed.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.readers import read_embedded  # noqa: E402
from flows.settings import load_settings  # noqa: E402
from models.core import registry  # noqa: E402
from models.core.backtest import backtest  # noqa: E402
from models.core.base import LEVELS, Forecaster  # noqa: E402
from models.core.engine import ModelSpec  # noqa: E402
from models.families.baselines import SEASON, seasonal_interpolate  # noqa: E402


class _StatsForecast(Forecaster):
    """A statsforecast model on the project's contract (fit on y filled and scaled to unit mean)."""

    min_obs = 10

    def _make(self, positive: bool, n: int) -> Any:
        raise NotImplementedError

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        filled = seasonal_interpolate(y, signed=self.signed_)
        positive = bool((filled > 0).all()) and not self.signed_
        self.scale_ = float(filled.abs().mean()) or 1.0
        self.model_ = self._make(positive, len(filled))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model_.fit((filled / self.scale_).to_numpy(dtype=float))

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        out = self.model_.predict(h, level=list(LEVELS))
        result = {"forecast": out["mean"] * self.scale_}
        for level in LEVELS:
            result[f"lo_{level}"] = out[f"lo-{level}"] * self.scale_
            result[f"hi_{level}"] = out[f"hi-{level}"] * self.scale_
        return result

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        raise NotImplementedError("no sample paths: rolling backtest only")

    def describe(self) -> dict[str, Any]:
        return {}


class ETSSameForm(_StatsForecast):
    """AutoETS fixed to the project's form: multiplicative error and seasonality, damped additive trend."""

    name = "ets_sf_madm"

    def _make(self, positive: bool, n: int) -> Any:
        from statsforecast.models import AutoETS

        seasonal = "M" if positive else "A"
        return AutoETS(
            season_length=SEASON if n >= 2 * SEASON else 1,
            model=f"{seasonal}A{seasonal if n >= 2 * SEASON else 'N'}",
            damped=True,
        )


class ETSAuto(_StatsForecast):
    """AutoETS choosing its form by AICc (ZZZ)."""

    name = "ets_sf_auto"

    def _make(self, positive: bool, n: int) -> Any:
        from statsforecast.models import AutoETS

        return AutoETS(season_length=SEASON if n >= 2 * SEASON else 1, model="ZZZ")


class ThetaStandard(_StatsForecast):
    """statsforecast's Theta (the standard theta method, multiplicative deseasonalisation)."""

    name = "theta_sf"
    min_obs = 4

    def _make(self, positive: bool, n: int) -> Any:
        from statsforecast.models import Theta

        return Theta(
            season_length=SEASON if n >= 2 * SEASON else 1,
            decomposition_type="multiplicative" if positive else "additive",
        )


class ThetaAuto(_StatsForecast):
    """statsforecast's AutoTheta (chooses among the theta variants)."""

    name = "theta_sf_auto"
    min_obs = 4

    def _make(self, positive: bool, n: int) -> Any:
        from statsforecast.models import AutoTheta

        return AutoTheta(
            season_length=SEASON if n >= 2 * SEASON else 1,
            decomposition_type="multiplicative" if positive else "additive",
        )


WRAPPED = {cls.name: cls for cls in (ETSSameForm, ETSAuto, ThetaStandard, ThetaAuto)}


def factory(name: str, params: dict[str, Any]) -> Forecaster:
    """The project's models from the registry, the statsforecast wrappers of this script by name."""
    return WRAPPED[name](**params) if name in WRAPPED else registry.create(name, params)


PAIRS = {"ets": ("ets_sf_madm", "ets_sf_auto"), "theta": ("theta_sf", "theta_sf_auto")}


def run(frame: pd.DataFrame, settings: Any, name: str) -> tuple[float, pd.Series]:
    base = settings.engine_settings()
    engine = dataclasses.replace(base, models=(ModelSpec(name, settings._model_params(name)),), n_jobs=1, fit_cache="")
    bt = settings.backtest
    start = time.perf_counter()
    result = backtest(frame, engine, horizon=bt.horizon, windows=bt.windows, step=bt.step, factory=factory)
    seconds = time.perf_counter() - start
    metrics = result.metrics[result.metrics["model"] == name].set_index(["unique_id", "cutoff"])["mase"]
    return seconds, metrics


def main() -> None:
    settings = load_settings(ROOT / "config.yaml")
    frame = read_embedded(ROOT / "data")[["unique_id", "ds", "y"]]
    one = frame[frame["unique_id"] == "total"]
    for names in PAIRS.values():
        for name in names:
            run(one, settings, name)  # numba compiles here
    seasonal_naive_seconds, _ = run(frame, settings, "seasonal_naive")
    print(
        f"{frame['unique_id'].nunique()} series; horizon {settings.backtest.horizon}, windows {settings.backtest.windows}, "
        f"step {settings.backtest.step}; seasonal naive alone {seasonal_naive_seconds:.1f} s (in every run below)"
    )
    for ours, theirs in PAIRS.items():
        seconds, mase = run(frame, settings, ours)
        print(f"{ours:>14}: {seconds:6.1f} s, mean MASE {mase.mean():.4f} over {len(mase)} series-windows")
        for name in theirs:
            s, m = run(frame, settings, name)
            common = mase.index.intersection(m.index)
            print(
                f"{name:>14}: {s:6.1f} s ({s / seconds:.2f}x), mean MASE {m.loc[common].mean():.4f} "
                f"vs {mase.loc[common].mean():.4f} ({m.loc[common].mean() / mase.loc[common].mean():.3f}x) on {len(common)} common; "
                f"better on {int((m.loc[common] < mase.loc[common]).sum())}"
            )


if __name__ == "__main__":
    main()
