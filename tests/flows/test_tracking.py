from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.tracking import ForecasterSet, mean_metrics
from models import registry


def _series() -> pd.Series:
    idx = pd.date_range("2022-01-01", periods=24, freq="MS", name="ds")
    return pd.Series(np.arange(1.0, 25.0), index=idx)


def test_mean_metrics_same_keys_and_hand_computed_means() -> None:
    metrics = pd.DataFrame({"unique_id": ["a", "a", "b"], "mase": [1.0, 2.0, np.nan], "smape": [10.0, 20.0, 30.0],
                            "rmsse": [0.5, 0.5, 0.5], "coverage_80": [1.0, 0.5, 0.0], "coverage_95": [np.inf, 1.0, 1.0]})
    got = mean_metrics(metrics)
    assert list(got) == ["mase", "smape", "rmsse", "coverage_80", "coverage_95"]
    assert got == {"mase": 1.5, "smape": 20.0, "rmsse": 0.5, "coverage_80": 0.5, "coverage_95": 1.0}
    empty = mean_metrics(pd.DataFrame(columns=["unique_id", "mase"]))
    assert list(empty) == list(got) and all(np.isnan(v) for v in empty.values())


def test_forecaster_set_predicts_by_horizon_and_until() -> None:
    model = registry.create("naive").fit(_series())
    fset = ForecasterSet({"total": model}, {"total": "naive"})
    by_h = fset.predict(None, pd.DataFrame({"unique_id": ["total"], "horizon": [3]}))
    assert list(by_h.columns) == ["unique_id", "ds", "model", "forecast", "lo_80", "hi_80", "lo_95", "hi_95"]
    assert list(by_h["ds"]) == list(pd.date_range("2024-01-01", periods=3, freq="MS"))
    assert list(by_h["forecast"]) == [24.0, 24.0, 24.0]  # naive: the last value
    by_until = fset.predict(None, pd.DataFrame({"unique_id": ["total"], "until": ["2024-03"]}))
    pd.testing.assert_frame_equal(by_h, by_until)
    direct = model.predict(3).reset_index(drop=True)
    np.testing.assert_array_equal(by_h["hi_95"].to_numpy(), direct["hi_95"].to_numpy())


def test_forecaster_set_bad_input_messages() -> None:
    fset = ForecasterSet({"total": registry.create("naive").fit(_series())}, {"total": "naive"})
    with pytest.raises(KeyError, match="row 0: no fitted model for series 'item:ships'; known: total"):
        fset.predict(None, pd.DataFrame({"unique_id": ["item:ships"], "horizon": [1]}))
    with pytest.raises(ValueError, match=r"needs a 'horizon' or an 'until' column; got \['unique_id'\]"):
        fset.predict(None, pd.DataFrame({"unique_id": ["total"]}))
    with pytest.raises(ValueError, match="row 0: until 2023-12 is not after the last observed month 2023-12"):
        fset.predict(None, pd.DataFrame({"unique_id": ["total"], "until": ["2023-12"]}))
    with pytest.raises(ValueError, match="row 0: horizon must be a positive whole number of months; got 0"):
        fset.predict(None, pd.DataFrame({"unique_id": ["total"], "horizon": [0]}))
    with pytest.raises(ValueError, match=r"model_names lacks the model name of series \['x'\]"):
        ForecasterSet({"x": object()}, {})
