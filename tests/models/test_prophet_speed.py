"""Prophet's point values computed without ``Prophet.predict`` (decision 0185) are Prophet's own,
to the bit, and so are the forecasts, bounds and paths built on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.families.prophet_model import ProphetModel

DATA = Path(__file__).resolve().parents[2] / "data" / "exports_monthly.csv"


def real_series(unique_id: str) -> pd.Series:
    frame = pd.read_csv(DATA, usecols=["unique_id", "ds", "y"], parse_dates=["ds"])
    y = frame[frame["unique_id"] == unique_id].set_index("ds")["y"].astype(float).asfreq("MS")
    return y.iloc[-84:]


def working_days(index: pd.DatetimeIndex) -> pd.DataFrame:
    nxt = index + pd.offsets.MonthBegin(1)
    days = np.busday_count(index.values.astype("datetime64[D]"), nxt.values.astype("datetime64[D]"))
    return pd.DataFrame({"working_days": days.astype(float)}, index=index)


CASES = {
    "total, multiplicative, working days": ("total", {"working_days": True}, True),
    "china, additive, no regressor": ("destination:china", {"seasonality_mode": "additive"}, False),
}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def case(request):
    uid, params, exog = CASES[request.param]
    y = real_series(uid)
    months = pd.date_range(y.index[0], periods=len(y) + 12, freq="MS")
    X = working_days(months) if exog else None
    model = ProphetModel(n_samples=300, calibrate=False, **params).fit(y, None if X is None else X.loc[y.index])
    return model, X


def test_point_components_equal_prophets_predict_to_the_bit(case):
    model, X = case
    for index in (X.index[-12:] if X is not None else None, pd.DatetimeIndex(model.model_.history["ds"])):
        index = pd.date_range(model.last_ds_, periods=13, freq="MS")[1:] if index is None else index
        frame = model._frame(index, None if X is None else X.loc[index], "predict")  # forecast months, fit months
        fast, reference = model._point_components(frame), model._predicted_components(frame)
        assert set(fast) == set(reference)
        for column, values in reference.items():
            np.testing.assert_array_equal(fast[column], values, err_msg=column)
            assert fast[column].tobytes() == values.tobytes()


def test_forecast_bounds_and_paths_equal_those_through_prophets_predict(case, monkeypatch):
    model, X = case
    future_X = None if X is None else X.iloc[-12:]
    fast = (model.predict(12, future_X), model.sample_paths(12, 200, 7, future_X))
    slow = ProphetModel.__new__(ProphetModel)
    slow.__dict__.update({k: v for k, v in model.__dict__.items() if k not in ("_predict_cache", "_point_cache")})
    monkeypatch.setattr(
        ProphetModel, "_point_components", lambda self, future, prepared=None: self._predicted_components(future)
    )
    reference = (slow.predict(12, future_X), slow.sample_paths(12, 200, 7, future_X))
    pd.testing.assert_frame_equal(fast[0], reference[0], check_exact=True)
    assert fast[1].tobytes() == reference[1].tobytes()
    assert np.ptp(fast[1][:, -1]) > 0  # draws, not one line


def test_fits_equal_plain_prophets_to_the_bit_and_pickle(case):
    """MonthlyProphet (component matrix built once per layout) fits Prophet's own parameters; a
    fitted model pickles and gives the same forecast after loading."""
    import pickle

    from prophet import Prophet

    model, X = case
    fitted = model.model_
    history = fitted.history[["ds", "y"] + list(fitted.extra_regressors)].copy()
    for name, props in fitted.extra_regressors.items():  # back to the values the fit was given
        history[name] = history[name] * props["std"] + props["mu"]
    twins = []
    for cls in (Prophet, type(fitted)):  # the second fit of the layout: the memoised matrix
        twin = cls(
            yearly_seasonality=fitted.seasonalities["yearly"]["fourier_order"],
            weekly_seasonality=False,
            daily_seasonality=False,
            seasonality_mode=fitted.seasonality_mode,
            changepoint_prior_scale=fitted.changepoint_prior_scale,
            uncertainty_samples=fitted.uncertainty_samples,
        )
        for name, props in fitted.extra_regressors.items():
            twin.add_regressor(name, mode=props["mode"])
        twins.append(twin.fit(history[["ds", "y"] + list(fitted.extra_regressors)]))
    plain, memoised = twins
    assert type(fitted).__name__ == "MonthlyProphet" and type(plain) is Prophet
    pd.testing.assert_frame_equal(memoised.train_component_cols, plain.train_component_cols, check_exact=True)
    assert memoised.component_modes == plain.component_modes
    for name, values in plain.params.items():
        assert memoised.params[name].tobytes() == values.tobytes(), name
        assert fitted.params[name].tobytes() == values.tobytes(), name
    future_X = None if X is None else X.iloc[-12:]
    loaded = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(loaded.predict(12, future_X), model.predict(12, future_X), check_exact=True)


def _fit_counting(monkeypatch) -> list[int]:
    """Patch cmdstan's optimisation to count its calls (T of each)."""
    from prophet.models import CmdStanPyBackend

    calls: list[int] = []
    optimise = CmdStanPyBackend.fit

    def counted(self, stan_init, stan_data, **kwargs):
        calls.append(int(stan_data["T"]))
        return optimise(self, stan_init, stan_data, **kwargs)

    monkeypatch.setattr(CmdStanPyBackend, "fit", counted)
    return calls


def test_the_calibration_refit_reads_the_optimum_of_the_fit_12_months_earlier(tmp_path, monkeypatch):
    """The fit at the cutoff 12 months later refits without its last 12 months to calibrate its
    intervals: the same Stan optimisation as the earlier fit's own, read from the fit cache. The
    forecasts are those of fits without the cache, to the bit."""
    from models.core import fitcache

    y = real_series("total")
    early, late = y.iloc[:-12], y
    uncached = [ProphetModel(seed=3).fit(s).predict(12) for s in (early, late)]
    calls = _fit_counting(monkeypatch)
    cached = [
        fitcache.fitted(str(tmp_path), ProphetModel(seed=3), s, None, lambda m, s=s: m.fit(s)).predict(12)
        for s in (early, late)
    ]
    # the early fit: its own and its calibration's; the late fit: its own only (its calibration's is the early fit's)
    assert calls == [len(early), len(early) - 12, len(late)]
    for got, want in zip(cached, uncached):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert fitcache.shared("no fit in progress", 1, lambda: "computed") == "computed"


def test_a_fitted_prophet_keeps_no_cmdstan_result(case):
    model, _ = case
    assert model.model_.stan_fit is None and model.model_.stan_backend.stan_fit is None
    assert type(model.model_.stan_backend).__name__ == "CmdStanPyBackend"  # the shared-optimum wrapper is gone
