"""Median ensemble of registered models.

Param ``members``: a list of model names (each built with its defaults) or a mapping
name -> params. Every member is fitted through the registry on the same series and exogenous
frame. Forecast and each bound are the median across the members that fitted (a median of
quantiles is not the quantile of a combined distribution, but it is robust to one wild
member and keeps lo_95 <= lo_80 <= forecast <= hi_80 <= hi_95). Sample paths: each member
draws with its own seed derived from the caller's, the draws of each member are ranked by their
total over the horizon, and the k-th path is the median of the members' k-th paths (so annual
totals keep every member's month-to-month correlation AND the members' spread, as the bounds do).

It is a ``models.selection.combination.Combination`` whose members it fits itself: ``reduce``
(the median here) is how forecast, bounds and paths are combined, and its path rule is
``RANK_PAIRED``; ``models.families.cycle.CycleBlend`` takes the mean.

A member that fails to fit is left out and recorded (``describe()['failed']``); if every member
fails the ensemble raises. ``min_obs`` is the smallest member's: a member needing more
observations than the series has is one of the failures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pandas as pd

from models.core import registry
from models.core.base import Forecaster, ModelInputError, Traits
from models.core.registry import register
from models.selection.combination import RANK_PAIRED, Combination


class EnsembleFitError(RuntimeError):
    """No member of the ensemble could be fitted."""


#: the ensemble's members when none are configured
DEFAULT_MEMBERS: tuple[str, ...] = ("arima", "prophet", "ets", "theta")


@register
class Ensemble(Combination):
    """Median of the members' forecasts, bounds and paths."""

    name = "ensemble"
    traits = Traits(family="combination", complexity=6, uses_exog=True, combination=True)
    #: how the members' forecasts, bounds and rank-paired paths are reduced (a subclass may take the mean)
    reduce = "median"
    path_rule = RANK_PAIRED
    exog_to_every_member = True

    @classmethod
    def member_names(cls, params: Mapping[str, Any]) -> list[str]:
        """The members a model of this class configured with ``params`` combines."""
        return [str(m) for m in params.get("members", DEFAULT_MEMBERS)]

    @classmethod
    def traits_for(cls, params: Mapping[str, Any]) -> Traits:
        """The class's traits with ``min_obs`` the smallest of its members' (as an instance's)."""
        members = cls.member_names(params)
        return dataclasses.replace(cls.traits, min_obs=min(registry.get(m).traits.min_obs for m in members))

    def __init__(
        self,
        members: list[str] | Mapping[str, Mapping[str, Any] | None] = DEFAULT_MEMBERS,
        **params: Any,
    ) -> None:
        if isinstance(members, str) or not isinstance(members, (list, tuple, Mapping)):
            raise ModelInputError(
                f"ensemble: members must be a list of model names or a mapping name -> params; got {members!r}"
            )
        spec = (
            {str(k): dict(v or {}) for k, v in members.items()}
            if isinstance(members, Mapping)
            else {str(k): {} for k in members}
        )
        if len(spec) != len(members):
            raise ModelInputError(f"ensemble: duplicate member names in {list(members)}")
        if not spec:
            raise ModelInputError("ensemble: members is empty")
        if self.name in spec:
            raise ModelInputError("ensemble: an ensemble cannot be its own member")
        unknown = [m for m in spec if m not in registry.available()]
        if unknown:
            raise ModelInputError(
                f"ensemble: unknown member(s) {', '.join(unknown)}; available: {', '.join(registry.available())}"
            )
        super().__init__(members=spec, **params)
        self.member_specs = spec
        self.min_obs = min(registry.get(m).traits.min_obs for m in spec)  # type: ignore[misc]

    def fit_reusing(
        self,
        y: pd.Series,
        X: pd.DataFrame | None,
        fitted: Mapping[str, tuple[Mapping[str, Any], Forecaster]],
        failed: Mapping[str, tuple[Mapping[str, Any], str]] | None = None,
        *,
        signed: bool = False,
    ) -> Ensemble:
        """Fit, adopting members already fitted on the SAME y and X with the same params
        (``fitted``: name -> (params, fitted model); ``failed``: name -> (params, error)) instead
        of fitting them again: the engine fits every standalone model first, so the ensemble
        costs only the members that are not enabled on their own."""
        self._adopt = {
            m: model
            for m, (params, model) in fitted.items()
            if m in self.member_specs and dict(params) == self.member_specs[m]
        }
        self._known_failures = {
            m: err
            for m, (params, err) in (failed or {}).items()
            if m in self.member_specs and dict(params) == self.member_specs[m]
        }
        try:
            return self.fit(y, X, signed=signed)
        finally:
            self._adopt, self._known_failures = {}, {}

    def _fit(self, y: pd.Series, X: pd.DataFrame | None) -> None:
        self.members_: dict[str, Forecaster] = {}
        self.failed_: dict[str, str] = {}
        adopt = getattr(self, "_adopt", {})
        known_failures = getattr(self, "_known_failures", {})
        for member, member_params in self.member_specs.items():
            if member in adopt:
                self.members_[member] = adopt[member]
                continue
            if member in known_failures:
                self.failed_[member] = known_failures[member]
                continue
            try:
                model = registry.create(member, member_params)
                self.members_[member] = model.fit(y, self._member_exog(model, X), signed=self.signed_)
            except Exception as exc:  # recorded and left out; the rest carry on
                self.failed_[member] = f"{type(exc).__name__}: {exc}"
        if not self.members_:
            raise EnsembleFitError(
                "ensemble: every member failed to fit: " + "; ".join(f"{m}: {e}" for m, e in self.failed_.items())
            )

    def sign_notes(self) -> list[str]:
        """The members' notes on a signed series, and the members that stepped aside."""
        notes = [note for m in self.members_.values() for note in m.sign_notes()]
        aside = [m for m, err in self.failed_.items() if "steps aside on a signed series" in err]
        return notes + ([f"without {', '.join(aside)} (needs positive values)"] if aside else [])

    def describe(self) -> dict[str, Any]:
        return {
            "members": list(self.members_),
            "failed": dict(self.failed_),
            "member_descriptions": {k: m.describe() for k, m in self.members_.items()},
        }
