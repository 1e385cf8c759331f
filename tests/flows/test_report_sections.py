"""The report's drawn sections kept by the content of what they read (flows/report_sections.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from flows.report import _DRAWN, load_inputs, render_report
from flows.report_sections import KEEP, Recorder, SectionCache, code_version, digest, record
from tests.flows.test_report import write_dataset, write_outputs


@dataclasses.dataclass
class _Run:
    target_year: int
    run_id: str


@dataclasses.dataclass
class _Inputs:
    monthly: pd.DataFrame
    archive: pd.DataFrame | None
    run: _Run | None
    notes: dict


def _inputs(**change) -> _Inputs:
    base = _Inputs(
        monthly=pd.DataFrame({"unique_id": ["total", "total"], "forecast": [1.0, 2.0]}),
        archive=pd.DataFrame({"run_id": ["a"]}),
        run=_Run(2026, "run-1"),
        notes={"dataset": "embedded"},
    )
    return dataclasses.replace(base, **change)


def _monthly_and_year(inputs) -> str:
    """A section: reads the monthly table and the run's target year, nothing else."""
    return f"{inputs.run.target_year}: {inputs.monthly['forecast'].sum()}"


def test_the_recorder_notes_every_name_read_and_the_run_as_present():
    html, reads = record(_monthly_and_year, _inputs())
    assert html == "2026: 3.0"
    assert reads == ["monthly", "run.target_year", "run?"]


def test_a_missing_run_is_read_as_none():
    def section(inputs) -> str:
        return "no run" if inputs.run is None else str(inputs.run.target_year)

    assert record(section, _inputs(run=None)) == ("no run", ["run"])


def test_a_section_may_not_set_an_input():
    def section(inputs) -> str:
        inputs.monthly = None
        return ""

    with pytest.raises(AttributeError, match="a drawn report section may not set monthly: it would not be recorded"):
        record(section, _inputs())


def test_hit_when_what_was_read_is_the_same_whatever_else_changed(tmp_path: Path):
    cache = SectionCache(tmp_path, "v1")
    html, reads = record(_monthly_and_year, _inputs())
    cache.put("s", _inputs(), html, reads)
    # the archive, the run id and the notes were not read: a new run with them changed is a hit
    rerun = _inputs(archive=pd.DataFrame({"run_id": ["a", "b"]}), run=_Run(2026, "run-2"), notes={})
    assert cache.get("s", rerun) == "2026: 3.0"


@pytest.mark.parametrize(
    "change",
    [
        {"monthly": pd.DataFrame({"unique_id": ["total", "total"], "forecast": [1.0, 2.0000000001]})},
        {"monthly": pd.DataFrame({"unique_id": ["total", "x"], "forecast": [1.0, 2.0]})},
        {"monthly": pd.DataFrame({"unique_id": ["total", "total"], "forecast": [1.0, 2.0]}, index=[5, 6])},
        {"monthly": pd.DataFrame({"unique_id": ["total", "total"], "value": [1.0, 2.0]})},
        {"run": _Run(2027, "run-1")},
        {"run": None},
    ],
    ids=["a-value", "a-label", "the-index", "a-column-name", "the-year", "no-run"],
)
def test_miss_when_a_value_read_changed(tmp_path: Path, change):
    cache = SectionCache(tmp_path, "v1")
    html, reads = record(_monthly_and_year, _inputs())
    cache.put("s", _inputs(), html, reads)
    assert cache.get("s", _inputs(**change)) is None


def test_another_code_version_starts_afresh(tmp_path: Path):
    html, reads = record(_monthly_and_year, _inputs())
    SectionCache(tmp_path, "v1").put("s", _inputs(), html, reads)
    assert SectionCache(tmp_path, "v2").get("s", _inputs()) is None
    assert len(code_version()) == 32


def test_a_value_the_digest_cannot_read_is_never_kept(tmp_path: Path):
    cache = SectionCache(tmp_path, "v1")
    odd = _inputs(notes={"dataset": object()})
    cache.put("s", odd, "html", ["notes"])
    assert cache.get("s", odd) is None
    assert not (tmp_path / "v1" / "s.json").exists()


def test_at_most_keep_entries_per_section_newest_first(tmp_path: Path):
    cache = SectionCache(tmp_path, "v1")
    for year in range(2020, 2020 + KEEP + 2):
        inputs = _inputs(run=_Run(year, "r"))
        cache.put("s", inputs, f"year {year}", record(_monthly_and_year, inputs)[1])
    entries = json.loads((tmp_path / "v1" / "s.json").read_text())
    assert len(entries) == KEEP
    assert len(list((tmp_path / "v1").glob("s-*.html"))) == KEEP
    assert cache.get("s", _inputs(run=_Run(2020 + KEEP + 1, "r"))) == f"year {2020 + KEEP + 1}"
    assert cache.get("s", _inputs(run=_Run(2021, "r"))) is None  # the oldest went first
    assert digest(_inputs(), ["run.target_year"]) == digest(_inputs(run=_Run(2026, "other")), ["run.target_year"])


def test_the_report_from_the_cache_is_the_same_to_the_byte(tmp_path: Path):
    """The report's own sections: drawn and kept, then every drawn section taken from the cache;
    the same HTML as the report drawn without a cache. A changed forecast redraws the fans."""
    inputs = load_inputs(write_outputs(tmp_path / "outputs"), write_dataset(tmp_path / "data"))
    alone = render_report(inputs)
    cache = SectionCache(tmp_path / "cache", code_version())
    assert render_report(inputs, cache=cache) == alone
    kept = {path.stem for path in (tmp_path / "cache" / cache.version).glob("*.json")}
    assert kept == {section.__name__ for section in _DRAWN}
    for section in _DRAWN:
        assert cache.get(section.__name__, inputs) is not None
    assert render_report(inputs, cache=cache) == alone

    inputs.monthly = inputs.monthly.assign(forecast=inputs.monthly["forecast"] * 1.5)
    assert cache.get("_section_fans", inputs) is None
    assert render_report(inputs, cache=cache) == render_report(inputs)


def test_the_recorder_wraps_only_the_run():
    recorder = Recorder(_inputs())
    assert isinstance(recorder.run, Recorder)
    assert isinstance(recorder.notes, dict)
    assert sorted(recorder.reads) == ["notes", "run?"]


def test_a_cache_folder_that_cannot_be_written_never_fails_the_report(tmp_path: Path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    inputs = load_inputs(write_outputs(tmp_path / "outputs"), write_dataset(tmp_path / "data"))
    cache = SectionCache(blocked, code_version())
    assert render_report(inputs, cache=cache) == render_report(inputs)
    assert cache.get("_section_fans", inputs) is None
