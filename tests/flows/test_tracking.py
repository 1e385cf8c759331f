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


def test_parent_run_gets_tables_as_artifacts_and_headline_metrics(tmp_path) -> None:
    import mlflow

    from flows.settings import MlflowSettings
    from flows.tracking import PipelineTracker

    settings = MlflowSettings(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path / "artifacts"),
                              experiment="t", registered_model="t-model")
    table = pd.DataFrame({"target_year": [2024], "institution": ["KITA"], "institution_ape": [1.5]})
    with PipelineTracker(settings, run_name="r", tags={"k": "v"}, params={"p": 1}) as tracker:
        tracker.log_tables({"institutional_comparison.csv": table}, "institutional")
        tracker.log_headline({"model_mape_vs_kita": 7.5, "skipped": float("nan")})
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri)
    run = client.get_run(tracker.run_id)
    assert run.data.metrics == {"model_mape_vs_kita": 7.5}
    assert [a.path for a in client.list_artifacts(tracker.run_id, "institutional")] == ["institutional/institutional_comparison.csv"]
    local = client.download_artifacts(tracker.run_id, "institutional/institutional_comparison.csv", str(tmp_path))
    pd.testing.assert_frame_equal(pd.read_csv(local), table)
