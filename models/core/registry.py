"""Models by name, for config and CLI. Each model module registers its class with
``@register``; ``create(name, params)`` builds one. Heavy libraries are imported by the
model modules only when ``load_all`` imports them."""

from __future__ import annotations

import importlib
from typing import Any

from models.core.base import Forecaster

_REGISTRY: dict[str, type[Forecaster]] = {}
# module that defines each model (imported lazily so that `import models` stays light)
_MODULES: dict[str, str] = {
    "seasonal_naive": "models.families.baselines",
    "naive": "models.families.baselines",
    "ets": "models.families.baselines",
    "theta": "models.families.baselines",
    "arima": "models.families.arima",
    "prophet": "models.families.prophet_model",
    "ensemble": "models.selection.ensemble",
    "arimax": "models.families.leading",
    "arimax_wsts": "models.families.leading",
    "arimax_flash": "models.families.leading",
    "cycle": "models.families.cycle",
    "cycle_wsts": "models.families.cycle",
    "cycle_blend": "models.families.cycle",
    "chip_momentum": "models.families.momentum",
    "chip_momentum_blend": "models.families.momentum",
}


def register(cls: type[Forecaster]) -> type[Forecaster]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"duplicate model name '{cls.name}'")
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    return list(_MODULES)


def get(name: str) -> type[Forecaster]:
    if name not in _MODULES:
        raise KeyError(f"unknown model '{name}'; available: {', '.join(available())}")
    if name not in _REGISTRY:
        importlib.import_module(_MODULES[name])
    return _REGISTRY[name]


def create(name: str, params: dict[str, Any] | None = None) -> Forecaster:
    return get(name)(**(params or {}))
