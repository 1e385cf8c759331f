"""Calendar-year totals from monthly forecasts.

The total of year Y = the observed months of Y (known, no uncertainty) + the forecast months
of Y. The interval of the total comes from the joint sample paths: each path is summed over the
forecast months, and the 10/90 and 2.5/97.5 percentiles of those sums (plus the observed part)
are the 80% and 95% bounds. Summing monthly bounds would be wrong: it assumes every month
misses in the same direction at the same quantile.

Point forecast: the observed part plus the sum of the monthly point forecasts when they are
given (``point``), so that the annual figure equals the sum of the published monthly
forecasts; without ``point`` the mean of the path sums is used.

A month of Y that is neither observed nor forecast (a gap in the past) makes the total
unknown: the forecast and bounds are NaN and ``reason`` names the months. Nothing is filled in.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["annual_totals", "QUANTILES", "fit_ar1", "ar1_paths", "ar1_sum_sd", "MAX_PHI"]

#: bound name -> quantile of the path sums
QUANTILES: dict[str, float] = {"lo_95": 0.025, "lo_80": 0.10, "hi_80": 0.90, "hi_95": 0.975}


def annual_totals(
    history: pd.Series,
    forecast_index: pd.DatetimeIndex | pd.Index,
    paths: np.ndarray,
    year: int,
    *,
    point: np.ndarray | None = None,
) -> dict[str, Any]:
    """Total of calendar ``year`` from observed months and sampled forecast paths.

    Parameters
    ----------
    history : monthly series (month-start index, NaN = unobserved).
    forecast_index : the h forecast months (month starts), matching the columns of ``paths``.
    paths : array (n_paths, h) of joint draws of the forecast months.
    year : calendar year to total.
    point : optional monthly point forecasts (length h); see the module docstring.

    Returns a dict: forecast, lo_80, hi_80, lo_95, hi_95, observed (sum of the observed months of
    the year, 0.0 when none), n_observed, n_forecast, reason ('' when complete).
    """
    forecast_index = pd.DatetimeIndex(forecast_index)
    paths = np.asarray(paths, dtype=float)
    if paths.ndim != 2 or paths.shape[1] != len(forecast_index):
        raise ValueError(
            f"paths must have shape (n_paths, {len(forecast_index)}) to match forecast_index; got {paths.shape}"
        )
    if paths.shape[0] < 1:
        raise ValueError("paths holds no draw (n_paths = 0)")
    if point is not None:
        point = np.asarray(point, dtype=float)
        if point.shape != (len(forecast_index),):
            raise ValueError(
                f"point must have {len(forecast_index)} values to match forecast_index; got shape {point.shape}"
            )
    if not isinstance(history.index, pd.DatetimeIndex):
        raise ValueError(f"history must be indexed by month starts (DatetimeIndex); got {type(history.index).__name__}")

    months = pd.date_range(f"{int(year)}-01-01", periods=12, freq="MS")
    observed = history.dropna()
    observed = observed[observed.index.isin(months)]
    in_forecast = forecast_index.isin(months) & ~forecast_index.isin(observed.index)
    covered = observed.index.union(forecast_index[in_forecast])
    missing = months.difference(covered)

    result: dict[str, Any] = {
        "observed": float(observed.sum()),
        "n_observed": int(len(observed)),
        "n_forecast": int(in_forecast.sum()),
        "reason": "",
    }
    if len(missing):
        result.update({key: float("nan") for key in ("forecast", *QUANTILES)})
        listed = ", ".join(f"{m:%Y-%m}" for m in missing)
        result["reason"] = f"{len(missing)} month(s) of {int(year)} neither observed nor forecast: {listed}"
        return result

    if not in_forecast.any():
        result.update({key: result["observed"] for key in ("forecast", *QUANTILES)})
        return result

    if not np.isfinite(paths[:, in_forecast]).all():
        raise ValueError(f"paths hold non-finite values in the forecast months of {int(year)}")
    sums = result["observed"] + paths[:, in_forecast].sum(axis=1)
    if point is None:
        result["forecast"] = float(sums.mean())
    else:
        result["forecast"] = result["observed"] + float(point[in_forecast].sum())
    for key, q in QUANTILES.items():
        result[key] = float(np.quantile(sums, q))
    return result


# --------------------------------------------------------------------------- correlated residual paths
def fit_ar1(residuals: pd.Series | np.ndarray) -> tuple[float, float]:
    """(phi, sigma) of a stationary AR(1) for in-sample residuals (NaN = a missing month): phi is
    the lag-1 autocorrelation over the pairs of consecutive observed months (a pair across a gap
    is left out; statsmodels' ``acf(missing='conservative')`` divides by every month instead and
    shrinks phi by the share of missing pairs), kept within [-MAX_PHI, MAX_PHI]; sigma is the
    residuals' standard deviation (the process's marginal one). Fewer than 3 finite residuals or
    no spread: (0, sd or 0)."""
    r = np.asarray(residuals, dtype=float)
    finite = r[np.isfinite(r)]
    if len(finite) < 3:
        return 0.0, float(finite.std(ddof=1)) if len(finite) > 1 else 0.0
    sigma = float(finite.std(ddof=1))
    if sigma == 0:
        return 0.0, 0.0
    x = r - finite.mean()
    pair = np.isfinite(x[1:]) & np.isfinite(x[:-1])
    if pair.sum() < 2:
        return 0.0, sigma
    now, before = x[1:][pair], x[:-1][pair]
    denom = math.sqrt(float(now @ now) * float(before @ before))
    phi = float(now @ before) / denom if denom > 0 else 0.0
    return float(np.clip(phi, -MAX_PHI, MAX_PHI)), sigma


#: an estimated |phi| above this is held here (a unit root would make the process non-stationary)
MAX_PHI = 0.95


def ar1_paths(n_paths: int, h: int, phi: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """(n_paths, h) draws of a stationary AR(1) with marginal standard deviation ``sigma``:
    e_1 ~ N(0, sigma^2), e_t = phi e_{t-1} + sqrt(1 - phi^2) sigma z_t. Started from the
    stationary distribution (not from the last residual), so the draws are centred on zero and
    the point forecast they are added to is unchanged."""
    z = rng.standard_normal((n_paths, h))
    out = np.empty((n_paths, h))
    if h == 0:
        return out
    innovation = sigma * np.sqrt(1.0 - phi * phi)
    out[:, 0] = sigma * z[:, 0]
    for t in range(1, h):
        out[:, t] = phi * out[:, t - 1] + innovation * z[:, t]
    return out


def ar1_sum_sd(h: int, phi: float, sigma: float) -> float:
    """Standard deviation of the sum of h consecutive values of that AR(1):
    sigma * sqrt(sum_{i,j} phi^|i-j|) = sigma * sqrt(h + 2 sum_{k=1}^{h-1} (h-k) phi^k).
    With phi = 0 it is sigma * sqrt(h), the iid case that made annual intervals too narrow."""
    k = np.arange(1, h)
    return float(sigma * np.sqrt(h + 2.0 * np.sum((h - k) * phi**k)))
