"""Run the pipeline in a child process, so that nothing it starts outlives ``exportcast run``.

A SIGKILL cannot be caught: when it hit the process that ran the flow, Prefect's temporary API
server and the loky workers kept running, and the MLflow and Prefect runs stayed RUNNING. Now:

- ``exportcast run`` is a thin **supervisor** (:func:`run_supervised`): it starts the pipeline in
  a child process (multiprocessing, *spawn*: a fresh interpreter of the same Python), forwards
  SIGINT / SIGTERM / SIGHUP to it, waits, and returns its exit code. While it waits it records
  the child's descendants (psutil), so that if the child itself dies abruptly, the supervisor
  kills what the child left behind; being the child's "subreaper" (Linux), it also finds the
  orphans the child had no time to be seen with. An exception of the pipeline is sent back (pickled) and
  raised again in the supervisor, so the CLI reports it exactly as if it had run in-process
  (the child's traceback is kept as the ``__cause__``). The child's stdout and stderr are the
  supervisor's: progress reaches the user's terminal as before.
- The **child** (:func:`_child_main`) asks Linux to send it SIGTERM when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``, through ctypes on libc; Linux only: elsewhere the step is
  skipped and the watchdog's parent check below still applies), so a SIGKILL of the supervisor
  becomes a SIGTERM of the child. It runs in its own process group, so a Ctrl-C in the
  terminal reaches the supervisor only, which forwards it once.
- On SIGTERM / SIGINT / SIGHUP the child unwinds the flow (Prefect marks the flow run Crashed,
  ``PipelineTracker`` marks the MLflow run FAILED), then kills all its descendants (SIGTERM,
  then SIGKILL after 3 s) and exits with 128 + the signal number. A watchdog thread bounds the
  unwinding: ``GRACE_SECONDS`` after the signal (or after it sees the parent gone), it kills the
  descendants and ends the process whatever the main thread is doing.
- While a flow runs, the SIGTERM handler is Prefect's, which raises ``TerminationSignal`` in the
  main thread wherever it is. Raised inside a finalizer (an asyncio transport's ``__del__``, run
  by the garbage collector), Python prints "Exception ignored" and the flow runs on (seen
  2026-11-30: the pipeline outlived a SIGKILLed supervisor by the whole grace period). So while
  a recorded stop has not reached the pipeline and a handler not the child's own is installed,
  the watchdog sends it again to the main thread every ``REDELIVER_SECONDS``
  (``signal.pthread_kill``: a real signal, so a blocking call returns to run the handler).
- What cannot be cleaned up at the time (both processes SIGKILLed, the machine lost power) is
  cleaned up by the next run: see :func:`flows.tracking.reap_stale_runs`.
- ``exportcast serve`` runs Prefect's runner in the same child (``on_stop``): its flow runs are
  ``prefect.engine`` processes the runner starts, each with its own loky workers. A stop must not
  wait for the runner to unwind (it pauses schedules, cancels runs one API call at a time, and
  never sees a SIGKILL of ``serve``), so as soon as the child records a stop (a forwarded signal,
  or its parent seen gone) its watchdog calls ``on_stop`` once: :func:`end_flow_run_processes`
  kills every descendant at once and sets the flow runs they carried (each ``prefect.engine``
  names its run in ``PREFECT__FLOW_RUN_ID``) CRASHED unless they already ended. With ``on_stop``
  the child is also the subreaper of its descendants, so the workers of an engine the runner
  ended are re-parented to it, not to init, and are still found.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:  # pragma: no cover
    from multiprocessing.connection import Connection

    from flows.settings import Settings

#: seconds the child may spend unwinding after a signal before it is ended regardless
GRACE_SECONDS = 25.0  # unwinding (Prefect marks the crash, MLflow ends the runs) took over 10 s under CI load
#: seconds between two looks at the child's descendants (supervisor) / at the parent (child)
POLL_SECONDS = 0.5
#: seconds after which a stop that has not reached the pipeline is delivered to it again
REDELIVER_SECONDS = 5.0
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


class Interrupted(KeyboardInterrupt):
    """Raised in the child's main thread by a termination signal (a KeyboardInterrupt, so that
    Prefect and the MLflow tracker treat it as the interruption it is)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


class RemoteTraceback(Exception):
    """The child's traceback, attached as ``__cause__`` of the exception raised again here."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n""" (in the pipeline process)\n{self.text}"""'


# ====================================================================== process helpers
def set_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``). Returns False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return False


def set_child_subreaper(on: bool) -> bool | None:
    """Make this process the "subreaper" of its descendants (Linux ``PR_SET_CHILD_SUBREAPER``):
    an orphan among them is re-parented to this process instead of init, so it can still be
    found and killed. Returns the previous setting (None where not available)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        previous = ctypes.c_int(0)
        if libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0:
            return None
        if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
            return None
        return bool(previous.value)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return None


#: what the command line of a resource tracker contains (multiprocessing's and loky's): trackers
#: ignore SIGTERM by design, so a kill that waits for them to end waits out its whole timeout
RESOURCE_TRACKER = "resource_tracker import main"


def _is_resource_tracker(proc: psutil.Process) -> bool:
    try:
        return RESOURCE_TRACKER in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def kill_processes(procs: list[psutil.Process], timeout: float = 3.0, *, trackers_at_once: bool = False) -> None:
    """SIGTERM, then SIGKILL what is still alive after ``timeout`` seconds. A process that is
    gone (or whose pid now belongs to another process: psutil checks the start time) is skipped.
    ``trackers_at_once``: resource trackers (which ignore SIGTERM) get their SIGKILL as soon as
    the other processes are gone, not after the timeout; for a run that ended normally (every
    state final), where the wait only delayed the exit by ``timeout`` seconds."""
    trackers = [proc for proc in procs if trackers_at_once and _is_resource_tracker(proc)]
    alive = []
    for proc in procs:
        if proc in trackers:
            continue
        try:
            if proc.is_running():
                proc.terminate()
                alive.append(proc)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(alive, timeout=timeout)
    _kill_and_wait([*trackers, *alive], timeout)


def _kill_and_wait(procs: list[psutil.Process], timeout: float) -> None:
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(procs, timeout=timeout)


def kill_descendants(timeout: float = 3.0, *, trackers_at_once: bool = False) -> None:
    """Kill every descendant of this process (Prefect's server, loky workers and their tracker);
    ``trackers_at_once`` as in :func:`kill_processes`."""
    try:
        procs = psutil.Process().children(recursive=True)
    except psutil.Error:  # pragma: no cover
        return
    kill_processes(procs, timeout, trackers_at_once=trackers_at_once)


#: the environment variable in which Prefect's runner names a flow-run process's run
FLOW_RUN_ID_ENV = "PREFECT__FLOW_RUN_ID"


def flow_run_ids(procs: list[psutil.Process]) -> list[str]:
    """The Prefect flow runs that ``procs`` carry (``PREFECT__FLOW_RUN_ID`` of their environment,
    inherited by their workers), each once, in the order found."""
    found: dict[str, None] = {}
    for proc in procs:
        try:
            run_id = proc.environ().get(FLOW_RUN_ID_ENV)
        except psutil.Error:
            continue
        if run_id:
            found.setdefault(run_id, None)
    return list(found)


def end_flow_run_processes(signum: int | None = None) -> list[str]:
    """``on_stop`` of ``exportcast serve`` (``signum``: the stop), and its last step: kill every
    descendant of this process now (the flow-run processes and their workers), then set the flow
    runs they carried CRASHED (those not final yet: a run Prefect already marked stays as it is).
    Returns the ids set CRASHED."""
    try:
        procs = psutil.Process().children(recursive=True)
    except psutil.Error:  # pragma: no cover
        return []
    runs = flow_run_ids(procs)
    kill_processes(procs)
    if not runs:
        return []
    from flows.prefect_runs import crash_flow_runs

    note = "stopped: exportcast serve " + (f"was ended by {signal.Signals(signum).name}" if signum else "ended")
    return crash_flow_runs(dict.fromkeys(runs, note))


# ====================================================================== the child
class _ChildState:
    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid
        self.signum: int | None = None
        self.since: float | None = None
        self.finished = False  # the pipeline returned or raised
        self.own_handler: Any = None  # the child's signal handler (another one is e.g. Prefect's)
        self.on_stop: Callable[[int], Any] | None = None  # called once by the watchdog at a stop
        self.lock = threading.Lock()

    def stop(self, signum: int) -> bool:
        """Record a termination request; False if one was already recorded."""
        with self.lock:
            if self.signum is not None:
                return False
            self.signum = signum
            if self.since is None:
                self.since = time.monotonic()
            return True

    def finishing(self) -> None:
        """The pipeline returned or raised: the watchdog bounds the clean-up from now on."""
        with self.lock:
            self.finished = True
            if self.since is None:
                self.since = time.monotonic()


def _watchdog(state: _ChildState, grace: float, redeliver: float = REDELIVER_SECONDS) -> None:
    """Ends the child ``grace`` seconds after a signal or after the parent is seen gone; delivers
    a stop that has not reached the pipeline again every ``redeliver`` seconds (module docstring)."""
    delivered: float | None = None
    while True:
        if state.signum is None and os.getppid() != state.parent_pid:
            state.stop(signal.SIGTERM)
        _call_on_stop(state)
        now = time.monotonic()
        if state.signum is not None and not state.finished:
            delivered = delivered if delivered is not None else state.since
            if (
                delivered is not None
                and now - delivered >= redeliver
                and signal.getsignal(state.signum) is not state.own_handler
            ):
                print(
                    f"exportcast: the pipeline has not stopped {now - delivered:.0f} s after "
                    f"{signal.Signals(state.signum).name}; delivering it again",
                    file=sys.stderr,
                    flush=True,
                )
                signal.pthread_kill(threading.main_thread().ident, state.signum)
                delivered = now
        if state.since is not None and time.monotonic() - state.since >= grace:
            cause = signal.Signals(state.signum).name if state.signum else "its end"
            print(
                f"exportcast: the pipeline did not stop within {grace:.0f} s of {cause}; ending it",
                file=sys.stderr,
                flush=True,
            )
            kill_descendants()
            os._exit(128 + state.signum if state.signum else 1)
        time.sleep(POLL_SECONDS)


def _call_on_stop(state: _ChildState) -> None:
    """Call the child's ``on_stop`` once, if a stop was recorded (from the watchdog, or from the main
    thread when the target ended before the watchdog's next look); an error is printed, not raised."""
    with state.lock:
        on_stop = state.on_stop if state.signum is not None else None
        if on_stop is not None:
            state.on_stop = None
    if on_stop is None:
        return
    try:
        on_stop(state.signum)
    except Exception as exc:  # noqa: BLE001 - the stop must go on
        print(
            f"exportcast: clean-up at {signal.Signals(state.signum).name} failed ({type(exc).__name__}: {exc})",
            file=sys.stderr,
            flush=True,
        )


def run_pipeline_with_source(settings: Settings, source: str | None) -> None:
    """What the pipeline process runs by default: the ``monthly-forecast`` flow, on the run's own
    temporary Prefect server (``flows.prefect_server.run_on_own_server``), which boots while this
    process imports the pipeline and prepares the MLflow store (decision 0188: the flow's first
    stage 31-37 s -> about 20 s after the start)."""
    from flows.prefect_server import run_on_own_server

    def prepare() -> Callable[[], Any]:
        from flows.pipeline import run_pipeline, with_source

        chosen = with_source(settings, source)
        _prepare_local_mlflow_store(chosen)
        return lambda: run_pipeline(chosen)

    run_on_own_server(prepare)


def _prepare_local_mlflow_store(settings: Settings) -> None:
    """While Prefect's server starts: a local MLflow store (sqlite) is created and migrated now
    (about 4 s on a new store), not at the run's first stage. Best effort: an error here is met
    again, and reported, where the run opens its MLflow run."""
    if settings.mlflow.sqlite_path is None:
        return
    try:
        from flows.tracking import configure

        configure(settings.mlflow)
    except Exception:  # noqa: BLE001 - reported by the run's own MLflow set-up
        return


def _fail_own_runs(settings: Any, reason: str, stop: BaseException) -> None:
    """Best effort: the MLflow runs of this process end FAILED even if the signal cut the
    tracker's own exit short (the next run's reaper is the second line of defence). A ``stop``
    inside an MLflow write outside the tracker's body (e.g. its reaper, in ``__enter__``) left that
    write's connection, holding the write lock, in its traceback: it is released first."""
    mlflow_settings = getattr(settings, "mlflow", None)
    if mlflow_settings is None:  # a stand-in pipeline (tests) without tracking
        return
    if mlflow_settings.sqlite_path is not None and not mlflow_settings.sqlite_path.is_file():
        return  # no store yet, so no run of this process to end (and no MLflow import to wait for)
    try:
        from flows.tracking import fail_runs_of_this_process, release_interrupted_writes

        release_interrupted_writes(stop.__traceback__)
        fail_runs_of_this_process(mlflow_settings, reason)
    except Exception as exc:  # noqa: BLE001 - never hide the interruption behind a bookkeeping error
        print(
            f"exportcast: could not mark this run's MLflow runs FAILED ({type(exc).__name__}: {exc})",
            file=sys.stderr,
            flush=True,
        )


def _child_main(
    target: Callable[[Any, str | None], Any],
    settings: Settings,
    source: str | None,
    conn: Connection,
    parent_pid: int,
    grace: float,
    on_stop: Callable[[int], Any] | None = None,
) -> None:
    """Body of the pipeline process (see the module docstring)."""
    try:
        os.setpgid(0, 0)  # Ctrl-C in the terminal goes to the supervisor, which forwards it once
    except OSError:  # pragma: no cover - e.g. already a group leader
        pass
    set_parent_death_signal(signal.SIGTERM)
    state = _ChildState(parent_pid)
    if on_stop is not None:
        state.on_stop = on_stop
        set_child_subreaper(True)
    if os.getppid() != parent_pid:  # the supervisor died before prctl took effect
        conn.close()
        os._exit(128 + signal.SIGTERM)

    def on_signal(signum: int, frame: Any) -> None:
        if state.stop(signum):
            raise Interrupted(signum)
        # a second signal while unwinding: stop now
        kill_descendants(timeout=1.0)
        os._exit(128 + signum)

    for signum in FORWARDED:
        signal.signal(signum, on_signal)
    state.own_handler = on_signal
    threading.Thread(target=_watchdog, args=(state, grace), name="exportcast-watchdog", daemon=True).start()

    code = 0
    message: dict[str, Any] | None = None
    returned = False
    try:
        try:
            target(settings, source)
            returned = True
        finally:
            state.finishing()
            _call_on_stop(state)
            # a run (not serve: on_stop) that ended normally: its trackers need not be waited for
            # (3 s at every exit); on a stop or an error, every process gets its SIGTERM and the
            # timeout, as always
            kill_descendants(trackers_at_once=returned and state.signum is None and on_stop is None)
        if state.signum is not None:  # a target that ends on a stop (Prefect's serve returns on one)
            code = 128 + state.signum
            print(
                f"exportcast: interrupted by {signal.Signals(state.signum).name}; the pipeline stopped",
                file=sys.stderr,
                flush=True,
            )
    except BaseException as exc:  # noqa: BLE001 - every error goes back to the supervisor
        if state.signum is None:
            code, message = _failure(exc)
        else:  # a stop (on_signal's Interrupted, or whatever the unwinding raised): the exit code says so
            code = 128 + state.signum
            reason = f"interrupted by {signal.Signals(state.signum).name}"
            raised = (
                "" if isinstance(exc, Interrupted) else f" (unwinding raised {type(exc).__name__}: {str(exc)[:300]})"
            )
            print(f"exportcast: {reason}; the pipeline stopped{raised}", file=sys.stderr, flush=True)
            _fail_own_runs(settings, f"stopped: {reason}", exc)
    try:
        if message is not None:
            conn.send(message)
        conn.close()
    except (OSError, ValueError):  # the supervisor is gone
        pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _failure(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """Exit code 1 and the message that carries the pipeline's exception to the supervisor."""
    message = {"text": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(), "pickled": None}
    try:
        message["pickled"] = pickle.dumps(exc)
    except Exception:  # noqa: BLE001 - the supervisor raises a RuntimeError with the text instead
        pass
    return 1, message


# ====================================================================== the supervisor
def _exception(reply: dict[str, Any]) -> BaseException:
    """The pipeline's exception, or a RuntimeError with its text when it does not (un)pickle."""
    if reply.get("pickled") is not None:
        try:
            exc = pickle.loads(reply["pickled"])
            if isinstance(exc, BaseException):
                return exc
        except Exception:  # noqa: BLE001 - e.g. an exception class whose __init__ needs other arguments
            pass
    return RuntimeError(reply["text"])


def run_supervised(
    settings: Settings,
    source: str | None = None,
    *,
    grace: float = GRACE_SECONDS,
    target: Callable[[Any, str | None], Any] = run_pipeline_with_source,
    on_stop: Callable[[int], Any] | None = None,
) -> int:
    """Run the ``monthly-forecast`` pipeline (``target(settings, source)``: a module-level
    function, tests give another) in a child process and return its exit code (0 on success,
    128 + N after signal N). An exception of the pipeline is raised here again. ``on_stop(signum)``
    (picklable), when given, is called once in the child as soon as it records a stop, beside the
    target's unwinding (``exportcast serve``: :func:`end_flow_run_processes`)."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_child_main,
        args=(target, settings, source, sender, os.getpid(), grace, on_stop),
        name="exportcast-pipeline",
    )
    received: list[signal.Signals] = []

    def forward(signum: int, frame: Any) -> None:
        received.append(signal.Signals(signum))
        if child.pid is not None and child.is_alive():
            try:
                os.kill(child.pid, signum)
            except ProcessLookupError:
                pass

    in_main = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, forward) for s in FORWARDED} if in_main else {}
    descendants: dict[int, psutil.Process] = {}
    reply: dict[str, Any] | None = None
    subreaper = set_child_subreaper(True)
    me = psutil.Process()
    before: set[int] | None = None
    try:
        child.start()
        sender.close()
        before = {p.pid for p in me.children()}  # (with the pipeline process and multiprocessing's tracker)
        reply = _watch(child, receiver, grace, descendants)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        # what the child left behind (it was SIGKILLed, or its clean-up did not finish): the
        # descendants seen while it ran, and the orphans re-parented here (subreaper)
        _add_orphans(me, before, descendants)
        kill_processes(list(descendants.values()))
        if subreaper is not None:
            set_child_subreaper(subreaper)
    if reply is None and receiver.poll(0):
        try:
            reply = receiver.recv()
        except (EOFError, OSError):
            reply = None
    receiver.close()
    if reply is not None:
        raise _exception(reply) from RemoteTraceback(reply["traceback"])
    code = child.exitcode if child.exitcode is not None else 1
    return 128 - code if code < 0 else code


def _watch(child: Any, receiver: Any, grace: float, descendants: dict[int, psutil.Process]) -> dict[str, Any] | None:
    """Wait for the child to end, recording its descendants as they appear; the child's reply
    (an exception it raised), if it sent one before ending."""
    reply = None
    try:
        root = psutil.Process(child.pid)
    except psutil.NoSuchProcess:  # pragma: no cover - died at once
        root = None
    while child.is_alive():
        if root is not None:
            try:
                for proc in root.children(recursive=True):
                    descendants.setdefault(proc.pid, proc)
            except psutil.Error:
                pass
        if receiver.poll(POLL_SECONDS):
            try:
                reply = receiver.recv()
            except (EOFError, OSError):
                child.join(grace + 10)
                break
    child.join(grace + 10)
    if child.is_alive():  # pragma: no cover - the child's own watchdog should have ended it
        child.kill()
        child.join()
    return reply


def _add_orphans(me: psutil.Process, before: set[int] | None, descendants: dict[int, psutil.Process]) -> None:
    """Add the orphans re-parented here (subreaper) and their children to ``descendants``."""
    try:
        for orphan in (p for p in me.children() if before is not None and p.pid not in before):
            for proc in (orphan, *orphan.children(recursive=True)):
                descendants.setdefault(proc.pid, proc)
    except psutil.Error:
        pass
