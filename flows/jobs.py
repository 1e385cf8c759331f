"""Backtest and forecast jobs on any canonical frame (the CLI's `backtest` / `forecast` and the
pipeline share these, so that both go through the same settings -> engine path)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from flows.settings import Settings
    from models.backtest import BacktestResult
    from models.engine import ForecastResult
    from models.reconcile import Hierarchy

MONTH = pd.offsets.MonthBegin(1)


def working_day_exog(frame: pd.DataFrame, last_month: pd.Timestamp,
                     settings: "Settings | None" = None) -> pd.DataFrame | None:
    """Korean working days for the months from the frame's first month through ``last_month``
    that the calendar covers (see :func:`features.calendar.working_days_within`; None if none).

    With ``settings``: None when no enabled model is configured to use the regressor
    (``working_days: true``, directly or as an ensemble member). A series outside the covered
    months is fitted without the regressor and the engine records why in ``model_fits``."""
    from features.calendar import working_days_within

    if settings is not None and not uses_working_days(settings):
        return None
    return working_days_within(frame["ds"].min(), last_month)


def uses_working_days(settings: "Settings") -> bool:
    """Whether an enabled model (or a member of an enabled ensemble) has ``working_days: true``."""
    for spec in settings.engine_settings().models:
        members = spec.params.get("members")
        candidates = [spec.params, *(members.values() if isinstance(members, dict) else ())]
        if any(isinstance(p, dict) and p.get("working_days") for p in candidates):
            return True
    return False


def backtest_frame(frame: pd.DataFrame, settings: "Settings", *, horizon: int, windows: int, step: int,
                   cutoffs: list[pd.Timestamp] | None = None, progress: bool = False,
                   hierarchy: "Hierarchy | None" = None) -> "BacktestResult":
    from models.backtest import backtest
    from models.champion import default_champion

    engine = settings.engine_settings()
    exog = working_day_exog(frame, frame["ds"].max() + horizon * MONTH, settings)
    return backtest(frame, engine, horizon=horizon, windows=windows, step=step, exog=exog,
                    cutoffs=cutoffs, default_champion=default_champion(engine.model_names), progress=progress,
                    champion_rule=settings.backtest.champion_rule(), combinations=settings.backtest.combinations,
                    hierarchy=hierarchy)


def with_combinations(fc: "ForecastResult", bt: "BacktestResult", settings: "Settings") -> "ForecastResult":
    """The forecast with the combination candidates (``models.combination``) added from its own
    members' forecasts, inverse-MASE weights from every backtest window; unchanged when
    ``backtest.combinations`` is off."""
    import dataclasses

    from models.champion import CHAMPION
    from models.combination import add_combinations, pool

    if not settings.backtest.combinations:
        return fc
    members = pool(settings.engine_settings().model_names)
    forecasts, annual, fits, fitted = add_combinations(fc.forecasts, fc.annual, fc.fits, fc.fitted,
                                                       bt.metrics[bt.metrics["model"] != CHAMPION], members)
    return dataclasses.replace(fc, forecasts=forecasts, annual=annual, fits=fits, fitted=fitted)


def forecast_frame(frame: pd.DataFrame, settings: "Settings", *, horizon: int | None = None,
                   until: pd.Timestamp | None = None, annual_year: int | None = None, keep_models: bool = False,
                   progress: bool = False) -> "ForecastResult":
    from models.engine import forecast

    if (horizon is None) == (until is None):
        raise ValueError("give exactly one of horizon or until")
    last = until if until is not None else frame["ds"].max() + horizon * MONTH
    exog = working_day_exog(frame, last, settings)
    return forecast(frame, settings.engine_settings(), horizon=horizon, until=until, exog=exog,
                    annual_year=annual_year, keep_models=keep_models, progress=progress)
