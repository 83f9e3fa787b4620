"""Repository and image pages: tags with platforms, pushers and scan summaries and the pull commands; an image's
layers and history, findings by severity, bill of materials by ecosystem (searchable), referrers, and the
SBOM downloads.

The data comes from the API's handlers (tags, image detail, scan state, findings, SBOM). The SBOM download
runs the API's own handler and hands its answer to the browser as an attachment: a link straight to
``/api/v1`` would need Basic or Bearer credentials, which a browser session does not carry (and the API must
not accept cookies, or every page on the web could make a signed-in browser call it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.responses import Response

from trustyard.auth import api
from trustyard.auth.schemas import NoBody
from trustyard.registry.overview import ImageDetail
from trustyard.registry.scan_summary import SEVERITIES
from trustyard.scan.schemas import FindingsOut
from trustyard.web.interface import Visit, WebInterface

__all__ = ["ROUTES"]

_RANK: Final = {s: i for i, s in enumerate(SEVERITIES)}
TAGS_PER_PAGE: Final = 25
_FORMATS: Final = {"cyclonedx-json": "cdx.json", "spdx-json": "spdx.json"}


class _Property(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str
    value: str = ""


class _LicenseChoice(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    license: dict[str, Any] | None = None
    expression: str | None = None


class _Component(BaseModel):
    """The parts of a CycloneDX 1.6 component the SBOM table shows."""

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


@dataclass(frozen=True, slots=True)
class Component:
    """One row of the SBOM table."""

    ecosystem: str
    name: str
    version: str
    licenses: str
    layer: str | None
    purl: str | None


def _ecosystem(component: _Component) -> str:
    """The purl type (deb, apk, npm, pypi, maven, golang, ...), else the component type (operating-system)."""
    if component.purl and component.purl.startswith("pkg:"):
        return component.purl[4:].split("/", 1)[0]
    return component.type


def components(cyclonedx: bytes) -> list[Component]:
    """The SBOM's components, by ecosystem then name."""
    try:
        bom = _Bom.model_validate_json(cyclonedx)
    except ValidationError:
        return []
    rows = []
    for c in bom.components:
        licenses = ", ".join(
            str(choice.expression or (choice.license or {}).get("id") or (choice.license or {}).get("name") or "")
            for choice in c.licenses
        )
        layer = next((p.value for p in c.properties if p.name == "trustyard:layer"), None)
        name = f"{c.group}/{c.name}" if c.group else c.name
        rows.append(Component(_ecosystem(c), name, c.version or "", licenses.strip(", "), layer, c.purl))
    return sorted(rows, key=lambda r: (r.ecosystem, r.name.lower(), r.version))


def _sorted_findings(findings: FindingsOut) -> list[dict[str, Any]]:
    """Worst first, then by package and id."""

    def key(f: dict[str, Any]) -> tuple[int, str, str]:
        package = f.get("package") or {}
        return (_RANK.get(str(f.get("severity")), len(_RANK)), str(package.get("name", "")), str(f.get("id", "")))

    return sorted(findings.findings, key=key)


async def repository(web: WebInterface, visit: Visit) -> Response:
    """A repository's tags: digest, platforms, size, push time and pusher, signed or not and by whom (the
    verdict endpoint's answer, with whether the registry lets it be pulled now), scan summary, pull commands."""
    name = visit.request.path_params["name"]
    requested = visit.request.query_params.get("page", "1")
    number = int(requested) if requested.isdigit() and 0 < int(requested) < 100_000 else 1
    query = [("limit", str(TAGS_PER_PAGE)), ("offset", str((number - 1) * TAGS_PER_PAGE))]
    found = await web.call(visit, api.list_repository_tags, NoBody(), query=query, name=name)
    verdicts = {}
    for tag in found.tags:
        verdicts[tag.name] = await web.call(visit, api.get_verdict, NoBody(), name=name, reference=tag.name)
    project = name.split("/", 1)[0]
    pages = max(1, -(-found.total // TAGS_PER_PAGE))
    return web.page(
        visit,
        "repository.html",
        repository=found,
        project=project,
        severities=SEVERITIES,
        verdicts=verdicts,
        number=number,
        pages=pages,
    )


async def _optional(visit: Visit, web: WebInterface, handler: Any, name: str, digest: str) -> Any:
    """An API answer that may legitimately be missing (not scanned yet): ``None`` for a 404."""
    try:
        return await web.call(visit, handler, NoBody(), name=name, digest=digest)
    except api.ApiError as e:
        if e.status == 404:
            return None
        raise


async def image(web: WebInterface, visit: Visit) -> Response:
    """One image: platforms or layers with history, scan state, findings, SBOM components, referrers."""
    name, digest = visit.request.path_params["name"], visit.request.path_params["digest"]
    detail: ImageDetail = await web.call(visit, api.get_image, NoBody(), name=name, digest=digest)
    scan = await _optional(visit, web, api.get_scan, name, digest)
    findings_answer = await _optional(visit, web, api.get_findings, name, digest)
    findings = FindingsOut.model_validate_json(findings_answer.body) if findings_answer is not None else None
    sbom_answer = await _optional(visit, web, api.get_sbom, name, digest)
    bom = components(bytes(sbom_answer.body)) if sbom_answer is not None else []
    query = visit.request.query_params.get("q", "").strip()
    shown = [c for c in bom if query.lower() in f"{c.ecosystem} {c.name} {c.version}".lower()] if query else bom
    layer_index = {layer.digest: i for i, layer in enumerate(detail.layers)}
    ordered = _sorted_findings(findings) if findings else []
    counts = Counter(str(f.get("severity")) for f in ordered if not f.get("suppressed"))
    return web.page(
        visit,
        "image.html",
        image=detail,
        project=name.split("/", 1)[0],
        scan=scan,
        findings=findings,
        ordered=ordered,
        counts={s: counts.get(s, 0) for s in SEVERITIES},
        severities=SEVERITIES,
        layer_index=layer_index,
        components=shown,
        component_total=len(bom),
        ecosystems=Counter(c.ecosystem for c in bom).most_common(),
        query=query,
        base=f"/repositories/{quote(name)}/-/manifests/{digest}",
    )


async def sbom_download(web: WebInterface, visit: Visit) -> Response:
    """The image's SBOM (CycloneDX 1.6 or SPDX 2.3 JSON) as a file, from the API's own handler."""
    name, digest = visit.request.path_params["name"], visit.request.path_params["digest"]
    fmt = visit.request.query_params.get("format", "cyclonedx-json")
    if fmt not in _FORMATS:
        return web.error(visit, 400, "format is cyclonedx-json or spdx-json")
    answer = await web.call(visit, api.get_sbom, NoBody(), query=[("format", fmt)], name=name, digest=digest)
    filename = f"{name.replace('/', '_')}_{digest.split(':')[-1][:12]}.{_FORMATS[fmt]}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return Response(bytes(answer.body), media_type=answer.media_type, headers=headers)


ROUTES: Final = (
    ("/repositories/{name:path}/-/manifests/{digest}/sbom", ("GET",), sbom_download),
    ("/repositories/{name:path}/-/manifests/{digest}", ("GET",), image),
    ("/repositories/{name:path}", ("GET",), repository),
)
"""(path, methods, page) of this module; the longest paths first (a repository name has slashes)."""
