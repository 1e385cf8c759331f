"""track_at's flash rows selected on arrays (decision 0185) are the rows of the frame filter and
drop_duplicates it replaced, in the same order, on the embedded flash."""

from __future__ import annotations

import pandas as pd

from features.calendar import flash_working_days
from features.readers import read_embedded, read_indicators
from models.applications.inyear import InyearSettings, information_dates, series_inputs, with_nowcasts


def reference_flash(inputs, as_of, last, end, months):
    flash = inputs.flash[
        (inputs.flash["as_of"] <= as_of)
        & (inputs.flash["ds"] > last)
        & (inputs.flash["ds"] <= end)
        & inputs.flash["ds"].isin(months)
    ]
    flash = flash.drop_duplicates("ds", keep="last")
    return [(r.ds, r.information, r.nowcast, r.lo_80, r.hi_80) for r in flash.itertuples(index=False)]


def test_latest_flash_equals_the_frame_filter_at_every_information_date():
    frame, indicators = read_embedded(), read_indicators()
    months = indicators.loc[indicators["indicator"].str.startswith("customs_"), "ds"]
    settings = InyearSettings(nowcast_model="seasonal_naive")
    inputs = [
        with_nowcasts(i, settings)
        for i in series_inputs(frame, indicators, flash_working_days(months.min(), months.max()))
    ]
    checked = conditioned = 0
    for series in inputs:
        for year in range(2017, 2026):
            for as_of, _ in information_dates(series, year):
                public = series.public_months(as_of)
                last, end = public[-1], pd.Timestamp(f"{year}-12-01")
                index = pd.date_range(last + pd.offsets.MonthBegin(1), periods=24 - last.month, freq="MS")
                fast = series.latest_flash(as_of, last, end, index)
                assert fast == reference_flash(series, as_of, last, end, index), (series.unique_id, as_of)
                # the same values (track_at takes float() of each; == on floats is exact)
                checked += 1
                conditioned += len(fast) > 1
    assert len(inputs) == 2 and checked > 400 and conditioned > 50  # dates with two flash months (d20 of m-1, d10 of m)
