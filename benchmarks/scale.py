"""Scale-out benchmark of the engine (a script, not a test): issue 12.

    .venv/bin/python benchmarks/scale.py                 # everything (long: about an hour on 2 busy cores)
    .venv/bin/python benchmarks/scale.py --quick         # small sizes, to prove it runs (a few minutes)
    .venv/bin/python benchmarks/scale.py --sizes 100,1000 --sections scaling,workers

The run recorded in benchmarks/results/ (2 cores shared with other jobs, bounded to 38 min):

    .venv/bin/python benchmarks/scale.py --sections executors,workers,statsforecast,cheap,all,scaling \
        --cmp-n 100 --sf-n 100 --all-n 40 --profile-n 20 --sizes 100,1000,10000 \
        --cheap-sizes 100,1000,10000 --no-dask-single --budget 38
    .venv/bin/python benchmarks/scale.py --sections ets-choice --ets-n 20

The runs on a quiet machine (the figures of the README; ``scale-2026-11-29-quiet*.txt``):

    .venv/bin/python benchmarks/scale.py --sections workers,executors,scaling --cmp-n 1000 --sizes 100,1000 --no-dask-single
    .venv/bin/python benchmarks/scale.py --sections scaling,all,statsforecast --sizes 1000,10000 --budget 80
    .venv/bin/python benchmarks/scale.py --sections statsforecast --sf-n 1000   # with statsforecast installed

``--budget MIN`` skips (and says so) any run predicted, from the cost of the runs of the same
models so far (a + b N through the two largest N), to end after MIN minutes; runs shared by
several sections (same frame, settings) are made once.

Data: synthetic monthly series made here (seeded): level x exp(trend) x multiplicative
seasonality x log-normal noise (with a random-walk part), lengths uniform in 48..180 months, all
ending December 2025, 2% of the months missing (never December 2025 nor December 2024).

Each run is ``models.core.engine.forecast`` (horizon 12, annual totals of 2026 from 1000 sample paths,
as in production), so a "series" is every listed model (+ seasonal_naive, always fitted) fitted
and forecast on one series, with its paths.

Sections (``--sections``, default all but ``targets``, ``cheap`` and ``ets-choice``):
- ``lean``: ETS and Theta as fitted here vs the stock statsmodels calls on the embedded series
  (CPU seconds, bit-identical checked; decision 0184);
- ``targets``: issue 22's two targets on one file of --targets-n (800) series: ours (seasonal_naive,
  ets, theta) with 2 workers vs 1 (>= 1.7x) and vs statsforecast (SeasonalNaive, AutoETS,
  AutoTheta) with n_jobs=2 (ours no slower), each pair run twice in the order A B B A, with each
  run's CPU split (the calling process, i.e. the serial part, vs the workers); ``.venv/bin/python benchmarks/scale.py --sections targets``;
- ``scaling``: N = --sizes with --fast-models (seasonal_naive, ets, theta), joblib, 2 workers:
  seconds, series/s, and the exponent b of seconds = a N^b (least squares on log-log; also
  between the two largest sizes);
- ``all``: N = --all-n with every model of config.yaml, joblib, 2 workers;
- ``workers``: speed-up of 2 workers over 1 (joblib n_jobs = 1 runs in this process) at --cmp-n;
- ``executors``: joblib vs a Dask LocalCluster vs a Dask cluster started here as separate
  ``dask scheduler`` / ``dask worker`` processes on 127.0.0.1, 2 workers each, at --cmp-n, with
  a check that the three give identical results;
- ``cheap``: N = --cheap-sizes with seasonal_naive alone (the engine's own cost per series:
  reading, batching, gathering, annual totals from 1000 paths): the exponent where the model cost
  is smallest, so any non-linearity of the engine shows most;
- ``ets-choice``: our ETS (statsmodels ETSModel) against maxiter 50, statsmodels Holt-Winters and
  statsforecast's AutoETS, one process, --ets-n series: seconds of the fit and of the paths, MASE;
- ``statsforecast``: on --sf-n series (last 12 months held out), statsforecast's AutoETS,
  AutoTheta and AutoARIMA against our ets, theta and arima: seconds and MASE, as ratios
  (statsforecast cannot take gaps: its copy of the series has the missing months filled by log-
  linear interpolation); then, if our ARIMA is slower, a cProfile of it split into the stepwise
  CSS search, the state-space refit, the differencing tests, predict and the sample paths.

Peak RSS: sampled every 0.1 s with psutil (a distributed dependency) for this process and for
every child process (loky workers, Dask nanny + worker processes); "workers" is the largest
single child, "total" the largest sum over this process and its children at one instant.
The machine may be shared: absolute timings are noisy, ratios from one run less so.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.settings import load_settings  # noqa: E402
from models.core.engine import EngineSettings, ModelSpec, forecast  # noqa: E402
from models.core.metrics import mase  # noqa: E402

LAST = pd.Timestamp("2025-12-01")
TARGET_YEAR = 2026


# ------------------------------------------------------------------------------------ data
def synthetic(n: int, seed: int = 12) -> pd.DataFrame:
    """N monthly series: multiplicative seasonality, trend, noise; lengths 48..180; 2% missing."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n):
        months = int(rng.integers(48, 181))
        ds = pd.date_range(end=LAST, periods=months, freq="MS")
        t = np.arange(months)
        level = 10 ** rng.uniform(5, 10)
        trend = np.exp(rng.normal(0.004, 0.004) * t)
        amplitude = rng.uniform(0.05, 0.3)
        phase = rng.integers(12)
        season = (
            1
            + amplitude * np.sin(2 * np.pi * (t + phase) / 12)
            + 0.3 * amplitude * np.cos(4 * np.pi * (t + phase) / 12)
        )
        noise = np.exp(np.cumsum(rng.normal(0, 0.01, months)) + rng.normal(0, rng.uniform(0.02, 0.12), months))
        y = level * trend * season * noise
        keep = rng.random(months) >= 0.02
        keep[[-1, -13]] = True  # the last month, and the last month before the statsforecast hold-out
        parts.append(pd.DataFrame({"unique_id": f"s{i:05d}", "ds": ds[keep], "y": y[keep]}))
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------------ measuring
class PeakRSS:
    """Peak RSS (MB) of this process, of its largest child, and of the sum, sampled in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.parent = self.worker = self.total = 0.0
        self.load = float("nan")  # 1-min load average when the run ended (set by run)
        self._stop = threading.Event()
        self._me = psutil.Process()

    def _sample(self) -> None:
        own = self._me.memory_info().rss
        kids = []
        for child in self._me.children(recursive=True):
            try:
                kids.append(child.memory_info().rss)
            except psutil.Error:
                pass
        mb = 1024 * 1024
        self.parent = max(self.parent, own / mb)
        self.worker = max(self.worker, max(kids, default=0) / mb)
        self.total = max(self.total, (own + sum(kids)) / mb)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def settings_for(
    models: list[str], n_jobs: int = 2, executor: str = "joblib", address: str = "", n_paths: int = 1000
) -> EngineSettings:
    params = load_settings(ROOT / "config.yaml")._model_params  # the models as the pipeline configures them
    return EngineSettings(
        models=tuple(ModelSpec(m, params(m)) for m in models),
        n_jobs=n_jobs,
        n_paths=n_paths,
        executor=executor,
        dask_address=address,
    )


class Skipped(Exception):
    """A run that would not finish within the benchmark's --budget (predicted from the measured cost)."""


DEADLINE: float | None = None  # perf_counter() value after which no run is started that is predicted to pass it
_RATE: dict[tuple, dict[int, float]] = {}  # (model names, annual) -> {N: wall seconds at 2 workers}


def _predict(kind: tuple, n: int) -> float:
    """Seconds of a run of n series: a + b n through the two largest N measured (the fixed part is
    the workers' start and imports), or seconds/N x n from a single run (an overestimate)."""
    points = sorted(_RATE[kind].items())
    if len(points) >= 2:
        (n1, s1), (n2, s2) = points[-2:]
        b = (s2 - s1) / (n2 - n1)
        if b > 0:
            return s1 + b * (n - n1)
    n1, s1 = points[-1]
    return s1 / n1 * n


_MEMO: dict[tuple, tuple] = {}  # (frame name, repr(settings), annual, horizon) -> run figures


def run(frame: pd.DataFrame, settings: EngineSettings, *, annual: bool = True, horizon: int = 12, memo: str = ""):
    """(seconds, PeakRSS, result) of one engine forecast. joblib's loky workers are shut down at
    the end, so every run starts its own workers (as a Dask LocalCluster does) and a later run's
    RSS does not count idle workers of an earlier one. With ``memo`` (a name for the frame,
    e.g. "synthetic(1000)"), a run with the same frame, settings and options is done once and
    its figures reused by the later sections (printed again, marked "same run as above")."""
    from joblib.externals.loky import get_reusable_executor

    key = (memo, repr(settings), annual, horizon)
    if memo and key in _MEMO:
        return _MEMO[key]
    kind = (settings.model_names, annual)
    if kind in _RATE and DEADLINE is not None:  # predicted from the runs of the same models so far
        predicted = _predict(kind, frame["unique_id"].nunique()) * (2 if settings.n_jobs == 1 else 1)
        left = DEADLINE - time.perf_counter()
        if predicted > left:
            raise Skipped(
                f"skipped: predicted {predicted:.0f} s from the cost measured above, "
                f"{max(left, 0):.0f} s left in the --budget"
            )
    with PeakRSS() as peak:
        t0 = time.perf_counter()
        result = forecast(frame, settings, horizon=horizon, annual_year=TARGET_YEAR if annual else None)
        seconds = time.perf_counter() - t0
    get_reusable_executor().shutdown(wait=True)
    peak.load = os.getloadavg()[0]
    if settings.n_jobs != 1:
        _RATE.setdefault(kind, {})[frame["unique_id"].nunique()] = seconds
    if memo:
        _MEMO[key] = (seconds, peak, result)
    return seconds, peak, result


def line(label: str, n: int, seconds: float, peak: PeakRSS | None = None) -> str:
    text = f"  {label:<34} N={n:>6}  {seconds:8.1f} s  {n / seconds:8.1f} series/s  {1000 * seconds / n:8.1f} ms/series"
    if peak is not None:
        text += (
            f"  peak RSS parent {peak.parent:6.0f} MB, largest worker {peak.worker:6.0f} MB, total {peak.total:6.0f} MB"
        )
        text += f"  (load {peak.load:.1f} at end)"
    return text


def failed_share(result) -> str:
    fits = result.fits
    return f"{(fits['status'] == 'failed').mean():.1%} failed, {(fits['status'] == 'fallback').mean():.1%} fallback"


# ------------------------------------------------------------------------------------ sections
def section_scaling(sizes: list[int], models: list[str]) -> None:
    alone = models == ["seasonal_naive"]
    print(
        f"\n== scaling: {'seasonal_naive alone (the engine with its cheapest model)' if alone else ', '.join(models) + ' (+ seasonal_naive)'}, "
        f"joblib, 2 workers",
        flush=True,
    )
    times = []
    done = []
    for n in sizes:
        frame = synthetic(n)
        try:
            seconds, peak, result = run(frame, settings_for(models), memo=f"synthetic({n})")
        except Skipped as skip:
            print(f"  joblib x2                          N={n:>6}  {skip}", flush=True)
            continue
        times.append(seconds)
        done.append(n)
        print(line("joblib x2", n, seconds, peak) + f"  ({failed_share(result)})", flush=True)
    sizes = done
    if len(sizes) >= 2:
        b = np.polyfit(np.log(sizes), np.log(times), 1)[0]
        last = np.log(times[-1] / times[-2]) / np.log(sizes[-1] / sizes[-2])
        print(
            f"  exponent of seconds vs N (log-log fit over {sizes}): {b:.3f}; "
            f"between N={sizes[-2]} and N={sizes[-1]}: {last:.3f}  (target <= 1.05)",
            flush=True,
        )


def section_all(n: int, models: list[str]) -> None:
    print(f"\n== every model ({', '.join(models)}), joblib, 2 workers", flush=True)
    seconds, peak, result = run(synthetic(n), settings_for(models))
    print(line("joblib x2, all models", n, seconds, peak) + f"  ({failed_share(result)})", flush=True)
    print(f"  per series, all models: {2 * seconds / n:.3f} s of one core (wall x 2 workers / N)", flush=True)


def section_workers(n: int, models: list[str], dask_single: bool = True) -> None:
    print(f"\n== speed-up of 2 workers over 1: {', '.join(models)}", flush=True)
    frame = synthetic(n)
    memo = f"synthetic({n})"
    two, peak2, _ = run(frame, settings_for(models, n_jobs=2), memo=memo)
    print(line("joblib x2", n, two, peak2), flush=True)
    one, peak1, _ = run(frame, settings_for(models, n_jobs=1), memo=memo)
    print(line("joblib x1 (in process)", n, one, peak1), flush=True)
    text = f"  speed-up 2 workers over 1: joblib {one / two:.2f}x"
    if dask_single:
        d2, peakd2, _ = run(frame, settings_for(models, n_jobs=2, executor="dask"), memo=memo)
        print(line("dask LocalCluster x2", n, d2, peakd2), flush=True)
        d1, peakd1, _ = run(frame, settings_for(models, n_jobs=1, executor="dask"), memo=memo)
        print(line("dask LocalCluster x1", n, d1, peakd1), flush=True)
        text += f", dask LocalCluster {d1 / d2:.2f}x"
    else:
        text += " (dask x1 not run: --no-dask-single)"
    print(text + "  (target >= 1.7x)", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def separate_cluster(n_workers: int):
    """`dask scheduler` + n `dask worker` processes on 127.0.0.1 (killed on exit)."""
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or "dask"
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tempfile.mkdtemp(prefix="scale-dask-")
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        "PYTHONPATH": str(ROOT),
    }
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0", "--no-show"],
            stdout=subprocess.DEVNULL,
            stderr=open(Path(logs) / "scheduler.log", "w"),
            env=env,
        )
    ]
    try:
        for i in range(n_workers):
            procs.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        address,
                        "--nworkers",
                        "1",
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=open(Path(logs) / f"worker{i}.log", "w"),
                    env=env,
                    cwd=str(ROOT),
                )
            )
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(logs, ignore_errors=True)


def _same(a, b) -> bool:
    try:
        for name in ("forecasts", "fits", "annual"):
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
        return True
    except AssertionError:
        return False


def section_executors(n: int, models: list[str]) -> None:
    print(f"\n== executors at equal worker count (2): {', '.join(models)}", flush=True)
    frame = synthetic(n)
    memo = f"synthetic({n})"
    tj, pj, rj = run(frame, settings_for(models), memo=memo)
    print(line("joblib x2 (loky start incl.)", n, tj, pj), flush=True)
    tl, pl, rl = run(frame, settings_for(models, executor="dask"), memo=memo)
    print(line("dask LocalCluster x2 (start incl.)", n, tl, pl), flush=True)
    from models.core.executors import dask_client

    t0 = time.perf_counter()
    with dask_client("", 2):
        start = time.perf_counter() - t0
    print(
        f"  of which LocalCluster start + close alone: {start:.1f} s (paid once per run: one cluster per run)",
        flush=True,
    )
    with separate_cluster(2) as address:
        ts, ps, rs = run(frame, settings_for(models, executor="dask", address=address))
        print(
            line(f"dask scheduler+2 workers ({address})", n, ts, ps) + "  (RSS: the scheduler is a child too)",
            flush=True,
        )
    print(
        f"  wall time vs joblib: LocalCluster {tl / tj:.2f}x, separate processes {ts / tj:.2f}x  (target <= 1.25x)",
        flush=True,
    )
    print(
        f"  identical results (forecasts, fits, annual paths): LocalCluster {_same(rj, rl)}, separate processes {_same(rj, rs)}",
        flush=True,
    )


# ------------------------------------------------------------------------------------ issue 22's targets
def _cpu_split(call):
    """(result, wall s, CPU s of this process, CPU s of its child processes) of call(): the
    children's CPU is theirs once reaped (loky workers after the executor's shutdown, the
    multiprocessing pool of statsforecast after it closes)."""
    import resource

    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = call()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    return result, wall, cpu, children


def _split_line(label: str, wall: float, cpu: float, children: float) -> str:
    total = cpu + children
    return (
        f"  {label:<36} wall {wall:7.1f} s | CPU: this process {cpu:6.1f} s, workers {children:6.1f} s "
        f"(serial share {cpu / total:5.1%} of {total:6.1f} s) | load {os.getloadavg()[0]:.1f}"
    )


def section_targets(n: int) -> None:
    """Issue 22's two targets on one file of n series: ours (seasonal_naive, ets, theta; horizon
    12, annual totals from 1000 paths) with 2 workers vs 1 (target >= 1.7x), and ours with 2
    workers vs statsforecast (SeasonalNaive, AutoETS, AutoTheta; n_jobs=2; gaps filled, numba
    warmed up untimed) (target: ours no slower). Each pair runs twice in the order A B B A, so
    that a host whose speed drifts during the section (this one's moves by a tenth within
    minutes) weighs on both sides alike; the ratio is of the two sums. With each run's CPU split:
    this (the calling) process's CPU, the serial part, vs the workers'."""
    from joblib.externals.loky import get_reusable_executor

    print(
        f"\n== issue 22 targets: N={n}, seasonal_naive,ets,theta; ours x2 vs x1, ours x2 vs statsforecast x2 "
        "(each pair run A B B A)",
        flush=True,
    )
    frame = synthetic(n)

    def ours(n_jobs: int):
        def call():
            result = forecast(frame, settings_for(["ets", "theta"], n_jobs=n_jobs), horizon=12, annual_year=TARGET_YEAR)
            get_reusable_executor().shutdown(wait=True)  # reaps the workers: their CPU is counted
            return result

        return call

    two, one = _abba("ours, joblib x2", ours(2), "ours, in process x1", ours(1))
    print(
        f"  speed-up of 2 workers over 1: {one.wall / two.wall:.2f}x (target >= 1.7); CPU of the x2 runs "
        f"{two.cpu / one.cpu:.2f}x the x1 runs'; identical results: {_same(one.result, two.result)}",
        flush=True,
    )
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive
    except ImportError:
        print("  statsforecast is not installed: pip install -c constraints.txt -e '.[bench]'", flush=True)
        return
    filled = _filled(frame)

    def models():
        return [SeasonalNaive(season_length=12), AutoETS(season_length=12), AutoTheta(season_length=12)]

    warm = filled[filled["unique_id"].isin(filled["unique_id"].unique()[:4])]
    StatsForecast(models=models(), freq="MS", n_jobs=1).forecast(df=warm, h=12)  # numba compile, untimed
    two, peer = _abba(
        "ours, joblib x2",
        ours(2),
        "statsforecast, n_jobs=2",
        lambda: StatsForecast(models=models(), freq="MS", n_jobs=2).forecast(df=filled, h=12),
    )
    print(
        f"  ours x2 / statsforecast x2: wall {two.wall / peer.wall:.2f}x, CPU {two.cpu / peer.cpu:.2f}x "
        f"(target: wall <= 1.00x)",
        flush=True,
    )


@dataclass
class _Timed:
    """Two runs of one call: the summed wall and CPU (this process + its reaped children) seconds,
    and the last result."""

    result: Any = None
    wall: float = 0.0
    cpu: float = 0.0


def _abba(label_a: str, call_a: Callable[[], Any], label_b: str, call_b: Callable[[], Any]) -> tuple[_Timed, _Timed]:
    """Run call_a, call_b, call_b, call_a (printing each run's CPU split) and sum each side."""
    sides = {label_a: (_Timed(), call_a), label_b: (_Timed(), call_b)}
    for label in (label_a, label_b, label_b, label_a):
        timed, call = sides[label]
        timed.result, wall, cpu, children = _cpu_split(call)
        timed.wall, timed.cpu = timed.wall + wall, timed.cpu + cpu + children
        print(_split_line(label, wall, cpu, children), flush=True)
    return sides[label_a][0], sides[label_b][0]


def section_lean(reps: int) -> None:
    """ETS and Theta as fitted here (decision 0184: no unread covariance, the Theta SES from the
    Kalman filter alone, a leaner log-likelihood) against the stock statsmodels calls, on every
    embedded series (and each long one cut 18 months before its end): fit + predict 12 + 1000
    paths, one process, one BLAS thread; CPU seconds, reps interleaved; bit-identical checked."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel, ETSResults
    from statsmodels.tsa.forecasting.theta import ThetaModel
    from threadpoolctl import threadpool_limits

    from models.core.registry import create
    from models.families import baselines

    real = pd.read_csv(ROOT / "data" / "exports_monthly.csv", parse_dates=["ds"])
    series = {}
    for uid, g in real.groupby("unique_id"):
        y = g.set_index("ds")["y"].asfreq("MS")
        series[uid] = y
        if y.notna().sum() > 60:
            series[f"{uid}@-18"] = y.iloc[:-18]
    print(f"\n== ETS and Theta: lean vs stock statsmodels ({len(series)} real histories, {reps} reps)", flush=True)

    def stock_bands(model, h: int):
        """Theta's bounds before 0184: a forecast and a prediction_intervals call per level, each time."""
        res, scale = model.result_, model.scale_
        out = {"forecast": np.asarray(res.forecast(h), dtype=float) * scale}
        for level in (80, 95):
            pi = res.prediction_intervals(h, alpha=1 - level / 100)
            out[f"lo_{level}"], out[f"hi_{level}"] = pi["lower"].to_numpy() * scale, pi["upper"].to_numpy() * scale
        return out["forecast"], (out["hi_95"] - out["lo_95"]) / (2 * baselines.Z[95]), out

    stock = {
        "ets": {(baselines, "_ets_classes"): lambda: (ETSModel, ETSResults)},
        "theta": {(baselines, "_theta_fit"): ThetaModel.fit, (baselines.Theta, "_mean_sd"): stock_bands},
    }
    for name, patches in stock.items():
        saved = {(owner, attr): getattr(owner, attr) for owner, attr in patches}

        def run(patched: bool, name=name, patches=patches, saved=saved):
            for (owner, attr), value in (patches if patched else saved).items():
                setattr(owner, attr, value)
            out, t0 = {}, time.process_time()
            for uid, y in series.items():
                model = create(name, {}).fit(y)
                out[uid] = (model.predict(12).to_numpy(), model.sample_paths(12, 1000, seed=7), model.describe())
            return time.process_time() - t0, out

        times: dict[str, list[float]] = {"stock": [], "lean": []}
        last: dict[str, dict] = {}
        with threadpool_limits(limits=1):
            for rep in range(reps):
                for label in ("stock", "lean") if rep % 2 == 0 else ("lean", "stock"):
                    seconds, last[label] = run(label == "stock")
                    times[label].append(seconds)
        for (owner, attr), value in saved.items():
            setattr(owner, attr, value)
        lean, old = last["lean"], last["stock"]
        same = all(
            np.array_equal(lean[u][0], old[u][0]) and np.array_equal(lean[u][1], old[u][1]) and lean[u][2] == old[u][2]
            for u in series
        )
        print(
            f"  {name:<6} CPU s per pass: stock {[round(t, 2) for t in times['stock']]}, lean "
            f"{[round(t, 2) for t in times['lean']]}; lean/stock {sum(times['lean']) / sum(times['stock']):.3f}; "
            f"bit-identical: {same}",
            flush=True,
        )


# ------------------------------------------------------------------------------------ statsforecast
def _filled(train: pd.DataFrame) -> pd.DataFrame:
    """Regular monthly series for statsforecast: missing months filled by log-linear interpolation."""
    parts = []
    for uid, g in train.groupby("unique_id", sort=True):
        s = g.set_index("ds")["y"].asfreq("MS")
        s = np.exp(np.log(s).interpolate())
        parts.append(pd.DataFrame({"unique_id": uid, "ds": s.index, "y": s.to_numpy()}))
    return pd.concat(parts, ignore_index=True)


def _mase_table(fc: pd.DataFrame, column: str, test: pd.DataFrame, train: dict[str, np.ndarray]) -> float:
    merged = test.merge(fc[["unique_id", "ds", column]], on=["unique_id", "ds"], how="left")
    values = [mase(g["y"].to_numpy(), g[column].to_numpy(), train[uid]) for uid, g in merged.groupby("unique_id")]
    return float(np.nanmean(values))


def section_statsforecast(n: int, profile_n: int) -> None:
    print(f"\n== statsforecast side by side: N={n}, last 12 months held out, 2 workers each", flush=True)
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoARIMA, AutoETS, AutoTheta
    except ImportError:
        print("  statsforecast is not installed: pip install -c constraints.txt -e '.[bench]'")
        return
    frame = synthetic(n)
    cut = LAST - pd.DateOffset(months=12)
    train, test = frame[frame["ds"] <= cut], frame[frame["ds"] > cut]
    train_y = {uid: g.set_index("ds")["y"].asfreq("MS").to_numpy() for uid, g in train.groupby("unique_id")}
    filled = _filled(train)

    # numba compiles statsforecast's models on first use: warm up on 4 series, not timed
    warm = filled[filled["unique_id"].isin(filled["unique_id"].unique()[:4])]
    StatsForecast(
        models=[AutoETS(season_length=12), AutoTheta(season_length=12), AutoARIMA(season_length=12)],
        freq="MS",
        n_jobs=1,
    ).forecast(df=warm, h=12)

    base, _, _ = run(train, settings_for(["seasonal_naive"]), annual=False)
    print(line("ours: seasonal_naive alone", n, base), flush=True)
    ours_arima = ours_ets = None
    for ours, theirs in (
        ("ets", AutoETS(season_length=12)),
        ("theta", AutoTheta(season_length=12)),
        ("arima", AutoARIMA(season_length=12)),
    ):
        t_ours, _, res = run(train, settings_for([ours]), annual=False)
        own = t_ours - base
        fc = res.forecasts[res.forecasts["model"] == ours]
        m_ours = _mase_table(fc, "forecast", test, train_y)
        t0 = time.perf_counter()
        sf = StatsForecast(models=[theirs], freq="MS", n_jobs=2).forecast(df=filled, h=12)
        t_sf = time.perf_counter() - t0
        sf = sf.reset_index() if "unique_id" not in sf.columns else sf
        col = [c for c in sf.columns if c not in ("unique_id", "ds")][0]
        m_sf = _mase_table(sf, col, test, train_y)
        print(
            f"  {ours:>6} vs {col:<10}: ours {own:7.1f} s ({1000 * own / n:6.1f} ms/series, seasonal_naive "
            f"subtracted) MASE {m_ours:.3f} | statsforecast {t_sf:7.1f} s ({1000 * t_sf / n:6.1f} ms/series) "
            f"MASE {m_sf:.3f} | ratios ours/theirs: time {own / t_sf:5.2f}x, MASE {m_ours / m_sf:5.3f}",
            flush=True,
        )
        if ours == "arima":
            ours_arima = (own, t_sf)
        if ours == "ets":
            ours_ets = (own, t_sf)
    if ours_ets and ours_ets[0] > 1.5 * ours_ets[1]:
        profile_ets(train, profile_n)
    if ours_arima and ours_arima[0] > ours_arima[1]:
        profile_arima(train, profile_n)


def _profile(model_name: str, train: pd.DataFrame, n: int, buckets: dict[str, tuple[str, str]], width: int) -> None:
    """Fit, predict 12 and draw 1000 paths of ``model_name`` (config params) on the first n series
    of ``train`` in this process under cProfile; print the total, the cumulative seconds of each
    bucket (label -> (file suffix, function)) and the top 12 functions by own time."""
    from models.core.registry import create

    params = load_settings(ROOT / "config.yaml")._model_params(model_name)
    series = [g.set_index("ds")["y"].asfreq("MS") for _, g in list(train.groupby("unique_id"))[:n]]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for y in series:
        model = create(model_name, params)
        model.fit(y)
        model.predict(12)
        model.sample_paths(12, 1000, seed=0)
    prof.disable()
    total = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    print(f"  total {total:.2f} s = {1000 * total / n:.0f} ms/series (profiled, so slower than unprofiled)")
    for label, (file, func) in buckets.items():
        cum = sum(v[3] for k, v in stats.stats.items() if k[0].endswith(file) and k[2] == func)
        print(f"  {label:<{width}} {cum:7.2f} s  {cum / total:6.1%}")
    print("  top 12 by own time:")
    for (file, lineno, func), v in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]:
        print(f"    {v[2]:7.2f} s own  {v[3]:7.2f} s cum  {Path(file).name}:{lineno} {func}")


def profile_ets(train: pd.DataFrame, n: int) -> None:
    """Where our ETS's time goes, on n series in this process (cProfile, cumulative seconds): the
    statsmodels ETSModel fit, the gap filling, predict (whose bounds come from n_sim simulations)
    and the 1000 sample paths."""
    print(
        f"\n== profile of our ETS (cProfile, {n} series, one process, fit + predict + 1000 paths, as the engine does)",
        flush=True,
    )
    _profile(
        "ets",
        train,
        n,
        {
            "fit: statsmodels ETSModel.fit (the optimiser)": ("ets.py", "fit"),
            "  of which the log-likelihood (loglike)": ("ets.py", "loglike"),
            "gap filling (seasonal_interpolate)": ("baselines.py", "seasonal_interpolate"),
            "predict (mean + n_sim simulations for bounds)": ("baselines.py", "_predict"),
            "sample paths (1000 simulations)": ("baselines.py", "_sample_paths"),
            "  simulate, both uses": ("ets.py", "simulate"),
        },
        width=50,
    )


def profile_arima(train: pd.DataFrame, n: int) -> None:
    """Where our ARIMA's time goes, on n series in this process (cProfile, cumulative seconds)."""
    print(f"\n== profile of our ARIMA (cProfile, {n} series, one process, fit + predict + 1000 paths)", flush=True)
    _profile(
        "arima",
        train,
        n,
        {
            "order search: CSS fits (css_fit)": ("arima.py", "css_fit"),
            "state-space refit (_state_space: SARIMAX)": ("arima.py", "_state_space"),
            "differencing tests (kpss_ndiffs)": ("arima.py", "kpss_ndiffs"),
            "seasonal strength (STL)": ("arima.py", "seasonal_strength"),
            "predict": ("arima.py", "_predict"),
            "sample paths": ("arima.py", "_sample_paths"),
        },
        width=46,
    )


# ------------------------------------------------------------------------------------ ETS choice
def section_ets_choice(n: int) -> None:
    """Our ETS against cheaper ways to fit the same model, one process, on n series (last 12
    months held out): seconds per series of the fit and of predict + 1000 paths, and MASE."""
    import warnings

    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    from models.core.registry import create
    from models.families.baselines import seasonal_interpolate

    print(
        f"\n== ETS: where the time goes and the alternatives (N={n}, one process, last 12 months held out)", flush=True
    )
    frame = synthetic(n, seed=21)
    cut = LAST - pd.DateOffset(months=12)
    train, test = frame[frame["ds"] <= cut], frame[frame["ds"] > cut]
    truth = {uid: g.set_index("ds")["y"] for uid, g in test.groupby("unique_id")}
    hist = {uid: g.set_index("ds")["y"].asfreq("MS") for uid, g in train.groupby("unique_id")}
    params = load_settings(ROOT / "config.yaml")._model_params("ets")

    def score(uid: str, fc: np.ndarray) -> float:
        idx = pd.date_range(cut + pd.DateOffset(months=1), periods=12, freq="MS")
        actual = truth[uid].reindex(idx).to_numpy()
        return mase(actual, np.asarray(fc, float), hist[uid].to_numpy())

    def ours(maxiter: int):
        def fit(uid):
            model = create("ets", {**params, "maxiter": maxiter})
            t0 = time.perf_counter()
            model.fit(hist[uid])
            t1 = time.perf_counter()
            fc = model.predict(12)["forecast"].to_numpy()
            model.sample_paths(12, 1000, seed=0)
            return t1 - t0, time.perf_counter() - t1, fc

        return fit

    def holt_winters(uid):
        y = seasonal_interpolate(hist[uid])
        t0 = time.perf_counter()
        res = ExponentialSmoothing(
            y.to_numpy() / y.mean(), trend="add", damped_trend=True, seasonal="mul", seasonal_periods=12
        ).fit()
        t1 = time.perf_counter()
        fc = res.forecast(12) * y.mean()
        res.simulate(12, repetitions=1000, error="mul")
        return t1 - t0, time.perf_counter() - t1, fc

    def statsforecast_ets(model: str, damped):
        from statsforecast.models import AutoETS

        def fit(uid):
            y = seasonal_interpolate(hist[uid]).to_numpy()
            t0 = time.perf_counter()
            out = AutoETS(season_length=12, model=model, damped=damped).forecast(y=y, h=12, level=[80, 95])
            return time.perf_counter() - t0, 0.0, out["mean"]

        return fit

    variants = [
        ("ours: statsmodels ETSModel M,Ad,M, maxiter 200 (today)", ours(200)),
        ("ours with maxiter 50", ours(50)),
        ("statsmodels Holt-Winters A_d,M (least squares)", holt_winters),
    ]
    try:
        from statsforecast.models import AutoETS

        AutoETS(season_length=12, model="MAM", damped=True).forecast(
            y=seasonal_interpolate(hist["s00000"]).to_numpy(), h=12
        )
        variants += [
            ("statsforecast AutoETS M,Ad,M (fixed; fit=all, numba)", statsforecast_ets("MAM", True)),
            ("statsforecast AutoETS ZZZ (searched; fit=all)", statsforecast_ets("ZZZ", None)),
        ]
    except ImportError:
        print("  statsforecast is not installed: its rows are skipped", flush=True)
    base = None
    for label, fit in variants:
        fits, rest, scores = [], [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for uid in hist:
                a, b, fc = fit(uid)
                fits.append(a)
                rest.append(b)
                scores.append(score(uid, fc))
        m = float(np.nanmean(scores))
        base = base or (np.sum(fits) + np.sum(rest), m)
        total = np.sum(fits) + np.sum(rest)
        # statsforecast's rows: "fit" is its forecast call (fit, forecast and 80/95 intervals; no sample paths)
        print(
            f"  {label:<52} fit {1000 * np.mean(fits):7.1f} ms, predict+1000 paths {1000 * np.mean(rest):6.1f} ms "
            f"per series; MASE {m:.3f}  (time {total / base[0]:.2f}x, MASE {m / base[1]:.3f}x today's)",
            flush=True,
        )


# ------------------------------------------------------------------------------------ main
def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run that proves every section works: sizes 30,100; all-n 20; cmp-n, sf-n 60; profile 5",
    )
    parser.add_argument(
        "--sizes", default=None, help="comma-separated N for the scaling section (default 100,1000,10000)"
    )
    parser.add_argument(
        "--fast-models", default="ets,theta", help="models of the scaling/workers/executors runs (+ seasonal_naive)"
    )
    parser.add_argument("--all-n", type=int, default=None, help="N of the every-model run (default 1000)")
    parser.add_argument("--cmp-n", type=int, default=None, help="N of the workers and executors runs (default 1000)")
    parser.add_argument("--sf-n", type=int, default=None, help="N of the statsforecast comparison (default 1000)")
    parser.add_argument("--profile-n", type=int, default=None, help="series in the ARIMA profile (default 50)")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="minutes: a run predicted (from the cost measured so far) to end past this is skipped, said so",
    )
    parser.add_argument(
        "--cheap-sizes",
        default=None,
        help="comma-separated N for a scaling run of seasonal_naive alone (the engine's own cost), "
        "e.g. 1000,10000; default none",
    )
    parser.add_argument("--ets-n", type=int, default=None, help="N of the ets-choice section (default 60)")
    parser.add_argument(
        "--no-dask-single",
        action="store_true",
        help="workers section: skip the 1-worker Dask run (joblib x1 vs x2 only)",
    )
    parser.add_argument("--targets-n", type=int, default=800, help="N of the targets section (issue 22: 800 series)")
    parser.add_argument("--lean-reps", type=int, default=4, help="passes of each variant in the lean section")
    parser.add_argument(
        "--sections",
        default="executors,workers,statsforecast,all,scaling",
        help="comma-separated, run in this order (default: all five)",
    )
    args = parser.parse_args()
    quick = args.quick
    sizes = [int(s) for s in (args.sizes or ("30,100" if quick else "100,1000,10000")).split(",") if s]
    all_n = args.all_n or (20 if quick else 1000)
    cmp_n = args.cmp_n or (60 if quick else 1000)
    sf_n = args.sf_n or (60 if quick else 1000)
    profile_n = args.profile_n or (5 if quick else 50)
    fast = [m for m in args.fast_models.split(",") if m and m != "seasonal_naive"]
    every = list(load_settings(ROOT / "config.yaml").models.active())
    sections = [s for s in args.sections.split(",") if s]
    print(
        f"exportcast scale benchmark {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}: {os.cpu_count()} cores, "
        f"load average {_load()} at start (the machine is shared: absolute seconds are noisy)",
        flush=True,
    )
    print(
        f"  plan: sections {','.join(sections)}; sizes {sizes} ({','.join(fast)} + seasonal_naive); every model at "
        f"N={all_n}; workers/executors at N={cmp_n}; statsforecast at N={sf_n}",
        flush=True,
    )
    t0 = time.perf_counter()
    cheap = [int(x) for x in (args.cheap_sizes or "").split(",") if x]
    runs = {
        "scaling": lambda: section_scaling(sizes, fast),
        "cheap": lambda: section_scaling(cheap, ["seasonal_naive"]),
        "ets-choice": lambda: section_ets_choice(args.ets_n or (10 if quick else 60)),
        "all": lambda: section_all(all_n, [m for m in every if m != "seasonal_naive"]),
        "workers": lambda: section_workers(cmp_n, fast, not args.no_dask_single),
        "executors": lambda: section_executors(cmp_n, fast),
        "statsforecast": lambda: section_statsforecast(sf_n, profile_n),
        "targets": lambda: section_targets(args.targets_n),
        "lean": lambda: section_lean(args.lean_reps),
    }
    unknown = [s for s in sections if s not in runs]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(runs)}")
    global DEADLINE
    DEADLINE = None if args.budget is None else t0 + 60 * args.budget
    for name in sections:
        try:
            runs[name]()
        except Skipped as skip:
            print(f"  rest of section {name} {skip}", flush=True)
    print(f"\ndone in {time.perf_counter() - t0:.0f} s; load average {_load()} at end", flush=True)


if __name__ == "__main__":
    main()
