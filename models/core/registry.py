"""Models by name, for config and CLI, and every question about them. Each model module registers
its class with ``@register``; ``create(name, params)`` builds one. What a model is and needs is
declared on its class (``Forecaster.traits``, a ``Traits``), and the lists the rest of the code
needs (the configurable models, the leading ones, the combinations, the complexity order) are read
from those declarations here: no name list is kept by hand anywhere else.

``_MODULES`` is the lazy import map (a name's module is imported when the name is first asked
for), so that ``import models`` stays light; a question about every model's traits imports every
model module (``load_all``), which imports no heavy library: Prophet itself is imported only when a
Prophet model is fitted."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from models.core.base import Forecaster, Traits

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
    "combo_mean": "models.selection.combination",
    "combo_trimmed": "models.selection.combination",
    "combo_inv_mase": "models.selection.combination",
}


def register(cls: type[Forecaster]) -> type[Forecaster]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if not cls.traits.family:
        raise ValueError(f"{cls.__name__} ('{cls.name}') declares no traits (Traits(family=...))")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"duplicate model name '{cls.name}'")
    _REGISTRY[cls.name] = cls
    return cls


def names() -> list[str]:
    """Every registered model, the combinations computed after the fit included."""
    return list(_MODULES)


def _where(test: Callable[[Traits], bool]) -> list[str]:
    return [name for name in _MODULES if test(get(name).traits)]


def available() -> list[str]:
    """The models a config may name (``models.enabled``, ``models.params``, ``models.fallback``)."""
    return _where(lambda t: t.configurable)


def leading() -> list[str]:
    """The leading-indicator models (``models.leading``)."""
    return _where(lambda t: t.leading)


def plain() -> list[str]:
    """The configurable models that are neither leading-indicator models nor combinations: the
    members the combinations pool."""
    return _where(lambda t: t.configurable and not t.leading and not t.combination)


def combinations() -> list[str]:
    """The combinations computed after the fit from the members' forecasts (``combo_mean``, ...)."""
    return _where(lambda t: t.combination and not t.configurable)


def is_combination(name: str) -> bool:
    """Whether ``name`` is a registered model that combines others (False for unknown names)."""
    return name in _MODULES and get(name).traits.combination


def complexity_key(name: str) -> tuple[float, str]:
    """Sort key, simplest first: by ``Traits.complexity``; models without a rank and names the
    registry does not know after every ranked one, in name order."""
    rank = get(name).traits.complexity if name in _MODULES else None
    return (float("inf"), name) if rank is None else (rank, "")


def complexity_order() -> list[str]:
    """The registered models, simplest first (``complexity_key``)."""
    return sorted(_MODULES, key=complexity_key)


def traits(name: str) -> Traits:
    """The traits the model's class declares."""
    return get(name).traits


def traits_of(name: str, params: Mapping[str, Any] | None = None) -> Traits:
    """The traits of the model configured with ``params``, without building it
    (``Forecaster.traits_for``: a combination's minimum observations are its members')."""
    return get(name).traits_for(dict(params or {}))


def load_all() -> dict[str, type[Forecaster]]:
    """Every model class, by name (imports every model module)."""
    return {name: get(name) for name in _MODULES}


def get(name: str) -> type[Forecaster]:
    if name not in _MODULES:
        raise KeyError(f"unknown model '{name}'; available: {', '.join(available())}")
    if name not in _REGISTRY:
        importlib.import_module(_MODULES[name])
    return _REGISTRY[name]


def create(name: str, params: dict[str, Any] | None = None) -> Forecaster:
    return get(name)(**(params or {}))


class Prototypes:
    """A model factory (``(name, params) -> Forecaster``) that builds each configured model once and
    hands out clones of it, as statsforecast clones its configured models per series: the engine's
    default factory. Each process keeps its own prototypes (``PROTOTYPES``); a clone is a deep copy
    of the unfitted prototype, so it fits exactly as a newly built model does."""

    def __init__(self) -> None:
        self._built: dict[tuple[str, str], Forecaster] = {}

    def __call__(self, name: str, params: Mapping[str, Any] | None = None) -> Forecaster:
        key = (name, json.dumps(params or {}, sort_keys=True, default=repr))
        if key not in self._built:
            self._built[key] = create(name, dict(params or {}))
        return self._built[key].clone()

    def __reduce__(self) -> tuple[Callable[[], Prototypes], tuple[()]]:
        return _prototypes, ()  # a worker uses its own process's prototypes


def _prototypes() -> Prototypes:
    return PROTOTYPES


PROTOTYPES = Prototypes()


def is_registry_factory(factory: object) -> bool:
    """Whether ``factory`` builds the registry's models (the traits can then be read from the registry)."""
    return factory is create or isinstance(factory, Prototypes)
