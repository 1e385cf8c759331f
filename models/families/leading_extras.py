"""The extras of config ``models.leading`` (``models.core.engine.ExtrasAt``): at each cutoff, a
series' leading models with what they read of their indicators as public on that cutoff's
information date (``features.publication.information_date``, values from
``features.leading``). Built once per run (:func:`leading_extras`) and asked by the backtest, the
forecast, the institutional replays and the published reconciliation alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from features.leading import LeadingSpec
    from models.core.base import Forecaster
    from models.core.engine import ModelSpec, SeriesExtras
    from models.families.cycle import GrowthAR
    from models.families.momentum import MomentumRegression

__all__ = ["LeadingPlan", "LeadingExtras", "leading_extras", "own_columns"]


@dataclass(frozen=True)
class LeadingPlan:
    """One leading model of one series: its spec, the model built from it once (``leading_extras``)
    and the indicator it reads.

    How it reads it (``reads``): a ``"regressor"`` (ARIMAX: the indicator's column on the series'
    months, known months then NaN) or a ``"reference"`` (the cycle model, whose ``reference``
    param names it: the indicator's whole public history, from which its dynamics are estimated
    at each cutoff and handed in as params)."""

    spec: ModelSpec
    model: Forecaster
    lead: LeadingSpec

    @property
    def reads(self) -> str:
        if getattr(self.model, "market_indicators", ()):
            return "market"  # chip momentum (models.families.momentum): a reference's regressions and market columns
        return "reference" if self.model.params.get("reference") else "regressor"


class LeadingExtras:
    """``models.core.engine.ExtrasAt`` of config ``models.leading``: for a series with leading models,
    at each cutoff, each model with what it reads of its indicator as public on that cutoff's
    information date (the 16th after the cutoff month, ``features.leading.information_date``).

    - A regressor model (ARIMAX) gets its indicator column (``features.leading.leading_columns``;
      beyond the public months the model forecasts the indicator). It is skipped where the
      indicator cannot serve the cutoff (it starts later, or the cutoff month's value was not
      public yet), and where fewer known months of its indicator up to the cutoff than it needs to
      fit (``min_obs``): its forecast would be the engine's fallback under the leading model's
      name (e.g. the flash, from 2016, at the October 2016 and 2017 cutoffs of the institutional
      comparison).
    - A reference model (the cycle model, ``models.families.cycle``) gets the dynamics estimated on the
      indicator's public history (``GrowthAR.estimate``) as params. It is skipped where that
      history is too short, or where the series has fewer months up to the cutoff than dynamics of
      that order need (``GrowthCycle.needed_months``).

    Each skip is recorded with its one-line reason. A reference's dynamics are estimated once per
    information date and search (the backtest asks at the same cutoffs for every series)."""

    def __init__(self, plan: dict[str, list[LeadingPlan]], indicators: pd.DataFrame) -> None:
        self.plan = plan
        self.indicators = indicators
        #: (indicator, max_lag, information date) -> dynamics or why none: models reading the same
        #: reference with the same search (e.g. cycle_wsts beside cycle_blend) share one estimate
        self._dynamics: dict[tuple[str, int, pd.Timestamp], GrowthAR | str] = {}
        #: (reference, markets, horizon, min_pairs, information date) -> (regressions, market columns) or why none
        self._momentum: dict[tuple, tuple[MomentumRegression, pd.DataFrame] | str] = {}

    def _momentum_at(self, item: LeadingPlan, cutoff: pd.Timestamp) -> tuple[MomentumRegression, pd.DataFrame] | str:
        """A market model's regressions, learned on its reference, and its market columns (every
        month's 12- and 6-month log changes), both as public on the cutoff's information date."""
        from features.leading import LeadingIndicatorError, public_values
        from features.publication import information_date
        from models.core.base import ModelInputError
        from models.families.momentum import MomentumRegression, market_features

        info = information_date(cutoff)
        params = item.model.params
        markets = tuple(item.model.market_indicators)
        key = (item.lead.indicator, markets, params["horizon"], params["min_pairs"], info)
        if key not in self._momentum:
            try:
                reference = public_values(self.indicators, item.lead.indicator, as_of=info, cutoff=cutoff)
                features = market_features(
                    {m: public_values(self.indicators, m, as_of=info, cutoff=cutoff) for m in markets}
                )
                regression = MomentumRegression.estimate(
                    reference, features, horizon=params["horizon"], min_pairs=params["min_pairs"]
                )
                self._momentum[key] = (regression, features)
            except LeadingIndicatorError as exc:
                self._momentum[key] = str(exc)
            except ModelInputError as exc:
                self._momentum[key] = f"reference '{item.lead.indicator}' as public on {info:%Y-%m-%d}: {exc}"
        return self._momentum[key]

    def _market_spec(
        self, item: LeadingPlan, cutoff: pd.Timestamp, months: pd.DatetimeIndex
    ) -> tuple[ModelSpec, pd.DataFrame] | str:
        """A market model with its regressions (and, for a blend with the cycle, its dynamics) as
        params and its market columns on the series' months (NaN after the cutoff), or why it is skipped."""
        from models.core.engine import ModelSpec
        from models.families.cycle import MIN_RESIDUALS, SEASON

        got = self._momentum_at(item, cutoff)
        if isinstance(got, str):
            return got
        regression, features = got
        lacking = [c for c in features.columns if cutoff not in features.index or pd.isna(features.at[cutoff, c])]
        if lacking:
            return (
                f"market variable(s) {', '.join(lacking)} of cutoff month {cutoff:%Y-%m} not known on the "
                f"information date of {item.spec.name}"
            )
        have, need = int((months <= cutoff).sum()), SEASON + MIN_RESIDUALS + 1
        if have < need:
            return (
                f"{have} months of history by cutoff {cutoff:%Y-%m}; {item.spec.name} needs {need} (a year of "
                f"growth and {MIN_RESIDUALS} one-month-ahead residuals)"
            )
        params = dict(item.spec.params) | regression.params()
        if "intercept" in item.model.params:  # the blend with the cycle model: its dynamics too
            cycle = self._reference_spec(item, cutoff, months)
            if isinstance(cycle, str):
                return cycle
            params |= {k: v for k, v in cycle.params.items() if k in ("intercept", "phi")}
        columns = features.reindex(months)
        columns.loc[columns.index > cutoff] = float("nan")
        return ModelSpec(item.spec.name, params), columns

    def _dynamics_at(self, item: LeadingPlan, cutoff: pd.Timestamp) -> GrowthAR | str:
        """The reference's dynamics as public on the cutoff's information date, or why there are none."""
        from features.leading import LeadingIndicatorError, public_values
        from features.publication import information_date
        from models.core.base import ModelInputError
        from models.families.cycle import GrowthAR

        info = information_date(cutoff)
        max_lag = item.model.params["max_lag"]
        key = (item.lead.indicator, max_lag, info)
        if key not in self._dynamics:
            try:
                values = public_values(self.indicators, item.lead.indicator, as_of=info, cutoff=cutoff)
                self._dynamics[key] = GrowthAR.estimate(values.to_numpy(), max_lag=max_lag)
            except LeadingIndicatorError as exc:
                self._dynamics[key] = str(exc)
            except ModelInputError as exc:
                self._dynamics[key] = f"reference '{item.lead.indicator}' as public on {info:%Y-%m-%d}: {exc}"
        return self._dynamics[key]

    def _reference_spec(self, item: LeadingPlan, cutoff: pd.Timestamp, months: pd.DatetimeIndex) -> ModelSpec | str:
        """The model with its dynamics at this cutoff as params, or why it is skipped."""
        from models.core.engine import ModelSpec

        dynamics = self._dynamics_at(item, cutoff)
        if isinstance(dynamics, str):
            return dynamics
        have = int((months <= cutoff).sum())
        need = item.model.needed_months(dynamics.order)
        if have < need:
            return (
                f"{have} months of history by cutoff {cutoff:%Y-%m}; {item.spec.name} with the "
                f"dynamics of order {dynamics.order} of '{item.lead.indicator}' needs {need}"
            )
        return ModelSpec(item.spec.name, dict(item.spec.params) | dynamics.params())

    def _regressor_column(
        self, item: LeadingPlan, cutoff: pd.Timestamp, months: pd.DatetimeIndex
    ) -> pd.DataFrame | str:
        """The indicator's column as public at this cutoff, or why the model is skipped."""
        from features.leading import LeadingIndicatorError, leading_columns

        try:
            column = leading_columns(self.indicators, [item.lead], cutoff=cutoff, months=months)
        except LeadingIndicatorError as exc:
            return str(exc)
        known = int(column[item.lead.column].loc[:cutoff].notna().sum())
        if known < item.model.min_obs:
            return (
                f"{known} months of leading indicator '{item.lead.indicator}' known by cutoff "
                f"{cutoff:%Y-%m}; {item.spec.name} needs {item.model.min_obs}"
            )
        return column

    def __call__(self, unique_id: str, cutoff: pd.Timestamp, months: pd.DatetimeIndex) -> SeriesExtras:
        from models.core.engine import SeriesExtras

        cutoff = pd.Timestamp(cutoff)
        models, columns, skipped = [], [], []
        for item in self.plan.get(unique_id, []):
            if item.reads == "market":
                got = self._market_spec(item, cutoff, months)
                if isinstance(got, str):
                    skipped.append((item.spec.name, got))
                else:
                    models.append(got[0])
                    columns.append(got[1])
                continue
            if item.reads == "reference":
                got = self._reference_spec(item, cutoff, months)
                if isinstance(got, str):
                    skipped.append((item.spec.name, got))
                else:
                    models.append(got)
                continue
            column = self._regressor_column(item, cutoff, months)
            if isinstance(column, str):
                skipped.append((item.spec.name, column))
                continue
            columns.append(column)
            models.append(item.spec)
        if not columns:
            return SeriesExtras(tuple(models), None, tuple(skipped))
        exog = pd.concat(columns, axis=1)
        return SeriesExtras(tuple(models), exog.loc[:, ~exog.columns.duplicated()], tuple(skipped))


def leading_extras(
    leading: Mapping[str, Sequence[str]], params: Mapping[str, Mapping[str, Any]], indicators: pd.DataFrame | None
) -> LeadingExtras | None:
    """The extras of config ``models.leading`` (``leading``: series -> model names; ``params``: the
    models' params; None when ``leading`` is empty). Each model is built once here, so a bad
    setting (e.g. ``arimax`` without ``params.arimax.regressor``) fails at the start."""
    from features.leading import LeadingSpec
    from models.core import registry
    from models.core.engine import ModelSpec
    from models.errors import ModelSetupError

    if not leading:
        return None
    if indicators is None:
        raise ModelSetupError(
            "models.leading needs the indicator table (data/indicators_monthly.csv, or "
            "data.indicators_path for a CSV source); none was given"
        )
    plan: dict[str, list[LeadingPlan]] = {}
    known = set(indicators["indicator"])
    for unique_id, names in leading.items():
        for name in names:
            model_params = dict(params.get(name, {}))
            try:
                model = registry.create(name, model_params)
            except Exception as exc:  # noqa: BLE001 - named in one line
                raise ModelSetupError(
                    f"models.leading['{unique_id}']: model '{name}' cannot be created with params {model_params}: {exc}"
                ) from exc
            if model.params.get("reference"):
                lead = LeadingSpec(model.params["reference"])
            elif model.params.get("regressor"):
                lead = LeadingSpec.from_column(model.params["regressor"])
            else:
                raise ModelSetupError(
                    f"models.leading['{unique_id}']: model '{name}' reads no indicator; set "
                    f"models.params.{name}.reference (the indicator its dynamics are learned on)"
                )
            for indicator in (lead.indicator, *getattr(model, "market_indicators", ())):
                if indicator not in known:
                    raise ModelSetupError(
                        f"models.leading['{unique_id}']: model '{name}' reads indicator '{indicator}', "
                        f"which the indicator table does not have"
                    )
            plan.setdefault(unique_id, []).append(LeadingPlan(ModelSpec(name, model_params), model, lead))
    return LeadingExtras(plan, indicators)


def own_columns(extras: LeadingExtras | None, frame: pd.DataFrame, until: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Each leading series' own regressor columns as of its last observed month, through
    ``until``: what its leading models forecast from in the published run (the published
    reconciliation and the MLflow model)."""
    if extras is None:
        return {}
    out: dict[str, pd.DataFrame] = {}
    for unique_id in extras.plan:
        ds = frame.loc[(frame["unique_id"] == unique_id) & frame["y"].notna(), "ds"]
        if ds.empty:
            continue
        months = pd.date_range(ds.min(), max(pd.Timestamp(until), ds.max()), freq="MS", name="ds")
        own = extras(unique_id, ds.max(), months).exog
        if own is not None:
            out[unique_id] = own
    return out
