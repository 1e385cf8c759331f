"""``exportcast data update`` against a real local HTTP mirror of the upstreams (tests/flows/upstream_mirror.py).

The mirror first serves the raw files cut at 2025-11 (the seed vintage of the data home), then the
full files (through 2025-12): the update adds exactly the month 2025-12 of every series. Each
failure (404, 500, a timeout, an HTML page, a truncated file, a month on which two sources
disagree) exits 2 with one line naming the upstream, the file and the check, and leaves the
active vintage as it was; a SIGKILL in the middle of an update leaves it intact too, and the next
update is not blocked by what the killed one left."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner
from upstream_mirror import Fault, Mirror, cut_raw, serve

from exportcast.cli import app
from features import upstreams as up
from features import vintages

REPO = Path(__file__).resolve().parents[2]
RAW = REPO.parent / "shared" / "data" / "raw"
CUT = "2025-11"
TRADE_INDUSTRY = "psicsh+Korea-trade-dashboard/trade_industry.csv"
COUNTRIES = "HwaniKimcloud+korea_export_dashboard/country_monthly.csv"
TOTAL_2025 = "HwaniKimcloud+korea_export_dashboard/korea_total_export_monthly.csv"
runner = CliRunner()

pytestmark = pytest.mark.skipif(not RAW.is_dir(), reason="needs ../shared/data/raw beside the checkout")


def write_config(folder: Path, base: str, **data: object) -> Path:
    config = {
        "data": {
            "source": "embedded",
            "home": str(folder / "home"),
            "raw": str(RAW),
            "upstream_base": base,
            "upstream_timeout": 1,
            "upstream_attempts": 2,
            "upstream_backoff": 0,
            **data,
        }
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def update(config: Path):
    return runner.invoke(app, ["data", "update", "--config", str(config)])


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` -> sha256 (what 'unchanged' means for a data home)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != vintages.LOCK
    }


def changed_upstream_files(a: Path, b: Path) -> int:
    return sum(1 for f in up.RAW_FILES if f.repo and (a / f.rel).read_bytes() != (b / f.rel).read_bytes())


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cut_raw(RAW, tmp_path_factory.mktemp("raw-cut") / "raw", CUT)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, cut: Path):
    """The data home through its two updates: the cut files (v0001), then the full files (v0002);
    a copy of the home as it was after v0001 is kept for the failure tests."""
    folder = tmp_path_factory.mktemp("update")
    mirror = Mirror(root=cut)
    server = serve(mirror)
    try:
        config = write_config(folder, mirror.base)
        first = update(config)
        after_first = folder / "home-v0001"
        shutil.copytree(folder / "home", after_first)
        mirror.root = RAW
        second = update(config)
        n_requests = len(mirror.requests)
        third = update(config)
        yield {
            "folder": folder,
            "config": config,
            "first": first,
            "second": second,
            "third": third,
            "after_first": after_first,
            "third_requests": mirror.requests[n_requests:],
        }
    finally:
        server.shutdown()


@pytest.mark.slow
def test_update_adds_exactly_the_new_months_as_a_second_vintage(history, cut: Path) -> None:
    home = history["folder"] / "home"
    seed_rows = 3575  # data/exports_monthly.csv: 44 series through 2025-12
    assert history["first"].exit_code == 0, history["first"].output
    assert history["first"].stdout.strip() == (
        f"new vintage v0001: data through {CUT} (was 2025-12), 0 rows added, 0 revised, 44 withdrawn; "
        f"{len(up.RAW_FILES)} raw files changed"
    )
    assert history["second"].exit_code == 0, history["second"].output
    assert history["second"].stdout.strip() == (
        f"new vintage v0002: data through 2025-12 (was {CUT}), 44 rows added, 0 revised; "
        f"{changed_upstream_files(cut, RAW)} raw files changed"
    )
    found = vintages.list_vintages(home)
    assert [v.id for v in found] == ["v0001", "v0002"]
    assert [v.data_through for v in found] == [CUT, "2025-12"]
    assert (found[1].rows_added, found[1].rows_revised, found[1].rows_removed) == (44, 0, 0)
    # the upstream files' sha256 are recorded, as served
    trade = found[1].upstreams[TRADE_INDUSTRY]
    assert trade["sha256"] == hashlib.sha256((RAW / TRADE_INDUSTRY).read_bytes()).hexdigest()
    assert trade["upstream"] == up.join_base(
        history["config"].read_text().split("upstream_base: ")[1].split()[0], TRADE_INDUSTRY
    )
    old, new = vintages.read(home, "v0001"), vintages.read(home)
    key = ["unique_id", "ds"]
    added = new.merge(old[key], on=key, how="left", indicator=True)
    added = added.loc[added["_merge"] == "left_only"]
    assert len(added) == 44 and set(added["ds"]) == {pd.Timestamp("2025-12-01")}
    assert set(added["unique_id"]) == set(new["unique_id"])
    # the full files rebuild the committed seed exactly; the cut vintage withdrew December vs the seed
    assert (found[1].data_dir / "exports_monthly.csv").read_bytes() == (
        REPO / "data" / "exports_monthly.csv"
    ).read_bytes()
    assert len(new) == seed_rows
    revised = vintages.revisions(home)
    assert len(revised) == 44 and set(revised["vintage"]) == {"v0001"} and revised["new"].isna().all()
    # read(as_of=...): a date before the second vintage gives the first
    assert vintages.vintage_at(home, found[1].created_at).id == "v0002"
    assert vintages.vintage_at(home, pd.Timestamp(found[0].created_at) - pd.Timedelta(seconds=1)).id == "seed"


@pytest.mark.slow
def test_second_update_with_nothing_new_does_nothing(history) -> None:
    home = history["folder"] / "home"
    assert history["third"].exit_code == 0, history["third"].output
    assert history["third"].stdout == "nothing new: every upstream is as in vintage v0002, data through 2025-12\n"
    assert [v.id for v in vintages.list_vintages(home)] == ["v0001", "v0002"]
    assert not (home / vintages.STAGING).exists()
    assert len(history["third_requests"]) == sum(1 for f in up.RAW_FILES if f.repo)


@pytest.mark.slow
def test_readers_and_export_read_the_active_vintage(history, tmp_path: Path) -> None:
    from flows.pipeline import ingest
    from flows.settings import load_settings
    from flows.update import active_data_dir

    settings = load_settings(history["config"])
    assert active_data_dir(settings) == history["folder"] / "home" / "vintages" / "v0002" / "data"
    assert f"{ingest.fn(settings.data)['ds'].max():%Y-%m}" == "2025-12"
    first = settings.updated("data", home=history["after_first"])
    assert f"{ingest.fn(first.data)['ds'].max():%Y-%m}" == CUT
    result = runner.invoke(
        app, ["data", "export", "--out", str(tmp_path / "export"), "--config", str(history["config"])]
    )
    assert result.exit_code == 0, result.output
    for name in ("exports_monthly.csv", "series.csv", "indicators_monthly.csv"):
        assert (tmp_path / "export" / name).read_bytes() == (active_data_dir(settings) / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == sorted(vintages.EXPORT_FILES)


def _truncated_mid_line() -> bytes:
    content = (RAW / TRADE_INDUSTRY).read_bytes()
    return content[: len(content) // 2]


def _truncated_rows() -> bytes:
    lines = (RAW / TRADE_INDUSTRY).read_bytes().splitlines(keepends=True)
    return b"".join(lines[: len(lines) // 2])


def _disagreeing_countries() -> tuple[bytes, int]:
    """country_monthly.csv with China's 2025-12 figure 1,000,000 USD higher: the country sum no
    longer equals the customs total that month."""
    lines = (RAW / COUNTRIES).read_bytes().decode("utf-8").splitlines(keepends=True)
    for i, line in enumerate(lines):
        cells = line.split(",")
        if cells[0] == "CN" and cells[2].startswith("2025-12"):
            cells[3] = str(int(float(cells[3])) + 1_000_000)
            lines[i] = ",".join(cells)
            break
    total = pd.read_csv(RAW / TOTAL_2025, dtype=str)
    december = int(float(total.loc[total["기준월"].str.startswith("2025-12"), "수출액_USD"].iloc[0]))
    return "".join(lines).encode("utf-8"), december


def _expected(kind: str, base: str) -> str:
    url = up.join_base(base, TRADE_INDUSTRY)
    where = f"{url} ({TRADE_INDUSTRY})"
    if kind == "404":
        return f"{where}: HTTP 404 Not Found"
    if kind == "500":
        return f"{where}: failed after 2 attempts (last: HTTP 500 Internal Server Error)"
    if kind == "timeout":
        return f"{where}: failed after 2 attempts (last: timed out after 1 s (ReadTimeout))"
    if kind == "html":
        return f"{where}: an HTML page, not the file (an error or login page?)"
    if kind == "truncated":
        return f"{where}: truncated: the last line has no line end"
    if kind == "truncated-rows":
        n = len((RAW / TRADE_INDUSTRY).read_bytes().splitlines()) // 2 - 1
        n_cut = len((RAW / TRADE_INDUSTRY).read_bytes().splitlines()) - 1 - 20  # the v0001 copy lacks 2025-12
        return f"{where}: truncated: {n} rows, the active vintage's copy has {n_cut}"
    _, december = _disagreeing_countries()
    return (
        f"{up.join_base(base, COUNTRIES)} ({COUNTRIES}), {up.join_base(base, TOTAL_2025)} ({TOTAL_2025}): "
        f"dataset check failed: total 2025-12: sum over all countries gives {december + 1_000_000} USD, "
        f"customs total gives {december} USD; difference +1000000 USD exceeds the tolerance of 0 USD"
    )


FAULTS = {
    "404": (TRADE_INDUSTRY, lambda: Fault(status=404)),
    "500": (TRADE_INDUSTRY, lambda: Fault(status=500)),
    "timeout": (TRADE_INDUSTRY, lambda: Fault(delay=2.5)),
    "html": (
        TRADE_INDUSTRY,
        lambda: Fault(
            body=b"<!DOCTYPE html>\n<html><body>Service unavailable</body></html>\n", content_type="text/html"
        ),
    ),
    "truncated": (TRADE_INDUSTRY, lambda: Fault(body=_truncated_mid_line())),
    "truncated-rows": (TRADE_INDUSTRY, lambda: Fault(body=_truncated_rows())),
    "disagree": (COUNTRIES, lambda: Fault(body=_disagreeing_countries()[0])),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(FAULTS))
def test_a_refused_update_exits_2_with_one_line_and_leaves_the_active_data(history, tmp_path: Path, kind: str) -> None:
    shutil.copytree(history["after_first"], tmp_path / "home")
    rel, fault = FAULTS[kind]
    mirror = Mirror(root=RAW, faults={rel: fault()})
    server = serve(mirror)
    try:
        config = write_config(tmp_path, mirror.base)
        before = tree_digest(tmp_path / "home")
        result = update(config)
    finally:
        server.shutdown()
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: update refused: {_expected(kind, mirror.base)}; the active data are "
        f"unchanged (vintage v0001, data through {CUT})\n"
    )
    assert tree_digest(tmp_path / "home") == before
    assert [v.id for v in vintages.list_vintages(tmp_path / "home")] == ["v0001"]


@pytest.mark.slow
def test_sigkill_during_an_update_leaves_the_active_vintage_and_no_blocking_debris(history, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(history["after_first"], home)
    slow = Fault(body=(RAW / TRADE_INDUSTRY).read_bytes(), delay=30)
    mirror = Mirror(root=RAW, faults={TRADE_INDUSTRY: slow})
    server = serve(mirror)
    try:
        config = write_config(tmp_path, mirror.base, upstream_timeout=60)
        before = tree_digest(home / "vintages")
        proc = subprocess.Popen(
            [sys.executable, "-m", "exportcast.cli", "data", "update", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 120
        while TRADE_INDUSTRY not in mirror.requests and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert TRADE_INDUSTRY in mirror.requests, proc.communicate()[1]
        assert any((home / vintages.STAGING).rglob("*.csv"))  # the killed update was staging files
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert tree_digest(home / "vintages") == before
        assert vintages.active(home).id == "v0001"
        mirror.faults.clear()
        result = update(config)
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("new vintage v0002: data through 2025-12 (was 2025-11), 44 rows added")
    assert not (home / vintages.STAGING).exists()


@pytest.mark.slow
def test_scheduled_run_with_nothing_new_says_so_and_publishes_nothing(history, capsys: pytest.CaptureFixture) -> None:
    from flows.flash import flash_nowcast
    from flows.pipeline import monthly_forecast

    outputs = history["folder"] / "outputs"
    outputs.mkdir(exist_ok=True)
    (outputs / "run.json").write_text('{"run_id": "r", "target_year": 2026, "vintage": "v0002"}\n')
    (outputs / "flash_run.json").write_text('{"run_id": "f", "vintage": "v0002"}\n')
    before = tree_digest(outputs)
    start = time.monotonic()
    assert monthly_forecast.fn(config_path=str(history["config"]), update=True) is None
    assert flash_nowcast.fn(config_path=str(history["config"]), update=True) is None
    assert time.monotonic() - start < 60
    line = (
        f"nothing new since the last run (vintage v0002, data through 2025-12): {outputs}'s published files are "
        "left as they were"
    )
    printed = capsys.readouterr().out.splitlines()
    assert (
        printed
        == ["[exportcast] update: nothing new: every upstream is as in vintage v0002, data through 2025-12", line] * 2
    )
    assert tree_digest(outputs) == before
