"""The two path rules of ``models.selection.combination.Combination`` side by side (issue 21, part
3; a script, not a test): would one rule for every combination change a published figure?

    .venv/bin/python benchmarks/path_rules.py            # about a minute (Prophet included)

On each series below, the five single models of the pipeline are fitted on the history through
the last complete year and the next year's annual total is drawn from 1000 joint paths of the
equal-weight mean combination (``combo_mean``) under each rule: ``linear_pool`` (what the
published ``combo_mean`` uses) and ``rank_paired`` (what the ensemble and the blends use). It
prints the 80% range of the annual total (10th-90th percentile of the drawn totals, USD bn) and
its width as a share of the median.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.core import registry  # noqa: E402
from models.selection.combination import LINEAR_POOL, RANK_PAIRED, CombinationMean  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "exports_monthly.csv"
SERIES = ("total", "item:semiconductors_ministry", "destination:china", "destination:united_states")
MEMBERS = ("seasonal_naive", "ets", "theta", "arima", "prophet")
N_PATHS = 1000


def _series(frame: pd.DataFrame, unique_id: str) -> pd.Series:
    y = frame[frame["unique_id"] == unique_id].set_index("ds")["y"].astype(float)
    y.index = pd.DatetimeIndex(y.index, name="ds")
    last_december = y.index[y.index.month == 12][-1]
    return y.loc[:last_december].asfreq("MS")


def _range(totals: np.ndarray) -> str:
    lo, mid, hi = np.percentile(totals, [10, 50, 90]) / 1e9
    return f"{lo:8.1f} - {hi:8.1f}  width {100 * (hi - lo) / mid:5.1f}%"


def main() -> None:
    warnings.filterwarnings("ignore")
    frame = pd.read_csv(DATA, parse_dates=["ds"])
    for unique_id in SERIES:
        y = _series(frame, unique_id)
        members = {m: registry.create(m).fit(y) for m in MEMBERS}
        print(f"{unique_id} (history through {y.index[-1]:%Y-%m}, total of {y.index[-1].year + 1})")
        for rule in (LINEAR_POOL, RANK_PAIRED):
            combination = CombinationMean(members)
            combination.path_rule = rule
            totals = combination.sample_paths(12, N_PATHS, seed=0).sum(axis=1)
            print(f"  {rule:<12} {_range(totals)}")


if __name__ == "__main__":
    main()
