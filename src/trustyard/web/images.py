"""Repository and image pages: tags with platforms, pushers and scan summaries and the pull commands; an image's
layers and history, findings by severity, bill of materials by ecosystem (searchable), referrers, and the
SBOM downloads.

The data comes from the API's handlers (tags, image detail, scan state, findings, SBOM). The SBOM download
runs the API's own handler and hands its answer to the browser as an attachment: a link straight to
``/api/v1`` would need Basic or Bearer credentials, which a browser session does not carry (and the API must
not accept cookies, or every page on the web could make a signed-in browser call it).
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote, urlencode

from starlette.responses import Response

from trustyard.auth import api
from trustyard.auth.schemas import NoBody
from trustyard.registry.overview import ImageDetail
from trustyard.registry.scan_summary import SEVERITIES
from trustyard.web.interface import Visit, WebInterface

__all__ = ["ROUTES"]

TAGS_PER_PAGE: Final = 25
FINDINGS_PER_PAGE: Final = 50
COMPONENTS_PER_PAGE: Final = 50
_FORMATS: Final = {"cyclonedx-json": "cdx.json", "spdx-json": "spdx.json"}


def _page_number(visit: Visit, name: str) -> int:
    """The 1-based page number in query parameter ``name`` (anything else: the first page)."""
    given = visit.request.query_params.get(name, "1")
    return int(given) if given.isdigit() and 0 < int(given) < 1_000_000 else 1


def _pager(visit: Visit, name: str, number: int, count: int | None, per_page: int) -> dict[str, Any] | None:
    """Previous/next links for one paged table (``None`` without one), keeping the page's other query parameters;
    each link returns to the table's section (``#findings``, ``#sbom``)."""
    if count is None:
        return None
    anchor = {"findings_page": "#findings", "components_page": "#sbom"}[name]
    pages = max(1, -(-count // per_page))
    others = [(k, v) for k, v in visit.request.query_params.multi_items() if k != name]

    def link(n: int) -> str:
        return "?" + urlencode([*others, (name, str(n))]) + anchor

    return {
        "number": number,
        "pages": pages,
        "first": (number - 1) * per_page + 1,
        "last": min(count, number * per_page),
        "count": count,
        "previous": link(number - 1) if number > 1 else None,
        "next": link(number + 1) if number < pages else None,
    }


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


async def _optional(
    visit: Visit, web: WebInterface, handler: Any, name: str, digest: str, query: list[tuple[str, str]]
) -> Any:
    """An API answer that may legitimately be missing (not scanned yet): ``None`` for a 404."""
    try:
        return await web.call(visit, handler, NoBody(), query=query, name=name, digest=digest)
    except api.ApiError as e:
        if e.status == 404:
            return None
        raise


async def _page_of(
    web: WebInterface,
    visit: Visit,
    handler: Any,
    path: tuple[str, str],
    param: str,
    per_page: int,
    extra: list[tuple[str, str]] | None = None,
) -> tuple[Any, int]:
    """The page that query parameter ``param`` asks for of a paged scan answer (``None``: not scanned yet), and
    its number."""
    number = _page_number(visit, param)
    query = [*(extra or []), ("limit", str(per_page)), ("offset", str((number - 1) * per_page))]
    return await _optional(visit, web, handler, *path, query), number


async def image(web: WebInterface, visit: Visit) -> Response:
    """One image: platforms or layers with history, scan state, a page of its findings (worst first) and of its
    SBOM components (searchable), referrers. Both tables are paged by the API (``limit``/``offset``), so a
    distribution image with thousands of components or findings renders one page's rows, not all of them."""
    name, digest = visit.request.path_params["name"], visit.request.path_params["digest"]
    detail: ImageDetail = await web.call(visit, api.get_image, NoBody(), name=name, digest=digest)
    scan = await _optional(visit, web, api.get_scan, name, digest, [])
    path = (name, digest)
    search = visit.request.query_params.get("q", "").strip()[:200]
    findings, finding_number = await _page_of(web, visit, api.get_findings, path, "findings_page", FINDINGS_PER_PAGE)
    components, component_number = await _page_of(
        web, visit, api.get_sbom_components, path, "components_page", COMPONENTS_PER_PAGE, [("q", search)]
    )
    return web.page(
        visit,
        "image.html",
        image=detail,
        project=name.split("/", 1)[0],
        scan=scan,
        findings=findings,
        finding_pager=_pager(visit, "findings_page", finding_number, findings and findings.total, FINDINGS_PER_PAGE),
        severities=SEVERITIES,
        layer_index={layer.digest: i for i, layer in enumerate(detail.layers)},
        components=components,
        component_pager=_pager(
            visit, "components_page", component_number, components and components.matched, COMPONENTS_PER_PAGE
        ),
        query=search,
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
