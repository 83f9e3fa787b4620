"""The Debian Security Tracker's JSON (https://security-tracker.debian.org/tracker/data/json).

Shape: ``{source package: {CVE or TEMP id: {"description", "scope", "debianbug", "releases": {codename:
{"status", "repositories", "fixed_version", "urgency", "nodsa", "nodsa_reason"}}}}}``. Names are *source*
packages: the matcher maps installed binary packages to their source (``Component.source_name``).

Each (CVE, package, release) becomes an ``Affected`` entry in ecosystem ``Debian:<number>`` (OSV's naming:
bookworm is ``Debian:12``; a codename without a number, such as sid, stays a codename), with its status:
- ``resolved`` with a fixed version: ``FIXED``, range ``introduced 0, fixed V``;
- ``resolved`` with fixed version ``0``: ``NOT_AFFECTED`` (the release never had the vulnerable code), no range;
- ``open``: affected at every version, and the reason nobody fixed it: ``END_OF_LIFE`` (urgency
  ``end-of-life``), ``IGNORED``/``POSTPONED`` (``nodsa_reason``), ``NO_DSA`` (``nodsa`` present), else ``UNFIXED``;
- ``undetermined``: ``UNDETERMINED``, affected at every version until the tracker decides.
The urgency is kept as the entry's severity (type ``DEBIAN_URGENCY``). One advisory per CVE id, holding every
package and release; its ``raw`` is that CVE's part of the dump (re-serialised: the dump is one document).

Not here: the DSA/DLA text lists (``data/DSA/list``), which the JSON already summarises per release. The whole
dump is parsed as one JSON document (about 70 MB today); a streaming parser would need a new dependency.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, RootModel

from trustyard.scan.vulndb.model import Advisory, Affected, Event, EventKind, Range, Severity, Status
from trustyard.scan.vulndb.sources.base import Document

RELEASE_NUMBERS = {
    "buzz": "1.1",
    "rex": "1.2",
    "bo": "1.3",
    "hamm": "2.0",
    "slink": "2.1",
    "potato": "2.2",
    "woody": "3.0",
    "sarge": "3.1",
    "etch": "4",
    "lenny": "5",
    "squeeze": "6",
    "wheezy": "7",
    "jessie": "8",
    "stretch": "9",
    "buster": "10",
    "bullseye": "11",
    "bookworm": "12",
    "trixie": "13",
    "forky": "14",
    "duke": "15",
}


class _Release(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: str
    fixed_version: str | None = None
    urgency: str | None = None
    nodsa: str | None = None
    nodsa_reason: str | None = None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    description: str = ""
    releases: dict[str, _Release] = {}


class _Dump(RootModel[dict[str, dict[str, _Entry]]]):
    pass


def _status(release: _Release) -> Status:
    if release.status == "resolved":
        return Status.NOT_AFFECTED if release.fixed_version == "0" else Status.FIXED
    if release.status == "open":
        if release.urgency == "end-of-life":
            return Status.END_OF_LIFE
        if release.nodsa_reason == "ignored":
            return Status.IGNORED
        if release.nodsa_reason == "postponed":
            return Status.POSTPONED
        if release.nodsa is not None:
            return Status.NO_DSA
        return Status.UNFIXED
    if release.status == "undetermined":
        return Status.UNDETERMINED
    raise ValueError(f"unknown release status {release.status!r}")


def _affected(package: str, codename: str, release: _Release) -> Affected:
    status = _status(release)
    if status == Status.FIXED:
        if not release.fixed_version:
            raise ValueError(f"{package} in {codename}: resolved without a fixed_version")
        events: tuple[Event, ...] = (Event(EventKind.INTRODUCED, "0"), Event(EventKind.FIXED, release.fixed_version))
    elif status == Status.NOT_AFFECTED:
        events = ()
    else:
        events = (Event(EventKind.INTRODUCED, "0"),)
    return Affected(
        ecosystem=f"Debian:{RELEASE_NUMBERS.get(codename, codename)}",
        name=package,
        ranges=(Range("ECOSYSTEM", events),) if events else (),
        status=status,
        severity=(Severity("DEBIAN_URGENCY", release.urgency),) if release.urgency else (),
    )


class DebianTrackerSource:
    """The Debian Security Tracker's JSON dump: per source package, per CVE, per release."""

    name = "debian"

    def recognizes(self, data: object) -> bool:
        """A mapping of package names to mappings of ids to entries with ``releases``."""
        if not isinstance(data, dict) or not data:
            return False
        first = next(iter(data.values()))
        if not isinstance(first, dict) or not first:
            return False
        entry = next(iter(first.values()))
        return isinstance(entry, dict) and isinstance(entry.get("releases"), dict)

    def feed(self, document: Document) -> str:
        """One feed: the dump covers every release."""
        return self.name

    def parse(self, document: Document) -> Iterator[Advisory]:
        """One advisory per CVE (or TEMP-) id, with every package and release it names."""
        dump = _Dump.model_validate(document.data).root
        raw_dump = document.data if isinstance(document.data, dict) else {}
        by_id: dict[str, list[tuple[str, _Entry]]] = {}
        for package, entries in dump.items():
            for vuln_id, entry in entries.items():
                by_id.setdefault(vuln_id, []).append((package, entry))
        for vuln_id in sorted(by_id):
            packages = sorted(by_id[vuln_id], key=lambda p: p[0])
            affected = tuple(
                _affected(package, codename, release)
                for package, entry in packages
                for codename, release in sorted(entry.releases.items())
            )
            raw = {package: raw_dump[package][vuln_id] for package, _ in packages}
            yield Advisory(
                source=self.name,
                id=vuln_id,
                raw=json.dumps(raw, sort_keys=True, separators=(",", ":")).encode(),
                details=next((e.description for _, e in packages if e.description), ""),
                affected=affected,
            )
