"""After matching: OpenVEX statements and an allowlist of accepted vulnerabilities mark findings, never drop them.

OpenVEX (https://github.com/openvex/spec, v0.2.0; v0.0.x documents with a plain-string ``vulnerability`` too):
a statement names a vulnerability (its ``name`` or any of its ``aliases``; a finding matches by its id or any
alias), products and optional subcomponents by purl, and a status. ``not_affected`` (with its justification or
impact statement kept) and ``fixed`` mark the finding; ``affected`` and ``under_investigation`` clear a mark an
earlier statement set. Statements apply in time order (the statement's ``timestamp``, else the document's),
so the latest word wins, as the spec says.

A product or subcomponent matches a component when their purls agree on type, namespace and name, and on the
version when the statement gives one (qualifiers are ignored: ``?arch=amd64&distro=...`` is packaging detail).
A product that names the image itself (an ``oci``/``docker`` purl, or any non-purl id) covers all of the
image's components unless it lists subcomponents; an ``oci`` purl with a digest covers only the image with
that manifest digest.

The allowlist is a TOML file of accepted advisories, each with an optional expiry date and reason::

    [[accept]]
    id = "CVE-2023-32681"       # any id or alias of the finding
    package = "requests"       # optional: only this package
    expires = 2026-12-31       # optional: after this day the entry no longer applies (and a warning says so)
    reason = "not reachable: we never follow redirects"

Not here: fetching VEX documents from a registry (attestations, referrers) or signing them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from packageurl import PackageURL
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from trustyard.scan.errors import ScanError
from trustyard.scan.findings import Finding, Mark, Suppression
from trustyard.scan.model import Component


class VexError(ScanError):
    """A VEX document or allowlist that cannot be read or is not in its format."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _Vulnerability(_Wire):
    name: str = Field(min_length=1)
    aliases: list[str] = []


class _Subcomponent(_Wire):
    id: str = Field(alias="@id", min_length=1)


class _Product(_Wire):
    id: str = Field(alias="@id", min_length=1)
    subcomponents: list[_Subcomponent] = []

    @classmethod
    def coerce(cls, value: object) -> object:
        return {"@id": value} if isinstance(value, str) else value


class _Statement(_Wire):
    vulnerability: _Vulnerability
    products: list[_Product] = []
    status: str
    justification: str | None = None
    impact_statement: str | None = None
    action_statement: str | None = None
    status_notes: str | None = None
    timestamp: str | None = None

    @field_validator("vulnerability", mode="before")
    @classmethod
    def _plain_name(cls, value: object) -> object:
        return {"name": value} if isinstance(value, str) else value  # OpenVEX v0.0.x: a plain string

    @field_validator("products", mode="before")
    @classmethod
    def _plain_products(cls, value: object) -> object:
        return [_Product.coerce(v) for v in value] if isinstance(value, list) else value

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str) -> str:
        if value not in _STATUSES:
            raise ValueError(f"status {value!r} is not one of {', '.join(sorted(_STATUSES))}")
        return value


_STATUSES = frozenset({"not_affected", "affected", "fixed", "under_investigation"})


class _Document(_Wire):
    context: str = Field(alias="@context")
    id: str = Field(alias="@id", default="")
    timestamp: str | None = None
    statements: list[_Statement]

    @field_validator("context")
    @classmethod
    def _openvex(cls, value: str) -> str:
        if "openvex" not in value:
            raise ValueError(f"@context {value!r} is not OpenVEX's")
        return value


@dataclass(frozen=True, slots=True)
class VexStatement:
    """One OpenVEX statement as the matcher's findings need it."""

    names: frozenset[str]
    products: tuple[tuple[str, tuple[str, ...]], ...]
    status: str
    justification: str
    detail: str
    time: datetime
    origin: str


def _time(value: str | None) -> datetime:
    if not value:
        return datetime.min.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"timestamp {value!r} is not RFC 3339") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_openvex(data: bytes, origin: str) -> list[VexStatement]:
    """The statements of one OpenVEX JSON document; ``VexError`` naming ``origin`` if it is not one."""
    try:
        doc = _Document.model_validate_json(data)
        statements = []
        for s in doc.statements:
            detail = s.impact_statement or s.action_statement or s.status_notes or ""
            if s.status == "not_affected" and not (s.justification or s.impact_statement):
                raise ValueError("a not_affected statement needs a justification or an impact_statement")
            statements.append(
                VexStatement(
                    names=frozenset((s.vulnerability.name, *s.vulnerability.aliases)),
                    products=tuple((p.id, tuple(c.id for c in p.subcomponents)) for p in s.products),
                    status=s.status,
                    justification=s.justification or "",
                    detail=detail,
                    time=_time(s.timestamp or doc.timestamp),
                    origin=f"{origin}{'#' + doc.id if doc.id else ''}",
                )
            )
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise VexError(f"{origin}: not an OpenVEX document: {where}: {first['msg']}") from e
    except ValueError as e:
        raise VexError(f"{origin}: not an OpenVEX document: {e}") from e
    return statements


def load_openvex(path: Path) -> list[VexStatement]:
    """``parse_openvex`` of a file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise VexError(f"{path}: cannot read the VEX document: {e.strerror or e}") from e
    return parse_openvex(data, str(path))


def _purl(value: str) -> PackageURL | None:
    if not value.startswith("pkg:"):
        return None
    try:
        return PackageURL.from_string(value)
    except ValueError:
        return None


def _same_package(wanted: PackageURL, purl: str | None) -> bool:
    have = _purl(purl) if purl else None
    if have is None:
        return False
    same = (wanted.type, wanted.namespace or "", wanted.name) == (have.type, have.namespace or "", have.name)
    return same and (wanted.version is None or wanted.version == have.version)


_IMAGE_TYPES = frozenset({"oci", "docker"})


def _covers(statement: VexStatement, component: Component, image_digests: frozenset[str]) -> bool:
    """Whether a statement's products reach ``component`` (see the module docstring for the rules)."""
    for product, subcomponents in statement.products:
        purl = _purl(product)
        if purl is not None and purl.type not in _IMAGE_TYPES:
            if _same_package(purl, component.purl):
                return True
            continue
        if purl is not None and purl.version and image_digests and purl.version not in image_digests:
            continue  # an image statement about another image
        if not subcomponents:
            return True
        for sub in subcomponents:
            sub_purl = _purl(sub)
            if sub_purl is not None and _same_package(sub_purl, component.purl):
                return True
    return False


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One accepted vulnerability: an id, optionally one package, an expiry day and the reason."""

    id: str
    package: str | None = None
    expires: date | None = None
    reason: str = ""
    origin: str = ""

    def is_expired(self, today: date) -> bool:
        """Past its expiry day (the entry still applies on the day itself)."""
        return self.expires is not None and today > self.expires


class _AllowWire(_Wire):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(min_length=1)
    package: str | None = None
    expires: date | None = None
    reason: str = ""

    @field_validator("expires", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        return value.date() if isinstance(value, datetime) else value


class _AllowFile(_Wire):
    model_config = ConfigDict(extra="forbid", frozen=True)
    accept: list[_AllowWire] = []


def load_allowlist(path: Path) -> list[AllowEntry]:
    """The entries of an allowlist TOML file; ``VexError`` naming the file when it is unreadable or malformed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        parsed = _AllowFile.model_validate(data)
    except OSError as e:
        raise VexError(f"{path}: cannot read the allowlist: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise VexError(f"{path}: not a TOML file: {e}") from e
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise VexError(f"{path}: not an allowlist: {where}: {first['msg']}") from e
    return [AllowEntry(a.id, a.package, a.expires, a.reason, str(path)) for a in parsed.accept]


@dataclass(frozen=True, slots=True)
class Applied:
    """Findings after VEX and the allowlist, and warnings (expired entries, statements that matched nothing)."""

    findings: tuple[Finding, ...]
    warnings: tuple[str, ...] = ()


def apply(
    findings: Sequence[Finding],
    *,
    statements: Iterable[VexStatement] = (),
    allowlist: Iterable[AllowEntry] = (),
    image_digest: str | None = None,
    also_digests: Iterable[str] = (),
    today: date | None = None,
) -> Applied:
    """Mark findings: VEX first (a statement about the facts), then the allowlist (a decision to accept).

    A finding already marked by VEX keeps that mark; the allowlist only marks what VEX left counting.
    ``also_digests``: other manifest digests that name the same image (the index a platform image was scanned
    through), which an image product's digest may name too.
    """
    today = today or datetime.now(UTC).date()
    digests = frozenset(d for d in (image_digest, *also_digests) if d)
    ordered = sorted(statements, key=lambda s: s.time)
    entries = list(allowlist)
    warnings = [
        f"allowlist entry {e.id} ({e.origin}) expired on {e.expires}: it no longer applies"
        for e in entries
        if e.is_expired(today)
    ]
    live = [e for e in entries if not e.is_expired(today)]
    out = []
    for finding in findings:
        mark: Suppression | None = None
        for s in ordered:
            if not (s.names & finding.ids) or not _covers(s, finding.component, digests):
                continue
            if s.status in ("not_affected", "fixed"):
                mark = Suppression(Mark(s.status), s.origin, s.justification, s.detail)
            else:
                mark = None
        if mark is None:
            for e in live:
                if e.id in finding.ids and e.package in (None, finding.package, finding.component.name):
                    expires = e.expires.isoformat() if e.expires else None
                    mark = Suppression(Mark.ACCEPTED, e.origin, "", e.reason, expires)
                    break
        out.append(replace(finding, suppression=mark) if mark is not None else finding)
    return Applied(tuple(out), tuple(warnings))


__all__ = [
    "AllowEntry",
    "Applied",
    "VexError",
    "VexStatement",
    "apply",
    "load_allowlist",
    "load_openvex",
    "parse_openvex",
]
