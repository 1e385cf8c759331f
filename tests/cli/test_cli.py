"""The command line: every subcommand answers --help, and bad input gets the contract's message."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from exportcast.cli import app

runner = CliRunner()

SUBCOMMANDS = [[], ["data"], ["data", "build"], ["data", "summary"], ["validate"], ["backtest"], ["forecast"],
               ["run"], ["report"], ["serve"], ["models"]]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "exportcast")
def test_every_command_has_help(words):
    result = runner.invoke(app, [*words, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_validate_accepts_a_good_file(tmp_path):
    path = tmp_path / "good.csv"
    path.write_text("unique_id,ds,y\ntotal,2024-01,100\ntotal,2024-02,110\nitem:x,2024-01-01,5\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", "--input", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: 3 rows, 2 series, OK" in result.output
    assert "total: 2024-01..2024-02 (2 months)" in result.output


def test_validate_names_file_line_and_column_of_bad_input(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("unique_id,ds,y\ntotal,2024-01,100\ntotal,2024-13,110\ntotal,2024-03,-5\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", "--input", str(path)])
    assert result.exit_code == 2
    assert f"error: {path}: 2 problems found" in result.output
    assert "line 3, column ds: '2024-13' is not a month" in result.output
    assert "line 4" in result.output and "-5" in result.output


def test_validate_missing_file(tmp_path):
    result = runner.invoke(app, ["validate", "--input", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "nope.csv" in result.output


def test_models_lists_the_registry():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for name in ("seasonal_naive", "arima", "prophet", "ensemble"):
        assert name in result.output
