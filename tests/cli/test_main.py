"""The ``trustyard`` entry point: every command group is reachable, and ``--help`` describes each one truly
without importing it (``cli/__init__.py`` keeps the one-line helps so that starting a command is cheap)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from trustyard.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_group_loads_and_its_listed_help_is_its_own(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert isinstance(command, click.Command) and command.name == name
    assert COMMANDS[name][1] == command.get_short_help_str(limit=90)
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0 and result.output.startswith(f"Usage: main {name}")


def test_top_level_help_lists_every_group_and_unknown_commands_are_usage_errors() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line[:3].strip()]
    assert listed == list(COMMANDS)
    unknown = CliRunner().invoke(main, ["nope"])
    assert unknown.exit_code == 2 and "No such command 'nope'" in unknown.output


def test_help_imports_no_command_module() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom trustyard.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('trustyard.cli.')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip().splitlines()[-1] == "[]"
