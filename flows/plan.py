"""The run plan: what every stage of one run reads, built ONCE from the settings and the data.

    plan = build_plan(settings, frame, until=last_month, indicators=table, hierarchy=h, cache_key=key)

The stages (backtest, forecast, institutional, reconcile, MLflow) receive the plan instead of
computing their inputs again: the engine settings, the working-day regressor (one table from the
data's first month through the last month any stage forecasts; each stage takes its months with
:meth:`RunPlan.exog_through`), the leading models' extras (``models.families.leading_extras``,
each model built once), the hierarchy, the champion rule and the cache keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from flows.settings import Settings
    from models.core.backtest import BacktestSpec, Cutoffs
    from models.core.engine import EngineSettings
    from models.families.leading_extras import LeadingExtras
    from models.selection.champion import ChampionRule
    from models.selection.reconcile import Hierarchy

__all__ = ["RunPlan", "build_plan", "leading_extras", "uses_working_days", "working_day_exog"]


@dataclass(frozen=True)
class RunPlan:
    """One run's inputs, computed once (:func:`build_plan`).

    ``settings``: the run's settings (``models.leading`` kept to the series of the data);
    ``engine``: their engine settings; ``working_days``: the working-day regressor through the last
    month of the run (None when no enabled model reads it, or the calendar covers no month);
    ``indicators``: the leading models' indicator table (None without ``models.leading``);
    ``extras``: the leading models' extras (None without ``models.leading``); ``hierarchy``: the
    series' hierarchy (None: no reconciliation); ``champion_rule``: the metric and noise margin of
    the champion choice; ``cache_key``: what the cached stages' results depend on besides their
    config sections (data hash, code version, seed, data checks, the indicators' content)."""

    settings: Settings
    engine: EngineSettings
    working_days: pd.DataFrame | None
    indicators: pd.DataFrame | None
    extras: LeadingExtras | None
    hierarchy: Hierarchy | None
    champion_rule: ChampionRule
    cache_key: Mapping[str, Any] = field(default_factory=dict)

    def exog_through(self, last: pd.Timestamp) -> pd.DataFrame | None:
        """The working days from the data's first month through ``last`` (None: none)."""
        if self.working_days is None:
            return None
        exog = self.working_days.loc[: pd.Timestamp(last)]
        return exog if len(exog) else None

    def key(self, *sections: str, **more: Any) -> dict[str, Any]:
        """A cached stage's key: the plan's cache key, the config ``sections`` it reads and ``more``."""
        return {**self.cache_key, **self.settings.section_dict(*sections), **more}

    @property
    def content_hash(self) -> str:
        """sha256 of the data and the config the fits depend on (data hash, code version, seed,
        data checks, indicators, models, backtest, target year): a key for a cache of fits."""
        payload = json.dumps(self.key("models", "backtest", "target_year"), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()

    def backtest_spec(
        self, *, horizon: int, windows: int | None = None, step: int = 1, cutoffs: Cutoffs | None = None
    ) -> BacktestSpec:
        """The backtest of these settings: the champion rule, the combinations and the hierarchy."""
        from models.core.backtest import BacktestSpec
        from models.selection.champion import default_champion

        return BacktestSpec(
            horizon=horizon,
            windows=windows,
            step=step,
            cutoffs=cutoffs,
            default_champion=default_champion(self.engine.model_names),
            champion_rule=self.champion_rule,
            combinations=self.settings.backtest.combinations,
            hierarchy=self.hierarchy,
        )

    def own_exog(self, frame: pd.DataFrame, until: pd.Timestamp) -> dict[str, pd.DataFrame]:
        """Each leading series' own regressor columns as of its last month, through ``until``."""
        from models.families.leading_extras import own_columns

        return own_columns(self.extras, frame, until)


def build_plan(
    settings: Settings,
    frame: pd.DataFrame,
    *,
    until: pd.Timestamp,
    indicators: pd.DataFrame | None = None,
    hierarchy: Hierarchy | None = None,
    cache_key: Mapping[str, Any] | None = None,
) -> RunPlan:
    """The plan of a run on ``frame`` whose stages forecast through ``until`` at the latest.
    ``settings`` must already keep ``models.leading`` to the data's series (``jobs.leading_for``)."""
    return RunPlan(
        settings=settings,
        engine=settings.engine_settings(),
        working_days=working_day_exog(frame, until, settings),
        indicators=indicators,
        extras=leading_extras(settings, indicators),
        hierarchy=hierarchy,
        champion_rule=settings.backtest.champion_rule(),
        cache_key=dict(cache_key or {}),
    )


def working_day_exog(
    frame: pd.DataFrame, last_month: pd.Timestamp, settings: Settings | None = None
) -> pd.DataFrame | None:
    """Korean working days for the months from the frame's first month through ``last_month``
    that the calendar covers (see :func:`features.calendar.working_days_within`; None if none).

    With ``settings``: None when no enabled model is configured to use the regressor
    (``working_days: true``, directly or as an ensemble member). A series outside the covered
    months is fitted without the regressor and the engine records why in ``model_fits``."""
    from features.calendar import working_days_within

    if settings is not None and not uses_working_days(settings):
        return None
    return working_days_within(frame["ds"].min(), last_month)


def uses_working_days(settings: Settings) -> bool:
    """Whether an enabled model (or a member of an enabled ensemble) has ``working_days: true``."""
    for spec in settings.engine_settings().models:
        members = spec.params.get("members")
        candidates = [spec.params, *(members.values() if isinstance(members, dict) else ())]
        if any(isinstance(p, dict) and p.get("working_days") for p in candidates):
            return True
    return False


def leading_extras(settings: Settings, indicators: pd.DataFrame | None) -> LeadingExtras | None:
    """The extras of config ``models.leading`` (``models.families.leading_extras``; None when it is
    empty). A run keeps ``models.leading`` to the series its data has once, first (``leading_for``)."""
    from models.families.leading_extras import leading_extras as build

    return build(settings.models.leading, settings.models.params, indicators)
