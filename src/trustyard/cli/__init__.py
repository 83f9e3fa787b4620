"""The ``trustyard`` command: one module per command group, loaded only when that group runs.

Exit codes (stable, for CI): 0 success, 1 a trustyard error (the message says what and why),
2 a usage error (bad option), 3 a check that found problems (used by scanning and auditing commands).

The groups pull in very different libraries (the web server, SBOM writers, the docker SDK, PKCS#11), and
importing all of them took seconds before any command could start: ``trustyard trust verify`` in a CI step
paid for the registry's web interface. So each group is named here with its one-line help, and its module
is imported when it is invoked (``tests/cli`` checks the help lines still match the commands).
"""

from __future__ import annotations

import importlib
from typing import Final

import click

from trustyard import __version__

COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "serve": (
        "trustyard.cli.serve",
        "Serve the OCI distribution API (docker, podman, skopeo, buildah, oras, crane push and...",
    ),
    "gc": (
        "trustyard.cli.gc",
        "Delete blobs no manifest references (and, with --delete-untagged, unreachable manifests).",
    ),
    "admin": (
        "trustyard.cli.admin",
        "Manage users, teams, projects, members, robot accounts and read the audit log.",
    ),
    "sbom": (
        "trustyard.cli.sbom",
        "Write the bill of materials of IMAGE: every package of every ecosystem, with purl, CPE,...",
    ),
    "scan": (
        "trustyard.cli.scan",
        "Find the known vulnerabilities of IMAGE's packages in the local vulnerability store.",
    ),
    "db": (
        "trustyard.cli.db",
        "The local vulnerability store: import advisory data, see what it holds, export it.",
    ),
    "bench": (
        "trustyard.cli.bench",
        "Check a Docker host, its daemon, containers and images against the CIS Docker Benchmark...",
    ),
    "authz": (
        "trustyard.cli.authz",
        "The Docker authorization plugin: refuse unsafe containers at the engine, fail closed.",
    ),
    "trust": (
        "trustyard.cli.trust",
        "Sign images and verify signatures (Docker Content Trust / Notary v1).",
    ),
}
"""Command name -> (module defining a click command of that name, its one-line help for ``--help``)."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use; ``--help`` lists them from ``COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The command names, in the order ``COMMANDS`` gives them."""
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the module of ``cmd_name`` and return its command (``None`` for an unknown name)."""
        found = COMMANDS.get(cmd_name)
        if found is None:
            return None
        command = getattr(importlib.import_module(found[0]), cmd_name)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section of ``--help`` without importing any command module."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, short) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="trustyard")
def main() -> None:
    """trustyard: a security-first container registry and container-security toolkit.

    Run `trustyard serve` to start the registry on an embedded default (SQLite metadata and blobs in a
    local folder); every setting can come from options, TRUSTYARD_* environment variables or a TOML
    file given with --config.
    """


__all__ = ["COMMANDS", "main"]
