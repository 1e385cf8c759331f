"""Median ensemble: exact medians, failures recorded, all-fail raises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.core import registry
from models.core.base import ModelInputError
from models.selection.ensemble import EnsembleFitError

MEMBERS = {"naive": {}, "seasonal_naive": {}, "ets": {"n_sim": 200}}


def series(n: int = 48) -> pd.Series:
    rng = np.random.default_rng(4)
    t = np.arange(n)
    values = 1e9 * (1 + 0.01 * t) * (1 + 0.1 * np.sin(2 * np.pi * t / 12)) * np.exp(rng.normal(0, 0.03, n))
    return pd.Series(values, index=pd.date_range("2018-01-01", periods=n, freq="MS", name="ds"))


def test_forecast_bounds_and_paths_are_member_medians():
    y = series()
    ens = registry.create("ensemble", {"members": MEMBERS}).fit(y)
    members = [registry.create(m, p).fit(y) for m, p in MEMBERS.items()]
    fc = ens.predict(6)
    for col in fc.columns:
        expected = np.median(np.stack([m.predict(6)[col].to_numpy() for m in members]), axis=0)
        np.testing.assert_allclose(fc[col], expected)
    # paths: each member's draws ranked by their total over the horizon, the k-th path the median
    # of the members' k-th paths, then shuffled (models/selection/ensemble.py)
    rng = np.random.default_rng(8)
    seeds = rng.integers(0, 2**32 - 1, size=3)
    draws = [m.sample_paths(6, 30, int(s)) for m, s in zip(members, seeds)]
    ranked = np.stack([d[np.argsort(d.sum(axis=1), kind="stable")] for d in draws])
    expected_paths = np.median(ranked, axis=0)[rng.permutation(30)]
    np.testing.assert_allclose(ens.sample_paths(6, 30, seed=8), expected_paths)


def test_annual_spread_of_the_paths_is_the_members_median_spread():
    """Independent draws' medians shrank the ensemble's annual range to about half its members'
    (80% width 15% of the total against 28-36%, institutional comparison 2013-2025); paired by
    rank, the 10-90% range of the path totals is the median of the members' ranges within 15%
    (here 3.60 bn against naive 4.83, seasonal naive 4.02, ETS 0.68); the old pairing of
    independent draws gave 2.11 bn."""
    y = series()
    ens = registry.create("ensemble", {"members": MEMBERS}).fit(y)
    members = [registry.create(m, p).fit(y) for m, p in MEMBERS.items()]

    def width(paths):
        totals = paths.sum(axis=1)
        return float(np.quantile(totals, 0.9) - np.quantile(totals, 0.1))

    member_widths = [width(m.sample_paths(12, 2000, seed=s)) for s, m in enumerate(members)]
    assert width(ens.sample_paths(12, 2000, seed=3)) == pytest.approx(np.median(member_widths), rel=0.15)
    independent = np.median(np.stack([m.sample_paths(12, 2000, seed=10 + s) for s, m in enumerate(members)]), axis=0)
    assert width(independent) < 0.6 * np.median(member_widths)


def test_failed_member_is_recorded_and_the_rest_carry_on():
    ens = registry.create("ensemble", {"members": ["naive", "arima"]})
    assert ens.min_obs == 2
    ens.fit(series(20))
    info = ens.describe()
    assert info["members"] == ["naive"]
    assert info["failed"] == {"arima": "ModelInputError: arima needs at least 24 observed months; got 20"}
    np.testing.assert_allclose(ens.predict(3).forecast, registry.create("naive").fit(series(20)).predict(3).forecast)


def test_all_members_failing_raises():
    flat = pd.Series(5e9, index=pd.date_range("2015-01-01", periods=48, freq="MS"))  # no ARIMA can be fitted
    ens = registry.create("ensemble", {"members": {"arima": {"max_candidates": 4}}})
    with pytest.raises(
        EnsembleFitError, match=r"^ensemble: every member failed to fit: arima: ArimaFitError: arima: every starting"
    ):
        ens.fit(flat)


def test_bad_members_are_refused():
    with pytest.raises(ModelInputError, match=r"^ensemble: unknown member\(s\) lstm; available: "):
        registry.create("ensemble", {"members": ["naive", "lstm"]})
    with pytest.raises(ModelInputError, match=r"^ensemble: an ensemble cannot be its own member$"):
        registry.create("ensemble", {"members": ["ensemble"]})
    with pytest.raises(ModelInputError, match=r"^ensemble: members is empty$"):
        registry.create("ensemble", {"members": []})
