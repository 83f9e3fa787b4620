"""The seam of advisory sources: one ``Source`` per published format, fed parsed documents, yielding advisories.

A source knows one format (OSV records, the Debian Security Tracker's JSON, Alpine's secdb): whether a
document is in it (``recognizes``, so that ``trustyard db import`` needs no ``--source`` for known data) and
how to turn it into ``Advisory`` objects (``parse``). It does no I/O: files, zip members and downloads are
``trustyard.scan.vulndb.inputs``' business, and storing is the store's.

Implementers write ``parse``; callers use ``read_advisories``, which guarantees the contract that only
``SourceFormatError`` escapes, naming the file or zip member (python-tuf's fetcher pattern).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import pydantic

from trustyard.scan.vulndb.errors import SourceFormatError
from trustyard.scan.vulndb.model import Advisory


@dataclass(frozen=True, slots=True)
class Document:
    """One JSON document as read: where from (``file`` or ``archive.zip!member``), its bytes, its parsed value.

    ``time`` is the file's or zip member's modification time (ISO 8601 UTC), the fallback for the data's age
    when the records carry no times of their own.
    """

    origin: str
    raw: bytes
    data: object
    time: str | None = None


class Source(Protocol):
    """One advisory format. ``name`` is what ``--source`` takes and what the store records as the source."""

    name: str

    def recognizes(self, data: object) -> bool:
        """Whether a parsed JSON document is in this source's format (cheap: look at the shape, not every field)."""
        ...

    def feed(self, document: Document) -> str:
        """The store's source name for this document's advisories (``osv``, ``alpine:v3.10-main``).

        Asked before ``parse``, so that a feed with no advisories at all is still recorded as imported.
        """
        ...

    def parse(self, document: Document) -> Iterator[Advisory]:
        """The advisories of one document; may raise library errors, which ``read_advisories`` converts."""
        ...


def _validation_summary(e: pydantic.ValidationError) -> str:
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "document"
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def read_feed(source: Source, document: Document) -> str:
    """``source.feed(document)`` with the contract enforced: only ``SourceFormatError`` escapes."""
    with _converted(source, document):
        return source.feed(document)
    raise AssertionError("unreachable: _converted re-raises")  # pragma: no cover


def read_advisories(source: Source, document: Document) -> Iterator[Advisory]:
    """``source.parse(document)`` with the contract enforced: only ``SourceFormatError`` escapes."""
    with _converted(source, document):
        yield from source.parse(document)


@contextlib.contextmanager
def _converted(source: Source, document: Document) -> Iterator[None]:
    try:
        yield
    except SourceFormatError:
        raise
    except pydantic.ValidationError as e:
        raise SourceFormatError(document.origin, f"not a valid {source.name} record: {_validation_summary(e)}") from e
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise SourceFormatError(document.origin, f"not a valid {source.name} record: {type(e).__name__}: {e}") from e


def utc_iso(value: str) -> str:
    """An RFC 3339 time as a sortable UTC string with microseconds (``2021-07-30T22:15:00.000000Z``)."""
    try:
        dt = datetime.fromisoformat(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"not an RFC 3339 time: {value!r}") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
