"""The supervisor of `exportcast run` (flows/supervise.py) on stand-in pipelines: errors come back
as the same exception, signals end the pipeline process and everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from flows.settings import MlflowSettings, Settings
from flows.supervise import RemoteTraceback, run_supervised, set_parent_death_signal


# ------------------------------------------------------------------ stand-in pipelines (module level: spawn imports them)
def fails(settings: Settings, source: str | None) -> None:
    raise ValueError(f"data.path: row 3 column y is not a number (source {source})")


def succeeds(settings: Settings, source: str | None) -> None:
    print(f"target year {settings.target_year}", flush=True)


def starts_a_worker_and_waits(settings: Settings, source: str | None) -> None:
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path(source).write_text(f"{os.getpid()} {worker.pid}")
    time.sleep(120)


def swallows_the_first_sigterm(settings: Settings, source: str | None) -> None:
    """Like a flow under Prefect's SIGTERM bridge whose TerminationSignal was raised inside a
    finalizer and ignored: the first SIGTERM does nothing, a later one stops the pipeline."""
    seen: list[int] = []

    def handler(signum: int, frame: object) -> None:
        seen.append(signum)
        if len(seen) > 1:
            raise SystemExit(f"stopped on delivery {len(seen)}")

    signal.signal(signal.SIGTERM, handler)
    Path(source).write_text(str(os.getpid()))
    time.sleep(120)


def fails_while_unwinding(settings: Settings, source: str | None) -> None:
    """Like a flow whose clean-up after the stop raised (MLflow's "database is locked")."""
    try:
        Path(source).write_text(f"{os.getpid()} -")
        time.sleep(120)
    except KeyboardInterrupt:  # the stop (Interrupted)
        raise RuntimeError("(sqlite3.OperationalError) database is locked") from None


def stopped_inside_a_tracking_write(settings: Settings, source: str | None) -> None:
    """A pipeline stopped inside an MLflow write outside the tracker's body (e.g. its reaper): the
    write's sqlite connection, holding the write lock, lives on in the stop's traceback."""
    import sqlite3

    from mlflow import MlflowClient

    from flows.tracking import configure, process_tags

    client = MlflowClient(tracking_uri=settings.mlflow.tracking_uri)
    client.create_run(configure(settings.mlflow), run_name="mine", tags=process_tags())

    def write() -> None:
        connection = sqlite3.connect(settings.mlflow.sqlite_path)
        connection.execute("BEGIN IMMEDIATE")
        Path(source).write_text(f"{os.getpid()} -")
        time.sleep(120)

    write()


class _Unpicklable(Exception):
    def __init__(self, lock: object) -> None:
        super().__init__("the data lock is held")
        self.lock = lock

    def __reduce__(self):
        raise TypeError("cannot pickle")


def fails_unpicklable(settings: Settings, source: str | None) -> None:
    raise _Unpicklable(threading.Lock())


# ------------------------------------------------------------------ tests
def test_pipeline_error_is_raised_again_in_the_supervisor() -> None:
    with pytest.raises(ValueError, match=r"^data.path: row 3 column y is not a number \(source csv\)$") as info:
        run_supervised(Settings(), "csv", target=fails)
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in fails" in cause.text and cause.text.rstrip().endswith(
        "ValueError: data.path: row 3 column y is not a number (source csv)"
    )


def test_an_error_that_does_not_pickle_comes_back_as_its_text() -> None:
    with pytest.raises(RuntimeError, match=r"^_Unpicklable: the data lock is held$"):
        run_supervised(Settings(), None, target=fails_unpicklable)


def test_success_returns_zero_and_output_reaches_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    assert run_supervised(Settings(), None, target=succeeds) == 0
    assert "target year 2026" in capfd.readouterr().out


def _settings(tmp_path: Path) -> Settings:
    """Settings whose MLflow store is under ``tmp_path``: a stopped pipeline process ends its own
    runs there, never in the working copy's ``mlruns/``."""
    store = MlflowSettings(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
        artifact_location=str(tmp_path / "artifacts"),
        experiment="t",
        registered_model="t-model",
    )
    return Settings(mlflow=store)


def _run_and_signal(
    tmp_path: Path, signum: int, target=starts_a_worker_and_waits, settings: Settings | None = None
) -> tuple[int, psutil.Process, psutil.Process | None]:
    marker = tmp_path / "pids"
    result: dict[str, int] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "code", run_supervised(settings or _settings(tmp_path), str(marker), target=target, grace=5.0)
        )
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not (marker.is_file() and marker.read_text().count(" ") == 1) and time.monotonic() < deadline:
        time.sleep(0.1)
    child_pid, worker_pid = marker.read_text().split()
    child = psutil.Process(int(child_pid))
    worker = psutil.Process(int(worker_pid)) if worker_pid != "-" else None
    os.kill(child.pid, signum)
    thread.join(30)
    assert not thread.is_alive()
    return result["code"], child, worker


def test_sigterm_to_the_pipeline_process_ends_it_and_its_workers(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, child, worker = _run_and_signal(tmp_path, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM
    assert not child.is_running() and not worker.is_running()
    assert capfd.readouterr().err == "exportcast: interrupted by SIGTERM; the pipeline stopped\n"


def test_a_stop_whose_unwinding_raises_still_exits_as_a_stop(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # the error goes to the terminal, not back to the supervisor: the exit code is the signal's
    code, child, _ = _run_and_signal(tmp_path, signal.SIGTERM, target=fails_while_unwinding)
    assert code == 128 + signal.SIGTERM and not child.is_running()
    assert (
        "exportcast: interrupted by SIGTERM; the pipeline stopped (unwinding raised RuntimeError: "
        "(sqlite3.OperationalError) database is locked)\n"
    ) in capfd.readouterr().err


def test_a_stop_inside_a_tracking_write_still_marks_the_run_failed(tmp_path: Path) -> None:
    # the lock was held until the process ended: marking FAILED waited MLflow's 20 s busy timeout,
    # past the 5 s grace period here, and the run stayed RUNNING
    from mlflow import MlflowClient

    from flows.tracking import NOTE_TAG

    settings = _settings(tmp_path)
    code, _, _ = _run_and_signal(tmp_path, signal.SIGTERM, target=stopped_inside_a_tracking_write, settings=settings)
    assert code == 128 + signal.SIGTERM
    client = MlflowClient(tracking_uri=settings.mlflow.tracking_uri)
    [run] = client.search_runs([client.get_experiment_by_name("t").experiment_id])
    assert (run.info.status, run.data.tags[NOTE_TAG]) == ("FAILED", "stopped: interrupted by SIGTERM")


def test_sigkill_of_the_pipeline_process_the_supervisor_ends_its_workers(tmp_path: Path) -> None:
    code, child, worker = _run_and_signal(tmp_path, signal.SIGKILL)
    assert code == 128 + signal.SIGKILL
    psutil.wait_procs([worker], timeout=10)
    assert not worker.is_running()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_parent_death_signal_is_set_on_linux() -> None:
    code = (
        "import ctypes, signal; from flows.supervise import set_parent_death_signal as s; "
        "ok = s(signal.SIGUSR1); sig = ctypes.c_int(); "
        "ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0); print(ok, sig.value)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["True", str(int(signal.SIGUSR1))]
    assert set_parent_death_signal is not None


class _NeedsTwoArguments(Exception):
    def __init__(self, path: str, row: int) -> None:
        super().__init__(f"{path}: row {row} is cut mid-number")


def fails_not_unpicklable(settings: Settings, source: str | None) -> None:
    raise _NeedsTwoArguments("my.csv", 7)


def test_an_error_that_does_not_unpickle_comes_back_as_its_text() -> None:
    with pytest.raises(RuntimeError, match=r"^_NeedsTwoArguments: my.csv: row 7 is cut mid-number$"):
        run_supervised(Settings(), None, target=fails_not_unpicklable)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_a_stop_lost_in_the_pipeline_is_delivered_again_after_the_supervisor_is_killed(tmp_path: Path) -> None:
    # the supervisor in its own process, SIGKILLed: the pipeline's parent-death SIGTERM is swallowed
    # by its handler, the watchdog sees the parent gone and delivers the stop again after
    # REDELIVER_SECONDS (5 s), long before the grace period (25 s)
    marker = tmp_path / "pid"
    script = (
        "import sys; from pathlib import Path; from flows.supervise import run_supervised; "
        "from tests.flows.test_supervise import _settings, swallows_the_first_sigterm as t; "
        f"sys.exit(run_supervised(_settings(Path({str(tmp_path)!r})), {str(marker)!r}, target=t))"
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (marker.is_file() and marker.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = psutil.Process(int(marker.read_text()))
    killed = time.monotonic()
    supervisor.kill()
    supervisor.wait(10)
    gone, _ = psutil.wait_procs([child], timeout=20)
    seconds = time.monotonic() - killed
    assert gone, "the pipeline process outlived its killed supervisor by 20 s"
    # the supervisor's stderr says which delivery stopped the pipeline, should this ever fail. No lower
    # bound: in 3 of many CI runs (2026-12-07) the pipeline was gone 1.1 s after the kill, with no
    # redelivery printed; a faster stop is not a fault, and the cause is not yet explained (the note).
    assert seconds < 12.0, f"{seconds:.2f} s; supervisor stderr: {supervisor.stderr.read()[-2000:]}"


# ------------------------------------------------------------------ exportcast serve's on-stop hook
def serves_until_stopped(settings: Settings, source: str | None) -> None:
    """Like Prefect's serve: a flow-run process (PREFECT__FLOW_RUN_ID in its environment) with a
    worker of its own; on a stop the runner swallows the KeyboardInterrupt and returns."""
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); time.sleep(120)"
    engine = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PREFECT__FLOW_RUN_ID": "run-1"})
    deadline = time.monotonic() + 30
    while len(psutil.Process(engine.pid).children()) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    worker = psutil.Process(engine.pid).children()[0].pid
    Path(source).write_text(f"{os.getpid()} {engine.pid} {worker}")
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        return


def records_the_stop(signum: int) -> None:
    """An on_stop that notes what end_flow_run_processes would see, then does its work without Prefect."""
    from flows import supervise

    procs = psutil.Process().children(recursive=True)
    Path(os.environ["EXPORTCAST_TEST_ON_STOP"]).write_text(f"{signum} {','.join(supervise.flow_run_ids(procs))}")
    supervise.kill_processes(procs)


def test_on_stop_ends_the_flow_run_processes_at_once_and_the_stop_exits_128_plus_n(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    marker, noted = tmp_path / "pids", tmp_path / "on-stop"
    monkeypatch.setenv("EXPORTCAST_TEST_ON_STOP", str(noted))  # the spawned child inherits it
    result: dict[str, int] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "code",
            run_supervised(
                _settings(tmp_path), str(marker), target=serves_until_stopped, grace=20.0, on_stop=records_the_stop
            ),
        )
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not (marker.is_file() and marker.read_text().count(" ") == 2) and time.monotonic() < deadline:
        time.sleep(0.1)
    child, engine, worker = (psutil.Process(int(pid)) for pid in marker.read_text().split())
    os.kill(child.pid, signal.SIGINT)
    gone, alive = psutil.wait_procs([engine, worker], timeout=10)
    thread.join(30)
    assert not alive, "the flow-run process or its worker outlived the stop"
    assert noted.read_text() == f"{int(signal.SIGINT)} run-1"
    assert result["code"] == 128 + signal.SIGINT  # the target returned, the stop still says so
    assert capfd.readouterr().err == "exportcast: interrupted by SIGINT; the pipeline stopped\n"


def test_end_flow_run_processes_sets_the_runs_they_carried_crashed(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import prefect_runs, supervise

    crashed: list[dict[str, str]] = []
    monkeypatch.setattr(prefect_runs, "crash_flow_runs", lambda notes: crashed.append(dict(notes)) or list(notes))
    engines = [
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)"], env={**os.environ, "PREFECT__FLOW_RUN_ID": run}
        )
        for run in ("run-a", "run-b")
    ]
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={k: v for k, v in os.environ.items() if k != "PREFECT__FLOW_RUN_ID"},
    )
    procs = [psutil.Process(p.pid) for p in (*engines, other)]
    assert supervise.end_flow_run_processes(signal.SIGTERM) == ["run-a", "run-b"]
    assert crashed == [
        {
            "run-a": "stopped: exportcast serve was ended by SIGTERM",
            "run-b": "stopped: exportcast serve was ended by SIGTERM",
        }
    ]
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)
    for p in (*engines, other):
        p.wait(5)


def test_resource_trackers_are_killed_at_once_after_a_normal_end_only_when_asked() -> None:
    """multiprocessing's and loky's resource trackers ignore SIGTERM. After a run that ended
    normally (``trackers_at_once``) they get their SIGKILL as soon as the other processes are
    gone; otherwise, as on a stop or an error, they wait out the timeout like any process that
    ignores SIGTERM."""
    from flows.supervise import kill_processes

    ignores_term = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    tracker_code = f"from multiprocessing.resource_tracker import main; {ignores_term}"
    started = [
        subprocess.Popen([sys.executable, "-c", code])
        for code in (tracker_code, "import time; time.sleep(120)", tracker_code)
    ]
    try:
        time.sleep(1.0)  # the SIGTERM handlers are set
        procs = [psutil.Process(p.pid) for p in started]
        start = time.monotonic()
        kill_processes(procs[:2], timeout=30.0, trackers_at_once=True)
        assert time.monotonic() - start < 10.0
        # psutil reaped them: their exit is on its objects (a signal as a negative number)
        assert [proc.returncode for proc in procs[:2]] == [-signal.SIGKILL, -signal.SIGTERM]
        start = time.monotonic()
        kill_processes(procs[2:], timeout=1.5)  # the default: the tracker too gets the timeout
        assert time.monotonic() - start >= 1.5
        assert procs[2].returncode == -signal.SIGKILL
    finally:
        for p in started:
            p.kill()
            p.wait()
