"""collectors.cli's command table and the modules that define the commands agree: every line
names a module whose ``register()`` adds that command with the same help and aliases, and no
module adds a command the table does not list (``crashkit --help`` is built from the table
alone, without importing any of them)."""

from __future__ import annotations

import argparse
import importlib

import pytest

from collectors import cli


def _registered(module: str) -> dict[str, argparse.Action]:
    parser = argparse.ArgumentParser(prog="crashkit")
    sub = parser.add_subparsers(dest="command")
    importlib.import_module(module).register(sub)
    return {a.dest: a for a in sub._choices_actions}  # the help of each command, by name


@pytest.mark.parametrize("command", cli.COMMANDS, ids=lambda c: c.name)
def test_table_line_matches_its_module(command: cli.Command) -> None:
    actions = _registered(command.module)
    assert command.name in actions, f"{command.module}.register() adds no '{command.name}'"
    assert actions[command.name].help == command.help, "the table's help differs from the parser's"
    sub = argparse.ArgumentParser().add_subparsers()
    importlib.import_module(command.module).register(sub)
    aliases = {name for name, p in sub.choices.items() if p is sub.choices[command.name]} - {command.name}
    assert aliases == set(command.aliases)


def test_modules_add_only_listed_commands() -> None:
    listed = {c.name for c in cli.COMMANDS}
    for module in {c.module for c in cli.COMMANDS}:
        extra = set(_registered(module)) - listed
        assert not extra, f"{module} adds {sorted(extra)}: add a line to collectors.cli.COMMANDS"


def test_names_are_unique() -> None:
    names = [n for c in cli.COMMANDS for n in (c.name, *c.aliases)]
    assert len(names) == len(set(names))
