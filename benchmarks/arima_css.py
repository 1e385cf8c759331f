"""ARIMA fits before and after docs/decisions/0183, timed interleaved in one run.

    .venv/bin/python benchmarks/arima_css.py [--baseline 002d448] [--repeats 3] [--series 1000]

Every embedded series with at least 24 observed months (data/exports_monthly.csv, config.yaml's
arima params, the whole history) is fitted by ``Arima.fit`` in three ways, alternating their order
from one series and repeat to the next, and the minimum over ``--repeats`` is kept per series:

- **baseline**: the ``--baseline`` commit's code (a temporary ``git worktree``), in a worker process;
- **this commit**: this checkout's code, in a second worker process of the same kind;
- in this process, this checkout's ``css_fit(fast=False)`` (the reference path: scipy's own
  finite differences over ``np.convolve`` polynomials and ``lfilter``) against ``fast=True``.

Printed: seconds of the fits and of the CSS fits inside them (sums over series), the ratios, and
the number of series whose fits differ in any bit (every CSS candidate's AICc and parameters, the
chosen parameter vector, the 18-month forecast and 100 sample paths from a fixed seed). Then the
numba start-up a fresh process pays: a compile into an empty cache, and loads from the warm cache.
``--startup-only``: only the numba start-up. ``--variants-only``: only the in-process comparison of the reference, numba and pure numpy/scipy
CSS paths (``css_variants``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"max_p": 2, "max_q": 2, "max_P": 1, "max_Q": 1, "max_d": 1, "working_days": False}

#: a worker: imports the checkout it runs in (its cwd comes first on sys.path), reads "index fast"
#: lines, fits that series and answers one JSON line
WORKER = """
import hashlib, json, sys, time, warnings
import numpy as np
sys.path.insert(0, '.')
from features.readers import read_embedded
from models.core import registry
from models.families import arima
warnings.simplefilter('ignore')
frame = read_embedded('data')
series = [g.set_index('ds')['y'].astype(float).asfreq('MS') for _, g in frame.groupby('unique_id', sort=True)]
series = [y for y in series if y.notna().sum() >= 24]
ORIGINAL = arima.css_fit
print(json.dumps({'n': len(series), 'file': arima.__file__}), flush=True)
for line in sys.stdin:
    index, fast = line.split()
    css, digest = [0.0], hashlib.sha256()
    def css_fit(*args, **kwargs):
        started = time.perf_counter()
        try:
            aicc, theta = ORIGINAL(*args, **kwargs, **({} if fast == 'default' else {'fast': fast == 'True'}))
        finally:
            css[0] += time.perf_counter() - started
        digest.update(np.float64(aicc).tobytes() + theta.tobytes())
        return aicc, theta
    arima.css_fit = css_fit
    started = time.perf_counter()
    model = registry.create('arima', PARAMS).fit(series[int(index)])
    seconds = time.perf_counter() - started
    digest.update(model.param_values_.tobytes())
    digest.update(model.predict(18).to_numpy(dtype=float).tobytes())
    digest.update(model.sample_paths(18, 100, seed=7).tobytes())
    print(json.dumps({'seconds': seconds, 'css': css[0], 'bits': digest.hexdigest()}), flush=True)
"""

STARTUP = (
    "import time; import numpy as np; from models.families import arima; t = time.perf_counter(); "
    "f = arima._arma_filter(); out = np.empty((1, 4)); "
    "f(np.zeros((1, 2)), 1, 1, 0, 0, 2, np.ones((1, 4)), out); print(time.perf_counter() - t)"
)


class Worker:
    """A Python process fitting series with the code of one checkout."""

    def __init__(self, checkout: Path) -> None:
        source = f"PARAMS = {PARAMS!r}\n" + WORKER
        self.process = subprocess.Popen(
            [sys.executable, "-c", source], cwd=checkout, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        hello = json.loads(self.process.stdout.readline())
        self.n_series, self.file = hello["n"], hello["file"]

    def fit(self, index: int, fast: str) -> dict:
        self.process.stdin.write(f"{index} {fast}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def compare(baseline: str, repeats: int, n_series: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        old_checkout = Path(folder) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(old_checkout), baseline], cwd=ROOT, check=True)
        try:
            runs = {
                "baseline": (Worker(old_checkout), "default"),
                "reference path (fast=False)": (Worker(ROOT), "False"),
                "this commit": (Worker(ROOT), "True"),
            }
            report(runs, repeats, n_series, baseline)
            for worker, _ in runs.values():
                worker.close()
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_checkout)], cwd=ROOT, check=True)


def report(runs: dict, repeats: int, n_series: int, baseline: str) -> None:
    names = list(runs)
    n = min(n_series, runs[names[0]][0].n_series)
    for worker, fast in runs.values():
        worker.fit(0, fast)  # imports, numba's compile or cache load: not timed
    totals = {name: [0.0, 0.0] for name in names}
    differing = {name: 0 for name in names[1:]}
    for i in range(n):
        best = {name: [np.inf, np.inf] for name in names}
        bits = {}
        for r in range(repeats):
            shift = (i + r) % len(names)
            for name in names[shift:] + names[:shift]:
                worker, fast = runs[name]
                out = worker.fit(i, fast)
                best[name] = [min(best[name][0], out["seconds"]), min(best[name][1], out["css"])]
                bits[name] = out["bits"]
        for name in names:
            totals[name][0] += best[name][0]
            totals[name][1] += best[name][1]
        for name in names[1:]:
            differing[name] += bits[name] != bits[names[0]]
    print(f"{n} series, arima params {PARAMS}, the minimum of {repeats} interleaved repeats per series")
    print(f"baseline {baseline}: {runs[names[0]][0].file}")
    print(f"{'':30s}{'Arima.fit s':>12s}{'ratio':>8s}{'css_fit s':>12s}{'ratio':>8s}{'series differing':>18s}")
    base_fit, base_css = totals[names[0]]
    for name in names:
        fit, css = totals[name]
        diff = "" if name == names[0] else str(differing[name])
        print(f"{name:30s}{fit:12.2f}{fit / base_fit:8.3f}{css:12.2f}{css / base_css:8.3f}{diff:>18s}")


def css_variants(repeats: int) -> None:
    """In this process: ``css_fit`` on 6 candidates x 4 long series by the reference path, by the
    numba filter, and by a pure numpy/scipy variant of the fast path (the same polynomials and
    explicit Jacobian, ``lfilter`` once per row instead of the numba kernel); all three must give
    the same bits."""
    import pandas as pd
    from scipy.signal import lfilter

    sys.path.insert(0, str(ROOT))
    from models.families import arima

    frame = pd.read_csv(ROOT / "data" / "exports_monthly.csv", parse_dates=["ds"])
    ws = []
    for uid in ("total", "destination:united_states", "destination:vietnam", "item:auto_parts"):
        ws.append(np.diff(np.log(frame[frame.unique_id == uid].sort_values("ds")["y"].to_numpy(float))))
    candidates = [((2, 2, 1, 1), 0), ((0, 0, 0, 0), 1), ((1, 0, 1, 0), 1), ((0, 1, 0, 1), 1), ((2, 1, 1, 1), 0)]
    numba_filter = arima._arma_filter()

    def numpy_filter(arma, p, q, P, Q, width, u, out):
        ar = arima._lag_rows(arma[:, :p], arma[:, p + q : p + q + P], -1.0)
        ma = arima._lag_rows(arma[:, p : p + q], arma[:, p + q + P :], 1.0)
        for r in range(len(arma)):
            out[r] = lfilter(ar[r], ma[r], u[r])

    def run(mode: str) -> list:
        arima._arma_filter = (lambda: numpy_filter) if mode == "numpy" else (lambda: numba_filter)
        bits = []
        for w in ws:
            for c, k in candidates:
                try:
                    bits.append(arima.css_fit(w, None, c, bool(k), 14, fast=mode != "reference")[1].tobytes())
                except Exception as exc:  # a rejected candidate: both paths must reject it
                    bits.append(str(exc))
        return bits

    modes = ("reference", "numba", "numpy")
    expected = [run(mode) for mode in modes][0]
    seconds = dict.fromkeys(modes, 0.0)
    for r in range(repeats):
        for mode in modes[r % 3 :] + modes[: r % 3]:
            started = time.perf_counter()
            assert run(mode) == expected, mode
            seconds[mode] += time.perf_counter() - started
    print(f"css_fit, {len(candidates)} candidates x {len(ws)} long series, {repeats} interleaved repeats:")
    for mode in modes:
        print(f"  {mode:10s}{seconds[mode]:8.2f} s   ratio {seconds[mode] / seconds['reference']:.3f}   same bits")


def numba_startup() -> None:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        for label in ("empty cache (compile)", "warm cache (load)", "warm cache (load)"):
            out = subprocess.run(
                [sys.executable, "-c", STARTUP], cwd=ROOT, env=env, capture_output=True, text=True, check=True
            )
            print(f"numba in a fresh process, {label}: {float(out.stdout):.3f} s (import numba + first call)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="002d448")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--variants-only", action="store_true", help="only the in-process css_fit variants")
    parser.add_argument("--startup-only", action="store_true", help="only numba's start-up in fresh processes")
    args = parser.parse_args()
    if args.startup_only:
        print(f"load average {os.getloadavg()}")
        numba_startup()
        return
    if args.variants_only:
        css_variants(max(args.repeats, 3))
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, this commit {commit.strip()}, "
        f"load average {os.getloadavg()}, {os.cpu_count()} cores"
    )
    compare(args.baseline, args.repeats, args.series)
    css_variants(max(args.repeats, 3))
    numba_startup()


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    main()
