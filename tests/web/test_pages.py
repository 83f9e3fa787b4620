"""The web interface in-process: sign-in and its throttle, the session cookie's flags, CSRF refusals, sign-out,
who sees which project, robot secrets shown once, and the pages over pushed content.

Every test drives the real app (registry, management API and pages on one router) as a browser would: GET a
page, take the form's CSRF token, POST the form with the cookie the app set.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from urllib.parse import quote

import httpx
import pytest

from trustyard.auth.audit import AuditQuery
from trustyard.auth.model import Action, Role

from .conftest import PASSWORD, Site, csrf_of

pytestmark = pytest.mark.anyio


def _cookie_header(response: httpx.Response) -> str:
    headers = response.headers.get_list("set-cookie")
    assert len(headers) == 1, headers
    return headers[0]


async def test_the_login_page_sets_a_private_lax_cookie_and_strict_headers(site: Site) -> None:
    client = await site.client()
    response = await client.get("/login")
    assert response.status_code == 200
    cookie = _cookie_header(response).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert '<label for="password">Password</label>' in response.text


async def test_the_cookie_is_secure_over_https(site: Site) -> None:
    client = await site.client("https://registry.test")
    assert "secure" in _cookie_header(await client.get("/login")).lower()


async def test_signing_in_issues_a_new_session_and_the_old_token_dies(site: Site) -> None:
    client = await site.client()
    before = csrf_of((await client.get("/login")).text)
    response = await client.post(
        "/login", data={"csrf": before, "username": "alice", "password": PASSWORD, "next": "/projects"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/projects"
    page = await client.get("/projects")
    assert page.status_code == 200 and "alice" in page.text
    after = csrf_of(page.text)
    assert after != before
    refused = await client.post("/projects", data={"csrf": before, "name": "stale"})
    assert refused.status_code == 403
    assert site.access.store.get_project("stale") is None


async def test_pages_send_anonymous_visitors_to_sign_in_and_back(site: Site) -> None:
    client = await site.client()
    response = await client.get("/projects/library/members")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + quote("/projects/library/members", safe="")


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
async def test_sign_in_never_redirects_off_site(site: Site, target: str) -> None:
    client = await site.client()
    token = csrf_of((await client.get("/login")).text)
    response = await client.post(
        "/login", data={"csrf": token, "username": "alice", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 303 and response.headers["location"] == "/projects"


async def test_a_wrong_password_is_refused_then_throttled_and_audited(site: Site) -> None:
    client = await site.client()
    for _ in range(3):
        response = await site.sign_in(client, "alice", "wrong-password")
        assert response.status_code == 401
        assert "Invalid username or password." in response.text
        assert "wrong-password" not in response.text
    throttled = await site.sign_in(client, "alice")  # the right password, but too late
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    site.access.audit.flush()
    results = [e.result for e in site.access.audit.query(AuditQuery(actor="alice", action="login"))]
    assert results == ["failure", "failure", "failure", "denied"]


async def test_a_post_without_the_token_is_refused_and_changes_nothing(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "alice")
    for data in ({"name": "forged"}, {"name": "forged", "csrf": "not-the-token"}):
        response = await client.post("/projects", data=data)
        assert response.status_code == 403
        assert "Request refused" in response.text
    assert site.access.store.get_project("forged") is None


async def test_a_post_from_another_origin_is_refused(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "alice")
    token = csrf_of((await client.get("/projects")).text)
    response = await client.post(
        "/projects", data={"csrf": token, "name": "crossed"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert site.access.store.get_project("crossed") is None


async def test_a_json_post_is_not_a_form(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "alice")
    token = csrf_of((await client.get("/projects")).text)
    response = await client.post("/projects", json={"csrf": token, "name": "json"})
    assert response.status_code == 403
    assert site.access.store.get_project("json") is None


async def test_sign_out_kills_the_session_even_if_its_cookie_is_replayed(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "alice")
    copied = dict(client.cookies)
    response = await site.form(client, "/projects", "/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    replay = await site.client()
    replay.cookies.update(copied)
    assert (await replay.get("/account")).status_code == 303  # /projects would show anonymous browsing


async def test_a_disabled_user_is_signed_out_at_once(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "alice")
    site.access.store.set_user_disabled("alice")
    assert (await client.get("/account")).status_code == 303


async def test_creating_a_project_makes_the_creator_its_admin(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "alice")
    response = await site.form(client, "/projects", "/projects", name="team-a", visibility="private")
    assert response.status_code == 303 and response.headers["location"] == "/projects/team-a"
    assert site.access.store.role_of("alice", "team-a") is Role.PROJECT_ADMIN
    page = await client.get("/projects")
    assert re.search(r'href="/projects/team-a">team-a</a>.*?private', page.text, re.S)


async def test_a_bad_project_name_is_a_clear_error(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "alice")
    response = await site.form(client, "/projects", "/projects", name="Not Valid!", visibility="private")
    assert response.status_code == 400
    assert "Project not created" in response.text
    assert site.access.store.get_project("Not Valid!") is None


async def test_a_guest_cannot_see_a_private_project(site: Site) -> None:
    site.access.store.create_project("secret")
    site.access.store.create_project("open", public=True)
    client = await site.client()
    await site.sign_in(client, "guest")
    listing = await client.get("/projects")
    assert "/projects/open" in listing.text and "secret" not in listing.text
    for path in ("/projects/secret", "/projects/secret/members", "/repositories/secret/app"):
        response = await client.get(path)
        assert response.status_code == 403, path
        assert "Not allowed" in response.text
    missing = await client.get("/projects/no-such-project")
    assert missing.status_code == 403  # the same answer: no oracle for private names


async def test_members_are_managed_by_project_admins_only(site: Site) -> None:
    site.access.store.create_project("team-b")
    site.access.store.set_member("team-b", Role.PROJECT_ADMIN, user="alice")
    site.access.store.set_member("team-b", Role.GUEST, user="guest")
    admin = await site.client()
    await site.sign_in(admin, "alice")
    response = await site.form(
        admin, "/projects/team-b/members", "/projects/team-b/members", kind="user", member="guest", role="developer"
    )
    assert response.status_code == 303
    assert site.access.store.role_of("guest", "team-b") is Role.DEVELOPER
    guest = await site.client()
    await site.sign_in(guest, "guest")
    page = await guest.get("/projects/team-b/members")
    assert page.status_code == 200 and "Add a member" not in page.text
    token = csrf_of(page.text)
    refused = await guest.post(
        "/projects/team-b/members", data={"csrf": token, "kind": "user", "member": "guest", "role": "project_admin"}
    )
    assert refused.status_code == 403
    assert site.access.store.role_of("guest", "team-b") is Role.DEVELOPER
    site.access.audit.flush()
    denied = site.access.audit.query(AuditQuery(actor="guest", action="member.set", result="denied"))
    assert len(denied) == 1


async def test_a_robot_secret_is_shown_once(site: Site) -> None:
    site.access.store.create_project("team-c")
    site.access.store.set_member("team-c", Role.PROJECT_ADMIN, user="alice")
    client = await site.client()
    await site.sign_in(client, "alice")
    token = csrf_of((await client.get("/projects/team-c/robots")).text)
    response = await client.post(
        "/projects/team-c/robots",
        data={"csrf": token, "name": "ci", "permission": ["pull", "push"], "expires_days": "7"},
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    secret = re.search(r'<code id="robot-secret">([^<]+)</code>', response.text)
    assert secret is not None
    robot = site.access.store.authenticate_robot("ci", secret.group(1))
    assert {p.value for p in robot.permissions} == {"pull", "push"} and robot.expires_at is not None
    again = await client.get("/projects/team-c/robots")
    assert "robot$ci" in again.text and secret.group(1) not in again.text


async def test_project_policy_is_edited_through_the_api(site: Site) -> None:
    site.access.store.create_project("team-d")
    site.access.store.set_member("team-d", Role.PROJECT_ADMIN, user="alice")
    client = await site.client()
    await site.sign_in(client, "alice")
    response = await site.form(
        client,
        "/projects/team-d/settings",
        "/projects/team-d/settings",
        visibility="public",
        content_trust="on",
        block_severity="high",
        allowlist="CVE-2021-23337 | 2030-01-31 | fixed upstream, not reachable\nGHSA-p6mc-m468-83gw",
    )
    assert response.status_code == 303
    project = site.access.store.get_project("team-d")
    assert project is not None and project.public
    policy = project.policy
    assert policy.content_trust and policy.block_severity == "high" and not policy.block_unscanned
    assert [a.id for a in policy.allowlist] == ["CVE-2021-23337", "GHSA-p6mc-m468-83gw"]
    page = await client.get("/projects/team-d/settings")
    assert "CVE-2021-23337 | 2030-01-31 | fixed upstream, not reachable" in page.text
    bad = await site.form(
        client, "/projects/team-d/settings", "/projects/team-d/settings", allowlist="CVE-1 | tomorrow"
    )
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
    assert site.access.store.get_project("team-d") == project


async def test_audit_log_filters_and_refuses_non_admins_the_whole_log(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "root")
    await site.sign_in(await site.client(), "guest", "bad-password")
    page = await client.get("/audit", params={"actor": "guest", "action": "login"})
    assert page.status_code == 200
    assert "failure" in page.text and ">root<" not in page.text
    guest = await site.client()
    await site.sign_in(guest, "guest")
    refused = await guest.get("/audit")
    assert refused.status_code == 403 and "project=" in refused.text


async def test_a_database_failure_is_an_error_page_without_a_traceback(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "root")
    with contextlib.closing(sqlite3.connect(site.data_dir / "trustyard.db")) as db:
        db.execute("DROP TABLE tags")  # what a broken database looks like to the repository listing
    page = await client.get("/projects")
    assert page.status_code == 503
    assert "nothing was changed" in page.text and "Traceback" not in page.text


async def test_a_robot_cannot_sign_in_to_the_web_interface(site: Site) -> None:
    site.access.store.create_project("team-e")
    _, secret = site.access.store.create_robot("builder", [Action.PULL], project="team-e")
    client = await site.client()
    response = await site.sign_in(client, "robot$builder", secret)
    assert response.status_code == 403
    assert "Robot accounts cannot sign in" in response.text
    assert (await client.get("/account")).status_code == 303


async def test_removing_a_member_and_deleting_a_robot(site: Site) -> None:
    site.access.store.create_project("team-f")
    site.access.store.set_member("team-f", Role.PROJECT_ADMIN, user="alice")
    site.access.store.set_member("team-f", Role.GUEST, user="guest")
    site.access.store.create_robot("deployer", [Action.PULL], project="team-f")
    client = await site.client()
    await site.sign_in(client, "alice")
    removed = await site.form(
        client, "/projects/team-f/members", "/projects/team-f/members/remove", kind="user", member="guest"
    )
    assert removed.status_code == 303
    assert site.access.store.role_of("guest", "team-f") is None
    unknown = await site.form(
        client, "/projects/team-f/members", "/projects/team-f/members/remove", kind="user", member="nobody"
    )
    assert unknown.status_code == 404 and "Not removed" in unknown.text
    deleted = await site.form(client, "/projects/team-f/robots", "/projects/team-f/robots/delete", robot="deployer")
    assert deleted.status_code == 303
    assert site.access.store.get_robot("deployer") is None


@pytest.mark.parametrize("site", [{"users_create_projects": False}], indirect=True)
async def test_only_administrators_create_projects_when_so_configured(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "alice")
    page = await client.get("/projects")
    assert "Create a project" not in page.text
    refused = await client.post("/projects", data={"csrf": csrf_of(page.text), "name": "mine"})
    assert refused.status_code == 403 and "may not create projects" in refused.text
    assert site.access.store.get_project("mine") is None
    admin = await site.client()
    await site.sign_in(admin, "root")
    assert "Create a project" in (await admin.get("/projects")).text


async def test_an_administrator_creates_and_disables_users(site: Site) -> None:
    admin = await site.client()
    await site.sign_in(admin, "root")
    created = await site.form(admin, "/users", "/users", name="carol", password="carol-password-1", admin="")
    assert created.status_code == 303
    carol = await site.client()
    assert (await site.sign_in(carol, "carol", "carol-password-1")).status_code == 303
    short = await site.form(admin, "/users", "/users", name="dave", password="short")
    assert short.status_code == 400 and "User not created" in short.text and "short" not in short.text
    disabled = await site.form(admin, "/users", "/users/disabled", user="carol", disabled="true")
    assert disabled.status_code == 303
    assert (await carol.get("/account")).status_code == 303  # her session ended with her account
    alice = await site.client()
    await site.sign_in(alice, "alice")
    assert (await alice.get("/users")).status_code == 403


async def test_a_user_changes_their_own_password(site: Site) -> None:
    client = await site.client()
    await site.sign_in(client, "alice")
    wrong = await site.form(
        client, "/account", "/account", old_password="not-it", password="new-password-1", repeat="new-password-1"
    )
    assert wrong.status_code == 403 and "Password not changed" in wrong.text
    differ = await site.form(
        client, "/account", "/account", old_password=PASSWORD, password="new-password-1", repeat="new-password-2"
    )
    assert differ.status_code == 400 and "differ" in differ.text
    changed = await site.form(
        client, "/account", "/account", old_password=PASSWORD, password="new-password-1", repeat="new-password-1"
    )
    assert changed.status_code == 303
    assert "Your password was changed." in (await client.get(changed.headers["location"])).text
    fresh = await site.client()
    assert (await site.sign_in(fresh, "alice", "new-password-1")).status_code == 303
