"""Every command of the CLI answers ``--help`` (in-process, typer's CliRunner) with its one-line
description: the commands are walked from the typer app, sub-apps (``data``) included, so a new
command is covered without being listed here."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
import typer
import typer.main
from typer.testing import CliRunner

from exportcast.cli import app

runner = CliRunner()


def commands(cli: typer.Typer) -> Iterator[tuple[list[str], click.Command]]:
    """(words, command) of the app itself and of every command and sub-app below it."""

    def walk(command: click.Command, words: list[str]) -> Iterator[tuple[list[str], click.Command]]:
        yield words, command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, [*words, name])

    yield from walk(typer.main.get_command(cli), [])


def one_line(command: click.Command) -> str:
    """The first paragraph of the command's help, whitespace collapsed ('' when there is none)."""
    text = (command.help or command.short_help or "").strip().split("\n\n")[0]
    return " ".join(text.split())


def help_problems(cli: typer.Typer) -> list[str]:
    """What is wrong with ``<words> --help`` for every command of ``cli`` (empty when all answer)."""
    problems = []
    for words, command in commands(cli):
        name = " ".join(["exportcast", *words])
        description = one_line(command)
        if not description:
            problems.append(f"{name}: no description")
            continue
        result = runner.invoke(cli, [*words, "--help"], terminal_width=200)
        if result.exit_code != 0:
            problems.append(f"{name} --help: exit {result.exit_code}")
        elif description not in " ".join(result.output.split()):
            problems.append(f"{name} --help: the description {description!r} is not shown")
    return problems


def test_the_walk_finds_every_command():
    assert [" ".join(words) for words, _ in commands(app)] == [
        "",
        "backtest",
        "data",
        "data build",
        "data export",
        "data summary",
        "data update",
        "data vintages",
        "flash",
        "forecast",
        "models",
        "report",
        "run",
        "serve",
        "validate",
    ]


@pytest.mark.parametrize("words", [words for words, _ in commands(app)], ids=lambda w: " ".join(w) or "exportcast")
def test_every_command_answers_help_with_its_description(words):
    command = dict((tuple(w), c) for w, c in commands(app))[tuple(words)]
    result = runner.invoke(app, [*words, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert one_line(command) != ""
    assert one_line(command) in " ".join(result.output.split())


def test_a_command_without_description_is_named():
    toy = typer.Typer(help="A toy.")
    sub = typer.Typer()
    toy.add_typer(sub, name="group")

    @toy.command()
    def good() -> None:
        """Does a thing."""

    @sub.command()
    def silent() -> None:
        pass

    assert help_problems(toy) == ["exportcast group: no description", "exportcast group silent: no description"]
    sub.info.help = "A group."
    silent.__doc__ = "Says nothing."
    assert help_problems(toy) == []
