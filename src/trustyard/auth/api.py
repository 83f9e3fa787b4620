"""The management API: users, teams, projects, members, robot accounts and the audit log as JSON over HTTP,
under ``/api/v1/`` (issue 3 items 5 and 6), shaped after Harbor's API.

Each endpoint is one row of ``ENDPOINTS``: method, path, the pydantic models of its body and its answer, and a
handler that authorizes (``AccessPolicy``, system administrators, project roles) and calls one
``IdentityAdmin`` method, which changes the store and writes the audit event before the answer goes out. The
same rows build the Starlette ``routes`` and the OpenAPI document (``registry/api/openapi.py``), so the two
cannot drift apart. Callers authenticate as on the registry (``Basic``, or a ``Bearer`` token from
``/auth/token``: the token proves who the caller is, its registry scopes play no part here); anonymous callers
get a 401 with the registry's challenge.

Authorization is decided before existence: a caller who may not act in a project gets the same 403 whether or
not it exists, so the API is no oracle for private project names; only callers allowed to act see 404s.
Refused changes are audited with result ``denied``. Errors are ``{"errors": [{"code", "message"}]}``: 400 bad
input (never echoing it: it may hold a password), 401, 403, 404, 405, 409 exists, 413 too large, 429
throttled. Every answer carries ``Cache-Control: no-store``: robot secrets are in some of them.

Not here: the rules of a change (``management.py``), the JSON shapes (``schemas.py``), the registry's own
``/v2`` and ``/auth/token``.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from trustyard.auth.audit import AuditEvent
from trustyard.auth.errors import AuthenticationError, AuthError, ThrottledError
from trustyard.auth.management import KEEP, Actor, IdentityAdmin, resolve_expiry
from trustyard.auth.model import Action, Robot
from trustyard.auth.policy import Kind, Principal
from trustyard.auth.roles import ROLE_ACTIONS
from trustyard.auth.schemas import (
    AuditEventOut,
    AuditFilters,
    AuditPage,
    GcRunList,
    GcRunOut,
    GcRunQuery,
    MemberList,
    MemberOut,
    MemberRole,
    NewProject,
    NewRobot,
    NewTeam,
    NewUser,
    NoBody,
    ProjectList,
    ProjectOut,
    ProjectPatch,
    RobotList,
    RobotOut,
    RobotPatch,
    RobotWithSecret,
    TeamList,
    TeamMembers,
    TeamOut,
    UserList,
    UserOut,
    UserPatch,
)
from trustyard.auth.service import AccessControl
from trustyard.auth.store import IdentityExistsError, UnknownIdentityError
from trustyard.registry import exposure as exposure_service
from trustyard.registry import overview, scan_pages
from trustyard.registry.api.access import RefusalError, authenticate, client_address, refuse
from trustyard.registry.gc import GcRunLog
from trustyard.registry.jobs import ScanJobs, StoredReport
from trustyard.registry.service import RegistryService
from trustyard.scan.schemas import SbomQuery, ScanStatusOut
from trustyard.scan.states import mark_document, vex_referrers
from trustyard.trust.signed import SignedLookup
from trustyard.trust.verdict import Verdict, judge, pull_gates

__all__ = ["ENDPOINTS", "PREFIX", "ApiError", "Call", "Endpoint", "invoke", "routes"]

PREFIX: Final = "/api/v1"
MAX_BODY: Final = 64 * 1024
_HEADERS: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# -- errors ----------------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer other than success, raised anywhere below the dispatcher."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The JSON error answer."""
        body = {"errors": [{"code": self.code, "message": self.message}]}
        return JSONResponse(body, status_code=self.status, headers={**_HEADERS, **self.headers})


def _forbidden(message: str) -> ApiError:
    return ApiError(403, "FORBIDDEN", message)


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "BAD_REQUEST", message)


def _from_refusal(refusal: RefusalError) -> ApiError:
    """A registry refusal (401 with its challenge, 429 with Retry-After) in this API's error shape."""
    passed = refusal.response().headers
    headers = {k: passed[k] for k in ("WWW-Authenticate", "Retry-After") if k in passed}
    code = {401: "UNAUTHORIZED", 429: "TOO_MANY_REQUESTS"}.get(refusal.status, "FORBIDDEN")
    return ApiError(refusal.status, code, refusal.message, headers)


def _from_auth_error(error: AuthError) -> ApiError:
    if isinstance(error, IdentityExistsError):
        return ApiError(409, "CONFLICT", error.message)
    if isinstance(error, UnknownIdentityError):
        return ApiError(404, "NOT_FOUND", error.message)
    if isinstance(error, ThrottledError):
        return ApiError(429, "TOO_MANY_REQUESTS", error.message, {"Retry-After": str(max(1, round(error.retry_after)))})
    return _bad_request(error.message)


def _invalid(error: ValidationError, where: str) -> ApiError:
    """A 400 naming each bad field and why, never its value (it may be a password)."""
    problems = []
    for item in error.errors(include_input=False, include_url=False, include_context=False)[:5]:
        location = ".".join(str(part) for part in item["loc"])
        problems.append(f"{location}: {item['msg']}" if location else item["msg"])
    return _bad_request(f"invalid {where}: " + "; ".join(problems))


# -- calls and endpoints ---------------------------------------------------------------------------------------

B = TypeVar("B", bound=BaseModel)
Reply = BaseModel | Response | None


@dataclass(frozen=True)
class Call:
    """One authenticated request, as a handler sees it."""

    principal: Principal
    params: Mapping[str, str]
    query_params: Sequence[tuple[str, str]]
    address: str
    access: AccessControl
    admin: IdentityAdmin
    endpoint: Endpoint[Any]
    registry: RegistryService | None = None
    """The registry's service, for the endpoints that read manifests and blobs (``None``: not served here)."""

    @property
    def actor(self) -> Actor:
        """The audit log's name for the caller, with its address."""
        return Actor(self.principal.subject, self.address)

    def query(self, model: type[B]) -> B:
        """The query string parsed into ``model`` (unknown or repeated parameters are a 400)."""
        seen: dict[str, str] = {}
        for key, value in self.query_params:
            if key in seen:
                raise _bad_request(f"query parameter {key!r} given more than once")
            seen[key] = value
        try:
            return model.model_validate(seen)
        except ValidationError as e:
            raise _invalid(e, "query") from None


@dataclass(frozen=True)
class Endpoint(Generic[B]):
    """One method on one path: its models, its handler, and the audit action of its change (if any)."""

    method: str
    path: str
    summary: str
    handler: Callable[[Call, B], Reply]
    body: type[B]
    response: type[BaseModel] | None
    status: int = 200
    query: type[BaseModel] | None = None
    action: str | None = None
    media_type: str = "application/json"

    @property
    def errors(self) -> tuple[int, ...]:
        """The error statuses this endpoint may answer (for the OpenAPI document)."""
        found = {401, 403}
        if self.body is not NoBody or self.query is not None:
            found.add(400)
        if "{" in self.path:
            found.add(404)
        if self.status == 201:
            found.add(409)
        return tuple(sorted(found))


# -- authorization ---------------------------------------------------------------------------------------------


def _require_admin(c: Call) -> None:
    if not c.principal.is_admin:
        raise _forbidden(f"only a system administrator may {c.endpoint.summary}")


def _require(c: Call, project: str, action: Action) -> None:
    """The caller must have ``action`` in ``project``; refused the same way whether the project exists or not."""
    if action not in c.access.policy.actions(c.principal, project):
        raise _forbidden(
            f"{c.principal.subject!r} may not {c.endpoint.summary} in project {project!r} (needs {action.value})"
        )


def _is_self(c: Call, name: str) -> bool:
    return c.principal.kind is Kind.USER and c.principal.name == name


# -- users -----------------------------------------------------------------------------------------------------


def list_users(c: Call, _: NoBody) -> UserList:
    """Administrators: every user."""
    _require_admin(c)
    return UserList(users=[UserOut.of(u) for u in c.access.store.list_users()])


def create_user(c: Call, body: NewUser) -> UserOut:
    """Administrators: a new user."""
    _require_admin(c)
    password = None if body.password is None else body.password.get_secret_value()
    user = c.admin.create_user(c.actor, body.name, password=password, email=body.email, is_admin=body.admin)
    return UserOut.of(user)


def get_user(c: Call, _: NoBody) -> UserOut:
    """Administrators, and a user asking about itself."""
    name = c.params["user"]
    if not (c.principal.is_admin or _is_self(c, name)):
        raise _forbidden(f"only a system administrator may {c.endpoint.summary} (other than oneself)")
    return UserOut.of(c.admin.user(name))


def _check_own_change(c: Call, body: UserPatch) -> None:
    """What a user may change about itself: its password, with the old one; never lock itself out."""
    if not c.principal.is_admin and body.model_fields_set - {"password", "old_password"}:
        raise _forbidden("only a system administrator may change a user's email, admin or disabled fields")
    if body.admin is False or body.disabled is True:
        raise _forbidden("you may not remove your own administrator rights or disable yourself; ask another admin")
    if body.password is None:
        return
    if body.old_password is None:
        raise _bad_request("changing your own password needs old_password")
    try:
        c.access.authenticator.login(c.principal.name, body.old_password.get_secret_value(), c.address)
    except AuthenticationError:
        raise _forbidden("old_password is not your current password") from None


def patch_user(c: Call, body: UserPatch) -> UserOut:
    """Administrators: any field of any user; a user: its own password."""
    name = c.params["user"]
    if _is_self(c, name):
        _check_own_change(c, body)
    elif not c.principal.is_admin:
        raise _forbidden(f"only a system administrator may {c.endpoint.summary} (other than one's own password)")
    if not body.model_fields_set - {"old_password"}:
        raise _bad_request("nothing to change: give email, admin, disabled or password")
    user = c.admin.update_user(
        c.actor,
        name,
        email=body.email if "email" in body.model_fields_set else KEEP,
        is_admin=body.admin,
        disabled=body.disabled,
        password=None if body.password is None else body.password.get_secret_value(),
    )
    return UserOut.of(user)


def delete_user(c: Call, _: NoBody) -> None:
    """Administrators, except of themselves."""
    _require_admin(c)
    if _is_self(c, c.params["user"]):
        raise _forbidden("you may not delete your own account; ask another administrator")
    c.admin.delete_user(c.actor, c.params["user"])


# -- teams -----------------------------------------------------------------------------------------------------


def list_teams(c: Call, _: NoBody) -> TeamList:
    """Administrators: every team."""
    _require_admin(c)
    return TeamList(teams=[TeamOut.of(t) for t in c.access.store.list_teams()])


def create_team(c: Call, body: NewTeam) -> TeamOut:
    """Administrators: a new, empty team."""
    _require_admin(c)
    return TeamOut.of(c.admin.create_team(c.actor, body.name))


def delete_team(c: Call, _: NoBody) -> None:
    """Administrators."""
    _require_admin(c)
    c.admin.delete_team(c.actor, c.params["team"])


def list_team_members(c: Call, _: NoBody) -> TeamMembers:
    """Administrators."""
    _require_admin(c)
    return TeamMembers(members=c.access.store.team_members(c.params["team"]))


def add_team_member(c: Call, _: NoBody) -> None:
    """Administrators."""
    _require_admin(c)
    c.admin.add_team_member(c.actor, c.params["team"], c.params["user"])


def remove_team_member(c: Call, _: NoBody) -> None:
    """Administrators."""
    _require_admin(c)
    c.admin.remove_team_member(c.actor, c.params["team"], c.params["user"])


# -- projects --------------------------------------------------------------------------------------------------


def list_projects(c: Call, _: NoBody) -> ProjectList:
    """The projects the caller has any action in: administrators all, others public ones and their own."""
    policy = c.access.policy
    visible = [p for p in c.access.store.list_projects() if policy.actions(c.principal, p.name)]
    return ProjectList(projects=[ProjectOut.of(p) for p in visible])


def create_project(c: Call, body: NewProject) -> ProjectOut:
    """Whoever may create projects; a user creating one becomes its project admin."""
    if not c.access.policy.may_create_project(c.principal):
        raise _forbidden(f"{c.principal.subject!r} may not create projects")
    creator = c.principal.name if c.principal.kind is Kind.USER else None
    return ProjectOut.of(c.admin.create_project(c.actor, body.name, public=body.public, admin=creator))


def get_project(c: Call, _: NoBody) -> ProjectOut:
    """Anyone with an action in the project (public projects: everyone)."""
    name = c.params["project"]
    if not c.access.policy.actions(c.principal, name):
        raise _forbidden(f"{c.principal.subject!r} may not {c.endpoint.summary} {name!r}")
    return ProjectOut.of(c.admin.project(name))


def patch_project(c: Call, body: ProjectPatch) -> ProjectOut:
    """Project admins and administrators."""
    name = c.params["project"]
    _require(c, name, Action.MANAGE_MEMBERS)
    project = c.admin.project(name)
    if body.public is not None:
        project = c.admin.set_project_public(c.actor, name, body.public)
    policy = body.policy(project.policy)
    if policy is not None:
        project = c.admin.set_project_policy(c.actor, name, policy)
    return ProjectOut.of(project)


def delete_project(c: Call, _: NoBody) -> None:
    """Administrators."""
    _require_admin(c)
    c.admin.delete_project(c.actor, c.params["project"])


# -- members ---------------------------------------------------------------------------------------------------


def list_members(c: Call, _: NoBody) -> MemberList:
    """Administrators, and members whose role may list (a public project shows its members to members only)."""
    project = c.params["project"]
    if not c.principal.is_admin:
        role = c.access.store.role_of(c.principal.name, project) if c.principal.kind is Kind.USER else None
        if role is None or Action.LIST not in ROLE_ACTIONS[role]:
            raise _forbidden(f"{c.principal.subject!r} may not {c.endpoint.summary} of project {project!r}")
    return MemberList(members=[MemberOut.of(m) for m in c.access.store.members(project)])


def _member(c: Call) -> dict[str, str]:
    return {"user": c.params["user"]} if "user" in c.params else {"team": c.params["team"]}


def set_member(c: Call, body: MemberRole) -> MemberOut:
    """Project admins and administrators: give a user or a team a role (replacing the one it had)."""
    _require(c, c.params["project"], Action.MANAGE_MEMBERS)
    return MemberOut.of(c.admin.set_member(c.actor, c.params["project"], body.role, **_member(c)))


def remove_member(c: Call, _: NoBody) -> None:
    """Project admins and administrators."""
    _require(c, c.params["project"], Action.MANAGE_MEMBERS)
    c.admin.remove_member(c.actor, c.params["project"], **_member(c))


# -- robots ----------------------------------------------------------------------------------------------------


def _robot_scope(c: Call) -> str | None:
    """The project of a project-robot path (the caller must manage its robots), ``None`` for system robots."""
    project = c.params.get("project")
    if project is None:
        _require_admin(c)
    else:
        _require(c, project, Action.MANAGE_ROBOTS)
    return project


def _scoped_robot(c: Call) -> Robot:
    """The robot the path names, if it lives where the path says (another project's robot is a 404 here)."""
    project = _robot_scope(c)
    robot = c.admin.robot(c.params["robot"])
    if robot.project != project:
        where = "system robot" if project is None else f"robot in project {project!r}"
        raise ApiError(404, "NOT_FOUND", f"no {where} named {robot.name!r}")
    return robot


def list_robots(c: Call, _: NoBody) -> RobotList:
    """A project's robots (its project admins), or the system robots (administrators)."""
    project = _robot_scope(c)
    if project is not None:
        c.admin.project(project)
    return RobotList(robots=[RobotOut.of(r) for r in c.access.store.list_robots(project)])


def create_robot(c: Call, body: NewRobot) -> RobotWithSecret:
    """A new robot; the answer holds its secret, the only time it is shown."""
    project = _robot_scope(c)
    expires = resolve_expiry(body.expires_in, body.expires_at)
    robot, secret = c.admin.create_robot(
        c.actor,
        body.name,
        [Action(p) for p in body.permissions],
        project=project,
        expires_at=None if expires is KEEP else expires,
        repositories=body.repositories,
    )
    return RobotWithSecret.with_secret(robot, secret)


def get_robot(c: Call, _: NoBody) -> RobotOut:
    """One robot, without its secret."""
    return RobotOut.of(_scoped_robot(c))


def patch_robot(c: Call, body: RobotPatch) -> RobotOut:
    """Enable or disable a robot, change its expiry, permissions or repository patterns."""
    robot = _scoped_robot(c)
    given = body.model_fields_set
    if not given:
        raise _bad_request("nothing to change: give disabled, permissions, repositories, expires_in or expires_at")
    never = "expires_at" in given and body.expires_at is None and body.expires_in is None
    updated = c.admin.update_robot(
        c.actor,
        robot.name,
        disabled=body.disabled,
        permissions=None if body.permissions is None else [Action(p) for p in body.permissions],
        repositories=body.repositories if "repositories" in given else KEEP,
        expires_at=None if never else resolve_expiry(body.expires_in, body.expires_at),
    )
    return RobotOut.of(updated)


def rotate_robot(c: Call, _: NoBody) -> RobotWithSecret:
    """A new secret for the robot, shown this once; the old one stops working at once."""
    robot, secret = c.admin.rotate_robot(c.actor, _scoped_robot(c).name)
    return RobotWithSecret.with_secret(robot, secret)


def delete_robot(c: Call, _: NoBody) -> None:
    """Delete a robot account."""
    c.admin.delete_robot(c.actor, _scoped_robot(c).name)


# -- audit -----------------------------------------------------------------------------------------------------


def _audit_filters(c: Call) -> AuditFilters:
    """The filters; administrators may read everything, project admins their project's events only."""
    filters = c.query(AuditFilters)
    if c.principal.is_admin:
        return filters
    if filters.project is None:
        raise _forbidden("only a system administrator may read the whole audit log; project admins add project=")
    _require(c, filters.project, Action.MANAGE_MEMBERS)
    return filters


def query_audit(c: Call, _: NoBody) -> AuditPage:
    """One page of matching events, oldest first (``next`` continues)."""
    filters = _audit_filters(c)
    c.access.audit.flush()
    events = c.access.audit.query(filters.query(), limit=filters.limit)
    following = events[-1].id if len(events) == filters.limit else None
    return AuditPage(events=[AuditEventOut.of(e) for e in events], next=following)


def export_audit(c: Call, _: NoBody) -> Response:
    """Every matching event as JSON lines, streamed (``limit`` caps the count when given)."""
    filters = _audit_filters(c)
    audit = c.access.audit
    audit.flush()
    limit = filters.limit if "limit" in filters.model_fields_set else None
    detail = filters.model_dump(mode="json", exclude_unset=True)
    audit.record(AuditEvent(c.principal.subject, "audit.export", address=c.address, detail=detail))

    def lines() -> Iterator[str]:
        for event in itertools.islice(audit.iterate(filters.query()), limit):
            yield json.dumps(event.to_json(), sort_keys=True) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=_HEADERS)


# -- scan results by manifest digest (issues 4 and 5) ------------------------------------------------------------


def _scanned(c: Call) -> tuple[ScanJobs, str]:
    """The scan queue and the digest, once the caller may pull the repository and it holds the manifest."""
    name, digest = c.params["name"], c.params["digest"]
    if Action.PULL not in c.access.policy.actions(c.principal, name):
        raise _forbidden(f"{c.principal.subject!r} may not {c.endpoint.summary} of {name!r} (needs pull)")
    jobs = ScanJobs(c.access.store.db)
    if not jobs.holds(name, digest):
        raise ApiError(404, "NOT_FOUND", f"manifest {digest} is not in repository {name}")
    return jobs, digest


def get_scan(c: Call, _: NoBody) -> ScanStatusOut:
    """Callers who may pull the repository: where the image is in the scan pipeline, and how fresh its data is."""
    jobs, digest = _scanned(c)
    job = jobs.state(digest)
    if job is None:
        raise ApiError(404, "NOT_FOUND", f"manifest {digest} has not been queued for scanning")
    report = jobs.report(digest)
    return ScanStatusOut(
        digest=digest,
        status=job.status,
        error=job.error,
        attempts=job.attempts,
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        indexed_at=report.indexed_at if report else None,
        checked_at=report.checked_at if report else None,
        data_generation=report.generation if report else None,
        data_time=report.data_time if report else None,
        vulnerabilities=len(report.finding_ids) if report else None,
        sbom_digest=report.sbom_digest if report else None,
    )


def _report(c: Call) -> StoredReport:
    jobs, digest = _scanned(c)
    report = jobs.report(digest)
    if report is None:
        job = jobs.state(digest)
        state = "not queued" if job is None else job.status.value + (f": {job.error}" if job.error else "")
        raise ApiError(404, "NOT_FOUND", f"manifest {digest} has no scan results ({state})")
    return report


def get_sbom(c: Call, _: NoBody) -> Response:
    """Callers who may pull the repository: the image's bill of materials (CycloneDX 1.6 or SPDX 2.3 JSON)."""
    fmt = c.query(SbomQuery).format
    report = _report(c)
    if fmt == "spdx-json":
        return Response(report.spdx, media_type="application/spdx+json", headers=_HEADERS)
    return Response(report.cyclonedx, media_type="application/vnd.cyclonedx+json", headers=_HEADERS)


def get_findings(c: Call, _: NoBody) -> scan_pages.FindingsPage:
    """Callers who may pull the repository: the image's vulnerability findings, re-checked as data changes, each
    with its state in this repository (VEX referrers and the project's allowlist applied, as the pull gate does);
    worst first, ``limit`` and ``offset`` page them (``total`` and ``counts`` describe them all)."""
    query = c.query(scan_pages.FindingsQuery)
    name, digest = c.params["name"], c.params["digest"]
    document = json.loads(_report(c).findings)
    statements = [] if c.registry is None else vex_referrers(c.registry, name, digest)
    policy = c.access.policy.pull_policy(name)
    marked = mark_document(
        document, statements=statements, policy=policy, repository=name, image_digest=digest, now=time.time()
    )
    return scan_pages.findings_page(marked, query)


def get_sbom_components(c: Call, _: NoBody) -> scan_pages.ComponentPage:
    """Callers who may pull the repository: the SBOM's components as rows, searchable (``q``) and paged."""
    query = c.query(scan_pages.ComponentQuery)
    return scan_pages.component_page(_report(c).cyclonedx, query)


def get_verdict(c: Call, _: NoBody) -> Verdict:
    """Callers who may pull the repository: whether the reference is signed, what its scan found, and whether
    the registry lets it be pulled now (the authorization plugin and the web interface ask; ``trust.verdict``)."""
    name, reference = c.params["name"], c.params["reference"]
    if Action.PULL not in c.access.policy.actions(c.principal, name):
        raise _forbidden(f"{c.principal.subject!r} may not {c.endpoint.summary} of {name!r} (needs pull)")
    db = c.access.store.db
    lookup = SignedLookup.shared(db, c.access.settings)
    gates = pull_gates(c.access, name, reference, c.principal.subject)
    policy = c.access.policy.pull_policy(name)
    found = judge(db, lookup, name, reference, gates, frozenset(), registry=c.registry, policy=policy)
    if found is None:
        raise ApiError(404, "NOT_FOUND", f"{reference[:140]!r} names no manifest in repository {name}")
    return found


# -- browsing: repositories, tags, images, exposure (issue 9: what the web interface shows) --------------------


def _registry(c: Call) -> RegistryService:
    if c.registry is None:
        raise ApiError(503, "UNAVAILABLE", "the registry is not served by this process")
    return c.registry


def _listable(c: Call, project: str | None) -> list[str]:
    """Repository names the caller may list (in ``project`` when given)."""
    policy = c.access.policy
    return [
        name
        for name in overview.repository_names(_registry(c))
        if (project is None or name.split("/", 1)[0] == project) and Action.LIST in policy.actions(c.principal, name)
    ]


def list_repositories(c: Call, _: NoBody) -> overview.RepositoryList:
    """Repositories the caller may list, with tag and image counts, storage used and the last push."""
    project = c.query(overview.RepositoryFilters).project
    return overview.list_repositories(_registry(c), _listable(c, project))


def list_repository_tags(c: Call, _: NoBody) -> overview.TagList:
    """Callers who may list the repository: a page of its tags (newest push first) with digest, size, platforms,
    pusher and scan summary."""
    name = c.params["name"]
    if Action.LIST not in c.access.policy.actions(c.principal, name):
        raise _forbidden(f"{c.principal.subject!r} may not {c.endpoint.summary} of {name!r} (needs list)")
    found = overview.list_tags(_registry(c), name, c.query(overview.TagPage))
    if found is None:
        raise ApiError(404, "NOT_FOUND", f"no repository {name!r}")
    return found


def get_image(c: Call, _: NoBody) -> overview.ImageDetail:
    """Callers who may pull the repository: one manifest's platforms, layers with history, and referrers."""
    name, digest = c.params["name"], c.params["digest"]
    if Action.PULL not in c.access.policy.actions(c.principal, name):
        raise _forbidden(f"{c.principal.subject!r} may not {c.endpoint.summary} of {name!r} (needs pull)")
    found = overview.image_detail(_registry(c), name, digest)
    if found is None:
        raise ApiError(404, "NOT_FOUND", f"manifest {digest} is not in repository {name}")
    return found


def get_exposure(c: Call, _: NoBody) -> exposure_service.Exposure:
    """The tagged images the caller may list, by worst severity, and the most widespread vulnerable packages."""
    return exposure_service.exposure(_registry(c), _listable(c, None))


def get_vulnerability_data(c: Call, _: NoBody) -> exposure_service.VulnerabilityData:
    """Any signed-in caller: the vulnerability store's sources, counts and ages."""
    return exposure_service.vulnerability_data(c.access.settings)


def list_gc_runs(c: Call, _: NoBody) -> GcRunList:
    """Administrators: the newest garbage-collection runs, scheduled or from ``trustyard gc``, newest first."""
    _require_admin(c)
    limit = c.query(GcRunQuery).limit
    return GcRunList(runs=[GcRunOut.of(run) for run in GcRunLog(c.access.store.db).recent(limit)])


# -- the table -------------------------------------------------------------------------------------------------

_USER = f"{PREFIX}/users/{{user}}"
_TEAM = f"{PREFIX}/teams/{{team}}"
_PROJECT = f"{PREFIX}/projects/{{project}}"
_PROJECT_ROBOT = f"{_PROJECT}/robots/{{robot}}"
_SYSTEM_ROBOT = f"{PREFIX}/robots/{{robot}}"
_MANIFEST = f"{PREFIX}/repositories/{{name}}/manifests/{{digest}}"


def _robot_endpoints(base: str, one: str, what: str) -> list[Endpoint[Any]]:
    """The same robot handlers under a project's path and under the system robots' path."""
    return [
        Endpoint("GET", base, f"list {what}", list_robots, NoBody, RobotList),
        Endpoint("POST", base, f"create {what}", create_robot, NewRobot, RobotWithSecret, 201, action="robot.create"),
        Endpoint("GET", one, f"get {what}", get_robot, NoBody, RobotOut),
        Endpoint("PATCH", one, f"change {what}", patch_robot, RobotPatch, RobotOut, action="robot.update"),
        Endpoint(
            "POST",
            f"{one}/secret",
            f"rotate the secret of {what}",
            rotate_robot,
            NoBody,
            RobotWithSecret,
            action="robot.rotate",
        ),
        Endpoint("DELETE", one, f"delete {what}", delete_robot, NoBody, None, 204, action="robot.delete"),
    ]


def _member_endpoints(kind: str, param: str) -> list[Endpoint[Any]]:
    """Setting and removing the role of a user, or of a team: the same handlers, one path each."""
    path = f"{_PROJECT}/members/{kind}/{{{param}}}"
    return [
        Endpoint("PUT", path, "set members' roles", set_member, MemberRole, MemberOut, action="member.set"),
        Endpoint("DELETE", path, "remove members", remove_member, NoBody, None, 204, action="member.remove"),
    ]


ENDPOINTS: Final[tuple[Endpoint[Any], ...]] = (
    Endpoint("GET", f"{PREFIX}/users", "list users", list_users, NoBody, UserList),
    Endpoint("POST", f"{PREFIX}/users", "create users", create_user, NewUser, UserOut, 201, action="user.create"),
    Endpoint("GET", _USER, "get users", get_user, NoBody, UserOut),
    Endpoint("PATCH", _USER, "change users", patch_user, UserPatch, UserOut, action="user.update"),
    Endpoint("DELETE", _USER, "delete users", delete_user, NoBody, None, 204, action="user.delete"),
    Endpoint("GET", f"{PREFIX}/teams", "list teams", list_teams, NoBody, TeamList),
    Endpoint("POST", f"{PREFIX}/teams", "create teams", create_team, NewTeam, TeamOut, 201, action="team.create"),
    Endpoint("DELETE", _TEAM, "delete teams", delete_team, NoBody, None, 204, action="team.delete"),
    Endpoint("GET", f"{_TEAM}/members", "list team members", list_team_members, NoBody, TeamMembers),
    Endpoint(
        "PUT",
        f"{_TEAM}/members/{{user}}",
        "add team members",
        add_team_member,
        NoBody,
        None,
        204,
        action="team.member.add",
    ),
    Endpoint(
        "DELETE",
        f"{_TEAM}/members/{{user}}",
        "remove team members",
        remove_team_member,
        NoBody,
        None,
        204,
        action="team.member.remove",
    ),
    Endpoint("GET", f"{PREFIX}/projects", "list projects", list_projects, NoBody, ProjectList),
    Endpoint(
        "POST",
        f"{PREFIX}/projects",
        "create projects",
        create_project,
        NewProject,
        ProjectOut,
        201,
        action="project.create",
    ),
    Endpoint("GET", _PROJECT, "see project", get_project, NoBody, ProjectOut),
    Endpoint("PATCH", _PROJECT, "change the project", patch_project, ProjectPatch, ProjectOut, action="project.update"),
    Endpoint("DELETE", _PROJECT, "delete projects", delete_project, NoBody, None, 204, action="project.delete"),
    Endpoint("GET", f"{_PROJECT}/members", "list the members", list_members, NoBody, MemberList),
    *_member_endpoints("users", "user"),
    *_member_endpoints("teams", "team"),
    *_robot_endpoints(f"{_PROJECT}/robots", _PROJECT_ROBOT, "robot accounts"),
    *_robot_endpoints(f"{PREFIX}/robots", _SYSTEM_ROBOT, "system robot accounts"),
    Endpoint("GET", f"{PREFIX}/audit", "read the audit log", query_audit, NoBody, AuditPage, query=AuditFilters),
    Endpoint(
        "GET",
        f"{PREFIX}/audit/export",
        "export the audit log",
        export_audit,
        NoBody,
        AuditEventOut,
        query=AuditFilters,
        media_type="application/x-ndjson",
    ),
    Endpoint("GET", f"{_MANIFEST}/scan", "see the scan", get_scan, NoBody, ScanStatusOut),
    Endpoint("GET", f"{_MANIFEST}/sbom", "read the SBOM", get_sbom, NoBody, None, query=SbomQuery),
    Endpoint(
        "GET",
        f"{_MANIFEST}/findings",
        "read the findings",
        get_findings,
        NoBody,
        scan_pages.FindingsPage,
        query=scan_pages.FindingsQuery,
    ),
    Endpoint(
        "GET",
        f"{_MANIFEST}/sbom/components",
        "read the SBOM",
        get_sbom_components,
        NoBody,
        scan_pages.ComponentPage,
        query=scan_pages.ComponentQuery,
    ),
    Endpoint(
        "GET", f"{PREFIX}/repositories/{{name}}/verdict/{{reference}}", "see the verdict", get_verdict, NoBody, Verdict
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/repositories",
        "list repositories",
        list_repositories,
        NoBody,
        overview.RepositoryList,
        query=overview.RepositoryFilters,
    ),
    Endpoint(
        "GET",
        f"{PREFIX}/repositories/{{name}}/tags",
        "list the tags",
        list_repository_tags,
        NoBody,
        overview.TagList,
        query=overview.TagPage,
    ),
    Endpoint("GET", _MANIFEST, "see the image", get_image, NoBody, overview.ImageDetail),
    Endpoint(
        "GET", f"{PREFIX}/gc/runs", "list garbage-collection runs", list_gc_runs, NoBody, GcRunList, query=GcRunQuery
    ),
    Endpoint("GET", f"{PREFIX}/exposure", "see the exposure", get_exposure, NoBody, exposure_service.Exposure),
    Endpoint(
        "GET",
        f"{PREFIX}/vulnerability-data",
        "see the vulnerability data",
        get_vulnerability_data,
        NoBody,
        exposure_service.VulnerabilityData,
    ),
)
"""Every endpoint of the management API."""


# -- dispatch --------------------------------------------------------------------------------------------------


async def _body(request: Request, model: type[B]) -> B:
    """The JSON body parsed into ``model``; at most ``MAX_BODY`` bytes are read."""
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_BODY:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {MAX_BODY} bytes")
    if not received.strip():
        raise _bad_request("a JSON object body is required")
    try:
        return model.model_validate_json(bytes(received))
    except ValidationError as e:
        raise _invalid(e, "body") from None


def _denial(call: Call, error: ApiError) -> AuditEvent | None:
    """A refused change is worth knowing about: who tried what, where."""
    action = call.endpoint.action
    if error.status != 403 or action is None:
        return None
    params = dict(call.params)
    return AuditEvent(
        call.principal.subject,
        action,
        "denied",
        project=params.pop("project", None),
        target=next(iter(params.values()), None),
        address=call.address,
        detail={"reason": error.message},
    )


async def _audit_denial(access: AccessControl, call: Call, error: ApiError) -> None:
    event = _denial(call, error)
    if event is not None:
        await run_in_threadpool(access.audit.record, event)


R = TypeVar("R")


def _endpoint_of(handler: Callable[..., Any], params: Mapping[str, str]) -> Endpoint[Any]:
    """The endpoint row that runs ``handler`` with these path parameters (robots: project or system path)."""
    for endpoint in ENDPOINTS:
        names = {part.split("}", 1)[0] for part in endpoint.path.split("{")[1:]}
        if endpoint.handler is handler and names == set(params):
            return endpoint
    raise LookupError(f"no endpoint runs {getattr(handler, '__name__', handler)!r} with parameters {sorted(params)}")


def invoke(
    handler: Callable[[Call, B], R],
    body: B,
    *,
    principal: Principal,
    address: str,
    access: AccessControl,
    registry: RegistryService | None,
    params: Mapping[str, str] | None = None,
    query: Sequence[tuple[str, str]] = (),
) -> R:
    """Run one endpoint's handler for ``principal`` exactly as the API would (the web pages' way in).

    The same authorization, the same service call and the same audit events, refused changes included;
    every refusal comes out as ``ApiError`` (status, code, message). Blocking: call it from a worker thread.
    """
    given = dict(params or {})
    call = Call(
        principal=principal,
        params=given,
        query_params=query,
        address=address,
        access=access,
        admin=IdentityAdmin(access.store, access.audit),
        endpoint=_endpoint_of(handler, given),
        registry=registry,
    )
    try:
        return handler(call, body)
    except ApiError as e:
        event = _denial(call, e)
        if event is not None:
            access.audit.record(event)
        raise
    except AuthError as e:
        raise _from_auth_error(e) from None


async def _handle(request: Request, endpoint: Endpoint[Any]) -> Response:
    access: AccessControl = request.app.state.access
    try:
        caller = await authenticate(request, access)
    except RefusalError as e:
        return _from_refusal(e).response()
    if caller.principal.anonymous:
        return _from_refusal(refuse(request, access, 401, "UNAUTHORIZED", "authentication required")).response()
    call = Call(
        principal=caller.principal,
        params=dict(request.path_params),
        query_params=request.query_params.multi_items(),
        address=client_address(request),
        access=access,
        admin=IdentityAdmin(access.store, access.audit),
        endpoint=endpoint,
        registry=getattr(request.app.state, "registry", None),
    )
    try:
        body = NoBody() if endpoint.body is NoBody else await _body(request, endpoint.body)
        reply = await run_in_threadpool(endpoint.handler, call, body)
    except ApiError as e:
        await _audit_denial(access, call, e)
        return e.response()
    except AuthError as e:
        return _from_auth_error(e).response()
    if isinstance(reply, Response):
        return reply
    if reply is None:
        return Response(status_code=endpoint.status, headers=_HEADERS)
    return JSONResponse(reply.model_dump(mode="json"), status_code=endpoint.status, headers=_HEADERS)


def _route(path: str, endpoints: Mapping[str, Endpoint[Any]]) -> Route:
    """One route per path, answering every method: an unknown one gets a JSON 405 naming those allowed."""
    allowed = ", ".join(endpoints)

    async def serve(request: Request) -> Response:
        endpoint = endpoints.get(request.method)
        if endpoint is None:
            error = ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here", {"Allow": allowed})
            return error.response()
        return await _handle(request, endpoint)

    return Route(path, serve, methods=_METHODS)


async def _unknown(request: Request) -> Response:
    return ApiError(404, "NOT_FOUND", f"no management API endpoint {request.url.path!r}").response()


def _routes() -> list[BaseRoute]:
    by_path: dict[str, dict[str, Endpoint[Any]]] = {}
    for endpoint in ENDPOINTS:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
    # a repository name has slashes: Starlette's ``path`` converter matches them (the table keeps OpenAPI's form)
    found: list[BaseRoute] = [
        _route(path.replace("{name}", "{name:path}"), methods) for path, methods in by_path.items()
    ]
    found.append(Route(PREFIX + "/{rest:path}", _unknown, methods=_METHODS))
    return found


routes: Final = _routes()
"""The management API's Starlette routes (``registry/app.py`` serves them beside the registry's)."""
