"""Where the engine's per-series map runs: the Dask side of ``models.core.engine.run_batches``.

``run_batches`` keeps joblib (loky processes on this machine) as the default; with
``executor='dask'`` it hands its series to ``dask_map``, which runs them in batches on a Dask
distributed cluster: the scheduler at ``address`` (an existing cluster, e.g. ``tcp://host:8786``,
whose workers have exportcast installed), or, when ``address`` is empty, a LocalCluster of
``n_workers`` single-threaded worker processes.

- **One cluster per run.** Inside ``dask_session()`` (the pipeline opens one around a whole run)
  the first ``dask_client`` call starts the LocalCluster (or connects to ``address``) and every
  later call with the same address and worker count reuses that client; the session closes it
  on exit, also when the run fails or is interrupted (a signal raises in the main thread, so the
  ``with`` unwinds). Outside a session each call starts and closes its own cluster, as before.
  A stage whose result is cached never starts one: the cluster is started on first use.

Nothing here knows about series or models: a batch is a list of items and a function of the
list. The models never see the executor.

- **Batches.** A task per series would cost the scheduler about a millisecond each against a
  5 ms seasonal-naive fit, so series are sent in batches (``dask_batches``): most expensive
  first (longest-processing-time order), about ``BATCHES_PER_WORKER`` batches per worker and
  at most ``MAX_BATCH`` series per batch, so a lost batch loses little work.
- **Bounded memory.** At most ``IN_FLIGHT_PER_WORKER`` batches per worker are submitted at a
  time; each result is gathered as soon as it completes (``distributed.as_completed``), handed
  to the caller and released on the cluster before the next batch is sent. Neither the inputs
  nor the results of the whole run sit on the cluster at once.
- **Lost workers.** When a worker process dies mid-batch, Dask reschedules that batch on another
  worker; on the LocalCluster started here this happens once (``allowed-failures: 1``), and a
  second death makes the batch fail with ``KilledWorker``, which ``dask_map`` yields as a
  ``WorkerLost`` for that batch only; the caller records its series as failed. An existing
  cluster applies its own ``distributed.scheduler.allowed-failures`` (Dask's default is 3).
  Any other exception from a batch is a bug and propagates.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

__all__ = [
    "EXECUTORS",
    "WorkerLost",
    "dask_batches",
    "dask_map",
    "dask_client",
    "dask_session",
    "BATCHES_PER_WORKER",
    "MAX_BATCH",
    "IN_FLIGHT_PER_WORKER",
]

EXECUTORS: tuple[str, ...] = ("joblib", "dask")
BATCHES_PER_WORKER = 8  # batches per worker when the series are few (keeps every worker busy to the end)
MAX_BATCH = 64  # series per batch at most (64 x 5 ms seasonal-naive fits ~ 0.3 s per task)
IN_FLIGHT_PER_WORKER = 2  # batches submitted per worker before one is gathered
ALLOWED_FAILURES = 1  # LocalCluster: a batch whose worker died is rescheduled once

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class WorkerLost(RuntimeError):
    """A batch whose worker process died on every attempt Dask allowed."""


def dask_batches(costs: Sequence[float], n_workers: int) -> list[list[int]]:
    """Indices of the items in batches: most expensive first, about BATCHES_PER_WORKER batches
    per worker, at most MAX_BATCH items each, consecutive in cost order."""
    order = sorted(range(len(costs)), key=lambda i: (-float(costs[i]), i))
    if not order:
        return []
    size = max(1, min(MAX_BATCH, math.ceil(len(order) / (BATCHES_PER_WORKER * max(1, n_workers)))))
    return [order[i : i + size] for i in range(0, len(order), size)]


class _Session:
    """The clients opened inside one ``dask_session``, by (address, n_workers), closed at its end."""

    def __init__(self) -> None:
        self.clients: dict[tuple[str, int], tuple[Any, ExitStack]] = {}

    def close(self) -> None:
        while self.clients:
            key, (_, stack) = self.clients.popitem()
            try:
                stack.close()
            except Exception as exc:  # noqa: BLE001 - closing must go on to the next cluster
                log.warning(
                    "closing the Dask cluster %s failed: %s: %s", key[0] or "LocalCluster", type(exc).__name__, exc
                )


_session: _Session | None = None
_session_lock = threading.Lock()


@contextmanager
def dask_session() -> Iterator[None]:
    """Reuse one Dask client (and its LocalCluster) for every ``dask_client`` call inside: the
    cluster is started on first use and closed when the session ends (normally or not). Nested
    sessions share the outer one."""
    global _session
    with _session_lock:
        if _session is not None:
            outer = True
        else:
            outer = False
            _session = _Session()
    if outer:
        yield
        return
    try:
        yield
    finally:
        with _session_lock:
            session, _session = _session, None
        if session is not None:
            session.close()


@contextmanager
def dask_client(address: str, n_workers: int) -> Iterator[Any]:
    """A ``distributed.Client`` on the scheduler at ``address``, or on a LocalCluster of
    ``n_workers`` single-threaded processes when it is empty. Inside a ``dask_session`` the
    client is the session's (started on first use, closed by the session); outside one it is
    started here and closed on exit."""
    session = _session
    if session is None:
        with _open_client(address, n_workers) as client:
            yield client
        return
    key = (address, n_workers)
    if key not in session.clients:
        stack = ExitStack()
        try:
            client = stack.enter_context(_open_client(address, n_workers))
        except BaseException:
            stack.close()
            raise
        session.clients[key] = (client, stack)
    yield session.clients[key][0]


@contextmanager
def _open_client(address: str, n_workers: int) -> Iterator[Any]:
    import dask
    from distributed import Client, LocalCluster

    if address:
        try:
            client = Client(address, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise RuntimeError(
                f"runtime.dask_address {address}: cannot reach the Dask scheduler ({type(exc).__name__}: {exc})"
            ) from None
        with client:
            yield client
        return
    # one task per worker at a time: the longest-first order is kept to the end, and a worker
    # that dies takes only the batch it was running with it
    with dask.config.set(
        {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES, "distributed.scheduler.worker-saturation": 1.0}
    ):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


def dask_map(
    func: Callable[[list[T]], list[R]],
    items: Sequence[T],
    costs: Sequence[float],
    *,
    address: str = "",
    n_workers: int = 2,
    label: str = "batch",
) -> Iterator[tuple[list[int], list[R] | WorkerLost]]:
    """Run ``func`` on batches of ``items`` (``dask_batches`` of ``costs``, sized for the
    cluster's worker threads) on a Dask cluster; yield ``(item indices, results)`` as batches
    complete (in completion order), or ``(item indices, WorkerLost)`` for a batch whose worker
    died on every attempt. At most IN_FLIGHT_PER_WORKER batches per worker are on the cluster."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    if not items:
        return
    with dask_client(address, n_workers) as client:
        workers = sum(client.nthreads().values()) or n_workers
        batches = dask_batches(costs, workers)
        window = max(1, IN_FLIGHT_PER_WORKER * workers)
        run = uuid.uuid4().hex[:8]
        numbers: dict[str, int] = {}
        pending = iter(range(len(batches)))
        completed = as_completed(loop=client.loop)

        def submit_next() -> None:
            k = next(pending, None)
            if k is not None:
                future = client.submit(func, [items[i] for i in batches[k]], key=f"{label}-{run}-{k}", pure=False)
                numbers[future.key] = k
                completed.add(future)

        for _ in range(window):
            submit_next()
        for future in completed:
            k = numbers.pop(future.key)
            if future.status == "error":
                exc = future.exception()
                if not isinstance(exc, KilledWorker):
                    future.result()  # re-raises with its traceback: a bug, not a lost worker
                first = str(exc).split(". ")[0].rstrip(".")  # Dask's explanation, without the help links
                out: list[R] | WorkerLost = WorkerLost(
                    f"worker process died running {label} batch {k + 1} of "
                    f"{len(batches)} on every attempt ({type(exc).__name__}: {first})"
                )
            else:
                out = future.result()
            future.release()
            del future
            submit_next()
            yield batches[k], out
