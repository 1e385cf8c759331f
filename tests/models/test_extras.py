"""A series' own models at each cutoff (``models.core.engine.SeriesExtras``): run with the regressor
columns of THAT cutoff, skipped (with the reason) where the extras leave them out, scored like any
model, in the backtest and in the forecast.

Data: ``a`` and ``b``, y_t = t for Jan 2019 (1) .. Dec 2021 (36). Indicator x_t = 1000 + t, public
through the month after the cutoff (like the customs 10-day flash at a cutoff's information date).
``lead_toy`` forecasts the indicator: x of the month where it is known, else the last known x.
"""

import numpy as np
import pandas as pd
import pytest
from toys import ToyMean, ToyNaive, ToySeasonalNaive

from models.core.backtest import backtest
from models.core.base import Forecaster
from models.core.engine import EngineSettings, ModelSpec, SeriesExtras, forecast

COLUMN = "lead:x"
FIRST = pd.Timestamp("2019-01-01")


class ToyLead(Forecaster):
    name = "lead_toy"
    uses_exog = True

    def _fit(self, y, X):
        self.last_x_ = float(X[COLUMN].dropna().iloc[-1])

    def _predict(self, h, X_future):
        x = X_future[COLUMN].to_numpy(dtype=float)[:h]
        f = pd.Series(x).ffill().fillna(self.last_x_).to_numpy()
        return {"forecast": f, "lo_80": f - 1, "hi_80": f + 1, "lo_95": f - 2, "hi_95": f + 2}

    def _sample_paths(self, h, n_paths, rng, X_future):
        return np.tile(self._predict(h, X_future)["forecast"], (n_paths, 1))


TOYS = {cls.name: cls for cls in (ToyNaive, ToySeasonalNaive, ToyMean, ToyLead)}


def toy_factory(name, params):
    return TOYS[name](**params)


def _frame() -> pd.DataFrame:
    ds = pd.date_range(FIRST, periods=36, freq="MS")
    return pd.concat(
        [pd.DataFrame({"unique_id": uid, "ds": ds, "y": np.arange(1.0, 37.0)}) for uid in ("a", "b")], ignore_index=True
    )


class Extras:
    """``lead_toy`` for series ``a`` from cutoff 2021-10 on (earlier: skipped), nothing for ``b``;
    records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def __call__(self, uid: str, cutoff: pd.Timestamp, months: pd.DatetimeIndex) -> SeriesExtras:
        self.calls.append((uid, f"{cutoff:%Y-%m}", f"{months[0]:%Y-%m}", f"{months[-1]:%Y-%m}"))
        if uid != "a":
            return SeriesExtras()
        if cutoff < pd.Timestamp("2021-10-01"):
            return SeriesExtras(skipped=(("lead_toy", f"indicator x not public at {cutoff:%Y-%m}"),))
        t = np.array([(m.year - 2019) * 12 + m.month for m in months], dtype=float)
        x = np.where(months <= cutoff + pd.DateOffset(months=1), 1000.0 + t, np.nan)
        return SeriesExtras(models=(ModelSpec("lead_toy"),), exog=pd.DataFrame({COLUMN: x}, index=months))


SETTINGS = EngineSettings(models=(ModelSpec("naive"), ModelSpec("mean")), n_jobs=1, n_paths=10)


@pytest.fixture(scope="module")
def run():
    extras = Extras()
    out = backtest(_frame(), SETTINGS, horizon=2, windows=2, step=1, factory=toy_factory, extras=extras)
    return out, extras


def test_extras_are_asked_once_per_series_and_cutoff_with_the_window_months(run):
    _, extras = run
    assert sorted(extras.calls) == [
        ("a", "2021-09", "2019-01", "2021-11"),
        ("a", "2021-10", "2019-01", "2021-12"),
        ("b", "2021-09", "2019-01", "2021-11"),
        ("b", "2021-10", "2019-01", "2021-12"),
    ]


def test_the_extra_model_sees_the_columns_of_its_cutoff_and_is_scored(run):
    out, _ = run
    rows = out.forecasts[out.forecasts["model"] == "lead_toy"]
    assert set(zip(rows["unique_id"], rows["cutoff"].dt.strftime("%Y-%m"))) == {("a", "2021-10")}
    # Nov 2021 (t = 35) is public at cutoff 2021-10; Dec is not: the last known value is repeated
    assert rows["forecast"].tolist() == [1035.0, 1035.0]
    m = out.metrics.set_index(["unique_id", "model", "cutoff"])
    # actuals 35, 36; seasonal scale of y_t = t: 12
    assert m.loc[("a", "lead_toy", pd.Timestamp("2021-10-01")), "mase"] == pytest.approx((1000 + 999) / 2 / 12)
    assert ("b", "lead_toy") not in {(u, mo) for u, mo, _ in m.index}


def test_a_model_the_extras_leave_out_is_skipped_with_the_reason(run):
    out, _ = run
    row = out.fits[(out.fits["model"] == "lead_toy") & (out.fits["cutoff"] == pd.Timestamp("2021-09-01"))].iloc[0]
    assert (row["unique_id"], row["status"], row["reason"]) == ("a", "skipped", "indicator x not public at 2021-09")
    ok = out.fits[(out.fits["model"] == "lead_toy") & (out.fits["cutoff"] == pd.Timestamp("2021-10-01"))].iloc[0]
    assert (ok["status"], ok["model_used"]) == ("ok", "lead_toy")


def test_a_model_scored_on_fewer_windows_does_not_compete_for_champion(run):
    out, _ = run
    champion = out.champions.set_index("unique_id").loc["a"]
    # lead_toy has 1 window, naive and mean 2: only the models scored on the most windows compete
    assert champion["champion"] != "lead_toy"
    assert "lead_toy" in champion["mean_score"]


def test_the_forecast_asks_at_the_last_month_of_each_series():
    extras = Extras()
    out = forecast(_frame(), SETTINGS, horizon=2, factory=toy_factory, extras=extras)
    assert sorted(extras.calls) == [("a", "2021-12", "2019-01", "2022-02"), ("b", "2021-12", "2019-01", "2022-02")]
    lead = out.forecasts[out.forecasts["model"] == "lead_toy"]
    assert lead["unique_id"].unique().tolist() == ["a"]
    assert lead["forecast"].tolist() == [1037.0, 1037.0]  # Jan 2022 (t = 37) public, Feb not
