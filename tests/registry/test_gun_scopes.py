"""Docker-style names in token scopes and trust routes: ``repository:HOST[:PORT]/REPO:actions``.

Docker Content Trust names trust data by the full image name, so the docker CLI asks the token endpoint for
``repository:127.0.0.1:5000/library/app:pull`` and then reads ``/v2/127.0.0.1:5000/library/app/_trust/...``.
When HOST[:PORT] is this registry (the request's ``Host``, here ``registry.test``, or a ``public_hosts``
entry) the scope is REPO's, with REPO's permissions; another registry's host is refused with a message naming
both. Runs on copies of the world of ``access_helpers.py``.
"""

from __future__ import annotations

import httpx
import pytest

from trustyard.auth.scopes import ForeignHostError, InvalidScopeError, Scope, local_name, parse_scope, parse_scopes

from .access_helpers import DEVELOPER, GUEST, NON_MEMBER, Account, WorldFactory, WorldTemplate, world_fixtures
from .conftest import ALL_MANIFEST_TYPES, RegistryClient, assert_error
from .test_api_token_endpoint import granted

pytestmark = pytest.mark.anyio

isolated, template, open_world, registry = world_fixtures()

HOSTS = frozenset({"registry.test", "127.0.0.1:5000"})


# -- parsing ---------------------------------------------------------------------------------------------------

LOCAL = {
    "host-with-port": ("repository:127.0.0.1:5000/library/app:pull", "library/app"),
    "host-upper-case": ("repository:Registry.Test/priv/app:pull", "priv/app"),
    "plain": ("repository:priv/app:pull", "priv/app"),
    "domain-like-repository": ("repository:example.com/app:pull", "example.com/app"),
    "localhost-repository": ("repository:localhost/app:pull", "localhost/app"),
}

FOREIGN = {
    "other-port": "repository:127.0.0.1:5001/library/app:push,pull",
    "other-host-with-port": "repository:reg.example:5000/library/app:pull",
    "ipv6": "repository:[::1]:5000/library/app:pull",
    "upper-case-host": "repository:Docker.IO/library/app:pull",
}


@pytest.mark.parametrize(("text", "repository"), LOCAL.values(), ids=LOCAL.keys())
def test_names_on_this_registry_are_its_repositories(text: str, repository: str) -> None:
    scope = parse_scope(text, HOSTS)
    assert scope == Scope.of("repository", repository, "pull")


@pytest.mark.parametrize("text", FOREIGN.values(), ids=FOREIGN.keys())
def test_names_on_other_registries_are_refused_naming_both_hosts(text: str) -> None:
    with pytest.raises(ForeignHostError) as refused:
        parse_scope(text, HOSTS)
    assert "this registry is 127.0.0.1:5000, registry.test" in refused.value.message
    assert issubclass(ForeignHostError, InvalidScopeError)


def test_without_known_hosts_a_host_is_never_stripped() -> None:
    with pytest.raises(ForeignHostError, match="no host names known"):
        parse_scope("repository:127.0.0.1:5000/library/app:pull")
    assert local_name("registry.test/priv/app", frozenset()) == "registry.test/priv/app"


def test_docker_style_and_plain_scopes_of_one_repository_merge() -> None:
    scopes = parse_scopes(["repository:127.0.0.1:5000/priv/app:push repository:priv/app:pull"], HOSTS)
    assert scopes == [Scope.of("repository", "priv/app", "pull", "push")]


def test_other_resource_types_keep_their_names() -> None:
    assert parse_scope("registry:catalog:*", HOSTS) == Scope.of("registry", "catalog", "*")


# -- the token endpoint ----------------------------------------------------------------------------------------


async def token(client: RegistryClient, who: Account | None, *scopes: str) -> httpx.Response:
    """``GET /auth/token`` for ``scopes`` as ``who`` (anonymous when ``None``)."""
    params = httpx.QueryParams([("service", "trustyard"), *(("scope", s) for s in scopes)])
    return await client.http.get("/auth/token", params=params, auth=None if who is None else who.auth)


async def test_docker_style_scope_of_this_host_grants_the_repositorys_permissions(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    developer = template.world.account(DEVELOPER)
    response = await token(registry, developer, "repository:registry.test/priv/app:push,pull")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "repository:priv/app:pull,push"
    assert granted(response.json()["token"]) == {"repository:priv/app": ["pull", "push"]}
    guest = await token(registry, template.world.account(GUEST), "repository:registry.test/priv/app:push,pull")
    assert granted(guest.json()["token"]) == {"repository:priv/app": ["pull"]}, "a guest's permissions, no more"
    outsider = await token(registry, template.world.account(NON_MEMBER), "repository:registry.test/priv/app:pull")
    assert outsider.status_code == 200 and outsider.json()["scope"] == ""


async def test_the_token_opens_the_registry_and_the_trust_routes(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    response = await token(registry, template.world.account(GUEST), "repository:registry.test/priv/app:pull")
    bearer = {"Authorization": f"Bearer {response.json()['token']}"}
    manifest = await registry.http.get("/v2/priv/app/manifests/v1", headers={**bearer, "Accept": ALL_MANIFEST_TYPES})
    assert manifest.status_code == 200, manifest.text
    trust = await registry.http.get("/v2/registry.test/priv/app/_trust/tuf/root.json", headers=bearer)
    assert trust.status_code == 404, trust.text
    assert trust.json()["errors"][0]["code"] == "METADATA_NOT_FOUND", "authorized: there is just no trust data yet"
    other = await registry.http.get("/v2/registry.test/pub/app/_trust/tuf/root.json", headers=bearer)
    assert other.status_code == 403, "the token names priv/app only"


async def test_public_hosts_setting_is_this_registry_too(open_world: WorldFactory, template: WorldTemplate) -> None:
    client = await open_world(public_hosts=["Reg.Example:5000"])
    developer = template.world.account(DEVELOPER)
    response = await token(client, developer, "repository:reg.example:5000/priv/app:pull")
    assert response.status_code == 200 and response.json()["scope"] == "repository:priv/app:pull"
    bearer = {"Authorization": f"Bearer {response.json()['token']}"}
    trust = await client.http.get("/v2/reg.example:5000/priv/app/_trust/tuf/root.json", headers=bearer)
    assert trust.status_code == 404 and trust.json()["errors"][0]["code"] == "METADATA_NOT_FOUND"


async def test_another_registrys_host_is_a_clear_400_and_no_token(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    developer = template.world.account(DEVELOPER)
    response = await token(registry, developer, "repository:reg.example:5000/priv/app:pull")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_scope"
    assert body["error_description"] == (
        "'reg.example:5000/priv/app' is repository 'priv/app' on registry 'reg.example:5000';"
        " this registry is registry.test"
    )
    assert "token" not in body
    posted = await registry.http.post(
        "/auth/token",
        content="grant_type=password&username=developer&password=x&scope=repository:reg.example:5000/priv/app:pull",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert posted.status_code == 400 and posted.json()["error"] == "invalid_scope", "refused before any login"


async def test_trust_gun_on_another_registrys_host_is_invalid_gun(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    developer = template.world.account(DEVELOPER)
    response = await registry.http.get("/v2/reg.example:5000/priv/app/_trust/tuf/root.json", auth=developer.auth)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["code"] == "INVALID_GUN"
    assert error["detail"] == (
        "'reg.example:5000/priv/app' is repository 'priv/app' on registry 'reg.example:5000';"
        " this registry is registry.test"
    )


async def test_anonymous_trust_read_of_a_private_gun_is_challenged(registry: RegistryClient) -> None:
    response = await registry.http.get("/v2/registry.test/priv/app/_trust/tuf/root.json")
    assert_error(response, 401, "UNAUTHORIZED")
