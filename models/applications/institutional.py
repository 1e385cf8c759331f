"""How the models would have fared against the institutions' published export outlooks.

KITA IIT and KIET publish their outlook for year Y in late November / early December of Y-1,
with customs data through October of Y-1. The comparison gives each model exactly that
information: it is the one backtest (``models.core.backtest.backtest``) with FIXED information sets,
one cutoff per target year: month ``info_month`` of Y-1, horizon through December of Y, and the
annual total of Y from the models' joint sample paths. A series gets the cutoff of year Y only
when its months January..``info_month`` of Y-1 are all in the data.

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
- ``champion`` for year Y is chosen by the one champion rule (``models.selection.champion.choose_at``, as
  in the rolling backtest): the lowest mean MASE of the monthly forecasts over the series'
  earlier target years whose months were all observed by Y's cutoff (with an October cutoff:
  Y-2 and before; the selection years before ``first_year`` included), within the noise margin
  the default; with no such year it is the default (``ensemble``
  when enabled, else ``seasonal_naive``). ``champion_model`` and ``champion_reason`` record the
  choice, so year Y's champion never sees year Y's errors. Annual APE does not enter the choice.
- What ran: a model with too little history for its year falls back (``models.core.engine``: to
  seasonal naive, or ``models.fallback``). ``model_used`` says what produced each figure (a
  combination or the ensemble of fallen-back members: that fallback; the champion: what its
  candidate ran), ``model_fell_back`` whether the figure is a fallback's, and ``fallback_only``
  flags a series' year where no model fitted beyond the fallback (e.g. the MTI items, which start
  in 2022-01, for 2023 and 2024). A figure that fell back is not the model's skill: the summary
  leaves it out (``years_fell_back``), and so does the accuracy table.
- Candidates: the enabled models and (``combinations``, config ``backtest.combinations``) the
  combinations of ``models.selection.combination`` computed from the single models' forecasts of the same
  year, no refit; ``combo_inv_mase``'s weights of year Y come from the same earlier years as the
  champion (Y-2 and before). ``accuracy_table`` is the table of issue 9 (institutions, models,
  combinations, reconciled, champion: MAPE, bias, 80% coverage, ratio to the best institution).
- The outlook for ``target_year`` puts the champion's forecast from all the data beside every
  institution's projection for that year, and the same-information forecast (October of the
  year before) next to it.

Levels in the outputs are USD bn (the frame is USD); APE and bias are in percent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from models.core import metrics, registry
from models.core.backtest import BacktestResult, backtest
from models.core.engine import EngineSettings, ExtrasAt, ModelFactory, forecast
from models.selection.champion import CHAMPION, ChampionRule, choose_at, default_champion
from models.selection.combination import COMBINATIONS, backtest_windows, combine_annual, inverse_mase_weights, pool

__all__ = [
    "InstitutionalResult",
    "compare_with_institutions",
    "ReplayInputs",
    "annual_actuals_table",
    "accuracy_table",
    "PRE_YEAR",
    "ACCURACY_COLUMNS",
    "MID_YEAR",
    "revision_date",
    "mid_year_model_rows",
    "mid_year_summary",
]

PRE_YEAR = "pre-year outlook"
MID_YEAR = "mid-year revision"
BN = 1e9

PROJECTION_COLUMNS = (
    "institution",
    "kind",
    "published",
    "target_year",
    "unique_id",
    "projected_usd_bn",
    "projected_growth_pct",
)
ACTUAL_COLUMNS = ("year", "unique_id", "actual_usd_bn")

COMPARISON_COLUMNS = [
    "target_year",
    "unique_id",
    "institution",
    "kind",
    "published",
    "published_in_target_year",
    "projected_usd_bn",
    "projected_growth_pct",
    "projected_level_usd_bn",
    "level_basis",
    "model",
    "champion_model",
    "model_usd_bn",
    "model_lo_80",
    "model_hi_80",
    "model_lo_95",
    "model_hi_95",
    "model_data_through",
    "actual_usd_bn",
    "actual_source",
    "institution_ape",
    "model_ape",
    "institution_error_pct",
    "model_error_pct",
    "model_in_80",
    "in_summary",
    "summary_note",
    "note",
    "model_used",
    "model_fell_back",
    "fallback_only",
]
SUMMARY_COLUMNS = [
    "unique_id",
    "institution",
    "n_years",
    "years",
    "institution_mape",
    "model",
    "model_mape",
    "model_coverage_80",
    "institution_bias_pct",
    "model_bias_pct",
    "n_growth_only",
    "n_published_in_target_year",
    "actual_sources",
    "note",
    "section",
    "years_fell_back",
]
OUTLOOK_COLUMNS = [
    "target_year",
    "unique_id",
    "institution",
    "kind",
    "published",
    "published_in_target_year",
    "projected_usd_bn",
    "projected_growth_pct",
    "projected_level_usd_bn",
    "level_basis",
    "prior_year_actual_usd_bn",
    "champion_model",
    "model_usd_bn",
    "model_lo_80",
    "model_hi_80",
    "model_lo_95",
    "model_hi_95",
    "model_growth_pct",
    "model_data_through",
    "same_info_usd_bn",
    "same_info_lo_80",
    "same_info_hi_80",
    "same_info_data_through",
    "institution_vs_model_pct",
    "note",
]
CHAMPION_COLUMNS = ["unique_id", "target_year", "champion_model", "champion_reason", "n_prior_years"]


@dataclass(frozen=True)
class InstitutionalResult:
    """comparison: one row per (projection row, model incl. ``champion``) for the compared years;
    summary: pre-year outlooks per (unique_id, institution, model) over the same years;
    outlook: the target year's projections beside the champion's forecast;
    champions: the champion of every (unique_id, target_year) and why; annual: every model's
    (``champion`` included) annual forecast of every backtested year, the selection years
    included, with its actual, APE, signed error and 80% hit (USD bn; columns ``model_*``)."""

    comparison: pd.DataFrame
    summary: pd.DataFrame
    outlook: pd.DataFrame
    champions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHAMPION_COLUMNS))
    annual: pd.DataFrame | None = None


@dataclass(frozen=True)
class Replay:
    """The replayed October outlooks (:func:`replay_outlooks`), the costly part of the comparison:
    every model's annual forecast of every replayed year (USD bn, the ``champion`` pseudo-model
    included), the champion of each (unique_id, target_year) and the backtest they come from.
    It reads only the frame, the tables and the options, so it can run beside the pipeline's
    other stages and be handed to :func:`compare_with_institutions` (``ReplayInputs.replay``)."""

    annual: pd.DataFrame
    champions: pd.DataFrame
    backtest: BacktestResult | None


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
        raise ValueError(
            f"projections: target_year is not a year in row {projections.index[bad[0]]}: "
            f"{projections['target_year'].iloc[bad[0]]!r}"
        )
    p["target_year"] = p["target_year"].astype(int)
    p["projected_usd_bn"] = _numeric(p["projected_usd_bn"])
    p["projected_growth_pct"] = _numeric(p["projected_growth_pct"])
    if "published_in_target_year" not in p.columns:
        p["published_in_target_year"] = False
    p["published_in_target_year"] = p["published_in_target_year"].map(
        lambda v: str(v).strip().lower() in {"true", "1", "yes"} if not isinstance(v, (bool, np.bool_)) else bool(v)
    )
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
def annual_actuals_table(
    frame: pd.DataFrame, actuals: pd.DataFrame, unique_ids: list[str] | None = None
) -> pd.DataFrame:
    """Annual actuals per (unique_id, year) in USD bn with their source.

    The dataset's 12-month sum wins when all 12 months of the year are observed; otherwise the
    first row of ``actuals`` for that (year, unique_id) with a numeric ``actual_usd_bn`` (rows
    with a non-empty ``partial_year``, e.g. "Jan-Nov", are not annual totals and are skipped).
    Returns columns unique_id, year, actual_usd_bn, actual_source."""
    _require(actuals, ACTUAL_COLUMNS, "actuals")
    data = frame if unique_ids is None else frame[frame["unique_id"].isin(unique_ids)]
    data = data.dropna(subset=["y"])
    yearly = data.assign(year=data["ds"].dt.year).groupby(["unique_id", "year"])["y"].agg(["sum", "size"]).reset_index()
    complete = yearly[yearly["size"] == 12]
    from_data = pd.DataFrame(
        {
            "unique_id": complete["unique_id"].astype(str),
            "year": complete["year"].astype(int),
            "actual_usd_bn": complete["sum"].to_numpy(dtype=float) / BN,
            "actual_source": "dataset (12 months)",
        }
    )
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
        actual_source=np.where(
            counts > 1, "annual_actuals.csv (first of " + counts.astype(str) + " rows)", "annual_actuals.csv"
        )
    )
    published = published.drop_duplicates(["unique_id", "year"], keep="first")
    published = published[["unique_id", "year", "actual_usd_bn", "actual_source"]]
    keys = set(zip(from_data["unique_id"], from_data["year"]))
    published = published[[(u, y) not in keys for u, y in zip(published["unique_id"], published["year"])]]
    out = pd.concat([from_data, published], ignore_index=True)
    return out.sort_values(["unique_id", "year"]).reset_index(drop=True)


# --------------------------------------------------------------------------- forecasting
def _same_information_forecasts(
    frame: pd.DataFrame,
    settings: EngineSettings,
    *,
    cutoffs: Mapping[str, list[pd.Timestamp]],
    info_month: int,
    exog: pd.DataFrame | None,
    factory: ModelFactory | None,
    progress: bool = False,
    combinations: bool = True,
    champion_rule: ChampionRule = ChampionRule(),
    extras: ExtrasAt | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, BacktestResult]:
    """The one backtest with fixed information sets: for every series and target year Y in
    ``cutoffs`` (unique_id -> cutoffs, month ``info_month`` of Y-1) the models forecast from the
    history through the cutoff to December of Y, and the annual total of Y comes from their joint
    sample paths. ``combinations``: the backtest also builds the combinations of
    ``models.selection.combination`` from the single models' forecasts of each year (no refit; the
    inverse-MASE weights of year Y from the years fully observed by Y's cutoff only) and the
    champion rule chooses among singles and combinations. Returns (model rows in USD bn, one per
    (unique_id, target_year, model) with the ``champion`` pseudo-model; the champion table; the
    backtest itself)."""
    bt = backtest(
        frame[frame["unique_id"].isin(list(cutoffs))],
        settings,
        horizon=24 - info_month,
        cutoffs=cutoffs,
        exog=exog,
        default_champion=default_champion(settings.model_names),
        annual=True,
        keep_unscored=True,
        factory=factory,
        progress=progress,
        combinations=combinations,
        champion_rule=champion_rule,
        extras=extras,
    )
    annual = bt.annual
    champ = bt.fits[bt.fits["model"] == CHAMPION]
    champions = pd.DataFrame(
        {
            "unique_id": champ["unique_id"].astype(str).to_numpy(),
            "target_year": (champ["cutoff"].dt.year + 1).to_numpy(dtype=int),
            "champion_model": champ["model_used"].astype(str).to_numpy(),
            "champion_reason": champ["reason"].to_numpy(),
            "n_prior_years": [int(json.loads(d)["n_windows"]) for d in champ["description"]],
        },
        columns=CHAMPION_COLUMNS,
    )
    used = {(u, c): m for u, c, m in zip(champ["unique_id"], champ["cutoff"], champ["model_used"])}
    rows = _model_rows(annual, annual["cutoff"].dt.strftime("%Y-%m"))
    rows["champion_model"] = [
        used[(u, c)] if m == CHAMPION else m for u, c, m in zip(annual["unique_id"], annual["cutoff"], annual["model"])
    ]
    ran, fallback_only = what_ran(bt.fits, {"seasonal_naive", settings.fallback})
    keys = list(zip(annual["unique_id"].astype(str), annual["cutoff"], annual["model"].astype(str)))
    rows["model_used"] = [ran.get(k, (k[2], False))[0] for k in keys]
    rows["model_fell_back"] = [ran.get(k, (k[2], False))[1] for k in keys]
    rows["fallback_only"] = [fallback_only.get(k[:2], False) for k in keys]
    return rows, champions.sort_values(["unique_id", "target_year"]).reset_index(drop=True), bt


def what_ran(fits: pd.DataFrame, fallbacks: set[str]) -> tuple[dict[tuple, tuple[str, bool]], dict[tuple, bool]]:
    """From a backtest's ``fits`` (unique_id, cutoff, model, model_used, status, description):
    (unique_id, cutoff, model) -> (what produced the figure, whether it is a fallback's figure),
    and (unique_id, cutoff) -> whether no model fitted beyond the ``fallbacks`` there (some model
    fell back and none but the fallbacks ran as asked).

    A single model (or the ensemble, or a leading model) fell back when its status says so; a
    combination when a member fell back and none fitted beyond the fallbacks (then it is labelled
    with the fallback its members ran, when they share one); the champion when the candidate it
    copied did. Models that are themselves fallbacks and ran as asked (seasonal naive, naive) fell
    back in nothing: a comparison of only those flags no year."""
    ran: dict[tuple, tuple[str, bool]] = {}
    fallback_only: dict[tuple, bool] = {}
    for (uid, cutoff), g in fits.groupby(["unique_id", "cutoff"], sort=False):
        own: dict[str, tuple[str, bool]] = {}
        for r in g.itertuples(index=False):
            if r.model not in COMBINATIONS and r.model != CHAMPION and isinstance(r.model_used, str) and r.model_used:
                own[str(r.model)] = (r.model_used, r.status == "fallback")
        beyond = [m for m, (u, fell) in own.items() if not fell and u not in fallbacks]
        some_fell = any(fell for _, fell in own.values())
        for r in g[g["model"].isin(COMBINATIONS)].itertuples(index=False):
            members = [m for m in _members(r.description) if m in own]
            fell = any(own[m][1] for m in members) and not [m for m in members if m in beyond]
            labels = {own[m][0] for m in members}
            own[str(r.model)] = (labels.pop() if fell and len(labels) == 1 else str(r.model), fell)
        for r in g[g["model"] == CHAMPION].itertuples(index=False):
            own[CHAMPION] = own.get(str(r.model_used), (str(r.model_used), False))
        ran.update({(str(uid), cutoff, m): v for m, v in own.items()})
        fallback_only[(str(uid), cutoff)] = some_fell and not beyond
    return ran, fallback_only


def counted_as_skill(rows: pd.DataFrame) -> pd.Series:
    """Which comparison rows count as their model's skill: not a fallback's figure
    (``model_fell_back``), and not the champion of a year where no model fitted beyond the
    fallback (``fallback_only``: there was nothing to choose). Rows without these columns count."""

    def flag(column: str) -> pd.Series:
        if column not in rows.columns:
            return pd.Series(False, index=rows.index)
        return rows[column].map(lambda v: v is True or str(v).strip().lower() in {"true", "1"})

    return ~(flag("model_fell_back") | ((rows["model"] == CHAMPION) & flag("fallback_only")))


def _members(description: object) -> list[str]:
    """The members listed in a combination's fit description (JSON ``{"members": [...]}``)."""
    try:
        info = json.loads(description) if isinstance(description, str) and description else {}
    except json.JSONDecodeError:
        return []
    return [str(m) for m in info.get("members", [])] if isinstance(info, dict) else []


def _model_rows(annual: pd.DataFrame, data_through: pd.Series) -> pd.DataFrame:
    """An annual table (USD: unique_id, year, model, forecast and bounds) as comparison rows (USD bn),
    with the last month of data each forecast was made from (``data_through``, aligned with ``annual``)."""
    out = pd.DataFrame({"unique_id": annual["unique_id"].astype(str).to_numpy(), "model": annual["model"].to_numpy()})
    for src, dst in (
        ("forecast", "model_usd_bn"),
        ("lo_80", "model_lo_80"),
        ("hi_80", "model_hi_80"),
        ("lo_95", "model_lo_95"),
        ("hi_95", "model_hi_95"),
    ):
        out[dst] = annual[src].to_numpy(dtype=float) / BN
    out["model_data_through"] = np.asarray(data_through, dtype=object)
    out["target_year"] = annual["year"].to_numpy(dtype=int)
    return out


def _champion_without_window(
    bt: BacktestResult | None, uid: str, cutoff: pd.Timestamp, horizon: int, default: str, rule: ChampionRule
) -> tuple[str, str]:
    """Champion (and reason) of a year the series has no same-information window for (its months
    through the cutoff are not all in the data): ``models.selection.champion.choose_at`` over the series'
    compared years, like any other year."""
    windows: list[tuple[pd.Timestamp, dict[str, float]]] = []
    if bt is not None:
        m = bt.metrics[(bt.metrics["unique_id"] == uid) & (bt.metrics["model"] != CHAMPION)]
        windows = [
            (c + pd.DateOffset(months=horizon), dict(zip(g["model"], g[rule.metric])))
            for c, g in m.groupby("cutoff", sort=True)
        ]
    choice = choose_at(windows, cutoff, default, metric=rule.metric, noise_se=rule.noise_se)
    return choice.champion, choice.reason


def _comparison_basis(
    frame: pd.DataFrame, projections: pd.DataFrame, actuals: pd.DataFrame, first_year: int, last_year: int | None
) -> tuple[pd.DataFrame, list[str], dict, dict, int, list[int]]:
    """What the pre-year and the mid-year comparisons share: the projections of the series in
    ``frame`` (prepared), those series, the actual and its source by (series, year), the last year
    (default: the last with an actual, else the frame's last) and the years first_year..last_year
    with a pre-year outlook."""
    p = _prepare_projections(projections)
    series = sorted({str(u) for u in p["unique_id"].dropna()} & set(frame["unique_id"].astype(str)))
    p = p[p["unique_id"].isin(series)]
    actual_table = annual_actuals_table(frame, actuals, series)
    actual_of = _lookup(actual_table, "unique_id", "year")
    source_of = {
        (u, int(y)): s
        for u, y, s in zip(actual_table["unique_id"], actual_table["year"], actual_table["actual_source"])
    }
    if last_year is None:
        last_year = int(actual_table["year"].max()) if not actual_table.empty else int(frame["ds"].dt.year.max())
    pre_year_years = set(p.loc[p["kind"] == PRE_YEAR, "target_year"].astype(int))
    years = [y for y in range(first_year, last_year + 1) if y in pre_year_years]
    return p, series, actual_of, source_of, last_year, years


def _eligible(frame: pd.DataFrame, unique_ids: list[str], year: int, info_month: int) -> list[str]:
    """Series whose months January..info_month of year-1 are all observed (the institutions'
    information set exists in the data)."""
    window = frame[
        (frame["ds"] >= pd.Timestamp(year=year - 1, month=1, day=1))
        & (frame["ds"] <= pd.Timestamp(year=year - 1, month=info_month, day=1))
        & frame["y"].notna()
        & frame["unique_id"].isin(unique_ids)
    ]
    counts = window.groupby("unique_id")["ds"].nunique()
    return sorted(counts.index[counts == info_month].astype(str))


def _with_history(frame: pd.DataFrame, unique_ids: list[str], cutoff: pd.Timestamp, min_obs: int) -> list[str]:
    """The series of ``unique_ids`` with at least ``min_obs`` observed months up to ``cutoff``."""
    known = frame[(frame["ds"] <= cutoff) & frame["y"].notna() & frame["unique_id"].isin(unique_ids)]
    counts = known.groupby("unique_id")["ds"].nunique()
    return sorted(counts.index[counts >= min_obs].astype(str))


def _lookup(table: pd.DataFrame, uid_col: str, year_col: str) -> dict[tuple[str, int], float]:
    return {(str(u), int(y)): float(v) for u, y, v in zip(table[uid_col], table[year_col], table["actual_usd_bn"])}


def _projected_levels(p: pd.DataFrame, actual_of: dict[tuple[str, int], float]) -> pd.DataFrame:
    prior = np.array([actual_of.get((str(u), int(y) - 1), np.nan) for u, y in zip(p["unique_id"], p["target_year"])])
    p = p.assign(prior_year_actual_usd_bn=prior)
    has_level = p["projected_usd_bn"].notna()
    from_growth = ~has_level & p["projected_growth_pct"].notna() & np.isfinite(prior)
    p["projected_level_usd_bn"] = np.where(
        has_level, p["projected_usd_bn"], np.where(from_growth, prior * (1 + p["projected_growth_pct"] / 100.0), np.nan)
    )
    p["level_basis"] = np.select(
        [has_level, from_growth, p["projected_growth_pct"].notna()],
        ["level as published", "growth x prior-year actual", "growth only; prior-year actual unknown"],
        default="no numeric figure",
    )
    return p


# --------------------------------------------------------------------------- main entry
@dataclass(frozen=True, eq=False)
class ReplayInputs:
    """The options and extra inputs of :func:`compare_with_institutions`.

    - ``info_month``: the month of Y-1 whose data a replay of year Y may read (October: 10).
    - ``first_year``..``last_year`` (default: the last year with an actual): the years with a
      pre-year outlook that are compared; ``target_year`` (default last_year + 1) gets the
      outlook table.
    - ``exog`` and ``factory`` are passed to ``models.core.backtest.backtest`` (and to
      ``models.core.engine.forecast`` for the outlook from all the data when ``latest_annual`` is
      not given).
    - ``latest_annual``: the engine's target-year annual table from all the data (unique_id,
      year, model, forecast, lo_80, hi_80 in USD), when the caller has it already (the
      pipeline's forecast step): the outlook then uses it instead of fitting every model again.
      ``latest_champions`` (unique_id -> model): the champions the caller publishes; the outlook
      then shows those models, so that the comparison table and the published forecast agree
      (otherwise the outlook uses the champion chosen on the earlier target years, as in the
      comparison).
    - ``tracking``: the in-year tracking rows (``models.applications.inyear.TRACKING_COLUMNS``);
      when given, every ``mid-year revision`` row gets the tracked forecast made with the
      information public on its publication date (:func:`mid_year_model_rows`) instead of the
      October-cutoff models, and the summary gets a mid-year section (:func:`mid_year_summary`).
    - ``combinations`` (config ``backtest.combinations``) adds ``combo_mean``, ``combo_trimmed``
      and ``combo_inv_mase`` to the candidates of every year (see ``_same_information_forecasts``);
      ``champion_rule`` (``models.selection.champion.ChampionRule``, config
      ``backtest.champion_metric`` and ``backtest.champion_noise_se``): the metric the champion
      rule ranks on and its noise margin.
    - ``selection_first_year`` (config ``institutional.selection_first_year``): the years from it
      to first_year - 1 are **selection years**: each eligible series with ``min_obs_seasonal``
      observed months by its October of Y-1 (so the full models fit, not their fallbacks) is
      backtested from that cutoff like a comparison year, and those windows enter the champion
      rule and the inverse-MASE weights of the later years (their months were all observed by
      then), but no comparison row. Without them the champion of 2015 is chosen on one year
      (2013); with them on every earlier year the series has. None: no selection years.
    - ``extras`` (``models.core.engine.ExtrasAt``): each series' own models (e.g. a
      leading-indicator ARIMAX) with their regressor columns as of each year's cutoff; passed to
      the backtest and to the outlook's forecast.
    - ``replay``: the replayed outlooks made already by :func:`replay_outlooks` with the same
      frame, tables, settings and options (the pipeline runs it beside its other stages); None:
      replayed here.
    """

    info_month: int = 10
    first_year: int = 2013
    last_year: int | None = None
    target_year: int | None = None
    exog: pd.DataFrame | None = None
    factory: ModelFactory | None = None
    latest_annual: pd.DataFrame | None = None
    latest_champions: Mapping[str, str] | None = None
    tracking: pd.DataFrame | None = None
    progress: bool = False
    combinations: bool = True
    champion_rule: ChampionRule = ChampionRule()
    selection_first_year: int | None = None
    extras: ExtrasAt | None = None
    replay: Replay | None = None


def compare_with_institutions(
    frame: pd.DataFrame,
    projections: pd.DataFrame,
    actuals: pd.DataFrame,
    settings: EngineSettings,
    inputs: ReplayInputs | None = None,
    **options: object,
) -> InstitutionalResult:
    """Backtest every enabled model (and the champion) against the institutions' outlooks.

    frame: canonical long frame (unique_id, ds, y in USD); projections: the
    ``institutional_projections.csv`` table (institution, kind, published, target_year, unique_id,
    projected_usd_bn, projected_growth_pct, optional published_in_target_year and note);
    actuals: the ``annual_actuals.csv`` table (year, unique_id, actual_usd_bn); settings: the
    engine's ``EngineSettings``; ``inputs``: the options (:class:`ReplayInputs`), which may
    also be given as keywords of the same names (``options``, over ``inputs``)."""
    _check_frame(frame)
    inputs = replace(inputs or ReplayInputs(), **options)
    info_month = inputs.info_month
    # every candidate of the comparison: the enabled models (the engine adds seasonal_naive when
    # absent) and, when on, the combinations of their single models
    model_names = list(settings.model_names)
    if inputs.combinations and pool(model_names):
        model_names += [c for c in COMBINATIONS if c not in model_names]

    p, actual_of, source_of, years, target_year, cutoffs, eligible_by_year = _replay_plan(
        frame, projections, actuals, settings, inputs
    )
    replayed = inputs.replay if inputs.replay is not None else Replay(*_replay(frame, settings, cutoffs, inputs))
    all_models, champions, bt = replayed.annual.copy(), replayed.champions, replayed.backtest
    # a series' own models (``extras``: leading-indicator ARIMAX) are candidates of that series too
    model_names += [m for m in dict.fromkeys(all_models["model"].astype(str)) if m not in model_names and m != CHAMPION]
    all_models["actual_usd_bn"] = [
        actual_of.get((u, int(y)), np.nan) for u, y in zip(all_models["unique_id"], all_models["target_year"])
    ]
    all_models = _with_model_errors(all_models)

    comparison = _comparison(p, years, eligible_by_year, all_models, actual_of, source_of, model_names)
    summary = _summary(comparison, model_names)
    if inputs.tracking is not None:
        comparison = _with_mid_year(comparison, p, years, eligible_by_year, actual_of, source_of, inputs.tracking)
        summary = pd.concat([summary, mid_year_summary(comparison)], ignore_index=True)[SUMMARY_COLUMNS]
    outlook_ids = set(p.loc[p["target_year"] == target_year, "unique_id"]) - eligible_by_year.get(target_year, set())
    no_window = {
        uid: _champion_without_window(
            bt,
            uid,
            pd.Timestamp(year=target_year - 1, month=info_month, day=1),
            24 - info_month,
            default_champion(model_names),
            inputs.champion_rule,
        )[0]
        for uid in sorted(outlook_ids)
    }
    scored = bt.metrics[bt.metrics["model"] != CHAMPION] if bt is not None and inputs.combinations else None
    same_info_ids = eligible_by_year.get(target_year, set())
    basis = _OutlookBasis(frame, settings, target_year, model_names, actual_of, no_window, scored, inputs)
    outlook = _outlook(basis, p, same_info_ids, all_models, champions)
    return InstitutionalResult(
        comparison=comparison,
        summary=summary,
        outlook=outlook,
        champions=champions,
        annual=all_models.reset_index(drop=True),
    )


def replay_outlooks(
    frame: pd.DataFrame,
    projections: pd.DataFrame,
    actuals: pd.DataFrame,
    settings: EngineSettings,
    inputs: ReplayInputs | None = None,
    **options: object,
) -> Replay:
    """The October outlooks of every compared and selection year replayed by every model (the
    one backtest at the cutoffs October of Y-1): the part of :func:`compare_with_institutions`
    that fits models, with the same arguments. Its result, given back as ``replay=``, makes the
    comparison without refitting; ``latest_annual``, ``latest_champions`` and ``tracking`` are
    not read here."""
    _check_frame(frame)
    inputs = replace(inputs or ReplayInputs(), **options)
    *_, cutoffs, _eligible_by_year = _replay_plan(frame, projections, actuals, settings, inputs)
    return Replay(*_replay(frame, settings, cutoffs, inputs))


def _replay_plan(
    frame: pd.DataFrame,
    projections: pd.DataFrame,
    actuals: pd.DataFrame,
    settings: EngineSettings,
    inputs: ReplayInputs,
) -> tuple:
    """The comparison's basis and what is replayed: (projections, actual_of, source_of, compared
    years, target year, each series' cutoffs, the series eligible in each year)."""
    info_month = inputs.info_month
    if not isinstance(info_month, (int, np.integer)) or not 1 <= info_month <= 12:
        raise ValueError(f"info_month must be a month number 1..12; got {info_month!r}")
    p, series, actual_of, source_of, last_year, years = _comparison_basis(
        frame, projections, actuals, inputs.first_year, inputs.last_year
    )
    target_year, selection_years, run_years = _replay_years(p, years, last_year, inputs)
    cutoffs, eligible_by_year = _replay_cutoffs(frame, series, run_years, selection_years, info_month, settings)
    return p, actual_of, source_of, years, target_year, cutoffs, eligible_by_year


def _replay_years(
    p: pd.DataFrame, years: list[int], last_year: int, inputs: ReplayInputs
) -> tuple[int, range, list[int]]:
    """The target year, the selection years and every year replayed."""
    first_year, selection_first_year = inputs.first_year, inputs.selection_first_year
    if last_year < first_year:
        raise ValueError(f"last_year {last_year} is before first_year {first_year}")
    target_year = inputs.target_year if inputs.target_year is not None else last_year + 1
    if selection_first_year is not None and not (
        isinstance(selection_first_year, (int, np.integer)) and selection_first_year <= first_year
    ):
        raise ValueError(
            f"selection_first_year must be a year on or before first_year {first_year}; got {selection_first_year!r}"
        )
    selection_years = range(selection_first_year, first_year) if selection_first_year is not None else range(0)
    run_years = sorted(
        set(years) | set(selection_years) | ({target_year} if target_year in set(p["target_year"]) else set())
    )

    return target_year, selection_years, run_years


def _replay_cutoffs(
    frame: pd.DataFrame,
    series: list[str],
    run_years: list[int],
    selection_years: range,
    info_month: int,
    settings: EngineSettings,
) -> tuple[dict[str, list[pd.Timestamp]], dict[int, set[str]]]:
    """Each series' cutoffs (October of Y-1 for each year Y it is eligible in), and the series
    eligible in each year."""
    cutoffs: dict[str, list[pd.Timestamp]] = {}
    eligible_by_year: dict[int, set[str]] = {}
    for year in run_years:
        cutoff = pd.Timestamp(year=year - 1, month=info_month, day=1)
        ids = _eligible(frame, series, year, info_month)
        if year in selection_years:  # a selection year counts where the full models fit, not their fallbacks
            ids = _with_history(frame, ids, cutoff, settings.min_obs_seasonal)
        eligible_by_year[year] = set(ids)
        for uid in ids:
            cutoffs.setdefault(uid, []).append(cutoff)
    return cutoffs, eligible_by_year


def _replay(
    frame: pd.DataFrame, settings: EngineSettings, cutoffs: dict[str, list[pd.Timestamp]], inputs: ReplayInputs
) -> tuple[pd.DataFrame, pd.DataFrame, BacktestResult | None]:
    """Every model's annual forecast of every replayed year, the champions and the backtest."""
    if not cutoffs:
        return pd.DataFrame(columns=_REPLAY_COLUMNS), pd.DataFrame(columns=CHAMPION_COLUMNS), None
    return _same_information_forecasts(
        frame,
        settings,
        cutoffs=cutoffs,
        info_month=inputs.info_month,
        exog=inputs.exog,
        factory=inputs.factory,
        progress=inputs.progress,
        combinations=inputs.combinations,
        champion_rule=inputs.champion_rule,
        extras=inputs.extras,
    )


#: the columns of the replayed annual forecasts when no series has a cutoff
_REPLAY_COLUMNS = [
    "unique_id",
    "model",
    "model_usd_bn",
    "model_lo_80",
    "model_hi_80",
    "model_lo_95",
    "model_hi_95",
    "model_data_through",
    "target_year",
    "champion_model",
    "model_used",
    "model_fell_back",
    "fallback_only",
]


def _ape(forecast: pd.Series, actual: pd.Series) -> np.ndarray:
    f = np.asarray(forecast, dtype=float)
    a = np.asarray(actual, dtype=float)
    out = np.full(f.shape, np.nan)
    ok = np.isfinite(f) & np.isfinite(a) & (a != 0)
    if ok.any():
        out[ok] = metrics.ape(a[ok], f[ok])
    return out


def _with_model_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """Model rows (``model_usd_bn``, ``model_lo_80``, ``model_hi_80``, ``actual_usd_bn``) with
    their APE, signed error (%) and whether the actual lies in the 80% range (NaN: unknown)."""
    rows = rows.copy()
    rows["model_ape"] = _ape(rows["model_usd_bn"], rows["actual_usd_bn"])
    rows["model_error_pct"] = _signed_pct(rows["model_usd_bn"], rows["actual_usd_bn"])
    with np.errstate(invalid="ignore"):
        inside = (rows["actual_usd_bn"] >= rows["model_lo_80"]) & (rows["actual_usd_bn"] <= rows["model_hi_80"])
    rows["model_in_80"] = inside.where(rows["actual_usd_bn"].notna() & rows["model_lo_80"].notna())
    return rows


def _signed_pct(forecast: pd.Series, actual: pd.Series) -> np.ndarray:
    f = np.asarray(forecast, dtype=float)
    a = np.asarray(actual, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.isfinite(f) & np.isfinite(a) & (a != 0), 100.0 * (f - a) / a, np.nan)


def _with_institution_errors(rows: pd.DataFrame, actual_of: dict, source_of: dict) -> pd.DataFrame:
    """Projection rows with their comparable level, the actual (and its source) and the
    institution's APE and signed error, in percent."""
    rows = _projected_levels(rows, actual_of)
    rows["actual_usd_bn"] = [actual_of.get((u, int(y)), np.nan) for u, y in zip(rows["unique_id"], rows["target_year"])]
    rows["actual_source"] = [
        source_of.get((u, int(y)), "no actual") for u, y in zip(rows["unique_id"], rows["target_year"])
    ]
    rows["institution_ape"] = _ape(rows["projected_level_usd_bn"], rows["actual_usd_bn"])
    rows["institution_error_pct"] = _signed_pct(rows["projected_level_usd_bn"], rows["actual_usd_bn"])
    return rows


def _comparison(
    p: pd.DataFrame,
    years: list[int],
    eligible_by_year: dict[int, set[str]],
    all_models: pd.DataFrame,
    actual_of: dict,
    source_of: dict,
    model_names: list[str],
) -> pd.DataFrame:
    rows = p[p["target_year"].isin(years)].copy()
    rows = rows[[u in eligible_by_year.get(int(y), set()) for u, y in zip(rows["unique_id"], rows["target_year"])]]
    if rows.empty:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    rows = _with_institution_errors(rows, actual_of, source_of)

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
            notes.append(
                "another outlook of this institution for the year was published earlier; that one is summarised"
            )
        elif r.published_in_target_year:
            notes.append(
                "published in the target year (saw Nov-Dec of the year before); model uses data through the info month"
            )
        else:
            notes.append("")
    rows["summary_note"] = notes
    rows["in_summary"] = [(n == "" or n.startswith("published in the target year")) for n in notes]

    # the model's errors came with all_models (the same actual of the series and year)
    merged = rows.merge(all_models.drop(columns=["actual_usd_bn"]), on=["unique_id", "target_year"], how="inner")
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
            fell = ~counted_as_skill(g)
            years_fell_back = _span_text(sorted(g.loc[fell, "target_year"].astype(int)))
            g = g[~fell]  # a fallback's figure is not this model's skill
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
            if years_fell_back:
                notes.append(
                    f"{years_fell_back} not counted: the model fell back, or no model fitted beyond the "
                    "fallback (too little history)"
                )
            rows.append(
                {
                    "unique_id": uid,
                    "institution": inst,
                    "n_years": len(years),
                    "years": _span_text(years),
                    "institution_mape": float(g["institution_ape"].mean()),
                    "model": model,
                    "model_mape": float(g["model_ape"].mean()),
                    "model_coverage_80": float(g["model_in_80"].astype(float).mean()),
                    "institution_bias_pct": float(g["institution_error_pct"].mean()),
                    "model_bias_pct": float(g["model_error_pct"].mean()),
                    "n_growth_only": n_growth,
                    "n_published_in_target_year": n_jan,
                    "actual_sources": "; ".join(sorted(set(g["actual_source"]))),
                    "note": "; ".join(notes),
                    "section": PRE_YEAR,
                    "years_fell_back": years_fell_back,
                }
            )
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


span_text = _span_text  # public name (the run summary and the report print year spans the same way)


def _with_combinations(annual: pd.DataFrame, scored: pd.DataFrame, members: list[str]) -> pd.DataFrame:
    """``annual`` (engine annual rows of the target year) with the combinations' rows of each
    series: from its members' rows, inverse-MASE weights over all its scored years (``scored``:
    the comparison backtest's metric rows), as the published forecast does."""
    extra = []
    for uid, g in annual.groupby("unique_id", sort=False):
        present = [m for m in members if (g["model"] == m).any()]
        if present:
            weights = inverse_mase_weights(backtest_windows(scored, str(uid)), present)
            extra += combine_annual(g.to_dict("records"), present, weights)
    return pd.concat([annual, pd.DataFrame(extra, columns=annual.columns)], ignore_index=True) if extra else annual


@dataclass(frozen=True, eq=False)
class _OutlookBasis:
    """What the target year's outlook is built from: the data, the engine, the candidates, the
    actuals, each series' champion without a same-information window, the scored windows (for the
    combinations; None: none) and the replay's inputs."""

    frame: pd.DataFrame
    settings: EngineSettings
    target_year: int
    model_names: list[str]
    actual_of: dict
    no_window: Mapping[str, str]
    scored: pd.DataFrame | None
    inputs: ReplayInputs


def _outlook(
    basis: _OutlookBasis,
    p: pd.DataFrame,
    same_info_ids: set[str],
    all_models: pd.DataFrame,
    champions: pd.DataFrame,
) -> pd.DataFrame:
    target_year = basis.target_year
    rows = p[p["target_year"] == target_year].copy()
    if rows.empty:
        return pd.DataFrame(columns=OUTLOOK_COLUMNS)
    rows = _projected_levels(rows, basis.actual_of)
    champ_of = _outlook_champions(basis, champions, sorted(set(rows["unique_id"])))
    rows["champion_model"] = rows["unique_id"].map(champ_of)
    latest_rows = _latest_model_rows(basis, sorted(set(rows["unique_id"])))
    pick = latest_rows.merge(
        pd.DataFrame({"unique_id": list(champ_of), "model": list(champ_of.values())}),
        on=["unique_id", "model"],
        how="inner",
    ).drop(columns=["model", "target_year"], errors="ignore")
    rows = rows.merge(pick, on="unique_id", how="left")

    same = all_models[(all_models["target_year"] == target_year) & (all_models["model"] == CHAMPION)]
    same = same[same["unique_id"].isin(same_info_ids)][
        ["unique_id", "model_usd_bn", "model_lo_80", "model_hi_80", "model_data_through"]
    ]
    same = same.rename(
        columns={
            "model_usd_bn": "same_info_usd_bn",
            "model_lo_80": "same_info_lo_80",
            "model_hi_80": "same_info_hi_80",
            "model_data_through": "same_info_data_through",
        }
    )
    rows = rows.merge(same, on="unique_id", how="left")
    for col in OUTLOOK_COLUMNS:
        if col not in rows.columns:
            rows[col] = np.nan
    rows["model_growth_pct"] = _signed_pct(rows["model_usd_bn"], rows["prior_year_actual_usd_bn"])
    rows["institution_vs_model_pct"] = _signed_pct(rows["projected_level_usd_bn"], rows["model_usd_bn"])
    rows = rows.sort_values(["unique_id", "src_row"])
    return rows[OUTLOOK_COLUMNS].reset_index(drop=True)


def _outlook_champions(basis: _OutlookBasis, champions: pd.DataFrame, ids: list[str]) -> dict[str, str]:
    """The champion of each series of the outlook: the replay's of the target year, else the
    champion from earlier years (else the default); the caller's published champions win."""
    target_year, latest_champions = basis.target_year, basis.inputs.latest_champions
    champ_of = {
        u: m
        for u, y, m in zip(champions["unique_id"], champions["target_year"], champions["champion_model"])
        if int(y) == target_year
    }
    for uid in ids:  # series without a same-information window: champion from earlier years, else the default
        if uid not in champ_of:
            champ_of[uid] = basis.no_window[uid]
    if latest_champions is not None:
        champ_of.update({u: m for u, m in latest_champions.items() if u in champ_of and m in basis.model_names})
    return champ_of


def _latest_model_rows(basis: _OutlookBasis, ids: list[str]) -> pd.DataFrame:
    """Every model's target-year forecast from all the data (the caller's ``latest_annual`` when
    given), for the series with history."""
    frame, target_year, model_names, inputs = basis.frame, basis.target_year, basis.model_names, basis.inputs
    latest_annual = inputs.latest_annual
    latest = frame[frame["unique_id"].isin(ids)].dropna(subset=["y"])
    latest = latest[latest["ds"] <= pd.Timestamp(year=target_year, month=12, day=1)]
    has_history = sorted(set(latest["unique_id"]))
    latest_rows = pd.DataFrame(columns=["unique_id", "model", "model_usd_bn"])
    if has_history:
        through = latest["ds"].max()
        last_month = latest.groupby("unique_id")["ds"].max().dt.strftime("%Y-%m")
        if through < pd.Timestamp(year=target_year, month=12, day=1) and latest_annual is not None:
            given = latest_annual[
                (latest_annual["year"] == target_year)
                & latest_annual["unique_id"].isin(has_history)
                & latest_annual["model"].isin(model_names)
            ]
            latest_rows = _model_rows(given, given["unique_id"].map(last_month))
        elif through < pd.Timestamp(year=target_year, month=12, day=1):
            result = forecast(
                latest,
                basis.settings,
                until=pd.Timestamp(year=target_year, month=12, day=1),
                exog=inputs.exog,
                annual_year=target_year,
                factory=inputs.factory,
                extras=inputs.extras,
            )
            given = result.annual[result.annual["year"] == target_year]
            if basis.scored is not None:  # the combinations, from the members' forecasts (weights: every scored year)
                given = _with_combinations(given, basis.scored, pool(model_names))
            latest_rows = _model_rows(given, given["unique_id"].map(last_month))
    return latest_rows


# --------------------------------------------------------------------------- accuracy table
ACCURACY_COLUMNS = [
    "unique_id",
    "forecast",
    "kind",
    "information",
    "n_years",
    "years",
    "mape",
    "bias_pct",
    "coverage_80",
    "best_institution",
    "ratio_to_best_institution",
]
#: the institutions of the accuracy table (issue 9): the two that publish a pre-year outlook every year
TABLE_INSTITUTIONS: tuple[str, ...] = ("KITA", "KIET")
#: the candidate name under which the reconciled (MinT) forecasts appear, when the comparison has them
RECONCILED = "mint"
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _information(model: str, info_month: str) -> tuple[str, str]:
    """(kind, information used) of a candidate of the comparison."""
    own = f"own monthly history through {info_month} of Y-1"
    if model == CHAMPION:
        return "champion", f"{own}; the candidate chosen on years Y-2 and before (the one champion rule)"
    if model in COMBINATIONS:
        extra = "; weights 1/MASE from years Y-2 and before" if model == "combo_inv_mase" else ""
        return "combination", f"{own} (the single models' forecasts combined, no refit{extra})"
    if model == "ensemble":
        return "combination", f"{own} (median of ARIMA, Prophet, ETS, Theta)"
    if model == RECONCILED:
        return "reconciled", f"the hierarchy's monthly histories through {info_month} of Y-1, reconciled (MinT)"
    cls = registry.get(model) if model in registry.available() else None
    extra = getattr(cls, "information", "")
    # a fitted combination of models (models.selection.ensemble: the leading blend cycle_blend) is one
    kind = "combination" if cls is not None and cls.traits.combination else "single"
    return kind, f"{own} + {extra}" if extra else own


def _no_reconciled(unique_id: str) -> str:
    """Why the accuracy table has no reconciled (MinT) figures for ``unique_id``."""
    if unique_id == "total":
        return (
            "not computed here; equal to the champion by construction: MinT keeps the base forecast of "
            "the total (the immutable parent, models/selection/reconcile.py)"
        )
    return (
        "not available: the comparison reconciles nothing (the hierarchy's items and destinations start in "
        "2021-2022, data/series.csv; the ministry-basis semiconductors is not a node of the hierarchy)"
    )


def accuracy_table(
    comparison: pd.DataFrame,
    unique_ids: tuple[str, ...] = ("total", "item:semiconductors_ministry"),
    institutions: tuple[str, ...] = TABLE_INSTITUTIONS,
    first_year: int = 2013,
    last_year: int = 2025,
) -> pd.DataFrame:
    """The table of issue 9 from the comparison rows (``InstitutionalResult.comparison``, or
    ``institutional_comparison.csv`` read back): per series, the ``institutions``' pre-year
    outlooks, every model, every combination, the reconciled forecast (a row saying it is not
    available when the comparison has no ``mint`` candidate) and the champion, over the target
    years first_year..last_year.

    - Institutions: over their own years (the rows that enter the pre-year summary, ``in_summary``).
    - Models: over every year at least one of the ``institutions`` has an outlook for (the union).
    - ``mape`` and ``bias_pct`` (mean signed error, forecast above the actual is positive) in
      percent; ``coverage_80``: the share of those years whose actual fell inside the model's 80%
      interval (institutions publish none: NaN).
    - ``ratio_to_best_institution``: the candidate's MAPE over the best institution's years (the
      institution with the lowest MAPE) divided by that institution's MAPE over the same years:
      below 1 beats it on its own years. A candidate that has only some of them (a model that
      starts later) is compared on those it has, with the institution's MAPE on the same years.
    Columns ``ACCURACY_COLUMNS``."""
    _require(
        comparison,
        (
            "target_year",
            "unique_id",
            "institution",
            "kind",
            "model",
            "model_ape",
            "model_error_pct",
            "model_in_80",
            "institution_ape",
            "institution_error_pct",
            "in_summary",
        ),
        "comparison",
    )
    c = comparison[
        comparison["in_summary"].astype(bool)
        & (comparison["kind"] == PRE_YEAR)
        & comparison["target_year"].astype(int).between(first_year, last_year)
    ]
    rows: list[dict] = []
    for uid in unique_ids:
        s = c[c["unique_id"] == uid]
        # each institution's pre-year outlooks of this series, one per year: APE by year
        outlooks = {
            inst: g
            for inst in institutions
            if not (g := s[s["institution"] == inst].drop_duplicates("target_year")).empty
        }
        ape_of = {
            inst: dict(zip(g["target_year"].astype(int), g["institution_ape"].astype(float)))
            for inst, g in outlooks.items()
        }
        best = min(outlooks, key=lambda i: float(outlooks[i]["institution_ape"].mean())) if outlooks else ""
        rows += _institution_accuracy_rows(uid, outlooks, ape_of, best)
        rows += _model_accuracy_rows(uid, s, ape_of, best)
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


def _ratio(by_year: Mapping[int, float], best_by_year: Mapping[int, float]) -> float:
    """The mean of ``by_year`` over the years the best institution has, over its mean there."""
    on = [y for y in by_year if y in best_by_year]
    denominator = float(np.mean([best_by_year[y] for y in on])) if on else np.nan
    return float(np.mean([by_year[y] for y in on])) / denominator if on and denominator > 0 else np.nan


def _institution_accuracy_rows(
    uid: str, outlooks: Mapping[str, pd.DataFrame], ape_of: Mapping[str, dict[int, float]], best: str
) -> list[dict]:
    """The accuracy rows of the institutions' pre-year outlooks of one series."""
    rows: list[dict] = []
    for inst, g in outlooks.items():
        years = sorted(ape_of[inst])
        rows.append(
            {
                "unique_id": uid,
                "forecast": inst,
                "kind": "institution",
                "information": "everything they knew in November of Y-1 (customs data through October, "
                "surveys, industry contacts)",
                "n_years": len(years),
                "years": _span_text(years),
                "mape": float(g["institution_ape"].mean()),
                "bias_pct": float(g["institution_error_pct"].mean()),
                "coverage_80": np.nan,
                "best_institution": best,
                "ratio_to_best_institution": _ratio(ape_of[inst], ape_of.get(best, {})),
            }
        )
    return rows


def _model_accuracy_rows(uid: str, s: pd.DataFrame, ape_of: Mapping[str, dict[int, float]], best: str) -> list[dict]:
    """The accuracy rows of every model of one series over the years an institution has an
    outlook for: singles, fitted combinations, combinations, the reconciled forecast, the champion."""
    rows: list[dict] = []
    union = sorted({y for by_year in ape_of.values() for y in by_year})
    models = s[s["target_year"].astype(int).isin(union)].drop_duplicates(["target_year", "model"])
    models = models[counted_as_skill(models)]  # a fallback's figure is not the model's skill
    through = (
        models["model_data_through"].dropna().astype(str)
        if "model_data_through" in models
        else pd.Series([], dtype=str)
    )
    month = int(through.iloc[0][5:7]) if len(through) and through.iloc[0][5:7].isdigit() else 10
    names = list(dict.fromkeys(models["model"].astype(str)))
    kinds = {m: _information(m, "")[0] for m in names}
    fitted_combinations = [m for m in names if kinds[m] == "combination" and m not in COMBINATIONS]  # ensemble, ...
    order = (
        [m for m in names if kinds[m] == "single"]
        + fitted_combinations
        + [m for m in COMBINATIONS if m in names]
        + [RECONCILED]
        + [m for m in names if m == CHAMPION]
    )
    for model in order:
        g = models[models["model"] == model]
        kind, info = _information(model, _MONTHS[month - 1])
        if g.empty:
            rows.append(
                {
                    "unique_id": uid,
                    "forecast": model,
                    "kind": kind,
                    "information": _no_reconciled(uid),
                    "n_years": 0,
                    "years": "",
                    "mape": np.nan,
                    "bias_pct": np.nan,
                    "coverage_80": np.nan,
                    "best_institution": best,
                    "ratio_to_best_institution": np.nan,
                }
            )
            continue
        years = sorted(g["target_year"].astype(int))
        rows.append(
            {
                "unique_id": uid,
                "forecast": model,
                "kind": kind,
                "information": info,
                "n_years": len(years),
                "years": _span_text(years),
                "mape": float(g["model_ape"].mean()),
                "bias_pct": float(g["model_error_pct"].mean()),
                "coverage_80": float(g["model_in_80"].astype(float).mean()),
                "best_institution": best,
                "ratio_to_best_institution": _ratio(
                    dict(zip(g["target_year"].astype(int), g["model_ape"])), ape_of.get(best, {})
                ),
            }
        )
    return rows


# --------------------------------------------------------------------------- mid-year revisions
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{2})\b")
_YEAR = re.compile(r"^(\d{4})\b")
_HALF = re.compile(r"\bH[12]\b")
_QUARTER = re.compile(r"\bQ([1-4])\b")


def revision_date(published: object, published_raw: object = None) -> tuple[pd.Timestamp | None, str]:
    """The information date of a revision and a note ('' when the day is printed).

    - ``published`` a day (YYYY-MM-DD): that day.
    - otherwise the raw text names a month (``2024-06 (report 'Monday')``): the end of that month;
    - a half (``2017 (H1 review ...)``, ``2025 (H2 outlook ...)``: both are the mid-year
      publications): the end of June;
    - a quarter (``2023 (Q1 briefing ...)``): the end of the month after the quarter (a quarter's
      review is out by then at the latest);
    - nothing usable: None (the revision gets no model forecast).
    Each undated rule is the LATEST information the revision could have had."""
    day = "" if published is None or (isinstance(published, float) and np.isnan(published)) else str(published).strip()
    if _ISO_DAY.match(day):
        return pd.Timestamp(day), ""
    raw = (
        ""
        if published_raw is None or (isinstance(published_raw, float) and np.isnan(published_raw))
        else str(published_raw).strip()
    )
    raw = raw or day
    month = _YEAR_MONTH.match(raw)
    if month:
        end = pd.Timestamp(year=int(month.group(1)), month=int(month.group(2)), day=1) + pd.offsets.MonthEnd(0)
        return end, (
            f"no publication day ({raw!r}): the model uses the information public on {end:%Y-%m-%d}, "
            "the end of the named month, the latest it could have known"
        )
    year = _YEAR.match(raw)
    if year and _HALF.search(raw):
        end = pd.Timestamp(year=int(year.group(1)), month=6, day=30)
        return end, (
            f"no publication day ({raw!r}): a half-year review/outlook, published at mid-year; the model uses "
            f"the information public on {end:%Y-%m-%d}, the end of June, the latest it could have known"
        )
    quarter = _QUARTER.search(raw)
    if year and quarter:
        end = pd.Timestamp(year=int(year.group(1)), month=3 * int(quarter.group(1)) + 1, day=1) + pd.offsets.MonthEnd(0)
        return end, (
            f"no publication day ({raw!r}): a quarter's review, out by the end of the month after the "
            f"quarter; the model uses the information public on {end:%Y-%m-%d}, the latest it could have known"
        )
    return None, f"no publication date ({raw or 'blank'!r}): no model forecast"


def mid_year_model_rows(rows: pd.DataFrame, tracking: pd.DataFrame) -> pd.DataFrame:
    """For revision rows (projection rows with ``projected_level_usd_bn``, ``actual_usd_bn`` and
    optional ``published_raw``): the tracked annual total of the series and year made with the
    information public on the revision's date (:func:`revision_date`;
    ``models.applications.inyear.tracked_as_of``), in the comparison's model columns (USD bn). The model
    forecast has no 95% interval (NaN); ``model_data_through`` says what it knew."""
    from models.applications.inyear import tracked_as_of

    out = rows.copy()
    raw = out["published_raw"] if "published_raw" in out.columns else pd.Series(None, index=out.index, dtype=object)
    values: dict[str, list] = {
        k: [] for k in ("model", "model_usd_bn", "model_lo_80", "model_hi_80", "model_data_through", "date_note")
    }
    for published, raw_text, uid, year in zip(out["published"], raw, out["unique_id"], out["target_year"]):
        date, note = revision_date(published, raw_text)
        row = tracked_as_of(tracking, str(uid), int(year), date) if date is not None else None
        if row is None:
            values["model"].append("")
            for k in ("model_usd_bn", "model_lo_80", "model_hi_80"):
                values[k].append(np.nan)
            values["model_data_through"].append("")
            if date is not None:
                note = "; ".join(x for x in (note, f"no in-year tracking of {uid} {int(year)} on {date:%Y-%m-%d}") if x)
        else:
            values["model"].append(str(row["model"]))
            values["model_usd_bn"].append(float(row["forecast_usd_bn"]))
            values["model_lo_80"].append(float(row["lo_80"]))
            values["model_hi_80"].append(float(row["hi_80"]))
            values["model_data_through"].append(
                f"{row['note']} (as of {pd.Timestamp(row['as_of']):%Y-%m-%d}, {row['information']})"
            )
        values["date_note"].append(note)
    for k, v in values.items():
        out[k] = v
    out["champion_model"] = out["model"]
    out["model_used"] = out["model"]  # the in-year tracking's model (models.applications.inyear) ran as named
    out["model_fell_back"] = False
    out["fallback_only"] = False
    out["model_lo_95"] = np.nan
    out["model_hi_95"] = np.nan
    return out


def _with_mid_year(
    comparison: pd.DataFrame,
    p: pd.DataFrame,
    years: list[int],
    eligible_by_year: dict[int, set[str]],
    actual_of: dict,
    source_of: dict,
    tracking: pd.DataFrame,
) -> pd.DataFrame:
    """The comparison with its mid-year revision rows replaced by one row per revision: the
    tracked forecast made with the information public on the revision's date (the October-cutoff
    models do not belong beside a mid-year figure)."""
    keep = comparison[comparison["kind"] != MID_YEAR]
    tracked = set(tracking["unique_id"].astype(str))
    rows = p[(p["kind"] == MID_YEAR) & p["target_year"].isin(years) & p["unique_id"].isin(tracked)].copy()
    if rows.empty:
        return keep.reset_index(drop=True)
    rows = _with_institution_errors(rows, actual_of, source_of)
    rows = _with_model_errors(mid_year_model_rows(rows, tracking))
    # which revisions enter the mid-year summary: one per (institution, series, year), the earliest dated
    dated = [revision_date(a, b)[0] for a, b in zip(rows["published"], rows.get("published_raw", rows["published"]))]
    rows["_date"] = pd.to_datetime(pd.Series(dated, index=rows.index))
    ordered = rows.sort_values(["_date", "src_row"], na_position="last")
    first = set(ordered.drop_duplicates(["unique_id", "institution", "target_year"], keep="first")["src_row"])
    notes = []
    for r in rows.itertuples():
        if not np.isfinite(r.projected_level_usd_bn):
            notes.append(f"no comparable level ({r.level_basis})")
        elif not np.isfinite(r.actual_usd_bn):
            notes.append("no actual for the year")
        elif not np.isfinite(r.model_usd_bn):
            notes.append("no model forecast (no usable publication date or no tracking)")
        elif r.src_row not in first:
            notes.append(
                "another revision of this institution for the year was published earlier; that one is summarised"
            )
        else:
            notes.append("")
    rows["summary_note"] = [f"{MID_YEAR}: " + (n or "in the mid-year summary") for n in notes]
    rows["in_summary"] = [n == "" for n in notes]
    rows["note"] = ["; ".join(x for x in (n, d) if x) for n, d in zip(rows["note"], rows["date_note"])]
    out = rows[COMPARISON_COLUMNS] if keep.empty else pd.concat([keep, rows[COMPARISON_COLUMNS]], ignore_index=True)
    return out.sort_values(["target_year", "unique_id", "institution"], kind="stable").reset_index(drop=True)


def mid_year_summary(comparison: pd.DataFrame) -> pd.DataFrame:
    """The mid-year section of the summary (``section`` = ``mid-year revision``): per series and
    institution, and over all institutions (``institution`` = ``all``), the institutions' MAPE on
    their mid-year revisions beside the tracked model's MAPE on the same revisions, each made
    with the information public on the revision's date."""
    used = comparison[(comparison["kind"] == MID_YEAR) & comparison["in_summary"].astype(bool)]
    if used.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    groups = [((uid, inst), g) for (uid, inst), g in used.groupby(["unique_id", "institution"], sort=True)]
    groups += [((uid, "all"), g) for uid, g in used.groupby("unique_id", sort=True)]
    rows = []
    for (uid, inst), g in groups:
        years = sorted(g["target_year"].astype(int))
        n_growth = int((g["level_basis"] == "growth x prior-year actual").sum())
        notes = [
            "mid-year revisions; the model is the in-year tracking with the information public on each "
            "revision's date (confirmed months and flash figures)"
        ]
        if n_growth:
            notes.append(f"{n_growth} growth-only revision(s) compared as prior-year actual x (1+g)")
        rows.append(
            {
                "unique_id": uid,
                "institution": inst,
                "n_years": len(g),
                "years": _span_text(sorted(set(years))),
                "institution_mape": float(g["institution_ape"].mean()),
                "model": "; ".join(sorted(set(g["model"].astype(str)))),
                "model_mape": float(g["model_ape"].mean()),
                "model_coverage_80": float(g["model_in_80"].astype(float).mean()),
                "institution_bias_pct": float(g["institution_error_pct"].mean()),
                "model_bias_pct": float(g["model_error_pct"].mean()),
                "n_growth_only": n_growth,
                "n_published_in_target_year": int(g["published_in_target_year"].astype(bool).sum()),
                "actual_sources": "; ".join(sorted(set(g["actual_source"]))),
                "note": "; ".join(notes),
                "section": MID_YEAR,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def compare_mid_year(
    frame: pd.DataFrame,
    projections: pd.DataFrame,
    actuals: pd.DataFrame,
    tracking: pd.DataFrame,
    *,
    first_year: int = 2013,
    last_year: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mid-year part of :func:`compare_with_institutions` alone (no backtest: cheap), for the
    same years (first_year..last_year with a pre-year outlook): the mid-year comparison rows and
    the mid-year summary section."""
    _check_frame(frame)
    p, _, actual_of, source_of, _, years = _comparison_basis(frame, projections, actuals, first_year, last_year)
    rows = _with_mid_year(pd.DataFrame(columns=COMPARISON_COLUMNS), p, years, {}, actual_of, source_of, tracking)
    return rows, mid_year_summary(rows)
