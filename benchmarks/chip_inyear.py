"""Item 5 of issue 24: do the chip-market series (the DRAM export price index, SK hynix, SOX) help
the semiconductors' in-year tracking? A script, not a test.

    .venv/bin/python benchmarks/chip_inyear.py          # about 1 min

``item:semiconductors_ministry``, target years 2016-2025 (chip_momentum needs 25 months of the
series' own history, from 2013-01), at the information date after each month m = 0..11 of the
year is confirmed (the 16th of month m+1; m = 0: December of Y-1): the tracked annual total =
the confirmed months + the forecast of the remaining 12 - m months, monthly information only (no
flash, as ``benchmarks/tracking.py --no-flash``). Candidates: the tracking model (``theta``,
``models.applications.inyear.InyearSettings``), ``chip_momentum`` (its regressions and market columns as public
on each information date, through ``models.families.leading_extras.LeadingExtras``) and their equal mean. Prints the
mean APE (%) by as-of month and overall, over the same (year, month) pairs.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.readers import read_embedded, read_indicators  # noqa: E402
from flows import jobs  # noqa: E402
from flows.settings import load_settings  # noqa: E402
from models.core import registry  # noqa: E402

SEMIS = "item:semiconductors_ministry"
YEARS = range(2016, 2026)


def main() -> None:
    started = time.perf_counter()
    settings = load_settings(ROOT / "config.yaml").updated("models", leading={SEMIS: ["chip_momentum"]})
    table = read_indicators(ROOT / "data")
    extras = jobs.leading_extras(settings, table)
    frame = read_embedded(ROOT / "data")
    y_all = frame[frame["unique_id"] == SEMIS].set_index("ds")["y"].astype(float).asfreq("MS")
    rows = []
    for year in YEARS:
        actual = float(y_all[str(year)].sum())
        for m in range(12):
            cutoff = pd.Timestamp(year, 1, 1) - pd.offsets.MonthBegin(1) + pd.offsets.MonthBegin(m)
            y = y_all[:cutoff]
            h = 12 - m
            months = pd.date_range(y.index[0], cutoff + pd.offsets.MonthBegin(h), freq="MS", name="ds")
            confirmed = float(y[str(year)].sum()) if m else 0.0
            got = {"theta": registry.create("theta", {}).fit(y).predict(h)["forecast"].sum()}
            ex = extras(SEMIS, cutoff, months)
            if ex.models:
                model = registry.create("chip_momentum", ex.models[0].params).fit(y, ex.exog.loc[y.index])
                got["chip_momentum"] = model.predict(h, ex.exog.loc[months[len(y) :]])["forecast"].sum()
                got["mean"] = (got["theta"] + got["chip_momentum"]) / 2
            for name, rest in got.items():
                rows.append((year, m, name, 100 * abs((confirmed + rest) / actual - 1)))
    ape = pd.DataFrame(rows, columns=["year", "months_confirmed", "model", "ape"])
    paired = ape.pivot_table(index=["year", "months_confirmed"], columns="model", values="ape").dropna()
    by_month = paired.groupby("months_confirmed").mean()
    pd.set_option("display.width", 160)
    print(
        f"{SEMIS}: tracked annual total, mean APE % by months of the year confirmed, {paired.index.get_level_values(0).min()}-"
        f"{paired.index.get_level_values(0).max()} ({len(paired)} pairs)"
    )
    print(by_month.round(2).to_string())
    print("\nall months:")
    print(paired.mean().round(2).to_string())
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    warnings.simplefilter("ignore")
    main()
