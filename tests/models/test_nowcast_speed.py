"""The nowcast's month loop on lookups built once (decision 0185) gives the rows of the loop
that filtered the frames for every month and cut, to the bit, on the embedded flash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.calendar import flash_working_days
from features.readers import read_embedded, read_indicators
from models.applications import nowcast
from models.applications.nowcast import NowcastSettings, actual_published, backtest, bridge_fit, flash_frame


def reference_model_errors(y, preds, pub, h, targets):
    """The loop's log errors as they were computed before 0185 (pandas lookups per month)."""
    vals = {s: np.log(y[s]) - np.log(preds[(s, h)]) for s in targets if (s, h) in preds and s in pub.index}
    return pd.Series(vals, dtype=float)


def reference_flash_row(y, flash, pub, preds, settings, unique_id, t, info, actual):
    """``nowcast._flash_row`` before 0185: the frames filtered for every month and cut."""
    now = flash[(flash["ds"] == t) & (flash["information"] == info)]
    if now.empty:
        return None
    now = now.iloc[0]
    as_of = pd.Timestamp(now["available_from"])
    public_months = pub.index[(pub <= as_of) & (pub.index < t)]
    if public_months.empty:
        return None
    train = flash[(flash["information"] == info) & (flash["available_from"] <= as_of) & flash["ds"].isin(public_months)]
    if len(train) < settings.min_train:
        return None
    log_days = np.log(train["wd_month"].to_numpy(float) / train["wd_part"].to_numpy(float))
    log_ratio = np.log(y[train["ds"]].to_numpy(float) / train["value"].to_numpy(float))
    coef, loo = bridge_fit(log_ratio, log_days)
    x_t = np.log(float(now["wd_month"]) / float(now["wd_part"]))
    bridge = float(now["value"]) * float(np.exp(coef[0] + coef[1] * x_t))
    h = (t.year - public_months[-1].year) * 12 + t.month - public_months[-1].month
    e_bridge = pd.Series(loo, index=pd.DatetimeIndex(train["ds"]))
    e_model = (
        reference_model_errors(y, preds, pub, h, pd.DatetimeIndex(train["ds"]))
        if (t, h) in preds
        else pd.Series(dtype=float)
    )
    common = e_bridge.index.intersection(e_model.index)
    if len(common) >= settings.min_train:
        eb, em = e_bridge[common].to_numpy(), e_model[common].to_numpy()
        wb, wm = 1.0 / max(np.mean(eb**2), 1e-18), 1.0 / max(np.mean(em**2), 1e-18)
        wb, wm = wb / (wb + wm), wm / (wb + wm)
        center = float(np.exp(wb * np.log(bridge) + wm * np.log(preds[(t, h)])))
        errors = wb * eb + wm * em
    else:
        center, errors = bridge, loo
    lo, hi = nowcast._interval(center, errors)
    return nowcast._row(unique_id, t, info, as_of, center, lo, hi, actual)


@pytest.mark.parametrize("subject", ["total", "group_semiconductors"])
def test_month_loop_rows_equal_the_per_month_filters_to_the_bit(subject, monkeypatch):
    frame, indicators = read_embedded(), read_indicators()
    uid = "total" if subject == "total" else "item:semiconductors_ministry"
    months = indicators.loc[indicators["indicator"].str.startswith("customs_"), "ds"]
    flash, published = flash_frame(indicators, flash_working_days(months.min(), months.max()), subject)
    y = frame[frame["unique_id"] == uid].set_index("ds")["y"]
    settings = NowcastSettings(model="seasonal_naive")
    origins = y.index[y.index >= "2013-06-01"]  # the first flash month (2016-01) less model_history + 3 months
    preds = nowcast._model_forecasts(y.sort_index().astype(float), origins, settings, uid)
    monkeypatch.setattr(nowcast, "_model_forecasts", lambda *args: preds)
    fast = backtest(y, flash, published if subject == "total" else None, settings=settings, unique_id=uid)

    ys = y.sort_index().astype(float)
    fs = flash.sort_values(["ds", "information"], kind="stable").reset_index(drop=True)
    pub = actual_published(ys.index)
    if subject == "total":
        given = published.reindex(ys.index)
        pub = given.where(given.notna(), pub)
    pub = pub[ys.notna()]
    monkeypatch.setattr(nowcast, "_model_errors", lambda _known, h, t: reference_model_errors(ys, preds, pub, h, t))
    monkeypatch.setattr(
        nowcast, "_flash_row", lambda _known, _pub, *rest: reference_flash_row(ys, fs, pub, preds, *rest)
    )
    reference = backtest(y, flash, published if subject == "total" else None, settings=settings, unique_id=uid)
    assert len(fast) > 200 and set(fast["information"]) == {"none", "d10", "d20"}
    pd.testing.assert_frame_equal(fast, reference, check_exact=True)
