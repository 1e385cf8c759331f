"""Speed benchmark of the engine (a script, not a test).

    .venv/bin/python benchmarks/speed.py [--n-series 50] [--months 150] [--models seasonal_naive,ets,theta,arima]

For each model: times ``models.core.engine.forecast`` (horizon 12, annual totals with 1000 paths) and
``models.core.backtest.backtest`` (horizon 12, 4 windows, step 6) on N seeded synthetic series of
``--months`` months (multiplicative trend x seasonality x noise, in USD-like levels) with
n_jobs = 1 and 2. Prints seconds, seconds per series, the parallel speed-up and the peak memory
(max RSS of this process or any finished worker, via resource.getrusage; the loky workers
stay alive between runs, so their RSS appears once they exit).
"""

from __future__ import annotations

import argparse
import functools
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.core import registry  # noqa: E402
from models.core.backtest import backtest  # noqa: E402
from models.core.engine import EngineSettings, ModelSpec, forecast  # noqa: E402


def synthetic(n_series: int, months: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2013-01-01", periods=months, freq="MS")
    t = np.arange(months)
    parts = []
    for i in range(n_series):
        level = 10 ** rng.uniform(8, 10.5)
        growth = rng.normal(0.004, 0.003)
        season = 1 + rng.uniform(0.03, 0.15) * np.sin(2 * np.pi * (t + rng.integers(12)) / 12)
        noise = np.exp(np.cumsum(rng.normal(0, 0.02, months)) + rng.normal(0, 0.03, months))
        parts.append(
            pd.DataFrame({"unique_id": f"s{i:03d}", "ds": ds, "y": level * np.exp(growth * t) * season * noise})
        )
    return pd.concat(parts, ignore_index=True)


def timed(func):
    """Wall seconds and the max RSS (MB) so far of this process and of its (reaped) workers.
    tracemalloc is NOT used: tracing slows the main process several-fold and would fake the
    n_jobs=1 versus 2 comparison (the loky workers are not traced)."""
    t0 = time.perf_counter()
    func()
    seconds = time.perf_counter() - t0
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return seconds, max(own, children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-series", type=int, default=50)
    parser.add_argument("--months", type=int, default=150)
    parser.add_argument("--models", default="seasonal_naive,naive,ets,theta,arima,prophet,ensemble")
    args = parser.parse_args()
    frame = synthetic(args.n_series, args.months)
    print(f"{args.n_series} synthetic series x {args.months} months")
    rows = []
    for name in [m for m in args.models.split(",") if m]:
        try:
            registry.create(name)
        except Exception as exc:
            print(f"skip {name}: {type(exc).__name__}: {exc}")
            continue
        for task in ("forecast", "backtest"):
            result = {"model": name, "task": task}
            for n_jobs in (1, 2):
                settings = EngineSettings(models=(ModelSpec(name),), n_jobs=n_jobs, n_paths=1000)
                if task == "forecast":
                    year = int(frame["ds"].max().year) + 1
                    run = functools.partial(forecast, frame, settings, horizon=12, annual_year=year)
                else:
                    run = functools.partial(backtest, frame, settings, horizon=12, windows=4, step=6)
                seconds, peak = timed(run)
                result[f"s_jobs{n_jobs}"] = seconds
                result[f"max_rss_mb_jobs{n_jobs}"] = peak
            n_fits = args.n_series * (1 if task == "forecast" else 4)
            result["ms_per_fit_jobs1"] = 1000 * result["s_jobs1"] / n_fits
            result["speedup"] = result["s_jobs1"] / result["s_jobs2"]
            rows.append(result)
            print(
                f"{name:>15} {task:>8}: {result['s_jobs1']:7.2f} s (1 job)  {result['s_jobs2']:7.2f} s (2 jobs)  "
                f"speed-up {result['speedup']:.2f}x",
                flush=True,
            )
    table = pd.DataFrame(rows).set_index(["model", "task"])
    pd.set_option("display.width", 200)
    print("\nseconds include seasonal_naive (always fitted); a 'fit' = one series x one window, all models")
    print(table.round(3).to_string())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nmax RSS of the main process: {rss:.0f} MB")


if __name__ == "__main__":
    main()
