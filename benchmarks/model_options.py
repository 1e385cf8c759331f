"""Two model options measured on the real data (a script, not a test), 2026-11-30:

    .venv/bin/python benchmarks/model_options.py            # both, about 1 min on 2 cores

- ``ets-maxiter``: ETS with ``maxiter`` 200 (config) against 50, on the pipeline's rolling
  backtest of every embedded series (config's horizon, windows, step): wall time and mean MASE.
  Measured: 0.79x the time at 1.007x the MASE, so 200 is kept (README, *Scaling out*).
- ``arima-working-days``: ARIMA with and without the Korean working-day regressor, October cutoffs
  2001-2024 (total) and 2014-2024 (semiconductors, ministry basis), horizon 12. Measured: mean
  MASE 1.240 with vs 1.280 without; left off in config.yaml until the whole backtest decides.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.readers import read_embedded  # noqa: E402
from flows import jobs  # noqa: E402
from flows.settings import load_settings  # noqa: E402
from models.core.backtest import backtest  # noqa: E402
from models.core.engine import ModelSpec  # noqa: E402


def _with(settings, model: str, **params):
    """The engine settings with ``model`` alone, its config params updated by ``params``."""
    base = settings.engine_settings()
    return dataclasses.replace(base, models=(ModelSpec(model, {**settings._model_params(model), **params}),))


def ets_maxiter(settings, frame: pd.DataFrame) -> None:
    print("== ETS maxiter, rolling backtest of every series")
    scores = {}
    for maxiter in (200, 50):
        start = time.perf_counter()
        bt = backtest(
            frame,
            _with(settings, "ets", maxiter=maxiter),
            horizon=settings.backtest.horizon,
            windows=settings.backtest.windows,
            step=settings.backtest.step,
        )
        seconds = time.perf_counter() - start
        scores[maxiter] = bt.metrics[bt.metrics["model"] == "ets"].set_index(["unique_id", "cutoff"])["mase"]
        print(
            f"  maxiter {maxiter:>3}: {seconds:6.1f} s wall (seasonal_naive and workers included), "
            f"{len(scores[maxiter])} series-windows, mean MASE {scores[maxiter].mean():.4f}"
        )
    diff = (scores[50] - scores[200]).abs()
    print(
        f"  MASE 50 / 200: {scores[50].mean() / scores[200].mean():.4f}; series-windows differing by > 0.001: "
        f"{int((diff > 0.001).sum())} of {len(diff)}; largest difference {diff.max():.4f}"
    )


def arima_working_days(settings, frame: pd.DataFrame) -> None:
    print("== ARIMA with / without the working-day regressor, October cutoffs, horizon 12")
    two = frame[frame["unique_id"].isin(["total", "item:semiconductors_ministry"])].reset_index(drop=True)
    cutoffs = {
        "total": [pd.Timestamp(f"{y}-10-01") for y in range(2001, 2025)],
        "item:semiconductors_ministry": [pd.Timestamp(f"{y}-10-01") for y in range(2014, 2025)],
    }
    exog = jobs.working_day_exog(two, pd.Timestamp("2026-12-01"), settings)
    for working_days in (False, True):
        bt = backtest(two, _with(settings, "arima", working_days=working_days), horizon=12, cutoffs=cutoffs, exog=exog)
        m = bt.metrics[bt.metrics["model"] == "arima"]
        by_series = ", ".join(f"{u} {v:.3f}" for u, v in m.groupby("unique_id")["mase"].mean().items())
        print(f"  working_days {str(working_days):5}: {len(m)} windows, mean MASE {m['mase'].mean():.3f} ({by_series})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="ets-maxiter,arima-working-days")
    args = parser.parse_args()
    settings = load_settings(ROOT / "config.yaml")
    frame = read_embedded(ROOT / "data")[["unique_id", "ds", "y"]]
    runs = {"ets-maxiter": ets_maxiter, "arima-working-days": arima_working_days}
    for name in args.sections.split(","):
        runs[name](settings, frame)


if __name__ == "__main__":
    main()
