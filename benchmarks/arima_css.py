"""ARIMA's CSS search: scipy's finite-difference Jacobian (the reference path) against the explicit
Jacobian over the numba ARMA filter (docs/decisions/0183), timed interleaved in one process.

    .venv/bin/python benchmarks/arima_css.py [--repeats 3] [--series 45]

For each embedded series (data/exports_monthly.csv, config.yaml's arima params, the whole history):
``Arima.fit`` with ``css_fit(fast=False)`` and with ``css_fit(fast=True)``, alternating which goes
first, ``--repeats`` times. Printed: seconds of the whole fits and of the CSS fits inside them
(sums over series, the minimum over repeats per series), their ratios, and whether both paths gave
the same bits (every candidate's AICc and parameters, the chosen model's parameter vector). Then
the numba start-up a fresh process pays: a compile into an empty cache, and a load from the warm
cache (``NUMBA_CACHE_DIR`` pointed at a temporary folder, three fresh processes each).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.readers import read_embedded  # noqa: E402
from flows.settings import load_settings  # noqa: E402
from models.core import registry  # noqa: E402
from models.families import arima  # noqa: E402

ORIGINAL_CSS_FIT = arima.css_fit
STARTUP = (
    "import time; t = time.perf_counter(); import numpy as np; from models.families import arima; "
    "t1 = time.perf_counter(); f = arima._arma_filter(); out = np.empty((1, 4)); "
    "f(np.zeros((1, 2)), 1, 1, 0, 0, 2, np.ones((1, 4)), out); print(time.perf_counter() - t1)"
)


def timed_fit(y, params: dict, fast: bool) -> tuple[float, float, bytes]:
    """(fit seconds, CSS seconds inside it, the bits of every candidate and of the chosen parameters)."""
    css_seconds = [0.0]
    candidates: list[bytes] = []

    def css_fit(*args, **kwargs):
        started = time.perf_counter()
        try:
            aicc, theta = ORIGINAL_CSS_FIT(*args, **kwargs, fast=fast)
        finally:
            css_seconds[0] += time.perf_counter() - started
        candidates.append(np.float64(aicc).tobytes() + theta.tobytes())
        return aicc, theta

    arima.css_fit = css_fit
    try:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = registry.create("arima", params).fit(y)
        seconds = time.perf_counter() - started
    finally:
        arima.css_fit = ORIGINAL_CSS_FIT
    return seconds, css_seconds[0], b"".join(candidates) + model.param_values_.tobytes()


def compare(repeats: int, n_series: int) -> None:
    params = load_settings(ROOT / "config.yaml")._model_params("arima")
    frame = read_embedded(ROOT / "data")
    series = [g.set_index("ds")["y"].astype(float).asfreq("MS") for _, g in frame.groupby("unique_id", sort=True)]
    series = [y for y in series if y.notna().sum() >= arima.Arima.traits.min_obs][:n_series]
    timed_fit(series[0], params, True)  # numba's compile or cache load, not timed
    totals = {True: [0.0, 0.0], False: [0.0, 0.0]}
    differing = 0
    for i, y in enumerate(series):
        best = {True: [np.inf, np.inf], False: [np.inf, np.inf]}
        bits = {}
        for r in range(repeats):
            for fast in (True, False) if (i + r) % 2 else (False, True):
                seconds, css, bits[fast] = timed_fit(y, params, fast)
                best[fast] = [min(best[fast][0], seconds), min(best[fast][1], css)]
        differing += bits[True] != bits[False]
        for fast in (True, False):
            totals[fast][0] += best[fast][0]
            totals[fast][1] += best[fast][1]
    print(f"{len(series)} series, config params {params}, min of {repeats} interleaved repeats per series")
    print(f"{'':28s}{'reference (scipy FD)':>22s}{'fast (explicit jac)':>22s}{'ratio':>8s}")
    for j, what in enumerate(("Arima.fit seconds", "css_fit seconds inside")):
        ref, new = totals[False][j], totals[True][j]
        print(f"{what:28s}{ref:22.2f}{new:22.2f}{new / ref:8.3f}")
    print(f"series whose candidates or chosen parameters differ in any bit: {differing}")


def numba_startup() -> None:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        for label in ("empty cache (compile)", "warm cache (load)", "warm cache (load)"):
            out = subprocess.run(
                [sys.executable, "-c", STARTUP], cwd=ROOT, env=env, capture_output=True, text=True, check=True
            )
            print(f"numba start-up in a fresh process, {label}: {float(out.stdout):.3f} s (import numba + first call)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--series", type=int, default=1000)
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load average {os.getloadavg()}")
    compare(args.repeats, args.series)
    numba_startup()


if __name__ == "__main__":
    main()
