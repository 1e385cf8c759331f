"""Prophet's optimiser: Prophet's own choice (Newton below 100 observations, L-BFGS above) against
L-BFGS on every series, on the project's rolling backtest of every embedded series (a script, not
a test).

    .venv/bin/python benchmarks/prophet_optimiser.py [--n-jobs 2]

Each variant is the configured Prophet (config.yaml's params, the working-day regressor) with only
``algorithm`` set, run alone (with the always-added seasonal naive) on config.yaml's horizon,
windows and step, the fit cache off. Printed per variant: wall seconds, the mean MASE, sMAPE and
80%/95% coverage over the same series-windows, and how many series-windows the L-BFGS forecast is
better on; then the same for the series under 100 observations (the ones whose optimiser changes).
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

from features.calendar import working_days_within  # noqa: E402
from features.readers import read_embedded  # noqa: E402
from flows.settings import load_settings  # noqa: E402
from models.core.backtest import backtest  # noqa: E402
from models.core.engine import ModelSpec  # noqa: E402

VARIANTS = {"prophet's choice": None, "L-BFGS always": "LBFGS"}
COLUMNS = ["mase", "smape", "coverage_80", "coverage_95"]


def run(frame: pd.DataFrame, settings, algorithm: str | None, n_jobs: int) -> tuple[float, pd.DataFrame]:
    params = {**settings._model_params("prophet"), "algorithm": algorithm}
    engine = dataclasses.replace(
        settings.engine_settings(), models=(ModelSpec("prophet", params),), n_jobs=n_jobs, fit_cache=""
    )
    bt = settings.backtest
    exog = working_days_within(frame["ds"].min(), frame["ds"].max() + pd.DateOffset(months=bt.horizon))
    start = time.perf_counter()
    result = backtest(frame, engine, exog=exog, horizon=bt.horizon, windows=bt.windows, step=bt.step)
    seconds = time.perf_counter() - start
    metrics = result.metrics[result.metrics["model"] == "prophet"].set_index(["unique_id", "cutoff"])[COLUMNS]
    return seconds, metrics


def summary(label: str, seconds: float, metrics: pd.DataFrame, reference: pd.DataFrame | None) -> str:
    means = ", ".join(f"{c} {metrics[c].mean():.4f}" for c in COLUMNS)
    text = f"{label:>17}: {seconds:6.1f} s, {len(metrics)} series-windows, {means}"
    if reference is not None:
        better = int((metrics["mase"] < reference["mase"]).sum())
        same = int((metrics["mase"] == reference["mase"]).sum())
        ratio = metrics["mase"].mean() / reference["mase"].mean()
        text += f"; MASE {ratio:.4f}x the first, better on {better}, equal on {same}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    settings = load_settings(ROOT / "config.yaml")
    frame = read_embedded(ROOT / "data")[["unique_id", "ds", "y"]]
    observed = frame.dropna(subset=["y"]).groupby("unique_id").size()
    results = {label: run(frame, settings, algorithm, args.n_jobs) for label, algorithm in VARIANTS.items()}
    bt = settings.backtest
    print(
        f"{frame['unique_id'].nunique()} series ({int((observed < 100).sum())} under 100 observations); "
        f"horizon {bt.horizon}, windows {bt.windows}, step {bt.step}; n_jobs {args.n_jobs}; "
        "seconds include the seasonal naive"
    )
    first = next(iter(results.values()))[1]
    for subset, ids in (("all series", observed.index), ("under 100 obs.", observed.index[observed < 100])):
        print(subset)
        for label, (seconds, metrics) in results.items():
            common = first.index.intersection(metrics.index)
            common = common[common.get_level_values("unique_id").isin(ids)]
            reference = None if metrics is first else first.loc[common]
            print("  " + summary(label, seconds, metrics.loc[common], reference))


if __name__ == "__main__":
    main()
