"""The arithmetic and parsing of benchmarks/speed.py (not its timings)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("speed_profile", ROOT / "benchmarks" / "speed.py")
speed = importlib.util.module_from_spec(_spec)
sys.modules["speed_profile"] = speed  # dataclasses look their module up
_spec.loader.exec_module(speed)


def test_run_json_gives_stages_forecast_fit_seconds_and_cached_stages():
    text = json.dumps(
        {
            "stage_seconds": {"backtest": 68.25, "forecast": 20},
            "fit_seconds": {"ets": 3.5, "prophet": 15.125},
            "cached": {"backtest": True, "forecast": False},
            "other": 1,
        }
    )
    stages, fits, cached = speed.read_run_json(text)
    assert stages == {"backtest": 68.25, "forecast": 20.0}
    assert fits == {"ets": 3.5, "prophet": 15.125}
    assert cached == {"backtest": True, "forecast": False}
    assert speed.read_run_json("{}") == ({}, {}, {})


def test_fit_log_sums_seconds_fits_and_hits_per_model():
    lines = ["ets\t0.5\tmiss\n", "prophet\t1.25\tmiss\n", "ets\t0.25\thit\n", "\n", "ets\t0.125\thit\n"]
    assert speed.read_fit_log(lines) == {
        "ets": {"seconds": 0.875, "fits": 3, "hits": 2},
        "prophet": {"seconds": 1.25, "fits": 1, "hits": 0},
    }
    with pytest.raises(ValueError):
        speed.read_fit_log(["ets 0.5 miss"])
    assert speed.read_fit_log(["ets\t0.5\thit\tabc\n"]) == {"ets": {"seconds": 0.5, "fits": 1, "hits": 1}}


def test_parts_kept_inside_fits_are_counted_apart_from_the_fits():
    from models.core import fitcache

    assert speed.PART_PREFIX == fitcache.PART_PREFIX
    lines = ["prophet\t2.0\tmiss\n", "part:prophet stan optimum\t0.5\tmiss\n", "part:prophet stan optimum\t0.0\thit\n"]
    assert speed.read_fit_log(lines) == {"prophet": {"seconds": 2.0, "fits": 1, "hits": 0}}
    assert speed.read_shared_parts(lines) == {"prophet stan optimum": {"seconds": 0.5, "fits": 2, "hits": 1}}


def test_share_ratio_and_median():
    assert speed.fit_share(120.0, 100.0, 2) == 0.6
    assert speed.ratio(33.0, 100.0) == 0.33
    assert speed.ratio(1.0, 0.0) != speed.ratio(1.0, 0.0)  # nan
    assert speed.ratio(None, 2.0) != speed.ratio(None, 2.0)
    runs = [speed.Run(str(w), w, 0.0) for w in (30.0, 10.0, 20.0, 40.0)]
    assert speed.median_run(runs).wall == 20.0
    assert speed.median_run(runs[:3]).wall == 20.0


def test_stage_and_family_rows():
    base = speed.Run("baseline", 200.0, 900.0, {"backtest": 60.0, "forecast": 20.0}, {"ets": 4.0})
    this = speed.Run(
        "this",
        50.0,
        800.0,
        {"backtest": 15.0, "forecast": 5.0, "reconcile": 1.0},
        {"ets": 1.0},
        {"ets": {"seconds": 9.5, "fits": 10, "hits": 4}},
    )
    rerun = speed.Run("rerun", 8.0, 500.0, {"backtest": 0.5}, {}, {"ets": {"seconds": 0.25, "fits": 10, "hits": 10}})
    assert speed.stage_rows(base, this, rerun) == [
        ["backtest", "60.0", "15.0", "0.25", "0.5"],
        ["forecast", "20.0", "5.0", "0.25", "-"],
        ["reconcile", "-", "1.0", "-", "-"],
        ["wall", "200.0", "50.0", "0.25", "8.0"],
    ]
    assert speed.family_rows(base, this, rerun) == [["ets", "4.00", "1.00", "0.25", "9.5", "10", "4", "10/10"]]
    assert speed.family_rows(base, this, None)[0][-1] == "-"


def test_champion_mase_is_the_mean_over_the_champion_rows(tmp_path) -> None:
    path = tmp_path / "backtest_metrics.csv"
    path.write_text(
        "unique_id,model,cutoff,mase,smape\n"
        "a,champion,2024-12-01,0.5,1\n"
        "a,ets,2024-12-01,9.0,1\n"
        "b,champion,2024-12-01,1.25,1\n"
        "b,champion,2024-06-01,0.75,1\n",
        encoding="utf-8",
    )
    assert speed.champion_mase(path) == (0.5 + 1.25 + 0.75) / 3


def test_steal_share_is_the_stolen_part_of_all_cpu_time_between_two_readings() -> None:
    before = [100, 0, 20, 500, 5, 0, 1, 30]
    after = [160, 0, 30, 510, 5, 0, 1, 60]  # +60 user, +10 system, +10 idle, +30 steal
    assert speed.steal_share(before, after) == 30 / 110
    assert speed.steal_share([], after) is None
