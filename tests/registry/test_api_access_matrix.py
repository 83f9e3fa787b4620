"""The authorization matrix: every kind of caller x every registry action x public and private project.

One table (``MATRIX``) gives the exact status of each case, read the way Harbor's "User Permissions By Role"
table is read; every case runs against its own copy of the world of ``access_helpers.py`` with Basic
credentials, checks the error code and challenge of a refusal, and checks that a refusal changed nothing
and a success did what it says. ``CATALOG`` says which repositories each caller sees in ``/v2/_catalog``.
``TOKEN_GRANTS`` runs the token flow once per caller (``GET /auth/token`` with Basic, then ``Bearer``) on
SQLite and PostgreSQL: the granted scope is exactly the intersection of what was asked and what is allowed,
and the registry honours the token and nothing beyond it.

The management API's member endpoints are rows of the same table (``/api/v1/projects/<project>/members``);
the rest of that API is tested in ``tests/auth/test_api_management.py``.

Not here: attacks (``test_api_access_attacks.py``), the token endpoint's protocol (``test_api_token_endpoint.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from trustyard.auth.model import Role

from .access_helpers import (
    ADMIN,
    ANONYMOUS,
    COMMONS,
    DEVELOPER,
    GUEST,
    LIMITED_GUEST,
    MAINTAINER,
    MEMBER_ROLES,
    NON_MEMBER,
    PRIVATE,
    PROJECT_ADMIN,
    PUBLIC,
    REPOSITORIES,
    ROBOT_DELETE,
    ROBOT_PATTERN,
    ROBOT_PULL,
    ROBOT_PUSH,
    ROLES,
    USERS,
    VAULT,
    Account,
    World,
    WorldTemplate,
    access_of,
    app_image,
    as_account,
    assert_challenge,
    assert_insufficient_scope,
    base_image,
    populate,
    world_fixtures,
)
from .conftest import ALL_MANIFEST_TYPES, ClientFactory, RegistryClient, assert_error, make_image

pytestmark = pytest.mark.anyio

# Columns, in ROLES order: admin, project_admin, maintainer, developer, guest, limited_guest, non_member,
# anonymous, and the project's robots with pull / pull+push / pull+delete / pull+push+list on <project>/app*.
# Rows: what is done to <project>/app. mount_*: POST .../blobs/uploads/?mount=<layer>&from=<source>: 201 is a
# mount, 202 an ordinary upload session (the source was not readable, so nothing was mounted). *_member(s): the
# management API on <project>: list its members, make the non-member a developer, remove the guest.
MATRIX = """
#                         admin p-adm maint dev   guest l-gst non   anon  r-pul r-psh r-del r-pat
pull_manifest    private  200   200   200   200   200   200   403   401   200   200   200   200
pull_manifest    public   200   200   200   200   200   200   200   200   200   200   200   200
pull_blob        private  200   200   200   200   200   200   403   401   200   200   200   200
pull_blob        public   200   200   200   200   200   200   200   200   200   200   200   200
push             private  201   201   201   201   403   403   403   401   403   201   403   201
push             public   201   201   201   201   403   403   403   401   403   201   403   201
delete_manifest  private  202   202   202   403   403   403   403   401   403   403   202   403
delete_manifest  public   202   202   202   403   403   403   403   401   403   403   202   403
delete_tag       private  202   202   202   403   403   403   403   401   403   403   403   403
delete_tag       public   202   202   202   403   403   403   403   401   403   403   403   403
list_tags        private  200   200   200   200   200   403   403   401   403   403   403   200
list_tags        public   200   200   200   200   200   200   200   200   200   200   200   200
mount_same       private  201   201   201   201   403   403   403   401   403   201   403   202
mount_same       public   201   201   201   201   403   403   403   401   403   201   403   201
mount_public     private  201   201   201   201   403   403   403   401   403   201   403   201
mount_public     public   201   201   201   201   403   403   403   401   403   201   403   201
mount_private    private  201   202   202   202   403   403   403   401   403   202   403   202
mount_private    public   201   202   202   202   403   403   403   401   403   202   403   202
list_members     private  200   200   200   200   200   403   403   401   403   403   403   403
list_members     public   200   200   200   200   200   403   403   401   403   403   403   403
set_member       private  200   200   403   403   403   403   403   401   403   403   403   403
set_member       public   200   200   403   403   403   403   403   401   403   403   403   403
remove_member    private  204   204   403   403   403   403   403   401   403   403   403   403
remove_member    public   204   204   403   403   403   403   403   401   403   403   403   403
"""

CHALLENGE_ACTIONS = {
    "pull_manifest": "pull",
    "pull_blob": "pull",
    "push": "pull,push",
    "delete_manifest": "delete",
    "delete_tag": "delete",
    "list_tags": "pull",
    "mount_same": "pull,push",
    "mount_public": "pull,push",
    "mount_private": "pull,push",
    "list_members": "",
    "set_member": "",
    "remove_member": "",
}
"""Action -> the scope actions a 401 challenge names for ``<project>/app`` (none for the management API)."""
MANAGEMENT = frozenset({"list_members", "set_member", "remove_member"})


@dataclass(frozen=True)
class Case:
    """One cell of the matrix."""

    action: str
    project: str
    role: str
    status: int

    def __str__(self) -> str:
        return f"{self.action}-{'private' if self.project == PRIVATE else 'public'}-{self.role}"


def _cases(table: str) -> list[Case]:
    cases: list[Case] = []
    for line in table.strip().splitlines():
        if line.startswith("#"):
            continue
        action, visibility, *statuses = line.split()
        assert action in CHALLENGE_ACTIONS and visibility in ("private", "public"), line
        assert len(statuses) == len(ROLES), line
        project = PRIVATE if visibility == "private" else PUBLIC
        cases += [Case(action, project, role, int(s)) for role, s in zip(ROLES, statuses, strict=True)]
    return cases


CASES = _cases(MATRIX)

EVERY_MEMBER_SEES = tuple(r for r in REPOSITORIES if not r.startswith(f"{VAULT}/"))
PUBLIC_ONLY = tuple(r for r in REPOSITORIES if r.split("/")[0] in (PUBLIC, COMMONS))
CATALOG: dict[str, tuple[str, ...]] = {
    ADMIN: REPOSITORIES,
    PROJECT_ADMIN: EVERY_MEMBER_SEES,
    MAINTAINER: EVERY_MEMBER_SEES,
    DEVELOPER: EVERY_MEMBER_SEES,
    GUEST: EVERY_MEMBER_SEES,
    LIMITED_GUEST: PUBLIC_ONLY,
    NON_MEMBER: PUBLIC_ONLY,
    ANONYMOUS: PUBLIC_ONLY,
    ROBOT_PULL: PUBLIC_ONLY,
    ROBOT_PUSH: PUBLIC_ONLY,
    ROBOT_DELETE: PUBLIC_ONLY,
    ROBOT_PATTERN: tuple(sorted((*PUBLIC_ONLY, "priv/app"))),
}
"""Role (robots: those of ``priv``) -> the repositories ``/v2/_catalog`` shows it, in order."""


# -- fixtures -------------------------------------------------------------------------------------------------


isolated, template, open_world, registry = world_fixtures()


# -- the actions ----------------------------------------------------------------------------------------------


def layer(image: str) -> str:
    """The digest of the first layer of an image of the world."""
    project, kind = image.split("/")
    doc = app_image(project) if kind == "app" else base_image(project)
    return doc.blobs[1].digest


async def admin_status(client: RegistryClient, world: World, method: str, path: str) -> int:
    """What the system administrator gets for a request (to look at the state a case left behind)."""
    response = await client.http.request(
        method, path, auth=world.account(ADMIN).auth, headers={"Accept": ALL_MANIFEST_TYPES}
    )
    return response.status_code


Step = Callable[[RegistryClient, World, Account, str], Awaitable[httpx.Response]]


async def pull_manifest(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
    response = await client.http.get(
        f"/v2/{project}/app/manifests/v1", auth=who.auth, headers={"Accept": ALL_MANIFEST_TYPES}
    )
    if response.status_code == 200:
        assert response.content == app_image(project).body
    return response


async def pull_blob(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
    blob = app_image(project).blobs[1]
    response = await client.http.get(f"/v2/{project}/app/blobs/{blob.digest}", auth=who.auth)
    if response.status_code == 200:
        assert response.content == blob.data
    return response


async def push(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
    """Every step of a push (blob uploads, then the manifest) gets the case's status, or succeeds."""
    image = make_image(f"{project}/new")
    name = f"{project}/app"
    for blob in image.blobs:
        started = await client.http.post(f"/v2/{name}/blobs/uploads/", auth=who.auth)
        if started.status_code != 202:
            return started
        done = await client.http.put(
            started.headers["location"], params={"digest": blob.digest}, content=blob.data, auth=who.auth
        )
        assert done.status_code == 201, done.text
    response = await client.http.put(
        f"/v2/{name}/manifests/new", content=image.body, headers={"Content-Type": image.media_type}, auth=who.auth
    )
    if response.status_code == 201:
        assert await admin_status(client, world, "GET", f"/v2/{name}/manifests/new") == 200
    return response


async def push_manifest_only(client: RegistryClient, who: Account, project: str) -> httpx.Response:
    """A refused pusher's manifest PUT (of an image whose blobs are there) is refused the same way."""
    image = app_image(project)
    return await client.http.put(
        f"/v2/{project}/app/manifests/new",
        content=image.body,
        headers={"Content-Type": image.media_type},
        auth=who.auth,
    )


async def delete_manifest(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
    digest = app_image(project).digest
    response = await client.http.delete(f"/v2/{project}/app/manifests/{digest}", auth=who.auth)
    gone = response.status_code == 202
    assert await admin_status(client, world, "GET", f"/v2/{project}/app/manifests/{digest}") == (404 if gone else 200)
    return response


async def delete_tag(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
    response = await client.http.delete(f"/v2/{project}/app/manifests/v1", auth=who.auth)
    gone = response.status_code == 202
    assert await admin_status(client, world, "GET", f"/v2/{project}/app/manifests/v1") == (404 if gone else 200)
    digest = app_image(project).digest
    assert await admin_status(client, world, "GET", f"/v2/{project}/app/manifests/{digest}") == 200
    return response


async def list_tags(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
    response = await client.http.get(f"/v2/{project}/app/tags/list", auth=who.auth)
    if response.status_code == 200:
        assert response.json() == {"name": f"{project}/app", "tags": ["v1"]}
    return response


async def list_members(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
    response = await client.http.get(f"/api/v1/projects/{project}/members", auth=who.auth)
    if response.status_code == 200:
        members = {(m["kind"], m["name"], m["role"]) for m in response.json()["members"]}
        assert members == {("user", USERS[role], str(r)) for role, r in MEMBER_ROLES.items()}
    return response


async def set_member(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
    path = f"/api/v1/projects/{project}/members/users/{USERS[NON_MEMBER]}"
    response = await client.http.put(path, json={"role": "developer"}, auth=who.auth)
    role = access_of(client).store.role_of(USERS[NON_MEMBER], project)
    assert role is (Role.DEVELOPER if response.status_code == 200 else None)
    return response


async def remove_member(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
    response = await client.http.delete(f"/api/v1/projects/{project}/members/users/{USERS[GUEST]}", auth=who.auth)
    role = access_of(client).store.role_of(USERS[GUEST], project)
    assert role is (None if response.status_code == 204 else Role.GUEST)
    return response


def mount_from(source: Callable[[str], str]) -> Step:
    """Mounting the first layer of ``source(project)`` into ``<project>/app``."""

    async def mount(client: RegistryClient, world: World, who: Account, project: str) -> httpx.Response:
        origin = source(project)
        digest = layer(origin)
        target = f"{project}/app"
        response = await client.http.post(
            f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": origin}, auth=who.auth
        )
        mounted = await admin_status(client, world, "HEAD", f"/v2/{target}/blobs/{digest}")
        if response.status_code == 201:
            assert response.headers["location"] == f"/v2/{target}/blobs/{digest}"
            assert mounted == 200
        else:
            assert mounted == 404, "a refused or declined mount must not link the blob"
        if response.status_code == 202:
            assert response.headers["location"].startswith(f"/v2/{target}/blobs/uploads/")
        return response

    return mount


ACTIONS: dict[str, Step] = {
    "pull_manifest": pull_manifest,
    "pull_blob": pull_blob,
    "push": push,
    "delete_manifest": delete_manifest,
    "delete_tag": delete_tag,
    "list_tags": list_tags,
    "mount_same": mount_from(lambda project: f"{project}/base"),
    "mount_public": mount_from(lambda project: f"{COMMONS}/base"),
    "mount_private": mount_from(lambda project: f"{VAULT}/base"),
    "list_members": list_members,
    "set_member": set_member,
    "remove_member": remove_member,
}


def assert_management_refusal(response: httpx.Response, case: Case) -> None:
    """The management API's 401 challenges like the registry's (no scope: tokens' scopes play no part there)."""
    assert response.headers["cache-control"] == "no-store"
    if case.status in (401, 403):
        code = "UNAUTHORIZED" if case.status == 401 else "FORBIDDEN"
        assert [e["code"] for e in response.json()["errors"]] == [code], response.text
    if case.status == 401:
        assert_challenge(response)


def assert_refusal(response: httpx.Response, case: Case, who: Account) -> None:
    """A 401 challenges for the scope the action needs; a 403 is ``DENIED`` naming who may not do it."""
    if case.action in MANAGEMENT:
        assert_management_refusal(response, case)
    elif case.status == 401:
        assert_error(response, 401, "UNAUTHORIZED")
        assert_challenge(response, f"repository:{case.project}/app:{CHALLENGE_ACTIONS[case.action]}")
    elif case.status == 403:
        assert_error(response, 403, "DENIED")
        message = response.json()["errors"][0]["message"]
        kind = "robot account" if who.role.startswith("robot") else "user"
        assert f"{kind} {who.subject!r} may not" in message, message
        assert f"in repository '{case.project}/app'" in message, message


# -- the tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_matrix(case: Case, registry: RegistryClient, template: WorldTemplate) -> None:
    world = template.world
    who = world.account(case.role, case.project)
    response = await ACTIONS[case.action](registry, world, who, case.project)
    assert response.status_code == case.status, (case, response.status_code, response.text)
    assert_refusal(response, case, who)
    if case.action == "push" and case.status in (401, 403):
        manifest = await push_manifest_only(registry, who, case.project)
        assert manifest.status_code == case.status, manifest.text
        assert_refusal(manifest, case, who)
        assert await admin_status(registry, world, "GET", f"/v2/{case.project}/app/manifests/new") == 404


def test_the_matrix_covers_every_caller_action_and_visibility() -> None:
    cells = {(c.action, c.project, c.role) for c in CASES}
    assert len(cells) == len(CASES) == len(CHALLENGE_ACTIONS) * 2 * len(ROLES)


@pytest.mark.parametrize("role", ROLES)
async def test_catalog_shows_only_what_the_caller_may_list(
    role: str, registry: RegistryClient, template: WorldTemplate
) -> None:
    who = template.world.account(role, PRIVATE)
    response = await registry.http.get("/v2/_catalog", auth=who.auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"repositories": list(CATALOG[role])}


async def test_catalog_pages_count_only_visible_repositories(registry: RegistryClient, template: WorldTemplate) -> None:
    """Pagination works on what the caller sees: hidden repositories neither fill a page nor end it early."""
    who = template.world.account(NON_MEMBER)
    seen: list[str] = []
    url = "/v2/_catalog?n=1"
    while url:
        response = await registry.http.get(url, auth=who.auth)
        assert response.status_code == 200
        names = response.json()["repositories"]
        assert len(names) <= 1
        seen += names
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else ""
    assert seen == list(PUBLIC_ONLY)


async def test_push_to_a_missing_project_creates_it_for_users_only(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    """A user may create a project by pushing to it (and administers it); robots and anonymous may not."""
    world = template.world
    image = make_image("fresh")
    for role in (ANONYMOUS, ROBOT_PUSH):
        who = world.account(role)
        response = await registry.http.post("/v2/fresh/app/blobs/uploads/", auth=who.auth)
        assert response.status_code == (401 if role == ANONYMOUS else 403), response.text
    assert access_of(registry).store.get_project("fresh") is None
    with as_account(registry, world.account(NON_MEMBER)):
        await registry.push("fresh/app", image, "v1")
    project = access_of(registry).store.get_project("fresh")
    assert project is not None and not project.public
    assert access_of(registry).store.role_of("outsider", "fresh") is not None
    guest = world.account(GUEST)
    response = await registry.http.get("/v2/fresh/app/manifests/v1", auth=guest.auth)
    assert response.status_code == 403


# -- the token flow -------------------------------------------------------------------------------------------

ASKED = ("priv/app", "priv/base", "pub/app")
TOKEN_GRANTS = """
#               priv/app          priv/base         pub/app
admin           pull,push,delete  pull,push,delete  pull,push,delete
project_admin   pull,push,delete  pull,push,delete  pull,push,delete
maintainer      pull,push,delete  pull,push,delete  pull,push,delete
developer       pull,push         pull,push         pull,push
guest           pull              pull              pull
limited_guest   pull              pull              pull
non_member      -                 -                 pull
anonymous       -                 -                 pull
robot_pull      pull              pull              pull
robot_push      pull,push         pull,push         pull
robot_delete    pull,delete       pull,delete       pull
robot_pattern   pull,push         -                 pull
"""
"""Role (robots: those of ``priv``) -> what a token asked for pull,push,delete on each repository grants."""


def _grants(table: str) -> dict[str, dict[str, frozenset[str]]]:
    grants: dict[str, dict[str, frozenset[str]]] = {}
    for line in table.strip().splitlines():
        if line.startswith("#"):
            continue
        role, *cells = line.split()
        assert role in ROLES and len(cells) == len(ASKED), line
        grants[role] = {repo: frozenset(c.split(",")) for repo, c in zip(ASKED, cells, strict=True) if c != "-"}
    assert set(grants) == set(ROLES)
    return grants


GRANTS = _grants(TOKEN_GRANTS)


@pytest.mark.parametrize("role", ROLES)
async def test_token_flow_grants_the_intersection_of_asked_and_allowed(
    role: str, client_factory: ClientFactory
) -> None:
    client = await client_factory(insecure_anonymous_push=False)
    world = await populate(client)
    who = world.account(role, PRIVATE)
    asked = [("scope", f"repository:{repo}:pull,push,delete") for repo in ASKED]
    params = httpx.QueryParams([("service", "trustyard"), ("scope", "registry:catalog:*"), *asked])
    response = await client.http.get("/auth/token", params=params, auth=who.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    claims = access_of(client).tokens.verify(body["token"])
    assert claims.subject == who.subject
    granted = {(s.type, s.name): s.actions for s in claims.access}
    expected = {("repository", repo): actions for repo, actions in GRANTS[role].items()}
    expected[("registry", "catalog")] = frozenset({"*"})
    assert granted == expected
    assert sorted(body["scope"].split(" ")) == sorted(str(s) for s in claims.access)

    bearer = {"Authorization": f"Bearer {body['token']}"}
    mine = GRANTS[role].get("priv/app", frozenset())
    refused = 401 if role == ANONYMOUS else 403

    pulled = await client.http.get("/v2/priv/app/manifests/v1", headers={**bearer, "Accept": ALL_MANIFEST_TYPES})
    assert pulled.status_code == (200 if "pull" in mine else refused), pulled.text
    started = await client.http.post("/v2/priv/app/blobs/uploads/", headers=bearer)
    assert started.status_code == (202 if "push" in mine else refused), started.text
    catalog = await client.http.get("/v2/_catalog", headers=bearer)
    assert catalog.status_code == 200
    assert catalog.json()["repositories"] == list(CATALOG[role])
    digest = app_image(PRIVATE).digest
    deleted = await client.http.delete(f"/v2/priv/app/manifests/{digest}", headers=bearer)
    assert deleted.status_code == (202 if "delete" in mine else refused), deleted.text

    # a token asked for less grants less, whatever the caller may do
    response = await client.http.get(
        "/auth/token", params={"service": "trustyard", "scope": "repository:pub/app:pull"}, auth=who.auth
    )
    narrow = access_of(client).tokens.verify(response.json()["token"])
    assert [(s.type, s.name, s.actions) for s in narrow.access] == [("repository", "pub/app", frozenset({"pull"}))]
    started = await client.http.post(
        "/v2/pub/app/blobs/uploads/", headers={"Authorization": f"Bearer {response.json()['token']}"}
    )
    if "push" in GRANTS[role]["pub/app"]:
        assert_insufficient_scope(started, "repository:pub/app:pull,push")
    else:
        assert started.status_code == refused, started.text
