"""A content-addressed cache of single-model fits: fit once, use everywhere.

One entry is what ``engine._run_model`` returns for one model on one series at one cutoff: the
fitted model, its point forecast and bounds, and its sample paths. The key is the content of
everything that result depends on: the history's months and values (to the cutoff), the model
name and params, the regressors of the history and of the forecast months, the horizon, the
number of paths and their seed, the sign handling and the plausibility limit, and the code
version (the sources of ``models/`` and the versions of the numerical packages). Two stages that
fit the same model on the same data to the same cutoff (a backtest window and an October cutoff
of the institutional comparison; the in-year tracking and the nowcast) share one fit, and a rerun
with nothing changed fits nothing.

The store is ``joblib.Memory`` (one pickle per key under ``<location>/joblib``, written to a
temporary file and renamed, so concurrent workers are safe). Failed fits are not stored: they are
retried. Only the registry's own models are cached: a custom factory (tests) always fits.
``runtime.fit_cache`` in config.yaml: a folder, or "off".
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import joblib
import numpy as np
import pandas as pd

from models.core import registry

R = TypeVar("R")
OFF = ("", "off")
#: a file to which every fit appends "model<TAB>seconds<TAB>hit|miss|off" (benchmarks/speed.py)
LOG_ENV = "EXPORTCAST_FIT_LOG"
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


def fit_key(name: str, params: dict[str, Any], *args: Any, **kwargs: Any) -> str:
    """The content hash of one fit's inputs (``engine._run_model``'s, less the bookkeeping ones)."""
    skip = ("fitted_here", "failed_here", "timer")
    inputs = {
        "name": name,
        "params": sorted((str(k), repr(v)) for k, v in params.items()),
        "args": [_content(a) for a in args],
        "kwargs": sorted((k, _content(v)) for k, v in kwargs.items() if k not in skip),
        "code": code_version(),
    }
    return joblib.hash(inputs, hash_name="sha1")


@functools.cache
def _memory(location: str) -> joblib.Memory:
    return joblib.Memory(location, verbose=0)


def _compute(key: str, run: Callable[[], R]) -> R:
    """What ``joblib.Memory`` stores under ``key`` (``run`` is not part of the key)."""
    return run()


def run(
    location: str | Path,
    run_model: Callable[..., R],
    factory: Any,
    name: str,
    params: dict[str, Any],
    *args: Any,
    **kwargs: Any,
) -> R:
    """``run_model(factory, name, params, *args, **kwargs)``, served from the cache at ``location``
    when the same inputs were fitted before (``location`` "" or "off": no cache)."""
    location = str(location)
    started = time.perf_counter()
    if location in OFF or factory is not registry.create:
        result, outcome = run_model(factory, name, params, *args, **kwargs), "off"
    else:
        cached = _memory(location).cache(_compute, ignore=["run"])
        key = fit_key(name, params, *args, **kwargs)
        fit = functools.partial(run_model, factory, name, params, *args, **kwargs)
        outcome = ("hit" if cached.check_call_in_cache(key, fit) else "miss") if os.environ.get(LOG_ENV) else ""
        result = cached(key, fit)
    if os.environ.get(LOG_ENV):
        _log(name, time.perf_counter() - started, outcome)
    return result


def _log(name: str, seconds: float, outcome: str) -> None:
    """One line per fit to the file named by EXPORTCAST_FIT_LOG (benchmarks/speed.py sets it):
    appended in one write, so the worker processes' lines do not interleave."""
    with open(os.environ[LOG_ENV], "a", encoding="utf-8") as log:
        log.write(f"{name}\t{seconds:.6f}\t{outcome}\n")
