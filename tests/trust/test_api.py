"""The Notary HTTP edge inside the registry app: routes, bytes, headers, errors and token scopes.

Requests are shaped as the real ``notary`` client sends them (multipart ``files`` parts named by role, the
checksum and version routes, ``.key`` endpoints); the interop test drives the real client.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from trustyard.auth.audit import AuditQuery
from trustyard.config import load_settings
from trustyard.registry.app import create_app
from trustyard.trust.keys import PublicKey

from .simulator import SimKey, SimRepo

GUN = "trust/app"
BASE = "http://registry.test"
TUF = f"/v2/{GUN}/_trust/tuf"
PASSWORD = "admin-pw-Zr8.q"

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only."""
    return "asyncio"


APPS: dict[int, Starlette] = {}
"""The app behind each test client (by client id), for tests that look at server state such as the audit log."""


async def _client(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    values: dict[str, Any] = {"data_dir": tmp_path / "data", "fsync": False}
    values.update(settings)
    app = create_app(load_settings(**values))
    async with app.router.lifespan_context(app):
        app.state.access.bootstrap()  # as `trustyard serve` does at start
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            APPS[id(http)] = app
            try:
                yield http
            finally:
                del APPS[id(http)]


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an open registry (access control is tested separately below)."""
    async for c in _client(tmp_path, insecure_anonymous_push=True):
        yield c


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a registry with access control on and an admin password."""
    async for c in _client(tmp_path, admin_password=PASSWORD):
        yield c


def multipart(files: dict[str, bytes]) -> tuple[bytes, str]:
    """The body and content type the notary client (Go's multipart writer) sends for an update."""
    boundary = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0"
    body = b""
    for role, data in files.items():
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{role}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


async def post(
    http: httpx.AsyncClient, files: dict[str, bytes], headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST an update."""
    body, content_type = multipart(files)
    return await http.post(f"{TUF}/", content=body, headers={"Content-Type": content_type} | (headers or {}))


async def new_repo(http: httpx.AsyncClient, **kw: Any) -> SimRepo:
    """A publisher's repository that lists the server's timestamp key (fetched as ``notary init`` does)."""
    r = await http.get(f"{TUF}/timestamp.key", **kw)
    assert r.status_code == 200, r.text
    repo = SimRepo(GUN, SimKey.ed25519())
    repo.timestamp_key = SimKey(repo.timestamp_key.private, PublicKey.from_json(json.loads(r.content)))
    repo.add_target("targets", "v1", b"hello\n")
    return repo


async def test_publish_then_serve_byte_for_byte(http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{TUF}/root.json")).status_code == 404
    repo = await new_repo(http)
    r = await post(http, repo.first_publish())
    assert (r.status_code, r.content) == (200, b"")
    for role in ("root", "targets", "snapshot"):
        data = repo.current[role]
        latest = await http.get(f"{TUF}/{role}.json")
        assert latest.status_code == 200 and latest.content == data
        assert latest.headers["content-type"] == "text/plain; charset=utf-8"
        assert latest.headers["cache-control"] == "public, max-age=300, s-maxage=300, must-revalidate"
        assert "last-modified" in latest.headers
        consistent = await http.get(f"{TUF}/{role}.{hashlib.sha256(data).hexdigest()}.json")
        assert consistent.content == data
        assert consistent.headers["cache-control"] == "public, max-age=2592000, s-maxage=2592000"
    assert (await http.get(f"{TUF}/1.root.json")).content == repo.current["root"]
    ts = json.loads((await http.get(f"{TUF}/timestamp.json")).content)
    assert ts["signed"]["_type"] == "Timestamp" and ts["signatures"][0]["method"] == "eddsa"


async def test_delegation_checksum_route_is_not_a_role(http: httpx.AsyncClient) -> None:
    repo = await new_repo(http)
    await post(http, repo.first_publish())
    repo.delegate("targets/releases", SimKey.x509("releases"), [""])
    repo.add_target("targets/releases", "v2", b"two")
    files = {"targets": repo.targets_role(), "targets/releases": repo.targets_role("targets/releases")}
    files["snapshot"] = repo.snapshot()
    assert (await post(http, files)).status_code == 200
    data = repo.current["targets/releases"]
    r = await http.get(f"{TUF}/targets/releases.{hashlib.sha256(data).hexdigest()}.json")
    assert r.status_code == 200 and r.content == data


async def test_errors_are_notary_envelopes(http: httpx.AsyncClient) -> None:
    r = await http.get(f"{TUF}/root.json")
    assert r.json() == {
        "errors": [
            {"code": "METADATA_NOT_FOUND", "message": "You have requested metadata that does not exist.", "detail": {}}
        ]
    }
    repo = await new_repo(http)
    r = await post(http, {"targets": repo.targets_role()})
    assert r.status_code == 400
    assert r.json()["errors"][0]["detail"] == {
        "Name": "ErrValidation",
        "Error": {"Msg": "no pre-existing root and no root provided in update."},
    }
    r = await post(http, {"foo": b"{}"})
    assert r.json()["errors"][0] == {
        "code": "INVALID_ROLE",
        "message": "The role you are attempting to operate on is invalid.",
        "detail": "foo",
    }
    await post(http, repo.first_publish())
    r = await post(http, {"targets": b"garbage", "snapshot": repo.snapshot()})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MALFORMED_JSON"
    assert "detail" not in r.json()["errors"][0]
    r = await http.post(f"{TUF}/", content=b"x", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "MALFORMED_UPLOAD"
    assert (await http.get(f"{TUF}/root.key")).status_code == 404


async def test_attack_forged_target_is_refused_over_http(http: httpx.AsyncClient) -> None:
    repo = await new_repo(http)
    await post(http, repo.first_publish())
    repo.add_target("targets", "evil", b"x")
    r = await post(http, {"targets": repo.targets_role(signer=SimKey.ecdsa()), "snapshot": repo.snapshot()})
    assert r.status_code == 400
    assert r.json()["errors"][0] == {
        "code": "INVALID_UPDATE",
        "message": "Update sent by the client is invalid.",
        "detail": {"Name": "ErrBadTargets", "Error": {"Msg": "valid signatures did not meet threshold for targets"}},
    }


async def test_attack_rollback_is_refused_with_version(http: httpx.AsyncClient) -> None:
    repo = await new_repo(http)
    await post(http, repo.first_publish())
    r = await post(http, {"targets": repo.targets_role(version=1), "snapshot": repo.snapshot()})
    assert r.status_code == 400
    assert r.json()["errors"][0] == {
        "code": "VERSION",
        "message": "A newer version of metadata is already available.",
        "detail": {},
    }


async def test_key_rotation_and_delete(http: httpx.AsyncClient) -> None:
    repo = await new_repo(http)
    await post(http, repo.first_publish())
    r = await http.post(f"{TUF}/snapshot.key")
    assert r.status_code == 200
    key = PublicKey.from_json(json.loads(r.content))
    assert key.keytype == "ed25519"
    repo.snapshot_key = SimKey(repo.snapshot_key.private, key)
    assert (await post(http, {"root": repo.root()})).status_code == 200
    assert (await http.get(f"{TUF}/snapshot.key")).content == r.content
    assert (await http.delete(f"{TUF}/")).status_code == 200
    assert (await http.get(f"{TUF}/root.json")).status_code == 404
    feed = (await http.get(f"/v2/{GUN}/_trust/changefeed", params={"change_id": "0", "records": "10"})).json()
    assert [rec["Category"] for rec in feed["records"]] == ["update", "update", "deletion"]
    assert feed["count"] == 3


async def test_docker_style_gun_with_host_is_authorized_as_the_repository(http: httpx.AsyncClient) -> None:
    r = await http.get("/v2/registry.test/trust/app/_trust/tuf/root.json")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "METADATA_NOT_FOUND"
    r = await http.get("/v2/Bad Name/_trust/tuf/root.json")
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "INVALID_GUN"


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "root.json", "pull"),
        ("GET", "timestamp.key", "pull,push"),
        ("POST", "", "pull,push"),
        ("POST", "timestamp.key", "*"),
        ("DELETE", "", "*"),
    ],
)
async def test_anonymous_requests_are_challenged_with_the_notary_scope(
    secured: httpx.AsyncClient, method: str, path: str, scope: str
) -> None:
    r = await secured.request(method, f"{TUF}/{path}")
    assert r.status_code == 401
    assert f'scope="repository:{GUN}:{scope}"' in r.headers["www-authenticate"]


async def token(http: httpx.AsyncClient, actions: str) -> dict[str, str]:
    """A bearer header for ``repository:<gun>:<actions>`` as the admin, from the registry's token endpoint."""
    r = await http.get(
        "/auth/token",
        params={"service": "trustyard", "scope": f"repository:{GUN}:{actions}"},
        auth=("admin", PASSWORD),
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def test_token_scopes_as_the_notary_client_asks_for_them(secured: httpx.AsyncClient) -> None:
    pull, push, star = await token(secured, "pull"), await token(secured, "push,pull"), await token(secured, "*")
    assert (await secured.get(f"{TUF}/timestamp.key", headers=pull)).status_code == 403
    repo = await new_repo(secured, headers=push)
    files = repo.first_publish()
    assert (await post(secured, files, headers=pull)).status_code == 403
    assert (await post(secured, files, headers=push)).status_code == 200
    assert (await secured.get(f"{TUF}/root.json", headers=pull)).status_code == 200
    assert (await secured.post(f"{TUF}/timestamp.key", headers=push)).status_code == 403
    assert (await secured.delete(f"{TUF}/", headers=push)).status_code == 403
    assert (await secured.post(f"{TUF}/timestamp.key", headers=star)).status_code == 200
    assert (await secured.delete(f"{TUF}/", headers=star)).status_code == 200


async def test_out_of_range_names_are_client_errors(http: httpx.AsyncClient) -> None:
    r = await http.get(f"{TUF}/9999999999.root.json")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "GENERIC_NOT_FOUND"
    r = await http.get(f"/v2/{'a' * 250}/{'b' * 10}/_trust/tuf/root.json")
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "INVALID_GUN"
    r = await post(http, {"targets/" + "x" * 300: b"{}"})
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "INVALID_ROLE"
    assert (await http.head(f"{TUF}/root.json")).status_code == 404


async def test_trust_writes_are_in_the_audit_log(secured: httpx.AsyncClient) -> None:
    push, star = await token(secured, "push,pull"), await token(secured, "*")
    repo = await new_repo(secured, headers=push)
    assert (await post(secured, repo.first_publish(), headers=push)).status_code == 200
    assert (await post(secured, {"targets": repo.targets_role(version=1)}, headers=push)).status_code == 400
    assert (await secured.post(f"{TUF}/snapshot.key", headers=star)).status_code == 200
    assert (await secured.delete(f"{TUF}/", headers=star)).status_code == 200
    audit = APPS[id(secured)].state.access.audit
    audit.flush()
    events = [e for e in audit.query(AuditQuery(repository=GUN)) if e.action.startswith("trust.")]
    seen = sorted((e.action, e.result, e.actor, dict(e.detail or {}).get("roles", "")) for e in events)
    assert seen == [
        ("trust.delete", "success", "admin", ""),
        ("trust.publish", "failure", "admin", ""),
        ("trust.publish", "success", "admin", "root,snapshot,targets"),
        ("trust.rotate", "success", "admin", ""),
    ]
    failure = next(e for e in events if e.result == "failure")
    assert dict(failure.detail or {})["reason"].startswith("INVALID_UPDATE: no snapshot was included")


async def test_global_change_feed_is_for_administrators(secured: httpx.AsyncClient) -> None:
    assert (await secured.get("/v2/_trust/changefeed")).status_code == 401
    push = await token(secured, "push,pull")
    repo = await new_repo(secured, headers=push)
    assert (await post(secured, repo.first_publish(), headers=push)).status_code == 200
    r = await secured.get("/v2/_trust/changefeed", auth=("admin", PASSWORD))
    assert r.status_code == 200
    assert [(rec["GUN"], rec["Version"], rec["Category"]) for rec in r.json()["records"]] == [(GUN, 1, "update")]
