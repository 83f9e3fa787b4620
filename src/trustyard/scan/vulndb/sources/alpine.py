"""Alpine's secdb (https://secdb.alpinelinux.org/<release>/<repository>.json): the ``secfixes`` of each package.

Shape: ``{"distroversion": "v3.10", "reponame": "main", "packages": [{"pkg": {"name", "secfixes":
{fixed version: [ids]}}}]}``. Each line says "this version fixed these vulnerabilities", so each id becomes an
``Affected`` entry ``introduced 0, fixed V`` for the package in ecosystem ``Alpine:v3.10`` (OSV's naming). A
fixed version of ``0`` means the package was never affected (``NOT_AFFECTED``, no range).

A secdb file is one feed: its advisories are stored under source ``alpine:<release>-<repository>``, so that
v3.10's and v3.11's entries for the same CVE live side by side and re-importing one never touches the other.
Entries may carry text after the id (``CVE-2019-1234 (upstream note)``); only the id is kept, the original
entry is in ``raw``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field, field_validator

from trustyard.scan.vulndb.model import Advisory, Affected, Event, EventKind, Range, Status
from trustyard.scan.vulndb.sources.base import Document

_ID = re.compile(r"[A-Za-z][A-Za-z0-9]*-[0-9][A-Za-z0-9:._-]*")
_MISTYPED_CVE = re.compile(r"CVE[ _](\d{4}-\d+)")  # "CVE_2019-2426", "CVE 2018-16859" in the real files


class _Pkg(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1)
    secfixes: dict[str, list[str] | None] = {}

    @field_validator("secfixes", mode="before")
    @classmethod
    def _empty_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [] if v == "" else v for k, v in value.items()}  # "7.4.0-r0": "" in v3.6-main
        return value


class _Package(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    pkg: _Pkg


class _SecDb(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    distroversion: str = Field(min_length=1)
    reponame: str = Field(min_length=1)
    packages: list[_Package]

    @field_validator("packages", mode="before")
    @classmethod
    def _empty(cls, value: object) -> object:
        return [] if value == "" else value  # an empty repository is written as "packages": "" (v3.3-community)


class AlpineSecdbSource:
    """Alpine's secdb: one file per release and repository."""

    name = "alpine"

    def recognizes(self, data: object) -> bool:
        """An object with ``packages``, ``distroversion`` and ``reponame``."""
        return isinstance(data, dict) and "packages" in data and "distroversion" in data and "reponame" in data

    def feed(self, document: Document) -> str:
        """``alpine:<release>-<repository>``: each secdb file is its own feed."""
        db = _SecDb.model_validate(document.data)
        return f"{self.name}:{db.distroversion}-{db.reponame}"

    def parse(self, document: Document) -> Iterator[Advisory]:
        """One advisory per id per file, with every package and fixed version naming it."""
        db = _SecDb.model_validate(document.data)
        ecosystem = f"Alpine:{db.distroversion}"
        fixes: dict[str, list[tuple[str, str, str]]] = {}
        for package in db.packages:
            for version, entries in package.pkg.secfixes.items():
                for entry in entries or ():
                    m = _ID.match(_MISTYPED_CVE.sub(r"CVE-\1", entry.strip()))
                    if m is None:
                        continue  # a free-text note, not an id
                    fixes.setdefault(m.group(0), []).append((package.pkg.name, version, entry))
        feed = self.feed(document)
        for vuln_id in sorted(fixes):
            affected = []
            for name, version, _entry in sorted(set(fixes[vuln_id])):
                if version == "0":
                    affected.append(Affected(ecosystem, name, status=Status.NOT_AFFECTED))
                else:
                    events = (Event(EventKind.INTRODUCED, "0"), Event(EventKind.FIXED, version))
                    affected.append(
                        Affected(ecosystem, name, ranges=(Range("ECOSYSTEM", events),), status=Status.FIXED)
                    )
            raw = {
                "distroversion": db.distroversion,
                "reponame": db.reponame,
                "secfixes": [{"name": n, "fixed": v, "entry": e} for n, v, e in sorted(set(fixes[vuln_id]))],
            }
            yield Advisory(
                source=feed,
                id=vuln_id,
                raw=json.dumps(raw, sort_keys=True, separators=(",", ":")).encode(),
                affected=tuple(affected),
            )
