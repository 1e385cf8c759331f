"""Backtest and forecast jobs on any canonical frame (the CLI's `backtest` / `forecast` and the
pipeline share these, so that both go through the same settings -> engine path)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

# the plan's inputs, at home in flows.plan; the CLI, benchmarks and tests also reach them here
from flows.plan import leading_extras as leading_extras
from flows.plan import uses_working_days as uses_working_days
from flows.plan import working_day_exog as working_day_exog

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Collection
    from pathlib import Path

    from flows.plan import RunPlan
    from flows.settings import Settings
    from models.core.backtest import BacktestResult
    from models.core.engine import ForecastResult
    from models.selection.reconcile import Hierarchy

MONTH = pd.offsets.MonthBegin(1)


def leading_for(settings: Settings, frame: pd.DataFrame, universe: Collection[str] | None = None) -> Settings:
    """The settings with ``models.leading`` kept to the series ``frame`` has. A run calls it once
    on its data, so that nothing downstream (the indicator table, the cache keys, MLflow) waits for
    a model that cannot run.

    The others are named in ONE DataWarning when they belong to ``universe``, the series the
    source can have (``series_universe``: the embedded dataset's, the customs API's; None: every
    configured id counts), e.g. a selection ``data.series`` that drops the configured series. A
    series outside it (the shipped semiconductor series, absent from a user's own CSV) is named
    only under ``runtime.verbose`` (``--verbose``): otherwise every user CSV gets the warning."""
    import warnings

    from exportcast.errors import DataWarning

    if not settings.models.leading:
        return settings
    have = set(frame["unique_id"].astype(str))
    absent = sorted(set(settings.models.leading) - have)
    if not absent:
        return settings
    named = absent if universe is None or settings.runtime.verbose else sorted(set(absent) & set(universe))
    if named:
        warnings.warn(
            f"models.leading names series the data does not have: {', '.join(named)}; their leading models do not run",
            DataWarning,
            stacklevel=2,
        )
    return settings.updated(
        "models", leading={uid: names for uid, names in settings.models.leading.items() if uid in have}
    )


def series_universe(settings: Settings, frame: pd.DataFrame, data_dir: Path) -> list[str]:
    """The series the configured source can have (``leading_for``): the embedded dataset's
    (``series.csv``), the customs API's (the total, ``data.customs.hs_to_item``'s items, the
    destinations), or a user CSV's own series (``frame``'s)."""
    if settings.data.source == "embedded" and (data_dir / "series.csv").is_file():
        from features.readers import read_series_metadata

        return read_series_metadata(data_dir)["unique_id"].tolist()
    if settings.data.source == "customs_api":
        from features.customs_api import DEFAULT_COUNTRIES

        return ["total", *settings.data.customs.hs_to_item, *DEFAULT_COUNTRIES]
    return sorted(set(frame["unique_id"].astype(str)))


def leading_indicators(settings: Settings, data_dir: Path) -> pd.DataFrame | None:
    """The indicator table the leading models read (None when ``models.leading`` is empty): the
    embedded ``indicators_monthly.csv``, or ``data.indicators_path`` for another source. Another
    source without ``data.indicators_path`` reads the embedded table too (the project's own
    dataset, through its last month), with a DataWarning saying so: a live run from the customs
    API with a leading model configured must not stop for want of a second file."""
    import warnings

    from exportcast.errors import DataWarning
    from features.readers import read_indicator_csv, read_indicators

    if not settings.models.leading:
        return None
    if settings.data.source != "embedded" and settings.data.indicators_path is not None:
        return read_indicator_csv(settings.data.indicators_path)
    table = read_indicators(data_dir)
    if settings.data.source != "embedded":
        warnings.warn(
            f"data.indicators_path is not set: the leading models ({', '.join(sorted(settings.models.leading))}) "
            f"read the embedded indicator table {data_dir / 'indicators_monthly.csv'}, through "
            f"{table['ds'].max():%Y-%m}",
            DataWarning,
            stacklevel=2,
        )
    return table


def backtest_frame(
    frame: pd.DataFrame,
    settings: Settings,
    *,
    horizon: int,
    windows: int,
    step: int,
    cutoffs: list[pd.Timestamp] | None = None,
    progress: bool = False,
    hierarchy: Hierarchy | None = None,
    indicators: pd.DataFrame | None = None,
) -> BacktestResult:
    """``indicators``: the table of the leading models (``leading_indicators``), when ``models.leading`` is set."""
    from flows.plan import build_plan

    plan = build_plan(
        settings, frame, until=frame["ds"].max() + horizon * MONTH, indicators=indicators, hierarchy=hierarchy
    )
    return backtest_with(plan, frame, horizon=horizon, windows=windows, step=step, cutoffs=cutoffs, progress=progress)


def backtest_with(
    plan: RunPlan,
    frame: pd.DataFrame,
    *,
    horizon: int,
    windows: int,
    step: int,
    cutoffs: list[pd.Timestamp] | None = None,
    progress: bool = False,
) -> BacktestResult:
    """The backtest of the plan's models on ``frame`` (rolling ``windows``, or ``cutoffs``)."""
    from models.core.backtest import run_backtest

    return run_backtest(
        frame,
        plan.engine,
        plan.backtest_spec(horizon=horizon, windows=windows, step=step, cutoffs=cutoffs),
        exog=plan.exog_through(frame["ds"].max() + horizon * MONTH),
        extras=plan.extras,
        progress=progress,
    )


def with_combinations(fc: ForecastResult, bt: BacktestResult, settings: Settings) -> ForecastResult:
    """The forecast with the combination candidates (``models.selection.combination``) added from its own
    members' forecasts, inverse-MASE weights from every backtest window; unchanged when
    ``backtest.combinations`` is off."""
    from models.selection.champion import CHAMPION
    from models.selection.combination import add_combinations, pool

    if not settings.backtest.combinations:
        return fc
    members = pool(settings.engine_settings().model_names)
    return add_combinations(fc, bt.metrics[bt.metrics["model"] != CHAMPION], members)


def forecast_frame(
    frame: pd.DataFrame,
    settings: Settings,
    *,
    horizon: int | None = None,
    until: pd.Timestamp | None = None,
    annual_year: int | None = None,
    keep_models: bool = False,
    progress: bool = False,
    indicators: pd.DataFrame | None = None,
) -> ForecastResult:
    from flows.plan import build_plan

    if (horizon is None) == (until is None):
        raise ValueError("give exactly one of horizon or until")
    last = until if until is not None else frame["ds"].max() + horizon * MONTH
    plan = build_plan(settings, frame, until=last, indicators=indicators)
    return forecast_with(
        plan, frame, horizon=horizon, until=until, annual_year=annual_year, keep_models=keep_models, progress=progress
    )


def forecast_with(
    plan: RunPlan,
    frame: pd.DataFrame,
    *,
    horizon: int | None = None,
    until: pd.Timestamp | None = None,
    annual_year: int | None = None,
    keep_models: bool = False,
    progress: bool = False,
) -> ForecastResult:
    """The forecast of the plan's models on ``frame``: ``horizon`` months, or through ``until``."""
    from models.core.engine import forecast

    if (horizon is None) == (until is None):
        raise ValueError("give exactly one of horizon or until")
    last = until if until is not None else frame["ds"].max() + horizon * MONTH
    return forecast(
        frame,
        plan.engine,
        horizon=horizon,
        until=until,
        exog=plan.exog_through(last),
        annual_year=annual_year,
        keep_models=keep_models,
        progress=progress,
        extras=plan.extras,
    )
