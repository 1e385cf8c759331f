"""Does a growth autoregression forecast the semiconductor cycle? The evidence on world billings
itself (issue 9; a script, not a test).

    .venv/bin/python benchmarks/cycle.py            # about 1 min

The cycle model (``models/cycle.py``) of ``item:semiconductors_ministry`` learns its dynamics on
WSTS world semiconductor billings (1986 on). This script asks the prior question on WSTS alone,
where 40 years allow it: forecasting the world's annual billings of year Y at the information date
of an October Y-1 cutoff (the 16th of November: WSTS public through September), does the
autoregression of the 12-month log growth (``cycle``, order by AIC and coefficients estimated on
the billings public then) beat the project's level models (``ets``, ``theta``, seasonal naive, with
the pipeline's parameters)?

It prints the APE of each year and the MAPE per model over 1992-2013 (the years before the
institutional comparison: the clean evidence, seen before the model was wired in) and 2014-2025.
Every model gets the same history (the billings public on that date, from 1986); the annual total
of Y is the sum of the monthly mean forecasts.
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
from models import registry  # noqa: E402

WSTS = "wsts_month:billings_worldwide"
MODELS = ("cycle", "ets", "theta", "seasonal_naive")
PERIODS = {"1992-2013": (1992, 2013), "2014-2025": (2014, 2025)}


def annual_forecast(name: str, params: dict, history: pd.Series, year: int) -> float:
    model = registry.create(name, params).fit(history)
    h = (year - history.index[-1].year) * 12 + 12 - history.index[-1].month
    forecast = model.predict(h)["forecast"]
    return float(forecast[forecast.index.year == year].sum())


def main() -> None:
    started = time.perf_counter()
    settings = load_settings(ROOT / "config.yaml")
    table = read_indicators(ROOT / "data")
    actual = table[table["indicator"] == WSTS].set_index("ds")["value"]
    rows = []
    for year in range(PERIODS["1992-2013"][0], PERIODS["2014-2025"][1] + 1):
        info = information_date(pd.Timestamp(year - 1, 10, 1))
        history = public_values(table, WSTS, as_of=info)
        history.index.freq = "MS"
        truth = float(actual[actual.index.year == year].sum())
        row = {"year": year, "data_through": f"{history.index[-1]:%Y-%m}"}
        for name in MODELS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                forecast = annual_forecast(name, dict(settings.models.params.get(name, {})), history, year)
            row[name] = 100 * (forecast / truth - 1)
        rows.append(row)
    errors = pd.DataFrame(rows).set_index("year")
    pd.set_option("display.width", 160)
    print("WSTS world billings, annual total of Y forecast at the information date of October Y-1; error %")
    print(errors.round(1).to_string())
    summary = {}
    for label, (first, last) in PERIODS.items():
        part = errors.loc[first:last, list(MODELS)]
        summary[f"MAPE {label}"] = part.abs().mean()
        summary[f"cycle better than ets {label}"] = pd.Series(
            {"cycle": f"{int((part['cycle'].abs() < part['ets'].abs()).sum())} of {len(part)}"})
    print()
    print(pd.DataFrame(summary).T.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
