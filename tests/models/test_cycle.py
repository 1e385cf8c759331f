"""The cycle model (models/families/cycle.py): forecasts of hand-computable growth dynamics, the AIC
estimate recovers known dynamics, exact errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from models.core import registry
from models.core.base import ModelInputError
from models.families.cycle import GrowthAR, GrowthCycle, log_growth

Z80 = float(norm.ppf(0.9))


def series_from_growth(first_year: np.ndarray, growth: np.ndarray, start: str = "2015-01-01") -> pd.Series:
    """Monthly levels whose first 12 months are ``first_year`` and whose 12-month log growth is ``growth``."""
    logs = list(np.log(first_year))
    for g in growth:
        logs.append(logs[-12] + g)
    return pd.Series(np.exp(logs), index=pd.date_range(start, periods=len(logs), freq="MS"))


SEASON = np.array([100, 90, 110, 105, 100, 95, 120, 100, 98, 104, 108, 130], dtype=float)


def test_log_growth_is_the_twelve_month_log_difference():
    x = np.arange(1.0, 27.0)
    assert log_growth(x) == pytest.approx(np.log(x[12:]) - np.log(x[:-12]))
    assert len(log_growth(x[:12])) == 0


def test_order_zero_forecast_is_last_year_times_the_mean_growth_with_exact_bounds():
    # g_t = 0.05 + e_t, e_t = +0.02, -0.02 alternating: sigma = 0.02 exactly
    shocks = np.tile([0.02, -0.02], 12)
    y = series_from_growth(SEASON, 0.05 + shocks)
    model = registry.create("cycle", {"intercept": 0.05, "phi": []}).fit(y)
    assert model.sigma_ == pytest.approx(0.02)
    out = model.predict(24)
    last_year = np.log(y.to_numpy()[-12:])
    # months 1-12: log y = last year's log + 0.05, variance sigma^2; months 13-24: + 0.10, variance 2 sigma^2
    for k, (m, v) in enumerate([(last_year + 0.05, 0.02**2), (last_year + 0.10, 2 * 0.02**2)]):
        rows = out.iloc[12 * k : 12 * (k + 1)]
        assert rows["forecast"].to_numpy() == pytest.approx(np.exp(m + v / 2), rel=1e-12)
        assert rows["lo_80"].to_numpy() == pytest.approx(np.exp(m - Z80 * math.sqrt(v)), rel=1e-12)
        assert rows["hi_80"].to_numpy() == pytest.approx(np.exp(m + Z80 * math.sqrt(v)), rel=1e-12)


def test_ar1_growth_mean_recursion_and_variance_through_the_year_boundary():
    c, phi, sigma = 0.01, 0.6, 0.03
    g = np.empty(30)
    g[0] = 0.02
    shocks = np.tile([sigma, -sigma], 15)
    for t in range(1, 30):
        g[t] = c + phi * g[t - 1] + shocks[t]
    y = series_from_growth(SEASON, g)
    model = registry.create("cycle", {"intercept": c, "phi": [phi]}).fit(y)
    assert model.sigma_ == pytest.approx(sigma)  # residuals from the second growth month on
    assert model.n_residuals_ == 29
    out = model.predict(13)
    logs = np.log(y.to_numpy())
    g_hat = [g[-1]]
    for _ in range(13):
        g_hat.append(c + phi * g_hat[-1])
    g_hat = np.array(g_hat[1:])
    # month 2: log y_{T+2} = log y_{T-10} + g_{T+2}, variance sigma^2 (1 + phi^2)
    mu2, v2 = logs[-11] + g_hat[1], sigma**2 * (1 + phi**2)
    assert out["forecast"].iloc[1] == pytest.approx(math.exp(mu2 + v2 / 2), rel=1e-12)
    # month 13: log y_{T-11} + g_{T+1} + g_{T+13}; shock 1 enters twice: (1 + phi^12), shocks 2..13 by phi^(13-j)
    mu13 = logs[-12] + g_hat[0] + g_hat[12]
    v13 = sigma**2 * ((1 + phi**12) ** 2 + sum(phi ** (2 * j) for j in range(12)))
    assert out["hi_80"].iloc[12] == pytest.approx(math.exp(mu13 + Z80 * math.sqrt(v13)), rel=1e-12)
    assert out["forecast"].iloc[12] == pytest.approx(math.exp(mu13 + v13 / 2), rel=1e-12)


def test_sample_paths_agree_with_the_analytic_mean_and_quantiles():
    g = 0.04 + np.tile([0.05, -0.05, 0.0], 12)
    model = registry.create("cycle", {"intercept": 0.02, "phi": [0.5, 0.2]}).fit(series_from_growth(SEASON, g))
    out = model.predict(14)
    paths = model.sample_paths(14, 20000, seed=3)
    assert paths.mean(axis=0) == pytest.approx(out["forecast"].to_numpy(), rel=0.01)
    assert np.quantile(paths, 0.9, axis=0) == pytest.approx(out["hi_80"].to_numpy(), rel=0.01)
    assert (model.sample_paths(14, 100, seed=3) == model.sample_paths(14, 100, seed=3)).all()


def test_estimate_recovers_known_ar2_dynamics_and_its_order():
    rng = np.random.default_rng(7)
    c, phi = 0.01, (0.9, -0.3)
    g = np.zeros(1200)
    for t in range(2, len(g)):
        g[t] = c + phi[0] * g[t - 1] + phi[1] * g[t - 2] + rng.normal(0, 0.05)
    y = series_from_growth(SEASON, g[200:])
    dyn = GrowthAR.estimate(y.to_numpy(), max_lag=6)
    # AIC may keep a small extra lag (it is not a consistent order criterion): the two true
    # coefficients are recovered, any extra one is near zero
    assert 2 <= dyn.order <= 4
    assert dyn.phi[:2] == pytest.approx(phi, abs=0.08)
    assert max((abs(v) for v in dyn.phi[2:]), default=0.0) < 0.08
    # the long-run growth c / (1 - sum phi) is the sample's mean growth (OLS with a constant)
    assert dyn.intercept / (1 - sum(dyn.phi)) == pytest.approx(g[200:].mean(), abs=0.002)
    assert dyn.n_growth == 1000
    # without given dynamics the model estimates them on its own growth
    own = registry.create("cycle", {"max_lag": 6}).fit(y)
    assert own.describe()["dynamics_from"] == "own history" and own.describe()["order"] == dyn.order


def test_describe_reports_the_dynamics_and_their_long_run_growth():
    y = series_from_growth(SEASON, 0.05 + np.tile([0.02, -0.02], 12))
    described = registry.create("cycle_wsts", {"intercept": 0.02, "phi": [0.5]}).fit(y).describe()
    assert described["dynamics_from"] == "wsts_month:billings_worldwide"
    assert described["long_run_growth_pct"] == pytest.approx(100 * (math.exp(0.04) - 1), abs=1e-3)
    assert (described["order"], described["phi"]) == (1, [0.5])


def test_bad_input_errors_are_exact():
    with pytest.raises(
        ModelInputError, match=r"^cycle: give both intercept and phi \(the reference's dynamics\) or neither$"
    ):
        GrowthCycle(intercept=0.1)
    with pytest.raises(ModelInputError, match=r"^cycle: intercept and phi must be finite numbers; got 0.1, \[nan\]$"):
        GrowthCycle(intercept=0.1, phi=[float("nan")])
    y = series_from_growth(SEASON, 0.05 + np.tile([0.02, -0.02], 12))
    with pytest.raises(
        ModelInputError,
        match=r"^cycle: 36 months of history; dynamics of order 13 need 37 \(a year, "
        r"the lags and 12 residuals\)$",
    ):
        GrowthCycle(intercept=0.0, phi=[0.0] * 13).fit(y)
    with pytest.raises(
        ModelInputError, match=r"^cycle: the series must be positive \(the model works on log growth\)$"
    ):
        GrowthCycle(intercept=0.0, phi=[]).fit(y.where(y.index != y.index[5], 0.0))
    with pytest.raises(
        ModelInputError,
        match=r"^cycle steps aside on a signed series: it works on the 12-month log "
        r"growth of a positive series$",
    ):
        GrowthCycle(intercept=0.0, phi=[]).fit(y - y.iloc[5])
    with pytest.raises(ModelInputError, match=r"^cycle steps aside on a signed series"):
        GrowthCycle(intercept=0.0, phi=[]).fit(y, signed=True)  # declared signed: positive history or not
    with pytest.raises(ModelInputError, match=r"^growth AR: the reference has 48 months of 12-month growth; needs 60$"):
        GrowthAR.estimate(np.exp(np.linspace(0, 1, 60)))
    with pytest.raises(ModelInputError, match=r"^growth AR: the reference must be positive and finite in every month$"):
        GrowthAR.estimate(np.r_[np.ones(100), 0.0])


def test_a_gap_in_the_history_is_filled_for_the_growth_only():
    y = series_from_growth(SEASON, 0.05 + np.tile([0.02, -0.02], 12))
    holed = y.copy()
    holed.iloc[20] = np.nan
    model = registry.create("cycle", {"intercept": 0.05, "phi": []}).fit(holed)
    assert np.isfinite(model.predict(12).to_numpy()).all()
    assert model.predict(12)["forecast"].to_numpy() == pytest.approx(
        registry.create("cycle", {"intercept": 0.05, "phi": []}).fit(y).predict(12)["forecast"].to_numpy()
    )


def test_the_wsts_cycle_model_without_its_reference_dynamics_refuses_to_fit():
    y = series_from_growth(SEASON, 0.05 + np.tile([0.02, -0.02], 12))
    with pytest.raises(
        ModelInputError,
        match=r"^cycle_wsts: its dynamics come from 'wsts_month:billings_worldwide' as "
        r"public at the cutoff; run it under models.leading \(none were given\)$",
    ):
        registry.create("cycle_wsts").fit(y)


# ---------------------------------------------------------------- the blend (cycle_blend)
def _blend_series() -> pd.Series:
    rng = np.random.default_rng(11)
    g = 0.04 + 0.1 * np.sin(2 * np.pi * np.arange(48) / 40) + rng.normal(0, 0.02, 48)
    return series_from_growth(SEASON, g)


def test_the_blend_is_the_mean_of_its_three_members_fitted_alone():
    y = _blend_series()
    dynamics = {"intercept": 0.01, "phi": [0.7]}
    blend = registry.create("cycle_blend", dynamics).fit(y)
    members = [
        registry.create("cycle_wsts", dynamics).fit(y),
        registry.create("ets", {"damped_trend": True}).fit(y),
        registry.create("theta").fit(y),
    ]
    got = blend.predict(14)
    for column in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95"):  # quantile averaging: the bounds too
        expected = np.mean([m.predict(14)[column].to_numpy() for m in members], axis=0)
        assert got[column].to_numpy() == pytest.approx(expected, rel=1e-12)
    # the paths: each member draws with a seed from the blend's generator, the draws are paired by
    # rank of their total and averaged, so the k-th smallest blend total is exactly the mean of the
    # members' k-th smallest totals (not shrunk as independent draws would be)
    totals = blend.sample_paths(14, 2000, seed=3).sum(axis=1)
    seeds = np.random.default_rng(3).integers(0, 2**32 - 1, size=3)
    member_totals = [np.sort(m.sample_paths(14, 2000, seed=int(s)).sum(axis=1)) for m, s in zip(members, seeds)]
    assert np.sort(totals) == pytest.approx(np.mean(member_totals, axis=0), rel=1e-12)
    # rebuilt from its own params (as the MLflow model is), the same forecast
    assert registry.create("cycle_blend", blend.params).fit(y).predict(14)["forecast"].to_numpy() == pytest.approx(
        got["forecast"].to_numpy(), rel=1e-12
    )


def test_the_blend_refuses_without_dynamics_with_other_members_or_with_a_member_that_failed():
    y = _blend_series()
    with pytest.raises(
        ModelInputError,
        match=r"^cycle_blend: its cycle's dynamics come from 'wsts_month:billings_worldwide' "
        r"as public at the cutoff; run it under models.leading \(none were given\)$",
    ):
        registry.create("cycle_blend").fit(y)
    with pytest.raises(
        ModelInputError,
        match=r"^cycle_blend: its members are fixed \(cycle_wsts, ets, theta\); "
        r"got \{'ets': \{\}\}$",
    ):
        registry.create("cycle_blend", {"intercept": 0.01, "phi": [0.7], "members": {"ets": {}}})
    # 24 months: one too few for the cycle member (order 1 needs 12 + 1 + 12), enough for ETS and Theta
    with pytest.raises(
        ModelInputError,
        match=r"^cycle_blend: every member must fit; cycle_wsts: ModelInputError: "
        r"cycle_wsts: 24 months of history; dynamics of order 1 need 25 \(a year, the lags and 12 residuals\)$",
    ):
        registry.create("cycle_blend", {"intercept": 0.01, "phi": [0.7]}).fit(y.iloc[:24])
