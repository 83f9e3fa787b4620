"""Import advisory data from a path into the store: read documents, pick each one's source, store in one go.

The glue between ``inputs`` (files, directories, zips), ``sources`` (formats) and ``store`` (one transaction),
used by ``trustyard db import`` and by tests. A named source (``--source``) is used for every document; without
one, each document's content decides. A single file in no known format is an error; in a directory such files
are skipped and listed in the report (a folder of advisory data often holds a README or a checksum list).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    forced: Source | None = source_named(source) if source else None
    data = Input(path, max_document_bytes=max_document_bytes)
    if total is not None:
        total(data.count())
    report = ImportReport()
    lenient = path.is_dir() and forced is None

    def items() -> Iterator[ImportItem]:
        for document in data.documents():
            try:
                chosen = forced or detect(document)
            except UnrecognizedSourceError:
                if not lenient:
                    raise
                report.skipped.append(document.origin)
            else:
                yield ImportItem(read_feed(chosen, document), None, document.time)
                for advisory in read_advisories(chosen, document):
                    yield ImportItem(advisory.source, advisory, document.time)
            if progress is not None:
                progress(1)

    store.import_advisories(items(), location=location or str(path), report=report)
    if not report.feeds and not report.skipped:
        raise VulnDbError(f"{location or path}: no advisory data found")
    return report
