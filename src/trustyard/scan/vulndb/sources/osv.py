"""OSV records (https://ossf.github.io/osv-schema/, schema 1.x): one advisory per JSON document.

Reads what osv.dev publishes: single ``<ID>.json`` files, directories of them, and the per-ecosystem
``all.zip`` (the container handling is in ``inputs``). Every field the store and the matcher use is parsed
and checked here (pydantic models, private to this module); the record's bytes are kept verbatim as
``Advisory.raw``, so fields this parser does not model (references, credits, ``database_specific``) are not
lost. Unknown fields are ignored, as the schema allows new ones.

Tolerated, because real data has it: GIT ranges with short commit strings (seven PyPI records), ranges whose
events lack an ``introduced`` (the evaluator treats them as the schema's pseudo-code does). An ``affected``
entry without a ``package`` (GIT-only, matchable by no package name) is kept in ``raw`` but not indexed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trustyard.scan.vulndb.model import OSV_EVENTS, Advisory, Affected, Event, Range, Severity
from trustyard.scan.vulndb.sources.base import Document, utc_iso


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Event(_Wire):
    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None
    limit: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("introduced", "fixed", "last_affected", "limit") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"an event has exactly one of introduced/fixed/last_affected/limit, not {given}")
        return self

    def to_event(self) -> Event:
        for kind in OSV_EVENTS:
            value = getattr(self, kind.value)
            if value is not None:
                return Event(kind, value)
        raise AssertionError("unreachable: validated to hold one event")  # pragma: no cover


class _Range(_Wire):
    type: str = Field(min_length=1)
    repo: str | None = None
    events: list[_Event] = Field(min_length=1)


class _Package(_Wire):
    ecosystem: str = Field(min_length=1)
    name: str = Field(min_length=1)
    purl: str | None = None


class _Severity(_Wire):
    type: str
    score: str


class _Affected(_Wire):
    package: _Package | None = None
    ranges: list[_Range] = []
    versions: list[str] = []
    severity: list[_Severity] = []


class _Record(_Wire):
    id: str = Field(min_length=1)
    modified: str
    published: str | None = None
    withdrawn: str | None = None
    aliases: list[str] = []
    summary: str = ""
    details: str = ""
    severity: list[_Severity] = []
    affected: list[_Affected] = []

    @field_validator("modified", "published", "withdrawn")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return None if value is None else utc_iso(value)


def _severities(items: list[_Severity]) -> tuple[Severity, ...]:
    return tuple(Severity(s.type, s.score) for s in items)


def parse_record(raw: bytes, data: object) -> Advisory:
    """One OSV record (already JSON-decoded) as an ``Advisory``; pydantic's error if it is not one."""
    record = _Record.model_validate(data)
    affected = tuple(
        Affected(
            ecosystem=a.package.ecosystem,
            name=a.package.name,
            purl=a.package.purl,
            ranges=tuple(Range(r.type, tuple(e.to_event() for e in r.events), r.repo) for r in a.ranges),
            versions=tuple(a.versions),
            severity=_severities(a.severity),
        )
        for a in record.affected
        if a.package is not None
    )
    return Advisory(
        source=OsvSource.name,
        id=record.id,
        raw=raw,
        aliases=tuple(record.aliases),
        summary=record.summary,
        details=record.details,
        severity=_severities(record.severity),
        published=record.published,
        modified=record.modified,
        withdrawn=record.withdrawn,
        affected=affected,
    )


class OsvSource:
    """OSV records, as files, directories or osv.dev's per-ecosystem ``all.zip``."""

    name = "osv"

    def recognizes(self, data: object) -> bool:
        """An object with a string ``id`` and ``modified``: the two fields the schema requires."""
        return isinstance(data, dict) and isinstance(data.get("id"), str) and isinstance(data.get("modified"), str)

    def feed(self, document: Document) -> str:
        """One feed for all of OSV: its ids are unique across ecosystems."""
        return self.name

    def parse(self, document: Document) -> Iterator[Advisory]:
        """The one advisory the document holds."""
        yield parse_record(document.raw, document.data)
