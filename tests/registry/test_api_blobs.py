"""Pulling, checking and deleting blobs (end-2, end-10), with byte ranges (distribution-spec v1.1 "Pulling blobs").

A blob is visible in a repository only once pushed or mounted there; ``Range`` requests follow RFC 9110
section 14 (what the conformance suite checks: ``bytes=a-b``, ``a-``, ``-n``, clipping, 416 when unsatisfiable).
"""

from __future__ import annotations

import pytest

from trustyard.oci.digest import Digest
from trustyard.registry.service import RegistryService

from .conftest import RegistryClient, assert_error, make_blob, sha256, sha512

pytestmark = pytest.mark.anyio

DATA = make_blob("ranges", 2048).data


async def test_get_blob_returns_its_bytes_and_headers(client: RegistryClient) -> None:
    digest = await client.push_blob("repo", DATA)
    response = await client.http.get(f"/v2/repo/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{digest}"'
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


async def test_head_blob_has_size_and_digest_but_no_body(client: RegistryClient) -> None:
    digest = await client.push_blob("repo", DATA)
    response = await client.http.head(f"/v2/repo/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["docker-content-digest"] == digest


async def test_empty_blob_can_be_pulled(client: RegistryClient) -> None:
    digest = await client.push_blob("repo", b"")
    assert digest == sha256(b"")
    response = await client.http.get(f"/v2/repo/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "0"


async def test_sha512_blob_is_addressed_by_its_sha512_digest(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    digest = sha512(DATA)
    response = await client.http.put(location, params={"digest": digest}, content=DATA)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    got = await client.http.get(f"/v2/repo/blobs/{digest}")
    assert got.status_code == 200
    assert got.content == DATA
    assert got.headers["docker-content-digest"] == digest
    missing = await client.http.get(f"/v2/repo/blobs/{sha256(DATA)}")
    assert_error(missing, 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_unknown_blob_is_404_blob_unknown(client: RegistryClient, method: str) -> None:
    await client.push_blob("repo", DATA)
    digest = sha256(b"never pushed")
    response = await client.http.request(method, f"/v2/repo/blobs/{digest}")
    detail = assert_error(response, 404, "BLOB_UNKNOWN")
    if method == "GET":
        assert detail == {"digest": digest}


async def test_blob_of_an_unknown_repository_is_404(client: RegistryClient) -> None:
    response = await client.http.get(f"/v2/nobody/blobs/{sha256(DATA)}")
    assert_error(response, 404, "BLOB_UNKNOWN")


async def test_blob_pushed_to_one_repository_is_not_visible_in_another(client: RegistryClient) -> None:
    digest = await client.push_blob("team/a", DATA)
    await client.push_blob("team/b", b"something else")
    for method in ("GET", "HEAD"):
        response = await client.http.request(method, f"/v2/team/b/blobs/{digest}")
        assert_error(response, 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:xyz",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "md5:" + "a" * 32,
        "blake3:" + "a" * 64,
        "notadigest:",
        "sha256:" + "a" * 64 + "%20",
    ],
)
@pytest.mark.backend_independent
async def test_malformed_blob_digest_is_400_digest_invalid(client: RegistryClient, digest: str) -> None:
    for method in ("GET", "HEAD", "DELETE"):
        response = await client.http.request(method, f"/v2/repo/blobs/{digest}")
        assert_error(response, 400, "DIGEST_INVALID")


async def test_blob_recorded_but_missing_from_storage_is_blob_unknown(client: RegistryClient) -> None:
    digest = await client.push_blob("repo", DATA)
    service: RegistryService = client.app.state.registry
    service.store.delete(Digest.parse(digest))
    response = await client.http.get(f"/v2/repo/blobs/{digest}")
    assert_error(response, 404, "BLOB_UNKNOWN")


# -- ranges -----------------------------------------------------------------------------------------------------

SIZE = len(DATA)


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=500-1499", 500, 1500),
        ("bytes=500-", 500, SIZE),
        ("bytes=-500", SIZE - 500, SIZE),
        ("bytes=2000-5000", 2000, SIZE),
        ("bytes=0-0", 0, 1),
        ("bytes=0-", 0, SIZE),
        (f"bytes={SIZE - 1}-", SIZE - 1, SIZE),
        ("bytes=-5000", 0, SIZE),
        (" bytes=10-19 ", 10, 20),
    ],
)
@pytest.mark.backend_independent
async def test_range_request_returns_206_with_content_range(
    client: RegistryClient, header: str, start: int, end: int
) -> None:
    digest = await client.push_blob("repo", DATA)
    response = await client.http.get(f"/v2/repo/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == DATA[start:end]
    assert response.headers["content-length"] == str(end - start)
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}"
    assert response.headers["docker-content-digest"] == digest


@pytest.mark.backend_independent
async def test_head_with_range_reports_the_range_without_body(client: RegistryClient) -> None:
    digest = await client.push_blob("repo", DATA)
    response = await client.http.head(f"/v2/repo/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.content == b""
    assert response.headers["content-length"] == "100"
    assert response.headers["content-range"] == f"bytes 100-199/{SIZE}"


@pytest.mark.parametrize("header", ["bytes=500-0", "bytes=5000-10000", f"bytes={SIZE}-", "bytes=-0"])
@pytest.mark.backend_independent
async def test_unsatisfiable_range_is_416(client: RegistryClient, header: str) -> None:
    digest = await client.push_blob("repo", DATA)
    for method in ("GET", "HEAD"):
        response = await client.http.request(method, f"/v2/repo/blobs/{digest}", headers={"Range": header})
        assert_error(response, 416, "SIZE_INVALID")
        assert response.headers["content-range"] == f"bytes */{SIZE}"


async def test_any_range_of_an_empty_blob_is_416_and_the_blob_is_still_known(client: RegistryClient) -> None:
    """Regression: a 416 on an existing empty blob claimed BLOB_UNKNOWN, as if the blob were gone."""
    digest = await client.push_blob("repo", b"")
    response = await client.http.get(f"/v2/repo/blobs/{digest}", headers={"Range": "bytes=0-"})
    assert_error(response, 416, "SIZE_INVALID")
    assert response.headers["content-range"] == "bytes */0"
    assert (await client.http.head(f"/v2/repo/blobs/{digest}")).status_code == 200


@pytest.mark.parametrize("header", ["bytes=abc", "items=0-1", "bytes=0-1,5-6", "bytes=-", "0-10", ""])
@pytest.mark.backend_independent
async def test_malformed_or_multi_range_is_ignored_and_the_whole_blob_sent(client: RegistryClient, header: str) -> None:
    digest = await client.push_blob("repo", DATA)
    response = await client.http.get(f"/v2/repo/blobs/{digest}", headers={"Range": header})
    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


# -- end-10: delete ----------------------------------------------------------------------------------------------


async def test_delete_blob_is_202_and_the_blob_is_gone(client: RegistryClient) -> None:
    digest = await client.push_blob("repo", DATA)
    response = await client.http.delete(f"/v2/repo/blobs/{digest}")
    assert response.status_code == 202
    assert response.headers["content-length"] == "0"
    assert_error(await client.http.get(f"/v2/repo/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(await client.http.head(f"/v2/repo/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    again = await client.http.delete(f"/v2/repo/blobs/{digest}")
    assert_error(again, 404, "BLOB_UNKNOWN")


async def test_delete_blob_from_one_repository_leaves_it_in_another(client: RegistryClient) -> None:
    digest = await client.push_blob("a", DATA)
    await client.push_blob("b", DATA)
    assert (await client.http.delete(f"/v2/a/blobs/{digest}")).status_code == 202
    response = await client.http.get(f"/v2/b/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == DATA


async def test_delete_unknown_blob_is_404(client: RegistryClient) -> None:
    await client.push_blob("repo", DATA)
    response = await client.http.delete(f"/v2/repo/blobs/{sha256(b'other')}")
    assert_error(response, 404, "BLOB_UNKNOWN")


async def test_delete_blob_in_unknown_repository_is_404(client: RegistryClient) -> None:
    response = await client.http.delete(f"/v2/nobody/blobs/{sha256(DATA)}")
    assert_error(response, 404, "BLOB_UNKNOWN")


async def test_deleted_blob_can_be_pushed_again(client: RegistryClient) -> None:
    digest = await client.push_blob("repo", DATA)
    assert (await client.http.delete(f"/v2/repo/blobs/{digest}")).status_code == 202
    await client.push_blob("repo", DATA)
    response = await client.http.get(f"/v2/repo/blobs/{digest}")
    assert response.status_code == 200
    assert response.content == DATA
