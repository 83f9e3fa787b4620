"""Project pages: the projects a person can see with their repositories and storage, creating one, and a
project's repositories, members, robot accounts and settings.

Every read and change is the management API's handler for it (``WebInterface.call``). A robot's secret is
rendered once, in the answer to the POST that created it (never stored, never redirected to, never cached).
Forms are only offered to people the access policy would let through; the API still decides.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Final
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from trustyard.auth import api
from trustyard.auth.model import Action, Role
from trustyard.auth.schemas import AcceptedVulnerabilityWire, MemberRole, NewProject, NewRobot, NoBody, ProjectPatch
from trustyard.registry.overview import RepositoryOut
from trustyard.web.interface import FormError, Visit, WebInterface, body_of

__all__ = ["ROUTES"]

ROLES: Final = tuple(r.value for r in Role)
ROBOT_PERMISSIONS: Final = ("pull", "list", "push", "delete")
POLICY_SEVERITIES: Final = ("low", "medium", "high", "critical")
_DAY: Final = 86400


def _may(web: WebInterface, visit: Visit, project: str, action: Action) -> bool:
    """Whether the access policy (the one the API asks) grants ``action`` in ``project`` to this visitor."""
    return visit.principal is not None and action in web.access.policy.actions(visit.principal, project)


def _totals(repositories: list[RepositoryOut]) -> dict[str, dict[str, int]]:
    """Per project: repositories, images and bytes."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"repositories": 0, "images": 0, "size": 0})
    for repo in repositories:
        entry = totals[repo.project]
        entry["repositories"] += 1
        entry["images"] += repo.images
        entry["size"] += repo.size
    return totals


async def project_list(web: WebInterface, visit: Visit, *, status: int = 200, message: str | None = None) -> Response:
    """The projects this person can see, with repository and image counts, storage used and visibility."""
    found = await web.call(visit, api.list_projects, NoBody())
    repositories = await web.call(visit, api.list_repositories, NoBody())
    may_create = visit.principal is not None and web.access.policy.may_create_project(visit.principal)
    return web.page(
        visit,
        "projects.html",
        status,
        projects=found.projects,
        totals=_totals(repositories.repositories),
        may_create=may_create,
        message=message,
    )


async def create_project(web: WebInterface, visit: Visit) -> Response:
    """Create a project (its creator becomes its project admin) and show it."""
    fields = await web.form(visit)
    failure = "Project not created"
    values = {"name": fields.get("name", "").strip(), "public": fields.get("visibility") == "public"}
    body = body_of(NewProject, failure, project_list, values)
    created = await web.change(visit, api.create_project, body, failure=failure, redo=project_list)
    return RedirectResponse(f"/projects/{quote(created.name)}", status_code=303)


async def _project_page(
    web: WebInterface, visit: Visit, template: str, status: int = 200, **context: object
) -> Response:
    """A tab of a project's page: the project (refused as the API refuses) and what the visitor may manage."""
    name = visit.request.path_params["project"]
    project = await web.call(visit, api.get_project, NoBody(), project=name)
    return web.page(
        visit,
        template,
        status,
        project=project,
        may_members=_may(web, visit, name, Action.MANAGE_MEMBERS),
        may_robots=_may(web, visit, name, Action.MANAGE_ROBOTS),
        **context,
    )


async def project_repositories(web: WebInterface, visit: Visit) -> Response:
    """A project's repositories: tags, images, storage used, last push."""
    name = visit.request.path_params["project"]
    await web.call(visit, api.get_project, NoBody(), project=name)
    found = await web.call(visit, api.list_repositories, NoBody(), query=[("project", name)])
    return await _project_page(web, visit, "project.html", repositories=found.repositories, tab="repositories")


async def members(web: WebInterface, visit: Visit, *, status: int = 200, message: str | None = None) -> Response:
    """A project's members and their roles; project admins change them here."""
    name = visit.request.path_params["project"]
    found = await web.call(visit, api.list_members, NoBody(), project=name)
    return await _project_page(
        web, visit, "members.html", status, members=found.members, roles=ROLES, tab="members", message=message
    )


async def set_member(web: WebInterface, visit: Visit) -> Response:
    """Give a user or a team a role in the project."""
    fields = await web.form(visit)
    name = visit.request.path_params["project"]
    kind, who, role = fields.get("kind", "user"), fields.get("member", "").strip(), fields.get("role", "")
    failure = "Role not set"
    if kind not in ("user", "team") or not who:
        raise FormError(400, f"{failure}: name a user or a team", members)
    body = body_of(MemberRole, failure, members, {"role": role})
    await web.change(visit, api.set_member, body, failure=failure, redo=members, project=name, extra={kind: who})
    return RedirectResponse(f"/projects/{quote(name)}/members", status_code=303)


async def remove_member(web: WebInterface, visit: Visit) -> Response:
    """Remove a user or a team from the project."""
    fields = await web.form(visit)
    name = visit.request.path_params["project"]
    kind, who = fields.get("kind", "user"), fields.get("member", "")
    failure = "Not removed"
    if kind not in ("user", "team") or not who:
        raise FormError(400, f"{failure}: name a user or a team", members)
    await web.change(visit, api.remove_member, NoBody(), failure=failure, redo=members, project=name, extra={kind: who})
    return RedirectResponse(f"/projects/{quote(name)}/members", status_code=303)


async def robots(
    web: WebInterface, visit: Visit, *, status: int = 200, message: str | None = None, created: object = None
) -> Response:
    """A project's robot accounts; right after creating one, its secret, shown this once."""
    name = visit.request.path_params["project"]
    found = await web.call(visit, api.list_robots, NoBody(), project=name)
    return await _project_page(
        web,
        visit,
        "robots.html",
        status,
        robots=found.robots,
        permissions=ROBOT_PERMISSIONS,
        tab="robots",
        message=message,
        created=created,
    )


async def create_robot(web: WebInterface, visit: Visit) -> Response:
    """Create a robot account and show its secret once (this answer is the only place it ever appears)."""
    fields = await web.form(visit)
    name = visit.request.path_params["project"]
    chosen = [p for p in await web.form_list(visit, "permission") if p in ROBOT_PERMISSIONS]
    days = fields.get("expires_days", "").strip()
    failure = "Robot not created"
    if days and not days.isdigit():
        raise FormError(400, f"{failure}: the expiry is a whole number of days", robots)
    expires_in = int(days) * _DAY if days else None
    values = {"name": fields.get("name", "").strip(), "permissions": chosen, "expires_in": expires_in}
    body = body_of(NewRobot, failure, robots, values)
    created = await web.change(visit, api.create_robot, body, failure=failure, redo=robots, project=name)
    return await robots(web, visit, status=201, created=created)


async def delete_robot(web: WebInterface, visit: Visit) -> Response:
    """Delete a robot account of the project."""
    fields = await web.form(visit)
    name = visit.request.path_params["project"]
    await web.call(visit, api.delete_robot, NoBody(), project=name, robot=fields.get("robot", ""))
    return RedirectResponse(f"/projects/{quote(name)}/robots", status_code=303)


async def settings(web: WebInterface, visit: Visit, *, status: int = 200, message: str | None = None) -> Response:
    """A project's visibility and pull policy."""
    name = visit.request.path_params["project"]
    project = await web.call(visit, api.get_project, NoBody(), project=name)
    return await _project_page(
        web,
        visit,
        "settings.html",
        status,
        tab="settings",
        message=message,
        severities=POLICY_SEVERITIES,
        allowlist=allowlist_text(project.allowlist),
    )


def allowlist_text(entries: list[AcceptedVulnerabilityWire]) -> str:
    """The allowlist as the settings form edits it: one ``ID | YYYY-MM-DD | reason`` line per entry."""
    lines = []
    for entry in entries:
        expires = entry.expires_at.strftime("%Y-%m-%d") if entry.expires_at else ""
        lines.append(" | ".join((entry.id, expires, entry.reason)).rstrip(" |"))
    return "\n".join(lines)


def parse_allowlist(text: str) -> list[dict[str, object]]:
    """The form's allowlist lines as API entries (``ValueError`` names the bad line)."""
    entries: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), 1):
        parts = [part.strip() for part in line.split("|", 2)]
        if not parts[0]:
            continue
        entry: dict[str, object] = {"id": parts[0]}
        if len(parts) > 1 and parts[1]:
            try:
                day = dt.date.fromisoformat(parts[1])
            except ValueError:
                raise ValueError(f"allowlist line {number}: the expiry is a date, YYYY-MM-DD") from None
            entry["expires_at"] = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        if len(parts) > 2:
            entry["reason"] = parts[2]
        entries.append(entry)
    return entries


async def save_settings(web: WebInterface, visit: Visit) -> Response:
    """Change the project's visibility and pull policy (content trust, severity threshold, unscanned, allowlist)."""
    fields = await web.form(visit)
    name = visit.request.path_params["project"]
    failure = "Not saved"
    try:
        allowlist = parse_allowlist(fields.get("allowlist", ""))
    except ValueError as e:
        raise FormError(400, f"{failure}: {e}", settings) from None
    values = {
        "public": fields.get("visibility") == "public",
        "content_trust": fields.get("content_trust") == "on",
        "block_severity": fields.get("block_severity") or None,
        "block_unscanned": fields.get("block_unscanned") == "on",
        "allowlist": allowlist,
    }
    body = body_of(ProjectPatch, failure, settings, values)
    await web.change(visit, api.patch_project, body, failure=failure, redo=settings, project=name)
    return RedirectResponse(f"/projects/{quote(name)}/settings", status_code=303)


ROUTES: Final = (
    ("/projects", ("GET",), project_list),
    ("/projects", ("POST",), create_project),
    ("/projects/{project}", ("GET",), project_repositories),
    ("/projects/{project}/members", ("GET",), members),
    ("/projects/{project}/members", ("POST",), set_member),
    ("/projects/{project}/members/remove", ("POST",), remove_member),
    ("/projects/{project}/robots", ("GET",), robots),
    ("/projects/{project}/robots", ("POST",), create_robot),
    ("/projects/{project}/robots/delete", ("POST",), delete_robot),
    ("/projects/{project}/settings", ("GET",), settings),
    ("/projects/{project}/settings", ("POST",), save_settings),
)
"""(path, methods, page) of this module."""
