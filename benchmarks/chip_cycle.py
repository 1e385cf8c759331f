"""Era 1 of the chip-cycle protocol (docs/decisions/0150-chip-cycle-protocol.md): do the market
momentum candidates forecast world semiconductor billings? A script, not a test.

    .venv/bin/python benchmarks/chip_cycle.py            # about 1 min

WSTS world billings, the annual total of year Y forecast at the information date of an October
Y-1 cutoff (the 16th of November: WSTS public through September, the cutoff), through the one
backtest (``models.core.backtest.backtest``, fixed cutoffs, ``annual=True``) and the pipeline's leading
extras (``models.families.leading_extras.LeadingExtras``): ``chip_momentum``, ``chip_momentum_blend`` and ``cycle_blend``
learn their regressions and dynamics on the billings as public on the information date of the
cutoff (WSTS through the month before it, the market series through the cutoff month), as they do
for Korea. Level models ETS (damped) and Theta with the pipeline's settings. Prints each year's
error (%) and the MAPE per model over 1995-2013 (the protocol's era: the years where every candidate
runs) and 2014-2025 (shown, not part of the choice), and the verdict of the rule on era 1.

Era 2 (the Korean series, from a saved institutional comparison with the candidates on)::

    EXPORTCAST__MODELS__LEADING='{"item:semiconductors_ministry": ["cycle_blend", "chip_momentum",
        "chip_momentum_blend"]}' .venv/bin/python benchmarks/accuracy.py --recompute --save-comparison /tmp/cmp.csv
    .venv/bin/python benchmarks/chip_cycle.py --korea /tmp/cmp.csv

prints the October Y-1 outlooks' errors of ``item:semiconductors_ministry`` 2014-2025 and each
candidate's MAPE beside cycle_blend, ETS and Theta over the years where all four run, with the verdict.
"""

from __future__ import annotations

import argparse
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
from flows import jobs  # noqa: E402
from flows.settings import load_settings  # noqa: E402
from models.core.backtest import backtest  # noqa: E402

WSTS = "wsts_month:billings_worldwide"
CANDIDATES = ("chip_momentum", "chip_momentum_blend")
INCUMBENTS = ("cycle_blend", "ets", "theta")
PERIODS = {"1995-2013": (1995, 2013), "2014-2025": (2014, 2025)}


def main() -> None:
    started = time.perf_counter()
    settings = load_settings(ROOT / "config.yaml")
    settings = settings.updated(
        "models", enabled=["ets", "theta"], leading={WSTS: ["cycle_blend", *CANDIDATES]}
    ).updated("runtime", n_jobs=2)
    table = read_indicators(ROOT / "data")
    values = public_values(table, WSTS, as_of=table["available_from"].max())
    frame = pd.DataFrame({"unique_id": WSTS, "ds": values.index, "y": values.to_numpy()})
    years = range(PERIODS["1995-2013"][0], PERIODS["2014-2025"][1] + 1)
    cutoffs = [public_values(table, WSTS, as_of=information_date(pd.Timestamp(y - 1, 10, 1))).index[-1] for y in years]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = backtest(
            frame,
            settings.engine_settings(),
            horizon=15,
            cutoffs={WSTS: cutoffs},
            annual=True,
            extras=jobs.leading_extras(settings, table),
        )
    models = [*CANDIDATES, *INCUMBENTS]
    annual = bt.annual[bt.annual["model"].isin(models)]
    truth = values.groupby(values.index.year).sum()
    forecasts = annual.pivot_table(index="year", columns="model", values="forecast").reindex(columns=models)
    errors = 100 * (forecasts.div(truth.reindex(forecasts.index), axis=0) - 1)
    skipped = bt.skipped if hasattr(bt, "skipped") else None
    errors.insert(0, "data_through", [f"{c:%Y-%m}" for c in cutoffs[: len(errors)]])
    pd.set_option("display.width", 180)
    print("WSTS world billings, annual total of Y forecast at the information date of October Y-1; error %")
    print(errors.round(1).to_string())
    if skipped is not None and len(skipped):
        print(skipped.to_string())
    for label, (first, last) in PERIODS.items():
        part = errors.loc[first:last, models].dropna()  # the years where every candidate runs
        mape = part.abs().mean()
        print(f"\n{label}: {len(part)} years where every model runs ({', '.join(map(str, part.index))})")
        print(mape.round(2).to_string())
        if label == "1995-2013":
            for name in CANDIDATES:
                wins = all(mape[name] < mape[other] for other in INCUMBENTS)
                print(
                    f"era 1 verdict, {name}: {'WINS' if wins else 'does not win'} "
                    f"({mape[name]:.2f} vs " + ", ".join(f"{o} {mape[o]:.2f}" for o in INCUMBENTS) + ")"
                )
    print(f"\n{time.perf_counter() - started:.0f} s")


def korea_era(comparison: Path) -> None:
    """Era 2 of the protocol from a saved comparison (``accuracy.py --save-comparison``)."""
    c = pd.read_csv(comparison)
    s = c[
        (c["unique_id"] == "item:semiconductors_ministry")
        & c["actual_usd_bn"].notna()
        & c["target_year"].between(2014, 2025)
    ].drop_duplicates(["target_year", "model"])
    errors = s.pivot_table(index="target_year", columns="model", values="model_error_pct")
    errors = errors[[m for m in (*CANDIDATES, *INCUMBENTS, "ensemble", "champion") if m in errors.columns]]
    pd.set_option("display.width", 180)
    print("item:semiconductors_ministry, October Y-1 outlooks, error % by year")
    print(errors.round(1).to_string())
    for name in [m for m in CANDIDATES if m in errors.columns]:
        part = errors[[name, *INCUMBENTS]].dropna()
        mape = part.abs().mean()
        wins = all(mape[name] < mape[other] for other in INCUMBENTS)
        print(
            f"era 2 verdict, {name}: {'WINS' if wins else 'does not win'} over {len(part)} years "
            f"{part.index.min()}-{part.index.max()} ({mape[name]:.2f} vs "
            + ", ".join(f"{o} {mape[o]:.2f}" for o in INCUMBENTS)
            + ")"
        )


if __name__ == "__main__":
    np.seterr(all="ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--korea", type=Path, default=None, help="era 2 from a saved institutional comparison CSV")
    args = parser.parse_args()
    if args.korea is not None:
        korea_era(args.korea)
    else:
        main()
