"""Do the leading indicators help? (issue 9, part 3; a script, not a test)

    .venv/bin/python benchmarks/leading.py [--n-jobs 2] [--n-paths 500] [--sections rolling,institutional]

Every forecast goes through the ONE backtest (``models.core.backtest.backtest``), one information set
at a time: at each cutoff the regressor columns are ``features.leading.leading_columns`` as of
that cutoff's information date (the 16th of the month after it), so a model sees only the values
public that day and forecasts the indicator beyond them (``models.leading``).

Candidates (``models.leading``), each beside the same auto-ARIMA without the indicator (``arima``)
and the other single models:
- ``total``: ``arimax_flash`` = the customs 10-day flash of the same month (the flash of the month
  after the cutoff is public on the 11th, before the information date);
- ``item:semiconductors_ministry``: ``arimax_wsts`` = WSTS world billings lagged one month (public
  through the month before the cutoff), and ``arimax`` = the customs 10-day flash of the
  semiconductor group (2016+; so only cutoffs with 24 months of it).

Sections
1. ``rolling``: the pipeline's cutoffs (config ``backtest``: 3 windows, step 6, horizon 12, the
   last ending at the series' last month): MASE per window and its mean, per model.
2. ``institutional``: cutoff October Y-1, horizon 14, Y = 2013..2025: APE of the annual total of Y
   (from the joint sample paths), its MAPE per model over the years each model has, beside KITA's
   and KIET's pre-year outlooks over the same years (earliest pre-year outlook per year; a
   growth-only outlook is levelled on the prior year's actual, as models/applications/institutional.py does).
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

from features.leading import LeadingIndicatorError, LeadingSpec, leading_columns  # noqa: E402
from features.readers import read_embedded, read_indicators  # noqa: E402
from flows import settings as flows_settings  # noqa: E402
from models.applications.institutional import annual_actuals_table  # noqa: E402
from models.core.backtest import backtest, default_cutoffs  # noqa: E402
from models.core.engine import EngineSettings, ModelSpec  # noqa: E402

BN = 1e9
BASE_MODELS = ("seasonal_naive", "ets", "theta", "arima")
SEMIS = "item:semiconductors_ministry"
# series -> (model name, regressor spec)
CANDIDATES: dict[str, list[tuple[str, LeadingSpec]]] = {
    "total": [("arimax_flash", LeadingSpec("customs_10d:total"))],
    SEMIS: [
        ("arimax_wsts", LeadingSpec("wsts_month:billings_worldwide", lag=1)),
        ("arimax", LeadingSpec("customs_10d:group_semiconductors")),
    ],
}


def engine_for(uid: str, base: flows_settings.Settings, n_paths: int, n_jobs: int) -> EngineSettings:
    arima = dict(base.models.params.get("arima", {}))
    arima.pop("working_days", None)
    specs = [
        ModelSpec(m, base.models.params.get(m, {}) if m != "arima" else {**arima, "working_days": False})
        for m in BASE_MODELS
    ]
    specs += [ModelSpec(name, {**arima, "regressor": spec.column}) for name, spec in CANDIDATES[uid]]
    return EngineSettings(
        models=tuple(specs),
        n_paths=n_paths,
        n_jobs=n_jobs,
        seed=base.runtime.seed,
        min_obs_seasonal=base.models.min_obs_seasonal,
        max_missing_share=base.models.max_missing_share,
    )


def run_at(
    frame: pd.DataFrame,
    uid: str,
    cutoff: pd.Timestamp,
    horizon: int,
    engine: EngineSettings,
    indicators: pd.DataFrame,
    annual: bool,
) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    """The backtest of one series at one information set; a candidate whose indicator cannot serve
    the cutoff is left out (its one-line reason returned)."""
    y = frame[frame["unique_id"] == uid]
    months = pd.date_range(y["ds"].min(), cutoff + pd.DateOffset(months=horizon), freq="MS", name="ds")
    columns, notes, keep = [], [], list(BASE_MODELS)
    for name, spec in CANDIDATES[uid]:
        try:
            columns.append(leading_columns(indicators, [spec], cutoff=cutoff, months=months))
            keep.append(name)
        except LeadingIndicatorError as exc:
            notes.append(f"{name}: {exc}")
    exog = pd.concat(columns, axis=1) if columns else None
    engine = EngineSettings(
        models=tuple(s for s in engine.models if s.name in keep),
        n_paths=engine.n_paths,
        n_jobs=engine.n_jobs,
        seed=engine.seed,
        min_obs_seasonal=engine.min_obs_seasonal,
        max_missing_share=engine.max_missing_share,
    )
    bt = backtest(y, engine, horizon=horizon, cutoffs=[cutoff], exog=exog, annual=annual, keep_unscored=annual)
    fallback = bt.fits[(bt.fits["status"] != "ok") & (bt.fits["model"] != "champion")]
    notes += [f"{r.model}: {r.status} ({r.reason}; {r.error})" for r in fallback.itertuples()]
    # a candidate that fell back (e.g. too few months of its indicator) is not the candidate's forecast:
    # left out of its scores (the single models keep the engine's fallbacks, as in the pipeline)
    dropped = {m for m in fallback["model"] if m in dict(CANDIDATES[uid])}
    metrics = bt.metrics[~bt.metrics["model"].isin(dropped)]
    annual_rows = None if bt.annual is None else bt.annual[~bt.annual["model"].isin(dropped)]
    return metrics, annual_rows, notes


def rolling(frame, indicators, base, args) -> None:
    cfg = base.backtest
    print(f"\n== rolling backtest: {cfg.windows} windows, step {cfg.step}, horizon {cfg.horizon} (MASE) ==")
    for uid in CANDIDATES:
        engine = engine_for(uid, base, 100, args.n_jobs)
        last = frame.loc[frame["unique_id"] == uid, "ds"].max()
        rows = []
        for cutoff in default_cutoffs(last, horizon=cfg.horizon, windows=cfg.windows, step=cfg.step):
            metrics, _, notes = run_at(frame, uid, cutoff, cfg.horizon, engine, indicators, annual=False)
            rows.append(metrics)
            for note in notes:
                print(f"  {uid} {cutoff:%Y-%m}: {note}")
        scores = pd.concat(rows)
        # one information set per call: its champion row is only the default, not the champion rule's
        table = scores[scores["model"] != "champion"].pivot_table(index="model", columns="cutoff", values="mase")
        table.columns = [f"{c:%Y-%m}" for c in table.columns]
        table["mean"] = table.mean(axis=1)
        print(f"-- {uid}")
        print(table.sort_values("mean").round(3).to_string())


def institution_levels(projections: pd.DataFrame, actual_of: dict) -> pd.DataFrame:
    p = projections[
        (projections["kind"] == "pre-year outlook") & projections["institution"].isin(["KITA", "KIET"])
    ].copy()
    p["published"] = pd.to_datetime(p["published"])
    p = p.sort_values("published").drop_duplicates(["institution", "unique_id", "target_year"], keep="first")
    prior = np.array([actual_of.get((u, int(t) - 1), np.nan) for u, t in zip(p["unique_id"], p["target_year"])])
    level = pd.to_numeric(p["projected_usd_bn"], errors="coerce")
    growth = pd.to_numeric(p["projected_growth_pct"], errors="coerce")
    p["level"] = np.where(level.notna(), level, prior * (1 + growth / 100))
    return p.dropna(subset=["level"])


def institutional(frame, indicators, base, args) -> None:
    horizon = 12 + (12 - base.institutional.info_month)
    years = range(base.institutional.first_year, base.target_year)
    actuals = annual_actuals_table(frame, pd.read_csv(ROOT / "data" / "annual_actuals.csv"), list(CANDIDATES))
    actual_of = {
        (u, int(y)): float(a) for u, y, a in zip(actuals["unique_id"], actuals["year"], actuals["actual_usd_bn"])
    }
    inst = institution_levels(pd.read_csv(ROOT / "data" / "institutional_projections.csv"), actual_of)
    print(
        f"\n== institutional years {years.start}..{years.stop - 1}: cutoff {base.institutional.info_month:02d}/Y-1, "
        f"horizon {horizon}, annual APE % =="
    )
    for uid in CANDIDATES:
        engine = engine_for(uid, base, args.n_paths, args.n_jobs)
        rows = []
        for year in years:
            cutoff = pd.Timestamp(year=year - 1, month=base.institutional.info_month, day=1)
            y = frame[(frame["unique_id"] == uid) & (frame["ds"] <= cutoff)]
            if len(y) == 0 or (uid, year) not in actual_of:
                continue
            _, annual, notes = run_at(frame, uid, cutoff, horizon, engine, indicators, annual=True)
            for note in notes:
                print(f"  {uid} {year}: {note}")
            actual = actual_of[(uid, year)]
            for r in annual[annual["model"] != "champion"].itertuples():
                rows.append(
                    {
                        "year": year,
                        "who": r.model,
                        "ape": abs(r.forecast / BN - actual) / actual * 100,
                        "inside_80": r.lo_80 / BN <= actual <= r.hi_80 / BN,
                    }
                )
            for r in inst[(inst["unique_id"] == uid) & (inst["target_year"] == year)].itertuples():
                rows.append(
                    {
                        "year": year,
                        "who": r.institution,
                        "ape": abs(r.level - actual) / actual * 100,
                        "inside_80": np.nan,
                    }
                )
        table = pd.DataFrame(rows)
        wide = table.pivot_table(index="year", columns="who", values="ape")
        print(f"-- {uid}: APE by year")
        print(wide.round(2).to_string())
        refs = [r for r in ("KITA", "KIET", *(name for name, _ in CANDIDATES[uid])) if r in wide.columns]
        print(f"-- {uid}: MAPE over the years each row has, and over the years of {', '.join(refs)} (on_<who>)")
        lines = []
        for who in wide.columns:
            line = {"who": who, "n": int(wide[who].notna().sum()), "mape": wide[who].mean()}
            for ref in refs:
                line[f"on_{ref}"] = wide.loc[wide[ref].notna(), who].mean()
            cover = table.loc[table["who"] == who, "inside_80"].dropna()
            line["cover_80"] = cover.astype(float).mean() if len(cover) else np.nan
            lines.append(line)
        print(pd.DataFrame(lines).sort_values("mape").round(2).to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--n-paths", type=int, default=500)
    parser.add_argument("--sections", default="rolling,institutional")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    args = parser.parse_args()
    base = flows_settings.load_settings(args.config)
    frame = read_embedded(ROOT / "data")[["unique_id", "ds", "y"]]
    frame = frame[frame["unique_id"].isin(list(CANDIDATES))].reset_index(drop=True)
    indicators = read_indicators(ROOT / "data")
    started = time.perf_counter()
    for section in args.sections.split(","):
        {"rolling": rolling, "institutional": institutional}[section](frame, indicators, base, args)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
