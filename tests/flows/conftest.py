"""Shared fixtures for the flow tests: one Prefect test server per session, isolated Prefect
result storage, a tiny synthetic dataset (3 series x 60 months) written as a user CSV, and a
config that points every store (outputs, MLflow sqlite + artifacts) into a temp folder."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

SERIES = ("total", "item:semiconductors", "destination:china")
N_MONTHS = 60
FIRST_MONTH = "2020-01-01"  # 60 months: 2020-01 .. 2024-12, target year 2025


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory):
    """A local Prefect server on loopback (temp database) and results stored in a temp folder."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    from flows.prefect_server import start_with_retries

    storage = tmp_path_factory.mktemp("prefect-storage")
    # with retries: one transport error during the server's start-up once errored every flow test
    with contextlib.ExitStack() as harness:
        start_with_retries(lambda: harness.enter_context(prefect_test_harness(server_startup_timeout=60)))
        with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: storage, PREFECT_RESULTS_PERSIST_BY_DEFAULT: False}):
            yield storage


def synthetic_frame(seed: int = 7) -> pd.DataFrame:
    """Seeded series: level x (1 + trend) x seasonal factor x lognormal noise (USD)."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range(FIRST_MONTH, periods=N_MONTHS, freq="MS")
    month = ds.month.to_numpy()
    frames = []
    for i, uid in enumerate(SERIES):
        level = 10 ** (9 + i * 0.5)
        trend = 1 + 0.004 * (i + 1) * np.arange(N_MONTHS)
        season = 1 + 0.1 * np.sin(2 * np.pi * (month - 1) / 12 + i)
        noise = rng.lognormal(0.0, 0.03, N_MONTHS)
        frames.append(pd.DataFrame({"unique_id": uid, "ds": ds, "y": level * trend * season * noise}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def synthetic_csv(tmp_path: Path) -> Path:
    path = tmp_path / "exports.csv"
    frame = synthetic_frame()
    frame.assign(ds=frame["ds"].dt.strftime("%Y-%m")).to_csv(path, index=False, float_format="%.2f")
    return path


def write_config(folder: Path, csv_path: Path, **overrides: Any) -> Path:
    """A fast config: 3 cheap models and no leading one, 2 backtest windows, 200 paths, 1 process, stores in ``folder``."""
    config: dict[str, Any] = {
        "target_year": 2025,
        "data": {"source": "csv", "path": str(csv_path)},
        "models": {
            "enabled": ["seasonal_naive", "naive", "ets"],
            "params": {"ets": {"damped_trend": True}},
            "n_paths": 200,
            "leading": {},
        },  # the synthetic series have no semiconductors for the shipped blend
        "backtest": {"horizon": 6, "windows": 2, "step": 6},
        "institutional": {"first_year": 2021},
        "publish": {"dir": "outputs"},
        "mlflow": {
            "tracking_uri": "sqlite:///mlruns/mlflow.db",
            "artifact_location": "mlruns/artifacts",
            "experiment": "exportcast-test",
            "registered_model": "exportcast-test-champion",
        },
        "runtime": {"n_jobs": 1, "seed": 0},
    }
    for dotted, value in overrides.items():
        node = config
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def fast_config(tmp_path: Path, synthetic_csv: Path) -> Path:
    return write_config(tmp_path, synthetic_csv)


@pytest.fixture(autouse=True)
def _no_exportcast_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from a clean environment: no EXPORTCAST__ overrides leak in from the shell."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("EXPORTCAST__"):
            monkeypatch.delenv(name)
