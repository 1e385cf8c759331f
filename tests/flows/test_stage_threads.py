"""flows.pipeline.StageThreads: the fitting stages at once on one worker pool (decision 0186)."""

from __future__ import annotations

import threading
import time

import pytest

# imported in each test: the worker processes import this module for its functions, and need no more


def _sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def _map_of_sleeps(n: int, seconds: float) -> list[int]:
    """A stage's map over the shared loky pool (as models.core.engine.run_batches does)."""
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky"):
        return list(
            Parallel(n_jobs=2, return_as="generator", pre_dispatch="all")(
                delayed(_sleep_then)(seconds, i) for i in range(n)
            )
        )


def test_stages_run_at_once_in_their_own_threads_and_keep_their_results() -> None:
    from flows.pipeline import StageThreads

    seen: list[str] = []

    def stage(name: str, seconds: float) -> str:
        seen.append(threading.current_thread().name)
        time.sleep(seconds)
        return name

    started = time.perf_counter()
    with StageThreads(at_once=True) as threads:
        futures = [threads.start(stage, f"s{i}", 0.5) for i in range(3)]
        results = [f.result() for f in futures]
    elapsed = time.perf_counter() - started
    assert results == ["s0", "s1", "s2"]
    assert all(name.startswith("exportcast-stage") for name in seen)
    assert elapsed < 1.4  # three 0.5 s stages at once, not 1.5 s one after another


def test_with_one_worker_the_stages_run_here_one_after_another() -> None:
    from flows.pipeline import StageThreads

    order: list[tuple[str, str]] = []

    def stage(name: str) -> str:
        order.append((name, threading.current_thread().name))
        return name

    with StageThreads(at_once=False) as threads:
        first, second = threads.start(stage, "a"), threads.start(stage, "b")
    assert (first.result(), second.result()) == ("a", "b")
    assert order == [("a", threading.current_thread().name), ("b", threading.current_thread().name)]


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")  # no loky traceback either
def test_a_failed_stage_ends_the_worker_pool_and_the_other_stages_at_once() -> None:
    """Stage b's map would take 20 s (8 tasks of 5 s on 2 workers); stage a fails after 1 s: the
    block raises a's error within seconds, and b's thread has ended (its workers were ended)."""
    from flows.pipeline import StageThreads

    _map_of_sleeps(2, 0.0)  # the workers are up before the clock starts

    def failing() -> None:
        time.sleep(1.0)
        raise ValueError("stage a failed")

    started = time.perf_counter()
    with pytest.raises(ValueError, match="^stage a failed$"):
        with StageThreads(at_once=True) as threads:
            slow = threads.start(_map_of_sleeps, 8, 5.0)
            threads.start(failing).result()
    assert time.perf_counter() - started < 12.0
    assert slow.done()
    assert slow.exception() is not None  # its map lost its workers
    assert _map_of_sleeps(3, 0.0) == [0, 1, 2]  # the next map gets new workers
