"""docs/decisions/README.md lists every decision record, and every row links to a record that exists."""

from __future__ import annotations

import re
from pathlib import Path

DECISIONS = Path(__file__).resolve().parent.parent / "docs" / "decisions"
LINK = re.compile(r"^\| \[(\d{4})\]\((\d{4}-[^)]+\.md)\) \|", re.M)


def index_gaps(folder: Path) -> tuple[list[str], list[str]]:
    """(records the index does not list, index rows whose record is missing or misnumbered)."""
    rows = LINK.findall((folder / "README.md").read_text(encoding="utf-8"))
    listed = {name for _, name in rows}
    unlisted = sorted(p.name for p in folder.glob("[0-9][0-9][0-9][0-9]-*.md") if p.name not in listed)
    broken = sorted(name for number, name in rows if not (folder / name).exists() or not name.startswith(number))
    return unlisted, broken


def test_every_decision_record_is_in_the_index():
    assert index_gaps(DECISIONS) == ([], [])


def test_an_unlisted_record_and_a_dangling_row_are_found(tmp_path: Path):
    (tmp_path / "README.md").write_text("| [0001](0001-a.md) | a |\n| [0003](0002-b.md) | b |\n", encoding="utf-8")
    for name in ("0001-a.md", "0002-b.md", "0004-c.md"):
        (tmp_path / name).write_text("# x\n", encoding="utf-8")
    assert index_gaps(tmp_path) == (["0004-c.md"], ["0002-b.md"])
