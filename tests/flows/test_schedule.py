"""The schedule really fires: a real ``prefect server start`` on loopback (its scheduler on, a
temporary PREFECT_HOME, a free port), ``exportcast serve --cron '* * * * *'`` against it (the
deployment of ``flows.deployment.build_deployment`` running the real ``monthly-forecast`` on a
tiny dataset), and a scheduler-created flow run that reaches COMPLETED and publishes.

Bounded: the server must answer within SERVER_START_SECONDS and a run must complete within
RUN_SECONDS of serve starting; both process groups are killed in ``finally``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flows import deployment
from flows.prefect_server import free_port
from tests.flows.conftest import write_config

SERVER_START_SECONDS = 120  # a fresh database is migrated first; on a busy 2-core machine ~70 s
RUN_SECONDS = 150  # up to 60 s to the next minute, then the run itself (~40-100 s here)
POLL_SECONDS = 2.0
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without any PREFECT_* or EXPORTCAST__* setting of the caller, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PREFECT_", "EXPORTCAST__"))}
    env.update(MPLBACKEND="Agg", PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def _stop(process: subprocess.Popen | None) -> None:
    """SIGTERM the process group, SIGKILL it if still there after 10 s (runs, workers included)."""
    if process is None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            # the leader is gone; SIGKILL whatever it left in its group
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
        break


def _wait_until_healthy(server: subprocess.Popen, api: str, log_path: Path) -> None:
    """Poll a started ``prefect server``'s health endpoint until it answers 200; fail with its log's
    tail when it exits or is not up within SERVER_START_SECONDS."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        assert server.poll() is None, f"prefect server exited with {server.returncode}:\n{_tail(log_path)}"
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"server not up in {SERVER_START_SECONDS} s:\n{_tail(log_path)}"
        time.sleep(POLL_SECONDS)


def _tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.mark.slow
def test_served_cron_schedule_fires_on_a_real_server(tmp_path: Path, synthetic_csv: Path) -> None:
    # the real pipeline on 3 series x 60 months, trimmed to the cheapest settings
    config = write_config(
        tmp_path,
        synthetic_csv,
        **{
            "models.enabled": ["seasonal_naive", "naive"],
            "models.n_paths": 20,
            "backtest.windows": 1,
            "institutional.first_year": 2024,
        },
    )
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    env = _clean_env(PREFECT_HOME=str(tmp_path / "prefect-home"))
    bin_dir = Path(sys.executable).parent
    server = serve = None
    started = time.monotonic()
    try:
        with server_log.open("wb") as log:
            server = subprocess.Popen(
                [
                    str(bin_dir / "prefect"),
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
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_until_healthy(server, api, server_log)
        server_seconds = time.monotonic() - started

        with serve_log.open("wb") as log:
            serve = subprocess.Popen(
                [
                    str(bin_dir / "exportcast"),
                    "serve",
                    "--config",
                    str(config),
                    "--source",
                    "csv",
                    "--cron",
                    "* * * * *",
                ],
                env=env | {"PREFECT_API_URL": api},
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        serve_started = time.monotonic()
        deadline = serve_started + RUN_SECONDS
        first: dict | None = None  # the first run the scheduler fired, once it has finished
        dep: dict | None = None
        with httpx.Client(base_url=api, timeout=10) as client:
            while first is None:
                assert serve.poll() is None, f"serve exited with {serve.returncode}:\n{_tail(serve_log)}"
                assert time.monotonic() < deadline, (
                    f"no finished flow run {RUN_SECONDS} s after serve started; serve:\n{_tail(serve_log)}\n"
                    f"server:\n{_tail(server_log, 8)}"
                )
                time.sleep(POLL_SECONDS)
                if dep is None:
                    found = client.post(
                        "/deployments/filter", json={"deployments": {"name": {"any_": [deployment.DEPLOYMENT_NAME]}}}
                    ).json()
                    dep = found[0] if found else None
                    continue
                started_runs = client.post(
                    "/flow_runs/filter",
                    json={
                        "deployments": {"id": {"any_": [dep["id"]]}},
                        "flow_runs": {"state": {"type": {"not_any_": ["SCHEDULED"]}}},
                    },
                ).json()
                if started_runs:
                    earliest = min(started_runs, key=lambda r: r["expected_start_time"])
                    if earliest["state_type"] in TERMINAL:
                        first = earliest
            # serve registered the flash deployment beside it, on its own (default) schedule
            flash = client.post(
                "/deployments/filter", json={"deployments": {"name": {"any_": [deployment.FLASH_DEPLOYMENT_NAME]}}}
            ).json()
        run_seconds = time.monotonic() - serve_started
        run_json = tmp_path / "outputs" / "csv-exports" / "run.json"  # a csv run publishes to its own folder
        published = json.loads(run_json.read_text(encoding="utf-8")) if run_json.exists() else {}
    finally:
        _stop(serve)
        _stop(server)

    # the deployment the server scheduled is the product's: name, cron, default time zone, parameters
    assert dep["name"] == "monthly"
    (schedule,) = dep["schedules"]
    assert schedule["schedule"]["cron"] == "* * * * *"
    assert schedule["schedule"]["timezone"] == "Asia/Seoul"
    assert dep["parameters"] == {"source": "csv", "config_path": str(config)}
    (flash_dep,) = flash
    assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in flash_dep["schedules"]] == [
        ("0 9 11,21 * *", "Asia/Seoul")
    ]
    assert flash_dep["parameters"] == {"source": "csv", "config_path": str(config)}
    # the first run the scheduler fired (not triggered by hand, for a minute boundary) completed ...
    assert first["state_type"] == "COMPLETED", f"{first['name']} ended {first['state_type']}:\n{_tail(serve_log)}"
    assert first["auto_scheduled"] is True
    assert first["expected_start_time"][17:19] == "00", first["expected_start_time"]
    # ... and it is the run that published: run.json carries its flow-run id, on the 3 series
    assert published.get("prefect_flow_run_id") == first["id"], "run.json is not the first run's"
    assert published["data"]["n_series"] == 3 and published["data"]["n_rows"] == 180
    print(f"server up in {server_seconds:.0f} s; first scheduled run COMPLETED {run_seconds:.0f} s after serve started")
