"""The token endpoint's protocol, ``/auth/token``, as docker, podman, skopeo and oras speak it.

Spec: distribution ``spec/auth/token.md`` (GET with Basic or nobody: ``service``, ``scope`` repeated or
space-separated, ``offline_token``; answer ``token``/``access_token``, ``expires_in``, ``issued_at``, and a
``refresh_token`` for ``offline_token=true``), ``spec/auth/oauth.md`` (POST form: ``grant_type=password`` or
``refresh_token``, ``access_type=offline``), ``spec/auth/jwt.md`` (the token's claims). Every answer is
``Cache-Control: no-store``; every token issued is an audit event. Runs on copies of the world of
``access_helpers.py``.

Not here: what each caller is granted (``test_api_access_matrix.py``), refusals of forged tokens and malformed
requests (``test_api_access_attacks.py``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from trustyard.auth.audit import AuditQuery

from .access_helpers import (
    DEVELOPER,
    GUEST,
    MAINTAINER,
    ROBOT_PUSH,
    Account,
    WorldFactory,
    WorldTemplate,
    access_of,
    assert_challenge,
    world_fixtures,
)
from .conftest import ALL_MANIFEST_TYPES, RegistryClient, assert_error

pytestmark = pytest.mark.anyio

isolated, template, open_world, registry = world_fixtures()

TOKEN_KEYS = {"token", "access_token", "expires_in", "issued_at", "scope"}


def payload(token: str) -> dict[str, Any]:
    """A JWT's claims, read as a client would (without verifying)."""
    part = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def header(token: str) -> dict[str, Any]:
    """A JWT's header."""
    part = token.split(".")[0]
    found: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return found


def granted(token: str) -> dict[str, list[str]]:
    """``type:name`` -> actions of a token's ``access`` claim."""
    return {f"{a['type']}:{a['name']}": a["actions"] for a in payload(token)["access"]}


def assert_no_store(response: httpx.Response) -> None:
    """Tokens must never be cached by a proxy or the client's HTTP cache (RFC 6749 section 5.1)."""
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def get_token(client: RegistryClient, who: Account, params: Any) -> httpx.Response:
    """``GET /auth/token`` as ``who``."""
    return await client.http.get("/auth/token", params=params, auth=who.auth)


async def post_token(client: RegistryClient, form: list[tuple[str, str]]) -> httpx.Response:
    """``POST /auth/token`` with a urlencoded form (repeated fields kept)."""
    return await client.http.post(
        "/auth/token", content=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )


def password_form(who: Account, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    """The OAuth2 password grant of ``who``."""
    assert who.username is not None and who.password is not None
    return [("grant_type", "password"), ("username", who.username), ("password", who.password), *extra]


def refresh_form(refresh_token: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    """The OAuth2 refresh-token grant."""
    return [("grant_type", "refresh_token"), ("refresh_token", refresh_token), *extra]


# -- GET ------------------------------------------------------------------------------------------------------


async def test_anonymous_get_grants_public_pulls_and_nothing_private(registry: RegistryClient) -> None:
    params = httpx.QueryParams(
        [
            ("service", "trustyard"),
            ("scope", "repository:pub/app:pull,push"),
            ("scope", "repository:priv/app:pull"),
            ("offline_token", "true"),
        ]
    )
    response = await registry.http.get("/auth/token", params=params)
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert set(body) == TOKEN_KEYS, "no refresh token for anonymous"
    assert body["token"] == body["access_token"]
    assert body["scope"] == "repository:pub/app:pull"
    assert granted(body["token"]) == {"repository:pub/app": ["pull"]}
    assert payload(body["token"])["sub"] == ""
    pulled = await registry.http.get(
        "/v2/pub/app/manifests/v1", headers={"Authorization": f"Bearer {body['token']}", "Accept": ALL_MANIFEST_TYPES}
    )
    assert pulled.status_code == 200
    nothing = await registry.http.get("/auth/token", params={"scope": "repository:priv/app:pull"})
    assert nothing.status_code == 200 and nothing.json()["scope"] == ""
    assert payload(nothing.json()["token"])["access"] == []


async def test_get_with_basic_and_offline_token_returns_a_refresh_token_for_users(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    developer = template.world.account(DEVELOPER)
    scope = {"service": "trustyard", "scope": "repository:priv/app:pull,push"}
    online = await get_token(registry, developer, scope)
    assert online.status_code == 200 and set(online.json()) == TOKEN_KEYS
    offline = await get_token(registry, developer, {**scope, "offline_token": "true"})
    assert offline.status_code == 200, offline.text
    assert_no_store(offline)
    body = offline.json()
    assert set(body) == {*TOKEN_KEYS, "refresh_token"}
    assert header(body["refresh_token"])["typ"] != header(body["token"])["typ"]
    assert payload(body["refresh_token"])["sub"] == "developer"
    assert "access" not in payload(body["refresh_token"])
    # what docker login keeps as an identity token: it buys access tokens through the POST form
    refreshed = await post_token(
        registry,
        refresh_form(body["refresh_token"], ("service", "trustyard"), ("scope", "repository:priv/app:pull")),
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["scope"] == "repository:priv/app:pull"


async def test_robots_get_no_refresh_token(registry: RegistryClient, template: WorldTemplate) -> None:
    robot = template.world.account(ROBOT_PUSH)
    params = {"scope": "repository:priv/app:pull,push", "offline_token": "true"}
    response = await get_token(registry, robot, params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == TOKEN_KEYS
    assert payload(body["token"])["sub"] == "robot$priv-push"
    assert granted(body["token"]) == {"repository:priv/app": ["pull", "push"]}
    assert robot.username is not None and robot.password is not None
    form = [("grant_type", "password"), ("username", robot.username), ("password", robot.password)]
    posted = await post_token(registry, [*form, ("access_type", "offline")])
    assert posted.status_code == 200, posted.text
    assert "refresh_token" not in posted.json()


async def test_scopes_repeated_and_space_separated_are_merged(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    maintainer = template.world.account(MAINTAINER)
    params = httpx.QueryParams(
        [
            ("scope", "repository:priv/app:pull repository:pub/app:pull"),
            ("scope", "repository:priv/app:push"),
            ("scope", "repository:priv/app:delete registry:catalog:*"),
            ("scope", ""),
        ]
    )
    response = await get_token(registry, maintainer, params)
    assert response.status_code == 200, response.text
    assert granted(response.json()["token"]) == {
        "repository:priv/app": ["delete", "pull", "push"],
        "repository:pub/app": ["pull"],
        "registry:catalog": ["*"],
    }
    assert response.json()["scope"] == "repository:priv/app:delete,pull,push repository:pub/app:pull registry:catalog:*"


async def test_no_scope_gives_a_token_for_nothing(registry: RegistryClient, template: WorldTemplate) -> None:
    """``docker login`` asks without a scope, to check the credentials."""
    response = await get_token(registry, template.world.account(GUEST), {"service": "trustyard"})
    assert response.status_code == 200
    assert response.json()["scope"] == ""
    assert payload(response.json()["token"])["access"] == []


async def test_token_claims_expires_in_and_issued_at(open_world: WorldFactory, template: WorldTemplate) -> None:
    client = await open_world(token_lifetime=120, token_issuer="https://auth.example", token_service="reg.example")
    before = int(time.time())
    response = await get_token(
        client, template.world.account(DEVELOPER), {"service": "reg.example", "scope": "repository:priv/app:pull"}
    )
    after = time.time()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 120
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"]), body["issued_at"]
    issued_at = dt.datetime.fromisoformat(body["issued_at"].replace("Z", "+00:00")).timestamp()
    assert before - 1 <= issued_at <= after
    assert header(body["token"]) == {"alg": "ES256", "typ": "JWT", "kid": access_of(client).tokens.key_id}
    claims = payload(body["token"])
    assert set(claims) == {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access", "acc"}
    assert (claims["iss"], claims["aud"], claims["sub"]) == ("https://auth.example", "reg.example", "developer")
    assert claims["exp"] - claims["iat"] == 120
    assert claims["nbf"] == claims["iat"]
    assert abs(claims["iat"] - issued_at) <= 1
    other = await get_token(client, template.world.account(DEVELOPER), {"scope": "repository:priv/app:pull"})
    assert payload(other.json()["token"])["jti"] != claims["jti"]


async def test_the_challenge_leads_a_client_to_a_working_token(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    """The whole dance as a client does it: 401 with a challenge, the realm with its service and scope, retry."""
    developer = template.world.account(DEVELOPER)
    first = await registry.http.get("/v2/priv/app/manifests/v1", headers={"Accept": ALL_MANIFEST_TYPES})
    assert_error(first, 401, "UNAUTHORIZED")
    challenge = first.headers["www-authenticate"]
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    assert params == {
        "realm": "http://registry.test/auth/token",
        "service": "trustyard",
        "scope": "repository:priv/app:pull",
    }
    response = await registry.http.get(
        params["realm"], params={"service": params["service"], "scope": params["scope"]}, auth=developer.auth
    )
    assert response.status_code == 200
    again = await registry.http.get(
        "/v2/priv/app/manifests/v1",
        headers={"Authorization": f"Bearer {response.json()['token']}", "Accept": ALL_MANIFEST_TYPES},
    )
    assert again.status_code == 200


async def test_a_configured_realm_is_named_in_challenges(open_world: WorldFactory) -> None:
    client = await open_world(token_realm="https://registry.example.org/auth/token")
    response = await client.http.get("/v2/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="https://registry.example.org/auth/token",service="trustyard"'
    )


async def test_get_refuses_bad_credentials_with_a_basic_challenge(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    developer = template.world.account(DEVELOPER)
    for auth_header in (
        "Basic " + base64.b64encode(b"developer:wrong").decode(),
        "Basic !!!not-base64",
        "Bearer " + "x" * 20,
    ):
        response = await registry.http.get(
            "/auth/token", params={"scope": "repository:priv/app:pull"}, headers={"Authorization": auth_header}
        )
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == 'Basic realm="trustyard"'
        assert_no_store(response)
        body = response.json()
        assert "token" not in body and body["error"] in ("invalid_grant", "invalid_request")
        assert body["errors"][0]["code"] == "UNAUTHORIZED"
    assert (await get_token(registry, developer, {})).status_code == 200


# -- POST ----------------------------------------------------------------------------------------------------


async def test_post_password_grant(registry: RegistryClient, template: WorldTemplate) -> None:
    developer = template.world.account(DEVELOPER)
    form = password_form(
        developer, ("service", "trustyard"), ("client_id", "podman"), ("scope", "repository:priv/app:pull,push")
    )
    response = await post_token(registry, form)
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert set(body) == TOKEN_KEYS
    assert body["scope"] == "repository:priv/app:pull,push"
    assert body["expires_in"] == 300
    started = await registry.http.post(
        "/v2/priv/app/blobs/uploads/", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert started.status_code == 202
    offline = await post_token(registry, [*form, ("access_type", "offline")])
    assert set(offline.json()) == {*TOKEN_KEYS, "refresh_token"}


async def test_post_refresh_token_grant(registry: RegistryClient, template: WorldTemplate) -> None:
    """A refresh token buys access tokens for any scope the user is allowed, and a fresh refresh token."""
    developer = template.world.account(DEVELOPER)
    first = await post_token(registry, password_form(developer, ("access_type", "offline")))
    refresh_token = first.json()["refresh_token"]
    form = refresh_form(refresh_token, ("service", "trustyard"))
    response = await post_token(
        registry, [*form, ("scope", "repository:priv/app:pull,push,delete"), ("scope", "repository:vault/base:pull")]
    )
    assert response.status_code == 200, response.text
    assert_no_store(response)
    body = response.json()
    assert body["scope"] == "repository:priv/app:pull,push"
    assert payload(body["access_token"])["sub"] == "developer"
    assert payload(body["refresh_token"])["sub"] == "developer"
    # the old refresh token keeps working until it expires or is revoked
    again = await post_token(registry, [*form, ("scope", "repository:priv/app:pull")])
    assert again.status_code == 200 and again.json()["scope"] == "repository:priv/app:pull"


async def test_post_with_a_wrong_password(registry: RegistryClient) -> None:
    response = await post_token(
        registry, [("grant_type", "password"), ("username", "developer"), ("password", "wrong")]
    )
    assert response.status_code == 401
    assert_no_store(response)
    assert response.json()["error"] == "invalid_grant"
    assert response.json()["error_description"] == "invalid username or password"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_not_allowed(registry: RegistryClient, method: str) -> None:
    response = await registry.http.request(method, "/auth/token")
    assert response.status_code == 405


# -- audit and the base endpoint ---------------------------------------------------------------------------------------


async def test_every_token_issued_is_audited(registry: RegistryClient, template: WorldTemplate) -> None:
    world = template.world
    developer, robot = world.account(DEVELOPER), world.account(ROBOT_PUSH)
    await registry.http.get("/auth/token", params={"scope": "repository:pub/app:pull,push"})
    await get_token(registry, developer, {"scope": "repository:priv/app:pull,delete", "offline_token": "true"})
    await get_token(registry, robot, {"scope": "repository:priv/app:push"})
    posted = await post_token(registry, password_form(developer, ("access_type", "offline")))
    await post_token(
        registry,
        refresh_form(posted.json()["refresh_token"], ("scope", "repository:priv/app:pull")),
    )
    await post_token(registry, refresh_form("not-a-token"))
    events = access_of(registry).audit.query(AuditQuery(action="token"))
    seen = [(e.actor, e.result, e.address, dict(e.detail or {})) for e in events]
    assert seen == [
        (
            "",
            "success",
            "127.0.0.1",
            {"grant": "anonymous", "requested": ["repository:pub/app:pull,push"]}
            | {"granted": ["repository:pub/app:pull"], "refresh_token": False},
        ),
        (
            "developer",
            "success",
            "127.0.0.1",
            {"grant": "basic", "requested": ["repository:priv/app:delete,pull"]}
            | {"granted": ["repository:priv/app:pull"], "refresh_token": True},
        ),
        (
            "robot$priv-push",
            "success",
            "127.0.0.1",
            {"grant": "basic", "requested": ["repository:priv/app:push"]}
            | {"granted": ["repository:priv/app:push"], "refresh_token": False},
        ),
        (
            "developer",
            "success",
            "127.0.0.1",
            {"grant": "password", "requested": [], "granted": [], "refresh_token": True},
        ),
        (
            "developer",
            "success",
            "127.0.0.1",
            {"grant": "refresh_token", "requested": ["repository:priv/app:pull"]}
            | {"granted": ["repository:priv/app:pull"], "refresh_token": True},
        ),
        ("", "failure", "127.0.0.1", {"reason": "malformed token"}),
    ]
    logins = access_of(registry).audit.query(AuditQuery(action="login", actor="developer"))
    assert [(e.result, (e.detail or {}).get("via")) for e in logins] == [("success", "token")] * 2


async def test_the_base_endpoint_sends_anonymous_clients_to_log_in(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    """``/v2/`` tells an anonymous client to log in (a challenge without scope); logged in, it answers 200."""
    response = await registry.http.get("/v2/")
    assert_error(response, 401, "UNAUTHORIZED")
    assert_challenge(response)
    for role in (DEVELOPER, ROBOT_PUSH):
        assert (await registry.http.get("/v2/", auth=template.world.account(role).auth)).status_code == 200
    token = (await registry.http.get("/auth/token")).json()["token"]
    assert (await registry.http.get("/v2/", headers={"Authorization": f"Bearer {token}"})).status_code == 401
