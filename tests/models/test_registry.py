"""The registry is the single source of what the models are (issue 21, part 2): every registered
class declares its traits, and the lists the rest of the code uses are read from them."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from models.core import registry
from models.core.base import TRAIT_ATTRIBUTES, Forecaster, Traits
from models.core.engine import EngineSettings, ModelSpec, fit_series
from models.families.baselines import ETS
from models.selection.champion import choose
from models.selection.combination import LINEAR_POOL, RANK_PAIRED, Combination, pool


def test_every_registered_class_declares_its_traits():
    classes = registry.load_all()
    assert list(classes) == registry.names()
    for name, cls in classes.items():
        assert cls.name == name
        assert isinstance(cls.traits, Traits) and cls.traits.family, name
        for attribute in TRAIT_ATTRIBUTES:  # the protocol's attributes follow the traits
            assert getattr(cls, attribute) == getattr(cls.traits, attribute), (name, attribute)
        assert cls.traits.combination == issubclass(cls, Combination), name
    assert {n: c.traits.family for n, c in classes.items() if c.traits.family != "combination"} == {
        "seasonal_naive": "baseline",
        "naive": "baseline",
        "ets": "baseline",
        "theta": "baseline",
        "arima": "arima",
        "prophet": "prophet",
        "arimax": "leading",
        "arimax_wsts": "leading",
        "arimax_flash": "leading",
        "cycle": "cycle",
        "cycle_wsts": "cycle",
        "cycle_blend": "cycle",
        "chip_momentum": "momentum",
        "chip_momentum_blend": "momentum",
    }


def test_a_trait_declared_beside_the_traits_is_refused():
    with pytest.raises(TypeError, match=r"^Twice: declare min_obs in its traits, not beside them$"):

        class Twice(ETS):  # noqa: F841
            traits = Traits(family="baseline", min_obs=3)
            min_obs = 5


def test_the_lists_come_from_the_traits():
    assert registry.available() == [
        "seasonal_naive",
        "naive",
        "ets",
        "theta",
        "arima",
        "prophet",
        "ensemble",
        "arimax",
        "arimax_wsts",
        "arimax_flash",
        "cycle",
        "cycle_wsts",
        "cycle_blend",
        "chip_momentum",
        "chip_momentum_blend",
    ]
    assert registry.plain() == ["seasonal_naive", "naive", "ets", "theta", "arima", "prophet"]
    assert registry.combinations() == ["combo_mean", "combo_trimmed", "combo_inv_mase"]
    assert [n for n in registry.names() if registry.traits(n).reads_reference] == [
        "cycle_wsts",
        "cycle_blend",
        "chip_momentum",
        "chip_momentum_blend",
    ]
    # the members of the combinations: no combination, no champion; a name the registry does not know stays
    assert pool(["ets", "cycle_blend", "ensemble", "combo_mean", "champion", "toy", "arima"]) == ["ets", "toy", "arima"]


def test_the_complexity_order_and_the_champion_tie_follow_the_ranks(monkeypatch: pytest.MonkeyPatch):
    assert registry.complexity_order() == [
        "naive",
        "seasonal_naive",
        "theta",
        "ets",
        "arima",
        "prophet",
        "ensemble",
        "combo_mean",
        "combo_trimmed",
        "combo_inv_mase",
        "arimax",
        "arimax_flash",
        "arimax_wsts",
        "chip_momentum",
        "chip_momentum_blend",
        "cycle",
        "cycle_blend",
        "cycle_wsts",
    ]
    scores = {"ensemble": [0.9, 1.1], "ets": [0.5, 0.7], "theta": [0.6, 0.6], "cycle_blend": [0.7, 0.5]}
    assert choose(scores, default="ensemble", noise_se=0).champion == "theta"  # rank 2 before ets 3
    monkeypatch.setattr(ETS, "traits", dataclasses.replace(ETS.traits, complexity=1))
    assert choose(scores, default="ensemble", noise_se=0).champion == "ets"
    # unranked: after every ranked model, in name order
    tied = choose({"cycle_blend": [0.5], "arimax": [0.5], "zeta": [0.5]}, default="ensemble", noise_se=0)
    assert tied.champion == "arimax"


def test_a_combinations_min_obs_is_its_members_without_building_it():
    assert registry.traits_of("ensemble").min_obs == 4  # arima 24, prophet 24, ets 10, theta 4
    assert registry.traits_of("ensemble", {"members": ["arima", "ets"]}).min_obs == 10
    assert registry.create("ensemble", {"members": ["arima", "ets"]}).min_obs == 10
    assert registry.traits_of("cycle_blend").min_obs == 4  # cycle_wsts 24, ets 10, theta 4
    assert registry.traits_of("chip_momentum_blend").min_obs == 1  # cycle_blend's class declares 1
    assert registry.traits_of("arima", {"max_p": 1}).min_obs == 24


def test_the_engine_reads_min_obs_from_the_traits_and_builds_nothing(monkeypatch: pytest.MonkeyPatch):
    built = []
    monkeypatch.setattr(ETS, "traits", dataclasses.replace(ETS.traits, min_obs=40))
    original = ETS.__init__

    def counting(self: Forecaster, **params: object) -> None:
        built.append(params)
        original(self, **params)

    monkeypatch.setattr(ETS, "__init__", counting)
    y = pd.Series(np.arange(1.0, 37.0), index=pd.date_range("2020-01-01", periods=36, freq="MS"))
    settings = EngineSettings(models=(ModelSpec("seasonal_naive"), ModelSpec("ets")), min_obs_seasonal=12)
    outcome = fit_series("a", y, settings, h=2)
    row = next(r for r in outcome.fits if r.model == "ets")
    assert row.reason == "ets needs 40 observed months; series has 36; used seasonal_naive"
    assert built == []


def test_the_path_rules_are_explicit():
    assert [
        (n, registry.get(n).reduce, registry.get(n).path_rule)
        for n in registry.names()
        if registry.traits(n).combination
    ] == [
        ("ensemble", "median", RANK_PAIRED),
        ("cycle_blend", "mean", RANK_PAIRED),
        ("chip_momentum_blend", "mean", RANK_PAIRED),
        ("combo_mean", "mean", LINEAR_POOL),
        ("combo_trimmed", "trimmed_mean", LINEAR_POOL),
        ("combo_inv_mase", "weighted", LINEAR_POOL),
    ]


def test_clone_copies_an_unfitted_prototype():
    prototype = registry.create("ets", {"damped_trend": True})
    copy = prototype.clone()
    assert copy is not prototype and copy.params == prototype.params and not copy.is_fitted
    y = pd.Series(np.arange(1.0, 25.0), index=pd.date_range("2020-01-01", periods=24, freq="MS"))
    copy.fit(y)
    assert not prototype.is_fitted
    with pytest.raises(ValueError, match=r"^clone\(\) takes an unfitted prototype; 'ets' is fitted$"):
        copy.clone()


def test_the_engine_default_factory_builds_once_and_clones(monkeypatch: pytest.MonkeyPatch):
    import pickle

    built = []
    original = ETS.__init__

    def counting(self: Forecaster, **params: object) -> None:
        built.append(params)
        original(self, **params)

    monkeypatch.setattr(ETS, "__init__", counting)
    factory = registry.Prototypes()
    y = pd.Series(
        100.0 + np.arange(48.0) + 5 * np.sin(np.arange(48.0)), index=pd.date_range("2020-01-01", periods=48, freq="MS")
    )
    first, second = factory("ets", {"damped_trend": True}), factory("ets", {"damped_trend": True})
    assert first is not second and len(built) == 1
    fresh = registry.create("ets", {"damped_trend": True})
    assert len(built) == 2
    cloned_fc = first.fit(y).predict(3)
    pd.testing.assert_frame_equal(cloned_fc, fresh.fit(y).predict(3), check_exact=True)
    assert not second._fitted  # fitting one clone leaves the others unfitted
    assert pickle.loads(pickle.dumps(factory)) is registry.PROTOTYPES
    assert registry.is_registry_factory(registry.PROTOTYPES) and not registry.is_registry_factory(lambda n, p: None)
