"""Import advisory data from a path into the store: read documents, pick each one's source, store in one go.

The glue between ``inputs`` (files, directories, zips), ``sources`` (formats) and ``store`` (one transaction),
used by ``trustyard db import`` and by tests. A named source (``--source``) is used for every document; without
one, each document's content decides. A single file in no known format is an error; in a directory such files
are skipped and listed in the report (a folder of advisory data often holds a README or a checksum list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from trustyard.scan.vulndb.errors import UnrecognizedSourceError, VulnDbError
from trustyard.scan.vulndb.inputs import DEFAULT_MAX_DOCUMENT_BYTES, Input
from trustyard.scan.vulndb.sources import Source, detect, read_advisories, read_feed, source_named
from trustyard.scan.vulndb.store import ImportItem, ImportReport, VulnerabilityStore

Progress = Callable[[int], None]


def import_path(
    store: VulnerabilityStore,
    path: Path,
    *,
    source: str | None = None,
    location: str | None = None,
    progress: Progress | None = None,
    total: Callable[[int], None] | None = None,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
) -> ImportReport:
    """Import every document under ``path``; ``location`` (a URL, say) is what provenance records.

    ``total`` is told the number of documents before reading starts and ``progress`` is told each one done,
    for a progress bar. Raises a ``VulnDbError`` (and changes nothing) for bad data.
    """
    return import_paths(
        store,
        [(path, location or str(path))],
        source=source,
        progress=progress,
        total=total,
        max_document_bytes=max_document_bytes,
    )


def import_paths(
    store: VulnerabilityStore,
    paths: Sequence[tuple[Path, str]],
    *,
    source: str | None = None,
    progress: Progress | None = None,
    total: Callable[[int], None] | None = None,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
) -> ImportReport:
    """Import several (path, location) pairs in one transaction: all of them, or (on any error) none.

    ``db update`` imports what it downloaded from every source this way, so that a bad file of one source
    leaves the whole store as it was.
    """
    forced: Source | None = source_named(source) if source else None
    inputs = [(Input(path, max_document_bytes=max_document_bytes), path, where) for path, where in paths]
    if total is not None:
        total(sum(data.count() for data, _, _ in inputs))
    report = ImportReport()

    def items() -> Iterator[ImportItem]:
        for data, path, where in inputs:
            lenient = path.is_dir() and forced is None
            for document in data.documents():
                try:
                    chosen = forced or detect(document)
                except UnrecognizedSourceError:
                    if not lenient:
                        raise
                    report.skipped.append(document.origin)
                else:
                    yield ImportItem(read_feed(chosen, document), None, document.time, where)
                    for advisory in read_advisories(chosen, document):
                        yield ImportItem(advisory.source, advisory, document.time, where)
                if progress is not None:
                    progress(1)

    where = paths[0][1] if len(paths) == 1 else ", ".join(w for _, w in paths)
    store.import_advisories(items(), location=where, report=report)
    if not report.feeds and not report.skipped:
        raise VulnDbError(f"{where}: no advisory data found")
    return report
