"""The reduced but real run that two slow tests share: four embedded series (the total, the
ministry's semiconductors with its leading cycle blend, China, the United States), every model
family (Prophet included), two backtest windows, the institutional comparison from 2023 and 200
sample paths, each run in its own ``exportcast run`` process with a fresh PREFECT_HOME.

``python -m tests.flows.reduced_run --write-golden`` publishes this run into ``tests/golden/``:
the figures every later commit must publish to the byte (tests/flows/test_rerun_identical.py).
Regenerate them only in a commit that changes what a model computes, and say so in its decision
record."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tests.flows.test_schedule import _clean_env, _tail

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"
SERIES = ["total", "item:semiconductors_ministry", "destination:china", "destination:united_states"]
# a run on 2 cores, with its temporary server: a few minutes on a quiet machine; on 2026-12-06, with
# load 28 from other jobs, the servers alone took 11 min to start
RUN_SECONDS = 1800


def write_config(folder: Path) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    config["data"]["series"] = SERIES
    config["models"]["n_paths"] = 200
    config["backtest"]["windows"] = 2
    config["institutional"].update(first_year=2023, selection_first_year=None)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def start(folder: Path, config: Path, n_jobs: int, hash_seed: str) -> subprocess.Popen:
    """``exportcast run`` in ``folder`` (outputs, MLflow and PREFECT_HOME all inside it)."""
    folder.mkdir()
    env = _clean_env(
        PREFECT_HOME=str(folder / "prefect-home"),
        PYTHONHASHSEED=hash_seed,
        EXPORTCAST__RUNTIME__N_JOBS=str(n_jobs),
        # with workers, the fitting stages at once (decision 0186): the bytes must not depend on the order
        EXPORTCAST__RUNTIME__OVERLAP_STAGES="true" if n_jobs > 1 else "false",
        EXPORTCAST__PUBLISH__DIR=str(folder / "outputs"),
        EXPORTCAST__MLFLOW__TRACKING_URI=f"sqlite:///{folder}/mlflow.db",
        EXPORTCAST__MLFLOW__ARTIFACT_LOCATION=str(folder / "artifacts"),
        EXPORTCAST__RUNTIME__FIT_CACHE=str(folder / "fit-cache"),  # each run fits on its own
    )
    log = (folder / "run.log").open("wb")
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "exportcast"), "run", "--config", str(config)],
        env=env,
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def finish(procs: dict[int, subprocess.Popen], folders: dict[int, Path]) -> None:
    """Wait for every run; kill what is left on a timeout; fail with the log's tail on a bad exit."""
    try:
        codes = {n: proc.wait(timeout=RUN_SECONDS) for n, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    for n, code in codes.items():
        if code != 0:
            raise AssertionError(f"run {n} exited {code}:\n{_tail(folders[n] / 'run.log', 40)}")


def published_csvs(outputs: Path) -> dict[str, bytes]:
    return {p.relative_to(outputs).as_posix(): p.read_bytes() for p in sorted(outputs.rglob("*.csv"))}


def write_golden() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        config = write_config(Path(tmp))
        finish({1: start(folder, config, n_jobs=1, hash_seed="1")}, {1: folder})
        shutil.rmtree(GOLDEN, ignore_errors=True)
        GOLDEN.mkdir(parents=True)
        for name, content in published_csvs(folder / "outputs").items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_bytes(content)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    print(f"wrote {len(published_csvs(GOLDEN))} CSVs to {GOLDEN} (commit {head.strip()})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-golden", action="store_true", help="publish the reduced run into tests/golden/")
    if parser.parse_args().write_golden:
        write_golden()
    else:
        parser.print_help()
