"""When storage fails or clients misbehave: the answer is a spec error (503 ``UNAVAILABLE`` for the server's
own trouble), nothing half-done becomes visible, and what can be retried can be.

Faults are real: files removed or replaced behind the registry's back, a folder where a file should be, a
client that hangs up in the middle of a body (driven through the ASGI interface, as httpx cannot hang up).
Also: the access log around the app, the OpenAPI document, the manifest cache, blob touches for GC.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from trustyard.db.models import blobs
from trustyard.oci.digest import Digest
from trustyard.registry.app import asgi_app
from trustyard.registry.service import RegistryService, _ManifestCache

from .conftest import (
    ClientFactory,
    RegistryClient,
    SettingsFactory,
    asgi_scope,
    assert_error,
    make_blob,
    make_image,
    sha256,
)

pytestmark = pytest.mark.anyio

DATA = make_blob("faults", 5000).data
DIGEST = sha256(DATA)


def service_of(client: RegistryClient) -> RegistryService:
    service: RegistryService = client.app.state.registry
    return service


def blob_path(client: RegistryClient, digest: str) -> Path:
    d = Digest.parse(digest)
    return Path(client.settings.data_dir) / "blobs" / d.algorithm / d.hex[:2] / d.hex


def last_used(client: RegistryClient, digest: str) -> float:
    with service_of(client).db.read() as conn:
        value = conn.execute(select(blobs.c.last_used).where(blobs.c.digest == digest)).scalar_one()
    return float(value)


# -- storage faults ---------------------------------------------------------------------------------------------


@pytest.mark.backend_independent
async def test_upload_folder_unusable_is_503_unavailable(client: RegistryClient) -> None:
    uploads = Path(client.settings.data_dir) / "uploads"
    shutil.rmtree(uploads)
    uploads.write_bytes(b"not a folder")
    response = await client.start_upload("repo")
    assert_error(response, 503, "UNAVAILABLE")


async def test_upload_data_removed_behind_the_registry_is_upload_unknown(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    upload_id = location.rsplit("/", 1)[1]
    (Path(client.settings.data_dir) / "uploads" / upload_id).unlink()
    assert_error(await client.http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(await client.http.patch(location, content=b"x"), 404, "BLOB_UPLOAD_UNKNOWN")


async def test_failed_commit_is_503_and_the_upload_can_be_retried(client: RegistryClient) -> None:
    shard = blob_path(client, DIGEST).parent
    shard.parent.mkdir(parents=True, exist_ok=True)
    shard.write_bytes(b"a file where the shard folder belongs")
    location = await client.upload_location("repo")
    response = await client.http.put(location, params={"digest": DIGEST}, content=DATA)
    assert_error(response, 503, "UNAVAILABLE")
    assert_error(await client.http.head(f"/v2/repo/blobs/{DIGEST}"), 404, "BLOB_UNKNOWN")
    status = await client.http.get(location)  # the session and its bytes survived
    assert status.status_code == 204
    assert status.headers["range"] == f"0-{len(DATA) - 1}"
    shard.unlink()
    retry = await client.http.put(location, params={"digest": DIGEST})
    assert retry.status_code == 201, retry.text
    assert (await client.http.get(f"/v2/repo/blobs/{DIGEST}")).content == DATA


@pytest.mark.backend_independent
async def test_unreadable_blob_is_503_unavailable(client: RegistryClient) -> None:
    await client.push_blob("repo", DATA)
    path = blob_path(client, DIGEST)
    path.unlink()
    path.mkdir()  # a folder where the blob file should be: open() fails with something other than ENOENT
    assert_error(await client.http.get(f"/v2/repo/blobs/{DIGEST}"), 503, "UNAVAILABLE")


async def test_manifest_bytes_missing_from_storage_is_503_not_a_traceback(client_factory: ClientFactory) -> None:
    first = await client_factory()
    image = make_image("vanishing")
    await first.push("repo", image, "latest")
    blob_path(first, image.digest).unlink()
    second = await client_factory()  # same data, empty manifest cache
    assert_error(await second.get_manifest("repo", "latest"), 503, "UNAVAILABLE")
    head = await second.http.head("/v2/repo/manifests/latest")  # HEAD answers from the database alone
    assert head.status_code == 200


async def test_manifest_that_cannot_be_stored_is_503_and_not_recorded(client: RegistryClient) -> None:
    image = make_image("unstorable")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    shard = blob_path(client, image.digest).parent
    shard.parent.mkdir(parents=True, exist_ok=True)
    shard.write_bytes(b"in the way")
    response = await client.put_manifest("repo", "latest", image)
    assert_error(response, 503, "UNAVAILABLE")
    assert_error(await client.get_manifest("repo", "latest"), 404, "MANIFEST_UNKNOWN")
    shard.unlink()
    assert (await client.put_manifest("repo", "latest", image)).status_code == 201


# -- clients that hang up ---------------------------------------------------------------------------------------


async def asgi_call(
    client: RegistryClient, method: str, path: str, messages: list[Mapping[str, Any]], query: bytes = b""
) -> tuple[int, dict[str, str]]:
    """Call the app with ``messages`` as the request's receive stream; status and headers of the answer."""
    scope = asgi_scope(method, path, query)
    pending = list(messages)
    status = 0
    headers: dict[str, str] = {}

    async def receive() -> MutableMapping[str, Any]:
        return dict(pending.pop(0)) if pending else {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.update({k.decode(): v.decode() for k, v in message.get("headers", [])})

    await client.app(scope, receive, send)
    return status, headers


async def test_client_hanging_up_mid_chunk_keeps_what_arrived(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    await asgi_call(
        client,
        "PATCH",
        location,
        [
            {"type": "http.request", "body": DATA[:1000], "more_body": True},
            {"type": "http.request", "body": DATA[1000:1500], "more_body": True},
            {"type": "http.disconnect"},
        ],
    )
    status = await client.http.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-1499"
    response = await client.http.patch(
        location, content=DATA[1500:], headers={"Content-Range": f"1500-{len(DATA) - 1}"}
    )
    assert response.status_code == 202
    assert (await client.http.put(location, params={"digest": DIGEST})).status_code == 201
    assert (await client.http.get(f"/v2/repo/blobs/{DIGEST}")).content == DATA


async def test_client_hanging_up_during_a_single_post_leaves_nothing(client: RegistryClient) -> None:
    status, _ = await asgi_call(
        client,
        "POST",
        "/v2/repo/blobs/uploads/",
        [{"type": "http.request", "body": DATA[:100], "more_body": True}, {"type": "http.disconnect"}],
        query=f"digest={DIGEST}".encode(),
    )
    assert status == 400
    assert_error(await client.http.head(f"/v2/repo/blobs/{DIGEST}"), 404, "BLOB_UNKNOWN")
    assert list((Path(client.settings.data_dir) / "uploads").iterdir()) == []


# -- blob touches (what garbage collection relies on) -----------------------------------------------------------


async def test_head_of_a_blob_not_used_lately_marks_it_in_use(client: RegistryClient) -> None:
    await client.push_blob("repo", DATA)
    with service_of(client).db.write() as conn:
        conn.execute(update(blobs).where(blobs.c.digest == DIGEST).values(last_used=1.0))
    assert (await client.http.head(f"/v2/repo/blobs/{DIGEST}")).status_code == 200
    assert last_used(client, DIGEST) > 1.0


async def test_recently_used_blob_is_not_touched_by_every_read(client: RegistryClient) -> None:
    await client.push_blob("repo", DATA)
    before = last_used(client, DIGEST)
    assert (await client.http.head(f"/v2/repo/blobs/{DIGEST}")).status_code == 200
    assert last_used(client, DIGEST) == before


# -- the app around the routes ----------------------------------------------------------------------------------


@pytest.mark.backend_independent
async def test_openapi_document_is_served(client: RegistryClient) -> None:
    response = await client.http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert any(path.startswith("/v2/") for path in document["paths"])


@pytest.mark.backend_independent
async def test_access_log_records_every_request_and_passes_lifespan_through(
    settings_factory: SettingsFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_factory(database_url=f"sqlite:///{tmp_path}/access.db")
    app = asgi_app(settings)
    lifespan: list[MutableMapping[str, Any]] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> MutableMapping[str, Any]:
        return lifespan.pop(0)

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message["type"])

    with caplog.at_level(logging.INFO, logger="trustyard.http"):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/v2/nobody/tags/list",
            "raw_path": b"/v2/nobody/tags/list",
            "query_string": b"",
            "root_path": "",
            "headers": [],
            "client": ("192.0.2.7", 4321),
            "server": ("registry.test", 80),
        }

        async def request() -> MutableMapping[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def ignore(message: Mapping[str, Any]) -> None:
            return None

        await app(scope, request, ignore)
    records = [r for r in caplog.records if r.getMessage() == "request"]
    assert len(records) == 1
    fields = records[0].__dict__
    assert (fields["method"], fields["path"], fields["status"], fields["client"]) == (
        "GET",
        "/v2/nobody/tags/list",
        404,
        "192.0.2.7",
    )
    assert fields["bytes"] > 0


def test_manifest_cache_evicts_least_recently_used_and_skips_oversized() -> None:
    cache = _ManifestCache(max_bytes=10)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"  # a is now the most recent
    cache.put("c", b"cccc")  # over 10 bytes: the least recently used (b) goes
    assert cache.get("b") is None
    assert cache.get("a") == b"aaaa"
    assert cache.get("c") == b"cccc"
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None
    cache.put("a", b"aaaa")  # already there: nothing changes
    assert cache.get("a") == b"aaaa"
