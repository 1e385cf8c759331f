"""Accuracy against the institutions (issue 9): a script, not a test.

    .venv/bin/python benchmarks/accuracy.py                      # from outputs/institutional_comparison.csv (fast)
    .venv/bin/python benchmarks/accuracy.py --recompute          # re-run the comparison on the two series (~1-3 min)
    .venv/bin/python benchmarks/accuracy.py --recompute --save-comparison /tmp/comparison.csv

Prints, for the total and semiconductors (``item:semiconductors_ministry``, the basis of the
institutions' semiconductor outlooks), target years 2013-2025, pre-year outlooks only
(``models.applications.institutional.accuracy_table``): KITA, KIET, every single model, every combination,
the reconciled forecast (or a row saying it is not available) and the champion, with MAPE, bias,
coverage of the 80% interval of the annual total, and the ratio to the best institution on that
institution's own years. The models forecast year Y from their own monthly history through
October of Y-1; the champion of year Y is chosen on years Y-2 and before only.

``--recompute`` runs ``models.applications.institutional.compare_with_institutions`` with the pipeline's
settings (``config.yaml``) on the two series only: the same numbers as ``make run`` for them.
The leading models of ``models.leading`` take part (e.g.
``EXPORTCAST__MODELS__LEADING='{"total": ["arimax_flash"]}'``). It also prints every backtested year (the selection years before 2013 included, see
``institutional.selection_first_year``): each candidate's MAPE, bias and 80% coverage over all
the years with an actual, a longer record than the 13 years the institutions have.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows import jobs  # noqa: E402
from flows import settings as flows_settings  # noqa: E402
from models.applications.institutional import accuracy_table, compare_with_institutions  # noqa: E402

SERIES = ("total", "item:semiconductors_ministry")
FIRST_YEAR, LAST_YEAR = 2013, 2025


def recompute(config: Path, data_dir: Path, n_jobs: int, combinations: bool) -> pd.DataFrame:
    """The comparison rows of ``SERIES`` with the pipeline's settings (its data, projections,
    actuals and working-day regressor)."""
    from features.readers import read_embedded

    settings = flows_settings.load_settings(config).updated("runtime", n_jobs=n_jobs)
    frame = read_embedded(data_dir)[["unique_id", "ds", "y"]]
    frame = frame[frame["unique_id"].isin(SERIES)].reset_index(drop=True)
    projections = pd.read_csv(data_dir / "institutional_projections.csv")
    projections = projections[projections["unique_id"].isin(SERIES)]
    actuals = pd.read_csv(data_dir / "annual_actuals.csv")
    exog = jobs.working_day_exog(frame, settings.forecast_end, settings)
    result = compare_with_institutions(
        frame,
        projections,
        actuals,
        settings.engine_settings(),
        info_month=settings.institutional.info_month,
        first_year=FIRST_YEAR,
        last_year=LAST_YEAR,
        target_year=LAST_YEAR + 1,
        exog=exog,
        progress=True,
        combinations=combinations and settings.backtest.combinations,
        champion_rule=settings.backtest.champion_rule(),
        selection_first_year=settings.institutional.selection_first_year,
        extras=jobs.leading_extras(settings, jobs.leading_indicators(settings, data_dir)),
    )
    champions = result.champions[result.champions["unique_id"].isin(SERIES)]
    print("champion of each year (chosen on years Y-2 and before):")
    for uid, g in champions.groupby("unique_id"):
        print(f"  {uid}: " + ", ".join(f"{y} {m}" for y, m in zip(g["target_year"], g["champion_model"])))
    print(every_year_table(result.annual))
    return result.comparison


def every_year_table(annual: pd.DataFrame) -> str:
    """MAPE, bias and 80% coverage of every candidate over every backtested year with an actual."""
    rows = annual[annual["actual_usd_bn"].notna() & annual["unique_id"].isin(SERIES)]
    rows = rows.assign(model_in_80=rows["model_in_80"].astype(float))
    out = []
    for uid, g in rows.groupby("unique_id", sort=False):
        years = sorted(g["target_year"].unique())
        table = g.groupby("model").agg(
            years=("target_year", "nunique"),
            mape=("model_ape", "mean"),
            bias=("model_error_pct", "mean"),
            cover_80=("model_in_80", "mean"),
        )
        table = table.sort_values("mape")
        table["cover_80"] = table["cover_80"].map(lambda v: f"{v:.0%}")
        out.append(
            f"== {uid}, every backtested year {years[0]}-{years[-1]} (selection years included; no institution) =="
        )
        out.append(table.round(2).to_string())
    return "\n".join(out)


def format_table(table: pd.DataFrame) -> str:
    out = []
    for uid, g in table.groupby("unique_id", sort=False):
        best = g["best_institution"].iloc[0]
        shown = pd.DataFrame(
            {
                "forecast": g["forecast"],
                "kind": g["kind"],
                "years": g["n_years"].astype(int),
                "MAPE %": g["mape"].round(2),
                "bias %": g["bias_pct"].round(2),
                "80% cover": g["coverage_80"].map(lambda v: "" if pd.isna(v) else f"{v:.0%}"),
                f"ratio to {best}": g["ratio_to_best_institution"].round(3),
                "information": g["information"],
            }
        )
        out.append(
            f"== {uid}, pre-year outlooks {FIRST_YEAR}-{LAST_YEAR} (ratio: MAPE on {best}'s years / {best}'s MAPE on the same years) =="
        )
        out.append(shown.to_string(index=False, na_rep="n/a"))
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--comparison",
        type=Path,
        default=ROOT / "outputs" / "institutional_comparison.csv",
        help="institutional_comparison.csv of a run (default: outputs/ of this checkout)",
    )
    parser.add_argument("--recompute", action="store_true", help="re-run the comparison on the two series")
    parser.add_argument(
        "--no-combinations", action="store_true", help="with --recompute: singles only (as before issue 9)"
    )
    parser.add_argument(
        "--save-comparison", type=Path, default=None, help="with --recompute: write the comparison rows here"
    )
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()

    if args.recompute:
        t0 = time.perf_counter()
        comparison = recompute(args.config, args.data_dir, args.n_jobs, not args.no_combinations)
        print(f"comparison recomputed in {time.perf_counter() - t0:.0f} s")
        if args.save_comparison is not None:
            comparison.to_csv(args.save_comparison, index=False)
    else:
        if not args.comparison.exists():
            sys.exit(f"error: {args.comparison} not found: run `make run` first, or pass --recompute")
        comparison = pd.read_csv(args.comparison)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 120)
    print(format_table(accuracy_table(comparison, SERIES, first_year=FIRST_YEAR, last_year=LAST_YEAR)))


if __name__ == "__main__":
    main()
