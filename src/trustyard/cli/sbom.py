"""``trustyard sbom IMAGE``: the bill of materials of an image, as CycloneDX, SPDX, trustyard JSON or a table.

IMAGE is named as skopeo names it (``docker://HOST/REPO[:TAG|@DIGEST]``, ``oci:DIR[:TAG]``,
``oci-archive:FILE``, ``docker-archive:FILE``) or ``rootfs:PATH``; ``source_options`` adds skopeo's
``--creds``, ``--authfile``, ``--tls-verify`` and ``--platform`` (shared with ``trustyard scan``). Layers are
looked up in the layer cache under ``<data dir>/scan-cache`` first, so a second run over an image (or another
image on the same base) reads only the layers it has not seen. The command parses options, calls the indexer
and a writer, and maps ``TrustyardError`` to exit code 1.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from trustyard.cli.common import handle_errors
from trustyard.config import load_settings
from trustyard.scan.cache import DirectoryLayerCache
from trustyard.scan.errors import SourceError
from trustyard.scan.indexer import Indexer, IndexReport, LayerSummary
from trustyard.scan.sbom import SbomFormat, render
from trustyard.scan.sources import Credentials, LayerRef, PlatformSpec, SourceOptions, open_source

FORMATS = [*(f.value for f in SbomFormat), "table"]
F = TypeVar("F", bound=Callable[..., Any])


def _parsed(parse: Callable[[str], Any]) -> Callable[[click.Context, click.Parameter, str | None], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        try:
            return None if value is None else parse(value)
        except SourceError as e:
            raise click.BadParameter(e.message) from None

    return callback


def source_options(f: F) -> F:
    """skopeo's options for reaching an image, passed to the command as one ``source: SourceOptions``."""

    @functools.wraps(f)
    def wrapper(
        *args: Any,
        creds: Credentials | None,
        authfile: Path | None,
        tls_verify: bool | None,
        platform: PlatformSpec | None,
        **kwargs: Any,
    ) -> Any:
        kwargs["source"] = SourceOptions(
            credentials=creds, authfile=authfile, tls_verify=tls_verify, platform=platform or PlatformSpec()
        )
        return f(*args, **kwargs)

    options = [
        click.option(
            "--creds",
            metavar="USER:PASSWORD",
            callback=_parsed(Credentials.parse),
            help="Registry credentials for docker:// images. [default: the login in the auth files]",
        ),
        click.option(
            "--authfile",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Auth file to read logins from. [default: $REGISTRY_AUTH_FILE, containers' auth.json, ~/.docker]",
        ),
        click.option(
            "--tls-verify",
            type=click.BOOL,
            default=None,
            help="--tls-verify=false: accept any certificate and plain HTTP (unsafe). "
            "[default: verify; a registry on localhost may also answer over HTTP]",
        ),
        click.option(
            "--platform",
            metavar="OS/ARCH[/VARIANT]",
            callback=_parsed(PlatformSpec.parse),
            help="Image to read from a multi-platform index. [default: linux/amd64]",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]  # the options replace the one ``source`` parameter


class _ProgressObserver:
    """A rich progress bar over the image's layers, on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def layer_started(self, ref: LayerRef, total: int) -> None:
        if self._task is None:
            self._task = self._progress.add_task("layers", total=total)
        digest = str(ref.digest or ref.diff_id or ref.location)
        self._progress.update(self._task, description=f"layer {ref.index + 1}/{total} {escape(digest[:19])}")

    def layer_done(self, summary: LayerSummary) -> None:
        if self._task is not None:
            self._progress.advance(self._task)


def _table(report: IndexReport) -> Table:
    table = Table(title=f"{escape(report.source)}: {len(report.components)} components, {len(report.files)} files")
    for column in ("type", "name", "version", "source package", "layer"):
        table.add_column(column)
    layers = {s.digest: s.index for s in report.layers}
    for c in report.components:
        source = f"{c.source_name} {c.source_version}" if c.source_name else ""
        layer = str(layers[c.layer]) if c.layer in layers else "-"
        table.add_row(c.type.value, escape(c.name), escape(c.version), escape(source), layer)
    return table


def _index(image: str, indexer: Indexer, console: Console, options: SourceOptions | None = None) -> IndexReport:
    source = open_source(image, options)
    try:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
            return indexer.index(source, _ProgressObserver(progress))
    finally:
        source.close()


@click.command()
@click.argument("image")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="cyclonedx-json (CycloneDX 1.6), spdx-json (SPDX 2.3), json (trustyard's own, with every file) or table.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder whose scan-cache/ keeps analysed layers. [env: TRUSTYARD_DATA_DIR; default: per-user data folder]",
)
@click.option("--no-cache", is_flag=True, help="Read every layer, and do not store what was read.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of settings. [env: TRUSTYARD_CONFIG]",
)
@source_options
@handle_errors
def sbom(
    image: str,
    fmt: str,
    output: Path | None,
    data_dir: Path | None,
    no_cache: bool,
    config_file: Path | None,
    source: SourceOptions,
) -> None:
    """Write the bill of materials of IMAGE: every package of every ecosystem, with purl, CPE, licenses and layer.

    IMAGE is docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]
    or rootfs:DIR|TAR.
    """
    settings = load_settings(config_file, data_dir=data_dir)
    cache = None if no_cache else DirectoryLayerCache(settings.data_dir / "scan-cache", fsync=settings.fsync)
    report = _index(image, Indexer(cache=cache), Console(stderr=True), source)
    if fmt == "table":
        console = Console(file=output.open("w", encoding="utf-8"), width=200) if output else Console()
        if not console.is_terminal:
            console.width = 200  # piped or written: no terminal to fit, so do not wrap names mid-word
        console.print(_table(report))
        for warning in report.warnings:
            Console(stderr=True).print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
        if output:
            console.file.close()
        return
    text = render(report, SbomFormat(fmt))
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
