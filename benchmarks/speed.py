"""Profile of `exportcast run`: this commit against a baseline commit, on one machine in one run.

    .venv/bin/python benchmarks/speed.py --baseline 2eb1845 [--quick] [--repeat 1] [--keep DIR]

The baseline is checked out into a temporary git worktree and run with this checkout's .venv
(PYTHONPATH = that worktree; the script checks that `exportcast`, `flows`, `models` and `features`
import from it, not from the editable install). Each run is `exportcast run` on the embedded data
(`--quick`: the reduced run of tests/flows/reduced_run.py: 4 series, 2 windows, comparison from
2023, 200 paths) in its own folder: a copy of the commit's config.yaml (so data_home and the fit
cache land there), a fresh PREFECT_HOME, outputs and MLflow store (`--warm-stores`: the Prefect home and the MLflow
store already migrated, untimed, as for every monthly run after the first). The stages that fit run at once since decision 0186, so
their seconds overlap and add up to more than the wall time. The runs go one after another,
baseline and this commit interleaved (`--repeat`; `--concurrent`: each pair at the same time), then a second run of this commit in the folder
of its last cold run, nothing changed (its Prefect home, fit cache and MLflow kept): the cached
rerun; and once more with a new Prefect home, so that no stage is cached and every fit comes from
the fit cache (models/core/fitcache.py).

Printed: wall seconds; seconds per stage (run.json); per model family the forecast stage's fit
seconds (run.json ``fit_seconds``: both commits record it) and, for this commit, every single-model
fit of the run (fit + forecast + paths, summed over the worker processes, and how many the fit
cache served; from the log the fit cache writes when EXPORTCAST_FIT_LOG is set); the share that
is fitting (fit seconds summed / (wall x n_jobs)); the peak memory of the run's process tree (psutil,
sampled every second: the run, its workers and its Prefect server): the sum of RSS, the sum of PSS
(shared libraries counted once) and the largest single process; the import time of the
pipeline and the start of Prefect's ephemeral server (a trivial flow with a fresh PREFECT_HOME);
and the ratios this / baseline and cached rerun / cold. Also the load average before and after:
the machine is shared, so compare only figures of one run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("exportcast", "flows", "models", "features")
FIT_LOG_ENV = "EXPORTCAST_FIT_LOG"
PART_PREFIX = "part:"  # models.core.fitcache.PART_PREFIX (not imported: the baseline runs from its own tree)
# tests/flows/reduced_run.py's config, applied to each commit's own config.yaml
QUICK_SERIES = ["total", "item:semiconductors_ministry", "destination:china", "destination:united_states"]
PREFECT_FLOW = "from prefect import flow\n@flow\ndef noop():\n    return 1\nnoop()\n"


# ---------------------------------------------------------------------------------------- pure parts
@dataclass
class Run:
    """One `exportcast run`: what the script measured and what the run recorded."""

    label: str
    wall: float
    peak_rss_mb: float  # the largest sum of RSS over the process tree at one instant
    stages: dict[str, float] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)  # run.json: the forecast stage, per model
    fits: dict[str, dict[str, float]] = field(default_factory=dict)  # fit log: model -> seconds, fits, hits
    cached: dict[str, bool] = field(default_factory=dict)
    peak_pss_mb: float = 0.0  # the largest sum of PSS (shared pages counted once: the tree's real footprint)
    largest_mb: float = 0.0  # the largest RSS of one process of the tree
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # fit log: shared part -> seconds, calls, hits


def read_run_json(text: str) -> tuple[dict[str, float], dict[str, float], dict[str, bool]]:
    """(stage seconds, forecast-stage fit seconds per model, cached stages) of a run.json."""
    record = json.loads(text)
    stages = {str(k): float(v) for k, v in (record.get("stage_seconds") or {}).items()}
    fits = {str(k): float(v) for k, v in (record.get("fit_seconds") or {}).items()}
    cached = {str(k): bool(v) for k, v in (record.get("cached") or {}).items()}
    return stages, fits, cached


def champion_mase(metrics_csv: Path) -> float:
    """The champion's mean backtest MASE over its series-windows (``backtest_metrics.csv``, model
    ``champion``): the accuracy bar of issue 22 (within +2% of the baseline's)."""
    import pandas as pd

    metrics = pd.read_csv(metrics_csv)
    return float(metrics.loc[metrics["model"] == "champion", "mase"].mean())


def read_fit_log(lines: Iterable[str]) -> dict[str, dict[str, float]]:
    """The fit cache's log (one ``model<TAB>seconds<TAB>hit|miss`` line per single-model fit)
    summed per model: seconds, fits, hits. The lines of a part kept inside fits
    (``fitcache.shared``: "part:<kind>") are left to :func:`read_shared_parts`."""
    return _summed(line for line in lines if not line.startswith(PART_PREFIX))


def read_shared_parts(lines: Iterable[str]) -> dict[str, dict[str, float]]:
    """The parts of fits kept by content (``fitcache.shared``) in the fit log, summed per kind."""
    return _summed(line.removeprefix(PART_PREFIX) for line in lines if line.startswith(PART_PREFIX))


def _summed(lines: Iterable[str]) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = {}
    for line in lines:
        if not line.strip():
            continue
        model, seconds, outcome = line.rstrip("\n").split("\t")[:3]
        entry = totals.setdefault(model, {"seconds": 0.0, "fits": 0, "hits": 0})
        entry["seconds"] += float(seconds)
        entry["fits"] += 1
        entry["hits"] += outcome == "hit"
    return dict(sorted(totals.items()))


def fit_share(fit_seconds: float, wall: float, n_jobs: int) -> float:
    """The share of the run's worker capacity (wall x n_jobs) spent fitting."""
    return fit_seconds / (wall * n_jobs) if wall > 0 else float("nan")


def ratio(numerator: float | None, denominator: float | None) -> float:
    if numerator is None or denominator is None or denominator == 0:
        return float("nan")
    return numerator / denominator


def median_run(runs: list[Run]) -> Run:
    """The run of median wall time (the lower median of an even count)."""
    ordered = sorted(runs, key=lambda r: r.wall)
    return ordered[(len(ordered) - 1) // 2]


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def stage_rows(base: Run, this: Run, rerun: Run | None) -> list[list[str]]:
    names = list(dict.fromkeys([*base.stages, *this.stages]))
    rows = []
    for name in names:
        b, t = base.stages.get(name), this.stages.get(name)
        r = rerun.stages.get(name) if rerun else None
        rows.append([name, fmt(b), fmt(t), fmt(ratio(t, b), 2), fmt(r)])
    rows.append(
        [
            "wall",
            fmt(base.wall),
            fmt(this.wall),
            fmt(ratio(this.wall, base.wall), 2),
            fmt(rerun.wall if rerun else None),
        ]
    )
    return rows


def family_rows(base: Run, this: Run, rerun: Run | None) -> list[list[str]]:
    names = sorted({*base.fit_seconds, *this.fit_seconds, *this.fits})
    rows = []
    for name in names:
        b, t = base.fit_seconds.get(name), this.fit_seconds.get(name)
        whole = this.fits.get(name, {})
        again = (rerun.fits.get(name, {}) if rerun else {}) or {}
        rows.append(
            [
                name,
                fmt(b, 2),
                fmt(t, 2),
                fmt(ratio(t, b), 2),
                fmt(whole.get("seconds"), 1),
                str(int(whole.get("fits", 0))),
                str(int(whole.get("hits", 0))),
                f"{int(again.get('hits', 0))}/{int(again.get('fits', 0))}" if rerun else "-",
            ]
        )
    return rows


# ---------------------------------------------------------------------------------------- running
def environment(root: Path, folder: Path, extra: Mapping[str, str] = ()) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PREFECT_", "EXPORTCAST"))}
    env.update(
        PYTHONPATH=str(root),
        MPLBACKEND="Agg",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="600",
        PREFECT_HOME=str(folder / "prefect-home"),
        PYTHONHASHSEED="0",
        EXPORTCAST__PUBLISH__DIR=str(folder / "outputs"),
        EXPORTCAST__MLFLOW__TRACKING_URI=f"sqlite:///{folder}/mlflow.db",
        EXPORTCAST__MLFLOW__ARTIFACT_LOCATION=str(folder / "artifacts"),
    )
    env.update(extra)
    return env


def check_imports(root: Path) -> None:
    """Fail unless the packages import from ``root`` (not this checkout's editable install)."""
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    print(importlib.import_module(name).__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code, *PACKAGES],
        env=environment(root, Path(tempfile.gettempdir())),
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wrong = [f for f in out if not Path(f).resolve().is_relative_to(root.resolve())]
    if wrong or len(out) != len(PACKAGES):
        raise SystemExit(f"error: with PYTHONPATH={root} the packages import from {wrong or out}, not from {root}")


def write_config(root: Path, folder: Path, quick: bool) -> Path:
    config = yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8"))
    if quick:
        config["data"]["series"] = QUICK_SERIES
        config["models"]["n_paths"] = 200
        config["backtest"]["windows"] = 2
        config["institutional"].update(first_year=2023, selection_first_year=None)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def tree_memory(process: psutil.Process) -> tuple[float, float, float]:
    """(sum of RSS, sum of PSS, largest RSS) over the process and its descendants, MB. RSS counts
    the shared libraries (numpy, scipy, ...) once per process; PSS shares them out, so its sum is
    what the tree occupies."""
    rss = pss = largest = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except psutil.Error:
            continue
        rss, pss, largest = rss + info.rss, pss + info.pss, max(largest, info.rss)
    return rss / 2**20, pss / 2**20, largest / 2**20


#: creates the run folder's MLflow store (its migrations), as a run before this one would have
MLFLOW_STORE = "import mlflow, sys\nmlflow.MlflowClient(sys.argv[1]).search_experiments()\n"


def cpu_ticks() -> list[int]:
    """The machine's CPU time counters (/proc/stat: user nice system idle iowait irq softirq steal)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            return [int(v) for v in stat.readline().split()[1:9]]
    except OSError:  # not Linux
        return []


def steal_share(before: list[int], after: list[int]) -> float | None:
    """The share of the machine's CPU time the hypervisor gave to others between two readings
    (steal): a virtual machine's "quiet" is not quiet when it is high."""
    if len(before) < 8 or len(after) < 8:
        return None
    delta = [b - a for a, b in zip(before, after)]
    return delta[7] / sum(delta) if sum(delta) else None


def prepare_stores(root: Path, folder: Path, prefect_home: str) -> None:
    """A Prefect home and an MLflow store already created and migrated (a trivial flow, one MLflow
    query; not timed): the case of every monthly run after the first. Prefect's migrations take
    10-12 s on a new home, MLflow's a few seconds on a new sqlite store."""
    env = environment(root, folder, {"PREFECT_HOME": str(folder / prefect_home)})
    subprocess.run([sys.executable, "-c", PREFECT_FLOW], env=env, cwd=folder, capture_output=True, check=True)
    uri = env["EXPORTCAST__MLFLOW__TRACKING_URI"]
    subprocess.run([sys.executable, "-c", MLFLOW_STORE, uri], env=env, cwd=folder, capture_output=True, check=True)


def run_pipeline(
    label: str,
    root: Path,
    folder: Path,
    fresh: bool,
    quick: bool,
    timeout: float,
    prefect_home: str = "prefect-home",
    warm_home: bool = False,
    alone: bool = True,
) -> Run:
    if fresh:
        folder.mkdir(parents=True)
        write_config(root, folder, quick)
        if warm_home:
            prepare_stores(root, folder, prefect_home)
    fit_log = folder / f"fits-{label}.log"
    env = environment(root, folder, {FIT_LOG_ENV: str(fit_log), "PREFECT_HOME": str(folder / prefect_home)})
    log = folder / f"{label}.log"
    ticks = cpu_ticks()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "exportcast.cli", "run", "--config", str(folder / "config.yaml")],
            env=env,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        peak = [0.0, 0.0, 0.0]
        done = threading.Event()

        def sample() -> None:
            watched = psutil.Process(proc.pid)
            while not done.is_set():
                try:
                    peak[:] = [max(a, b) for a, b in zip(peak, tree_memory(watched))]
                except psutil.Error:
                    return
                done.wait(1.0)  # PSS reads every process's smaps: not too often, it takes CPU from the run

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            code = proc.wait(timeout=timeout)
        finally:
            done.set()
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
    wall = time.perf_counter() - started
    steal = steal_share(ticks, cpu_ticks())
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (reaped.ru_utime - children.ru_utime) + (reaped.ru_stime - children.ru_stime)
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"error: {label} run exited {code} (log {log}):\n{tail}")
    stages, fits, cached = read_run_json((folder / "outputs" / "run.json").read_text(encoding="utf-8"))
    lines = fit_log.read_text().splitlines() if fit_log.is_file() else []
    logged, parts = read_fit_log(lines), read_shared_parts(lines)
    print(
        f"  {label}: {wall:.1f} s, peak memory of the tree: RSS {peak[0]:.0f} MB, PSS {peak[1]:.0f} MB "
        f"(largest process {peak[2]:.0f} MB); "
        # the reaped children's CPU counts every run of this script: one run at a time only
        + (f"CPU {cpu:.1f} s (the tree, cmdstan included); " if alone else "")
        + f"load average {os.getloadavg()[0]:.1f}"
        + ("" if steal is None else f", CPU stolen by the hypervisor {steal:.0%}"),
        flush=True,
    )
    return Run(label, wall, peak[0], stages, fits, logged, cached, peak[1], peak[2], parts)


def startup_seconds(root: Path, folder: Path) -> tuple[float, float]:
    """(seconds to import the pipeline, seconds of a trivial flow with a fresh PREFECT_HOME =
    import of prefect + the ephemeral server's start + one flow run)."""
    folder.mkdir(parents=True)
    env = environment(root, folder)
    code = "import time\nt = time.perf_counter()\nimport flows.pipeline\nprint(time.perf_counter() - t)"
    imported = float(
        subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=folder, capture_output=True, text=True, check=True
        ).stdout.split()[-1]
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", PREFECT_FLOW], env=env, cwd=folder, capture_output=True, check=True)
    return imported, time.perf_counter() - started


def n_jobs_of(root: Path) -> int:
    return int(yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8"))["runtime"]["n_jobs"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="2eb1845", help="the commit to compare with")
    parser.add_argument("--quick", action="store_true", help="the reduced run (tests/flows/reduced_run.py)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="cold runs of each commit, interleaved; the median is shown"
    )
    parser.add_argument(
        "--concurrent",
        action="store_true",
        help="run the baseline's and this commit's cold runs at the same time (on a loaded machine: same load for both)",
    )
    parser.add_argument("--no-rerun", action="store_true", help="skip the cached rerun of this commit")
    parser.add_argument(
        "--warm-stores",
        action="store_true",
        help="each cold run gets a Prefect home and an MLflow store already migrated (untimed): a monthly run after the first",
    )
    parser.add_argument("--keep", type=Path, help="keep the run folders here (default: a temporary folder)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds after which one run is killed")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the baseline worktree is removed

    work = Path(tempfile.mkdtemp(prefix="speed-")) if args.keep is None else args.keep.resolve()
    work.mkdir(parents=True, exist_ok=True)
    baseline = work / "baseline-src"
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    )
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT, check=True, capture_output=True
    )
    try:
        for root in (baseline, ROOT):
            check_imports(root)
        load_before = os.getloadavg()
        print(
            f"baseline {args.baseline} vs this {head}{' (+ uncommitted changes)' if dirty else ''}; "
            f"{'quick' if args.quick else 'full'} run; "
            f"{'migrated' if args.warm_stores else 'new'} Prefect home and MLflow store; load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; work {work}",
            flush=True,
        )
        runs: dict[str, list[Run]] = {"baseline": [], "this": []}
        for i in range(args.repeat):
            pair = (("baseline", baseline), ("this", ROOT))
            if args.concurrent:
                with ThreadPoolExecutor(2) as pool:
                    futures = {
                        label: pool.submit(
                            run_pipeline,
                            label,
                            root,
                            work / f"{label}-{i}",
                            True,
                            args.quick,
                            args.timeout,
                            warm_home=args.warm_stores,
                            alone=False,
                        )
                        for label, root in pair
                    }
                for label, future in futures.items():
                    runs[label].append(future.result())
                continue
            for label, root in pair:
                folder = work / f"{label}-{i}"
                runs[label].append(
                    run_pipeline(label, root, folder, True, args.quick, args.timeout, warm_home=args.warm_stores)
                )
        base, this = median_run(runs["baseline"]), median_run(runs["this"])
        mase = {label: champion_mase(work / f"{label}-0" / "outputs" / "backtest_metrics.csv") for label in runs}
        rerun = refit = None
        if not args.no_rerun:
            last = work / f"this-{args.repeat - 1}"
            rerun = run_pipeline("rerun", ROOT, last, False, args.quick, args.timeout)
            # the same again with a new Prefect home: no stage cached, every fit from the fit cache
            refit = run_pipeline("fit-cache-rerun", ROOT, last, False, args.quick, args.timeout, "prefect-home-2")
        startup = {
            label: startup_seconds(root, work / f"startup-{label}")
            for label, root in (("baseline", baseline), ("this", ROOT))
        }
        load_after = os.getloadavg()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, capture_output=True)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(table(stage_rows(base, this, rerun), ["seconds", "baseline", "this", "ratio", "rerun"]))
    print(
        "cold fits of this commit served by the fit cache (a fit shared by two stages): "
        f"{sum(v['hits'] for v in this.fits.values())} of {sum(v['fits'] for v in this.fits.values())}"
    )
    for kind, part in this.parts.items():
        print(f"parts of fits kept by content ({kind}): {int(part['hits'])} of {int(part['fits'])} read from the cache")
    print(
        "\nper model family: fit seconds of the forecast stage (run.json), and every single-model fit of the run (fit log)"
    )
    print(
        table(
            family_rows(base, this, rerun),
            ["model", "baseline fc", "this fc", "ratio", "this all s", "fits", "cache hits", "rerun hits"],
        )
    )
    jobs_base, jobs_this = n_jobs_of(baseline if baseline.exists() else ROOT), n_jobs_of(ROOT)
    fit_this = sum(v["seconds"] for v in this.fits.values())
    print(
        f"\nfitting share (fit seconds summed over workers / (wall x n_jobs)): this {fit_share(fit_this, this.wall, jobs_this):.0%} "
        f"(forecast stage only: baseline {fit_share(sum(base.fit_seconds.values()), base.wall, jobs_base):.0%}, "
        f"this {fit_share(sum(this.fit_seconds.values()), this.wall, jobs_this):.0%})"
    )
    for name, of in (("RSS", "peak_rss_mb"), ("PSS", "peak_pss_mb"), ("largest process RSS", "largest_mb")):
        print(
            f"peak {name} of the run's process tree: baseline {getattr(base, of):.0f} MB, this {getattr(this, of):.0f} MB"
            + (f", rerun {getattr(rerun, of):.0f} MB" if rerun else "")
        )
    for label, (imported, prefect) in startup.items():
        print(
            f"start-up {label}: import flows.pipeline {imported:.1f} s; prefect import + ephemeral server + a trivial flow {prefect:.1f} s"
        )
    print(f"\nthis / baseline (cold wall): {ratio(this.wall, base.wall):.2f}")
    base_mase, this_mase = mase["baseline"], mase["this"]
    print(
        f"champion's mean backtest MASE: baseline {base_mase:.6f}, this {this_mase:.6f} "
        f"(ratio {ratio(this_mase, base_mase):.4f}; the bar: at most 1.02)"
    )
    if rerun:
        print(
            f"cached rerun / this cold: {ratio(rerun.wall, this.wall):.2f} (stages served by Prefect's cache: "
            f"{', '.join(k for k, v in rerun.cached.items() if v) or 'none'})"
        )
    if refit:
        hits = sum(v["hits"] for v in refit.fits.values())
        fits = sum(v["fits"] for v in refit.fits.values())
        print(
            f"rerun with a new Prefect home (the fit cache only) / this cold: {ratio(refit.wall, this.wall):.2f} "
            f"({refit.wall:.1f} s; {hits} of {fits} fits from the fit cache; stages "
            + ", ".join(f"{k} {v:.1f}" for k, v in refit.stages.items())
            + ")"
        )
    if args.repeat > 1:
        for label, rs in runs.items():
            print(
                f"{label} walls: {', '.join(f'{r.wall:.1f}' for r in rs)} (median {statistics.median(r.wall for r in rs):.1f})"
            )
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")


if __name__ == "__main__":
    main()
