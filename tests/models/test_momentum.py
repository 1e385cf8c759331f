"""The chip-momentum models (models/families/momentum.py) and their place among the leading models
(models/families/leading_extras.py LeadingExtras, ``reads='market'``): the reference's regressions, the forecast's
arithmetic, and the information date (a market value public after it changes nothing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.regression.linear_model import OLS

from features.indicators import available_from
from flows import jobs
from flows.settings import load_settings
from models.core import registry
from models.core.base import ModelInputError
from models.families.momentum import (
    COLUMN_PREFIX,
    MARKET_INDICATORS,
    MomentumRegression,
    feature_names,
    growth,
    market_features,
)

WSTS = "wsts_month:billings_worldwide"
OWN = pd.date_range("2013-01-01", "2021-12-01", freq="MS")


def _series(start: str, end: str, seed: int, scale: float = 1.0) -> pd.Series:
    months = pd.date_range(start, end, freq="MS")
    t = np.arange(len(months))
    rng = np.random.default_rng(seed)
    return pd.Series(
        scale * np.exp(0.005 * t + 0.3 * np.sin(2 * np.pi * (t + 3 * seed) / 48) + rng.normal(0, 0.04, len(t))),
        index=months,
    )


def _table() -> pd.DataFrame:
    rows = []

    def add(name, values, when):
        rows.append(
            pd.DataFrame(
                {
                    "indicator": name,
                    "ds": values.index,
                    "value": values.to_numpy(),
                    "unit": "USD",
                    "available_from": [pd.Timestamp(when(m)) for m in values.index],
                    "source": "t",
                }
            )
        )

    add(
        WSTS,
        _series("1995-01-01", "2021-12-01", 1, 10e9),
        lambda m: available_from("month", f"{m:%Y-%m}", release="wsts"),
    )
    for i, name in enumerate(MARKET_INDICATORS):
        release, cut = name.split(":")[0].split("_")
        add(
            name,
            _series("1999-01-01", "2021-12-01", 2 + i, 100.0),
            lambda m, c=cut, r=release: available_from(c, f"{m:%Y-%m}", release=r),
        )
    return pd.concat(rows, ignore_index=True)


def _settings(tmp_path: Path, names: list[str]):
    config = {
        "models": {"enabled": ["seasonal_naive"], "leading": {"item:semis": names}, "n_paths": 50},
        "backtest": {"combinations": False},
        "runtime": {"n_jobs": 1, "seed": 0},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_settings(path)


def test_the_regressions_are_ols_of_the_growth_k_months_ahead():
    table = _table()
    ref = table[table.indicator == WSTS].set_index("ds")["value"]
    feats = market_features({m: table[table.indicator == m].set_index("ds")["value"] for m in MARKET_INDICATORS})
    got = MomentumRegression.estimate(ref, feats, horizon=15, min_pairs=36)
    g = growth(ref)
    # horizon 15: months from 2000-01 (the first 12-month change of the markets) whose growth 15
    # months later is known (through 2021-12): 2000-01 .. 2020-09
    assert got.n_pairs[14] == 249 and got.n_pairs[0] == 263 and got.features == tuple(feature_names())
    design = pd.concat([g.rename("g"), feats], axis=1).dropna().loc[:"2020-09-01"]
    target = g.shift(-15, freq="MS").reindex(design.index)
    fit = OLS(target.to_numpy(), np.column_stack([np.ones(len(design)), design.to_numpy()])).fit()
    np.testing.assert_allclose(got.coef[14], fit.params, rtol=1e-9, atol=1e-12)
    assert got.sigma[14] == pytest.approx(np.sqrt(fit.mse_resid), rel=1e-9)
    with pytest.raises(
        ModelInputError,
        match=r"chip momentum: 249 months of the reference with every variable "
        r"known and its growth 15 months later public; needs 250",
    ):
        MomentumRegression.estimate(ref, feats, horizon=15, min_pairs=250)


def test_the_forecast_adds_the_regression_growth_to_last_years_months():
    t = np.arange(96)
    y = pd.Series(
        8e9 * np.exp(0.004 * t + 0.1 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(9).normal(0, 0.01, 96)),
        index=pd.date_range("2013-01-01", periods=96, freq="MS"),
    )
    X = pd.DataFrame(0.1, index=pd.date_range("2013-01-01", "2022-12-01", freq="MS"), columns=feature_names())
    c = 0.05  # every horizon's growth: 5.1% (log 0.05), whatever the market says
    params = {
        "coef": [[c, 0.0] + [0.0] * 6 for _ in range(15)],
        "sigma_ref": [0.02 * (k + 1) for k in range(15)],
        "features": feature_names(),
    }
    model = registry.create("chip_momentum", params).fit(y, X)
    g = growth(y)
    resid = g.shift(-1, freq="MS").reindex(g.index).dropna() - c
    scale = np.sqrt(np.mean(resid.to_numpy() ** 2)) / 0.02
    assert model.scale_ == pytest.approx(scale, rel=1e-9)
    fc = model.predict(14, X)
    s1 = scale * 0.02  # month 1: last January plus the growth, with its s.d.
    assert fc["forecast"].iloc[0] == pytest.approx(y.iloc[-12] * np.exp(c + s1**2 / 2), rel=1e-9)
    s13 = scale * (0.02 * 13 + 0.02 * 1)  # month 13 adds two growths, one common shock
    assert fc["forecast"].iloc[12] == pytest.approx(y.iloc[-12] * np.exp(2 * c + s13**2 / 2), rel=1e-9)
    with pytest.raises(ModelInputError, match="chip_momentum: horizon 16 beyond the 15 months its regressions cover"):
        model.predict(16, X)
    with pytest.raises(
        ModelInputError, match="chip_momentum: its regressions come from 'wsts_month:billings_worldwide'"
    ):
        registry.create("chip_momentum", {}).fit(y, X)


def test_extras_hand_in_the_regressions_and_market_columns_public_on_the_information_date(tmp_path):
    table = _table()
    extras = jobs.leading_extras(_settings(tmp_path, ["chip_momentum", "chip_momentum_blend"]), table)
    cutoff = pd.Timestamp("2020-06-01")
    out = extras("item:semis", cutoff, OWN)
    assert [m.name for m in out.models] == ["chip_momentum", "chip_momentum_blend"] and out.skipped == ()
    info = pd.Timestamp("2020-07-16")
    public = table[table.available_from <= info]
    ref = public[public.indicator == WSTS].set_index("ds")["value"]
    assert ref.index.max() == pd.Timestamp("2020-05-01")  # WSTS of 2020-06 is public on 2020-08-15
    feats = market_features({m: public[public.indicator == m].set_index("ds")["value"] for m in MARKET_INDICATORS})
    expected = MomentumRegression.estimate(ref, feats)
    assert out.models[0].params == expected.params()
    assert set(expected.params()) <= set(out.models[1].params) and "phi" in out.models[1].params
    columns = out.exog[feature_names()]
    assert columns.loc[cutoff].notna().all() and columns.loc[cutoff + pd.offsets.MonthBegin(1) :].isna().all().all()
    # leakage: every value public after the information date, made absurd, changes nothing
    moved = table.copy()
    later = moved.available_from > info
    moved.loc[later, "value"] *= 50
    again = jobs.leading_extras(_settings(tmp_path, ["chip_momentum", "chip_momentum_blend"]), moved)(
        "item:semis", cutoff, OWN
    )
    assert again.models == out.models
    pd.testing.assert_frame_equal(again.exog, out.exog)
    # the DRAM index of the cutoff month moved to after the information date: not used, the model is skipped
    late = table.copy()
    dram = (late.indicator == "bok_month:dram_export_price_usd") & (late.ds == cutoff)
    late.loc[dram, "available_from"] = pd.Timestamp("2020-07-17")
    skipped = jobs.leading_extras(_settings(tmp_path, ["chip_momentum"]), late)("item:semis", cutoff, OWN)
    assert skipped.models == () and skipped.skipped == (
        (
            "chip_momentum",
            f"market variable(s) {COLUMN_PREFIX}bok_month:dram_export_price_usd:d12, "
            f"{COLUMN_PREFIX}bok_month:dram_export_price_usd:d6 of cutoff month 2020-06 not known on the information "
            "date of chip_momentum",
        ),
    )


def test_a_short_reference_or_history_skips_the_model_with_the_reason(tmp_path):
    table = _table()
    extras = jobs.leading_extras(_settings(tmp_path, ["chip_momentum"]), table)
    early = extras("item:semis", pd.Timestamp("2002-06-01"), OWN)
    assert early.models == () and early.skipped[0][1].startswith(
        "reference 'wsts_month:billings_worldwide' as public on 2002-07-16: chip momentum: "
    )
    short = extras("item:semis", pd.Timestamp("2014-12-01"), OWN)
    assert short.skipped == (
        (
            "chip_momentum",
            "24 months of history by cutoff 2014-12; chip_momentum needs 25 "
            "(a year of growth and 12 one-month-ahead residuals)",
        ),
    )
