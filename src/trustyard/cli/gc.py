"""``trustyard gc``: garbage collection, safe to run while the registry serves pushes and pulls."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from trustyard.cli.common import data_options, handle_errors
from trustyard.config import load_settings
from trustyard.logs import configure
from trustyard.registry.app import create_registry
from trustyard.registry.gc import GarbageCollector


@click.command()
@data_options
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted.")
@click.option("--delete-untagged", is_flag=True, help="Also delete manifests no tag reaches (and their blobs).")
@click.option(
    "--grace-period",
    type=float,
    metavar="SECONDS",
    help="Never collect content used more recently than this. [env: TRUSTYARD_GC_GRACE_PERIOD; default: 3600]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def gc(
    config_file: Path | None,
    data_dir: Path | None,
    database_url: str | None,
    dry_run: bool,
    delete_untagged: bool,
    grace_period: float | None,
    as_json: bool,
) -> None:
    """Delete blobs no manifest references (and, with --delete-untagged, unreachable manifests).

    Runs online: pushes keep working while it runs, and content uploaded within the grace period is
    never collected, so an image being pushed right now is safe.
    """
    settings = load_settings(config_file, data_dir=data_dir, database_url=database_url, gc_grace_period=grace_period)
    configure("warning", "text")
    registry = create_registry(settings)
    collector = GarbageCollector(
        registry,
        grace_period=settings.gc_grace_period,
        delete_untagged=delete_untagged or settings.gc_delete_untagged,
        upload_expiry=settings.upload_expiry,
    )
    with Console(stderr=True).status("collecting garbage (pushes and pulls keep working)...", spinner="dots"):
        report = collector.run(dry_run=dry_run)
    registry.db.dispose()
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
        return
    table = Table(title="garbage collection" + (" (dry run: nothing deleted)" if dry_run else ""))
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("manifests", str(len(report.manifests)))
    table.add_row("blobs", str(len(report.blobs)))
    table.add_row("bytes freed" if not dry_run else "bytes to free", f"{report.bytes_freed:,}")
    table.add_row("expired uploads", str(report.uploads))
    table.add_row("orphan files", str(report.orphan_files))
    table.add_row("seconds", f"{report.seconds:.2f}")
    Console().print(table)
