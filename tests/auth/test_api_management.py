"""The management API (``/api/v1``) through the real app: users, teams, projects, members, robot accounts and
the audit log, who may do what, what each change leaves in the audit log, and the OpenAPI document.

Every test runs on SQLite and on PostgreSQL (``database_url``) and asserts exact statuses and bodies. Callers
use Bearer tokens (``conftest.Api``); the tests about passwords and Basic credentials use those.

Not here: the audit log's own storage and queries (``test_audit.py``), the registry's authorization matrix
(``tests/registry/test_api_access_matrix.py``), the CLI (``tests/cli/test_admin_cli.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route

from trustyard.auth.api import ENDPOINTS, MAX_BODY, PREFIX
from trustyard.auth.model import ROBOT_ACTIONS, Action, Role
from trustyard.auth.schemas import RobotPermission
from trustyard.db import models

from .conftest import ADMIN, Api, ApiFactory

pytestmark = pytest.mark.anyio

ALICE_PASSWORD = "wonderland-1"


def assert_error(response: httpx.Response, status: int, code: str, message: str | None = None) -> str:
    """The response is this API's JSON error (exactly ``message`` when given); returns the message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert set(error) == {"code", "message"} and error["code"] == code, body
    if message is not None:
        assert error["message"] == message, body
    assert isinstance(error["message"], str) and error["message"]
    return str(error["message"])


def stamped(body: dict[str, Any], *fields: str) -> dict[str, Any]:
    """``body`` without its time fields, after checking each is an RFC 3339 UTC time (or null)."""
    rest = dict(body)
    for name in fields:
        value = rest.pop(name)
        if value is not None:
            assert dt.datetime.fromisoformat(value).utcoffset() == dt.timedelta(0), value
    return rest


def user_json(name: str, *, email: str | None = None, admin: bool = False, disabled: bool = False) -> dict[str, Any]:
    """A user's body without ``created_at``."""
    return {"name": name, "email": email, "admin": admin, "disabled": disabled}


def project_json(name: str, *, public: bool = False, **policy: Any) -> dict[str, Any]:
    """A project's body without ``created_at``: the pull policy demands nothing unless ``policy`` says so."""
    demands: dict[str, Any] = {
        "content_trust": False,
        "block_severity": None,
        "block_unscanned": False,
        "allowlist": [],
    }
    return {"name": name, "public": public, **demands, **policy}


def setup_project(api: Api, project: str = "lab", **roles: Role) -> None:
    """A private project with users (created without passwords) in the given roles."""
    store = api.access.store
    store.create_project(project)
    for user, role in roles.items():
        if store.get_user(user) is None:
            store.create_user(user)
        store.set_member(project, role, user=user)


def actions_of(api: Api, **filters: Any) -> list[tuple[str, str, str, str | None]]:
    """(actor, action, result, target) of the audit events matching ``filters``, leaving out logins."""
    return [(e.actor, e.action, e.result, e.target) for e in api.events(**filters) if e.action != "login"]


# -- authentication --------------------------------------------------------------------------------------------


async def test_anonymous_callers_get_401_with_the_registry_challenge(api: Api) -> None:
    response = await api.get("/users", who=None)
    assert_error(response, 401, "UNAUTHORIZED", "authentication required")
    assert response.headers["www-authenticate"] == 'Bearer realm="http://registry.test/auth/token",service="trustyard"'


async def test_basic_credentials_work_and_bad_ones_get_401(api: Api) -> None:
    api.access.store.create_user("alice", password=ALICE_PASSWORD)
    response = await api.get("/users/alice", auth=("alice", ALICE_PASSWORD))
    assert response.status_code == 200
    assert stamped(response.json(), "created_at") == user_json("alice")
    bad = await api.get("/users/alice", auth=("alice", "not-her-password"))
    assert_error(bad, 401, "UNAUTHORIZED", "invalid username or password")
    assert bad.headers["www-authenticate"].startswith('Bearer realm="http://registry.test/auth/token"')
    forged = await api.get("/users", headers={"Authorization": "Bearer not.a.token"})
    assert_error(forged, 401, "UNAUTHORIZED")


async def test_a_disabled_user_cannot_call_the_api(api: Api) -> None:
    api.access.store.create_user("alice", password=ALICE_PASSWORD)
    token = api.bearer("alice")
    assert (await api.get("/projects", auth=("alice", ALICE_PASSWORD))).status_code == 200
    response = await api.patch("/users/alice", json={"disabled": True})
    assert response.status_code == 200 and response.json()["disabled"] is True
    basic = await api.get("/projects", auth=("alice", ALICE_PASSWORD))
    assert_error(basic, 401, "UNAUTHORIZED", "account 'alice' is disabled")
    bearer = await api.get("/projects", headers=token, who=None)
    assert_error(bearer, 401, "UNAUTHORIZED", "account 'alice' is disabled")


async def test_a_robot_cannot_manage_anything(api: Api) -> None:
    setup_project(api, alice=Role.PROJECT_ADMIN)
    created = await api.post("/projects/lab/robots", json={"name": "ci", "permissions": ["pull", "push"]})
    secret = created.json()["secret"]
    robot = ("robot$ci", secret)
    assert_error(await api.get("/users", auth=robot), 403, "FORBIDDEN", "only a system administrator may list users")
    assert_error(await api.get("/projects/lab/robots", auth=robot), 403, "FORBIDDEN")
    assert_error(
        await api.put("/projects/lab/members/users/alice", auth=robot, json={"role": "guest"}), 403, "FORBIDDEN"
    )
    assert_error(await api.post("/projects", auth=robot, json={"name": "mine"}), 403, "FORBIDDEN")


# -- users -----------------------------------------------------------------------------------------------------


async def test_an_administrator_manages_a_users_whole_life(api: Api) -> None:
    created = await api.post("/users", json={"name": "bob", "password": "builder-99", "email": "bob@example.org"})
    assert created.status_code == 201
    assert stamped(created.json(), "created_at") == user_json("bob", email="bob@example.org")
    listed = await api.get("/users")
    assert [stamped(u, "created_at") for u in listed.json()["users"]] == [
        user_json("bob", email="bob@example.org"),
        user_json(ADMIN, admin=True),
    ]
    patched = await api.patch("/users/bob", json={"email": None, "admin": True})
    assert stamped(patched.json(), "created_at") == user_json("bob", admin=True)
    assert stamped((await api.get("/users/bob")).json(), "created_at") == user_json("bob", admin=True)
    deleted = await api.delete("/users/bob")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(await api.get("/users/bob"), 404, "NOT_FOUND", "no user named 'bob'")
    assert_error(await api.delete("/users/bob"), 404, "NOT_FOUND", "no user named 'bob'")
    assert actions_of(api, actor=ADMIN) == [
        (ADMIN, "user.create", "success", "bob"),
        (ADMIN, "user.update", "success", "bob"),
        (ADMIN, "user.delete", "success", "bob"),
    ]
    create, update = api.events(action="user.create")[0], api.events(action="user.update")[0]
    assert create.detail == {"email": "bob@example.org", "admin": False, "password": True}
    assert update.detail == {"email": None, "admin": True}
    assert create.address == "127.0.0.1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"name": "bob", "password": "short"},
            "invalid body: password: Value error, a password needs at least 8 characters",
        ),
        ({"name": "bob", "colour": "blue"}, "invalid body: colour: Extra inputs are not permitted"),
        (
            {"name": "bob", "email": "not an address"},
            "invalid body: email: String should match pattern '^[^@\\s]+@[^@\\s]+$'",
        ),
        (
            {"name": "bo b"},
            "invalid user name 'bo b': use letters, digits, '.', '_', '@' and '-', starting with a letter or digit",
        ),
        ({"password": "long-enough"}, "invalid body: name: Field required"),
        ([], "invalid body: Input should be an object"),
    ],
    ids=["short-password", "unknown-field", "bad-email", "bad-name", "no-name", "not-an-object"],
)
async def test_bad_user_bodies_get_400_without_echoing_them(api: Api, body: Any, message: str) -> None:
    response = await api.post("/users", json=body)
    assert_error(response, 400, "BAD_REQUEST", message)
    assert api.access.store.list_users()[0].name == ADMIN and len(api.access.store.list_users()) == 1


async def test_malformed_empty_and_oversized_bodies(api: Api) -> None:
    not_json = await api.post("/users", content=b"{name: bob", headers={"Content-Type": "application/json"})
    assert assert_error(not_json, 400, "BAD_REQUEST").startswith("invalid body: Invalid JSON")
    assert_error(await api.post("/users", content=b""), 400, "BAD_REQUEST", "a JSON object body is required")
    huge = await api.post("/users", content=b" " * (MAX_BODY + 1))
    assert_error(huge, 413, "PAYLOAD_TOO_LARGE", f"the body exceeds {MAX_BODY} bytes")


async def test_a_user_name_taken_is_409(api: Api) -> None:
    assert (await api.post("/users", json={"name": "bob"})).status_code == 201
    assert_error(await api.post("/users", json={"name": "bob"}), 409, "CONFLICT", "a user named 'bob' exists already")


async def test_users_see_themselves_only_and_refusals_are_audited(api: Api) -> None:
    api.access.store.create_user("alice")
    api.access.store.create_user("bob")
    assert stamped((await api.get("/users/alice", who="alice")).json(), "created_at") == user_json("alice")
    message = "only a system administrator may get users (other than oneself)"
    assert_error(await api.get("/users/bob", who="alice"), 403, "FORBIDDEN", message)
    assert_error(await api.get("/users", who="alice"), 403, "FORBIDDEN", "only a system administrator may list users")
    create = await api.post("/users", who="alice", json={"name": "mallory"})
    assert_error(create, 403, "FORBIDDEN", "only a system administrator may create users")
    promote = await api.patch("/users/alice", who="alice", json={"admin": True})
    message = "only a system administrator may change a user's email, admin or disabled fields"
    assert_error(promote, 403, "FORBIDDEN", message)
    assert_error(await api.delete("/users/bob", who="alice"), 403, "FORBIDDEN")
    assert api.access.store.get_user("mallory") is None and not api.access.store.get_user("alice").is_admin  # type: ignore[union-attr]
    assert actions_of(api, actor="alice") == [
        ("alice", "user.create", "denied", None),
        ("alice", "user.update", "denied", "alice"),
        ("alice", "user.delete", "denied", "bob"),
    ]


async def test_a_user_changes_its_own_password_only_with_the_old_one(api: Api) -> None:
    api.access.store.create_user("alice", password=ALICE_PASSWORD)
    me = ("alice", ALICE_PASSWORD)
    without = await api.patch("/users/alice", auth=me, json={"password": "new-secret-1"})
    assert_error(without, 400, "BAD_REQUEST", "changing your own password needs old_password")
    wrong = await api.patch("/users/alice", auth=me, json={"password": "new-secret-1", "old_password": "guess-123"})
    assert_error(wrong, 403, "FORBIDDEN", "old_password is not your current password")
    right = await api.patch("/users/alice", auth=me, json={"password": "new-secret-1", "old_password": ALICE_PASSWORD})
    assert right.status_code == 200 and stamped(right.json(), "created_at") == user_json("alice")
    assert_error(await api.get("/users/alice", auth=me), 401, "UNAUTHORIZED", "invalid username or password")
    assert (await api.get("/users/alice", auth=("alice", "new-secret-1"))).status_code == 200
    [event] = api.events(action="user.update", result="success")
    assert event.detail == {"password": "changed"}
    exported = json.dumps([e.to_json() for e in api.events()])
    assert ALICE_PASSWORD not in exported and "new-secret-1" not in exported and "guess-123" not in exported


async def test_an_administrator_sets_passwords_but_cannot_lock_itself_out(api: Api) -> None:
    api.access.store.create_user("alice")
    assert (await api.patch("/users/alice", json={"password": "given-by-admin"})).status_code == 200
    assert (await api.get("/users/alice", auth=("alice", "given-by-admin"))).status_code == 200
    message = "you may not remove your own administrator rights or disable yourself; ask another admin"
    assert_error(await api.patch(f"/users/{ADMIN}", json={"admin": False}), 403, "FORBIDDEN", message)
    assert_error(await api.patch(f"/users/{ADMIN}", json={"disabled": True}), 403, "FORBIDDEN", message)
    message = "you may not delete your own account; ask another administrator"
    assert_error(await api.delete(f"/users/{ADMIN}"), 403, "FORBIDDEN", message)
    nothing = await api.patch("/users/alice", json={})
    assert_error(nothing, 400, "BAD_REQUEST", "nothing to change: give email, admin, disabled or password")


# -- teams -----------------------------------------------------------------------------------------------------


async def test_teams_and_their_members(api: Api) -> None:
    api.access.store.create_user("alice")
    created = await api.post("/teams", json={"name": "devs"})
    assert created.status_code == 201 and stamped(created.json(), "created_at") == {"name": "devs"}
    assert_error(await api.post("/teams", json={"name": "devs"}), 409, "CONFLICT", "a team named 'devs' exists already")
    assert [t["name"] for t in (await api.get("/teams")).json()["teams"]] == ["devs"]
    assert (await api.put("/teams/devs/members/alice")).status_code == 204
    assert (await api.get("/teams/devs/members")).json() == {"members": ["alice"]}
    assert_error(await api.put("/teams/devs/members/nobody"), 404, "NOT_FOUND", "no user named 'nobody'")
    assert (await api.delete("/teams/devs/members/alice")).status_code == 204
    again = await api.delete("/teams/devs/members/alice")
    assert_error(again, 404, "NOT_FOUND", "user 'alice' is not a member of team 'devs'")
    assert (await api.delete("/teams/devs")).status_code == 204
    assert_error(await api.get("/teams/devs/members"), 404, "NOT_FOUND", "no team named 'devs'")
    assert_error(await api.get("/teams", who="alice"), 403, "FORBIDDEN", "only a system administrator may list teams")
    assert actions_of(api, action="team.member.add") == [(ADMIN, "team.member.add", "success", "devs")]


# -- projects --------------------------------------------------------------------------------------------------


async def test_a_user_creating_a_project_becomes_its_project_admin(api: Api) -> None:
    api.access.store.create_user("alice")
    created = await api.post("/projects", who="alice", json={"name": "lab", "public": True})
    assert created.status_code == 201 and stamped(created.json(), "created_at") == project_json("lab", public=True)
    members = await api.get("/projects/lab/members", who="alice")
    assert members.json() == {"members": [{"kind": "user", "name": "alice", "role": "project_admin"}]}
    again = await api.post("/projects", who="alice", json={"name": "lab"})
    assert_error(again, 409, "CONFLICT", "a project named 'lab' exists already")
    bad = await api.post("/projects", who="alice", json={"name": "Lab/x"})
    assert assert_error(bad, 400, "BAD_REQUEST").startswith("invalid project name 'Lab/x'")
    [event] = api.events(action="project.create")
    assert (event.actor, event.project, event.detail) == ("alice", "lab", {"public": True, "admin": "alice"})


async def test_project_creation_can_be_reserved_to_administrators(api_factory: ApiFactory) -> None:
    api = await api_factory(users_create_projects=False)
    api.access.store.create_user("alice")
    response = await api.post("/projects", who="alice", json={"name": "lab"})
    assert_error(response, 403, "FORBIDDEN", "'alice' may not create projects")
    assert (await api.post("/projects", json={"name": "lab"})).status_code == 201


async def test_projects_are_listed_as_the_caller_may_see_them(api: Api) -> None:
    store = api.access.store
    setup_project(api, "mine", alice=Role.GUEST)
    store.create_project("open", public=True)
    store.create_project("secret")
    names = [p["name"] for p in (await api.get("/projects", who="alice")).json()["projects"]]
    assert names == ["mine", "open"]
    assert [p["name"] for p in (await api.get("/projects")).json()["projects"]] == ["mine", "open", "secret"]
    assert stamped((await api.get("/projects/open", who="alice")).json(), "created_at") == project_json(
        "open", public=True
    )


async def test_a_private_project_is_refused_alike_whether_it_exists_or_not(api: Api) -> None:
    api.access.store.create_user("alice")
    api.access.store.create_project("secret")
    exists = await api.get("/projects/secret", who="alice")
    missing = await api.get("/projects/nothing", who="alice")
    assert_error(exists, 403, "FORBIDDEN", "'alice' may not see project 'secret'")
    assert_error(missing, 403, "FORBIDDEN", "'alice' may not see project 'nothing'")
    assert_error(await api.get("/projects/nothing"), 404, "NOT_FOUND", "no project named 'nothing'")


async def test_a_project_holding_repositories_is_not_deleted(api: Api) -> None:
    api.access.store.create_project("lab")
    with api.access.store.db.write() as conn:
        conn.execute(models.repositories.insert().values(name="lab/app", created_at=0.0))
    refused = await api.delete("/projects/lab")
    assert_error(refused, 409, "CONFLICT", "project 'lab' still holds 1 repository; delete them first")
    assert api.access.store.get_project("lab") is not None


async def test_project_admins_change_visibility_and_only_administrators_delete(api: Api) -> None:
    setup_project(api, alice=Role.PROJECT_ADMIN, dave=Role.DEVELOPER)
    patched = await api.patch("/projects/lab", who="alice", json={"public": True})
    assert stamped(patched.json(), "created_at") == project_json("lab", public=True)
    message = "'dave' may not change the project in project 'lab' (needs manage_members)"
    assert_error(await api.patch("/projects/lab", who="dave", json={"public": False}), 403, "FORBIDDEN", message)
    message = "only a system administrator may delete projects"
    assert_error(await api.delete("/projects/lab", who="alice"), 403, "FORBIDDEN", message)
    assert (await api.delete("/projects/lab")).status_code == 204
    assert api.access.store.get_project("lab") is None
    assert actions_of(api, project="lab") == [
        ("alice", "project.update", "success", None),
        ("dave", "project.update", "denied", None),
        ("alice", "project.delete", "denied", None),
        (ADMIN, "project.delete", "success", None),
    ]


# -- members ---------------------------------------------------------------------------------------------------


async def test_project_admins_set_the_pull_policy_and_fields_left_out_stay(api: Api) -> None:
    setup_project(api, alice=Role.PROJECT_ADMIN, dave=Role.DEVELOPER)
    until = "2999-01-01T00:00:00Z"
    allow = [{"id": "CVE-2024-0001", "expires_at": until, "reason": "not reachable"}, {"id": "GHSA-xxxx-yyyy-zzzz"}]
    body = {"content_trust": True, "block_severity": "high", "allowlist": allow}
    patched = await api.patch("/projects/lab", who="alice", json=body)
    expected_allow = [allow[0], {"id": "GHSA-xxxx-yyyy-zzzz", "expires_at": None, "reason": ""}]
    expected = project_json("lab", content_trust=True, block_severity="high", allowlist=expected_allow)
    assert patched.status_code == 200 and stamped(patched.json(), "created_at") == expected
    # visibility alone leaves the policy; null clears the threshold; block_unscanned alone changes only itself
    assert stamped((await api.patch("/projects/lab", json={"public": True})).json(), "created_at") == {
        **expected,
        "public": True,
    }
    cleared = await api.patch("/projects/lab", who="alice", json={"block_severity": None, "block_unscanned": True})
    assert stamped(cleared.json(), "created_at") == {
        **expected,
        "public": True,
        "block_severity": None,
        "block_unscanned": True,
    }
    policy = api.access.store.get_project("lab")
    assert policy is not None and policy.policy.content_trust and policy.policy.block_unscanned
    assert policy.policy.accepted({"CVE-2024-0001"}, 0.0) and not policy.policy.accepted({"CVE-2024-0002"}, 0.0)
    assert not policy.policy.accepted({"CVE-2024-0001"}, dt.datetime(3000, 1, 1, tzinfo=dt.UTC).timestamp())
    # a developer may not; nonsense is refused and changes nothing
    refused = await api.patch("/projects/lab", who="dave", json={"content_trust": False})
    assert_error(refused, 403, "FORBIDDEN", "'dave' may not change the project in project 'lab' (needs manage_members)")
    for bad in ({"block_severity": "severe"}, {"allowlist": [{"id": ""}]}, {"allowlist": [{"id": "CVE 1"}]}, {"x": 1}):
        assert (await api.patch("/projects/lab", who="alice", json=bad)).status_code == 400, bad
    after = await api.get("/projects/lab", who="alice")
    assert stamped(after.json(), "created_at") == stamped(cleared.json(), "created_at")
    policy_events = [e for e in api.events(project="lab") if e.action == "project.policy"]
    assert [(e.actor, e.result) for e in policy_events] == [("alice", "success"), ("alice", "success")]
    assert policy_events[0].detail == {
        "content_trust": True,
        "block_severity": "high",
        "block_unscanned": False,
        "allowlist": ["CVE-2024-0001", "GHSA-xxxx-yyyy-zzzz"],
    }


async def test_project_admins_set_and_remove_roles_of_users_and_teams(api: Api) -> None:
    setup_project(api, alice=Role.PROJECT_ADMIN)
    api.access.store.create_user("bob")
    api.access.store.create_team("devs")
    user = await api.put("/projects/lab/members/users/bob", who="alice", json={"role": "developer"})
    assert user.status_code == 200 and user.json() == {"kind": "user", "name": "bob", "role": "developer"}
    team = await api.put("/projects/lab/members/teams/devs", who="alice", json={"role": "guest"})
    assert team.json() == {"kind": "team", "name": "devs", "role": "guest"}
    assert (await api.put("/projects/lab/members/users/bob", who="alice", json={"role": "maintainer"})).is_success
    assert (await api.get("/projects/lab/members", who="bob")).json() == {
        "members": [
            {"kind": "user", "name": "alice", "role": "project_admin"},
            {"kind": "user", "name": "bob", "role": "maintainer"},
            {"kind": "team", "name": "devs", "role": "guest"},
        ]
    }
    assert (await api.delete("/projects/lab/members/teams/devs", who="alice")).status_code == 204
    again = await api.delete("/projects/lab/members/teams/devs", who="alice")
    assert_error(again, 404, "NOT_FOUND", "team 'devs' is not a member of project 'lab'")
    assert_error(
        await api.put("/projects/lab/members/users/ghost", who="alice", json={"role": "guest"}),
        404,
        "NOT_FOUND",
        "no user named 'ghost'",
    )
    bad_role = await api.put("/projects/lab/members/users/bob", who="alice", json={"role": "owner"})
    message = (
        "invalid body: role: Input should be 'project_admin', 'maintainer', 'developer', 'guest' or 'limited_guest'"
    )
    assert_error(bad_role, 400, "BAD_REQUEST", message)
    events = api.events(action="member.set")
    assert [(e.actor, e.project, e.target, e.detail) for e in events] == [
        ("alice", "lab", "bob", {"kind": "user", "role": "developer"}),
        ("alice", "lab", "devs", {"kind": "team", "role": "guest"}),
        ("alice", "lab", "bob", {"kind": "user", "role": "maintainer"}),
    ]


async def test_a_developer_cannot_manage_members(api: Api) -> None:
    setup_project(api, alice=Role.PROJECT_ADMIN, dave=Role.DEVELOPER)
    promote = await api.put("/projects/lab/members/users/dave", who="dave", json={"role": "project_admin"})
    message = "'dave' may not set members' roles in project 'lab' (needs manage_members)"
    assert_error(promote, 403, "FORBIDDEN", message)
    remove = await api.delete("/projects/lab/members/users/alice", who="dave")
    assert_error(remove, 403, "FORBIDDEN", "'dave' may not remove members in project 'lab' (needs manage_members)")
    assert api.access.store.role_of("dave", "lab") is Role.DEVELOPER
    assert api.access.store.role_of("alice", "lab") is Role.PROJECT_ADMIN
    assert (await api.get("/projects/lab/members", who="dave")).status_code == 200  # a developer may list
    assert [(e.actor, e.result, e.target) for e in api.events(project="lab")] == [
        ("dave", "denied", "dave"),
        ("dave", "denied", "alice"),
    ]


async def test_members_are_listed_to_members_who_may_list_only(api: Api) -> None:
    setup_project(api, "open", lim=Role.LIMITED_GUEST)
    api.access.store.set_project_public("open", True)
    api.access.store.create_user("stranger")
    message = "'lim' may not list the members of project 'open'"
    assert_error(await api.get("/projects/open/members", who="lim"), 403, "FORBIDDEN", message)
    message = "'stranger' may not list the members of project 'open'"
    assert_error(await api.get("/projects/open/members", who="stranger"), 403, "FORBIDDEN", message)


async def test_a_project_admin_cannot_touch_another_project(api: Api) -> None:
    setup_project(api, "mine", alice=Role.PROJECT_ADMIN)
    setup_project(api, "theirs", bob=Role.PROJECT_ADMIN)
    cases = [
        ("PUT", "/projects/theirs/members/users/alice", {"role": "project_admin"}),
        ("DELETE", "/projects/theirs/members/users/bob", None),
        ("PATCH", "/projects/theirs", {"public": True}),
        ("GET", "/projects/theirs/robots", None),
        ("POST", "/projects/theirs/robots", {"name": "spy", "permissions": ["pull"]}),
        ("GET", "/projects/theirs/members", None),
        ("GET", "/audit?project=theirs", None),
    ]
    for method, path, body in cases:
        response = await api.call(method, path, "alice", json=body)
        assert_error(response, 403, "FORBIDDEN")
    assert api.access.store.role_of("alice", "theirs") is None
    assert api.access.store.get_project("theirs").public is False  # type: ignore[union-attr]
    assert api.access.store.list_robots("theirs") == []


# -- robots ----------------------------------------------------------------------------------------------------


def robot_json(name: str, project: str | None, permissions: list[str], **extra: Any) -> dict[str, Any]:
    """A robot's body without its times."""
    return {
        "name": name,
        "login": f"robot${name}",
        "project": project,
        "permissions": permissions,
        "repositories": extra.get("repositories"),
        "expired": extra.get("expired", False),
        "disabled": extra.get("disabled", False),
    }


async def test_a_robot_secret_is_shown_once_and_rotating_replaces_it(api: Api) -> None:
    setup_project(api, alice=Role.PROJECT_ADMIN)
    body = {"name": "ci", "permissions": ["push", "pull"], "repositories": ["lab/app-*"]}
    created = await api.post("/projects/lab/robots", who="alice", json=body)
    assert created.status_code == 201
    first = created.json().pop("secret")
    assert stamped(created.json(), "created_at", "expires_at") == {
        **robot_json("ci", "lab", ["pull", "push"], repositories=["lab/app-*"]),
        "secret": first,
    }
    assert (await api.get("/projects", auth=("robot$ci", first))).status_code == 200
    shown = [await api.get("/projects/lab/robots/ci", who="alice"), await api.get("/projects/lab/robots", who="alice")]
    for response in shown:
        assert response.status_code == 200 and first not in response.text and "secret" not in response.text
    rotated = await api.post("/projects/lab/robots/ci/secret", who="alice")
    assert rotated.status_code == 200
    second = rotated.json()["secret"]
    assert second != first
    assert_error(await api.get("/projects", auth=("robot$ci", first)), 401, "UNAUTHORIZED")
    assert (await api.get("/projects", auth=("robot$ci", second))).status_code == 200
    log = json.dumps([e.to_json() for e in api.events()])
    assert first not in log and second not in log
    assert actions_of(api, project="lab") == [
        ("alice", "robot.create", "success", "ci"),
        ("alice", "robot.rotate", "success", "ci"),
    ]


async def test_robots_are_disabled_reenabled_and_changed(api: Api) -> None:
    setup_project(api, alice=Role.PROJECT_ADMIN)
    secret = (await api.post("/projects/lab/robots", who="alice", json={"name": "ci", "permissions": ["pull"]})).json()[
        "secret"
    ]
    disabled = await api.patch("/projects/lab/robots/ci", who="alice", json={"disabled": True})
    assert stamped(disabled.json(), "created_at", "expires_at") == robot_json("ci", "lab", ["pull"], disabled=True)
    assert_error(await api.get("/projects", auth=("robot$ci", secret)), 401, "UNAUTHORIZED")
    until = "2999-01-01T00:00:00Z"
    changed = await api.patch(
        "/projects/lab/robots/ci",
        who="alice",
        json={"disabled": False, "permissions": ["pull", "list"], "expires_at": until},
    )
    assert changed.json()["expires_at"] == until
    assert stamped(changed.json(), "created_at", "expires_at") == robot_json("ci", "lab", ["list", "pull"])
    narrowed = await api.patch("/projects/lab/robots/ci", who="alice", json={"repositories": ["lab/x"]})
    assert narrowed.json()["repositories"] == ["lab/x"] and narrowed.json()["permissions"] == ["list", "pull"]
    never = await api.patch("/projects/lab/robots/ci", who="alice", json={"expires_at": None, "repositories": None})
    assert never.json()["expires_at"] is None and never.json()["repositories"] is None
    soon = await api.patch("/projects/lab/robots/ci", who="alice", json={"expires_in": 60})
    left = dt.datetime.fromisoformat(soon.json()["expires_at"]) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=50) < left <= dt.timedelta(seconds=60)
    assert (await api.delete("/projects/lab/robots/ci", who="alice")).status_code == 204
    assert_error(await api.get("/projects/lab/robots/ci", who="alice"), 404, "NOT_FOUND", "no robot named 'ci'")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"permissions": ["manage_members"]},
            "invalid body: permissions.0: Input should be 'pull', 'list', 'push' or 'delete'",
        ),
        ({"permissions": []}, "invalid body: permissions: List should have at least 1 item after validation, not 0"),
        ({"permissions": ["pull"], "expires_in": 0}, "invalid body: expires_in: Input should be greater than 0"),
        (
            {"permissions": ["pull"], "expires_at": "2000-01-01T00:00:00Z"},
            "the expiry 2000-01-01T00:00:00+00:00 is not in the future",
        ),
        (
            {"permissions": ["pull"], "expires_at": "2999-01-01T00:00:00"},
            "invalid body: expires_at: Input should have timezone info",
        ),
        (
            {"permissions": ["pull"], "expires_in": 5, "expires_at": "2999-01-01T00:00:00Z"},
            "give the expiry as seconds from now or as a time, not both",
        ),
        (
            {"permissions": ["pull"], "repositories": ["LAB/*"]},
            "invalid repository pattern 'LAB/*': use a-z, 0-9, '._/-' and * ? [ ]",
        ),
    ],
    ids=["not-a-robot-action", "no-permission", "zero-seconds", "past", "no-zone", "both", "bad-pattern"],
)
async def test_bad_robot_requests_get_400_and_create_nothing(api: Api, body: dict[str, Any], message: str) -> None:
    setup_project(api, alice=Role.PROJECT_ADMIN)
    assert_error(
        await api.post("/projects/lab/robots", who="alice", json={"name": "ci", **body}), 400, "BAD_REQUEST", message
    )
    assert api.access.store.list_robots("lab") == []


async def test_a_robot_is_reached_only_through_its_own_scope(api: Api) -> None:
    setup_project(api, "mine", alice=Role.PROJECT_ADMIN)
    api.access.store.create_project("theirs")
    api.access.store.create_robot("spy", [Action.PULL], project="theirs")
    api.access.store.create_robot("sys", [Action.PULL])
    message = "no robot in project 'mine' named 'spy'"
    assert_error(await api.delete("/projects/mine/robots/spy", who="alice"), 404, "NOT_FOUND", message)
    assert_error(await api.post("/projects/mine/robots/sys/secret", who="alice"), 404, "NOT_FOUND")
    assert_error(await api.get("/robots/spy"), 404, "NOT_FOUND", "no system robot named 'spy'")
    assert [r["name"] for r in (await api.get("/robots")).json()["robots"]] == ["sys"]
    message = "only a system administrator may list system robot accounts"
    assert_error(await api.get("/robots", who="alice"), 403, "FORBIDDEN", message)
    assert api.access.store.get_robot("spy") is not None


async def test_administrators_manage_system_robots(api: Api) -> None:
    created = await api.post("/robots", json={"name": "mirror", "permissions": ["pull", "list"], "expires_in": 3600})
    assert created.status_code == 201
    assert stamped(created.json(), "created_at", "expires_at") == {
        **robot_json("mirror", None, ["list", "pull"]),
        "secret": created.json()["secret"],
    }
    assert (await api.patch("/robots/mirror", json={"disabled": True})).json()["disabled"] is True
    assert (await api.post("/robots/mirror/secret")).status_code == 200
    assert_error(
        await api.post("/robots", json={"name": "mirror", "permissions": ["pull"]}),
        409,
        "CONFLICT",
        "a robot named 'mirror' exists already",
    )
    assert (await api.delete("/robots/mirror")).status_code == 204
    assert actions_of(api, actor=ADMIN) == [
        (ADMIN, "robot.create", "success", "mirror"),
        (ADMIN, "robot.update", "success", "mirror"),
        (ADMIN, "robot.rotate", "success", "mirror"),
        (ADMIN, "robot.delete", "success", "mirror"),
    ]


# -- audit -----------------------------------------------------------------------------------------------------


async def test_the_audit_log_is_queried_with_filters_and_pages(api: Api) -> None:
    setup_project(api, "lab", alice=Role.PROJECT_ADMIN)
    for name in ("a", "b", "c"):
        await api.put(f"/projects/lab/members/users/{name}", who="alice", json={"role": "guest"})  # unknown: 404
        api.access.store.create_user(name)
        assert (await api.put(f"/projects/lab/members/users/{name}", who="alice", json={"role": "guest"})).is_success
    first = await api.get("/audit", params={"action": "member.set", "limit": "2"})
    page = first.json()
    assert [e["target"] for e in page["events"]] == ["a", "b"] and page["next"] == page["events"][-1]["id"]
    event = page["events"][0]
    assert set(event) == {
        "id",
        "at",
        "actor",
        "action",
        "result",
        "project",
        "repository",
        "target",
        "address",
        "detail",
    }
    assert (event["actor"], event["project"], event["result"], event["detail"]) == (
        "alice",
        "lab",
        "success",
        {"kind": "user", "role": "guest"},
    )
    rest = (await api.get("/audit", params={"action": "member.set", "limit": "2", "after": str(page["next"])})).json()
    assert [e["target"] for e in rest["events"]] == ["c"] and rest["next"] is None
    between = (page["events"][0]["at"] + page["events"][1]["at"]) / 2  # a and b; times have microseconds
    since = dt.datetime.fromtimestamp(between, dt.UTC).isoformat()
    later = (await api.get("/audit", params={"action": "member.set", "since": since})).json()
    assert [e["target"] for e in later["events"]] == ["b", "c"]
    until = (await api.get("/audit", params={"action": "member.set", "until": str(between)})).json()
    assert [e["target"] for e in until["events"]] == ["a"]
    assert (await api.get("/audit", params={"actor": "nobody"})).json() == {"events": [], "next": None}


async def test_a_project_admin_reads_its_own_projects_audit_events_only(api: Api) -> None:
    setup_project(api, "lab", alice=Role.PROJECT_ADMIN, dave=Role.DEVELOPER)
    setup_project(api, "other", bob=Role.PROJECT_ADMIN)
    await api.patch("/projects/lab", who="alice", json={"public": True})
    await api.patch("/projects/other", who="bob", json={"public": True})
    mine = await api.get("/audit", who="alice", params={"project": "lab"})
    assert [(e["actor"], e["action"], e["project"]) for e in mine.json()["events"]] == [
        ("alice", "project.update", "lab")
    ]
    message = "only a system administrator may read the whole audit log; project admins add project="
    assert_error(await api.get("/audit", who="alice"), 403, "FORBIDDEN", message)
    message = "'alice' may not read the audit log in project 'other' (needs manage_members)"
    assert_error(await api.get("/audit", who="alice", params={"project": "other"}), 403, "FORBIDDEN", message)
    message = "'dave' may not export the audit log in project 'lab' (needs manage_members)"
    assert_error(await api.get("/audit/export", who="dave", params={"project": "lab"}), 403, "FORBIDDEN", message)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "yesterday"}, "invalid query: since: Input should be a valid datetime or date, input is too short"),
        ({"limit": "0"}, "invalid query: limit: Input should be greater than or equal to 1"),
        ({"result": "maybe"}, "invalid query: result: Input should be 'success', 'failure' or 'denied'"),
        ({"colour": "blue"}, "invalid query: colour: Extra inputs are not permitted"),
        ([("actor", "a"), ("actor", "b")], "query parameter 'actor' given more than once"),
    ],
    ids=["bad-time", "zero-limit", "bad-result", "unknown", "repeated"],
)
async def test_bad_audit_queries_get_400(api: Api, params: Any, message: str) -> None:
    assert_error(await api.get("/audit", params=params), 400, "BAD_REQUEST", message)
    assert_error(await api.get("/audit/export", params=params), 400, "BAD_REQUEST", message)


async def test_the_audit_export_streams_json_lines_with_the_same_filters(api: Api) -> None:
    for name in ("a", "b", "c"):
        assert (await api.post("/teams", json={"name": name})).status_code == 201
    response = await api.get("/audit/export", params={"action": "team.create"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = response.text.splitlines()
    assert [json.loads(line)["target"] for line in lines] == ["a", "b", "c"]
    queried = (await api.get("/audit", params={"action": "team.create"})).json()["events"]
    assert [json.loads(line) for line in lines] == queried
    capped = await api.get("/audit/export", params={"action": "team.create", "limit": "2"})
    assert len(capped.text.splitlines()) == 2
    [export, _] = api.events(action="audit.export")
    assert (export.actor, export.detail) == (ADMIN, {"action": "team.create"})


# -- the HTTP edge and the OpenAPI document ---------------------------------------------------------------------


async def test_unknown_paths_and_methods_get_json_errors(api: Api) -> None:
    missing = await api.get("/nothing/here")
    assert_error(missing, 404, "NOT_FOUND", "no management API endpoint '/api/v1/nothing/here'")
    wrong = await api.delete("/users")
    assert_error(wrong, 405, "METHOD_NOT_ALLOWED", "DELETE is not allowed here")
    assert wrong.headers["allow"] == "GET, POST"


def test_robot_permissions_on_the_wire_are_the_robot_actions() -> None:
    assert set(typing.get_args(RobotPermission)) == {a.value for a in ROBOT_ACTIONS}


async def test_the_openapi_document_is_valid_and_lists_every_management_route(api: Api) -> None:
    document = (await api.http.get("/openapi.json")).json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    assert {(e.path, e.method) for e in ENDPOINTS} <= documented
    served = {r.path for r in api.app.routes if isinstance(r, Route) and r.path.startswith(PREFIX + "/")}
    served = {re.sub(r"{name:path}", "{name}", p) for p in served}  # repository names are matched with their slashes
    assert served - {p for p, _ in documented} == {PREFIX + "/{rest:path}"}  # the JSON 404 for unknown paths
    for path, method in sorted(documented):
        if path.startswith(PREFIX):  # every documented operation answers (an anonymous caller: 401, not 404/405)
            concrete = re.sub(r"{\w+}", "x", path)
            assert_error(await api.call(method, concrete.removeprefix(PREFIX), who=None), 401, "UNAUTHORIZED")
    permissions = document["components"]["schemas"]["NewRobot"]["properties"]["permissions"]
    assert permissions["items"]["enum"] == ["pull", "list", "push", "delete"]
