"""``python -m models <command> --help`` is enough to use a command: every argument says
what it does, and an option's default is stated once (never "(default: None)")."""

from __future__ import annotations

import argparse
import importlib
import re

import pytest

from models.__main__ import COMMANDS


def command_parser(name: str) -> argparse.ArgumentParser:
    """The sub-parser a command's module adds, as ``python -m models`` adds it."""
    subparsers = argparse.ArgumentParser(prog="python -m models").add_subparsers()
    importlib.import_module(COMMANDS[name][0]).add_parser(subparsers)
    parser: argparse.ArgumentParser = subparsers.choices[name]
    return parser


def shown_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """An argument's help as --help prints it (with the default the formatter adds).
    argparse has no public way to list a parser's arguments; its ``_actions`` and the
    formatter's expansion are what ``format_help`` itself uses."""
    formatter = parser.formatter_class(prog=parser.prog)
    if not action.help:
        return ""
    return " ".join(formatter._expand_help(action).split())


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_argument_has_help(name: str) -> None:
    parser = command_parser(name)
    arguments = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert arguments, name
    missing = [a.dest for a in arguments if not shown_help(parser, a).strip()]
    assert not missing, f"{name}: no help for {missing}"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_defaults_are_stated_once_and_never_as_none(name: str) -> None:
    parser = command_parser(name)
    for action in parser._actions:
        text = shown_help(parser, action)
        assert "(default: None)" not in text, f"{name} {action.dest}: {text}"
        assert len(re.findall(r"\bdefault\b", text)) <= 1, f"{name} {action.dest}: {text}"
        if action.required:
            assert "default" not in text, f"{name} {action.dest} is required: {text}"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_prints_no_formatting_left_overs(name: str) -> None:
    text = command_parser(name).format_help()
    assert "%%" not in text and "%(" not in text
