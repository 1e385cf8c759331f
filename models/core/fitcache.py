"""A content-addressed cache of fitted models: fit once, use everywhere.

One entry is one model fitted on one series' history (to a cutoff). The key is the content of
what the fit depends on: the model's name and params, the history's months and values, the
regressors of the history, the sign handling, and the code version (the sources of ``models/``
and the versions of the numerical packages). Forecasts and sample paths are made from the model
returned, by the caller, as after a fresh fit: so a stage that asks another horizon, another
number of paths or another seed still shares the fit. The fits go through it where one model is
fitted on one series: the engine (``_run_model``: backtest, forecast, institutional comparison),
the nowcast's monthly model forecasts and the in-year tracking; two stages that fit the same model
on the same data to the same month (an October cutoff of the comparison and the nowcast's
October; the tracking's and the comparison's Octobers) share one fit, and a rerun with nothing
changed fits nothing.

Inside a fit, :func:`shared` keeps a part of it by content in the same store: Prophet's Stan
optimum (its calibration refit without the last 12 months is the same optimisation as the fit at
the cutoff 12 months earlier, which the backtest, the October replays and the tracking also make).

The store is ``joblib.Memory`` (one file per key under ``<location>/joblib``, written to a
temporary file and renamed, so concurrent workers are safe). The fitted model is stored as the
bytes of Python's C pickler: joblib's own pickler is written in Python and took 8-10x longer on
these objects (decision 0187). A failed fit is not stored (it raises, and is retried next time).
``runtime.fit_cache`` in config.yaml: a folder, or "off".
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import time
from collections.abc import Callable
from contextvars import ContextVar
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import joblib
import numpy as np
import pandas as pd

R = TypeVar("R")
M = TypeVar("M")
OFF = ("", "off")
#: a file to which every fit appends "model<TAB>seconds<TAB>hit|miss|off<TAB>key" (benchmarks/speed.py)
LOG_ENV = "EXPORTCAST_FIT_LOG"
#: the fit log's name of a part kept by :func:`shared` is this prefix and its kind
PART_PREFIX = "part:"
MODELS_DIR = Path(__file__).resolve().parents[1]
#: packages whose version changes what a fit computes
PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "prophet", "cmdstanpy", "statsforecast", "joblib")


@functools.cache
def code_version() -> str:
    """sha256 over the sources of ``models/`` (paths and contents) and the numerical packages' versions."""
    digest = hashlib.sha256()
    for path in sorted(MODELS_DIR.rglob("*.py")):
        digest.update(path.relative_to(MODELS_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for name in PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "-"
        digest.update(f"{name}={version}\0".encode())
    return digest.hexdigest()


def _content(value: Any) -> Any:
    """A series or frame as plain arrays (index as int64 nanoseconds, values as float64), so that
    the key depends on the content, not on how pandas laid the object out in memory."""
    if isinstance(value, pd.Series):
        return ("series", np.asarray(value.index.asi8), np.asarray(value.to_numpy(dtype=float)))
    if isinstance(value, pd.DataFrame):
        return (
            "frame",
            [str(c) for c in value.columns],
            np.asarray(value.index.asi8),
            np.asarray(value.to_numpy(dtype=float)),
        )
    return value


def fit_key(model: Any, y: pd.Series, X: pd.DataFrame | None, signed: bool) -> str:
    """The content hash of one fit's inputs: the model's name and params (defaults filled in by
    its constructor), the history, its regressors, the sign handling and the code version."""
    inputs = {
        "model": model.name,
        "params": sorted((str(k), repr(v)) for k, v in model.params.items()),
        "y": _content(y),
        "X": _content(X),
        "signed": bool(signed),
        "code": code_version(),
    }
    return joblib.hash(inputs, hash_name="sha1")


@functools.cache
def _memory(location: str) -> joblib.Memory:
    return joblib.Memory(location, verbose=0)


#: the fit cache of the fit in progress (set by :func:`fitted`), read by :func:`shared`
_LOCATION: ContextVar[str] = ContextVar("exportcast_fit_cache", default="")


def _stored_value(key: str, compute: Callable[[], R]) -> R:
    """What ``joblib.Memory`` stores under ``key``: ``compute()`` (not part of the key)."""
    return compute()


def _through_store(location: str, key: str, compute: Callable[[], R]) -> tuple[R, str]:
    """``compute()`` stored under ``key`` in the cache at ``location``, or what was stored there
    before; and the outcome for the fit log ("hit" or "miss"; "" when no log is kept)."""
    cached = _memory(location).cache(_stored_value, ignore=["compute"])
    outcome = ("hit" if cached.check_call_in_cache(key, compute) else "miss") if os.environ.get(LOG_ENV) else ""
    return cached(key, compute), outcome


def shared(kind: str, inputs: Any, compute: Callable[[], R]) -> R:
    """``compute()``, or its result stored before under the content of ``kind``, ``inputs`` and the
    code version, in the fit cache of the fit in progress (no fit in progress, or the cache off:
    computed). For a deterministic part of a fit that several fits repeat on the same inputs."""
    location = _LOCATION.get()
    if location in OFF:
        return compute()
    started = time.perf_counter()
    key = joblib.hash({"kind": kind, "inputs": inputs, "code": code_version()}, hash_name="sha1")
    result, outcome = _through_store(location, key, compute)
    if outcome:
        _log(PART_PREFIX + kind, time.perf_counter() - started, outcome, key[:16])
    return result


def fitted(
    location: str | Path,
    model: M,
    y: pd.Series,
    X: pd.DataFrame | None,
    fit: Callable[[M], Any],
    *,
    signed: bool = False,
) -> M:
    """``model`` fitted on ``y`` (and ``X``) by ``fit(model)``, or the same model fitted on the same
    content before, from the cache at ``location`` ("" or "off": no cache). Use the model returned:
    on a hit it is another object. Models from outside ``models/`` (tests' toys) are always fitted."""
    location = str(location)
    started = time.perf_counter()
    if location in OFF or not type(model).__module__.startswith("models."):
        fit(model)
        result, outcome, key = model, "off", ""
    else:
        key = fit_key(model, y, X, signed)
        fresh: list[M] = []
        pickled, outcome = _through_store(
            location, key, functools.partial(_fitted_and_pickled, model, fit, location, fresh)
        )
        result = fresh[0] if fresh else pickle.loads(pickled)
    if os.environ.get(LOG_ENV):
        _log(model.name, time.perf_counter() - started, outcome, key[:16])
    return result


def _fitted_and_pickled(model: M, fit: Callable[[M], Any], location: str, fresh: list[M]) -> bytes:
    """``fit(model)`` with ``location`` as the cache of :func:`shared`; ``model`` is appended to
    ``fresh`` (the caller uses it, not a copy) and its pickle returned (what is stored)."""
    token = _LOCATION.set(location)
    try:
        fit(model)
    finally:
        _LOCATION.reset(token)
    fresh.append(model)
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def _log(name: str, seconds: float, outcome: str, key: str) -> None:
    """One line per fit to the file named by EXPORTCAST_FIT_LOG (benchmarks/speed.py sets it):
    appended in one write, so the worker processes' lines do not interleave."""
    with open(os.environ[LOG_ENV], "a", encoding="utf-8") as log:
        log.write(f"{name}\t{seconds:.6f}\t{outcome}\t{key}\n")
