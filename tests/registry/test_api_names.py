"""Repository names on every endpoint: the spec's grammar, and path tricks that must never reach storage.

Spec: distribution-spec v1.1 "Pulling manifests": ``<name>`` matches
``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*``; anything else is
``NAME_INVALID`` (400) wherever a name appears. ``..`` sent raw (as a proxy or a hand-written client can, and
as httpx cannot) is checked through the ASGI interface directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import RegistryClient, assert_error, make_image, raw_request, sha256

pytestmark = pytest.mark.anyio

DIGEST = sha256(b"content")

VALID_NAMES = [
    "a",
    "0",
    "library/ubuntu",
    "a-b",
    "a--b",
    "a_b",
    "a__b",
    "a.b",
    "a/b/c/d/e",
    "my.registry_name-1/sub__part.x",
    "a" * 255,
    # components spelled like the API's own path segments: the router must still find the name
    "tags/list",
    "x/blobs",
    "a/blobs/uploads",
    "x/manifests/y",
    "referrers/sha256",
    "v2/v2",
]

INVALID_NAMES = [
    pytest.param("Upper", id="upper-case"),
    pytest.param("team/App", id="upper-case-component"),
    pytest.param("%2e%2e", id="encoded-dotdot"),
    pytest.param("a/%2e%2e/b", id="encoded-dotdot-inside"),
    pytest.param("%2E", id="encoded-dot"),
    pytest.param("a..b", id="double-dot"),
    pytest.param("a___b", id="triple-underscore"),
    pytest.param("-a", id="leading-dash"),
    pytest.param("a-", id="trailing-dash"),
    pytest.param("_a", id="leading-underscore"),
    pytest.param(".a", id="leading-dot"),
    pytest.param("a%2F", id="trailing-slash"),
    pytest.param("%2Fa", id="leading-slash"),
    pytest.param("a//b", id="empty-component"),
    pytest.param("a%20b", id="space"),
    pytest.param("a%00b", id="nul"),
    pytest.param("a%5Cb", id="backslash"),
    pytest.param("caf%C3%A9", id="non-ascii"),
    pytest.param("a:b", id="colon"),
    pytest.param("a" * 256, id="256-chars"),
    pytest.param("/".join(["abcdefgh"] * 40), id="overlong-path"),
]


def endpoints(name: str) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, query) of every endpoint that takes a repository name."""
    return [
        ("GET", f"/v2/{name}/manifests/latest", {}),
        ("HEAD", f"/v2/{name}/manifests/latest", {}),
        ("PUT", f"/v2/{name}/manifests/latest", {}),
        ("DELETE", f"/v2/{name}/manifests/latest", {}),
        ("DELETE", f"/v2/{name}/manifests/{DIGEST}", {}),
        ("GET", f"/v2/{name}/blobs/{DIGEST}", {}),
        ("HEAD", f"/v2/{name}/blobs/{DIGEST}", {}),
        ("DELETE", f"/v2/{name}/blobs/{DIGEST}", {}),
        ("POST", f"/v2/{name}/blobs/uploads/", {}),
        ("POST", f"/v2/{name}/blobs/uploads/", {"digest": DIGEST}),
        ("POST", f"/v2/{name}/blobs/uploads/", {"mount": DIGEST, "from": "source"}),
        ("GET", f"/v2/{name}/blobs/uploads/{'0' * 32}", {}),
        ("PATCH", f"/v2/{name}/blobs/uploads/{'0' * 32}", {}),
        ("PUT", f"/v2/{name}/blobs/uploads/{'0' * 32}", {"digest": DIGEST}),
        ("DELETE", f"/v2/{name}/blobs/uploads/{'0' * 32}", {}),
        ("GET", f"/v2/{name}/tags/list", {}),
        ("GET", f"/v2/{name}/referrers/{DIGEST}", {}),
    ]


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", VALID_NAMES)
async def test_valid_names_work_end_to_end(client: RegistryClient, name: str) -> None:
    image = make_image("valid-name")
    await client.push(name, image, "latest")
    assert (await client.get_manifest(name, "latest")).content == image.body
    assert (await client.http.get(f"/v2/{name}/tags/list")).json() == {"name": name, "tags": ["latest"]}
    assert name in (await client.http.get("/v2/_catalog")).json()["repositories"]
    config = image.blobs[0]
    assert (await client.http.get(f"/v2/{name}/blobs/{config.digest}")).content == config.data
    location = await client.upload_location(name)
    assert location.startswith(f"/v2/{name}/blobs/uploads/")
    assert (await client.http.get(location)).status_code == 204
    assert (await client.http.get(f"/v2/{name}/referrers/{image.digest}")).status_code == 200
    assert (await client.http.delete(f"/v2/{name}/manifests/latest")).status_code == 202


@pytest.mark.parametrize("name", INVALID_NAMES)
@pytest.mark.backend_independent
async def test_invalid_name_is_name_invalid_on_every_endpoint(client: RegistryClient, name: str) -> None:
    await client.push_blob("source", b"content")
    for method, path, query in endpoints(name):
        response = await client.http.request(method, path, params=query, content=b"{}" if method == "PUT" else None)
        assert_error(response, 400, "NAME_INVALID")
    catalog = (await client.http.get("/v2/_catalog")).json()["repositories"]
    assert catalog == []


@pytest.mark.backend_independent
async def test_name_invalid_detail_names_the_name(client: RegistryClient) -> None:
    response = await client.http.get("/v2/Bad/Name/tags/list")
    assert assert_error(response, 400, "NAME_INVALID") == {"name": "Bad/Name"}


@pytest.mark.parametrize(
    "path",
    [
        "/v2/../manifests/latest",
        "/v2/../../etc/manifests/latest",
        "/v2/a/../b/manifests/latest",
        "/v2/a/./b/manifests/latest",
        "/v2/./manifests/latest",
        "/v2/a/../../../../tmp/blobs/uploads/",
        f"/v2/../x/blobs/{DIGEST}",
        "/v2/a/b/../../c/tags/list",
        f"/v2/../referrers/{DIGEST}",
    ],
)
@pytest.mark.backend_independent
async def test_raw_dot_segments_are_name_invalid_and_touch_nothing(
    client: RegistryClient, tmp_path: Path, path: str
) -> None:
    before = files_under(tmp_path)
    for method in ("GET", "HEAD", "POST", "PUT", "DELETE"):
        status, body = await raw_request(client.app, method, path)
        assert status in (400, 405), (method, status, body)
        if status == 400 and method != "HEAD":
            assert json.loads(body)["errors"][0]["code"] == "NAME_INVALID"
    created = files_under(tmp_path) - before
    assert all(p.name.startswith("metadata.db") for p in created), created  # SQLite's own -wal/-shm only


@pytest.mark.parametrize("upload_id", ["..", "../../etc/passwd", "%2e%2e", "."])
@pytest.mark.backend_independent
async def test_raw_dot_upload_ids_are_unknown(client: RegistryClient, upload_id: str) -> None:
    status, body = await raw_request(client.app, "GET", f"/v2/repo/blobs/uploads/{upload_id}")
    assert status == 404, body
    assert json.loads(body)["errors"][0]["code"] in ("BLOB_UPLOAD_UNKNOWN", "UNSUPPORTED")


@pytest.mark.parametrize("digest", ["sha256:..", "sha256:../../../etc/passwd", "..", "sha256:%2e%2e"])
@pytest.mark.backend_independent
async def test_dot_digests_never_reach_storage(client: RegistryClient, digest: str) -> None:
    await client.push_blob("repo", b"x")
    status, body = await raw_request(client.app, "GET", f"/v2/repo/blobs/{digest}")
    assert status in (400, 404), body
    if status == 400:
        assert json.loads(body)["errors"][0]["code"] == "DIGEST_INVALID"
