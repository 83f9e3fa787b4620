"""``trustyard db``: the local vulnerability store: import advisory data, show what it holds, export it.

The store is the ``vulndb_path`` setting, else ``<data dir>/vulndb.sqlite``, unless ``--db`` names another file;
``trustyard scan`` and the registry read the same one. Commands parse options, call the vulnerability store
(``trustyard.scan.vulndb``) and print a table or, with ``--json``, the report as JSON; a ``TrustyardError`` is
one line on stderr and exit code 1. An import that adds or changes advisories in the store of a registry on this
machine re-checks the registry's stored images before returning (``scan.recheck.recheck_after_import``; a
running registry would within its ``scan_recheck_interval``, and the two never both take the same import).
``db update`` downloads every configured source from its public location (``scan.vulndb.update``) and imports
it the same way, with a progress bar on a terminal. ``db push``/``db pull`` move the whole store through an OCI
registry as an artifact (``scan.vulndb.artifact``), for machines without internet access.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from trustyard.cli.common import handle_errors
from trustyard.config import load_settings
from trustyard.scan.recheck import RecheckResult, recheck_after_import
from trustyard.scan.vulndb.artifact import pull as pull_artifact
from trustyard.scan.vulndb.artifact import push as push_artifact
from trustyard.scan.vulndb.download import download, is_url
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.sources import SOURCES
from trustyard.scan.vulndb.store import ImportReport, VulnerabilityStore, configured_path
from trustyard.scan.vulndb.transport import Reference, RegistryClient
from trustyard.scan.vulndb.update import FEED_NAMES, update_status
from trustyard.scan.vulndb.update import update as run_update

P = ParamSpec("P")
R = TypeVar("R")


def store_options(f: Callable[P, R]) -> Callable[P, R]:
    """``--config``, ``--data-dir`` and ``--db``: where the vulnerability store is."""
    f = click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The vulnerability store file. [default: vulndb.sqlite in the data dir]",
    )(f)
    f = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder holding the vulnerability store. [env: TRUSTYARD_DATA_DIR; default: per-user data folder]",
    )(f)
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML file of settings. [env: TRUSTYARD_CONFIG]",
    )(f)


def _store_path(config_file: Path | None, data_dir: Path | None, db_path: Path | None) -> tuple[Path, Path]:
    """(store file, data dir): ``--db`` wins over the configured store (``vulndb_path``, else the data dir's)."""
    settings = load_settings(config_file, data_dir=data_dir)
    return (db_path or configured_path(settings)), settings.data_dir


def _stdout() -> Console:
    """The console for tables: as wide as the terminal, or 200 columns when piped (no terminal to fit)."""
    console = Console()
    if not console.is_terminal:
        console.width = 200
    return console


@click.group()
def db() -> None:
    """The local vulnerability store: import advisory data, see what it holds, export it."""


def _import_table(report: ImportReport, store: Path) -> Table:
    table = Table(title=f"imported into {escape(str(store))}")
    for column in ("source", "records", "added", "changed", "unchanged", "older (kept newer)", "data time"):
        table.add_column(column, justify="left" if column in ("source", "data time") else "right")
    for feed in report.feeds.values():
        table.add_row(
            escape(feed.source),
            f"{feed.records:,}",
            f"{len(feed.added):,}",
            f"{len(feed.changed):,}",
            f"{feed.unchanged:,}",
            f"{feed.older:,}",
            feed.data_time or "-",
        )
    return table


@db.command("import")
@click.argument("location")
@click.option(
    "--source",
    type=click.Choice(sorted(s.name for s in SOURCES)),
    help="The data's format; by default recognised from the content.",
)
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON, with the added and changed ids.")
@handle_errors
def import_(
    location: str,
    source: str | None,
    config_file: Path | None,
    data_dir: Path | None,
    db_path: Path | None,
    as_json: bool,
) -> None:
    """Import advisories from LOCATION: a file, a directory, a zip (osv.dev's all.zip) or an HTTP(S) URL.

    Re-importing is cheap and safe: an advisory that is not newer than the stored one changes nothing, and
    a malformed record anywhere leaves the store as it was.
    """
    settings = load_settings(config_file, data_dir=data_dir)
    store_file, data = (db_path or configured_path(settings)), settings.data_dir
    console = Console(stderr=True)
    downloaded: Path | None = None
    try:
        if is_url(location):
            with console.status(f"downloading {escape(location)}", spinner="dots"):
                downloaded = download(location, data / "downloads")
            path = downloaded
        else:
            path = Path(location)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with (
            VulnerabilityStore(store_file) as store,
            Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress,
        ):
            task = progress.add_task("importing", total=None)
            report = import_path(
                store,
                path,
                source=source,
                location=location if downloaded else str(path.resolve()),
                total=lambda n: progress.update(task, total=n),
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
    # the registry's stored images are re-checked now (a running registry would within scan_recheck_interval)
    rechecked = recheck_after_import(settings, store_file) if report.added or report.changed else None
    if as_json:
        click.echo(json.dumps({"store": str(store_file), **report.as_dict()}, indent=2))
    else:
        _stdout().print(_import_table(report, store_file))
        for skipped in report.skipped:
            console.print(f"[yellow]skipped (no known format):[/] {escape(skipped)}", highlight=False)
    _print_recheck(console, rechecked)


def _print_recheck(console: Console, rechecked: RecheckResult | None) -> None:
    if rechecked is not None:
        console.print(
            f"re-checked {rechecked.inventories} stored images: {len(rechecked.changes)} with changed findings",
            highlight=False,
        )


class _Amount(ProgressColumn):
    """Bytes for a download's bar, documents for the import's."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes, self._count = DownloadColumn(), MofNCompleteColumn()

    def render(self, task: Task) -> RenderableType:
        """Whichever the task counts."""
        return (self._bytes if task.fields.get("bytes") else self._count).render(task)


class _Bars:
    """Download progress for ``db update``: one bar per file, in bytes (hidden when not on a terminal)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, url: str, total: int | None) -> None:
        """A bar for the new file; the previous one is complete."""
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(
            escape(url.rsplit("/", 2)[-2] + "/" + url.rsplit("/", 1)[-1]), total=total, bytes=True
        )

    def advance(self, size: int) -> None:
        """More bytes arrived."""
        if self.task is not None:
            self.progress.advance(self.task, size)


@db.command()
@click.option(
    "--source",
    "feeds",
    multiple=True,
    type=click.Choice(FEED_NAMES),
    help="Only this source (repeatable). [default: the vulndb_sources setting: all of them]",
)
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def update(
    feeds: tuple[str, ...], config_file: Path | None, data_dir: Path | None, db_path: Path | None, as_json: bool
) -> None:
    """Download every configured source from its public location and import it (only what changed).

    OSV's per-ecosystem zips, the NVD API, the Debian tracker and Alpine's secdb; the URLs are settings
    (vulndb_*_url). Everything is downloaded before anything is imported: a failed or cut download, or bad
    data, leaves the store as it was.
    """
    settings = load_settings(config_file, data_dir=data_dir)
    store_file = db_path or configured_path(settings)
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), _Amount(), TransferSpeedColumn())
    with (
        VulnerabilityStore(store_file) as store,
        Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress,
    ):
        importing: list[TaskID] = []

        def total(n: int) -> None:
            importing.append(progress.add_task("importing", total=n))

        result = run_update(
            store,
            settings,
            feeds=feeds or None,
            staging=settings.data_dir / "downloads",
            reporter=_Bars(progress),
            import_total=total,
            import_progress=lambda n: progress.advance(importing[-1], n),
        )
    report = result.report
    rechecked = recheck_after_import(settings, store_file) if report and (report.added or report.changed) else None
    if as_json:
        body = {
            "store": str(store_file),
            "downloads": {
                name: {"downloaded": [url for _, url in f.files], "not_modified": f.not_modified}
                for name, f in result.feeds.items()
            },
            **(report.as_dict() if report else {"feeds": [], "skipped": []}),
        }
        click.echo(json.dumps(body, indent=2))
    else:
        for name, fetched in result.feeds.items():
            console.print(
                f"{name}: {len(fetched.files)} downloaded, {len(fetched.not_modified)} not modified", highlight=False
            )
        if report is not None:
            _stdout().print(_import_table(report, store_file))
    _print_recheck(console, rechecked)


@db.command()
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@handle_errors
def status(config_file: Path | None, data_dir: Path | None, db_path: Path | None, as_json: bool) -> None:
    """What the store holds: per source, advisories and package entries, where from, and how old the data is."""
    store_file, _ = _store_path(config_file, data_dir, db_path)
    with VulnerabilityStore(store_file, create=False) as store:
        sources = store.sources()
        counts = store.counts()
        version = store.schema_version
        updates = list(update_status(store))
    if as_json:
        body = {
            "store": str(store_file),
            "schema_version": version,
            "counts": counts,
            "sources": [
                {
                    "source": s.source,
                    "advisories": s.advisories,
                    "withdrawn": s.withdrawn,
                    "affected": s.affected,
                    "location": s.location,
                    "data_time": s.data_time,
                    "imported_at": s.imported_at,
                }
                for s in sources
            ],
            "updates": updates,
        }
        click.echo(json.dumps(body, indent=2))
        return
    table = Table(title=f"{escape(str(store_file))} (schema {version}): {counts['advisories']:,} advisories")
    for column in ("source", "advisories", "withdrawn", "packages", "data time", "imported", "from"):
        table.add_column(column, justify="right" if column in ("advisories", "withdrawn", "packages") else "left")
    for s in sources:
        table.add_row(
            escape(s.source),
            f"{s.advisories:,}",
            f"{s.withdrawn:,}",
            f"{s.affected:,}",
            s.data_time or "-",
            s.imported_at,
            escape(s.location),
        )
    _stdout().print(table)
    if updates:
        checks = Table(title="last `trustyard db update`")
        for column in ("source", "checked", "downloaded", "not modified"):
            checks.add_column(column)
        for u in updates:
            checks.add_row(
                escape(str(u["source"])),
                str(u["checked_at"]),
                escape("\n".join(map(str, u["downloaded"]))) or "-",  # type: ignore[call-overload]
                escape("\n".join(map(str, u["not_modified"]))) or "-",  # type: ignore[call-overload]
            )
        _stdout().print(checks)


@db.command()
@store_options
@click.option(
    "--source", "feed", metavar="SOURCE", help="Only this source (as `db status` names it: osv, debian, ...)."
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout.")
@handle_errors
def export(
    config_file: Path | None, data_dir: Path | None, db_path: Path | None, feed: str | None, output: Path | None
) -> None:
    """Write every stored advisory as JSON Lines: source, id, times, and the record as its source published it."""
    store_file, _ = _store_path(config_file, data_dir, db_path)
    with VulnerabilityStore(store_file, create=False) as store:
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            for record in store.export(feed):
                out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        finally:
            if output:
                out.close()


def _registry_options(f: Callable[P, R]) -> Callable[P, R]:
    """``--creds``, ``--plain-http`` and ``--tls-verify``: how to reach the registry."""
    f = click.option(
        "--tls-verify/--no-tls-verify", default=True, help="Verify the registry's certificate. [default: verify]"
    )(f)
    f = click.option("--plain-http", is_flag=True, help="Speak HTTP, not HTTPS (a registry on this machine).")(f)
    return click.option(
        "--creds",
        metavar="USER[:PASSWORD]",
        envvar="TRUSTYARD_REGISTRY_CREDS",
        help="Log in to the registry as USER. [env: TRUSTYARD_REGISTRY_CREDS]",
    )(f)


def _client(reference: str, actions: str, creds: str | None, plain_http: bool, tls_verify: bool) -> RegistryClient:
    user, _, password = (creds or "").partition(":")
    return RegistryClient(
        Reference.parse(reference),
        actions=actions,
        username=user or None,
        password=password or None,
        plain_http=plain_http,
        verify=tls_verify,
    )


@db.command()
@click.argument("reference", metavar="REGISTRY/REPO:TAG")
@_registry_options
@store_options
@handle_errors
def push(
    reference: str,
    creds: str | None,
    plain_http: bool,
    tls_verify: bool,
    config_file: Path | None,
    data_dir: Path | None,
    db_path: Path | None,
) -> None:
    """Push the store to a registry as an OCI artifact (application/vnd.trustyard.vulndb.v1), for `db pull`."""
    store_file, _ = _store_path(config_file, data_dir, db_path)
    with _client(reference, "pull,push", creds, plain_http, tls_verify) as client:
        moved = push_artifact(store_file, client)
    click.echo(
        f"pushed {store_file} to {reference}: {moved.digest} ({moved.compressed:,} bytes, {moved.size:,} unpacked)"
    )


@db.command()
@click.argument("reference", metavar="REGISTRY/REPO:TAG")
@_registry_options
@store_options
@handle_errors
def pull(
    reference: str,
    creds: str | None,
    plain_http: bool,
    tls_verify: bool,
    config_file: Path | None,
    data_dir: Path | None,
    db_path: Path | None,
) -> None:
    """Replace the store with one pushed by `db push`, after checking its digest (nothing changes otherwise)."""
    store_file, _ = _store_path(config_file, data_dir, db_path)
    with _client(reference, "pull", creds, plain_http, tls_verify) as client:
        moved = pull_artifact(client, store_file)
    click.echo(f"pulled {reference} ({moved.digest}) into {store_file}: {moved.size:,} bytes")
    for source, data_time in sorted(moved.sources.items()):
        click.echo(f"  {source}: data of {data_time or 'unknown time'}")
    # a registry on this machine using this store matches its stored images against the new data now
    _print_recheck(
        Console(stderr=True), recheck_after_import(load_settings(config_file, data_dir=data_dir), store_file)
    )
