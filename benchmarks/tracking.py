"""In-year tracking benchmark on the embedded dataset (a script, not a test; issue 10 parts 2-3).

    .venv/bin/python benchmarks/tracking.py [--model theta] [--no-flash] [--n-jobs 2]

Runs ``models.applications.inyear`` over the institutional-comparison years (2013..the last complete year)
for the total and semiconductors (``item:semiconductors_ministry``, the institutions' basis;
its flash is the customs group ``group_semiconductors``) and prints:

- the mean APE (%) of the tracked annual total by as-of month (January..December of the target
  year) and by information (month | d10 | d20), per series, with the 80% coverage;
- the mid-year revisions: each institution's MAPE beside the model's over the same revisions
  (the model's forecast made with the information public on each revision's date), n.

Targets (issue 10): mean APE as of June or later below the mean APE as of January; on the total,
the model's MAPE below the institutions' over the same revisions, with at least 5 revisions.
The total's nowcast uses ETS, as the pipeline's nowcast stage (``--total-nowcast-model``).
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
from features.readers import DEFAULT_DATA_DIR, read_embedded, read_indicators  # noqa: E402
from models.applications.institutional import compare_mid_year  # noqa: E402
from models.applications.inyear import FitCache, InyearSettings, series_inputs, track_at, track_series  # noqa: E402
from models.applications.nowcast import NowcastSettings, backtest, flash_frame  # noqa: E402
from models.core.engine import run_batches  # noqa: E402

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="theta")
    parser.add_argument("--total-nowcast-model", default="ets")
    parser.add_argument("--no-flash", action="store_true", help="monthly information only")
    parser.add_argument("--first-year", type=int, default=2013)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)

    frame = read_embedded()
    indicators = read_indicators()
    flash_months = indicators.loc[indicators["indicator"].str.startswith("customs_"), "ds"]
    wd = flash_working_days(flash_months.min(), flash_months.max())
    settings = InyearSettings(model=args.model)
    started = time.perf_counter()
    nowcasts = {}
    if not args.no_flash:
        flash, published = flash_frame(indicators, wd, "total")
        y = frame[frame["unique_id"] == "total"].set_index("ds")["y"]
        nowcasts["total"] = backtest(y, flash, published, settings=NowcastSettings(model=args.total_nowcast_model))
    t_nowcast = time.perf_counter() - started
    inputs = series_inputs(frame, indicators if not args.no_flash else indicators.iloc[:0], wd, nowcasts=nowcasts)
    last_year = int(frame.loc[frame["unique_id"] == "total", "ds"].max().year)
    years = tuple(range(args.first_year, last_year + 1))
    started = time.perf_counter()
    parts = run_batches(track_series, [(i, years, settings) for i in inputs], n_jobs=args.n_jobs, label="tracking")
    t_track = time.perf_counter() - started
    rows = pd.concat(parts, ignore_index=True)
    print(
        f"tracking: model {args.model}, {len(rows)} rows, years {years[0]}-{years[-1]}, "
        f"flash {'off' if args.no_flash else 'on'}; total nowcast ({args.total_nowcast_model}) {t_nowcast:.1f} s, "
        f"tracking {t_track:.1f} s wall (n_jobs {args.n_jobs})"
    )

    rows = rows[rows["ape"].notna() & (rows["as_of"].dt.year == rows["target_year"])].copy()
    rows["month"] = rows["as_of"].dt.month
    rows["in_80"] = (rows["actual_usd_bn"] >= rows["lo_80"]) & (rows["actual_usd_bn"] <= rows["hi_80"])
    for uid, g in rows.groupby("unique_id", sort=False):
        print(f"\n{uid}: mean APE % of the tracked annual total by as-of month (n rows), 80% coverage")
        by = g.groupby("month").agg(ape=("ape", "mean"), n=("ape", "size"), cover=("in_80", "mean"))
        print("  " + "  ".join(f"{MONTHS[m - 1]} {r.ape:5.2f} ({r.n})" for m, r in by.iterrows()))
        print("  cover " + "  ".join(f"{MONTHS[m - 1]} {r.cover:.2f}" for m, r in by.iterrows()))
        wide = g.pivot_table(index="month", columns="information", values="ape", aggfunc="mean")
        print("  by information (rows: as-of month):")
        print("    " + wide.round(2).rename(index=lambda m: MONTHS[m - 1]).to_string().replace("\n", "\n    "))
        jan = g.loc[g["month"] == 1, "ape"].mean()
        late = g.loc[g["month"] >= 6, "ape"].mean()
        print(
            f"  target: as of June or later {late:.2f} < as of January {jan:.2f}: {'met' if late < jan else 'NOT met'}"
        )
        print(
            "  by information, all months: "
            + ", ".join(f"{k} {v:.2f}" for k, v in g.groupby("information")["ape"].mean().items())
        )

    if not args.no_flash:
        # the flash's worth: the same flash dates tracked without any flash (same fits)
        print("\nvalue of the flash: mean APE % at the d10/d20 dates, with the flash vs the same dates without it")
        for inputs in series_inputs(frame, indicators.iloc[:0], wd):
            g = rows[(rows["unique_id"] == inputs.unique_id) & rows["information"].isin(["d10", "d20"])]
            cache = FitCache(settings)
            plain = [
                track_at(inputs, int(r.target_year), r.as_of, cache, information=r.information)
                for r in g.itertuples(index=False)
            ]
            g = g.assign(plain=[p["ape"] if p else float("nan") for p in plain])
            for info, h in g.groupby("information"):
                early = h[h["month"] <= 6]
                print(
                    f"  {inputs.unique_id:<28} {info}: with {h['ape'].mean():5.2f}  without {h['plain'].mean():5.2f}"
                    f"  (n {len(h)}; as of Jan-Jun: with {early['ape'].mean():5.2f} without {early['plain'].mean():5.2f})"
                )

    all_rows = pd.concat(parts, ignore_index=True)
    projections = pd.read_csv(DEFAULT_DATA_DIR / "institutional_projections.csv")
    actuals = pd.read_csv(DEFAULT_DATA_DIR / "annual_actuals.csv")
    comp, summary = compare_mid_year(frame, projections, actuals, all_rows, first_year=args.first_year)
    print("\nmid-year revisions (model = in-year tracking with the information public on each revision's date):")
    used = comp[comp["in_summary"].astype(bool)]
    for r in used.itertuples(index=False):
        print(
            f"  {r.target_year} {r.unique_id:<28} {r.institution:<9} {str(r.published):<10} inst {r.projected_level_usd_bn:7.1f}"
            f"  model {r.model_usd_bn:7.1f} [{r.model_lo_80:.1f}-{r.model_hi_80:.1f}]  actual {r.actual_usd_bn:7.1f}"
            f"  APE inst {r.institution_ape:5.2f} model {r.model_ape:5.2f}  ({r.model_data_through})"
        )
    print("\n  series                       institution  n   inst MAPE  model MAPE  model 80% cover")
    for r in summary.itertuples(index=False):
        print(
            f"  {r.unique_id:<28} {r.institution:<11} {r.n_years:>2}   {r.institution_mape:8.2f}  {r.model_mape:10.2f}"
            f"  {r.model_coverage_80:8.2f}"
        )
    tot = summary[(summary["unique_id"] == "total") & (summary["institution"] == "all")]
    if not tot.empty:
        t = tot.iloc[0]
        ok = t["model_mape"] < t["institution_mape"] and t["n_years"] >= 5
        print(
            f"  target (total, all institutions): model {t['model_mape']:.2f} < institutions {t['institution_mape']:.2f}"
            f" with n = {int(t['n_years'])} >= 5: {'met' if ok else 'NOT met'}"
        )
    skipped = comp[~comp["in_summary"].astype(bool)]
    for r in skipped.itertuples(index=False):
        print(f"  not summarised: {r.target_year} {r.unique_id} {r.institution} {r.published}: {r.summary_note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
