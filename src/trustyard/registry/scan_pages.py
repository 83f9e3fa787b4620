"""Pages of an image's scan results: its findings worst first, and its bill of materials as component rows.

An image of a full distribution carries thousands of components and, against a real advisory feed, hundreds of
findings; a browser table or an API client wants them a page at a time, with the total and the counts that
describe the whole list (the severity bar, the ecosystems). ``GET .../findings?limit=&offset=`` and
``GET .../sbom/components?q=&limit=&offset=`` (``auth/api.py``) answer with these pages, and the web interface's
image page shows exactly them. The stored documents (``registry/jobs.py``) are read whole and sliced here: a
few hundred kilobytes of JSON decode in milliseconds, far less than rendering the rows would cost.

Not here: authorization (the API handlers), the documents themselves (the scanner writes them), HTML.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trustyard.registry.scan_summary import SEVERITIES
from trustyard.scan.schemas import FindingsOut

__all__ = ["ComponentOut", "ComponentPage", "ComponentQuery", "FindingsPage", "FindingsQuery", "component_page"]

_RANK: Final = {s: i for i, s in enumerate(SEVERITIES)}
MAX_PAGE: Final = 1000


class FindingsQuery(BaseModel):
    """Which findings: ``offset`` into the worst-first list, at most ``limit`` of them (all when not given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    limit: int | None = Field(default=None, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0)


class FindingsPage(FindingsOut):
    """The findings document with its findings worst first (then by package and id), sliced by the query;
    ``total`` and ``counts`` (findings not suppressed by VEX or an allowlist, by severity) describe them all."""

    total: int
    offset: int
    counts: dict[str, int]


def _finding_order(finding: dict[str, Any]) -> tuple[int, str, str]:
    package = finding.get("package") or {}
    return (_RANK.get(str(finding.get("severity")), len(_RANK)), str(package.get("name", "")), str(finding.get("id")))


def findings_page(document: dict[str, Any], query: FindingsQuery) -> FindingsPage:
    """One page of a findings document (``StoredReport.findings``, decoded, with its states marked)."""
    found = FindingsOut.model_validate(document)
    ordered = sorted(found.findings, key=_finding_order)
    counts = Counter(str(f.get("severity")) for f in ordered if not f.get("suppressed"))
    end = None if query.limit is None else query.offset + query.limit
    page = {
        **found.model_dump(),
        "findings": ordered[query.offset : end],
        "total": len(ordered),
        "offset": query.offset,
        "counts": {s: counts.get(s, 0) for s in SEVERITIES},
    }
    return FindingsPage.model_validate(page)


# -- the bill of materials as rows -------------------------------------------------------------------------------


class ComponentQuery(BaseModel):
    """Which components: those whose ecosystem, name or version contains ``q`` (case-insensitive), a page of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    q: str = Field(default="", max_length=200)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0)


class ComponentOut(BaseModel):
    """One component: its ecosystem (the purl type, else the CycloneDX component type), the layer it came from."""

    model_config = ConfigDict(frozen=True)
    ecosystem: str
    name: str
    version: str
    licenses: str
    layer: str | None
    purl: str | None


class ComponentPage(BaseModel):
    """Components by ecosystem then name; ``total`` counts them all, ``matched`` those matching ``q``."""

    model_config = ConfigDict(frozen=True)
    total: int
    matched: int
    offset: int
    ecosystems: dict[str, int] = Field(description="components of every ecosystem, most first")
    components: list[ComponentOut]


class _Property(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    value: str = ""


class _LicenseChoice(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    license: dict[str, Any] | None = None
    expression: str | None = None


class _Component(BaseModel):
    """The parts of a CycloneDX 1.6 component a row shows."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type: str = "library"
    name: str
    group: str | None = None
    version: str | None = None
    purl: str | None = None
    licenses: list[_LicenseChoice] = []
    properties: list[_Property] = []


class _Bom(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    components: list[_Component] = []


def _row(c: _Component) -> ComponentOut:
    ecosystem = c.purl[4:].split("/", 1)[0] if c.purl and c.purl.startswith("pkg:") else c.type
    licenses = ", ".join(
        str(choice.expression or (choice.license or {}).get("id") or (choice.license or {}).get("name") or "")
        for choice in c.licenses
    )
    layer = next((p.value for p in c.properties if p.name == "trustyard:layer"), None)
    name = f"{c.group}/{c.name}" if c.group else c.name
    return ComponentOut(
        ecosystem=ecosystem, name=name, version=c.version or "", licenses=licenses.strip(", "), layer=layer, purl=c.purl
    )


def component_page(cyclonedx: str, query: ComponentQuery) -> ComponentPage:
    """One page of the components of a stored CycloneDX document (``StoredReport.cyclonedx``); a document
    that does not parse has none."""
    try:
        bom = _Bom.model_validate_json(cyclonedx)
    except ValidationError:
        bom = _Bom()
    rows = sorted((_row(c) for c in bom.components), key=lambda r: (r.ecosystem, r.name.lower(), r.version))
    needle = query.q.strip().lower()
    shown = [r for r in rows if needle in f"{r.ecosystem} {r.name} {r.version}".lower()] if needle else rows
    return ComponentPage(
        total=len(rows),
        matched=len(shown),
        offset=query.offset,
        ecosystems=dict(Counter(r.ecosystem for r in rows).most_common()),
        components=shown[query.offset : query.offset + query.limit],
    )
