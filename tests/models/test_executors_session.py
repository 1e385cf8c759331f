"""One Dask cluster per run (models.core.executors.dask_session, opened by flows.pipeline.execute):
the cluster is started once across stages, closed at the end of the run, on failure, and no
Dask process outlives a killed run."""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from toys import ToyMean, ToyNaive, ToySeasonalNaive

import models.core.executors as executors
from models.core.backtest import backtest
from models.core.engine import EngineSettings, ModelSpec, forecast, run_batches
from models.core.executors import dask_client, dask_session

TOYS = {cls.name: cls for cls in (ToyNaive, ToySeasonalNaive, ToyMean)}


def toy_factory(name, params):
    return TOYS[name](**params)


class _FakeOpen:
    """Stands in for executors._open_client: counts the clusters opened and closed."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, int]] = []
        self.closed: list[tuple[str, int]] = []

    @contextmanager
    def __call__(self, address: str, n_workers: int):
        self.opened.append((address, n_workers))
        try:
            yield f"client {len(self.opened)}"
        finally:
            self.closed.append((address, n_workers))


@pytest.fixture
def fake(monkeypatch) -> _FakeOpen:
    fake = _FakeOpen()
    monkeypatch.setattr(executors, "_open_client", fake)
    return fake


# ----------------------------------------------------------------------------- no cluster (mocks)
def test_without_a_session_every_call_opens_and_closes_its_own(fake):
    for _ in range(2):
        with dask_client("", 2) as client:
            assert fake.closed == fake.opened[:-1]
    assert client == "client 2"
    assert fake.opened == fake.closed == [("", 2), ("", 2)]


def test_a_session_opens_one_client_on_first_use_and_closes_it_at_the_end(fake):
    with dask_session():
        assert fake.opened == []  # started on first use only: a run whose stages are all cached starts none
        for _ in range(3):
            with dask_client("", 2) as client:
                assert client == "client 1"
        with dask_session():  # nested: shares the outer session, does not close it
            with dask_client("", 2) as client:
                assert client == "client 1"
        assert fake.opened == [("", 2)] and fake.closed == []
        with dask_client("tcp://127.0.0.1:8786", 2) as other:  # another cluster: its own client
            assert other == "client 2"
    assert sorted(fake.closed) == [("", 2), ("tcp://127.0.0.1:8786", 2)]
    assert executors._session is None
    with dask_client("", 2) as client:  # after the session: back to one cluster per call
        assert client == "client 3"


def test_a_failed_or_interrupted_run_closes_the_cluster(fake):
    for exc in (ValueError("data.path: row 3 column y is not a number"), KeyboardInterrupt("interrupted by SIGTERM")):
        with pytest.raises(type(exc)):
            with dask_session():
                with dask_client("", 2):
                    pass
                raise exc
    assert fake.opened == fake.closed == [("", 2), ("", 2)]
    assert executors._session is None


def test_the_pipeline_runs_every_stage_in_one_session(fake, monkeypatch):
    import flows.pipeline as pipeline

    def stages(settings, *, data_dir, before_publish):
        for _ in ("backtest", "forecast", "institutional"):
            with dask_client("", 2):
                pass
        return "published"

    monkeypatch.setattr(pipeline, "_execute", stages)
    from flows.settings import load_settings

    assert pipeline.execute(load_settings(None)) == "published"
    assert fake.opened == fake.closed == [("", 2)]


# ----------------------------------------------------------------------------- real LocalCluster
def _frame(n: int, months: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": f"s{i}",
                    "ds": pd.date_range("2018-01-01", periods=months, freq="MS"),
                    "y": 100.0 + i + rng.standard_normal(months).cumsum(),
                }
            )
            for i in range(n)
        ],
        ignore_index=True,
    )


@pytest.mark.slow
def test_backtest_and_forecast_share_one_real_local_cluster(monkeypatch):
    from distributed import LocalCluster

    started: list[LocalCluster] = []

    class Counting(LocalCluster):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr("distributed.LocalCluster", Counting)
    frame = _frame(6)
    settings = EngineSettings(models=(ModelSpec("naive"), ModelSpec("mean")), n_jobs=2, n_paths=20, executor="dask")
    reference = forecast(
        frame,
        EngineSettings(models=settings.models, n_jobs=1, n_paths=20),
        until="2020-12-01",
        annual_year=2020,
        factory=toy_factory,
    )
    with dask_session():
        backtest(frame, settings, horizon=6, windows=2, step=6, factory=toy_factory)
        result = forecast(frame, settings, until="2020-12-01", annual_year=2020, factory=toy_factory)
        assert len(started) == 1
        cluster = started[0]
        workers = [w.process.pid for w in cluster.workers.values()]
        assert len(workers) == 2 and all(psutil.pid_exists(p) for p in workers)
    assert cluster.status.name == "closed"
    psutil.wait_procs([psutil.Process(p) for p in workers if psutil.pid_exists(p)], timeout=20)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in workers)
    pd.testing.assert_frame_equal(reference.forecasts, result.forecasts, check_exact=True)
    # without the session, the same two stages start two clusters (what the session fixes)
    backtest(frame, settings, horizon=6, windows=2, step=6, factory=toy_factory)
    forecast(frame, settings, until="2020-12-01", annual_year=2020, factory=toy_factory)
    assert len(started) == 3


# ----------------------------------------------------------------------------- killed run (real processes)
def _sleepy(item: int) -> int:
    time.sleep(60)
    return item


def runs_on_a_local_cluster_and_waits(settings, source: str) -> None:
    """Stand-in pipeline (module level: the supervisor's spawn imports it): opens the run's Dask
    session, starts its LocalCluster of 2 workers, writes its own pid and the pids of the worker
    processes (the nannies run inside the pipeline process), then runs a stage of slow items on
    the cluster."""
    with dask_session():
        with dask_client("", 2) as client:
            workers = client.run(os.getpid)
            nannies = client.run(os.getppid)
        assert set(nannies.values()) == {os.getpid()}
        Path(source + ".tmp").write_text(" ".join(map(str, [os.getpid(), *workers.values()])))
        os.replace(source + ".tmp", source)
        run_batches(_sleepy, list(range(8)), n_jobs=2, executor="dask")


def _run_and_kill(tmp_path: Path, signum: int) -> tuple[int, list[psutil.Process]]:
    from flows.settings import Settings
    from flows.supervise import run_supervised

    marker = tmp_path / "pids"
    result: dict[str, int] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "code", run_supervised(Settings(), str(marker), target=runs_on_a_local_cluster_and_waits, grace=10.0)
        )
    )
    thread.start()
    deadline = time.monotonic() + 180
    while not marker.is_file() and time.monotonic() < deadline:
        assert thread.is_alive(), "the stand-in pipeline ended before its cluster started"
        time.sleep(0.2)
    pids = [int(p) for p in marker.read_text().split()]
    assert len(set(pids)) == 3  # the pipeline process, 2 Dask worker processes
    procs = [psutil.Process(p) for p in pids]
    time.sleep(2)  # the stage's batches are running on the workers
    os.kill(pids[0], signum)
    thread.join(60)
    assert not thread.is_alive()
    psutil.wait_procs(procs, timeout=40)
    return result["code"], procs


def _alive(procs: list[psutil.Process]) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append((p.pid, " ".join(p.cmdline())[:120]))
        except psutil.Error:
            pass
    return out


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_run_leaves_no_dask_process_alive(tmp_path, signum):
    code, procs = _run_and_kill(tmp_path, signum)
    assert code == 128 + signum
    assert _alive(procs) == []
