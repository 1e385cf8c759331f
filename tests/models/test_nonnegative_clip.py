"""The one non-negative clip (models.core.base): forecasts, bounds and paths of a series with no negative
value never go below zero, for every model, and the clip is recorded in describe()."""

import numpy as np
import pandas as pd
from toys import ToyMean, ToyNaive

from models.core import registry


def _series(values, start="2020-01-01"):
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="MS"), dtype=float)


def test_predict_clips_bounds_at_zero_and_says_how_many():
    model = ToyNaive().fit(_series([3.0, 0.5]))  # bounds 0.5 -/+ 1 and 0.5 -/+ 2
    fc = model.predict(3)
    assert fc["lo_80"].tolist() == [0.0, 0.0, 0.0]  # would be -0.5
    assert fc["lo_95"].tolist() == [0.0, 0.0, 0.0]  # would be -1.5
    assert fc["forecast"].tolist() == [0.5, 0.5, 0.5]
    assert fc["hi_95"].tolist() == [2.5, 2.5, 2.5]
    assert model.describe() == {
        "nonnegative_clip": "non-negative series: 6 value(s) of predict below zero raised to zero"
    }


def test_sample_paths_are_clipped_and_a_subclass_describe_keeps_its_own_keys():
    model = ToyNaive().fit(_series([0.5]))
    paths = model.sample_paths(2, 200, seed=0)  # 0.5 + N(0, 1): about 31% below zero
    raw = 0.5 + np.random.default_rng(0).standard_normal((200, 1)) * np.ones((1, 2))
    n_below = int((raw < 0).sum())
    assert n_below > 0 and paths.min() == 0.0
    assert np.array_equal(paths, np.maximum(raw, 0.0))
    assert model.describe()["nonnegative_clip"] == (
        f"non-negative series: {n_below} value(s) of sample_paths below zero raised to zero"
    )
    mean_model = ToyMean().fit(_series([1.0, 2.0, 3.0]))  # bounds 2 -/+ 5 and 2 -/+ 10
    mean_model.predict(1)
    assert mean_model.describe() == {
        "mean": 2.0,
        "nonnegative_clip": "non-negative series: 2 value(s) of predict below zero raised to zero",
    }


def test_a_series_with_a_negative_value_is_not_clipped():
    model = ToyNaive().fit(_series([-1.0, 0.5]))
    assert model.predict(1)["lo_95"].tolist() == [-1.5]
    assert model.describe() == {}


def test_no_bound_below_zero_from_the_real_models_on_a_volatile_small_series():
    # months drawn between 0 and 100: the intervals of these models reach far below zero
    y = _series(np.random.default_rng(3).uniform(0.0, 100.0, 36).round(1))
    for name in ("seasonal_naive", "ets", "theta", "naive"):
        model = registry.create(name, {}).fit(y)
        fc = model.predict(12)
        assert (fc.to_numpy() >= 0).all(), name
        assert (model.sample_paths(12, 200, seed=1) >= 0).all(), name
        assert "nonnegative_clip" in model.describe(), name  # there was something to clip
