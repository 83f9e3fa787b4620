"""Whether a version of a package falls in an advisory's affected ranges: the OSV schema's evaluation rules.

Implements "Evaluation" of the OSV schema (https://ossf.github.io/osv-schema/#evaluation): a version is
affected when it is listed in ``versions``, or when, walking a range's events sorted by version (``introduced:
"0"`` first), the last event that applies to it is an ``introduced``: ``introduced`` applies at or above its
version, ``fixed`` at or above, ``last_affected`` strictly above. ``SEMVER`` ranges order versions by SemVer
2.0.0 (Go's ``v``-less module versions included), ``ECOSYSTEM`` ranges by the ecosystem's own rules
(``trustyard.scan.versions``). Two refinements, both needed by real data:
- ``limit`` events (meant for GIT ranges) bound a version range from above: a version at or above a limit
  other than ``*`` is not affected;
- a listed version also matches a version equal to it under the ecosystem's rules (PEP 440 ``2.2 == 2.2.0``).
``GIT`` ranges name commits, which a version cannot be placed among: they are skipped with a reason, as is a
range whose event versions the ecosystem's rules refuse. A skipped range never makes a version affected; the
reasons are returned so that a scan can say it could not decide.

The NVD's entries (ecosystem ``CPE``, see ``sources/nvd.py``) are ``ECOSYSTEM`` ranges under the NVD's generic
version rule, and may start with ``introduced_after`` (an exclusive start, applying strictly above its version).

Not here: which advisories to ask about (the store's index) or what to report (the matcher).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from trustyard.scan.versions import VersionError, scheme_for
from trustyard.scan.versions.semver import parse as parse_semver
from trustyard.scan.versions.semver import parse_go, parse_npm
from trustyard.scan.vulndb.errors import VulnDbError
from trustyard.scan.vulndb.model import Affected, Event, EventKind, Range, RangeType
from trustyard.scan.vulndb.sources.nvd import ECOSYSTEM as CPE_ECOSYSTEM
from trustyard.scan.vulndb.sources.nvd import parse_version as parse_cpe_version


class UnevaluableRangeError(VulnDbError):
    """A range that cannot be evaluated against a version: GIT, an unknown type, versions the rules refuse."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a version is affected, and the ranges that could not be evaluated (and why)."""

    affected: bool
    skipped: tuple[str, ...] = ()


_MEMO: dict[Callable[[str], Any], Callable[[str], Any]] = {}


def _memo(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` remembering its answers (parsed versions are values): a re-check of thousands of inventories
    compares the same few thousand version strings over and over, and parsing was most of its cost."""
    found = _MEMO.get(parse)
    if found is None:
        found = _MEMO[parse] = functools.lru_cache(maxsize=1 << 16)(parse)
    return found


def version_parser(ecosystem: str) -> Callable[[str], Any]:
    """The version parser of an ecosystem: its scheme's, or the NVD's generic rule for ``CPE`` entries;
    ``VersionError`` when none is known."""
    if ecosystem == CPE_ECOSYSTEM:
        return _memo(parse_cpe_version)
    return _memo(scheme_for(ecosystem).parse)


def _parsers(range_type: str, ecosystem: str) -> tuple[Callable[[str], Any], Callable[[str], Any]]:
    """(parser for event versions, parser for the package's version) of a range type in an ecosystem."""
    base = ecosystem.split(":", 1)[0]
    if range_type == RangeType.SEMVER:
        if base == "Go":
            return _memo(parse_go), _memo(parse_go)
        return _memo(parse_semver), _memo(parse_npm)
    if range_type == RangeType.ECOSYSTEM:
        try:
            parse = version_parser(ecosystem)
        except VersionError as e:
            raise UnevaluableRangeError(f"ECOSYSTEM range of {ecosystem!r}: {e.reason}") from e
        return parse, parse
    if range_type == RangeType.GIT:
        raise UnevaluableRangeError("GIT range: it names commits, and a version cannot be placed among commits")
    raise UnevaluableRangeError(f"range type {range_type!r} is not one of SEMVER, ECOSYSTEM, GIT")


_KIND_ORDER = {
    EventKind.INTRODUCED: 0,
    EventKind.INTRODUCED_AFTER: 0,
    EventKind.FIXED: 1,
    EventKind.LAST_AFFECTED: 1,
    EventKind.LIMIT: 2,
}


def in_range(rng: Range, ecosystem: str, version: str) -> bool:
    """Whether ``version`` is in ``rng``; ``UnevaluableRangeError`` when the range cannot say."""
    parse_event, parse_version = _parsers(rng.type, ecosystem)
    try:
        v = parse_version(version)
    except VersionError as e:
        raise UnevaluableRangeError(f"{rng.type} range: the package's version {e.reason}") from e
    keyed: list[tuple[tuple[int, Any, int], Event, Any]] = []
    limits: list[Any] = []
    for event in rng.events:
        if event.kind == EventKind.INTRODUCED and event.version == "0":
            keyed.append(((0, None, 0), event, None))
            continue
        if event.kind == EventKind.LIMIT and event.version == "*":
            continue
        try:
            ev = parse_event(event.version)
        except VersionError as e:
            raise UnevaluableRangeError(f"{rng.type} range: event {event.kind.value}: {e}") from e
        if event.kind == EventKind.LIMIT:
            limits.append(ev)
        else:
            keyed.append(((1, ev, _KIND_ORDER[event.kind]), event, ev))
    keyed.sort(key=lambda k: k[0])  # introduced "0" first, then by version; at one version introduced first
    vulnerable = False
    for _, event, ev in keyed:
        if (event.kind == EventKind.INTRODUCED and (ev is None or v >= ev)) or (
            event.kind == EventKind.INTRODUCED_AFTER and v > ev
        ):
            vulnerable = True
        elif (event.kind == EventKind.FIXED and v >= ev) or (event.kind == EventKind.LAST_AFFECTED and v > ev):
            vulnerable = False
    if vulnerable and any(v >= limit for limit in limits):
        return False
    return vulnerable


def _listed(affected: Affected, version: str) -> bool:
    if version in affected.versions:
        return True
    try:
        parse = version_parser(affected.ecosystem)
        v = parse(version)
    except VersionError:
        return False
    for listed in affected.versions:
        try:
            if parse(listed) == v:
                return True
        except VersionError:
            continue
    return False


def evaluate(affected: Affected, version: str) -> Verdict:
    """Whether ``version`` of ``affected``'s package is affected, by its ``versions`` list or its ranges."""
    if _listed(affected, version):
        return Verdict(True)
    skipped: list[str] = []
    for rng in affected.ranges:
        try:
            if in_range(rng, affected.ecosystem, version):
                return Verdict(True, tuple(skipped))
        except UnevaluableRangeError as e:
            skipped.append(e.message)
    return Verdict(False, tuple(skipped))


def affected_by(entries: Sequence[Affected], version: str) -> Verdict:
    """``evaluate`` over several entries for the same package (an advisory may list a package twice)."""
    skipped: list[str] = []
    for entry in entries:
        verdict = evaluate(entry, version)
        if verdict.affected:
            return verdict
        skipped.extend(verdict.skipped)
    return Verdict(False, tuple(skipped))
