"""The ``trustyard`` command: one module per command group, wired here explicitly.

Exit codes (stable, for CI): 0 success, 1 a trustyard error (the message says what and why),
2 a usage error (bad option), 3 a check that found problems (used by scanning and auditing commands).
"""

from __future__ import annotations

import click

from trustyard import __version__
from trustyard.cli.admin import admin
from trustyard.cli.authz import authz
from trustyard.cli.bench import bench
from trustyard.cli.db import db
from trustyard.cli.gc import gc
from trustyard.cli.sbom import sbom
from trustyard.cli.scan import scan
from trustyard.cli.serve import serve
from trustyard.cli.trust import trust


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="trustyard")
def main() -> None:
    """trustyard: a security-first container registry and container-security toolkit.

    Run `trustyard serve` to start the registry on an embedded default (SQLite metadata and blobs in a
    local folder); every setting can come from options, TRUSTYARD_* environment variables or a TOML
    file given with --config.
    """


main.add_command(serve)
main.add_command(gc)
main.add_command(admin)
main.add_command(sbom)
main.add_command(scan)
main.add_command(db)
main.add_command(bench)
main.add_command(authz)
main.add_command(trust)

__all__ = ["main"]
