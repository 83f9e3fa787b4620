"""Attacks on access control through the HTTP API, one named test each: forged and stale tokens, escalation,
mount tricks, path tricks, dead accounts, brute force, malformed token requests, leaked secrets.

Forged tokens are built by hand as an attacker would (PyJWT with our own key for the control case, ``hmac``
for HS256 with the public key, no signature for ``alg: none``) and sent to a real registry route; every one of
them is a ``401`` with ``error="invalid_token"``, and a token built the same way but honestly passes (so the
refusals are the checks', not the forger's). Every test runs on its own copy of the world of
``access_helpers.py``; tests whose outcome depends on the identity store run on PostgreSQL too.

Not here: the role-by-action matrix (``test_api_access_matrix.py``), the token endpoint's protocol
(``test_api_token_endpoint.py``), the token service alone (``tests/auth/test_tokens.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustyard.auth.audit import AuditQuery
from trustyard.auth.model import Action
from trustyard.registry.app import AccessLog

from .access_helpers import (
    ANONYMOUS,
    DEVELOPER,
    GUEST,
    NON_MEMBER,
    PRIVATE,
    PUBLIC,
    ROBOT_PULL,
    ROBOT_PUSH,
    USERS,
    VAULT,
    Account,
    World,
    WorldFactory,
    WorldTemplate,
    access_of,
    app_image,
    assert_insufficient_scope,
    base_image,
    open_app,
    password_of,
    populate,
    robot_name,
    secure_settings,
    world_fixtures,
)
from .conftest import ALL_MANIFEST_TYPES, BACKENDS, BASE, RegistryClient, SharedPostgresql, assert_error, raw_request

pytestmark = pytest.mark.anyio

isolated, template, open_world, registry = world_fixtures()

MANIFEST = "/v2/priv/app/manifests/v1"
ACCEPT = {"Accept": ALL_MANIFEST_TYPES}


# -- forging ----------------------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    """base64url without padding, as JWS has it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signing_key(client: RegistryClient) -> ec.EllipticCurvePrivateKey:
    """The registry's own signing key, as someone who could read its data folder would hold it."""
    pem = (client.settings.data_dir / "auth" / "token-signing-key.pem").read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims of an access token for the system administrator to pull and push ``priv/app``, valid now."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": "trustyard",
        "sub": USERS["admin"],
        "aud": "trustyard",
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": secrets.token_urlsafe(8),
        "access": [{"type": "repository", "name": "priv/app", "actions": ["pull", "push"]}],
    }
    values.update(overrides)
    return values


def es256(client: RegistryClient, payload: dict[str, Any], key: ec.EllipticCurvePrivateKey | None = None) -> str:
    """An ES256 token with our ``kid``, signed by ``key`` (default: our own key)."""
    kid = access_of(client).tokens.key_id
    return jwt.encode(payload, key or signing_key(client), algorithm="ES256", headers={"kid": kid, "typ": "JWT"})


def unsigned(header: dict[str, Any], payload: dict[str, Any], sign: bytes = b"") -> str:
    """A compact JWS from its parts, with ``sign`` as the raw signature."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    return head + "." + b64(sign)


def hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 token keyed with ``secret`` (the classic algorithm-confusion forgery)."""
    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())
    mac = hmac.new(secret, head.encode("ascii"), hashlib.sha256).digest()
    return head + "." + b64(mac)


def bearer(token: str) -> dict[str, str]:
    """Headers presenting ``token`` on a manifest pull."""
    return {"Authorization": f"Bearer {token}", **ACCEPT}


def assert_invalid_token(response: httpx.Response, message: str) -> None:
    """A 401 whose challenge says the token was no good, with the verifier's reason."""
    assert_error(response, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["errors"][0]["message"] == message


async def token_for(client: RegistryClient, who: Account, *scopes: str, offline: bool = False) -> dict[str, Any]:
    """What ``GET /auth/token`` answers ``who`` for ``scopes`` (asserting it answered 200)."""
    params = httpx.QueryParams([("service", "trustyard"), *(("scope", s) for s in scopes)])
    if offline:
        params = params.add("offline_token", "true")
    response = await client.http.get("/auth/token", params=params, auth=who.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: RegistryClient, refresh_token: str, scope: str = "") -> httpx.Response:
    """The OAuth2 refresh grant."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "service": "trustyard"}
    if scope:
        form["scope"] = scope
    return await client.http.post("/auth/token", data=form)


# -- forged and stale tokens --------------------------------------------------------------------------------------


async def test_a_token_forged_the_same_way_with_our_key_is_accepted(registry: RegistryClient) -> None:
    """The control: the forger below is right, so each refusal is the verifier's doing."""
    response = await registry.http.get(MANIFEST, headers=bearer(es256(registry, claims())))
    assert response.status_code == 200, response.text
    assert response.content == app_image(PRIVATE).body


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_attack_alg_none_token(registry: RegistryClient, alg: str) -> None:
    kid = access_of(registry).tokens.key_id
    token = unsigned({"alg": alg, "typ": "JWT", "kid": kid}, claims())
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(token)), "token algorithm must be ES256")
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(token.rstrip("."))), "malformed token")


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER], ids=["pem", "der"])
async def test_attack_hs256_token_signed_with_the_public_key(
    registry: RegistryClient, encoding: serialization.Encoding
) -> None:
    public = signing_key(registry).public_key().public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = access_of(registry).tokens.key_id
    token = hs256({"alg": "HS256", "typ": "JWT", "kid": kid}, claims(), public)
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(token)), "token algorithm must be ES256")


async def test_attack_expired_token(registry: RegistryClient) -> None:
    now = int(time.time())
    token = es256(registry, claims(iat=now - 900, nbf=now - 900, exp=now - 60))
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(token)), "token expired")


async def test_attack_token_not_valid_yet(registry: RegistryClient) -> None:
    now = int(time.time())
    token = es256(registry, claims(iat=now + 600, nbf=now + 600, exp=now + 900))
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(token)), "token not valid yet")


async def test_attack_token_for_another_service(registry: RegistryClient) -> None:
    """A token our own token service issued, but for another registry (audience), is no good here."""
    access = access_of(registry)
    scope = access.tokens.verify(es256(registry, claims())).access
    token = access.tokens.issue(USERS["admin"], scope, audience="other-registry")
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(token)), "token is for another service")
    forged = es256(registry, claims(aud=["other-registry", "elsewhere"]))
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(forged)), "token is for another service")


async def test_attack_token_from_another_issuer(registry: RegistryClient) -> None:
    token = es256(registry, claims(iss="https://evil.example/auth"))
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(token)), "token from another issuer")


async def test_attack_token_signed_by_a_foreign_key_with_our_kid(registry: RegistryClient) -> None:
    token = es256(registry, claims(), key=ec.generate_private_key(ec.SECP256R1()))
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(token)), "invalid token")


async def test_attack_token_with_its_access_claim_edited(registry: RegistryClient, template: WorldTemplate) -> None:
    """A guest's real token, its payload rewritten to grant push (signature kept), is refused."""
    token = (await token_for(registry, template.world.account(GUEST), "repository:priv/app:pull"))["token"]
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["access"][0]["actions"] = ["pull", "push"]
    body["sub"] = USERS["admin"]
    forged = f"{header}.{b64(json.dumps(body).encode())}.{signature}"
    assert_invalid_token(await registry.http.get(MANIFEST, headers=bearer(forged)), "invalid token")


async def test_attack_scope_escalation(registry: RegistryClient, template: WorldTemplate) -> None:
    """A guest asking for push gets a pull-only token; pushing with it, or with Basic, is refused with 403 DENIED
    naming the guest (it may not push at all, so no challenge: a larger token would not help). A developer
    holding a pull-only token is sent back for a larger one (insufficient_scope)."""
    guest = template.world.account(GUEST)
    body = await token_for(registry, guest, "repository:priv/app:pull,push,delete,*")
    assert body["scope"] == "repository:priv/app:pull"
    push = {"Authorization": f"Bearer {body['token']}"}
    for response in (
        await registry.http.post("/v2/priv/app/blobs/uploads/", headers=push),
        await registry.http.post("/v2/priv/app/blobs/uploads/", auth=guest.auth),
        await registry.http.delete("/v2/priv/app/manifests/v1", headers=push),
    ):
        assert_error(response, 403, "DENIED")
        assert "user 'guest' may not" in response.json()["errors"][0]["message"]
        assert "www-authenticate" not in response.headers
    pulled = await registry.http.get(MANIFEST, headers={**push, **ACCEPT})
    assert pulled.status_code == 200

    developer = template.world.account(DEVELOPER)
    narrow = await token_for(registry, developer, "repository:priv/app:pull")
    started = await registry.http.post(
        "/v2/priv/app/blobs/uploads/", headers={"Authorization": f"Bearer {narrow['token']}"}
    )
    assert_insufficient_scope(started, "repository:priv/app:pull,push")


async def test_attack_a_token_is_bound_to_its_repository(registry: RegistryClient, template: WorldTemplate) -> None:
    """A developer's token for ``priv/app`` does not open ``priv/base``, though the developer may pull there."""
    token = (await token_for(registry, template.world.account(DEVELOPER), "repository:priv/app:pull"))["token"]
    response = await registry.http.get("/v2/priv/base/manifests/v1", headers=bearer(token))
    assert_insufficient_scope(response, "repository:priv/base:pull")


# -- mounts and names -------------------------------------------------------------------------------------------


async def test_attack_cross_project_mount_of_an_unreadable_blob(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    """A developer of ``priv`` who knows the digest of a layer in ``vault`` cannot mount it into ``priv/app``:
    not from ``vault`` itself, nor through a readable repository that lacks it, nor through a path trick."""
    developer = template.world.account(DEVELOPER)
    secret_layer = base_image(VAULT).blobs[1]
    for source in ("vault/base", "commons/base", "priv/base", "priv/../vault/base", "vault%2Fbase", "VAULT/base"):
        response = await registry.http.post(
            "/v2/priv/app/blobs/uploads/", params={"mount": secret_layer.digest, "from": source}, auth=developer.auth
        )
        assert response.status_code == 202, (source, response.text)
        assert response.headers["location"].startswith("/v2/priv/app/blobs/uploads/")
    for method in ("GET", "HEAD"):
        got = await registry.http.request(method, f"/v2/priv/app/blobs/{secret_layer.digest}", auth=developer.auth)
        assert_error(got, 404, "BLOB_UNKNOWN")
    denied = await registry.http.get(f"/v2/vault/base/blobs/{secret_layer.digest}", auth=developer.auth)
    assert_error(denied, 403, "DENIED")


async def test_attack_repository_names_with_dot_dot(registry: RegistryClient, template: WorldTemplate) -> None:
    """``..`` never walks from a readable repository into another one: it is not a valid name."""
    outsider = template.world.account(NON_MEMBER)
    status, body = await raw_request(registry.app, "GET", "/v2/pub/../priv/app/manifests/v1")
    assert status == 400 and json.loads(body)["errors"][0]["code"] == "NAME_INVALID"
    for path in ("/v2/pub/%2E%2E/priv/app/manifests/v1", "/v2/pub/app/%2e%2e/%2e%2e/priv/app/manifests/v1"):
        response = await registry.http.get(path, auth=outsider.auth, headers=ACCEPT)
        assert_error(response, 400, "NAME_INVALID")
    token = (await token_for(registry, outsider, "repository:pub/app:pull"))["token"]
    response = await registry.http.get("/v2/pub/app/%2E%2E/%2E%2E/priv/app/manifests/v1", headers=bearer(token))
    assert_error(response, 400, "NAME_INVALID")


async def test_attack_repository_names_with_encoded_slashes(registry: RegistryClient, template: WorldTemplate) -> None:
    """``%2F`` decodes to ``/`` before routing: the name is then the repository it spells, checked as such."""
    outsider = template.world.account(NON_MEMBER)
    response = await registry.http.get("/v2/priv%2Fapp/manifests/v1", auth=outsider.auth, headers=ACCEPT)
    assert_error(response, 403, "DENIED")
    assert "repository 'priv/app'" in response.json()["errors"][0]["message"]
    response = await registry.http.get("/v2/pub%2F..%2Fpriv%2Fapp/manifests/v1", auth=outsider.auth, headers=ACCEPT)
    assert_error(response, 400, "NAME_INVALID")
    pub_robot = template.world.account(ROBOT_PULL, PUBLIC)
    response = await registry.http.get("/v2/pub%2F%2E%2E%2Fpriv/app/tags/list", auth=pub_robot.auth)
    assert_error(response, 400, "NAME_INVALID")
    response = await registry.http.get("/v2/priv%2Fapp/manifests/v1", auth=pub_robot.auth, headers=ACCEPT)
    assert_error(response, 403, "DENIED")


async def test_attack_repository_names_in_upper_case(registry: RegistryClient, template: WorldTemplate) -> None:
    """``PRIV/app`` is not ``priv/app`` spelled differently: it is no name at all, for pulls, pushes and tokens."""
    developer = template.world.account(DEVELOPER)
    outsider = template.world.account(NON_MEMBER)
    for name in ("PRIV/app", "Priv/app", "priv/APP"):
        for who in (outsider, developer):
            response = await registry.http.get(f"/v2/{name}/manifests/v1", auth=who.auth, headers=ACCEPT)
            assert_error(response, 400, "NAME_INVALID")
            response = await registry.http.post(f"/v2/{name}/blobs/uploads/", auth=who.auth)
            assert_error(response, 400, "NAME_INVALID")
        response = await registry.http.get(
            "/auth/token", params={"scope": f"repository:{name}:pull"}, auth=outsider.auth
        )
        assert response.status_code == 400 and response.json()["error"] == "invalid_scope"
    assert access_of(registry).store.get_project("PRIV") is None
    assert access_of(registry).store.get_project("Priv") is None


# -- dead accounts ------------------------------------------------------------------------------------------------

Live = tuple[RegistryClient, World]


@pytest.fixture(params=BACKENDS)
async def live(
    request: pytest.FixtureRequest, open_world: WorldFactory, template: WorldTemplate, tmp_path: Path
) -> AsyncIterator[Live]:
    """A registry with the world in it, on SQLite (a copy of the template) and on PostgreSQL (populated now):
    what these tests change goes through the identity store's SQL."""
    if request.param == "sqlite":
        yield await open_world(), template.world
        return
    shared: SharedPostgresql = request.getfixturevalue("migrated_postgresql")
    shared.empty()
    async with AsyncExitStack() as stack:
        client = await open_app(stack, secure_settings(tmp_path / "pg-data", shared.url))
        yield client, await populate(client)


async def assert_locked_out(
    client: RegistryClient, who: Account, old_token: str, message: str, *, basic: str | None = None
) -> None:
    """``who`` gets in neither with Basic, nor at the token endpoint, nor with a token issued before; ``message``
    is the refusal of the token (and of Basic, unless ``basic`` says otherwise)."""
    response = await client.http.get(MANIFEST, auth=who.auth, headers=ACCEPT)
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.json()["errors"][0]["message"] == (basic or message)
    response = await client.http.get("/auth/token", params={"scope": "repository:priv/app:pull"}, auth=who.auth)
    assert response.status_code == 401 and response.json()["error"] == "invalid_grant", response.text
    assert "token" not in response.json()
    assert_invalid_token(await client.http.get(MANIFEST, headers=bearer(old_token)), message)


@pytest.mark.parametrize("role", [ROBOT_PULL, ROBOT_PUSH])
async def test_attack_disabled_robot(live: Live, role: str) -> None:
    registry, world = live
    who = world.account(role)
    token = (await token_for(registry, who, "repository:priv/app:pull"))["token"]
    assert (await registry.http.get(MANIFEST, headers=bearer(token))).status_code == 200
    name = robot_name(role, PRIVATE)
    access_of(registry).store.set_robot_disabled(name)
    await assert_locked_out(
        registry, who, token, f"robot account 'robot${name}' is disabled", basic=f"robot account {name!r} is disabled"
    )


async def test_attack_expired_robot(live: Live) -> None:
    registry, world = live
    who = world.account(ROBOT_PULL)
    token = (await token_for(registry, who, "repository:priv/app:pull"))["token"]
    assert (await registry.http.get(MANIFEST, headers=bearer(token))).status_code == 200
    name = robot_name(ROBOT_PULL, PRIVATE)
    access_of(registry).store.set_robot_expiry(name, time.time() - 1)
    await assert_locked_out(
        registry, who, token, f"robot account 'robot${name}' has expired", basic=f"robot account {name!r} has expired"
    )


async def test_attack_deleted_users_unexpired_token_and_refresh_token(live: Live) -> None:
    registry, world = live
    who = world.account(DEVELOPER)
    body = await token_for(registry, who, "repository:priv/app:pull", offline=True)
    assert (await registry.http.get(MANIFEST, headers=bearer(body["token"]))).status_code == 200
    access_of(registry).store.delete_user("developer")
    response = await registry.http.get(MANIFEST, headers=bearer(body["token"]))
    assert_invalid_token(response, "user 'developer' no longer exists")
    response = await refresh(registry, body["refresh_token"], "repository:priv/app:pull")
    assert response.status_code == 401 and response.json()["error"] == "invalid_grant", response.text
    assert "access_token" not in response.json()
    response = await registry.http.get(MANIFEST, auth=who.auth, headers=ACCEPT)
    assert_error(response, 401, "UNAUTHORIZED")


async def test_attack_an_account_created_again_under_a_deleted_name_gets_nothing_of_the_old_one(live: Live) -> None:
    """Deleting ``developer`` and creating a new ``developer``: the old access and refresh tokens stay dead (the
    new account's refresh-token counter starts over, so it must not match by accident), no membership carries
    over; the same for a robot deleted and created again."""
    registry, world = live
    who = world.account(DEVELOPER)
    body = await token_for(registry, who, "repository:pub/app:pull", offline=True)
    store = access_of(registry).store
    store.delete_user("developer")
    store.create_user("developer", password="a new person's password")
    assert store.role_of("developer", PRIVATE) is None
    response = await refresh(registry, body["refresh_token"], "repository:pub/app:pull")
    assert response.status_code == 401, response.text
    assert response.json()["error_description"] == "refresh token revoked"
    response = await registry.http.get("/v2/pub/app/manifests/v1", headers=bearer(body["token"]))
    assert_invalid_token(response, "the account 'developer' this token was issued to no longer exists")
    new = await token_for(
        registry, Account(DEVELOPER, "developer", "a new person's password"), "repository:pub/app:pull"
    )
    assert (await registry.http.get("/v2/pub/app/manifests/v1", headers=bearer(new["token"]))).status_code == 200

    robot = world.account(ROBOT_PULL)
    old = (await token_for(registry, robot, "repository:priv/app:pull"))["token"]
    name = robot_name(ROBOT_PULL, PRIVATE)
    store.delete_robot(name)
    store.create_robot(name, [Action.PULL], project=PRIVATE)
    response = await registry.http.get(MANIFEST, headers=bearer(old))
    assert_invalid_token(response, f"the account 'robot${name}' this token was issued to no longer exists")


async def test_attack_disabled_users_token(live: Live) -> None:
    registry, world = live
    who = world.account(DEVELOPER)
    body = await token_for(registry, who, "repository:priv/app:pull", offline=True)
    access_of(registry).store.set_user_disabled("developer")
    await assert_locked_out(registry, who, body["token"], "account 'developer' is disabled")
    response = await refresh(registry, body["refresh_token"])
    assert response.status_code == 401 and response.json()["error"] == "invalid_grant", response.text


async def test_attack_password_change_revokes_refresh_tokens(live: Live) -> None:
    registry, world = live
    who = world.account(DEVELOPER)
    body = await token_for(registry, who, "repository:priv/app:pull", offline=True)
    response = await refresh(registry, body["refresh_token"], "repository:priv/app:pull")
    assert response.status_code == 200, response.text
    access_of(registry).store.set_password("developer", "a brand new password")
    response = await refresh(registry, body["refresh_token"], "repository:priv/app:pull")
    assert response.status_code == 401, response.text
    assert response.json()["error_description"] == "refresh token revoked"
    response = await registry.http.get(MANIFEST, auth=who.auth, headers=ACCEPT)
    assert_error(response, 401, "UNAUTHORIZED")
    response = await registry.http.get(MANIFEST, auth=("developer", "a brand new password"), headers=ACCEPT)
    assert response.status_code == 200


async def test_attack_refresh_token_used_as_access_token_and_the_reverse(live: Live) -> None:
    registry, world = live
    body = await token_for(registry, world.account(DEVELOPER), "repository:priv/app:pull", offline=True)
    assert_invalid_token(
        await registry.http.get(MANIFEST, headers=bearer(body["refresh_token"])), "wrong kind of token"
    )
    response = await refresh(registry, body["token"])
    assert response.status_code == 401 and response.json()["error"] == "invalid_grant", response.text
    assert response.json()["error_description"] == "wrong kind of token"


# -- brute force ----------------------------------------------------------------------------------------------


async def test_attack_brute_force_at_the_token_endpoint(open_world: WorldFactory, template: WorldTemplate) -> None:
    client = await open_world(login_max_failures=3)
    who = template.world.account(DEVELOPER)
    for attempt in range(3):
        response = await client.http.get("/auth/token", auth=("developer", f"guess-{attempt}"))
        assert response.status_code == 401, response.text
    for credentials in (who.auth, httpx.BasicAuth("developer", "guess-4")):
        response = await client.http.get("/auth/token", auth=credentials)
        assert response.status_code == 429, response.text
        assert response.json()["error"] == "slow_down"
        assert 1 <= int(response.headers["retry-after"]) <= 300
        assert "token" not in response.json()
    # the registry's Basic login shares the count; other users are not affected
    response = await client.http.get(MANIFEST, auth=who.auth, headers=ACCEPT)
    assert_error(response, 429, "TOOMANYREQUESTS")
    assert 1 <= int(response.headers["retry-after"]) <= 300
    guest = template.world.account(GUEST)
    assert (await client.http.get(MANIFEST, auth=guest.auth, headers=ACCEPT)).status_code == 200
    form = {"grant_type": "password", "username": "developer", "password": password_of("developer")}
    response = await client.http.post("/auth/token", data=form)
    assert response.status_code == 429, response.text


async def test_attack_brute_force_with_basic_on_the_registry(open_world: WorldFactory, template: WorldTemplate) -> None:
    client = await open_world(login_max_failures=3)
    who = template.world.account(ROBOT_PUSH)
    assert who.username is not None
    for attempt in range(3):
        response = await client.http.get(MANIFEST, auth=(who.username, f"guess-{attempt}"), headers=ACCEPT)
        assert_error(response, 401, "UNAUTHORIZED")
    response = await client.http.get(MANIFEST, auth=who.auth, headers=ACCEPT)
    assert_error(response, 429, "TOOMANYREQUESTS")
    assert 1 <= int(response.headers["retry-after"]) <= 300
    response = await client.http.get("/auth/token", auth=who.auth)
    assert response.status_code == 429
    failures = access_of(client).audit.query(AuditQuery(actor=who.username, action="login"))
    assert [e.result for e in failures] == ["failure"] * 3 + ["denied"] * 2


# -- anonymous writes and the token endpoint ------------------------------------------------------------------


async def test_attack_anonymous_push_to_a_public_project(registry: RegistryClient, template: WorldTemplate) -> None:
    image = app_image(PUBLIC)
    challenge = (
        'Bearer realm="http://registry.test/auth/token",service="trustyard",scope="repository:pub/app:pull,push"'
    )
    for response in (
        await registry.http.post("/v2/pub/app/blobs/uploads/"),
        await registry.http.post(
            "/v2/pub/app/blobs/uploads/", params={"mount": image.blobs[1].digest, "from": "pub/app"}
        ),
        await registry.http.put(
            "/v2/pub/app/manifests/v2", content=image.body, headers={"Content-Type": image.media_type}
        ),
    ):
        assert_error(response, 401, "UNAUTHORIZED")
        assert response.headers["www-authenticate"] == challenge
    for path in ("/v2/pub/app/manifests/v1", f"/v2/pub/app/manifests/{image.digest}"):
        assert_error(await registry.http.delete(path), 401, "UNAUTHORIZED")
    body = await token_for(registry, template.world.account(ANONYMOUS), "repository:pub/app:pull,push,delete")
    assert body["scope"] == "repository:pub/app:pull"
    assert (await registry.http.get("/v2/pub/app/tags/list")).json()["tags"] == ["v1"]


@pytest.mark.parametrize(
    ("params", "error"),
    [
        pytest.param({"service": "other-registry"}, "invalid_request", id="wrong-service"),
        pytest.param({"scope": "repository:priv/app"}, "invalid_scope", id="scope-without-actions"),
        pytest.param({"scope": "repository:priv/app:"}, "invalid_scope", id="scope-empty-action"),
        pytest.param({"scope": "repository:priv/app:pull;push"}, "invalid_scope", id="scope-bad-action"),
        pytest.param({"scope": "repository::pull"}, "invalid_scope", id="scope-without-name"),
        pytest.param({"scope": "repository:priv/../vault/base:pull"}, "invalid_scope", id="scope-dot-dot"),
        pytest.param({"scope": "Repository:priv/app:pull"}, "invalid_scope", id="scope-bad-type"),
        pytest.param({"scope": "repository:registry.example:5000/priv/app:pull"}, "invalid_scope", id="scope-host"),
    ],
)
async def test_attack_token_endpoint_refuses_malformed_get(
    registry: RegistryClient, template: WorldTemplate, params: dict[str, str], error: str
) -> None:
    response = await registry.http.get("/auth/token", params=params, auth=template.world.account(DEVELOPER).auth)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert "token" not in response.json()


@pytest.mark.parametrize(
    ("form", "error"),
    [
        pytest.param({"grant_type": "client_credentials"}, "unsupported_grant_type", id="client-credentials"),
        pytest.param({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type", id="code"),
        pytest.param({"username": "developer"}, "unsupported_grant_type", id="no-grant-type"),
        pytest.param({}, "invalid_request", id="empty"),
        pytest.param({"grant_type": "password", "username": ""}, "invalid_request", id="no-username"),
        pytest.param(
            {"grant_type": "password", "username": "developer", "password": "x", "service": "other"},
            "invalid_request",
            id="wrong-service",
        ),
        pytest.param(
            {"grant_type": "password", "username": "developer", "password": "x", "scope": "repository:x"},
            "invalid_scope",
            id="malformed-scope",
        ),
    ],
)
async def test_attack_token_endpoint_refuses_malformed_post(
    registry: RegistryClient, form: dict[str, str], error: str
) -> None:
    response = await registry.http.post("/auth/token", data=form)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error


async def test_attack_token_endpoint_refuses_a_form_too_large(registry: RegistryClient) -> None:
    padding = "x" * (64 * 1024)
    form = {"grant_type": "password", "username": "developer", "password": password_of("developer"), "pad": padding}
    response = await registry.http.post("/auth/token", data=form)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request", response.text

    async def stream() -> Any:
        for _ in range(20):
            yield b"pad=" + b"x" * 8192 + b"&"

    response = await registry.http.post(
        "/auth/token", content=stream(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request", response.text
    response = await registry.http.post(
        "/auth/token",
        content=b"grant_type=password",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_request", response.text


# -- secrets ------------------------------------------------------------------------------------------------------


def _texts(record: logging.LogRecord) -> Iterable[str]:
    yield record.getMessage()
    for value in vars(record).values():
        yield repr(value)


async def test_attack_secrets_never_appear_in_responses_or_logs(
    registry: RegistryClient, template: WorldTemplate, caplog: pytest.LogCaptureFixture
) -> None:
    """Passwords, robot secrets and tokens go in; none comes out in a response (but the token endpoint's own
    tokens), a log record (message or extra fields, through the access log as ``serve`` runs it) or an audit
    event."""
    caplog.set_level(logging.DEBUG)
    world = template.world
    developer, robot = world.account(DEVELOPER), world.account(ROBOT_PUSH)
    assert developer.password is not None and robot.password is not None and robot.username is not None
    wrong = "wrong-" + developer.password
    transport = httpx.ASGITransport(app=AccessLog(registry.app))
    responses: list[httpx.Response] = []
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        responses.append(await http.get(MANIFEST, auth=("developer", wrong)))
        responses.append(await http.get(MANIFEST, auth=developer.auth))
        responses.append(await http.get(MANIFEST, auth=(robot.username, "not-" + robot.password)))
        responses.append(await http.get(MANIFEST, auth=robot.auth))
        responses.append(await http.get("/auth/token", auth=("developer", wrong)))
        issued = await http.get(
            "/auth/token", params={"scope": "repository:priv/app:pull", "offline_token": "true"}, auth=developer.auth
        )
        robot_token = await http.get("/auth/token", params={"scope": "repository:priv/app:pull"}, auth=robot.auth)
        grant = {"grant_type": "password", "username": "developer", "password": developer.password}
        posted = await http.post("/auth/token", data={**grant, "access_type": "offline"})
        responses.append(await http.post("/auth/token", data={**grant, "password": wrong}))
        refreshed = await http.post(
            "/auth/token", data={"grant_type": "refresh_token", "refresh_token": issued.json()["refresh_token"]}
        )
        responses.append(await http.get(MANIFEST, headers=bearer(issued.json()["token"])))
        responses.append(await http.get(MANIFEST, headers=bearer(issued.json()["token"] + "x")))
        responses.append(await http.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": wrong}))
    issued_tokens = [
        issued.json()["token"],
        issued.json()["refresh_token"],
        robot_token.json()["token"],
        posted.json()["access_token"],
        posted.json()["refresh_token"],
        refreshed.json()["access_token"],
    ]
    secrets_in = [developer.password, wrong, robot.password, *issued_tokens]
    for response in responses:
        text = response.text + repr(response.headers)
        assert not [s for s in secrets_in if s in text], (response.request.url, text)
    for response in (issued, robot_token, posted, refreshed):
        text = response.text + repr(response.headers)
        assert not [s for s in (developer.password, wrong, robot.password) if s in text]
    logged = [text for record in caplog.records for text in _texts(record)]
    assert any("/auth/token" in text for text in logged), "the access log was not captured"
    leaked = [(s, t) for s in secrets_in for t in logged if s in t]
    assert not leaked
    events = access_of(registry).audit.query(limit=10_000)
    assert any(e.action == "login" and e.result == "failure" for e in events)
    audit_text = json.dumps([e.to_json() for e in events])
    assert not [s for s in secrets_in if s in audit_text]


def test_world_secrets_are_distinctive(template: WorldTemplate) -> None:
    """The leak test above looks for these strings: they must not be substrings of ordinary output."""
    for secret in (password_of("developer"), *template.world.robot_secrets.values()):
        assert len(secret) >= 16


def test_the_world_keeps_its_files_private(template: WorldTemplate) -> None:
    key = template.root / "data" / "auth" / "token-signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    assert Path(key.parent).stat().st_mode & 0o077 == 0
