"""What the pipeline process does while Prefect's temporary server starts (flows/supervise.py):
a local MLflow store is created then, not at the run's first stage; anything else is left to the
run, and an error there is left to the run's own MLflow set-up to report."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

from flows.settings import MlflowSettings
from flows.supervise import _prepare_local_mlflow_store


def test_a_local_store_is_created_with_the_experiment(tmp_path):
    store = tmp_path / "mlruns" / "mlflow.db"
    mlflow = MlflowSettings(
        tracking_uri=f"sqlite:///{store}", artifact_location=str(tmp_path / "artifacts"), experiment="early"
    )
    _prepare_local_mlflow_store(SimpleNamespace(mlflow=mlflow))
    with sqlite3.connect(store) as db:
        names = [row[0] for row in db.execute("select name from experiments order by experiment_id")]
    db.close()
    assert names == ["Default", "early"]


def test_a_remote_store_is_not_touched_and_an_error_is_left_to_the_run(tmp_path, monkeypatch):
    import flows.tracking

    calls: list[str] = []
    monkeypatch.setattr(flows.tracking, "configure", lambda settings: calls.append(settings.tracking_uri))
    _prepare_local_mlflow_store(SimpleNamespace(mlflow=MlflowSettings(tracking_uri="http://127.0.0.1:1")))
    assert calls == []

    def broken(settings):
        raise PermissionError("read-only folder")

    monkeypatch.setattr(flows.tracking, "configure", broken)
    _prepare_local_mlflow_store(SimpleNamespace(mlflow=MlflowSettings(tracking_uri=f"sqlite:///{tmp_path}/m.db")))
