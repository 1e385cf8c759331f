"""Reruns are byte-identical (issue 19 item 8): two real ``exportcast run`` processes on the embedded
data, at once, each with a fresh PREFECT_HOME (its own temporary Prefect server and database, and
no cached result shared: results are stored under PREFECT_HOME) and its own hash seed, one with
``runtime.n_jobs`` 1 (every fit in the pipeline process) and one with 2 (loky workers), publish the
same bytes in every CSV; and no published CSV carries a timing.

The config is reduced but real: four embedded series (the total, the ministry's semiconductors with
its leading cycle blend, China, the United States), every model family (Prophet included), two
backtest windows, the institutional comparison from 2023, 200 sample paths."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.flows.test_schedule import _clean_env, _tail

REPO = Path(__file__).resolve().parents[2]
SERIES = ["total", "item:semiconductors_ministry", "destination:china", "destination:united_states"]
# both runs at once on 2 cores, each starting its temporary server: a few minutes on a quiet machine;
# on 2026-12-06, with load 28 from other jobs, the servers alone took 11 min to start
RUN_SECONDS = 1800


def _config(folder: Path) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["data"]["series"] = SERIES
    config["models"]["n_paths"] = 200
    config["backtest"]["windows"] = 2
    config["institutional"].update(first_year=2023, selection_first_year=None)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def _start(folder: Path, config: Path, n_jobs: int, hash_seed: str) -> subprocess.Popen:
    folder.mkdir()
    env = _clean_env(PREFECT_HOME=str(folder / "prefect-home"), PYTHONHASHSEED=hash_seed,
                     EXPORTCAST__RUNTIME__N_JOBS=str(n_jobs), EXPORTCAST__PUBLISH__DIR=str(folder / "outputs"),
                     EXPORTCAST__MLFLOW__TRACKING_URI=f"sqlite:///{folder}/mlflow.db",
                     EXPORTCAST__MLFLOW__ARTIFACT_LOCATION=str(folder / "artifacts"))
    log = (folder / "run.log").open("wb")
    return subprocess.Popen([str(Path(sys.executable).parent / "exportcast"), "run", "--config", str(config)],
                            env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def _csvs(outputs: Path) -> dict[str, bytes]:
    return {p.relative_to(outputs).as_posix(): p.read_bytes() for p in sorted(outputs.rglob("*.csv"))}


def _first_difference(a: bytes, b: bytes) -> str:
    for n, (x, y) in enumerate(zip(a.decode().splitlines(), b.decode().splitlines())):
        if x != y:
            return f"line {n + 1}:\n  {x[:240]}\n  {y[:240]}"
    return f"lengths {len(a)} vs {len(b)}"


@pytest.mark.slow
def test_two_runs_with_fresh_prefect_homes_and_other_n_jobs_publish_the_same_bytes(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runs = {n: tmp_path / f"n_jobs_{n}" for n in (1, 2)}
    procs = {n: _start(folder, config, n, hash_seed=str(n)) for n, folder in runs.items()}
    try:
        codes = {n: proc.wait(timeout=RUN_SECONDS) for n, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for n, code in codes.items():
        assert code == 0, f"n_jobs {n} exited {code}:\n{_tail(runs[n] / 'run.log', 40)}"
    one, two = (_csvs(runs[n] / "outputs") for n in (1, 2))
    assert len(one) >= 10 and sorted(one) == sorted(two)
    different = {name: _first_difference(one[name], two[name]) for name in one if one[name] != two[name]}
    assert not different, "\n".join(f"{name}: {diff}" for name, diff in different.items())
    # the runs forecast the four series, with the institutional comparison
    annual = pd.read_csv(runs[1] / "outputs" / "forecast_annual.csv")
    assert sorted(annual["unique_id"].unique()) == sorted(SERIES)
    assert len(pd.read_csv(runs[1] / "outputs" / "institutional_comparison.csv")) > 0
    # no timing in any published CSV: timings belong to run.json and MLflow
    for name, content in one.items():
        assert b"seconds" not in content, f"{name} carries a timing"
