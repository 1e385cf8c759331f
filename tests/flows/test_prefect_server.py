"""Prefect's temporary API server is started with retries (flows/prefect_server.py)."""

from __future__ import annotations

import logging

import httpx
import pytest

from flows import prefect_server
from flows.prefect_server import start_with_retries


class FlakyStart:
    """A start-up that fails ``failures`` times with ``error``, then returns ``"started"``."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "started"


def drop_first_health_poll(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The failure CI met: the first ``httpx.Client.get`` raises RemoteProtocolError, the later ones
    go through. Returns the URLs polled."""
    real_get = httpx.Client.get
    polls: list[str] = []

    def first_poll_dropped(self: httpx.Client, url: str, *args, **kwargs):
        polls.append(str(url))
        if len(polls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return real_get(self, url, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "get", first_poll_dropped)
    return polls


@pytest.fixture
def stops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the half-started servers stopped between attempts (none is really started here)."""
    stopped: list[int] = []
    monkeypatch.setattr(prefect_server, "stop_unstarted_server", lambda: stopped.append(1))
    return stopped


def test_a_transport_error_at_start_up_is_retried_on_a_fresh_server(stops, caplog) -> None:
    start = FlakyStart(2, httpx.RemoteProtocolError("Server disconnected without sending a response."))
    with caplog.at_level(logging.WARNING, logger="exportcast.prefect_server"):
        assert start_with_retries(start, attempts=3) == "started"
    assert start.calls == 3
    assert len(stops) == 2
    assert [r.getMessage() for r in caplog.records] == [
        f"Prefect's temporary API server did not start (attempt {n} of 3: RemoteProtocolError: "
        "Server disconnected without sending a response.); starting a fresh one"
        for n in (1, 2)
    ]


def test_the_last_error_is_raised_when_every_attempt_fails(stops) -> None:
    start = FlakyStart(5, RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server."))
    with pytest.raises(RuntimeError, match="^Timed out while attempting to connect"):
        start_with_retries(start, attempts=3)
    assert start.calls == 3
    assert len(stops) == 3


def test_an_error_a_fresh_start_cannot_cure_is_raised_at_once(stops) -> None:
    start = FlakyStart(1, ValueError("bad setting"))
    with pytest.raises(ValueError, match="^bad setting$"):
        start_with_retries(start)
    assert start.calls == 1
    assert stops == []


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^attempts must be at least 1; got 0$"):
        start_with_retries(lambda: None, attempts=0)


def _tables(path) -> set[str]:
    import sqlite3

    with sqlite3.connect(path) as db:
        names = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
    db.close()
    return names


def test_a_new_home_gets_the_template_and_an_existing_or_other_database_is_left_alone(tmp_path, monkeypatch):
    """seed_new_home copies the template of this Prefect version into a home without a database,
    and does nothing where the home has one or Prefect uses another database."""
    import sqlite3

    import prefect
    from prefect.settings import PREFECT_HOME, PREFECT_SERVER_DATABASE_CONNECTION_URL, temporary_settings

    templates = tmp_path / "templates"
    templates.mkdir()
    with sqlite3.connect(templates / f"prefect-{prefect.__version__}.db") as db:  # a stand-in: no migration run
        db.execute("create table alembic_version (version_num varchar(32))")
        db.execute("insert into alembic_version values ('head-of-the-stand-in')")
    db.close()
    monkeypatch.setattr(prefect_server.subprocess, "run", lambda *a, **k: pytest.fail("the template exists"))
    home = tmp_path / "home"
    with temporary_settings({PREFECT_HOME: str(home)}, restore_defaults={PREFECT_SERVER_DATABASE_CONNECTION_URL}):
        assert prefect_server.home_database() == home / "prefect.db"
        assert prefect_server.seed_new_home(templates) is True
        with sqlite3.connect(home / "prefect.db") as db:
            assert db.execute("select version_num from alembic_version").fetchall() == [("head-of-the-stand-in",)]
        db.close()
        assert prefect_server.seed_new_home(templates) is False  # the home has its database now
        assert [p.name for p in home.iterdir()] == ["prefect.db"]  # no partial file left
    other = f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}"
    with temporary_settings({PREFECT_HOME: str(tmp_path / "home2"), PREFECT_SERVER_DATABASE_CONNECTION_URL: other}):
        assert prefect_server.home_database() is None
        assert prefect_server.seed_new_home(templates) is False
    assert not (tmp_path / "home2").exists()


@pytest.mark.slow
def test_the_template_is_a_database_migrated_by_prefect(tmp_path):
    """The real template, made by Prefect's own migrations: Prefect's tables and one alembic version."""
    template = prefect_server.database_template(tmp_path)
    assert template.name.startswith("prefect-") and prefect_server.database_template(tmp_path) == template
    assert {"flow_run", "task_run", "deployment", "alembic_version"} <= _tables(template)
    assert [p.name for p in tmp_path.iterdir()] == [template.name]  # the temporary home is gone


# ------------------------------------------------------------------ the run's own server (0188)
def test_the_run_server_answers_after_a_dropped_first_poll_and_is_stopped(tmp_path, monkeypatch) -> None:
    """``RunServer``: launched without importing Prefect's server package here, retried on a fresh
    port after the first ``/health`` poll raised RemoteProtocolError, answering at its API URL,
    and ended by ``stop()``."""
    import sys

    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL, temporary_settings

    from flows.prefect_server import RunServer

    real_get, polls = httpx.Client.get, drop_first_health_poll(monkeypatch)
    server_package_before = "prefect.server.api.server" in sys.modules
    with temporary_settings({PREFECT_SERVER_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"}):
        server = RunServer().launch()
        first, first_url = server.process, server.api_url
        try:
            url = server.ready(timeout=120)
            monkeypatch.setattr(httpx.Client, "get", real_get)
            assert first.poll() is not None  # the first start was stopped
            assert polls[0] == f"{first_url}/health" and polls[-1] == f"{url}/health"
            assert url == server.api_url and url.startswith("http://127.0.0.1:")
            assert httpx.get(f"{url}/health", timeout=10).json() is True
            process = server.process
        finally:
            server.stop()
    assert process.poll() is not None and server.process is None
    assert ("prefect.server.api.server" in sys.modules) == server_package_before


def test_a_run_server_that_exits_is_an_error_after_every_attempt(monkeypatch) -> None:
    from flows.prefect_server import RunServer

    class Exited:
        def poll(self) -> int:
            return 1

        def terminate(self) -> None: ...

        def wait(self, timeout: float | None = None) -> int:
            return 1

    launches: list[int] = []

    def launch(self: RunServer) -> RunServer:
        launches.append(1)
        self.port, self.process = 8999, Exited()
        return self

    monkeypatch.setattr(RunServer, "launch", launch)
    with pytest.raises(RuntimeError, match=r"^Prefect's temporary server exited with code 1 before answering$"):
        RunServer().launch().ready(timeout=5, attempts=2)
    assert len(launches) == 2  # the first launch, then a fresh one for the second attempt


def test_with_an_api_url_no_run_server_is_launched() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.prefect_server import launch_run_server, run_on_own_server

    steps: list[str] = []

    def prepare():
        steps.append("prepare")
        return lambda: steps.append(f"run at {PREFECT_API_URL.value()}") or 42

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        assert launch_run_server() is None
        assert run_on_own_server(prepare) == 42
    assert steps == ["prepare", "run at http://127.0.0.1:4200/api"]
