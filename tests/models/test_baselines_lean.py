"""ETS and Theta fitted with less statsmodels work (decision 0184) give the bits of the full
statsmodels path, on real series of data/exports_monthly.csv."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.exponential_smoothing.ets import ETSModel, ETSResults
from statsmodels.tsa.forecasting.theta import ThetaModel

from models.core import registry
from models.core.base import LEVELS
from models.families import baselines

DATA = Path(__file__).resolve().parents[2] / "data" / "exports_monthly.csv"
SERIES = ("total", "item:semiconductors_ministry", "destination:china")


def histories() -> list[tuple[str, pd.Series]]:
    frame = pd.read_csv(DATA, parse_dates=["ds"])
    out = []
    for uid in SERIES:
        y = frame.loc[frame["unique_id"] == uid].set_index("ds")["y"].asfreq("MS")
        assert y.notna().sum() > 60, uid
        out += [(uid, y), (f"{uid} to 18 months before its end", y.iloc[:-18])]
    return out


def _fit_predict_sample(monkeypatch: pytest.MonkeyPatch, name: str, y: pd.Series, **patches: object):
    with monkeypatch.context() as patch:
        for attr, value in patches.items():
            patch.setattr(baselines, attr, value)
        model = registry.create(name).fit(y)
        return model, model.predict(12).to_numpy(), model.sample_paths(12, 1000, seed=3), model.describe()


@pytest.mark.parametrize("label,y", histories(), ids=lambda v: v if isinstance(v, str) else "")
def test_ets_without_the_covariance_is_the_full_fit_to_the_bit(monkeypatch, label, y):
    lean, fc, paths, described = _fit_predict_sample(monkeypatch, "ets", y)
    full, fc0, paths0, described0 = _fit_predict_sample(
        monkeypatch, "ets", y, _ets_classes=lambda: (ETSModel, ETSResults)
    )
    assert type(lean.result_._results).__name__ == "_LeanETSResults"
    assert type(full.result_._results) is ETSResults
    np.testing.assert_array_equal(fc, fc0)
    np.testing.assert_array_equal(paths, paths0)
    assert described == described0
    np.testing.assert_array_equal(lean.result_.params, full.result_.params)
    # the covariance skipped at fit time is still there when asked for, the same numbers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(lean.result_.cov_params(), full.result_.cov_params())


def test_a_lean_ets_fit_pickles_and_forecasts_the_same():
    y = histories()[0][1]
    model = registry.create("ets").fit(y)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict(12).to_numpy(), model.predict(12).to_numpy())
    assert type(again.result_._results).__name__ == "_LeanETSResults"


def _statsmodels_bounds(model: baselines.Theta, h: int) -> dict[str, np.ndarray]:
    """Theta's bounds as before 0184: one prediction_intervals call (and forecast) per level."""
    res, scale = model.result_, model.scale_
    out = {"forecast": np.asarray(res.forecast(h), dtype=float) * scale}
    for level in LEVELS:
        pi = res.prediction_intervals(h, alpha=1 - level / 100)
        out[f"lo_{level}"] = pi["lower"].to_numpy() * scale
        out[f"hi_{level}"] = pi["upper"].to_numpy() * scale
    return out


@pytest.mark.parametrize("label,y", histories(), ids=lambda v: v if isinstance(v, str) else "")
def test_theta_from_the_filter_alone_is_statsmodels_fit_to_the_bit(monkeypatch, label, y):
    lean, fc, paths, described = _fit_predict_sample(monkeypatch, "theta", y)
    full, fc0, paths0, described0 = _fit_predict_sample(monkeypatch, "theta", y, _theta_fit=ThetaModel.fit)
    np.testing.assert_array_equal(fc, fc0)
    np.testing.assert_array_equal(paths, paths0)
    assert described == described0
    for key in ("_b0", "_alpha", "_one_step"):
        assert np.array_equal(np.asarray(getattr(lean.result_, key)), np.asarray(getattr(full.result_, key))), key
    reference = _statsmodels_bounds(lean, 12)
    bands = lean._mean_sd(12)[2]
    assert bands.keys() == reference.keys()
    for key, values in reference.items():
        np.testing.assert_array_equal(bands[key], values, err_msg=key)


def test_theta_bounds_are_recomputed_after_a_refit():
    y = histories()[0][1]
    model = registry.create("theta").fit(y.iloc[:-24])
    early = model.predict(12)["forecast"].to_numpy()
    model.fit(y)
    late = model.predict(12)["forecast"].to_numpy()
    np.testing.assert_array_equal(late, registry.create("theta").fit(y).predict(12)["forecast"].to_numpy())
    assert not np.array_equal(early, late)
