"""Pushing blobs: every upload flow and its errors (end-4a/4b, end-5, end-6, end-11, end-13, end-14).

Monolithic (single POST, POST then PUT), chunked (PATCH with ``Content-Range``, final chunk in PATCH or PUT),
streamed (PATCH without length or range), cross-repository mount, cancel, status; and the failures:
out-of-order chunks (416 with the current ``Range``), wrong or malformed digests, lengths that disagree,
unknown or foreign sessions. Spec: distribution-spec v1.1 "Pushing blobs" and "Mounting a blob".
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from trustyard.registry.service import RegistryService

from .conftest import ClientFactory, RegistryClient, assert_error, make_blob, sha256, sha512

pytestmark = pytest.mark.anyio

DATA = make_blob("upload", 3000).data
DIGEST = sha256(DATA)
UPLOAD_LOCATION = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[a-f0-9]{32})$")


def upload_id_of(location: str) -> str:
    m = UPLOAD_LOCATION.match(location)
    assert m is not None, location
    return m["id"]


def uploads_on_disk(client: RegistryClient) -> list[str]:
    folder = Path(client.settings.data_dir) / "uploads"
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("put-"))


def open_sessions(client: RegistryClient) -> int:
    service: RegistryService = client.app.state.registry
    return service.meta.counts()["uploads"]


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def assert_blob(client: RegistryClient, name: str, data: bytes, digest: str | None = None) -> None:
    response = await client.http.get(f"/v2/{name}/blobs/{digest or sha256(data)}")
    assert response.status_code == 200, response.text
    assert response.content == data


# -- end-4a / end-13: open a session, ask its status ------------------------------------------------------------


async def test_post_opens_a_session_with_location_and_uuid(client: RegistryClient) -> None:
    response = await client.start_upload("team/app")
    assert response.status_code == 202
    location = response.headers["location"]
    upload_id = upload_id_of(location)
    assert location.startswith("/v2/team/app/blobs/uploads/")
    assert response.headers["docker-upload-uuid"] == upload_id
    assert response.headers["range"] == "0-0"
    assert response.headers["content-length"] == "0"
    assert response.content == b""


async def test_every_session_has_its_own_id(client: RegistryClient) -> None:
    locations = {await client.upload_location("repo") for _ in range(5)}
    assert len(locations) == 5


async def test_status_of_a_fresh_session_is_204(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    response = await client.http.get(location)
    assert response.status_code == 204
    assert response.headers["location"] == location
    assert response.headers["range"] == "0-0"
    assert response.headers["docker-upload-uuid"] == upload_id_of(location)


# -- end-4b: single POST ----------------------------------------------------------------------------------------


async def test_single_post_with_digest_creates_the_blob(client: RegistryClient) -> None:
    response = await client.http.post("/v2/repo/blobs/uploads/", params={"digest": DIGEST}, content=DATA)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v2/repo/blobs/{DIGEST}"
    assert response.headers["docker-content-digest"] == DIGEST
    assert response.headers["content-length"] == "0"
    await assert_blob(client, "repo", DATA)
    assert open_sessions(client) == 0
    assert uploads_on_disk(client) == []


async def test_single_post_of_an_empty_blob(client: RegistryClient) -> None:
    digest = sha256(b"")
    response = await client.http.post("/v2/repo/blobs/uploads/", params={"digest": digest}, content=b"")
    assert response.status_code == 201, response.text
    await assert_blob(client, "repo", b"")


async def test_single_post_with_wrong_digest_is_digest_invalid_and_leaves_nothing(client: RegistryClient) -> None:
    wrong = sha256(b"something else")
    response = await client.http.post("/v2/repo/blobs/uploads/", params={"digest": wrong}, content=DATA)
    detail = assert_error(response, 400, "DIGEST_INVALID")
    assert detail == {"expected": wrong, "actual": DIGEST}
    assert_error(await client.http.head(f"/v2/repo/blobs/{wrong}"), 404, "BLOB_UNKNOWN")
    assert_error(await client.http.head(f"/v2/repo/blobs/{DIGEST}"), 404, "BLOB_UNKNOWN")
    assert open_sessions(client) == 0
    assert uploads_on_disk(client) == []


@pytest.mark.parametrize("digest", ["sha256:nope", "md5:" + "0" * 32, "sha256:" + "0" * 65])
@pytest.mark.backend_independent
async def test_single_post_with_malformed_digest_is_digest_invalid(client: RegistryClient, digest: str) -> None:
    response = await client.http.post("/v2/repo/blobs/uploads/", params={"digest": digest}, content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")
    assert open_sessions(client) == 0
    assert uploads_on_disk(client) == []


async def test_single_post_shorter_than_content_length_is_size_invalid(client: RegistryClient) -> None:
    response = await client.http.post(
        "/v2/repo/blobs/uploads/",
        params={"digest": DIGEST},
        content=DATA,
        headers={"Content-Length": str(len(DATA) + 10)},
    )
    assert_error(response, 400, "SIZE_INVALID")
    assert_error(await client.http.head(f"/v2/repo/blobs/{DIGEST}"), 404, "BLOB_UNKNOWN")
    assert open_sessions(client) == 0
    assert uploads_on_disk(client) == []


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "²", "1³"])
@pytest.mark.backend_independent
async def test_non_numeric_content_length_is_size_invalid(client: RegistryClient, value: str) -> None:
    """Regression: a Latin-1 digit such as '²' passed ``str.isdigit`` and crashed ``int()`` into a 500."""
    location = await client.upload_location("repo")
    for method, url in (("POST", "/v2/repo/blobs/uploads/"), ("PATCH", location), ("PUT", location)):
        response = await client.http.request(
            method, url, params={"digest": DIGEST}, content=DATA, headers={b"Content-Length": value.encode("latin-1")}
        )
        assert_error(response, 400, "SIZE_INVALID")


async def test_sha512_single_post(client: RegistryClient) -> None:
    digest = sha512(DATA)
    response = await client.http.post("/v2/repo/blobs/uploads/", params={"digest": digest}, content=DATA)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    await assert_blob(client, "repo", DATA, digest)


# -- end-6: POST then PUT ---------------------------------------------------------------------------------------


async def test_post_then_put_with_the_whole_blob(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    response = await client.http.put(location, params={"digest": DIGEST}, content=DATA)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v2/repo/blobs/{DIGEST}"
    assert response.headers["docker-content-digest"] == DIGEST
    await assert_blob(client, "repo", DATA)
    assert_error(await client.http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert uploads_on_disk(client) == []


async def test_put_with_wrong_digest_is_digest_invalid_and_ends_the_session(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    wrong = sha256(b"x")
    response = await client.http.put(location, params={"digest": wrong}, content=DATA)
    assert assert_error(response, 400, "DIGEST_INVALID") == {"expected": wrong, "actual": DIGEST}
    assert_error(await client.http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.http.head(f"/v2/repo/blobs/{DIGEST}"), 404, "BLOB_UNKNOWN")
    assert uploads_on_disk(client) == []


@pytest.mark.backend_independent
async def test_put_without_digest_is_blob_upload_invalid_and_keeps_the_session(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    response = await client.http.put(location, content=DATA)
    assert_error(response, 400, "BLOB_UPLOAD_INVALID")
    assert (await client.http.get(location)).status_code == 204


@pytest.mark.backend_independent
async def test_put_with_malformed_digest_is_digest_invalid(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    response = await client.http.put(location, params={"digest": "sha256:short"}, content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")


async def test_put_with_sha512_digest_verifies_sha512(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    response = await client.http.put(location, params={"digest": sha512(b"other")}, content=DATA)
    assert_error(response, 400, "DIGEST_INVALID")


async def test_put_shorter_than_content_length_is_size_invalid(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    response = await client.http.put(
        location, params={"digest": DIGEST}, content=DATA[:100], headers={"Content-Length": "200"}
    )
    assert_error(response, 400, "SIZE_INVALID")
    assert_error(await client.http.head(f"/v2/repo/blobs/{DIGEST}"), 404, "BLOB_UNKNOWN")


async def test_same_blob_pushed_twice_is_fine(client: RegistryClient) -> None:
    await client.push_blob("repo", DATA)
    await client.push_blob("repo", DATA)
    await assert_blob(client, "repo", DATA)


# -- end-5: chunked ---------------------------------------------------------------------------------------------


async def patch(client: RegistryClient, location: str, chunk: bytes, start: int | None, *, length: bool = True) -> str:
    headers = {"Content-Type": "application/octet-stream"}
    if start is not None:
        headers["Content-Range"] = f"{start}-{start + len(chunk) - 1}"
    if not length:
        response = await client.http.patch(location, content=pieces(chunk, 100), headers=headers)
    else:
        response = await client.http.patch(location, content=chunk, headers=headers)
    assert response.status_code == 202, response.text
    new_location: str = response.headers["location"]
    return new_location


async def test_chunked_upload_reports_the_range_after_every_chunk(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    for start in range(0, len(DATA), 1000):
        chunk = DATA[start : start + 1000]
        response = await client.http.patch(
            location,
            content=chunk,
            headers={"Content-Range": f"{start}-{start + len(chunk) - 1}", "Content-Type": "application/octet-stream"},
        )
        assert response.status_code == 202, response.text
        assert response.headers["range"] == f"0-{start + len(chunk) - 1}"
        assert response.headers["location"] == location
        assert response.headers["content-length"] == "0"
        status = await client.http.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == f"0-{start + len(chunk) - 1}"
    response = await client.http.put(location, params={"digest": DIGEST})
    assert response.status_code == 201, response.text
    await assert_blob(client, "repo", DATA)


async def test_chunked_upload_with_final_chunk_in_put(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    location = await patch(client, location, DATA[:2000], 0)
    response = await client.http.put(
        location,
        params={"digest": DIGEST},
        content=DATA[2000:],
        headers={"Content-Range": f"2000-{len(DATA) - 1}", "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    await assert_blob(client, "repo", DATA)


async def test_chunked_upload_with_bytes_prefixed_content_range(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    response = await client.http.patch(location, content=DATA[:10], headers={"Content-Range": "bytes 0-9/*"})
    assert response.status_code == 202, response.text
    assert response.headers["range"] == "0-9"


async def test_out_of_order_chunk_is_416_with_the_current_range(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    location = await patch(client, location, DATA[:1000], 0)
    response = await client.http.patch(location, content=DATA[2000:3000], headers={"Content-Range": "2000-2999"})
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response.headers["range"] == "0-999"
    status = await client.http.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-999"
    # the client resumes where the registry says, and the upload completes
    location = await patch(client, location, DATA[1000:], 1000)
    assert (await client.http.put(location, params={"digest": DIGEST})).status_code == 201
    await assert_blob(client, "repo", DATA)


async def test_first_chunk_not_at_zero_is_416(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    response = await client.http.patch(location, content=DATA[5:10], headers={"Content-Range": "5-9"})
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response.headers["range"] == "0-0"
    assert (await client.http.get(location)).headers["range"] == "0-0"


async def test_retrying_the_previous_chunk_is_416(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    location = await patch(client, location, DATA[:1000], 0)
    response = await client.http.patch(location, content=DATA[:1000], headers={"Content-Range": "0-999"})
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert (await client.http.get(location)).headers["range"] == "0-999"


async def test_out_of_order_final_chunk_in_put_is_416_and_keeps_the_session(client: RegistryClient) -> None:
    """Regression: the closing PUT ignored Content-Range, appended the chunk anywhere and failed the digest."""
    location = await client.upload_location("repo")
    location = await patch(client, location, DATA[:1000], 0)
    response = await client.http.put(
        location,
        params={"digest": DIGEST},
        content=DATA[2000:],
        headers={"Content-Range": f"2000-{len(DATA) - 1}"},
    )
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response.headers["range"] == "0-999"
    status = await client.http.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-999"
    location = await patch(client, location, DATA[1000:2000], 1000)
    response = await client.http.put(
        location,
        params={"digest": DIGEST},
        content=DATA[2000:],
        headers={"Content-Range": f"2000-{len(DATA) - 1}"},
    )
    assert response.status_code == 201, response.text
    await assert_blob(client, "repo", DATA)


@pytest.mark.parametrize("value", ["abc", "0-", "-9", "0-9-10", "bytes=a-b", "1,2"])
@pytest.mark.backend_independent
async def test_malformed_content_range_is_blob_upload_invalid(client: RegistryClient, value: str) -> None:
    location = await client.upload_location("repo")
    for method in ("PATCH", "PUT"):
        response = await client.http.request(
            method, location, params={"digest": DIGEST}, content=DATA[:10], headers={"Content-Range": value}
        )
        assert_error(response, 400, "BLOB_UPLOAD_INVALID")
        assert (await client.http.get(location)).headers["range"] == "0-0"


@pytest.mark.parametrize("value", ["9-0", "0-4", "0-19"])
@pytest.mark.backend_independent
async def test_content_range_disagreeing_with_content_length_is_blob_upload_invalid(
    client: RegistryClient, value: str
) -> None:
    location = await client.upload_location("repo")
    for method in ("PATCH", "PUT"):
        response = await client.http.request(
            method, location, params={"digest": DIGEST}, content=DATA[:10], headers={"Content-Range": value}
        )
        assert_error(response, 400, "BLOB_UPLOAD_INVALID")
        assert (await client.http.get(location)).headers["range"] == "0-0"


@pytest.mark.backend_independent
async def test_patch_shorter_than_content_length_is_size_invalid(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    response = await client.http.patch(location, content=DATA[:10], headers={"Content-Length": "20"})
    assert_error(response, 400, "SIZE_INVALID")


async def test_chunked_upload_with_wrong_digest_is_digest_invalid(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    location = await patch(client, location, DATA, 0)
    response = await client.http.put(location, params={"digest": sha256(DATA + b"oh no")})
    assert_error(response, 400, "DIGEST_INVALID")
    assert_error(await client.http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


# -- streamed ---------------------------------------------------------------------------------------------------


async def test_streamed_patches_without_length_or_range(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    location = await patch(client, location, DATA[:1234], None, length=False)
    location = await patch(client, location, DATA[1234:], None, length=False)
    assert (await client.http.get(location)).headers["range"] == f"0-{len(DATA) - 1}"
    response = await client.http.put(location, params={"digest": DIGEST})
    assert response.status_code == 201, response.text
    await assert_blob(client, "repo", DATA)


@pytest.mark.backend_independent
async def test_streamed_blob_larger_than_the_write_batch(client: RegistryClient) -> None:
    """Bigger than the service's 4 MiB write batch, so writes overlap with receiving."""
    data = make_blob("big", 9 * 1024 * 1024 + 17).data
    location = await client.upload_location("repo")
    response = await client.http.patch(location, content=pieces(data, 256 * 1024))
    assert response.status_code == 202, response.text
    assert response.headers["range"] == f"0-{len(data) - 1}"
    response = await client.http.put(location, params={"digest": sha256(data)})
    assert response.status_code == 201, response.text
    got = await client.http.get(f"/v2/repo/blobs/{sha256(data)}")
    assert got.content == data


async def test_streamed_upload_with_wrong_digest_is_digest_invalid(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    location = await patch(client, location, DATA, None, length=False)
    response = await client.http.put(location, params={"digest": sha256(b"nope")})
    assert_error(response, 400, "DIGEST_INVALID")


async def test_streamed_upload_finished_with_sha512(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    location = await patch(client, location, DATA, None, length=False)
    response = await client.http.put(location, params={"digest": sha512(DATA)})
    assert response.status_code == 201, response.text
    await assert_blob(client, "repo", DATA, sha512(DATA))


async def test_session_survives_a_restart_of_the_registry(client_factory: ClientFactory) -> None:
    first = await client_factory()
    location = await first.upload_location("repo")
    await patch(first, location, DATA[:1500], 0)
    second = await client_factory()  # same data dir and database, fresh process state
    status = await second.http.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-1499"
    await patch(second, location, DATA[1500:], 1500)
    response = await second.http.put(location, params={"digest": DIGEST})
    assert response.status_code == 201, response.text
    await assert_blob(second, "repo", DATA)


# -- end-14: cancel ---------------------------------------------------------------------------------------------


async def test_cancel_is_204_and_discards_the_data(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    await patch(client, location, DATA[:100], 0)
    assert uploads_on_disk(client) == [upload_id_of(location)]
    response = await client.http.delete(location)
    assert response.status_code == 204
    assert uploads_on_disk(client) == []
    assert open_sessions(client) == 0
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        after = await client.http.request(method, location, params={"digest": DIGEST}, content=b"x")
        assert_error(after, 404, "BLOB_UPLOAD_UNKNOWN")


# -- unknown and foreign sessions -------------------------------------------------------------------------------


@pytest.mark.parametrize("upload_id", ["0" * 32, "not-an-id", "%2e%2e", "ABCDEF" * 6])
async def test_unknown_session_is_404_blob_upload_unknown(client: RegistryClient, upload_id: str) -> None:
    await client.upload_location("repo")
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = await client.http.request(
            method, f"/v2/repo/blobs/uploads/{upload_id}", params={"digest": DIGEST}, content=b"x"
        )
        assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")


async def test_session_of_another_repository_is_404(client: RegistryClient) -> None:
    location = await client.upload_location("alice/app")
    foreign = location.replace("/v2/alice/app/", "/v2/mallory/app/")
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        response = await client.http.request(method, foreign, params={"digest": sha256(b"x")}, content=b"x")
        assert_error(response, 404, "BLOB_UPLOAD_UNKNOWN")
    status = await client.http.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-0"


async def test_finished_session_cannot_be_reused(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    assert (await client.http.put(location, params={"digest": DIGEST}, content=DATA)).status_code == 201
    again = await client.http.put(location, params={"digest": DIGEST}, content=DATA)
    assert_error(again, 404, "BLOB_UPLOAD_UNKNOWN")


# -- end-11: mount ----------------------------------------------------------------------------------------------


async def test_mount_from_a_repository_holding_the_blob_is_201(client: RegistryClient) -> None:
    await client.push_blob("source", DATA)
    response = await client.start_upload("target", mount=DIGEST, **{"from": "source"})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v2/target/blobs/{DIGEST}"
    assert response.headers["docker-content-digest"] == DIGEST
    assert response.headers["content-length"] == "0"
    await assert_blob(client, "target", DATA)
    assert open_sessions(client) == 0


async def test_mount_into_a_repository_that_already_has_it_is_201(client: RegistryClient) -> None:
    await client.push_blob("source", DATA)
    await client.push_blob("target", DATA)
    response = await client.start_upload("target", mount=DIGEST, **{"from": "source"})
    assert response.status_code == 201


@pytest.mark.parametrize("source", ["empty", "nobody", "Invalid/Name", "../source", ""])
async def test_mount_that_cannot_be_done_falls_back_to_a_session(client: RegistryClient, source: str) -> None:
    await client.push_blob("source", DATA)
    await client.push_blob("empty", b"other")
    response = await client.start_upload("target", mount=DIGEST, **{"from": source})
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    upload_id_of(location)
    assert_error(await client.http.head(f"/v2/target/blobs/{DIGEST}"), 404, "BLOB_UNKNOWN")
    # the session is usable: the client uploads the blob itself
    assert (await client.http.put(location, params={"digest": DIGEST}, content=DATA)).status_code == 201
    await assert_blob(client, "target", DATA)


async def test_mount_of_a_blob_nobody_has_opens_a_session(client: RegistryClient) -> None:
    await client.push_blob("source", b"something else")
    response = await client.start_upload("target", mount=DIGEST, **{"from": "source"})
    assert response.status_code == 202
    upload_id_of(response.headers["location"])


async def test_mount_without_from_opens_a_session(client: RegistryClient) -> None:
    await client.push_blob("source", DATA)
    response = await client.start_upload("target", mount=DIGEST)
    assert response.status_code == 202
    upload_id_of(response.headers["location"])


async def test_mount_with_malformed_digest_is_digest_invalid(client: RegistryClient) -> None:
    await client.push_blob("source", DATA)
    response = await client.start_upload("target", mount="sha256:bad", **{"from": "source"})
    assert_error(response, 400, "DIGEST_INVALID")


async def test_mounted_blob_stays_when_the_source_deletes_it(client: RegistryClient) -> None:
    await client.push_blob("source", DATA)
    assert (await client.start_upload("target", mount=DIGEST, **{"from": "source"})).status_code == 201
    assert (await client.http.delete(f"/v2/source/blobs/{DIGEST}")).status_code == 202
    await assert_blob(client, "target", DATA)


async def test_chunk_shorter_than_its_content_range_is_refused(client: RegistryClient) -> None:
    """Content-Range without Content-Length (a chunked body): the range's length is what must arrive."""
    location = await client.upload_location("repo")
    response = await client.http.patch(
        location, content=pieces(DATA[:1000], 100), headers={"Content-Range": f"0-{len(DATA) - 1}"}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 400, "SIZE_INVALID")
    status = await client.http.get(location)  # what did arrive is kept: the client resumes from there
    assert status.status_code == 204
    assert status.headers["range"] == "0-999"
    response = await client.http.put(location, params={"digest": DIGEST}, content=DATA[1000:])
    assert response.status_code == 201, response.text
    await assert_blob(client, "repo", DATA)
