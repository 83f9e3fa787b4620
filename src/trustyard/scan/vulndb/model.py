"""Advisories as the store holds them: one typed shape for every source (OSV, Debian, Alpine, ...).

The shape is OSV's (https://ossf.github.io/osv-schema/), because OSV can express what the other sources say:
a Debian tracker entry "fixed in 2.5.0-1+deb12u5 for bookworm" is an ``ECOSYSTEM`` range ``introduced 0,
fixed 2.5.0-1+deb12u5`` for package ``expat`` in ecosystem ``Debian:12``; an Alpine secfix likewise. What OSV
has no field for (Debian's ``no-dsa``/``ignored``/``end-of-life`` states, its urgency) is kept in
``Affected.status`` and ``Affected.severity``. ``raw`` keeps the record as the source published it (for
OSV the exact bytes of the file), so nothing a later matcher needs is lost by this model.

Frozen dataclasses built by the source parsers (``sources/``); wire formats never travel past them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class RangeType(StrEnum):
    """OSV range types: how the events' versions are ordered."""

    SEMVER = "SEMVER"
    ECOSYSTEM = "ECOSYSTEM"
    GIT = "GIT"


class EventKind(StrEnum):
    """OSV range events, and ``introduced_after``: the NVD's ``versionStartExcluding``, which OSV cannot say."""

    INTRODUCED = "introduced"
    FIXED = "fixed"
    LAST_AFFECTED = "last_affected"
    LIMIT = "limit"
    INTRODUCED_AFTER = "introduced_after"


OSV_EVENTS = (EventKind.INTRODUCED, EventKind.FIXED, EventKind.LAST_AFFECTED, EventKind.LIMIT)
"""The event kinds an OSV record may hold."""


class Status(StrEnum):
    """A distribution's verdict on one package in one release, where the source gives one (Debian tracker).

    ``FIXED`` comes with a ``fixed`` event; the others leave the package affected at every version (``UNFIXED``,
    ``NO_DSA``, ``IGNORED``, ``POSTPONED``, ``END_OF_LIFE``, ``UNDETERMINED``) or at none (``NOT_AFFECTED``).
    """

    FIXED = "fixed"
    UNFIXED = "unfixed"
    NO_DSA = "no-dsa"
    IGNORED = "ignored"
    POSTPONED = "postponed"
    END_OF_LIFE = "end-of-life"
    UNDETERMINED = "undetermined"
    NOT_AFFECTED = "not-affected"


@dataclass(frozen=True, slots=True)
class Event:
    """One range event: ``introduced``/``fixed``/``last_affected``/``limit`` at a version (or git commit)."""

    kind: EventKind
    version: str


@dataclass(frozen=True, slots=True)
class Range:
    """An OSV range: its type (which ordering the events use), the events, and the repository of a GIT range.

    ``type`` is a plain string so that a range type newer than this code is kept and skipped with a reason,
    not refused.
    """

    type: str
    events: tuple[Event, ...]
    repo: str | None = None


@dataclass(frozen=True, slots=True)
class Severity:
    """A severity as published: a CVSS vector (``CVSS_V3``, ``CVSS_V4``), or a distribution's own word."""

    type: str
    score: str


@dataclass(frozen=True, slots=True)
class Affected:
    """One package an advisory affects: ecosystem (``PyPI``, ``Debian:12``), name, ranges and listed versions."""

    ecosystem: str
    name: str
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    purl: str | None = None
    status: Status | None = None
    severity: tuple[Severity, ...] = ()


@dataclass(frozen=True, slots=True)
class Advisory:
    """One advisory from one source. ``(source, id)`` identifies it in the store; ``aliases`` link sources.

    Times are ISO 8601 strings in UTC as the source gave them (``None`` when a source has no times);
    ``raw`` is the record as published (exact bytes for OSV files, the record's JSON for sources whose files
    hold many records).
    """

    source: str
    id: str
    raw: bytes
    aliases: tuple[str, ...] = ()
    summary: str = ""
    details: str = ""
    severity: tuple[Severity, ...] = ()
    published: str | None = None
    modified: str | None = None
    withdrawn: str | None = None
    affected: tuple[Affected, ...] = field(default=())
