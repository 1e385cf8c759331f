"""Median ensemble of registered models.

Param ``members``: a list of model names (each built with its defaults) or a mapping
name -> params. Every member is fitted through the registry on the same series and exogenous
frame. Forecast and each bound are the median across the members that fitted (a median of
quantiles is not the quantile of a combined distribution, but it is robust to one wild
member and keeps lo_95 <= lo_80 <= forecast <= hi_80 <= hi_95). Sample paths: each member
draws with its own seed derived from the caller's, the draws of each member are ranked by their
total over the horizon, and the k-th path is the median of the members' k-th paths (so annual
totals keep every member's month-to-month correlation AND the members' spread, as the bounds do).

``reduce`` (class attribute, the median here) is how forecast, bounds and ranked paths are
combined; ``models.families.cycle.CycleBlend`` takes the mean.

A member that fails to fit is left out and recorded (``describe()['failed']``); if every member
fails the ensemble raises. ``min_obs`` is the smallest member's: a member needing more
observations than the series has is one of the failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from models.core import registry
from models.core.base import FORECAST_COLUMNS, Forecaster, ModelInputError
from models.core.registry import register


class EnsembleFitError(RuntimeError):
    """No member of the ensemble could be fitted."""


@register
class Ensemble(Forecaster):
    """Median of the members' forecasts, bounds and paths."""

    name = "ensemble"
    uses_exog = True
    #: how the members' forecasts, bounds and rank-paired paths are reduced (a subclass may take the mean)
    reduce = staticmethod(np.median)

    def __init__(
        self,
        members: list[str] | Mapping[str, Mapping[str, Any] | None] = ("arima", "prophet", "ets", "theta"),
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
        self.min_obs = min(registry.get(m).min_obs for m in spec)

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
                self.members_[member] = registry.create(member, member_params).fit(y, X, signed=self.signed_)
            except Exception as exc:  # recorded and left out; the rest carry on
                self.failed_[member] = f"{type(exc).__name__}: {exc}"
        if not self.members_:
            raise EnsembleFitError(
                "ensemble: every member failed to fit: " + "; ".join(f"{m}: {e}" for m, e in self.failed_.items())
            )

    def _predict(self, h: int, X_future: pd.DataFrame | None) -> dict[str, np.ndarray]:
        frames = [m.predict(h, X_future) for m in self.members_.values()]
        return {c: self.reduce(np.stack([f[c].to_numpy() for f in frames]), axis=0) for c in FORECAST_COLUMNS}

    def _sample_paths(
        self, h: int, n_paths: int, rng: np.random.Generator, X_future: pd.DataFrame | None
    ) -> np.ndarray:
        seeds = rng.integers(0, 2**32 - 1, size=len(self.members_))
        paths = [m.sample_paths(h, n_paths, int(s), X_future) for m, s in zip(self.members_.values(), seeds)]
        # members' draws are independent: the median of one draw of each is far less spread than
        # any member (annual 80% width 15% of the total against the members' 28-36%, 2013-2025).
        # Pair them by rank of their total over the horizon instead (the k-th smallest of each),
        # so the median path's total is about the median of the members' quantiles, as the
        # monthly bounds are the median of the members' bounds.
        ranked = np.stack([p[np.argsort(p.sum(axis=1), kind="stable")] for p in paths])
        return self.reduce(ranked, axis=0)[rng.permutation(n_paths)]

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
