"""``trustyard bench``: the CIS Docker Benchmark (and Dockle's image checkpoints) over a host, its daemon, its
containers and images, reported as docker-bench-security's users know it.

The command parses options into a ``BenchContext`` and a check selection, runs the checks and writes the
report; exit code 3 with ``--fail-on warn`` when any check warned (cli/common.py), 1 on a trustyard error
(an unknown check ID), 2 on a usage error. Inputs that are missing make INFO lines, not failures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trustyard.bench import BenchContext, run_checks, select
from trustyard.bench.layout import Engine, lookup_user
from trustyard.bench.report import Format, render
from trustyard.cli.common import EXIT_FINDINGS, handle_errors


@click.command()
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("/"),
    show_default=True,
    help="Root of the host's file system (audit rules, daemon files, /proc).",
)
@click.option(
    "--daemon-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The daemon's configuration file. [default: ROOT/etc/docker/daemon.json, or dockerd's --config-file]",
)
@click.option(
    "--dockerd-cmdline", metavar="CMDLINE", help="dockerd's command line. [default: read from the running dockerd]"
)
@click.option(
    "--docker-host",
    metavar="URL",
    help="Engine API to ask about containers (dockerd, rootless dockerd or podman system service). "
    "[default: DOCKER_HOST, the user's rootless socket, or unix:///var/run/docker.sock]",
)
@click.option(
    "--engine",
    "engine_kind",
    type=click.Choice([e.value for e in Engine]),
    help="Whose files sections 1 and 3 audit. [default: the engine running under ROOT/proc, else docker]",
)
@click.option(
    "--rootless",
    metavar="USER",
    help="The engine runs rootless as USER (name or uid in ROOT/etc/passwd): audit its files in that user's "
    "home and /run/user/UID. [default: recognised from the engine process's user]",
)
@click.option(
    "--image",
    "images",
    multiple=True,
    metavar="REF",
    help="Image for sections 4 and dockle (oci:DIR:TAG, docker-archive:FILE, rootfs:DIR ...); repeatable.",
)
@click.option(
    "--check", "include", multiple=True, metavar="ID", help="Run only these checks or sections (2.2, 5, dockle)."
)
@click.option("--exclude", multiple=True, metavar="ID", help="Skip these checks or sections.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in Format]),
    default=Format.TEXT.value,
    show_default=True,
    help="Report format.",
)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here, not stdout.")
@click.option("--fail-on", type=click.Choice(["warn"]), help="Exit with 3 when any check warns.")
@handle_errors
def bench(
    root: Path,
    daemon_json: Path | None,
    dockerd_cmdline: str | None,
    docker_host: str | None,
    engine_kind: str | None,
    rootless: str | None,
    images: tuple[str, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    fmt: str,
    output: Path | None,
    fail_on: str | None,
) -> None:
    """Check a Docker host, its daemon, containers and images against the CIS Docker Benchmark v1.6.0."""
    checks = select(include, exclude)
    if rootless is not None:
        lookup_user(root, rootless)  # a user the host does not have is a usage mistake, not an INFO per check
    context = BenchContext(
        root=root,
        daemon_json=daemon_json,
        dockerd_cmdline=dockerd_cmdline,
        docker_host=docker_host,
        images=images,
        engine_kind=Engine(engine_kind) if engine_kind else None,
        rootless_user=rootless,
    )
    report = run_checks(checks, context)
    text = render(report, Format(fmt))
    if output is not None:
        output.write_text(text)
    else:
        click.echo(text, nl=False)
    if fail_on == "warn" and report.has_warnings:
        sys.exit(EXIT_FINDINGS)
