"""``trustyard scan IMAGE``: the vulnerabilities of an image from the local store: table, JSON, SARIF, CycloneDX.

IMAGE is named as for ``trustyard sbom`` (``docker://HOST/REPO[:TAG]``, ``oci:DIR[:TAG]``, ``oci-archive:FILE``,
``docker-archive:FILE``, ``rootfs:PATH``, with the same ``--creds``/``--tls-verify``/``--platform``), and indexed
the same way, through the layer cache under ``<data dir>/scan-cache``. The components are matched against the
vulnerability store ``trustyard db`` fills (``--db``, or ``vulndb.sqlite`` in the data dir), then OpenVEX documents
(``--vex``) and an allowlist (``--allowlist``) mark findings. A warning says when the store is empty or its data is
older than ``--max-age``.

Exit codes: 0 done; 3 when ``--fail-on`` is given and a finding at or above it still counts after VEX and the
allowlist (whatever ``--severity`` shows: the gate is not narrowed by the display filter); 1 an error (one
line, no traceback); 2 a usage error.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trustyard.cli.common import EXIT_FINDINGS, handle_errors
from trustyard.cli.db import store_options
from trustyard.cli.sbom import _index, source_options
from trustyard.config import load_settings
from trustyard.scan.cache import DirectoryLayerCache
from trustyard.scan.findings import Finding, Level
from trustyard.scan.indexer import Indexer
from trustyard.scan.matcher import Matcher, worst
from trustyard.scan.sources import SourceOptions
from trustyard.scan.vex import apply, load_allowlist, load_openvex
from trustyard.scan.vulndb.store import SourceStatus, VulnerabilityStore, configured_path
from trustyard.scan.vulnreport import ScanReport, to_cyclonedx, to_json, to_sarif

FORMATS = ("table", "json", "sarif", "cyclonedx")
LEVELS = [lv.value for lv in Level]
_STYLE = {
    Level.CRITICAL: "bold red",
    Level.HIGH: "red",
    Level.MEDIUM: "yellow",
    Level.LOW: "cyan",
    Level.UNKNOWN: "dim",
}


def _max_age(value: str) -> timedelta:
    """``7d``, ``12h``, ``30m`` or a plain number of days."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhm]?)\s*", value)
    if m is None:
        raise click.BadParameter(f"{value!r}: give a number of days, or e.g. 7d, 12h, 30m")
    amount, unit = float(m.group(1)), m.group(2) or "d"
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[unit]


def _levels(value: str | None) -> frozenset[Level] | None:
    if value is None:
        return None
    try:
        return frozenset(Level(v.strip().lower()) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: a comma-separated list of {', '.join(LEVELS)}") from None


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def staleness_warnings(sources: list[SourceStatus], max_age: timedelta, now: datetime) -> list[str]:
    """A warning for an empty store, and one per source whose data (or, lacking a data time, import) is too old."""
    if not sources or all(s.advisories == 0 for s in sources):
        return ["the vulnerability store holds no advisories: nothing can be found (run `trustyard db import`)"]
    warnings = []
    for s in sources:
        stamp = s.data_time or s.imported_at
        when = _parse_time(stamp) if stamp else None
        if when is not None and now - when > max_age:
            days = (now - when).days
            warnings.append(f"advisory data of {s.source} is {days} days old ({stamp}); update it with `trustyard db`")
    return warnings


def _table(scan: ScanReport, shown: list[Finding]) -> Table:
    counted = [f for f in scan.findings if not f.is_suppressed]
    by_level = {lv: sum(1 for f in counted if f.severity is lv) for lv in Level}
    totals = ", ".join(f"{by_level[lv]} {lv.value}" for lv in reversed(Level) if by_level[lv])
    title = f"{escape(scan.index.source)}: {len(counted)} findings" + (f" ({totals})" if totals else "")
    table = Table(title=title)
    for column in ("package", "installed", "vulnerability", "severity", "status", "fixed in", "marked", "summary"):
        table.add_column(column)
    for f in shown:
        mark = "" if f.suppression is None else f.suppression.mark.value
        table.add_row(
            escape(f.component.name),
            escape(f.version),
            escape(f.id),
            f"[{_STYLE[f.severity]}]{f.severity.value}[/]",
            f.status.value,
            escape(", ".join(f.fixed_versions)),
            mark,
            escape(f.summary[:80]),
        )
    return table


@click.command()
@click.argument("image")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Report format.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout.")
@click.option(
    "--severity",
    metavar="LEVELS",
    help=f"Show only findings of these severities (comma-separated: {','.join(LEVELS)}).",
)
@click.option(
    "--fail-on",
    type=click.Choice(LEVELS, case_sensitive=False),
    help="Exit 3 if a finding at or above this severity remains after VEX and the allowlist.",
)
@click.option(
    "--vex",
    "vex_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OpenVEX JSON document marking findings not_affected or fixed (repeatable).",
)
@click.option(
    "--allowlist",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file of accepted advisory ids ([[accept]] id, package, expires, reason).",
)
@click.option(
    "--max-age",
    default=None,
    help="Warn when the store's data is older than this (7d, 12h, or days). [default: vulndb_max_age, 7d]",
)
@click.option("--no-cache", is_flag=True, help="Read every layer, and do not store what was read.")
@store_options
@source_options
@handle_errors
def scan(
    image: str,
    fmt: str,
    output: Path | None,
    severity: str | None,
    fail_on: str | None,
    vex_files: tuple[Path, ...],
    allowlist: Path | None,
    max_age: str | None,
    no_cache: bool,
    config_file: Path | None,
    data_dir: Path | None,
    db_path: Path | None,
    source: SourceOptions,
) -> None:
    """Find the known vulnerabilities of IMAGE's packages in the local vulnerability store.

    IMAGE is oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF] or rootfs:DIR|TAR.
    """
    shown_levels = _levels(severity)
    settings = load_settings(config_file, data_dir=data_dir)
    age = _max_age(max_age) if max_age is not None else timedelta(seconds=settings.vulndb_max_age)
    store_file = db_path or configured_path(settings)
    statements = [s for path in vex_files for s in load_openvex(path)]
    accepted = load_allowlist(allowlist) if allowlist else []
    err = Console(stderr=True)
    with VulnerabilityStore(store_file, create=False) as store:
        warnings = staleness_warnings(store.sources(), age, datetime.now(UTC))
        data_times = tuple((s.source, s.data_time) for s in store.sources())
        cache = None if no_cache else DirectoryLayerCache(settings.data_dir / "scan-cache", fsync=settings.fsync)
        index = _index(image, Indexer(cache=cache), err, source)
        result = Matcher(store).match(index.components)
    digest = str(index.manifest_digest) if index.manifest_digest else None
    applied = apply(result.findings, statements=statements, allowlist=accepted, image_digest=digest)
    warnings += applied.warnings
    report = ScanReport(index, applied.findings, result.notes, (*index.warnings, *warnings), data_times)
    shown = [f for f in report.findings if shown_levels is None or f.severity in shown_levels]
    filtered = ScanReport(report.index, tuple(shown), report.notes, report.warnings, report.data_times)
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for note in result.notes:
        err.print(f"[dim]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    if fmt == "table":
        console = Console(file=output.open("w", encoding="utf-8"), width=200) if output else Console()
        if not console.is_terminal:
            console.width = 200
        console.print(_table(report, shown))
        if output:
            console.file.close()
    else:
        text = {"json": to_json, "sarif": to_sarif, "cyclonedx": to_cyclonedx}[fmt](filtered)
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
    if fail_on is not None:
        top = worst(report.findings)
        if top is not None and top.at_least(Level(fail_on.lower())):
            err.print(f"[red]findings at or above {fail_on.lower()} remain (worst: {top.value})[/]", highlight=False)
            sys.exit(EXIT_FINDINGS)
