"""The Dask executor under the engine's per-series map (models/core/executors.py, run_batches).

The Dask tests start real LocalClusters (worker processes on this machine): marked slow."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from toys import ToyMean, ToyNaive, ToySeasonalNaive

from models.core.backtest import backtest
from models.core.engine import EngineSettings, ModelSpec, forecast, run_batches
from models.core.executors import MAX_BATCH, dask_batches, dask_client


# ----------------------------------------------------------------------------- toys
class ToyKiller(ToyMean):
    """Kills the process it runs in (os._exit) when it fits the series whose first value is
    ``victim``: every time (``marker`` None), or only while ``marker`` does not exist yet
    (it creates it first, so the retry of the batch succeeds)."""

    name = "killer"

    def _fit(self, y, X):
        if float(y.dropna().iloc[0]) == self.params["victim"]:
            marker = self.params.get("marker")
            if marker is None:
                os._exit(3)
            if not Path(marker).exists():
                Path(marker).write_text("died once", encoding="utf-8")
                os._exit(3)
        super()._fit(y, X)


TOYS = {cls.name: cls for cls in (ToyNaive, ToySeasonalNaive, ToyMean, ToyKiller)}


def toy_factory(name, params):
    return TOYS[name](**params)


def _frame(n: int, months: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n):
        y = 100.0 + i + rng.standard_normal(months).cumsum()
        y[0] = 1000.0 + i  # the first value names the series for ToyKiller
        parts.append(
            pd.DataFrame({"unique_id": f"s{i}", "ds": pd.date_range("2018-01-01", periods=months, freq="MS"), "y": y})
        )
    return pd.concat(parts, ignore_index=True)


def _settings(*models, **kw) -> EngineSettings:
    kw.setdefault("n_jobs", 2)
    kw.setdefault("n_paths", 50)
    return EngineSettings(models=tuple(m if isinstance(m, ModelSpec) else ModelSpec(m) for m in models), **kw)


def _assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.forecasts, b.forecasts, check_exact=True)
    pd.testing.assert_frame_equal(a.fits, b.fits, check_exact=True)
    pd.testing.assert_frame_equal(a.annual, b.annual, check_exact=True)


# ----------------------------------------------------------------------------- batches (no cluster)
def test_batches_are_longest_first_and_cover_every_item_once():
    costs = [5, 50, 20, 50, 1, 7]
    batches = dask_batches(costs, n_workers=1)  # 6 items, 8 batches per worker wanted -> 1 item each
    assert batches == [[1], [3], [2], [5], [0], [4]]
    big = dask_batches([1.0] * 10_000, n_workers=2)
    assert len(big) == 157 and {len(b) for b in big[:-1]} == {MAX_BATCH} and len(big[-1]) == 10_000 - 156 * MAX_BATCH
    assert sorted(i for b in big for i in b) == list(range(10_000))
    assert [len(b) for b in dask_batches([1.0] * 100, n_workers=2)] == [7] * 14 + [2]
    assert dask_batches([], n_workers=2) == []


def test_settings_reject_unknown_executor():
    with pytest.raises(ValueError) as err:
        _settings("mean", executor="spark")
    assert str(err.value) == "executor must be one of joblib, dask; got 'spark'"
    with pytest.raises(ValueError) as err:
        run_batches(abs, [1, 2], n_jobs=1, executor="ray")
    assert str(err.value) == "executor must be one of joblib, dask; got 'ray'"


def test_costs_must_match_items_for_every_executor():
    for executor in ("joblib", "dask"):
        with pytest.raises(ValueError) as err:
            run_batches(abs, [1, 2], n_jobs=2, costs=[1.0], executor=executor)
        assert str(err.value) == "costs has 1 values for 2 items"


def test_unreachable_scheduler_is_one_clear_error():
    import dask
    import distributed  # noqa: F401  (loads distributed's config defaults before they are overridden)

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(RuntimeError) as err:
            with dask_client("tcp://127.0.0.1:9", 1):
                pass
    assert str(err.value).startswith("runtime.dask_address tcp://127.0.0.1:9: cannot reach the Dask scheduler (")
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- on a cluster
@pytest.mark.slow
def test_dask_equals_joblib_with_real_models_and_sample_paths():
    """Same frame through joblib (2 loky workers) and a Dask LocalCluster (2 workers): identical
    forecasts, fits and annual totals from 200 sample paths of real models; backtest too."""
    rng = np.random.default_rng(7)
    t = np.arange(60)
    parts = []
    for i in range(4):
        y = (
            (1e9 + 1e7 * i)
            * np.exp(0.004 * t)
            * (1 + 0.1 * np.sin(2 * np.pi * (t + i) / 12))
            * np.exp(rng.normal(0, 0.03, 60))
        )
        keep = np.ones(60, bool)
        keep[[10 + i, 30]] = False  # gaps
        parts.append(
            pd.DataFrame(
                {"unique_id": f"item:{i}", "ds": pd.date_range("2020-01-01", periods=60, freq="MS")[keep], "y": y[keep]}
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    models = ("naive", "ets", "theta")
    joblib = forecast(frame, _settings(*models, n_paths=200), horizon=12, annual_year=2025)
    dask = forecast(frame, _settings(*models, n_paths=200, executor="dask"), horizon=12, annual_year=2025)
    _assert_same(joblib, dask)
    assert (joblib.fits["status"] == "ok").all() and len(joblib.fits) == 4 * 4
    annual = dask.annual.set_index(["unique_id", "model"])
    assert (annual["hi_95"] > annual["lo_95"]).all()  # the paths are random, not degenerate
    # seeded per series and model: two series never share their draws
    assert annual["lo_95"].xs("naive", level="model").nunique() == 4

    toy = _frame(6)
    bj = backtest(toy, _settings("naive", "mean"), horizon=6, windows=2, step=6, factory=toy_factory)
    bd = backtest(toy, _settings("naive", "mean", executor="dask"), horizon=6, windows=2, step=6, factory=toy_factory)
    pd.testing.assert_frame_equal(bj.metrics, bd.metrics, check_exact=True)
    pd.testing.assert_frame_equal(bj.forecasts, bd.forecasts, check_exact=True)
    pd.testing.assert_frame_equal(bj.fits, bd.fits, check_exact=True)


@pytest.mark.slow
def test_existing_scheduler_address_gives_the_same_results():
    from distributed import LocalCluster

    frame = _frame(9)
    local = forecast(
        frame, _settings("naive", "mean", n_jobs=1), until="2021-12-01", annual_year=2021, factory=toy_factory
    )
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        remote = forecast(
            frame,
            _settings("naive", "mean", executor="dask", dask_address=cluster.scheduler_address),
            until="2021-12-01",
            annual_year=2021,
            factory=toy_factory,
        )
    _assert_same(local, remote)


@pytest.mark.slow
def test_worker_killed_once_batch_is_retried_and_results_unchanged(tmp_path):
    frame = _frame(10)
    marker = tmp_path / "died"
    killer = ModelSpec("killer", {"victim": 1003.0, "marker": str(marker)})
    survived = tmp_path / "survived"
    survived.write_text("x", encoding="utf-8")  # the in-process reference run must not die
    plain = forecast(
        frame,
        _settings("naive", ModelSpec("killer", {"victim": 1003.0, "marker": str(survived)}), n_jobs=1),
        until="2021-12-01",
        annual_year=2021,
        factory=toy_factory,
    )
    dask = forecast(
        frame, _settings("naive", killer, executor="dask"), until="2021-12-01", annual_year=2021, factory=toy_factory
    )
    assert marker.read_text(encoding="utf-8") == "died once"  # a worker did die
    assert (dask.fits["status"] == "ok").all()
    _assert_same(plain, dask)


@pytest.mark.slow
def test_worker_killed_twice_loses_only_its_batch_recorded_as_failed():
    frame = _frame(10)
    killer = ModelSpec("killer", {"victim": 1003.0})
    res = forecast(
        frame, _settings("naive", killer, executor="dask"), until="2021-12-01", annual_year=2021, factory=toy_factory
    )
    fits = res.fits.set_index(["unique_id", "model"])
    victim = fits.loc["s3"]
    assert victim["status"].tolist() == ["failed", "failed", "failed"]
    assert victim["model_used"].isna().all()
    assert victim.loc["killer", "reason"] == "killer failed; every fallback failed"
    error = victim.loc["killer", "error"]
    assert error.startswith("killer: WorkerLost: worker process died running forecast batch ")
    assert "on every attempt (KilledWorker: " in error and "; seasonal_naive: WorkerLost: " in error
    others = res.fits[res.fits["unique_id"] != "s3"]
    assert len(others) == 27 and (others["status"] == "ok").all()
    assert sorted(res.forecasts["unique_id"].unique()) == [f"s{i}" for i in range(10) if i != 3]
    assert "s3" not in set(res.annual["unique_id"])


# ----------------------------------------------------------------------------- config -> engine
# (the runtime settings of flows/settings.py that feed the executor; the message format around
# the key is flows.settings' own, so only the key and this executor's text are pinned here)
ROOT = Path(__file__).resolve().parents[2]


def test_config_yaml_defaults_to_joblib_and_env_switches_to_a_cluster(monkeypatch):
    from flows.settings import load_settings

    engine = load_settings(ROOT / "config.yaml").engine_settings()
    assert (engine.executor, engine.dask_address, engine.n_jobs) == ("joblib", "", 2)
    monkeypatch.setenv("EXPORTCAST__RUNTIME__EXECUTOR", "dask")
    monkeypatch.setenv("EXPORTCAST__RUNTIME__DASK_ADDRESS", " tcp://10.0.0.5:8786 ")
    engine = load_settings(ROOT / "config.yaml").engine_settings()
    assert (engine.executor, engine.dask_address) == ("dask", "tcp://10.0.0.5:8786")


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"EXPORTCAST__RUNTIME__EXECUTOR": "spark"},
            "'runtime.executor': Input should be 'joblib' or 'dask' (got 'spark')",
        ),
        (
            {"EXPORTCAST__RUNTIME__EXECUTOR": "dask", "EXPORTCAST__RUNTIME__DASK_ADDRESS": "tcp://a b:1"},
            "'runtime.dask_address': must be a Dask scheduler address such as tcp://10.0.0.5:8786, "
            "or empty for a local cluster (got 'tcp://a b:1')",
        ),
        (
            {"EXPORTCAST__RUNTIME__DASK_ADDRESS": "tcp://10.0.0.5:8786"},
            "dask_address tcp://10.0.0.5:8786 is set but executor is joblib: set executor: dask to run on that cluster, "
            "or empty dask_address",
        ),
    ],
)
def test_bad_runtime_settings_name_the_key(monkeypatch, env, message):
    from flows.settings import ConfigError, load_settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as err:
        load_settings(ROOT / "config.yaml")
    if "EXPORTCAST__RUNTIME__DASK_ADDRESS" in env and "EXPORTCAST__RUNTIME__EXECUTOR" not in env:
        # a check across two fields (a model validator): the message names the section, not the variable
        assert message in str(err.value)
    else:  # a field's own check: the whole message, naming the environment variable it came from
        variable = "EXPORTCAST__RUNTIME__DASK_ADDRESS" if "dask_address" in message else "EXPORTCAST__RUNTIME__EXECUTOR"
        assert str(err.value) == f"environment variable {variable}: invalid configuration: {message}"


def _square(x: int) -> int:
    return x * x


def test_the_joblib_generator_runs_to_its_end(monkeypatch):
    """run_batches exhausts joblib's result generator. A generator left suspended is closed when
    dropped, and if that lands inside joblib's retrieval loop joblib aborts the call and shuts
    down the executor that every stage of a run shares (their maps fail: "The executor
    underlying Parallel has been shutdown", once in five CI runs)."""
    import joblib

    generators = []
    call = joblib.Parallel.__call__

    def keeping(self, iterable):
        out = call(self, iterable)
        generators.append(out)  # kept here, so that the test sees it after run_batches returns
        return out

    monkeypatch.setattr(joblib.Parallel, "__call__", keeping)
    assert run_batches(_square, [1, 2, 3, 4, 5], n_jobs=2, costs=[1, 5, 2, 4, 3]) == [1, 4, 9, 16, 25]
    assert run_batches(_square, [1, 2, 3], n_jobs=2) == [1, 4, 9]
    assert len(generators) == 2
    assert all(g.gi_frame is None for g in generators)  # finished (StopIteration), not suspended
