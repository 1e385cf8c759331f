"""Backtest and forecast jobs on any canonical frame (the CLI's `backtest` / `forecast` and the
pipeline share these, so that both go through the same settings -> engine path)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from flows.settings import Settings
    from models.backtest import BacktestResult
    from models.engine import ForecastResult

MONTH = pd.offsets.MonthBegin(1)


def working_day_exog(frame: pd.DataFrame, last_month: pd.Timestamp) -> pd.DataFrame:
    """Korean working days for every month from the frame's first month through ``last_month``."""
    from features.calendar import working_days

    return working_days(frame["ds"].min(), last_month)


def backtest_frame(frame: pd.DataFrame, settings: "Settings", *, horizon: int, windows: int, step: int,
                   cutoffs: list[pd.Timestamp] | None = None, progress: bool = False) -> "BacktestResult":
    from models.backtest import backtest
    from models.champion import default_champion

    engine = settings.engine_settings()
    exog = working_day_exog(frame, frame["ds"].max() + horizon * MONTH)
    return backtest(frame, engine, horizon=horizon, windows=windows, step=step, exog=exog,
                    cutoffs=cutoffs, default_champion=default_champion(engine.model_names), progress=progress)


def forecast_frame(frame: pd.DataFrame, settings: "Settings", *, horizon: int | None = None,
                   until: pd.Timestamp | None = None, annual_year: int | None = None, keep_models: bool = False,
                   progress: bool = False) -> "ForecastResult":
    from models.engine import forecast

    if (horizon is None) == (until is None):
        raise ValueError("give exactly one of horizon or until")
    last = until if until is not None else frame["ds"].max() + horizon * MONTH
    exog = working_day_exog(frame, last)
    return forecast(frame, settings.engine_settings(), horizon=horizon, until=until, exog=exog,
                    annual_year=annual_year, keep_models=keep_models, progress=progress)
