"""`exportcast serve` against a real Prefect server (issue 19 item 7): one run of a deployment at a
time, and a stopped serve leaves no flow-run process behind and no run RUNNING.

One ``prefect server start`` for the module (its own PREFECT_HOME under tmp, a free port, its
scheduler on), then two serve sessions on the tiny synthetic CSV (3 series, 2 loky workers, so a
flow run is a ``prefect.engine`` process with loky children):

- two runs of ``monthly`` requested at once: one runs, the other is CANCELLED by the server
  without ever being RUNNING (``concurrency_limit: 1``, ``CANCEL_NEW``); then serve gets SIGINT;
- one run, then the serve process alone gets SIGKILL (its child learns it by its parent-death
  signal).

Either way every process serve had started (the runner's child, the engine, its loky workers)
is gone within STOP_SECONDS of the signal, and the run ended CRASHED or CANCELLED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from flows import deployment
from flows.prefect_server import free_port
from tests.flows.conftest import write_config
from tests.flows.test_schedule import POLL_SECONDS, _clean_env, _stop, _tail, _wait_until_healthy

STOP_SECONDS = 15  # issue 19 item 7: no flow-run process alive 15 s after the stop
RUNNING_SECONDS = 180  # serve up, the runner's poll, the engine's start and its first loky worker, under load
ENDED = {"CRASHED", "CANCELLED"}

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")]


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A real ``prefect server start`` on loopback: (API URL, environment for its clients)."""
    folder = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = _clean_env(PREFECT_HOME=str(folder / "prefect-home"))
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--scheduler",
                "--no-ui",
                "--analytics-off",
            ],
            env=env,
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(server, api, log_path)
        # the runner polls for due runs every 2 s instead of 10
        yield api, env | {"PREFECT_API_URL": api, "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    finally:
        _stop(server)


def _start_serve(tmp_path: Path, synthetic_csv: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    config = write_config(
        tmp_path,
        synthetic_csv,
        **{
            "models.enabled": ["seasonal_naive", "naive", "ets"],
            "models.n_paths": 50,
            "backtest.windows": 2,
            "institutional.first_year": 2024,
            "runtime.n_jobs": 2,
        },
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "exportcast"),
                "serve",
                "--config",
                str(config),
                "--source",
                "csv",
            ],  # the default crons: only the runs requested here
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return serve, log_path


def _monthly_id(client: httpx.Client, serve: subprocess.Popen, log_path: Path) -> str:
    deadline = time.monotonic() + RUNNING_SECONDS
    while True:
        assert serve.poll() is None, f"serve exited with {serve.returncode}:\n{_tail(log_path)}"
        found = client.post(
            "/deployments/filter", json={"deployments": {"name": {"any_": [deployment.DEPLOYMENT_NAME]}}}
        ).json()
        if found:
            return found[0]["id"]
        assert time.monotonic() < deadline, f"no deployment {RUNNING_SECONDS} s after serve started:\n{_tail(log_path)}"
        time.sleep(POLL_SECONDS)


def _create_run(client: httpx.Client, dep_id: str) -> str:
    """A new flow run of the deployment; a server error is retried, as Prefect's own client retries
    5xx answers (the test server's SQLite can answer 500 "database is locked" under load)."""
    deadline = time.monotonic() + RUNNING_SECONDS
    while True:
        response = client.post(f"/deployments/{dep_id}/create_flow_run", json={})
        if response.status_code < 500:
            assert response.status_code in (200, 201), f"{response.status_code}: {response.text[:500]}"
            return response.json()["id"]
        assert time.monotonic() < deadline, f"{response.status_code}: {response.text[:500]}"
        time.sleep(POLL_SECONDS)


def _state(client: httpx.Client, run_id: str) -> str:
    return client.get(f"/flow_runs/{run_id}").json()["state_type"]


def _state_history(client: httpx.Client, run_id: str) -> list[str]:
    return [s["type"] for s in client.get("/flow_run_states/", params={"flow_run_id": run_id}).json()]


def _engine_with_workers(
    serve: subprocess.Popen, log_path: Path, client: httpx.Client, run_ids: list[str]
) -> tuple[str, list[psutil.Process]]:
    """Wait until one of ``run_ids`` is RUNNING in a ``prefect.engine`` process with loky workers;
    return its id and every process serve has started by then."""
    deadline = time.monotonic() + RUNNING_SECONDS
    while True:
        assert serve.poll() is None, f"serve exited with {serve.returncode}:\n{_tail(log_path)}"
        procs = psutil.Process(serve.pid).children(recursive=True)
        lines = []
        for proc in procs:
            try:
                lines.append(" ".join(proc.cmdline()))
            except psutil.Error:
                continue
        if any("prefect.engine" in line for line in lines) and any(
            "loky" in line or "joblib" in line for line in lines
        ):
            running = [r for r in run_ids if _state(client, r) == "RUNNING"]
            if running:
                return running[0], procs
        states = {r: _state(client, r) for r in run_ids}
        assert time.monotonic() < deadline, (
            f"no run in an engine with workers {RUNNING_SECONDS} s after serve started ({states}):\n{_tail(log_path)}"
        )
        assert not all(s in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} for s in states.values()), (
            f"the runs ended before they could be stopped: {states}"
        )
        time.sleep(0.5)


def _stopped_within(procs: list[psutil.Process], seconds: float) -> list[str]:
    """What of ``procs`` is still alive ``seconds`` after now (their command lines)."""
    _, alive = psutil.wait_procs(procs, timeout=seconds)
    out = []
    for proc in alive:
        try:
            out.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
        except psutil.Error:
            continue
    return out


def test_one_run_at_a_time_and_sigint_leaves_no_flow_run_behind(
    prefect_api, tmp_path: Path, synthetic_csv: Path
) -> None:
    api, env = prefect_api
    serve, log_path = _start_serve(tmp_path, synthetic_csv, env)
    try:
        with httpx.Client(base_url=api, timeout=10) as client:
            dep_id = _monthly_id(client, serve, log_path)
            runs = [_create_run(client, dep_id) for _ in range(2)]
            running, procs = _engine_with_workers(serve, log_path, client, runs)
            (other,) = [r for r in runs if r != running]
            deadline = time.monotonic() + 30
            while _state(client, other) != "CANCELLED" and time.monotonic() < deadline:
                time.sleep(0.5)
            other_state, other_history = _state(client, other), _state_history(client, other)
            # SIGINT (Ctrl-C) to serve alone
            stopped = time.monotonic()
            serve.send_signal(signal.SIGINT)
            alive = _stopped_within(procs, STOP_SECONDS)
            seconds = time.monotonic() - stopped
            code = serve.wait(timeout=30)
            final = _state(client, running)
            message = client.get(f"/flow_runs/{running}").json()["state"]["message"]
    finally:
        _stop(serve)
    # the second run was refused by the deployment's concurrency limit before it started
    assert other_state == "CANCELLED", f"{other_history}:\n{_tail(log_path)}"
    assert "RUNNING" not in other_history and "PENDING" not in other_history, other_history
    assert not alive, f"alive {seconds:.0f} s after SIGINT: {alive}"
    assert final in ENDED, f"{final} ({message})\n{_tail(log_path)}"
    assert code == 128 + signal.SIGINT, _tail(log_path)
    print(f"SIGINT: every process gone in {seconds:.1f} s; run {final} ({message})")


def test_sigkill_of_serve_leaves_no_flow_run_behind(prefect_api, tmp_path: Path, synthetic_csv: Path) -> None:
    api, env = prefect_api
    serve, log_path = _start_serve(tmp_path, synthetic_csv, env)
    try:
        with httpx.Client(base_url=api, timeout=10) as client:
            dep_id = _monthly_id(client, serve, log_path)
            run = _create_run(client, dep_id)
            running, procs = _engine_with_workers(serve, log_path, client, [run])
            stopped = time.monotonic()
            os.kill(serve.pid, signal.SIGKILL)  # the serve process alone, not its group
            alive = _stopped_within(procs, STOP_SECONDS)
            seconds = time.monotonic() - stopped
            deadline = time.monotonic() + 10
            while _state(client, running) not in ENDED and time.monotonic() < deadline:
                time.sleep(0.5)
            final = _state(client, running)
            message = client.get(f"/flow_runs/{running}").json()["state"]["message"]
    finally:
        _stop(serve)
    assert not alive, f"alive {seconds:.0f} s after SIGKILL of serve: {alive}"
    assert final in ENDED, f"{final} ({message})\n{_tail(log_path)}"
    print(f"SIGKILL: every process gone in {seconds:.1f} s; run {final} ({message})")
