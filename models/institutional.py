"""How the models would have fared against the institutions' published export outlooks.

KITA IIT and KIET publish their outlook for year Y in late November / early December of Y-1,
with customs data through October of Y-1. The comparison gives each model exactly that
information: for every target year Y it truncates the history at ``info_month`` of Y-1 and
runs the one forecasting routine (``models.engine.forecast`` with ``annual_year=Y``), so this
is a backtest with a FIXED information set, one cutoff per target year.

Decisions worth knowing when reading the outputs:

- Annual actual: the dataset's sum over the 12 months of Y when all 12 are observed, else the
  published figure in ``annual_actuals`` (first row of the file order for the year and series);
  column ``actual_source`` says which.
- Growth-only projections: the projected level is the previous year's actual x (1 + g/100)
  (column ``level_basis``). The institution only had an estimate of that previous year, so this
  credits the institution with the true base: conservative for the model.
- ``kind``: only ``pre-year outlook`` rows enter the MAPE summary. Mid-year revisions, targets
  and surveys stay in the comparison rows (``in_summary`` False, ``summary_note`` says why).
- The ministry's January outlooks are published in the target year (``published_in_target_year``
  True) and so saw November and December of Y-1, which the model did not: they are compared
  with the same October-cutoff model (conservative for the model) and flagged in the summary.
- Two outlooks of one institution for one series and year (e.g. a figure reprinted a month
  later): the earliest published enters the summary; the other rows are kept, not summarised.
- ``champion`` for year Y is the model with the lowest mean annual APE over the series' years
  before Y (the same years for every model); with no earlier year it is the default
  (``ensemble`` when enabled, else the first enabled model). ``champion_model`` and
  ``champion_reason`` record the choice, so year Y's champion never sees year Y's errors.
- The outlook for ``target_year`` puts the champion's forecast from all the data beside every
  institution's projection for that year, and the same-information forecast (October of the
  year before) next to it.

Levels in the outputs are USD bn (the frame is USD); APE and bias are in percent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models import metrics
from models.champion import complexity_key, default_champion

__all__ = ["InstitutionalResult", "compare_with_institutions", "annual_actuals_table", "choose_champions", "PRE_YEAR"]

PRE_YEAR = "pre-year outlook"
CHAMPION = "champion"
BN = 1e9

PROJECTION_COLUMNS = ("institution", "kind", "published", "target_year", "unique_id", "projected_usd_bn", "projected_growth_pct")
ACTUAL_COLUMNS = ("year", "unique_id", "actual_usd_bn")

COMPARISON_COLUMNS = [
    "target_year", "unique_id", "institution", "kind", "published", "published_in_target_year",
    "projected_usd_bn", "projected_growth_pct", "projected_level_usd_bn", "level_basis",
    "model", "champion_model", "model_usd_bn", "model_lo_80", "model_hi_80", "model_lo_95", "model_hi_95",
    "model_data_through", "actual_usd_bn", "actual_source", "institution_ape", "model_ape",
    "institution_error_pct", "model_error_pct", "model_in_80", "in_summary", "summary_note", "note",
]
SUMMARY_COLUMNS = [
    "unique_id", "institution", "n_years", "years", "institution_mape", "model", "model_mape",
    "model_coverage_80", "institution_bias_pct", "model_bias_pct", "n_growth_only", "n_published_in_target_year",
    "actual_sources", "note",
]
OUTLOOK_COLUMNS = [
    "target_year", "unique_id", "institution", "kind", "published", "published_in_target_year",
    "projected_usd_bn", "projected_growth_pct", "projected_level_usd_bn", "level_basis", "prior_year_actual_usd_bn",
    "champion_model", "model_usd_bn", "model_lo_80", "model_hi_80", "model_lo_95", "model_hi_95", "model_growth_pct",
    "model_data_through", "same_info_usd_bn", "same_info_lo_80", "same_info_hi_80", "same_info_data_through",
    "institution_vs_model_pct", "note",
]
CHAMPION_COLUMNS = ["unique_id", "target_year", "champion_model", "champion_reason", "n_prior_years"]


@dataclass(frozen=True)
class InstitutionalResult:
    """comparison: one row per (projection row, model incl. ``champion``) for the compared years;
    summary: pre-year outlooks per (unique_id, institution, model) over the same years;
    outlook: the target year's projections beside the champion's forecast;
    champions: the champion of every (unique_id, target_year) and why."""

    comparison: pd.DataFrame
    summary: pd.DataFrame
    outlook: pd.DataFrame
    champions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHAMPION_COLUMNS))


# --------------------------------------------------------------------------- validation
def _require(table: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)}; has {', '.join(map(str, table.columns))}")


def _numeric(values: pd.Series) -> pd.Series:
    """Numbers as printed; anything else (e.g. '>600', 'over 2') is not a figure and becomes NaN."""
    return pd.to_numeric(values, errors="coerce").astype(float)


def _prepare_projections(projections: pd.DataFrame) -> pd.DataFrame:
    _require(projections, PROJECTION_COLUMNS, "projections")
    p = projections.copy()
    p["src_row"] = np.arange(len(p))
    p["target_year"] = pd.to_numeric(p["target_year"], errors="coerce")
    bad = np.flatnonzero(p["target_year"].isna().to_numpy())
    if len(bad):
        raise ValueError(f"projections: target_year is not a year in row {projections.index[bad[0]]}: "
                         f"{projections['target_year'].iloc[bad[0]]!r}")
    p["target_year"] = p["target_year"].astype(int)
    p["projected_usd_bn"] = _numeric(p["projected_usd_bn"])
    p["projected_growth_pct"] = _numeric(p["projected_growth_pct"])
    if "published_in_target_year" not in p.columns:
        p["published_in_target_year"] = False
    p["published_in_target_year"] = p["published_in_target_year"].map(
        lambda v: str(v).strip().lower() in {"true", "1", "yes"} if not isinstance(v, (bool, np.bool_)) else bool(v))
    if "note" not in p.columns:
        p["note"] = ""
    p["note"] = p["note"].fillna("").astype(str)
    p["published"] = p["published"].astype(str)
    p["unique_id"] = p["unique_id"].where(p["unique_id"].notna(), None)
    return p


def _check_frame(frame: pd.DataFrame) -> None:
    _require(frame, ("unique_id", "ds", "y"), "frame")
    if not pd.api.types.is_datetime64_any_dtype(frame["ds"]):
        raise ValueError(f"frame column ds must be datetime64 month starts; got dtype {frame['ds'].dtype}")


# --------------------------------------------------------------------------- actuals
def annual_actuals_table(frame: pd.DataFrame, actuals: pd.DataFrame, unique_ids: list[str] | None = None) -> pd.DataFrame:
    """Annual actuals per (unique_id, year) in USD bn with their source.

    The dataset's 12-month sum wins when all 12 months of the year are observed; otherwise the
    first row of ``actuals`` for that (year, unique_id) with a numeric ``actual_usd_bn`` (rows
    with a non-empty ``partial_year``, e.g. "Jan-Nov", are not annual totals and are skipped).
    Returns columns unique_id, year, actual_usd_bn, actual_source."""
    _require(actuals, ACTUAL_COLUMNS, "actuals")
    data = frame if unique_ids is None else frame[frame["unique_id"].isin(unique_ids)]
    data = data.dropna(subset=["y"])
    yearly = (data.assign(year=data["ds"].dt.year)
              .groupby(["unique_id", "year"])["y"].agg(["sum", "size"]).reset_index())
    complete = yearly[yearly["size"] == 12]
    from_data = pd.DataFrame({
        "unique_id": complete["unique_id"].astype(str),
        "year": complete["year"].astype(int),
        "actual_usd_bn": complete["sum"].to_numpy(dtype=float) / BN,
        "actual_source": "dataset (12 months)",
    })
    published = actuals.copy()
    if "partial_year" in published.columns:  # e.g. "Jan-Nov": not an annual total, never compared
        partial = published["partial_year"].fillna("").astype(str).str.strip()
        published = published[partial.isin(["", "False", "false", "0"])]
    published["year"] = pd.to_numeric(published["year"], errors="coerce")
    published["actual_usd_bn"] = pd.to_numeric(published["actual_usd_bn"], errors="coerce")
    published = published.dropna(subset=["year", "actual_usd_bn", "unique_id"])
    published["year"] = published["year"].astype(int)
    if unique_ids is not None:
        published = published[published["unique_id"].isin(unique_ids)]
    counts = published.groupby(["unique_id", "year"])["actual_usd_bn"].transform("size")
    published = published.assign(
        actual_source=np.where(counts > 1, "annual_actuals.csv (first of " + counts.astype(str) + " rows)", "annual_actuals.csv"))
    published = published.drop_duplicates(["unique_id", "year"], keep="first")
    published = published[["unique_id", "year", "actual_usd_bn", "actual_source"]]
    keys = set(zip(from_data["unique_id"], from_data["year"]))
    published = published[[(u, y) not in keys for u, y in zip(published["unique_id"], published["year"])]]
    out = pd.concat([from_data, published], ignore_index=True)
    return out.sort_values(["unique_id", "year"]).reset_index(drop=True)


# --------------------------------------------------------------------------- champion
SCORE_LABELS = {"model_mase": ("monthly MASE", ""), "model_ape": ("annual APE", "%")}


def choose_champions(errors: pd.DataFrame, model_names: list[str], default: str | None = None,
                     score: str = "model_mase", info_month: int = 10) -> pd.DataFrame:
    """Champion of every (unique_id, target_year) in ``errors`` from years BEFORE it only.

    ``errors``: unique_id, target_year, model and the ``score`` column (default ``model_mase``:
    the MASE of that year's monthly forecasts, the champion rule of the rolling backtest; or
    ``model_ape``; NaN when there is no actual or no forecast). For year Y, the models with an APE in the largest number of earlier years compete
    (a model that failed in a year cannot win on the others), scored by their mean APE over the
    earlier years in which all of them have one (the same years for every contender). The lowest
    wins; ties go to the simpler model (``models.champion.complexity_key``). Only years whose
    months were all observed by the information cutoff of Y (``info_month`` of Y-1) count: with an
    October cutoff that is Y-2 and before, since the Nov-Dec errors of Y-1 were not yet known.
    No such year: ``default``."""
    default = default or default_champion(model_names)
    rows = []
    for uid, group in errors.groupby("unique_id", sort=True):
        table = group.pivot_table(index="target_year", columns="model", values=score, aggfunc="first", dropna=False)
        table = table.reindex(columns=model_names)
        for year in sorted(group["target_year"].unique()):
            prior = table[table.index <= (year - 1 if info_month >= 12 else year - 2)]
            counts = prior.notna().sum(axis=0)
            if prior.empty or counts.max() == 0:
                rows.append((uid, int(year), default, f"no earlier year fully observed by the information cutoff: default {default}", 0))
                continue
            contenders = [m for m in model_names if counts[m] == counts.max()]
            common = prior[contenders].dropna(how="any")
            scores = common.mean(axis=0)
            best = min(contenders, key=lambda m: (scores[m], complexity_key(m)))
            years = common.index.astype(int)
            span = f"{years.min()}" if len(years) == 1 else f"{years.min()}-{years.max()}"
            label, unit = SCORE_LABELS.get(score, (score, ""))
            ranked = ", ".join(f"{m} {scores[m]:.2f}{unit}" for m in sorted(contenders, key=lambda m: (scores[m], complexity_key(m))))
            reason = f"lowest mean {label} over {len(years)} earlier year(s) ({span}): {ranked}"
            rows.append((uid, int(year), best, reason, len(years)))
    return pd.DataFrame(rows, columns=CHAMPION_COLUMNS)


# --------------------------------------------------------------------------- forecasting
def _annual_forecasts(frame: pd.DataFrame, settings: Any, *, jobs: Mapping[int, tuple[pd.Timestamp, list[str]]],
                      exog: Any, model_names: list[str], factory: Any = None) -> pd.DataFrame:
    """Annual forecast of each target year per (unique_id, model) from the history through that
    year's information month, in USD bn, by the engine (the one fitting routine). ``jobs``: year ->
    (last month of data, series). All (year, series) histories go to ONE engine call (one pool of
    workers) as separate series ``<unique_id>@<year>``, each with its own end month and year."""
    from models.engine import forecast

    pieces, until, years = [], {}, {}
    for year, (through, unique_ids) in jobs.items():
        history = frame[frame["unique_id"].isin(unique_ids) & (frame["ds"] <= through)].copy()
        history["unique_id"] = history["unique_id"] + f"@{year}"
        for key in history["unique_id"].unique():
            until[key] = pd.Timestamp(year=year, month=12, day=1)
            years[key] = int(year)
        pieces.append(history)
    history = pd.concat(pieces, ignore_index=True)
    result = forecast(history, settings, until=until, exog=exog, annual_year=years, factory=factory)
    annual = result.annual
    annual = annual[(annual["year"] == annual["unique_id"].map(years)) & annual["model"].isin(model_names)]
    out = _model_rows(annual, history)
    out["unique_id"] = out["unique_id"].str.rsplit("@", n=1).str[0]
    mase_of = _monthly_mase(frame, history, result.forecasts)
    out["model_mase"] = [mase_of.get((key, m), np.nan) for key, m in zip(annual["unique_id"], annual["model"])]
    return out.sort_values(["target_year", "unique_id", "model"], kind="stable").reset_index(drop=True)


def _model_rows(annual: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The engine's annual table (USD) as comparison rows (USD bn), with the last month of data
    each forecast was made from."""
    out = pd.DataFrame({"unique_id": annual["unique_id"].to_numpy(), "model": annual["model"].to_numpy()})
    for src, dst in (("forecast", "model_usd_bn"), ("lo_80", "model_lo_80"), ("hi_80", "model_hi_80"),
                     ("lo_95", "model_lo_95"), ("hi_95", "model_hi_95")):
        out[dst] = annual[src].to_numpy(dtype=float) / BN
    last = history.dropna(subset=["y"]).groupby("unique_id")["ds"].max().dt.strftime("%Y-%m")
    out["model_data_through"] = annual["unique_id"].map(last).to_numpy()
    out["target_year"] = annual["year"].to_numpy(dtype=int)
    return out


def _monthly_mase(frame: pd.DataFrame, history: pd.DataFrame, forecasts: pd.DataFrame) -> dict[tuple[str, str], float]:
    """MASE of each (``<unique_id>@<year>``, model)'s monthly forecasts against the months the data
    has, scaled on that history (the score the rolling backtest ranks models by)."""
    from models.metrics import mase

    actual = frame.set_index(["unique_id", "ds"])["y"]
    train = {key: g.set_index("ds")["y"].asfreq("MS") for key, g in history.groupby("unique_id")}
    out = {}
    for (key, model), g in forecasts.groupby(["unique_id", "model"]):
        uid = key.rsplit("@", 1)[0]
        y_true = np.array([actual.get((uid, d), np.nan) for d in g["ds"]], dtype=float)
        if np.isnan(y_true).all():
            continue
        out[(key, model)] = float(mase(y_true, g["forecast"].to_numpy(dtype=float), train[key].to_numpy(dtype=float)))
    return out


def _eligible(frame: pd.DataFrame, unique_ids: list[str], year: int, info_month: int) -> list[str]:
    """Series whose months January..info_month of year-1 are all observed (the institutions'
    information set exists in the data)."""
    window = frame[(frame["ds"] >= pd.Timestamp(year=year - 1, month=1, day=1))
                   & (frame["ds"] <= pd.Timestamp(year=year - 1, month=info_month, day=1))
                   & frame["y"].notna() & frame["unique_id"].isin(unique_ids)]
    counts = window.groupby("unique_id")["ds"].nunique()
    return sorted(counts.index[counts == info_month].astype(str))


def _lookup(table: pd.DataFrame, uid_col: str, year_col: str) -> dict[tuple[str, int], float]:
    return {(str(u), int(y)): float(v) for u, y, v in zip(table[uid_col], table[year_col], table["actual_usd_bn"])}


def _projected_levels(p: pd.DataFrame, actual_of: dict[tuple[str, int], float]) -> pd.DataFrame:
    prior = np.array([actual_of.get((str(u), int(y) - 1), np.nan) for u, y in zip(p["unique_id"], p["target_year"])])
    p = p.assign(prior_year_actual_usd_bn=prior)
    has_level = p["projected_usd_bn"].notna()
    from_growth = ~has_level & p["projected_growth_pct"].notna() & np.isfinite(prior)
    p["projected_level_usd_bn"] = np.where(has_level, p["projected_usd_bn"],
                                           np.where(from_growth, prior * (1 + p["projected_growth_pct"] / 100.0), np.nan))
    p["level_basis"] = np.select(
        [has_level, from_growth, p["projected_growth_pct"].notna()],
        ["level as published", "growth x prior-year actual", "growth only; prior-year actual unknown"],
        default="no numeric figure")
    return p


# --------------------------------------------------------------------------- main entry
def compare_with_institutions(frame: pd.DataFrame, projections: pd.DataFrame, actuals: pd.DataFrame, settings: Any, *,
                              info_month: int = 10, first_year: int = 2013, last_year: int | None = None,
                              target_year: int | None = None, exog: Any = None, factory: Any = None,
                              latest_annual: pd.DataFrame | None = None,
                              latest_champions: Mapping[str, str] | None = None) -> InstitutionalResult:
    """Backtest every enabled model (and a champion) against the institutions' outlooks.

    ``latest_annual``: the engine's target-year annual table from all the data (unique_id, year,
    model, forecast, lo_80, hi_80 in USD), when the caller has it already (the pipeline's forecast
    step): the outlook then uses it instead of fitting every model again. ``latest_champions``
    (unique_id -> model): the champions the caller publishes; the outlook then shows those models,
    so that the comparison table and the published forecast agree (otherwise the outlook uses the
    champion chosen on earlier years' annual errors).

    frame: canonical long frame (unique_id, ds, y in USD); projections: the
    ``institutional_projections.csv`` table (institution, kind, published, target_year, unique_id,
    projected_usd_bn, projected_growth_pct, optional published_in_target_year and note);
    actuals: the ``annual_actuals.csv`` table (year, unique_id, actual_usd_bn); settings: the
    engine's ``EngineSettings``. Years first_year..last_year (default: the last year with an
    actual) with a pre-year outlook are compared; ``target_year`` (default last_year + 1) gets
    the outlook table. ``exog`` and ``factory`` are passed to ``models.engine.forecast``."""
    _check_frame(frame)
    if not isinstance(info_month, (int, np.integer)) or not 1 <= info_month <= 12:
        raise ValueError(f"info_month must be a month number 1..12; got {info_month!r}")
    model_names = list(settings.model_names)  # the engine adds seasonal_naive when absent

    p = _prepare_projections(projections)
    in_data = set(frame["unique_id"].astype(str).unique())
    series = sorted({str(u) for u in p["unique_id"].dropna()} & in_data)
    p = p[p["unique_id"].isin(series)]
    actual_table = annual_actuals_table(frame, actuals, series)
    actual_of = _lookup(actual_table, "unique_id", "year")
    source_of = {(u, int(y)): s for u, y, s in zip(actual_table["unique_id"], actual_table["year"], actual_table["actual_source"])}

    if last_year is None:
        last_year = int(actual_table["year"].max()) if not actual_table.empty else int(frame["ds"].dt.year.max())
    if last_year < first_year:
        raise ValueError(f"last_year {last_year} is before first_year {first_year}")
    if target_year is None:
        target_year = last_year + 1

    pre_year_years = set(p.loc[p["kind"] == PRE_YEAR, "target_year"].astype(int))
    years = [y for y in range(first_year, last_year + 1) if y in pre_year_years]
    run_years = sorted(set(years) | ({target_year} if target_year in set(p["target_year"]) else set()))

    jobs, eligible_by_year = {}, {}
    for year in run_years:
        ids = _eligible(frame, series, year, info_month)
        eligible_by_year[year] = set(ids)
        if ids:
            jobs[year] = (pd.Timestamp(year=year - 1, month=info_month, day=1), ids)
    model_rows = _annual_forecasts(frame, settings, jobs=jobs, exog=exog, model_names=model_names,
                                   factory=factory) if jobs else pd.DataFrame(
        columns=["unique_id", "model", "model_usd_bn", "model_lo_80", "model_hi_80", "model_lo_95", "model_hi_95",
                 "model_data_through", "target_year"])
    model_rows["actual_usd_bn"] = [actual_of.get((u, int(y)), np.nan) for u, y in zip(model_rows["unique_id"], model_rows["target_year"])]
    model_rows["model_ape"] = _ape(model_rows["model_usd_bn"], model_rows["actual_usd_bn"])

    champions = choose_champions(model_rows, model_names, info_month=info_month) if not model_rows.empty else pd.DataFrame(columns=CHAMPION_COLUMNS)
    champ_rows = model_rows.merge(champions[["unique_id", "target_year", "champion_model"]],
                                  left_on=["unique_id", "target_year", "model"],
                                  right_on=["unique_id", "target_year", "champion_model"], how="inner")
    champ_rows["model"] = CHAMPION
    model_rows["champion_model"] = model_rows["model"]
    all_models = pd.concat([model_rows, champ_rows], ignore_index=True)

    comparison = _comparison(p, years, eligible_by_year, all_models, actual_of, source_of, model_names)
    summary = _summary(comparison, model_names)
    outlook = _outlook(frame, p, settings, target_year, eligible_by_year.get(target_year, set()), all_models, champions,
                       actual_of, exog, model_names, factory, latest_annual, latest_champions)
    return InstitutionalResult(comparison=comparison, summary=summary, outlook=outlook,
                               champions=champions.reset_index(drop=True))


def _ape(forecast: pd.Series, actual: pd.Series) -> np.ndarray:
    f = np.asarray(forecast, dtype=float)
    a = np.asarray(actual, dtype=float)
    out = np.full(f.shape, np.nan)
    ok = np.isfinite(f) & np.isfinite(a) & (a != 0)
    if ok.any():
        out[ok] = metrics.ape(a[ok], f[ok])
    return out


def _signed_pct(forecast: pd.Series, actual: pd.Series) -> np.ndarray:
    f = np.asarray(forecast, dtype=float)
    a = np.asarray(actual, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(f) & np.isfinite(a) & (a != 0), 100.0 * (f - a) / a, np.nan)


def _comparison(p: pd.DataFrame, years: list[int], eligible_by_year: dict[int, set[str]], all_models: pd.DataFrame,
                actual_of: dict, source_of: dict, model_names: list[str]) -> pd.DataFrame:
    rows = p[p["target_year"].isin(years)].copy()
    rows = rows[[u in eligible_by_year.get(int(y), set()) for u, y in zip(rows["unique_id"], rows["target_year"])]]
    if rows.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    rows = _projected_levels(rows, actual_of)
    rows["actual_usd_bn"] = [actual_of.get((u, int(y)), np.nan) for u, y in zip(rows["unique_id"], rows["target_year"])]
    rows["actual_source"] = [source_of.get((u, int(y)), "no actual") for u, y in zip(rows["unique_id"], rows["target_year"])]
    rows["institution_ape"] = _ape(rows["projected_level_usd_bn"], rows["actual_usd_bn"])
    rows["institution_error_pct"] = _signed_pct(rows["projected_level_usd_bn"], rows["actual_usd_bn"])

    # which rows enter the pre-year summary, and why the others do not
    ordered = rows.assign(_published_key=pd.to_datetime(rows["published"].str[:10], errors="coerce"))
    ordered = ordered.sort_values(["_published_key", "src_row"], na_position="last")
    pre = ordered[ordered["kind"] == PRE_YEAR]
    first_rows = set(pre.drop_duplicates(["unique_id", "institution", "target_year"], keep="first")["src_row"])
    notes = []
    for r in rows.itertuples():
        if r.kind != PRE_YEAR:
            notes.append(f"{r.kind}: kept, not in the pre-year summary")
        elif not np.isfinite(r.projected_level_usd_bn):
            notes.append(f"no comparable level ({r.level_basis})")
        elif not np.isfinite(r.actual_usd_bn):
            notes.append("no actual for the year")
        elif r.src_row not in first_rows:
            notes.append("another outlook of this institution for the year was published earlier; that one is summarised")
        elif r.published_in_target_year:
            notes.append("published in the target year (saw Nov-Dec of the year before); model uses data through the info month")
        else:
            notes.append("")
    rows["summary_note"] = notes
    rows["in_summary"] = [(n == "" or n.startswith("published in the target year")) for n in notes]

    merged = rows.merge(all_models.drop(columns=["actual_usd_bn"]), on=["unique_id", "target_year"], how="inner")
    merged["model_error_pct"] = _signed_pct(merged["model_usd_bn"], merged["actual_usd_bn"])
    with np.errstate(invalid="ignore"):
        inside = (merged["actual_usd_bn"] >= merged["model_lo_80"]) & (merged["actual_usd_bn"] <= merged["model_hi_80"])
    merged["model_in_80"] = inside.where(merged["actual_usd_bn"].notna() & merged["model_lo_80"].notna())
    order = {m: i for i, m in enumerate([CHAMPION, *model_names])}
    merged["_model_order"] = merged["model"].map(order)
    merged = merged.sort_values(["target_year", "unique_id", "institution", "src_row", "_model_order"])
    return merged[COMPARISON_COLUMNS].reset_index(drop=True)


def _summary(comparison: pd.DataFrame, model_names: list[str]) -> pd.DataFrame:
    used = comparison[comparison["in_summary"].astype(bool)] if not comparison.empty else comparison
    if used.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    rows = []
    order = [CHAMPION, *model_names]
    for (uid, inst), group in used.groupby(["unique_id", "institution"], sort=True):
        for model in order:
            g = group[group["model"] == model]
            if g.empty:
                continue
            years = sorted(g["target_year"].astype(int))
            n_growth = int((g["level_basis"] == "growth x prior-year actual").sum())
            n_jan = int(g["published_in_target_year"].astype(bool).sum())
            notes = []
            if n_growth:
                notes.append(f"{n_growth} growth-only outlook(s) compared as prior-year actual x (1+g)")
            if n_jan:
                notes.append(f"{n_jan} outlook(s) published in the target year, compared with the October-cutoff model")
            rows.append({
                "unique_id": uid, "institution": inst, "n_years": len(years), "years": _span_text(years),
                "institution_mape": float(g["institution_ape"].mean()),
                "model": model, "model_mape": float(g["model_ape"].mean()),
                "model_coverage_80": float(g["model_in_80"].astype(float).mean()),
                "institution_bias_pct": float(g["institution_error_pct"].mean()),
                "model_bias_pct": float(g["model_error_pct"].mean()),
                "n_growth_only": n_growth, "n_published_in_target_year": n_jan,
                "actual_sources": "; ".join(sorted(set(g["actual_source"]))),
                "note": "; ".join(notes),
            })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _span_text(years: list[int]) -> str:
    """2013, 2014, 2015, 2018 -> '2013-2015, 2018'."""
    parts, start, prev = [], None, None
    for y in years:
        if start is None:
            start = prev = y
        elif y == prev + 1:
            prev = y
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = y
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


def _outlook(frame: pd.DataFrame, p: pd.DataFrame, settings: Any, target_year: int, same_info_ids: set[str],
             all_models: pd.DataFrame, champions: pd.DataFrame, actual_of: dict, exog: Any, model_names: list[str],
             factory: Any, latest_annual: pd.DataFrame | None = None,
             latest_champions: Mapping[str, str] | None = None) -> pd.DataFrame:
    rows = p[p["target_year"] == target_year].copy()
    if rows.empty:
        return pd.DataFrame(columns=OUTLOOK_COLUMNS)
    rows = _projected_levels(rows, actual_of)
    champ_of = {u: m for u, y, m in zip(champions["unique_id"], champions["target_year"], champions["champion_model"])
                if int(y) == target_year}
    ids = sorted(set(rows["unique_id"]))
    for uid in ids:  # series not in the same-information run: champion from earlier years, else the default
        if uid not in champ_of:
            champ_of[uid] = _champion_for_unrun_year(all_models, uid, target_year, model_names)
    if latest_champions is not None:
        champ_of.update({u: m for u, m in latest_champions.items() if u in champ_of and m in model_names})
    rows["champion_model"] = rows["unique_id"].map(champ_of)

    latest = frame[frame["unique_id"].isin(ids)].dropna(subset=["y"])
    latest = latest[latest["ds"] <= pd.Timestamp(year=target_year, month=12, day=1)]
    has_history = sorted(set(latest["unique_id"]))
    latest_rows = pd.DataFrame(columns=["unique_id", "model", "model_usd_bn"])
    if has_history:
        through = latest["ds"].max()
        if through < pd.Timestamp(year=target_year, month=12, day=1) and latest_annual is not None:
            given = latest_annual[(latest_annual["year"] == target_year) & latest_annual["unique_id"].isin(has_history)
                                  & latest_annual["model"].isin(model_names)]
            latest_rows = _model_rows(given, latest)
        elif through < pd.Timestamp(year=target_year, month=12, day=1):
            latest_rows = _annual_forecasts(frame, settings, jobs={target_year: (through, has_history)},
                                            exog=exog, model_names=model_names, factory=factory)
    pick = latest_rows.merge(pd.DataFrame({"unique_id": list(champ_of), "model": list(champ_of.values())}),
                             on=["unique_id", "model"], how="inner").drop(columns=["model", "target_year"], errors="ignore")
    rows = rows.merge(pick, on="unique_id", how="left")

    same = all_models[(all_models["target_year"] == target_year) & (all_models["model"] == CHAMPION)]
    same = same[same["unique_id"].isin(same_info_ids)][["unique_id", "model_usd_bn", "model_lo_80", "model_hi_80", "model_data_through"]]
    same = same.rename(columns={"model_usd_bn": "same_info_usd_bn", "model_lo_80": "same_info_lo_80",
                                "model_hi_80": "same_info_hi_80", "model_data_through": "same_info_data_through"})
    rows = rows.merge(same, on="unique_id", how="left")
    for col in OUTLOOK_COLUMNS:
        if col not in rows.columns:
            rows[col] = np.nan
    rows["model_growth_pct"] = _signed_pct(rows["model_usd_bn"], rows["prior_year_actual_usd_bn"])
    rows["institution_vs_model_pct"] = _signed_pct(rows["projected_level_usd_bn"], rows["model_usd_bn"])
    rows = rows.sort_values(["unique_id", "src_row"])
    return rows[OUTLOOK_COLUMNS].reset_index(drop=True)


def _champion_for_unrun_year(all_models: pd.DataFrame, uid: str, year: int, model_names: list[str]) -> str:
    """Champion for a year the same-information run did not cover (its info months are not all
    in the data): chosen on the series' compared years before it, like any other year."""
    errors = all_models[(all_models["unique_id"] == uid) & (all_models["model"] != CHAMPION)]
    probe = pd.DataFrame({"unique_id": [uid] * len(model_names), "target_year": [year] * len(model_names),
                          "model": model_names, "model_mase": [np.nan] * len(model_names)})
    table = choose_champions(pd.concat([errors[["unique_id", "target_year", "model", "model_mase"]], probe]), model_names)
    return str(table.loc[table["target_year"] == year, "champion_model"].iloc[0])
