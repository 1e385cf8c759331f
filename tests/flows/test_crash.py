"""`exportcast run` killed: no process outlives it, and no run stays RUNNING for good.

Real processes: `exportcast run` on the tiny synthetic dataset with two worker processes, a temp
PREFECT_HOME (so Prefect's temporary server and its database are the test's own), temp MLflow store
and outputs. Each scenario waits until the loky workers run and the MLflow parent run exists, then:

1. SIGKILL of `exportcast run` itself: within 25 s none of its descendants (the pipeline process,
   Prefect's server, the loky workers) is alive; the pipeline process unwound on its parent-death
   signal, so its MLflow run is FAILED and its Prefect flow run CRASHED.
2. SIGKILL of the pipeline process (what the OOM killer does): the supervisor kills what it left and
   exits 137; that run stays RUNNING until the next `exportcast run` marks it FAILED (MLflow, with a
   note naming the dead process and the run that marked it) and CRASHED (Prefect). That next run is
   then stopped with SIGTERM: it exits 143 and leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.flows.conftest import synthetic_frame, write_config

pytestmark = pytest.mark.slow

EXPORTCAST = Path(sys.executable).with_name("exportcast")
START_TIMEOUT = 300.0  # seconds until the workers run (2 loaded cores: imports, Prefect's server)
GONE_TIMEOUT = 40.0  # seconds for every descendant to be gone after the kill


def _start(folder: Path, log_name: str, **extra_env: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EXPORTCAST__", "MLFLOW_"))}
    env.update(
        PREFECT_HOME=str(folder / ".prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        **extra_env,
    )
    log = open(folder / log_name, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [str(EXPORTCAST), "run", "--config", str(folder / "config.yaml")],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return proc


def _mlflow_runs(folder: Path) -> dict[str, tuple[str, dict[str, str]]]:
    """Parent runs: run id -> (status, tags), read straight from the sqlite store."""
    db = folder / "mlruns" / "mlflow.db"
    if not db.is_file():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            runs = dict(con.execute("select run_uuid, status from runs"))
            tags: dict[str, dict[str, str]] = {}
            for run_id, key, value in con.execute("select run_uuid, key, value from tags"):
                tags.setdefault(run_id, {})[key] = value
    except sqlite3.Error:  # tables not created yet, or locked
        return {}
    return {
        rid: (status, tags.get(rid, {}))
        for rid, status in runs.items()
        if "mlflow.parentRunId" not in tags.get(rid, {})
    }


def _flow_run_state(folder: Path, flow_run_id: str) -> tuple[str, str]:
    """(state type, state message) of a Prefect flow run, from the temporary server's database."""
    with sqlite3.connect(f"file:{folder / '.prefect' / 'prefect.db'}?mode=ro", uri=True, timeout=5) as con:
        row = con.execute(
            "select s.type, s.message from flow_run f join flow_run_state s on s.id = f.state_id "
            "where f.id = ? or replace(f.id, '-', '') = ?",
            (flow_run_id, flow_run_id.replace("-", "")),
        ).fetchone()
    assert row is not None, f"flow run {flow_run_id} not in the Prefect database"
    return row[0], row[1] or ""


def _wait_running(
    folder: Path, proc: subprocess.Popen, known: set[str], workers: int = 2
) -> tuple[str, list[psutil.Process]]:
    """Wait until a new MLflow parent run is RUNNING and ``workers`` loky workers run; returns the
    run id and every descendant of ``proc``."""
    deadline = time.monotonic() + START_TIMEOUT
    top = psutil.Process(proc.pid)
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exportcast run ended early ({proc.returncode}):\n{_log(folder)}"
        new = [rid for rid, (status, _) in _mlflow_runs(folder).items() if rid not in known and status == "RUNNING"]
        try:
            procs = top.children(recursive=True)
            n_workers = sum("loky" in " ".join(p.cmdline()) for p in procs)
        except psutil.Error:
            procs, n_workers = [], 0
        if new and n_workers >= workers:
            return new[0], procs
        time.sleep(0.5)
    raise AssertionError(f"no RUNNING MLflow run with {workers} workers after {START_TIMEOUT:.0f} s:\n{_log(folder)}")


def _pipeline_process(procs: list[psutil.Process], top_pid: int) -> psutil.Process:
    [child] = [p for p in procs if p.ppid() == top_pid and "resource_tracker" not in " ".join(p.cmdline())]
    return child


def _assert_all_gone(procs: list[psutil.Process], folder: Path) -> float:
    start = time.monotonic()
    _, alive = psutil.wait_procs(procs, timeout=GONE_TIMEOUT)
    alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, (
        f"still alive {GONE_TIMEOUT:.0f} s after the kill: {[(p.pid, p.cmdline()) for p in alive]}\n{_log(folder)}"
    )
    return time.monotonic() - start


def _log(folder: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(folder.glob("run*.log")))


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        procs = []
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    proc.wait(timeout=30)


def test_sigkill_leaves_no_process_and_no_run_running_for_good(tmp_path: Path) -> None:
    csv = tmp_path / "exports.csv"
    frame = synthetic_frame()
    frame.assign(ds=frame["ds"].dt.strftime("%Y-%m")).to_csv(csv, index=False, float_format="%.2f")
    write_config(tmp_path, csv, **{"runtime.n_jobs": 2})
    started: list[subprocess.Popen] = []
    try:
        # 1. SIGKILL of `exportcast run`: the pipeline process unwinds on its parent-death signal
        clock = time.monotonic()
        first = _start(tmp_path, "run1.log")
        started.append(first)
        run1, procs = _wait_running(tmp_path, first, set())
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        seconds = _assert_all_gone(procs, tmp_path)
        print(
            f"scenario 1: workers after {time.monotonic() - clock - seconds:.0f} s; "
            f"{len(procs)} descendants gone {seconds:.1f} s after SIGKILL"
        )
        status, tags = _mlflow_runs(tmp_path)[run1]
        # FAILED by the unwinding pipeline process; on a loaded machine its grace period can run out
        # first, and then the run is left RUNNING by a dead process, which the next run reaps (below)
        assert status == "FAILED" or (status == "RUNNING" and not psutil.pid_exists(int(tags["exportcast.pid"]))), _log(
            tmp_path
        )
        reaped_later = {run1} if status == "RUNNING" else set()
        assert _flow_run_state(tmp_path, tags["prefect_flow_run_id"])[0] in ("CRASHED", "RUNNING")

        # 2. SIGKILL of the pipeline process: the supervisor cleans up, the run stays RUNNING ...
        second = _start(tmp_path, "run2.log")
        started.append(second)
        run2, procs = _wait_running(tmp_path, second, {run1})
        pipeline = _pipeline_process(procs, second.pid)
        os.kill(pipeline.pid, signal.SIGKILL)
        assert second.wait(timeout=GONE_TIMEOUT) == 137
        _assert_all_gone(procs, tmp_path)
        status, tags = _mlflow_runs(tmp_path)[run2]
        assert status == "RUNNING" and tags["exportcast.pid"] == str(pipeline.pid)
        flow_run2 = tags["prefect_flow_run_id"]
        assert _flow_run_state(tmp_path, flow_run2)[0] == "RUNNING"

        # ... until the next run marks it FAILED / CRASHED, with a note
        third = _start(tmp_path, "run3.log")
        started.append(third)
        run3, procs = _wait_running(tmp_path, third, {run1, run2}, workers=0)  # the reaper runs before ingest
        deadline = time.monotonic() + 30
        while _mlflow_runs(tmp_path)[run2][0] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.5)  # the reaper runs just after the new run is created
        status, tags = _mlflow_runs(tmp_path)[run2]
        note = (
            f"left RUNNING by process {pipeline.pid} on {socket.gethostname()}, dead; marked FAILED by run {run3} at "
        )
        assert status == "FAILED" and tags["mlflow.note.content"].startswith(note)
        assert tags["exportcast.reaped_by"] == run3
        assert all(_mlflow_runs(tmp_path)[r][0] == "FAILED" for r in reaped_later)
        deadline = time.monotonic() + 30  # the Prefect flow run is marked just after the MLflow runs
        while _flow_run_state(tmp_path, flow_run2)[0] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _flow_run_state(tmp_path, flow_run2) == ("CRASHED", tags["mlflow.note.content"])

        # SIGTERM: the run stops, exit 143, nothing left, its run FAILED (a run of its own: the third
        # may have finished by now, its start-up being short since decision 0188; another seed, so
        # that its stages are not the third's from Prefect's cache, which start no worker since the
        # report's charts are kept too, decision 0189)
        assert third.wait(timeout=START_TIMEOUT) == 0, _log(tmp_path)
        fourth = _start(tmp_path, "run4.log", EXPORTCAST__RUNTIME__SEED="1")
        started.append(fourth)
        run4, procs = _wait_running(tmp_path, fourth, set(_mlflow_runs(tmp_path)))
        os.kill(fourth.pid, signal.SIGTERM)
        assert fourth.wait(timeout=GONE_TIMEOUT) == 143
        _assert_all_gone(procs, tmp_path)
        assert _mlflow_runs(tmp_path)[run4][0] == "FAILED"
    finally:
        for proc in started:
            if proc.poll() is None:
                _kill_tree(proc)
