"""Accuracy benchmark on the embedded dataset (a script, not a test).

    .venv/bin/python benchmarks/accuracy.py [--n-jobs 2] [--n-paths 500] [--models ets,arima]

Series: ``total`` and the ``item:*`` series with at least ``--min-history`` observed months
before the last cutoff (semiconductors, 2013+). Cutoffs: every October 2012 .. 2024, horizon 14
(so the cutoff of October Y-1 covers the calendar year Y in months 3..14). Models: every model
enabled in ``config.yaml`` (``models.enabled`` / ``models.params``) that can be built now.

Prints
1. monthly accuracy per model (mean over series and windows) from ``models.backtest.backtest``:
   MASE, sMAPE, RMSSE, coverage of the 80% / 95% intervals, and the MASE ratio vs seasonal_naive;
2. the annual-total error: for each cutoff October Y-1, the forecast of the calendar year Y total
   (the same backtest's ``annual=True`` totals of the year its window ends in, from the joint
   sample paths) against the observed total of Y; APE per year and model (the champion
   included), its mean, and whether the observed total fell in the 80% interval.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.backtest import backtest  # noqa: E402
from features.calendar import working_days  # noqa: E402
from features.readers import read_embedded  # noqa: E402
from flows import settings as flows_settings  # noqa: E402
from models.champion import default_champion  # noqa: E402
from models.engine import EngineSettings  # noqa: E402
from models.metrics import ape  # noqa: E402

HORIZON = 14
FIRST_CUTOFF_YEAR, LAST_CUTOFF_YEAR = 2012, 2024


def load_frame() -> pd.DataFrame:
    return read_embedded(ROOT / "data")[["unique_id", "ds", "y"]]


def load_settings(n_jobs: int, n_paths: int, only: list[str] | None, config: Path) -> tuple[EngineSettings, list[str]]:
    """The engine settings the pipeline uses (flows.settings: the ensemble's members take their
    config params), optionally restricted to some models (seasonal_naive always kept)."""
    settings = flows_settings.load_settings(config)
    if only:
        settings = settings.updated("models", enabled=[m for m in settings.models.enabled if m in only or m == "seasonal_naive"])
    settings = settings.updated("models", n_paths=n_paths).updated("runtime", n_jobs=n_jobs)
    return settings.engine_settings(), []


def working_days_exog(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    return working_days(start, end).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--n-paths", type=int, default=500)
    parser.add_argument("--min-history", type=int, default=60, help="observed months before the last cutoff for an item")
    parser.add_argument("--models", default="", help="comma-separated subset of the enabled models")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml", help="settings file (as the pipeline reads it)")
    args = parser.parse_args()

    only = [m for m in args.models.split(",") if m] or None
    settings, skipped = load_settings(args.n_jobs, args.n_paths, only, args.config)
    frame = load_frame()
    cutoffs = [pd.Timestamp(f"{year}-10-01") for year in range(FIRST_CUTOFF_YEAR, LAST_CUTOFF_YEAR + 1)]
    last_cutoff = cutoffs[-1]
    counts = frame[frame["ds"] <= last_cutoff].groupby("unique_id")["y"].count()
    keep = ["total"] + sorted(u for u, n in counts.items() if u.startswith("item:") and n >= args.min_history)
    frame = frame[frame["unique_id"].isin(keep)].reset_index(drop=True)
    exog = working_days_exog(frame["ds"].min(), last_cutoff + pd.DateOffset(months=HORIZON))

    print(f"series: {', '.join(keep)}")
    print(f"models: {', '.join(settings.model_names)}" + (f"; not available: {'; '.join(skipped)}" if skipped else ""))
    print(f"cutoffs: October {FIRST_CUTOFF_YEAR}..{LAST_CUTOFF_YEAR}, horizon {HORIZON}, exog: "
          f"{'working days' if exog is not None else 'none'}, n_jobs {settings.n_jobs}, n_paths {settings.n_paths}")

    t0 = time.perf_counter()
    bt = backtest(frame, settings, horizon=HORIZON, cutoffs=cutoffs, exog=exog, annual=True,
                  default_champion=default_champion(settings.model_names))  # the pipeline's rule
    t_bt = time.perf_counter() - t0
    fits = bt.fits[bt.fits["model"] != "champion"]
    print(f"\nbacktest: {t_bt:.1f} s; windows per series: "
          + ", ".join(f"{u} {n}" for u, n in bt.metrics.groupby("unique_id")["cutoff"].nunique().items()))
    status = fits.groupby(["model", "status"]).size().unstack(fill_value=0)
    print("fit status per model (series x windows):\n" + status.to_string())

    pd.set_option("display.width", 200)
    for scope, metrics in [("all series", bt.metrics)] + [(u, g) for u, g in bt.metrics.groupby("unique_id")]:
        table = metrics.groupby("model")[["mase", "smape", "rmsse", "coverage_80", "coverage_95"]].mean()
        table["ratio vs seasonal_naive"] = table["mase"] / table.loc["seasonal_naive", "mase"]
        order = [m for m in (*settings.model_names, "champion") if m in table.index]
        print(f"\n== monthly accuracy, {scope} (mean over windows; h = 1..{HORIZON}) ==")
        print(table.loc[order].round(3).to_string())

    # annual totals: the calendar year after each October cutoff, from the backtest's 14-month paths
    actual = frame.assign(year=frame["ds"].dt.year).groupby(["unique_id", "year"])["y"].agg(["sum", "count"])
    rows = []
    for _, r in bt.annual.iterrows():
        key = (r["unique_id"], r["year"])
        if key not in actual.index or actual.loc[key, "count"] != 12 or np.isnan(r["forecast"]):
            continue
        truth = float(actual.loc[key, "sum"])
        rows.append({"unique_id": r["unique_id"], "year": r["year"], "model": r["model"],
                     "ape": float(ape(truth, r["forecast"])), "bias_pct": 100 * (r["forecast"] - truth) / truth,
                     "in_80": r["lo_80"] <= truth <= r["hi_80"], "in_95": r["lo_95"] <= truth <= r["hi_95"]})
    annual = pd.DataFrame(rows)
    order = [*settings.model_names, "champion"]
    for uid, g in annual.groupby("unique_id"):
        wide = g.pivot(index="year", columns="model", values="ape")
        wide = wide[[m for m in order if m in wide.columns]]
        print(f"\n== annual-total APE %, {uid} (forecast of year Y from data through October Y-1) ==")
        print(wide.round(1).to_string())
        summary = g.groupby("model").agg(mean_ape=("ape", "mean"), median_ape=("ape", "median"),
                                          mean_bias_pct=("bias_pct", "mean"), coverage_80=("in_80", "mean"),
                                          coverage_95=("in_95", "mean"), years=("year", "count"))
        summary["ratio vs seasonal_naive"] = summary["mean_ape"] / summary.loc["seasonal_naive", "mean_ape"]
        print(summary.loc[[m for m in order if m in summary.index]].round(3).to_string())


if __name__ == "__main__":
    main()
