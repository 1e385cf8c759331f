"""ETS estimated other ways, against the project's (a script, not a test), decision 0190:

    .venv/bin/python benchmarks/ets_options.py   # statsforecast: pip install -c constraints.txt -e '.[bench]'

Every embedded series with no gap and no value <= 0 and at least 48 months, cut 12, 18, 24, 30 and
36 months before its end (when at least 36 months remain), forecast 12 months ahead on a unit scale
(as ``models.families.baselines.ETS`` fits). The models, all multiplicative error, additive damped
trend, multiplicative seasonality (what the project's ETS chooses on a positive series):

- ``statsmodels``: statsmodels' ``ETSModel``, every initial state estimated (the project's ETS);
- ``statsmodels-heuristic``: the same, its initial states from the heuristic (4 parameters
  estimated instead of 18);
- ``statsforecast-MAdM``: statsforecast's ``ets_f`` with the same model (its own optimiser);
- ``statsforecast-auto``: statsforecast's ``ets_f`` choosing the model (AutoETS).

Printed per model: the mean and median MASE over the windows (scaled by the in-sample seasonal naive
errors) and the seconds of fitting and forecasting, in this process with one BLAS thread.
statsforecast's first call compiles with numba: a warm-up fit comes first and is not timed.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.readers import read_embedded  # noqa: E402
from models.core.metrics import mase  # noqa: E402
from models.families.baselines import SEASON  # noqa: E402

BACKS = (12, 18, 24, 30, 36)


def _statsmodels(initialization: str) -> Callable[[np.ndarray], np.ndarray]:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    def forecast(y: np.ndarray) -> np.ndarray:
        model = ETSModel(
            y,
            error="mul",
            trend="add",
            damped_trend=True,
            seasonal="mul",
            seasonal_periods=SEASON,
            initialization_method=initialization,
        )
        return np.asarray(model.fit(disp=False, maxiter=200).forecast(SEASON))

    return forecast


def _statsforecast(model: str, damped: bool | None) -> Callable[[np.ndarray], np.ndarray]:
    from statsforecast.ets import ets_f, forecast_ets

    def forecast(y: np.ndarray) -> np.ndarray:
        return np.asarray(forecast_ets(ets_f(y, SEASON, model=model, damped=damped), SEASON)["mean"])

    return forecast


def windows() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(series, history, the next 12 months) of every window."""
    frame = read_embedded(ROOT / "data")
    out = []
    for unique_id, rows in frame.groupby("unique_id"):
        y = rows.set_index("ds")["y"].asfreq("MS")
        if y.isna().any() or (y <= 0).any() or len(y) < 48:
            continue
        for back in BACKS:
            history, future = y.iloc[:-back].to_numpy(float), y.iloc[len(y) - back :][:SEASON].to_numpy(float)
            if len(history) >= 36:
                out.append((str(unique_id), history, future))
    return out


def main() -> None:
    warnings.simplefilter("ignore")
    models = {
        "statsmodels": _statsmodels("estimated"),
        "statsmodels-heuristic": _statsmodels("heuristic"),
    }
    try:
        models["statsforecast-MAdM"] = _statsforecast("MAM", True)
        models["statsforecast-auto"] = _statsforecast("ZZZ", None)
        models["statsforecast-MAdM"](np.linspace(1.0, 2.0, 48))  # numba compiles: not timed
        models["statsforecast-auto"](np.linspace(1.0, 2.0, 48))
    except ImportError:  # the closures import it at their first call
        models = {name: f for name, f in models.items() if not name.startswith("statsforecast")}
        print("statsforecast is not installed: its rows are skipped")
    cases = windows()
    print(f"{len(cases)} windows (series with no gap and no value <= 0, cut {BACKS} months before the end)")
    with threadpool_limits(limits=1):
        for name, forecast in models.items():
            scores, start = [], time.perf_counter()
            for _, history, future in cases:
                scale = np.abs(history).mean()
                scores.append(mase(future, forecast(history / scale) * scale, history, m=SEASON))
            seconds = time.perf_counter() - start
            print(
                f"{name:<22} MASE mean {np.mean(scores):.4f}, median {np.median(scores):.4f}; {seconds:6.2f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
