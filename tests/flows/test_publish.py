from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows import publish as pub
from flows.publish import PublishError, publish, write_atomic
from flows.results import SchemaError, csv_bytes, format_table


def _tables(value: float = 1234567.891234567) -> dict[str, pd.DataFrame]:
    monthly = pd.DataFrame(
        {
            "unique_id": ["total", "total"],
            "ds": pd.to_datetime(["2025-02-01", "2025-01-01"]),
            "model": ["ets", "ets"],
            "forecast": [value, 2.0],
            "lo_80": [1.0, 1.5],
            "hi_80": [3.0, 2.5],
            "lo_95": [0.5, np.nan],
            "hi_95": [4.0, 3.0],
            "is_champion": [True, True],
        }
    )
    champions = pd.DataFrame(
        {
            "unique_id": ["total"],
            "champion": ["ets"],
            "reason": ["lowest mean MASE 0.500"],
            "n_windows": [2],
            "metric": ["mase"],
            "mean_score": ['{"ets": 0.5}'],
        }
    )
    return {"forecast_monthly.csv": monthly, "champions.csv": champions}


def test_csv_format_is_fixed_point_sorted_with_empty_gaps() -> None:
    text = csv_bytes(format_table("forecast_monthly.csv", _tables()["forecast_monthly.csv"])).decode()
    assert text == (
        "unique_id,ds,model,forecast,lo_80,hi_80,lo_95,hi_95,is_champion\n"
        "total,2025-01-01,ets,2.000000,1.500000,2.500000,,3.000000,True\n"
        "total,2025-02-01,ets,1234567.891235,1.000000,3.000000,0.500000,4.000000,True\n"
    )


def test_missing_and_extra_columns_are_named() -> None:
    with pytest.raises(SchemaError) as err:
        format_table("champions.csv", pd.DataFrame({"unique_id": ["total"], "champion": ["ets"]}))
    assert str(err.value) == (
        "champions.csv: missing column(s) ['reason', 'n_windows', 'metric', 'mean_score']; got ['unique_id', 'champion']"
    )
    with pytest.raises(SchemaError) as err:
        format_table("champions.csv", _tables()["champions.csv"].assign(fit_seconds=1.5))
    assert str(err.value) == (
        "champions.csv: column(s) ['fit_seconds'] are not in the published schema "
        "['unique_id', 'champion', 'reason', 'n_windows', 'metric', 'mean_score']"
    )
    with pytest.raises(SchemaError, match=r"^notes\.csv: not a published table; known: forecast_monthly\.csv, "):
        format_table("notes.csv", pd.DataFrame())


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_write_atomic_failure_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")

    def boom(src, dst):  # the rename fails (e.g. disk error)
        raise OSError("simulated replace failure")

    monkeypatch.setattr(pub.os, "replace", boom)
    with pytest.raises(OSError, match="simulated replace failure"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_publish_moves_every_file_in_place_run_json_last(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    seen = []

    def on_published(info):  # called once every other file is in place; returns the final run.json
        seen.append(sorted(p.name for p in out.iterdir()))
        return {**info, "registry": "moved"}

    paths = publish(
        _tables(),
        {"data_hash": "abc", "x": float("nan")},
        out,
        run_id="r1",
        finalize=lambda staging: (staging / "report.html").write_text("<html></html>"),
        on_published=on_published,
    )
    assert seen == [["champions.csv", "forecast_monthly.csv", "report.html"]]
    assert [p.name for p in paths] == ["champions.csv", "forecast_monthly.csv", "report.html", "run.json"]
    assert sorted(p.name for p in out.iterdir()) == ["champions.csv", "forecast_monthly.csv", "report.html", "run.json"]
    assert json.loads((out / "run.json").read_text()) == {"data_hash": "abc", "x": None, "registry": "moved"}
    assert (out / "champions.csv").read_text() == (
        'unique_id,champion,reason,n_windows,metric,mean_score\ntotal,ets,lowest mean MASE 0.500,2,mase,"{""ets"": 0.5}"\n'
    )


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_failure_while_staging_leaves_old_outputs_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "outputs"
    publish(_tables(1.0), {"run": 1}, out, run_id="old", finalize=lambda s: (s / "report.html").write_text("old"))
    before = _snapshot(out)

    calls = {"n": 0}
    real = pub.csv_bytes

    def fail_on_second(frame):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated failure while writing the second table")
        return real(frame)

    def never(info):
        raise AssertionError("on_published must not run when publishing failed")

    monkeypatch.setattr(pub, "csv_bytes", fail_on_second)
    with pytest.raises(RuntimeError, match="simulated failure while writing the second table"):
        publish(_tables(2.0), {"run": 2}, out, run_id="new", on_published=never)
    assert _snapshot(out) == before
    assert not list(out.glob(".staging-*"))


def test_failure_in_finalize_publishes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    publish(_tables(1.0), {"run": 1}, out, run_id="old")
    before = _snapshot(out)

    def broken_report(staging: Path) -> None:
        (staging / "report.html").write_text("half")
        raise ValueError("report failed")

    def never(info):
        raise AssertionError("on_published must not run when publishing failed")

    with pytest.raises(ValueError, match="report failed"):
        publish(_tables(2.0), {"run": 2}, out, run_id="new", finalize=broken_report, on_published=never)
    assert _snapshot(out) == before
    assert not list(out.glob(".staging-*"))


def test_stale_staging_is_removed_and_live_one_refused(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    stale = out / ".staging-crashed"
    stale.mkdir(parents=True)
    old = stale.stat().st_mtime - pub.STALE_STAGING_SECONDS - 10
    os.utime(stale, (old, old))
    live = out / ".staging-busy"
    live.mkdir()
    with pytest.raises(PublishError, match=f"staging folder {live} already exists"):
        publish(_tables(), {}, out, run_id="busy")
    assert not stale.exists()
    assert live.exists()  # a folder of a run in progress is not touched
