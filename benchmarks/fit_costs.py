"""Prophet fits and the nowcast's month loop: this checkout against a baseline commit, interleaved in one process.

    .venv/bin/python benchmarks/fit_costs.py [--baseline 002d448] [--repeat 5] [--part prophet,nowcast]

The baseline's ``models/families/prophet_model.py`` and ``models/applications/nowcast.py`` are read
with ``git show BASELINE:path`` and loaded as modules beside this checkout's (the rest of the code
is this checkout's; the baseline's ``@register`` is dropped so the registry keeps this checkout's
Prophet). Each repeat runs the baseline and this checkout one after the other, in alternating
order, on the same inputs, and checks that both give the same bytes.

- ``prophet``: real series of data/exports_monthly.csv (total, semiconductors, China) cut at three
  month ends; Korean working days as the regressor (features.calendar), multiplicative seasonality,
  the calibration refit, as config.yaml fits it: fit, ``predict(12)`` and ``sample_paths(12, 1000)``.
  Timed: wall seconds and this process's CPU seconds (cmdstan's optimiser is a child process:
  its CPU is reported apart, from ``RUSAGE_CHILDREN``).
- ``combination``: no change, a share: the ensemble (arima, prophet, ets, theta) fitted on the
  total; ``predict(12)`` + ``sample_paths(12, 1000)`` against the combination's own part of them
  (the members' paths ranked by total and the median taken, on the members' real paths).
- ``inyear``: the flash rows ``track_at`` conditions on, at every information date 2017-2025 of
  the total and semiconductors: the baseline's frame filter + ``drop_duplicates`` + ``itertuples``
  against ``SeriesInputs.latest_flash`` (nowcasts from seasonal_naive).
- ``nowcast``: ``models.applications.nowcast.backtest`` of the total and semiconductors on the
  embedded customs flash with the model forecasts fixed (computed once with seasonal_naive, then
  handed to both), so only the month loop is timed (the model fits are the models' own cost).

Printed: per part the median seconds of each variant over the repeats and the ratio this /
baseline, and the load average before and after (the machine is shared: compare only figures of
one run of this script).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.calendar import flash_working_days, working_days  # noqa: E402
from features.readers import read_embedded, read_indicators  # noqa: E402
from models.applications import nowcast as nowcast_now  # noqa: E402
from models.families import prophet_model as prophet_now  # noqa: E402

SERIES = {"total": "total", "item:semiconductors_ministry": "group_semiconductors", "destination:china": None}
CUTS = ("2023-12-01", "2024-12-01", "2025-06-01")


def baseline_module(ref: str, path: str, name: str) -> types.ModuleType:
    """The module at ``path`` as of git ``ref``, loaded under ``name`` (its ``@register`` dropped)."""
    source = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True)
    module = types.ModuleType(name)
    module.__file__ = f"{ref}:{path}"
    sys.modules[name] = module
    exec(compile(source.stdout.replace("@register\n", ""), module.__file__, "exec"), module.__dict__)
    return module


def timed(fn: Callable[[], object]) -> tuple[object, float, float, float]:
    """(result, wall s, own CPU s, children's CPU s) of ``fn()``."""
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    out = fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    return out, wall, cpu, children


def prophet_cases(frame: pd.DataFrame) -> list[tuple[str, pd.Series, pd.DataFrame, pd.DataFrame]]:
    days = working_days("2000-01-01", "2026-12-01")["working_days"].astype(float)
    cases = []
    for uid in SERIES:
        y = frame[frame["unique_id"] == uid].set_index("ds")["y"].astype(float).asfreq("MS")
        for cut in CUTS:
            hist = y.loc[:cut].iloc[-120:]
            future = pd.date_range(hist.index[-1], periods=13, freq="MS")[1:]
            X = days.reindex(hist.index.append(future)).to_frame("working_days")
            cases.append((f"{uid} to {cut[:7]}", hist, X.loc[hist.index], X.loc[future]))
    return cases


def prophet_run(module: types.ModuleType, cases: list) -> list[bytes]:
    out = []
    for _, y, X, X_future in cases:
        model = module.ProphetModel(seasonality_mode="multiplicative", working_days=True).fit(y, X)
        fc = model.predict(12, X_future)
        paths = model.sample_paths(12, 1000, 5, X_future)
        out.append(fc.to_numpy().tobytes() + paths.tobytes())
    return out


def nowcast_inputs() -> list[tuple[pd.Series, pd.DataFrame, pd.Series | None, str, dict]]:
    frame, indicators = read_embedded(), read_indicators()
    months = indicators.loc[indicators["indicator"].str.startswith("customs_"), "ds"]
    days = flash_working_days(months.min(), months.max())
    inputs = []
    for uid, subject in SERIES.items():
        if subject is None:
            continue
        flash, published = nowcast_now.flash_frame(indicators, days, subject)
        y = frame[frame["unique_id"] == uid].set_index("ds")["y"]
        settings = nowcast_now.NowcastSettings(model="seasonal_naive")
        preds = nowcast_now._model_forecasts(y.sort_index().astype(float), y.index, settings, uid)
        inputs.append((y, flash, published if subject == uid else None, uid, preds))
    return inputs


def nowcast_run(module: types.ModuleType, inputs: list) -> list[bytes]:
    out = []
    for y, flash, published, uid, preds in inputs:
        module._model_forecasts = lambda *args, preds=preds: preds
        settings = module.NowcastSettings(model="seasonal_naive")
        rows = module.backtest(y, flash, published, settings=settings, unique_id=uid)
        out.append(rows.to_csv(index=False).encode())
    return out


def combination_share(frame: pd.DataFrame, repeat: int) -> None:
    import numpy as np

    from models.core import registry

    y = frame[frame["unique_id"] == "total"].set_index("ds")["y"].astype(float).asfreq("MS")
    ensemble = registry.create("ensemble", {}).fit(y)
    members = list(ensemble.members_.values())
    paths = [m.sample_paths(12, 1000, 3) for m in members]

    def whole() -> None:
        ensemble.predict(12)
        ensemble.sample_paths(12, 1000, 3)

    def own() -> None:  # Combination._rank_paired_paths and _predict's reductions, on the members' outputs
        ranked = np.stack([p[np.argsort(p.sum(axis=1), kind="stable")] for p in paths])
        ensemble.combine(ranked, list(ensemble.members_))
        ensemble.combine(np.stack([p[:5] for p in paths]), list(ensemble.members_))

    whole_s = statistics.median(timed(whole)[2] for _ in range(repeat))
    own_s = statistics.median(timed(own)[2] for _ in range(repeat))
    print(
        f"combination: ensemble of {len(members)} on the total, predict(12) + sample_paths(12, 1000): "
        f"{whole_s:.3f} s CPU, of which the combination's own ranking and median {own_s:.4f} s "
        f"({own_s / whole_s:.1%}); the rest is the members' predict and sample_paths"
    )


def inyear_dates() -> list[tuple]:
    from models.applications.inyear import InyearSettings, information_dates, series_inputs, with_nowcasts

    frame, indicators = read_embedded(), read_indicators()
    months = indicators.loc[indicators["indicator"].str.startswith("customs_"), "ds"]
    settings = InyearSettings(nowcast_model="seasonal_naive")
    days = flash_working_days(months.min(), months.max())
    dates = []
    for series in (with_nowcasts(i, settings) for i in series_inputs(frame, indicators, days)):
        for year in range(2017, 2026):
            for as_of, _ in information_dates(series, year):
                last = series.public_months(as_of)[-1]
                index = pd.date_range(last + pd.offsets.MonthBegin(1), periods=24 - last.month, freq="MS")
                dates.append((series, as_of, last, pd.Timestamp(f"{year}-12-01"), index))
    return dates


def inyear_baseline(dates: list[tuple]) -> list[bytes]:
    out = []
    for inputs, as_of, last, end, index in dates:
        f = inputs.flash
        flash = f[(f["as_of"] <= as_of) & (f["ds"] > last) & (f["ds"] <= end) & f["ds"].isin(index)]
        flash = flash.drop_duplicates("ds", keep="last")
        rows = [(r.ds, r.information, float(r.nowcast), float(r.lo_80), float(r.hi_80)) for r in flash.itertuples()]
        out.append(repr(rows).encode())
    return out


def inyear_this(dates: list[tuple]) -> list[bytes]:
    out = []
    for inputs, as_of, last, end, index in dates:
        rows = [
            (d, i, float(n), float(lo), float(hi)) for d, i, n, lo, hi in inputs.latest_flash(as_of, last, end, index)
        ]
        out.append(repr(rows).encode())
    return out


def compare(label: str, variants: dict[str, Callable[[], list[bytes]]], repeat: int) -> None:
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(repeat):
        results = {}
        for name in names if r % 2 == 0 else names[::-1]:
            results[name], *seconds = timed(variants[name])
            figures[name].append(tuple(seconds))
        if results[names[0]] != results[names[1]]:
            raise SystemExit(f"{label}: the outputs differ between {names[0]} and {names[1]} (repeat {r + 1})")
    print(f"{label}: outputs identical to the byte in {repeat} repeats; median seconds (wall / own CPU / children CPU)")
    medians = {n: [statistics.median(f[i] for f in figures[n]) for i in range(3)] for n in names}
    for name in names:
        wall, cpu, children = medians[name]
        print(f"  {name:<10} {wall:8.3f} {cpu:8.3f} {children:8.3f}")
    (bw, bc, bk), (nw, nc, nk) = medians[names[0]], medians[names[1]]
    print(
        f"  ratio {names[1]} / {names[0]}: wall {nw / bw:.3f}, own CPU {nc / bc:.3f}, own + children CPU {(nc + nk) / (bc + bk):.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="002d448")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--part", default="prophet,combination,inyear,nowcast")
    args = parser.parse_args(argv)
    parts = args.part.split(",")
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(
        f"fit_costs: baseline {args.baseline} vs this checkout {head.strip()} (+ working tree), {args.repeat} repeats"
    )
    print(f"load average before: {os.getloadavg()}")
    if "prophet" in parts:
        before = baseline_module(args.baseline, "models/families/prophet_model.py", "prophet_model_baseline")
        cases = prophet_cases(read_embedded())
        prophet_run(prophet_now, cases[:1])  # imports and cmdstan's first start, outside the timing
        compare(
            f"prophet: {len(cases)} fits (+ calibration refits), predict(12), sample_paths(12, 1000)",
            {"baseline": lambda: prophet_run(before, cases), "this": lambda: prophet_run(prophet_now, cases)},
            args.repeat,
        )
    if "combination" in parts:
        combination_share(read_embedded(), args.repeat)
    if "inyear" in parts:
        dates = inyear_dates()
        compare(
            f"inyear: track_at's flash rows at {len(dates)} information dates",
            {"baseline": lambda: inyear_baseline(dates), "this": lambda: inyear_this(dates)},
            args.repeat,
        )
    if "nowcast" in parts:
        before = baseline_module(args.baseline, "models/applications/nowcast.py", "nowcast_baseline")
        inputs = nowcast_inputs()
        compare(
            f"nowcast: the month loop of {len(inputs)} series (model forecasts fixed)",
            {"baseline": lambda: nowcast_run(before, inputs), "this": lambda: nowcast_run(nowcast_now, inputs)},
            args.repeat,
        )
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
