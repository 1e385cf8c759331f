"""docs/outputs.md documents every column of every published table, in the schema's order."""

import re
from pathlib import Path

from flows.results import SCHEMAS

DOC = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"


def documented_columns(text: str) -> dict[str, list[str]]:
    """The column names of each `### `file.csv`` section's table, in order."""
    documented: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        if m := re.match(r"^### `(\w+\.csv)`", line):
            name = m.group(1)
            documented[name] = []
        elif line.startswith("#"):
            name = None
        elif name and (m := re.match(r"^\| `(\w+)` \|", line)):
            documented[name].append(m.group(1))
    return documented


def test_every_published_column_is_documented_in_order() -> None:
    documented = documented_columns(DOC.read_text(encoding="utf-8"))
    differences = [
        f"{table}: documented {documented.get(table)} != schema {list(schema.columns)}"
        for table, schema in SCHEMAS.items()
        if documented.get(table) != list(schema.columns)
    ]
    assert differences == []


def test_the_parser_sees_a_missing_column() -> None:
    text = "### `a.csv`\n\n| column | meaning |\n|---|---|\n| `x` | one |\n| `y` | two |\n## next\n| `z` | no |\n"
    assert documented_columns(text) == {"a.csv": ["x", "y"]}
