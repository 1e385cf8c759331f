"""Does a growth autoregression forecast the semiconductor cycle? The evidence on world billings
itself (issue 9; a script, not a test).

    .venv/bin/python benchmarks/cycle.py            # about 10 s

The cycle model (``models/families/cycle.py``) of ``item:semiconductors_ministry`` learns its dynamics on
WSTS world semiconductor billings (1986 on). This script asks the prior question on WSTS alone,
where 40 years allow it: forecasting the world's annual billings of year Y at the information date
of an October Y-1 cutoff (the 16th of November: WSTS public through September), does the
autoregression of the 12-month log growth (``cycle``, order by AIC and coefficients estimated on
the billings public then) beat the project's level models (``ets``, ``theta``, seasonal naive, with
the pipeline's parameters)? And does the equal-weight mean of the cycle, ETS and Theta
(``cycle_blend``, ON for the semiconductors) beat them all?

It prints the APE of each year and the MAPE per model over 1992-2013 (the years before the
institutional comparison: the clean evidence) and 2014-2025. Every forecast goes through the one
backtest (``models.core.backtest.backtest``, fixed cutoffs, ``annual=True``): WSTS is published about
six weeks after its month and never revised in this table, so the billings public on 16 November
of Y-1 are exactly the history through September of Y-1, which is the cutoff. The annual total
of Y is the engine's annual point (the sum of the monthly means).
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

from features.leading import information_date, public_values  # noqa: E402
from features.readers import read_indicators  # noqa: E402
from flows.settings import load_settings  # noqa: E402
from models.core.backtest import backtest  # noqa: E402
from models.core.engine import ModelSpec, SeriesExtras  # noqa: E402
from models.families.cycle import MIN_RESIDUALS, SEASON, GrowthAR  # noqa: E402

WSTS = "wsts_month:billings_worldwide"
MODELS = ("cycle", "ets", "theta", "seasonal_naive")
PERIODS = {"1992-2013": (1992, 2013), "2014-2025": (2014, 2025)}


def main() -> None:
    started = time.perf_counter()
    settings = load_settings(ROOT / "config.yaml")
    settings = settings.updated("models", enabled=list(MODELS[:-1]), leading={}).updated("runtime", n_jobs=2)
    table = read_indicators(ROOT / "data")
    values = public_values(table, WSTS, as_of=table["available_from"].max())
    frame = pd.DataFrame({"unique_id": WSTS, "ds": values.index, "y": values.to_numpy()})
    years = range(PERIODS["1992-2013"][0], PERIODS["2014-2025"][1] + 1)
    cutoffs = []
    for year in years:  # the last month public on the information date of an October Y-1 cutoff
        public = public_values(table, WSTS, as_of=information_date(pd.Timestamp(year - 1, 10, 1)))
        cutoffs.append(public.index[-1])

    def blend_at(unique_id: str, cutoff: pd.Timestamp, months: pd.DatetimeIndex) -> SeriesExtras:
        """The blend (``cycle_blend``, the model itself) with the dynamics ``cycle`` estimates on
        its own history (same search, same minimum): on billings the reference IS the series, and
        the billings through the cutoff are what was public then."""
        dynamics = GrowthAR.estimate(values.loc[:cutoff].to_numpy(), max_lag=36, min_reference=SEASON + MIN_RESIDUALS)
        return SeriesExtras((ModelSpec("cycle_blend", dynamics.params()),))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = backtest(
            frame, settings.engine_settings(), horizon=15, cutoffs={WSTS: cutoffs}, annual=True, extras=blend_at
        )
    annual = bt.annual[bt.annual["model"].isin([*MODELS, "cycle_blend"])]
    truth = values.groupby(values.index.year).sum()
    errors = annual.pivot_table(index="year", columns="model", values="forecast")[[*MODELS, "cycle_blend"]]
    errors = errors.rename(columns={"cycle_blend": "blend"})
    errors = 100 * (errors.div(truth.reindex(errors.index), axis=0) - 1)
    errors.insert(0, "data_through", [f"{c:%Y-%m}" for c in cutoffs])
    pd.set_option("display.width", 160)
    print("WSTS world billings, annual total of Y forecast at the information date of October Y-1; error %")
    print(errors.round(1).to_string())
    summary = {}
    for label, (first, last) in PERIODS.items():
        part = errors.loc[first:last, [*MODELS, "blend"]]
        summary[f"MAPE {label}"] = part.abs().mean()
        summary[f"better than ets {label}"] = pd.Series(
            {name: f"{int((part[name].abs() < part['ets'].abs()).sum())} of {len(part)}" for name in ("cycle", "blend")}
        )
    print()
    print(pd.DataFrame(summary).T.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
