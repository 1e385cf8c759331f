"""Reruns publish the same bytes (issue 19 item 8): two real ``exportcast run`` processes on the
embedded data, at once, each with a fresh PREFECT_HOME (its own temporary Prefect server and database,
and no cached result shared: results are stored under PREFECT_HOME) and its own hash seed, one with
``runtime.n_jobs`` 1 (every fit in the pipeline process, stage after stage) and one with 2 (loky
workers, the fitting stages at once: ``runtime.overlap_stages``), publish
byte-identical CSVs, and no published CSV carries a timing. Before docs/decisions/0124 they differed
at 1e-9 (the US ARIMA's AICc -624.15248534 vs -624.15248623: scipy's MINPACK read freed heap
memory); before the fixes of docs/decisions/0123 the 2025 total's 80% bounds differed by 10.7 bn.

The config is reduced but real: four embedded series (the total, the ministry's semiconductors with
its leading cycle blend, China, the United States), every model family (Prophet included), two
backtest windows, the institutional comparison from 2023, 200 sample paths."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.flows.reduced_run import GOLDEN, SERIES, finish, published_csvs, start, write_config


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The reduced run twice, at once: n_jobs 1 (hash seed 1) and n_jobs 2 (hash seed 2)."""
    tmp = tmp_path_factory.mktemp("reruns")
    config = write_config(tmp)
    runs = {n: tmp / f"n_jobs_{n}" for n in (1, 2)}
    finish({n: start(folder, config, n, hash_seed=str(n)) for n, folder in runs.items()}, runs)
    return {n: folder / "outputs" for n, folder in runs.items()}


def _moved(one: dict[str, bytes], two: dict[str, bytes]) -> list[str]:
    """The CSVs whose bytes differ between two runs, each with its first differing line."""
    return [f"{name}: {_first_difference(one[name], two[name])}" for name in sorted(one) if one[name] != two[name]]


def test_the_comparison_sees_a_figure_that_moved() -> None:
    header = b"unique_id,forecast,description\n"
    one = {"forecast_annual.csv": header + b'total,710.160645,"{""aicc"": -624.1524853377309}"\n'}
    last_digit = {"forecast_annual.csv": header + b'total,710.160645,"{""aicc"": -624.1524853377308}"\n'}
    assert _moved(one, dict(one)) == []
    assert _moved(one, last_digit) == [
        "forecast_annual.csv: line 2: "
        '\'total,710.160645,"{""aicc"": -624.1524853377309}"\' -> '
        '\'total,710.160645,"{""aicc"": -624.1524853377308}"\''
    ]


@pytest.mark.slow
def test_two_runs_with_fresh_prefect_homes_and_other_n_jobs_publish_the_same_bytes(two_runs: dict[int, Path]) -> None:
    one, two = (published_csvs(two_runs[n]) for n in (1, 2))
    assert len(one) >= 10 and sorted(one) == sorted(two)
    moved = _moved(one, two)
    assert not moved, "\n".join(moved)
    # the runs forecast the four series, with the institutional comparison
    annual = pd.read_csv(two_runs[1] / "forecast_annual.csv")
    assert sorted(annual["unique_id"].unique()) == sorted(SERIES)
    assert len(pd.read_csv(two_runs[1] / "institutional_comparison.csv")) > 0
    # no timing in any published CSV: timings belong to run.json and MLflow
    for name, content in one.items():
        assert b"seconds" not in content, f"{name} carries a timing"


@pytest.mark.slow
def test_a_run_publishes_the_golden_csvs_to_the_byte(two_runs: dict[int, Path]) -> None:
    """Issue 21's bar: code that only restructures publishes what the commit that wrote
    tests/golden/ published (51be065, rewritten for the ARIMA fix of docs/decisions/0124), byte
    for byte. A commit that changes what a model computes rewrites the golden files
    (tests/flows/reduced_run.py)."""
    golden, published = published_csvs(GOLDEN), published_csvs(two_runs[1])
    assert sorted(published) == sorted(golden)
    moved = _moved(golden, published)
    assert not moved, "; ".join(moved)


def _first_difference(golden: bytes, published: bytes) -> str:
    for number, (old, new) in enumerate(zip(golden.decode().splitlines(), published.decode().splitlines()), 1):
        if old != new:
            return f"line {number}: {old[:160]!r} -> {new[:160]!r}"
    return f"{len(golden.splitlines())} lines -> {len(published.splitlines())} lines"


def test_the_golden_diff_names_the_line() -> None:
    assert _first_difference(b"a,b\n1,2\n", b"a,b\n1,3\n") == "line 2: '1,2' -> '1,3'"
    assert _first_difference(b"a\n1\n", b"a\n") == "2 lines -> 1 lines"
