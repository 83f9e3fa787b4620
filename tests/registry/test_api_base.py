"""The API version check (end-1), the catalog, routing, methods and the error body (distribution-spec v1.1).

Covers ``GET/HEAD /v2/``, ``GET /v2/_catalog`` with ``n``/``last`` pagination and ``Link``, unknown
endpoints, methods an endpoint does not support (405 ``UNSUPPORTED``), the mapping of every registry error
to its status, and unexpected failures (``UNAVAILABLE``, never a traceback).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from trustyard.errors import TrustyardError
from trustyard.registry import errors as registry_errors
from trustyard.registry.api.errors import STATUS, registry_error_response, status_of
from trustyard.registry.app import create_app
from trustyard.registry.errors import RangeInvalidError, RegistryError, TooLargeError
from trustyard.registry.service import RegistryService

from .conftest import (
    API_VERSION,
    BASE,
    ClientFactory,
    RegistryClient,
    SettingsFactory,
    assert_error,
    make_blob,
    make_image,
    sha256,
)

pytestmark = pytest.mark.anyio

OCI_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
}
"""distribution-spec v1.1 "Error Codes" code-1 .. code-14."""


# -- end-1 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2/", "/v2"])
@pytest.mark.backend_independent
async def test_version_check_answers_200_with_the_api_version_header(client: RegistryClient, path: str) -> None:
    response = await client.http.get(path)
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == API_VERSION
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}


@pytest.mark.backend_independent
async def test_version_check_head_has_no_body(client: RegistryClient) -> None:
    response = await client.http.head("/v2/")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == API_VERSION
    assert response.content == b""


# -- catalog ----------------------------------------------------------------------------------------------------


async def push_repositories(client: RegistryClient, names: list[str]) -> None:
    image = make_image("catalog")
    for name in names:
        await client.push(name, image, "latest")


async def test_catalog_of_an_empty_registry_is_empty(client: RegistryClient) -> None:
    response = await client.http.get("/v2/_catalog")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == API_VERSION
    assert response.json() == {"repositories": []}
    assert "link" not in response.headers


async def test_catalog_lists_repositories_with_manifests_sorted(client: RegistryClient) -> None:
    await push_repositories(client, ["zeta", "alpha/one", "alpha", "mid/dle/deep"])
    await client.push_blob("blobs-only", make_blob("lonely"))  # a repository without manifests is not listed
    response = await client.http.get("/v2/_catalog")
    assert response.status_code == 200
    assert response.json() == {"repositories": ["alpha", "alpha/one", "mid/dle/deep", "zeta"]}
    assert "link" not in response.headers


async def test_catalog_pages_follow_the_link_header_to_the_end(client: RegistryClient) -> None:
    names = [f"repo{i}" for i in range(5)]
    await push_repositories(client, names)
    seen: list[str] = []
    url = "/v2/_catalog?n=2"
    pages = 0
    while True:
        response = await client.http.get(url)
        assert response.status_code == 200
        page = response.json()["repositories"]
        assert len(page) <= 2
        seen += page
        pages += 1
        link = response.headers.get("link")
        if link is None:
            break
        m = re.fullmatch(r'<(/v2/_catalog\?[^>]+)>; rel="next"', link)
        assert m is not None, link
        url = m[1]
    assert seen == names
    assert pages == 3


async def test_catalog_page_that_ends_exactly_at_the_end_has_no_link(client: RegistryClient) -> None:
    await push_repositories(client, ["a", "b"])
    response = await client.http.get("/v2/_catalog", params={"n": "2"})
    assert response.json() == {"repositories": ["a", "b"]}
    assert "link" not in response.headers


async def test_catalog_link_carries_n_and_last(client: RegistryClient) -> None:
    await push_repositories(client, ["a/x", "b/y", "c/z"])
    response = await client.http.get("/v2/_catalog", params={"n": "1", "last": "a/x"})
    assert response.json() == {"repositories": ["b/y"]}
    assert response.headers["link"] == '</v2/_catalog?n=1&last=b%2Fy>; rel="next"'


async def test_catalog_last_without_n_returns_everything_after_it(client: RegistryClient) -> None:
    await push_repositories(client, ["a", "b", "c"])
    response = await client.http.get("/v2/_catalog", params={"last": "a"})
    assert response.json() == {"repositories": ["b", "c"]}


async def test_catalog_n_zero_is_an_empty_page_without_link(client: RegistryClient) -> None:
    await push_repositories(client, ["a"])
    response = await client.http.get("/v2/_catalog", params={"n": "0"})
    assert response.status_code == 200
    assert response.json() == {"repositories": []}
    assert "link" not in response.headers


async def test_catalog_n_larger_than_the_page_limit_is_capped_not_refused(client: RegistryClient) -> None:
    await push_repositories(client, ["a", "b"])
    response = await client.http.get("/v2/_catalog", params={"n": "100000"})
    assert response.json() == {"repositories": ["a", "b"]}


@pytest.mark.parametrize("n", ["abc", "-1", "1.5", "0x10", " 1", "²", "١", "½"])
@pytest.mark.backend_independent
async def test_catalog_invalid_n_is_pagination_number_invalid(client: RegistryClient, n: str) -> None:
    response = await client.http.get("/v2/_catalog", params={"n": n})
    assert_error(response, 400, "PAGINATION_NUMBER_INVALID")


# -- routing and methods ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/v2/foo/bar", "/v2/foo/tags", "/v2/foo/manifests/", "/v2/foo/blobs/", "/v2/_catalog/extra", "/v2/foo"],
)
@pytest.mark.backend_independent
async def test_unknown_endpoint_is_a_json_404(client: RegistryClient, path: str) -> None:
    response = await client.http.get(path)
    assert_error(response, 404, "UNSUPPORTED")


@pytest.mark.backend_independent
async def test_unknown_endpoint_head_has_no_body(client: RegistryClient) -> None:
    response = await client.http.head("/v2/foo/bar")
    assert_error(response, 404, "UNSUPPORTED")


BLOB = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"/v2/foo/blobs/{BLOB}"),
        ("POST", f"/v2/foo/blobs/{BLOB}"),
        ("PATCH", f"/v2/foo/blobs/{BLOB}"),
        ("POST", "/v2/foo/manifests/latest"),
        ("PATCH", "/v2/foo/manifests/latest"),
        ("POST", "/v2/foo/tags/list"),
        ("DELETE", "/v2/foo/tags/list"),
        ("PUT", "/v2/foo/tags/list"),
        ("POST", f"/v2/foo/referrers/{BLOB}"),
        ("DELETE", f"/v2/foo/referrers/{BLOB}"),
        ("GET", "/v2/foo/blobs/uploads/"),
        ("PUT", "/v2/foo/blobs/uploads/"),
        ("PATCH", "/v2/foo/blobs/uploads/"),
        ("DELETE", "/v2/foo/blobs/uploads/"),
        ("POST", "/v2/foo/blobs/uploads/" + "0" * 32),
    ],
)
@pytest.mark.backend_independent
async def test_unsupported_method_is_405_unsupported(client: RegistryClient, method: str, path: str) -> None:
    response = await client.http.request(method, path)
    assert_error(response, 405, "UNSUPPORTED")


@pytest.mark.parametrize("path", ["/v2/foo/blobs/uploads/", "/v2/foo/blobs/uploads/" + "0" * 32, "/v2/foo/tags/list"])
@pytest.mark.backend_independent
async def test_unsupported_head_is_405_without_body(client: RegistryClient, path: str) -> None:
    response = await client.http.head(path)
    assert_error(response, 405, "UNSUPPORTED")


# -- the error mapping ------------------------------------------------------------------------------------------


def registry_error_classes() -> list[type[RegistryError]]:
    found: list[type[RegistryError]] = []
    for value in vars(registry_errors).values():
        if isinstance(value, type) and issubclass(value, RegistryError) and value is not RegistryError:
            found.append(value)
    return found


@pytest.mark.parametrize("cls", registry_error_classes(), ids=lambda c: c.__name__)
def test_every_registry_error_has_a_spec_code_and_a_status(cls: type[RegistryError]) -> None:
    error = cls("boom")
    assert error.code in OCI_CODES | {"UNAVAILABLE"}
    assert status_of(error) != 500
    assert 400 <= status_of(error) < 600


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RangeInvalidError("x", {"offset": 10}), 416),
        (TooLargeError("x"), 413),
        (registry_errors.SizeInvalidError("x"), 400),
        (registry_errors.NameUnknownError("x"), 404),
        (registry_errors.UnsupportedError("x"), 405),
        (registry_errors.UnavailableError("x"), 503),
        (RegistryError("unclassified"), 500),
    ],
)
def test_status_of_special_cases(error: RegistryError, status: int) -> None:
    assert status_of(error) == status


def test_every_mapped_code_has_a_4xx_or_5xx_status() -> None:
    assert all(400 <= s < 600 for s in STATUS.values())
    assert set(STATUS) >= OCI_CODES


def test_range_error_reports_the_upload_offset_in_a_range_header() -> None:
    response = registry_error_response(RangeInvalidError("x", {"offset": 10}))
    assert response.status_code == 416
    assert response.headers["range"] == "0-9"
    empty = registry_error_response(RangeInvalidError("x", {"offset": 0}))
    assert empty.headers["range"] == "0-0"


def test_head_error_response_has_no_body() -> None:
    response = registry_error_response(registry_errors.BlobUnknownError("x"), head=True)
    assert response.body == b""
    assert response.status_code == 404


# -- unexpected failures ----------------------------------------------------------------------------------------


@pytest.mark.backend_independent
async def test_database_failure_is_503_unavailable(
    client_factory: ClientFactory, migrated_sqlite: Path, tmp_path: Path
) -> None:
    private = tmp_path / "to-break.db"  # a database of its own: the shared PostgreSQL one must stay intact
    shutil.copyfile(migrated_sqlite, private)
    client = await client_factory(raise_app_exceptions=False, database_url=f"sqlite:///{private}")
    await client.push("repo", make_image(), "latest")
    service: RegistryService = client.app.state.registry
    with service.db.write() as conn:
        conn.execute(text("DROP TABLE tags"))
    response = await client.http.get("/v2/repo/tags/list")
    assert_error(response, 503, "UNAVAILABLE")


@pytest.mark.backend_independent
async def test_unexpected_exception_is_500_unavailable_without_traceback(
    client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await client_factory(raise_app_exceptions=False)
    service: RegistryService = client.app.state.registry

    def broken(limit: int | None, last: str | None) -> list[str]:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service, "catalog", broken)
    response = await client.http.get("/v2/_catalog")
    assert_error(response, 500, "UNAVAILABLE")
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.backend_independent
async def test_trustyard_error_outside_the_registry_family_is_503(
    client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await client_factory(raise_app_exceptions=False)
    service: RegistryService = client.app.state.registry

    def broken(limit: int | None, last: str | None) -> list[str]:
        raise TrustyardError("disk on fire")

    monkeypatch.setattr(service, "catalog", broken)
    response = await client.http.get("/v2/_catalog")
    assert_error(response, 503, "UNAVAILABLE")


@pytest.mark.backend_independent
async def test_app_built_from_settings_alone_migrates_a_new_database_and_serves(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    """``create_app(settings)`` wires everything itself: schema migrated on open, GC task started and stopped."""
    settings = settings_factory(database_url=f"sqlite:///{tmp_path}/fresh/new.db", gc_interval=3600)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            client = RegistryClient(http, app, settings)
            image = make_image("wired")
            await client.push("repo", image, "latest")
            assert (await client.get_manifest("repo", "latest")).content == image.body


@pytest.mark.backend_independent
async def test_sha256_helper_matches_the_registry(client: RegistryClient) -> None:
    """The builders' digests are the registry's digests (guards every other test)."""
    blob = make_blob("helper")
    location = await client.upload_location("repo")
    response = await client.http.put(location, params={"digest": sha256(blob.data)}, content=blob.data)
    assert response.headers["docker-content-digest"] == blob.digest
