"""Prefect's temporary API server, started with retries.

With no ``PREFECT_API_URL``, Prefect starts a temporary ("ephemeral") API server in a subprocess
the first time a client is made, and polls the server's ``/health`` until it answers. That poll
tolerates only a refused connection: any other transport error while uvicorn is still starting
ends the run. CI met one: ``httpx.RemoteProtocolError: Server disconnected without sending a
response`` at the first poll, so every flow test of that session errored at set-up. The server
was never at fault, only the start-up.

:func:`start_with_retries` runs a start-up (a run's own :class:`RunServer`, or Prefect's own
temporary server of the test harness in ``tests/flows/conftest.py``). When
the start-up fails with a transport error or a time-out, it stops the half-started server and
starts again on a new port, ``attempts`` times in all. Each failure is logged with its reason.

A new PREFECT_HOME has no database: the server's first start creates it by Prefect's migrations,
about 17 s of a 30 s start here (decision 0187). :func:`database_template` makes one migrated,
empty database per Prefect version (``make install`` does, and the first start that finds none),
and :func:`seed_new_home` copies it into a new home before the server starts: the migrations
then find the database at their head and do nothing.

:class:`RunServer` is the temporary server of one pipeline run, started at the pipeline
process's first step with the command and environment of Prefect's own ``SubprocessASGIServer``,
but without importing Prefect's server package here (8.5-11.8 s: the client imports it only to
start the subprocess, which imports it again). The run's client then reaches it by
``PREFECT_API_URL``, and the server boots while the pipeline imports (decision 0188).
"""

from __future__ import annotations

import atexit
import logging
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

log = logging.getLogger("exportcast.prefect_server")

T = TypeVar("T")

#: how often a temporary server is started before the error is raised
START_ATTEMPTS = 3
#: what a start-up may fail with that a fresh start can cure: a transport error of the health
#: poll, or Prefect's RuntimeError when the server did not answer within its time-out
RETRYABLE_START_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, RuntimeError)
#: the migrated, empty Prefect databases (``prefect-<version>.db``), git-ignored
TEMPLATE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "prefect-database"


def start_with_retries(
    start: Callable[[], T], attempts: int = START_ATTEMPTS, stop: Callable[[], None] | None = None
) -> T:
    """``start()``, again after a failed start-up (``stop()`` first: default, Prefect's own
    temporary server is stopped and forgotten), up to ``attempts`` times; the last error is raised."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1; got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except RETRYABLE_START_ERRORS as exc:
            (stop or stop_unstarted_server)()
            if attempt == attempts:
                raise
            log.warning(
                "Prefect's temporary API server did not start (attempt %d of %d: %s: %s); starting a fresh one",
                attempt,
                attempts,
                type(exc).__name__,
                exc,
            )
    raise AssertionError("unreachable")  # pragma: no cover


def stop_unstarted_server() -> None:
    """Stop the default temporary server (the one a client or the test harness uses) and forget
    it, so that the next start makes a new one on a new port."""
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer._instances.pop(None, None)
    if server is not None:
        server.stop()


#: uvicorn's exit status when its port was taken meanwhile (Prefect's server then picks another)
PORT_TAKEN = 3


class RunServer:
    """Prefect's temporary API server for one run: ``launch()`` starts the subprocess and returns at
    once, ``ready()`` waits for its ``/health`` (a failed or timed-out start-up is retried on a new
    port, as :func:`start_with_retries` does) and returns its API URL, ``stop()`` ends it (also at
    this process's exit). The command and environment are ``SubprocessASGIServer``'s (Prefect 3.9)."""

    def __init__(self) -> None:
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        atexit.register(self.stop)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def launch(self) -> RunServer:
        import prefect
        from prefect.settings import get_current_settings

        seed_new_home()
        self.port = free_port()
        env = {
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        app_dir = str(prefect.__module_path__.parent)
        args = ["-m", "uvicorn", "--app-dir", app_dir, "--factory", "prefect.server.api.server:create_app"]
        args += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
        self.process = subprocess.Popen([sys.executable, *args], env=env)
        return self

    def ready(self, timeout: float, attempts: int = START_ATTEMPTS) -> str:
        def start() -> str:
            if self.process is None:
                self.launch()
            return self._wait(timeout)

        return start_with_retries(start, attempts, stop=self.stop)

    def _wait(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                code = self.process.poll()
                if code == PORT_TAKEN:
                    self.launch()
                    continue
                if code is not None:
                    raise RuntimeError(f"Prefect's temporary server exited with code {code} before answering")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return self.api_url
                except httpx.ConnectError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"Prefect's temporary server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def launch_run_server() -> RunServer | None:
    """With no ``PREFECT_API_URL``: a :class:`RunServer` launched now (None: a server is named)."""
    from prefect.settings import PREFECT_API_URL

    return None if PREFECT_API_URL.value() else RunServer().launch()


def run_on_own_server(prepare: Callable[[], Callable[[], T]]) -> T:
    """A supervised run (the pipeline's, the flash nowcast's) on its own temporary server: with no
    ``PREFECT_API_URL`` the server is launched first, ``prepare()`` (imports, set-up) runs while it
    boots, then what ``prepare`` returned runs with ``PREFECT_API_URL`` naming it; the server is
    stopped after. With a ``PREFECT_API_URL`` it just runs there."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    server = launch_run_server()
    try:
        run = prepare()
        if server is None:
            return run()
        url = server.ready(timeout=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        with temporary_settings(updates={PREFECT_API_URL: url}):
            return run()
    finally:
        if server is not None:
            server.stop()


def free_port() -> int:
    """A port of 127.0.0.1 free now, from Prefect's range for its temporary servers (8000-8999):
    below the kernel's ephemeral range (32768-60999 here), so no outgoing connection takes it
    before the server binds it (the tests' servers use it too)."""
    for _ in range(50):
        port = random.randrange(8000, 9000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8000-8999 for Prefect's temporary server")


def home_database() -> Path | None:
    """The sqlite file of Prefect's database when it is the default one, in PREFECT_HOME (None:
    another database, e.g. the team set's PostgreSQL)."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    url = settings.server.database.connection_url.get_secret_value()
    default = Path(settings.home) / "prefect.db"
    return default if url == f"sqlite+aiosqlite:///{default}" else None


def database_template(directory: Path = TEMPLATE_DIR) -> Path:
    """A migrated, empty Prefect database for the installed Prefect version: made once (Prefect's
    own ``prefect server database upgrade`` in a temporary PREFECT_HOME, copied out whole by
    sqlite's backup), then found. Written to a temporary name and renamed: two makers at once
    (parallel tests) both succeed, and a reader never sees half a file."""
    import prefect

    template = directory / f"prefect-{prefect.__version__}.db"
    if template.is_file():
        return template
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="prefect-template-", dir=directory) as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=home, PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
        subprocess.run(
            [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        _copy_database(Path(home) / "prefect.db", template)
    return template


def seed_new_home(directory: Path = TEMPLATE_DIR) -> bool:
    """Before a server starts on a PREFECT_HOME without a database: a copy of the migrated, empty
    database of this Prefect version (made first if there is none). False, and nothing done, when
    the home has its database or Prefect uses another database."""
    database = home_database()
    if database is None or database.exists():
        return False
    template = database_template(directory)
    database.parent.mkdir(parents=True, exist_ok=True)
    _copy_database(template, database)
    return True


def _copy_database(source: Path, target: Path) -> None:
    """``source`` copied whole to ``target`` by sqlite's backup (a write-ahead log included), through
    a temporary file renamed into place."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with sqlite3.connect(source) as src, sqlite3.connect(partial) as dst:
            src.backup(dst)
        src.close()
        dst.close()
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)  # left only by a failed copy


if __name__ == "__main__":  # make install: the database template of the installed Prefect version
    if sys.argv[1:] != ["--template"]:
        raise SystemExit("usage: python -m flows.prefect_server --template")
    print(f"Prefect database template: {database_template()}")
