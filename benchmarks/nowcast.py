"""Nowcast benchmark on the embedded dataset (a script, not a test; issue 10 part 1).

    .venv/bin/python benchmarks/nowcast.py [--model ets] [--series total]

Runs ``models.applications.nowcast.backtest`` month by month over every month with customs flash data
(2016-01..2025-12) and prints the MAPE (%) of each information set (none = the one-month-ahead
model forecast, d10, d20) over 2022-2025 and over all months with a row, beside the plain
scalings of the 20-day figure (``d20 * days_in_month / 20`` and ``d20 * working days of the
month / working days of days 1-20``) on the same months. Targets (issue 10): d20 MAPE <= 3.5%
over 2022-2025 and <= 0.7x the none (model) MAPE on the same months.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.calendar import flash_working_days  # noqa: E402
from features.readers import read_embedded, read_indicators  # noqa: E402
from models.applications.nowcast import NowcastSettings, backtest, flash_frame  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ets")
    parser.add_argument("--series", default="total")
    args = parser.parse_args(argv)

    frame = read_embedded()
    y = frame[frame["unique_id"] == args.series].set_index("ds")["y"]
    indicators = read_indicators()
    flash_months = indicators.loc[indicators["indicator"].str.endswith(f":{args.series}"), "ds"]
    wd = flash_working_days(flash_months.min(), flash_months.max())
    flash, published = flash_frame(indicators, wd, args.series)
    started = time.perf_counter()
    rows = backtest(y, flash, published, settings=NowcastSettings(model=args.model), unique_id=args.series)
    seconds = time.perf_counter() - started

    d20 = flash[flash["information"] == "d20"].set_index("ds")
    scaled = pd.DataFrame(
        {
            "days": d20["value"] * d20.index.days_in_month / 20.0,
            "working_days": d20["value"] * d20["wd_month"] / d20["wd_part"],
        }
    )
    scaled["actual"] = y.reindex(scaled.index)

    print(
        f"nowcast backtest: {args.series}, model {args.model}, {len(rows)} rows, "
        f"{rows['ds'].min():%Y-%m}..{rows['ds'].max():%Y-%m}, {seconds:.1f}s"
    )
    for label, lo, hi in (("2022-2025", "2022-01-01", "2025-12-01"), ("all months", "1900-01-01", "2100-01-01")):
        part = rows[(rows["ds"] >= lo) & (rows["ds"] <= hi) & rows["ape"].notna()]
        # the same months for every column: those with all three information sets
        counts = part.groupby("ds")["information"].nunique()
        same = counts.index[counts == 3]
        part = part[part["ds"].isin(same)]
        mape = part.groupby("information")["ape"].mean()
        inside = (
            ((part["actual"] >= part["lo_80"]) & (part["actual"] <= part["hi_80"])).groupby(part["information"]).mean()
        )
        sc = scaled.loc[same]
        print(f"\n{label}: {len(same)} months ({same.min():%Y-%m}..{same.max():%Y-%m})")
        print(f"  {'information':<28}{'MAPE %':>8}{'80% cover':>11}")
        for info in ("none", "d10", "d20"):
            print(f"  {info:<28}{mape[info]:8.2f}{inside[info]:11.2f}")
        for col, name in (("days", "d20 x days/20 (plain)"), ("working_days", "d20 x working days")):
            ape = ((sc[col] - sc["actual"]).abs() / sc["actual"] * 100).mean()
            print(f"  {name:<28}{ape:8.2f}")
        print(
            f"  d20 / none ratio: {mape['d20'] / mape['none']:.2f}   "
            f"target d20 <= 3.5%: {'met' if mape['d20'] <= 3.5 else 'NOT met'}; "
            f"ratio <= 0.7: {'met' if mape['d20'] <= 0.7 * mape['none'] else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
