"""Reconciliation benchmark on the embedded dataset (a script, not a test; issue 9 part 2).

    .venv/bin/python benchmarks/reconcile.py [--outputs outputs]

Reads the backtest forecasts a run published (``outputs/backtest_forecasts.csv`` of ``make run``:
the honest champion of each series at each cutoff, model ``champion``) and reconciles the
champion set of the hierarchy (``data/series.csv``) at every cutoff with data up to the cutoff,
for each choice of W and of the residuals:

- ``mint_shrink`` / ``wls_var`` / ``ols`` with the seasonal-naive residuals, the total's base
  forecast kept (what the pipeline does, with ``mint_shrink``) or reconciled too (plain MinT);
- ``mint_shrink`` and ``wls_var`` with the backtest errors KNOWN at the cutoff (the champion
  errors of earlier windows in months up to the cutoff; none at the first cutoff: ``ols`` there);
- ``mint_shrink/skill``: the seasonal residuals of each series scaled by its champion's MASE on
  the months known at the cutoff.

Prints mean MASE per level (total, items, destinations, all) over the windows, base vs each
reconciliation, and the run's own ``mint`` rows from ``backtest_metrics.csv`` as a check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.readers import read_embedded, read_series_metadata  # noqa: E402
from models.core.engine import frame_to_series  # noqa: E402
from models.core.metrics import mase  # noqa: E402
from models.selection.reconcile import hierarchy_from_table, reconcile, reconcile_forecasts, seasonal_residuals  # noqa: E402


def known_errors(champ: pd.DataFrame, series: tuple[str, ...], cutoff: pd.Timestamp) -> np.ndarray:
    """Champion errors of the earlier windows in months <= cutoff, rows (window, month)."""
    earlier = champ[(champ["cutoff"] < cutoff) & (champ["ds"] <= cutoff)].assign(e=lambda d: d["y"] - d["forecast"])
    wide = earlier.pivot_table(index=["cutoff", "ds"], columns="unique_id", values="e")
    return wide.reindex(columns=list(series)).dropna().to_numpy()


def skill(champ: pd.DataFrame, history, series, cutoff) -> np.ndarray:
    """Per series: mean |champion error| over the months known at the cutoff / mean |seasonal
    difference| up to the cutoff (a MASE on the known months); 1 where none is known."""
    earlier = champ[(champ["cutoff"] < cutoff) & (champ["ds"] <= cutoff)]
    out = np.ones(len(series))
    for j, uid in enumerate(series):
        g = earlier[earlier["unique_id"] == uid]
        if len(g):
            y = history[uid].loc[:cutoff]
            out[j] = float(np.mean(np.abs(g["y"] - g["forecast"]))) / float(np.nanmean(np.abs(y - y.shift(12))))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", default=str(ROOT / "outputs"))
    args = parser.parse_args(argv)
    out = Path(args.outputs)
    frame = read_embedded()
    history = frame_to_series(frame)
    h = hierarchy_from_table(read_series_metadata(), history)
    level = h.level_of()
    bf = pd.read_csv(out / "backtest_forecasts.csv", parse_dates=["cutoff", "ds"])
    champ = bf[(bf["model"] == "champion") & bf["unique_id"].isin(h.series)]
    cutoffs = sorted(champ["cutoff"].unique())
    # name -> (W, residuals, keep the total); "mint_shrink, total kept" is what the pipeline does
    variants = {
        "base": None,
        "mint_shrink, total kept": ("mint_shrink", "seasonal", True),
        "wls_var, total kept": ("wls_var", "seasonal", True),
        "ols, total kept": ("ols", "seasonal", True),
        "mint_shrink": ("mint_shrink", "seasonal", False),
        "wls_var": ("wls_var", "seasonal", False),
        "ols": ("ols", "seasonal", False),
        "mint_shrink/bt_errors": ("mint_shrink", "errors", False),
        "wls_var/bt_errors": ("wls_var", "errors", False),
        "mint_shrink/skill": ("mint_shrink", "skill", False),
    }
    rows = []
    for cutoff in cutoffs:
        base = champ[champ["cutoff"] == cutoff]
        for name, spec in variants.items():
            if spec is None:
                fc = base
            else:
                method, source, kept = spec
                residuals = known_errors(champ, h.series, cutoff) if source == "errors" else None
                if residuals is not None and len(residuals) < 2:
                    method, residuals = "ols", None
                if source == "skill":
                    residuals = seasonal_residuals(history, h.series, cutoff) * skill(champ, history, h.series, cutoff)
                rec = reconcile(
                    h, history, cutoff=cutoff, method=method, residuals=residuals, keep=None if kept else ()
                )
                fc = reconcile_forecasts(base, rec)
            for uid, g in fc.groupby("unique_id"):
                g = g.sort_values("ds")
                train = history[uid].loc[:cutoff].to_numpy()
                rows.append(
                    {
                        "variant": name,
                        "cutoff": cutoff,
                        "unique_id": uid,
                        "level": level[uid],
                        "mase": mase(g["y"].to_numpy(), g["forecast"].to_numpy(), train, m=12),
                    }
                )
    scores = pd.DataFrame(rows)
    by_level = scores.pivot_table(index="variant", columns="level", values="mase", aggfunc="mean")
    by_level["all"] = scores.groupby("variant")["mase"].mean()
    by_level = by_level.reindex(list(variants)).rename(
        columns={"parent": "total", "item": "items", "destination": "destinations"}
    )
    pd.set_option("display.width", 160)
    print(
        f"mean MASE over {len(cutoffs)} cutoffs ({', '.join(f'{pd.Timestamp(c):%Y-%m}' for c in cutoffs)}), "
        f"{len(h.series)} series:"
    )
    print(by_level[["total", "items", "destinations", "all"]].round(3).to_string())
    per_cutoff = scores.pivot_table(index="variant", columns="cutoff", values="mase", aggfunc="mean").reindex(
        list(variants)
    )
    per_cutoff.columns = [f"{pd.Timestamp(c):%Y-%m}" for c in per_cutoff.columns]
    print("\nmean MASE per cutoff (all series of the hierarchy):")
    print(per_cutoff.round(3).to_string())
    metrics = pd.read_csv(out / "backtest_metrics.csv")
    run = metrics[metrics["model"].isin(["champion", "mint"]) & metrics["unique_id"].isin(h.series)]
    print("\nthe run's own backtest_metrics.csv (mean MASE):", run.groupby("model")["mase"].mean().round(3).to_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
