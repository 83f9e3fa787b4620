"""A chunked blob upload survives a restart of the registry and is resumed where the server says it stopped.

Drives the upload endpoints directly (OCI distribution-spec 1.1, "Pushing a blob in chunks"): POST opens a
session, PATCHes carry `Content-Range: <start>-<end>`, GET on the session reports `Range: 0-<last>`, PUT
`?digest=` closes it. The registry is restarted in the middle, on the same data dir and port, gracefully
(SIGTERM) or not (SIGKILL): acknowledged chunks are on disk either way.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Iterator

import httpx
import pytest

from .registry_api import RegistryClient, oci_error_codes
from .servers import EACH_DATABASE, RegistryServer

pytestmark = pytest.mark.interop

CHUNK = 1 << 20  # 1 MiB


def patch_all(api: RegistryClient, location: str, data: bytes, offset: int) -> tuple[str, int]:
    """PATCH `data` from `offset` in CHUNK pieces; returns the latest Location and the new offset."""
    for start in range(0, len(data), CHUNK):
        chunk = data[start : start + CHUNK]
        response = api.patch_chunk(location, chunk, offset)
        assert response.status_code == 202, response.text
        offset += len(chunk)
        assert response.headers["range"] == f"0-{offset - 1}"
        location = response.headers["location"]
    return location, offset


@EACH_DATABASE
@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_chunked_upload_resumes_after_restart(hard: bool, registry: RegistryServer, api: RegistryClient) -> None:
    repo = "resume/blob"
    data = random.Random(f"resume-{hard}").randbytes(5 * CHUNK + 12345)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    before = data[: 3 * CHUNK]

    opened = api.start_upload(repo)
    assert opened.status_code == 202, opened.text
    assert opened.headers.get("docker-upload-uuid")
    location, _ = patch_all(api, opened.headers["location"], before, 0)

    registry.restart(hard=hard)

    status = api.upload_status(location)
    assert status.status_code == 204, status.text
    assert status.headers["range"] == f"0-{len(before) - 1}"
    assert status.headers.get("docker-upload-uuid") == opened.headers["docker-upload-uuid"]
    resumed_at = int(status.headers["range"].split("-")[1]) + 1
    location = status.headers.get("location", location)

    location, _ = patch_all(api, location, data[resumed_at:-1000], resumed_at)
    closed = api.finish_upload(location, digest, data[-1000:])
    assert closed.status_code == 201, closed.text
    assert closed.headers["docker-content-digest"] == digest
    assert api.absolute(closed.headers["location"]).endswith(f"/v2/{repo}/blobs/{digest}")

    head = api.http.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(data)
    assert head.headers["docker-content-digest"] == digest
    assert api.get_blob(repo, digest) == data

    # the session is gone once the blob exists
    gone = api.upload_status(location)
    assert gone.status_code == 404
    assert oci_error_codes(gone) == ["BLOB_UPLOAD_UNKNOWN"]

    # and the blob is still whole after one more restart
    registry.restart()
    assert api.blob_digest(repo, digest) == (200, digest, len(data))


def test_out_of_order_chunk_is_refused(registry: RegistryServer, api: RegistryClient) -> None:
    """A PATCH whose Content-Range does not start at the session's offset: 416, and nothing is appended.

    (distribution 2.8 ignores Content-Range and appends; the spec requires 416.)
    """
    repo = "resume/gap"
    data = random.Random("gap").randbytes(2 * CHUNK + 99)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    opened = api.start_upload(repo)
    assert opened.status_code == 202, opened.text
    location, offset = patch_all(api, opened.headers["location"], data[:CHUNK], 0)

    for wrong_start in (offset + 100, offset - 100, 0):
        gap = api.patch_chunk(location, data[wrong_start : wrong_start + 500], wrong_start)
        assert gap.status_code == 416, gap.text
    status = api.upload_status(location)
    assert status.status_code == 204
    assert status.headers["range"] == f"0-{offset - 1}"

    location, _ = patch_all(api, status.headers.get("location", location), data[offset:], offset)
    closed = api.finish_upload(location, digest)
    assert closed.status_code == 201, closed.text
    assert api.get_blob(repo, digest) == data


def test_wrong_digest_is_refused(registry: RegistryServer, api: RegistryClient) -> None:
    """PUT with a digest the bytes do not have: 400 DIGEST_INVALID, and no blob appears under either digest."""
    repo = "resume/bad"
    data = random.Random("bad-digest").randbytes(CHUNK + 7)
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    claimed = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    opened = api.start_upload(repo)
    assert opened.status_code == 202, opened.text
    location, _ = patch_all(api, opened.headers["location"], data, 0)
    closed = api.finish_upload(location, claimed)
    assert closed.status_code == 400, closed.text
    assert oci_error_codes(closed) == ["DIGEST_INVALID"]
    for digest in (claimed, actual):
        assert api.http.head(f"/v2/{repo}/blobs/{digest}").status_code == 404


def test_sigterm_lets_an_upload_in_flight_finish(registry: RegistryServer, api: RegistryClient) -> None:
    """SIGTERM while a PATCH body is still arriving: the request completes (202), then the server exits,
    and after a restart the session holds every byte."""
    repo = "resume/inflight"
    data = random.Random("inflight").randbytes(8 * 256 * 1024)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    opened = api.start_upload(repo)
    assert opened.status_code == 202, opened.text
    location = api.absolute(opened.headers["location"])

    half_sent = threading.Event()
    signalled = threading.Event()

    def body() -> Iterator[bytes]:
        for i in range(0, len(data), 256 * 1024):
            if i == len(data) // 2:
                half_sent.set()
                assert signalled.wait(timeout=10)
            yield data[i : i + 256 * 1024]

    result: list[httpx.Response | httpx.TransportError] = []

    def send() -> None:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"0-{len(data) - 1}",
            "Content-Length": str(len(data)),
        }
        try:
            result.append(api.http.patch(location, content=body(), headers=headers))
        except httpx.TransportError as e:
            result.append(e)

    sender = threading.Thread(target=send)
    sender.start()
    assert half_sent.wait(timeout=10)
    registry.begin_stop()
    registry.wait_not_accepting()  # shutdown under way: the listener is closed, the PATCH still open
    signalled.set()
    sender.join(timeout=30)
    assert result, "the PATCH did not return"
    (patched,) = result
    assert isinstance(patched, httpx.Response), f"PATCH in flight at SIGTERM: {patched!r}"
    assert patched.status_code == 202, patched.text
    assert patched.headers["range"] == f"0-{len(data) - 1}"
    registry.wait_stopped()

    registry.start()
    status = api.upload_status(patched.headers["location"])
    assert status.status_code == 204, status.text
    assert status.headers["range"] == f"0-{len(data) - 1}"
    closed = api.finish_upload(status.headers.get("location", patched.headers["location"]), digest)
    assert closed.status_code == 201, closed.text
    assert api.get_blob(repo, digest) == data
