"""Operations pages: the dashboard of the registry's exposure, the vulnerability data's status, the audit
log with its filters, and the garbage-collection runs. Each reads through the API's handler for it, so a project
admin sees their project's audit events and an administrator everything, exactly as ``/api/v1/audit`` decides,
and only administrators see the collector's runs, as ``/api/v1/gc/runs`` decides.
"""

from __future__ import annotations

from typing import Final

from starlette.responses import Response

from trustyard.auth import api
from trustyard.auth.schemas import GcRunQuery, NoBody
from trustyard.registry.scan_summary import SEVERITIES
from trustyard.web.charts import bar_chart
from trustyard.web.interface import Visit, WebInterface

__all__ = ["ROUTES"]

AUDIT_FILTERS: Final = ("actor", "project", "repository", "action", "result", "since", "until", "after")
AUDIT_PAGE: Final = 50


async def dashboard(web: WebInterface, visit: Visit) -> Response:
    """Images by worst severity and the most widespread vulnerable packages, as charts; for administrators,
    the images whose findings changed when the vulnerability data was last updated (the re-check's
    ``scan.changed`` audit events since the newest import)."""
    found = await web.call(visit, api.get_exposure, NoBody())
    data = await web.call(visit, api.get_vulnerability_data, NoBody())
    labels = [*SEVERITIES, "none", "unscanned"]
    worst = bar_chart(
        "Tagged images by their worst finding",
        [
            (label if label != "none" else "no findings", found.by_worst.get(label, 0), f"sev-{label}")
            for label in labels
        ],
    )
    packages = bar_chart(
        "Most widespread vulnerable packages (images carrying them)",
        [(f"{p.name} {p.version} ({p.type})", p.images, "bar-count") for p in found.packages],
    )
    latest = max((source.imported_at for source in data.sources), default=None)
    changed = None
    if latest is not None and visit.user.is_admin:  # the whole audit log is for administrators (as in the API)
        query = [("action", "scan.changed"), ("since", latest), ("limit", "100")]
        changed = (await web.call(visit, api.query_audit, NoBody(), query=query)).events
    return web.page(
        visit,
        "dashboard.html",
        exposure=found,
        worst=worst,
        packages=packages,
        data=data,
        latest=latest,
        changed=changed,
    )


async def vulnerability_data(web: WebInterface, visit: Visit) -> Response:
    """The vulnerability store's sources: counts, data time, last import."""
    data = await web.call(visit, api.get_vulnerability_data, NoBody())
    return web.page(visit, "vulndata.html", data=data)


async def audit(web: WebInterface, visit: Visit) -> Response:
    """One page of audit events matching the filters, with a link to the next."""
    given = {k: v.strip() for k, v in visit.request.query_params.items() if k in AUDIT_FILTERS and v.strip()}
    query = [*given.items(), ("limit", str(AUDIT_PAGE))]
    page = None
    message = None
    status = 200
    try:
        page = await web.call(visit, api.query_audit, NoBody(), query=query)
    except api.ApiError as e:
        if e.status not in (400, 403):
            raise
        message, status = e.message, e.status
    following = None
    if page is not None and page.next is not None:
        following = {**given, "after": str(page.next)}
    return web.page(visit, "audit.html", status, page=page, filters=given, following=following, message=message)


async def gc_runs(web: WebInterface, visit: Visit) -> Response:
    """The newest garbage-collection runs (``?limit=``, as the API takes it): when, what started them, what they
    freed, and why a run failed."""
    limit = visit.request.query_params.get("limit", str(GcRunQuery().limit))
    found = await web.call(visit, api.list_gc_runs, NoBody(), query=[("limit", limit)])
    return web.page(visit, "gc.html", runs=found.runs)


ROUTES: Final = (
    ("/dashboard", ("GET",), dashboard),
    ("/vulnerability-data", ("GET",), vulnerability_data),
    ("/audit", ("GET",), audit),
    ("/gc", ("GET",), gc_runs),
)
"""(path, methods, page) of this module."""
