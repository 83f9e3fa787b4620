"""The registry over PostgreSQL rides out a database outage: while the server is down every request gets the
spec's ``UNAVAILABLE`` error (503, a JSON body, no traceback), and once it is back the same process serves
again, with no restart: pooled and lean connections the server dropped are replaced.

In-process (``create_app`` through ``httpx.ASGITransport``) over the session's PostgreSQL server, which the
test stops and starts. Not here: SQLite (there is no server to lose) and database errors at start-up
(``tests/cli/test_database_errors.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from trustyard.config import load_settings
from trustyard.oci.mediatypes import MediaType
from trustyard.registry.app import create_app, create_registry

pytestmark = [pytest.mark.postgres, pytest.mark.anyio]

REPO = "team/app"


class Restartable(Protocol):
    """The part of the ``postgresql_server`` fixture this test drives."""

    def stop(self) -> None: ...

    def start(self) -> None: ...


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = b"layer bytes " * 100
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST.value,
        "config": {"mediaType": MediaType.OCI_CONFIG.value, "digest": sha256(CONFIG), "size": len(CONFIG)},
        "layers": [{"mediaType": MediaType.OCI_LAYER_GZIP.value, "digest": sha256(LAYER), "size": len(LAYER)}],
    }
).encode()


@pytest.fixture
async def http(postgresql_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app over a fresh PostgreSQL database."""
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=postgresql_url, fsync=False, insecure_anonymous_push=True
    )
    service = create_registry(settings)
    transport = httpx.ASGITransport(app=create_app(settings, registry=service), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://registry.test") as client:
            yield client
    finally:
        service.db.dispose()


async def push(http: httpx.AsyncClient, tag: str) -> httpx.Response:
    """Upload the blobs (monolithic POST + PUT), then the manifest; the manifest PUT's response."""
    for data in (CONFIG, LAYER):
        started = await http.post(f"/v2/{REPO}/blobs/uploads/")
        assert started.status_code == 202, started.text
        done = await http.put(started.headers["location"], params={"digest": sha256(data)}, content=data)
        assert done.status_code == 201, done.text
    return await http.put(
        f"/v2/{REPO}/manifests/{tag}", content=MANIFEST, headers={"Content-Type": MediaType.OCI_MANIFEST.value}
    )


async def reads(http: httpx.AsyncClient) -> list[httpx.Response]:
    """One request of each kind that reads metadata (lean lookups and pooled queries)."""
    accept = {"Accept": MediaType.OCI_MANIFEST.value}
    return [
        await http.get(f"/v2/{REPO}/manifests/v1", headers=accept),
        await http.get(f"/v2/{REPO}/manifests/{sha256(MANIFEST)}", headers=accept),
        await http.head(f"/v2/{REPO}/blobs/{sha256(LAYER)}"),
        await http.get(f"/v2/{REPO}/tags/list"),
        await http.get("/v2/_catalog"),
    ]


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.url, response.status_code, response.text)
    if response.request.method != "HEAD":
        body = response.json()
        assert [e["code"] for e in body["errors"]] == ["UNAVAILABLE"], body
        assert "Traceback" not in response.text and "psycopg" not in response.text


async def test_registry_serves_again_after_postgresql_restarts(
    http: httpx.AsyncClient, postgresql_server: Restartable
) -> None:
    assert (await push(http, "v1")).status_code == 201
    for _ in range(3):  # several pooled and lean connections, all of which the restart will cut
        assert [r.status_code for r in await reads(http)] == [200] * 5
    postgresql_server.stop()
    try:
        for response in await reads(http):
            assert_unavailable(response)
        assert_unavailable(
            await http.put(
                f"/v2/{REPO}/manifests/v2", content=MANIFEST, headers={"Content-Type": MediaType.OCI_MANIFEST.value}
            )
        )
    finally:
        postgresql_server.start()
    assert [r.status_code for r in await reads(http)] == [200] * 5
    assert (await push(http, "v2")).status_code == 201
    tags = await http.get(f"/v2/{REPO}/tags/list")
    assert tags.json()["tags"] == ["v1", "v2"]
