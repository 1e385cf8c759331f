"""Forecast accuracy metrics (pure numpy).

Conventions shared by every function:

- ``y_true`` may hold NaN: a month without an actual (a gap in the test window) is ignored,
  together with the forecast for that month. A metric with no actual at all is NaN.
- Forecasts and bounds must be finite where the actual is observed; a NaN forecast for an
  observed month is a bug upstream and raises ``ValueError`` rather than being skipped.
- ``y_train`` (for the scaled metrics) is the history the forecast was made from, in time
  order, with NaN for unobserved months: the seasonal differences ``y_t - y_{t-m}`` are taken
  over pairs whose both sides are observed.

Scale fallback for MASE / RMSSE: the in-sample seasonal naive error (lag ``m``) is the scale.
When it is undefined (fewer than ``m + 1`` months, or no pair with both sides observed) or
zero (a perfectly repeating history), the lag-1 naive error is used instead. When that is
undefined or zero too (a constant or single-point history), the metric is NaN: there is no
honest scale.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mase", "rmsse", "smape", "coverage", "ape", "naive_scale"]


def _vector(values: object, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    return arr


def _paired(y_true: object, **others: object) -> tuple[np.ndarray, ...]:
    """Align y_true with the other arrays, drop months whose actual is NaN, and check that the
    remaining forecasts/bounds are finite."""
    truth = _vector(y_true, "y_true")
    arrays = []
    for name, values in others.items():
        arr = _vector(values, name)
        if arr.shape != truth.shape:
            raise ValueError(f"{name} has {arr.size} values but y_true has {truth.size}")
        arrays.append(arr)
    keep = ~np.isnan(truth)
    out = [truth[keep]]
    for (name, _), arr in zip(others.items(), arrays):
        kept = arr[keep]
        bad = ~np.isfinite(kept)
        if bad.any():
            position = int(np.flatnonzero(keep)[np.flatnonzero(bad)[0]])
            raise ValueError(
                f"{name} is not finite at position {position} where y_true is observed: {float(arr[position])}"
            )
        out.append(kept)
    return tuple(out)


def _lag_errors(y_train: np.ndarray, m: int, power: int) -> np.ndarray:
    if m < 1 or len(y_train) <= m:
        return np.empty(0)
    diff = y_train[m:] - y_train[:-m]
    diff = diff[~np.isnan(diff)]
    return np.abs(diff) ** power


def naive_scale(y_train: object, m: int = 12, *, power: int = 1) -> float:
    """Mean of ``|y_t - y_{t-m}| ** power`` over the observed pairs of ``y_train``, falling back
    to lag 1 when the lag-m scale is undefined or zero; NaN when no usable scale exists."""
    if not isinstance(m, (int, np.integer)) or m < 1:
        raise ValueError(f"seasonal period m must be a positive integer; got {m!r}")
    train = _vector(y_train, "y_train")
    for lag in dict.fromkeys((int(m), 1)):  # m first, then 1 (once if m == 1)
        errors = _lag_errors(train, lag, power)
        if errors.size:
            scale = float(errors.mean())
            if scale > 0:
                return scale
    return float("nan")


def mase(y_true: object, y_pred: object, y_train: object, m: int = 12) -> float:
    """Mean absolute scaled error: mean |y - f| / mean |y_t - y_{t-m}| (training part).

    See the module docstring for the NaN handling and the lag-1 fallback of the scale."""
    truth, pred = _paired(y_true, y_pred=y_pred)
    scale = naive_scale(y_train, m, power=1)
    if truth.size == 0 or np.isnan(scale):
        return float("nan")
    return float(np.mean(np.abs(truth - pred)) / scale)


def rmsse(y_true: object, y_pred: object, y_train: object, m: int = 12) -> float:
    """Root mean squared scaled error: sqrt(mean (y - f)^2 / mean (y_t - y_{t-m})^2)."""
    truth, pred = _paired(y_true, y_pred=y_pred)
    scale = naive_scale(y_train, m, power=2)
    if truth.size == 0 or np.isnan(scale):
        return float("nan")
    return float(np.sqrt(np.mean((truth - pred) ** 2) / scale))


def smape(y_true: object, y_pred: object) -> float:
    """Symmetric MAPE in percent (0..200): mean of 200 |y - f| / (|y| + |f|).
    A month where actual and forecast are both zero contributes 0."""
    truth, pred = _paired(y_true, y_pred=y_pred)
    if truth.size == 0:
        return float("nan")
    denom = np.abs(truth) + np.abs(pred)
    num = 2.0 * np.abs(truth - pred)
    terms = np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)
    return float(100.0 * terms.mean())


def coverage(y_true: object, lo: object, hi: object) -> float:
    """Share (0..1) of observed actuals inside [lo, hi], bounds inclusive."""
    truth, low, high = _paired(y_true, lo=lo, hi=hi)
    if truth.size == 0:
        return float("nan")
    if (low > high).any():
        position = int(np.flatnonzero(low > high)[0])
        raise ValueError(
            f"lo exceeds hi at observed position {position}: {float(low[position])} > {float(high[position])}"
        )
    return float(np.mean((truth >= low) & (truth <= high)))


def ape(y_true: object, y_pred: object) -> float | np.ndarray:
    """Absolute percentage error 100 |f - y| / |y|, element-wise. Scalars in, float out;
    NaN where the actual is NaN; ``ValueError`` for an actual of zero (undefined)."""
    scalar = np.ndim(y_true) == 0 and np.ndim(y_pred) == 0
    truth = _vector(y_true, "y_true")
    pred = _vector(y_pred, "y_pred")
    if pred.shape != truth.shape:
        raise ValueError(f"y_pred has {pred.size} values but y_true has {truth.size}")
    if (truth == 0).any():
        raise ValueError(f"ape is undefined for an actual of 0 (position {int(np.flatnonzero(truth == 0)[0])})")
    out = 100.0 * np.abs(pred - truth) / np.abs(truth)
    return float(out[0]) if scalar else out
