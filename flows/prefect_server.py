"""Prefect's temporary API server, started with retries.

With no ``PREFECT_API_URL``, Prefect starts a temporary ("ephemeral") API server in a subprocess
the first time a client is made, and polls the server's ``/health`` until it answers. That poll
tolerates only a refused connection: any other transport error while uvicorn is still starting
ends the run. CI met one: ``httpx.RemoteProtocolError: Server disconnected without sending a
response`` at the first poll, so every flow test of that session errored at set-up. The server
was never at fault, only the start-up.

:func:`start_with_retries` runs a start-up (Prefect's own: the temporary server of a pipeline run
in :func:`start_temporary_server`, or the test harness in ``tests/flows/conftest.py``). When
the start-up fails with a transport error or a time-out, it stops the half-started server and
starts again on a new port, ``attempts`` times in all. Each failure is logged with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import httpx

log = logging.getLogger("exportcast.prefect_server")

T = TypeVar("T")

#: how often a temporary server is started before the error is raised
START_ATTEMPTS = 3
#: what a start-up may fail with that a fresh start can cure: a transport error of the health
#: poll, or Prefect's RuntimeError when the server did not answer within its time-out
RETRYABLE_START_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, RuntimeError)


def start_with_retries(start: Callable[[], T], attempts: int = START_ATTEMPTS) -> T:
    """``start()``, again after a failed start-up, up to ``attempts`` times; the last error is raised."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1; got {attempts}")
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except RETRYABLE_START_ERRORS as exc:
            stop_unstarted_server()
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


def start_temporary_server(attempts: int = START_ATTEMPTS) -> str | None:
    """With no ``PREFECT_API_URL``: start Prefect's temporary API server now, with retries, so
    that the flow's client finds it running. Returns its API URL, or None when a
    ``PREFECT_API_URL`` is set (then nothing is started)."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    if PREFECT_API_URL.value():
        return None

    def start() -> str:
        server = SubprocessASGIServer()
        server.start(timeout=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        return server.api_url

    return start_with_retries(start, attempts)
