"""Shared fixtures and builders for the registry API tests.

Every test drives the real ASGI application (``create_app``) in-process through ``httpx.ASGITransport``,
over a real SQLite database and a real filesystem blob store in ``tmp_path``: no mocks. The builders make
blobs, images (OCI and Docker schema 2), indexes, manifest lists and artifacts with their exact manifest
bytes (indented, keys in a non-canonical order, so a registry that re-serialised them would be caught), and
``RegistryClient`` pushes them the way a client does: blobs first, children before parents, manifest last.

Not here: real clients and real servers (``tests/interop``), assertions about one endpoint (the test modules).
Spec: OCI distribution-spec v1.1 (error body: "Error Codes").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from sqlalchemy import delete
from starlette.applications import Starlette

from trustyard.config import Settings, load_settings
from trustyard.db import models as db_models
from trustyard.db.engine import Database
from trustyard.oci.mediatypes import MediaType
from trustyard.registry.app import create_app
from trustyard.registry.service import RegistryService
from trustyard.storage.filesystem import FilesystemBlobStore

BASE = "http://registry.test"
API_VERSION = "registry/2.0"
EXAMPLE_ARTIFACT = "application/vnd.example.sbom.v1+json"
EXAMPLE_SIGNATURE = "application/vnd.example.signature.v1+json"

ALL_MANIFEST_TYPES = ", ".join(
    (
        MediaType.OCI_MANIFEST,
        MediaType.OCI_INDEX,
        MediaType.DOCKER_MANIFEST,
        MediaType.DOCKER_MANIFEST_LIST,
    )
)


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    """``sha512:<hex>`` of ``data``."""
    return "sha512:" + hashlib.sha512(data).hexdigest()


def encode(document: Mapping[str, Any]) -> bytes:
    """Manifest bytes as a client might send them: indented, keys in the order given (not canonical)."""
    return json.dumps(document, indent=3).encode()


# -- builders -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Blob:
    """Blob bytes and the media type a descriptor gives them."""

    data: bytes
    media_type: str = MediaType.OCI_LAYER_GZIP

    @property
    def digest(self) -> str:
        """The blob's sha256 digest."""
        return sha256(self.data)

    @property
    def size(self) -> int:
        """The blob's length."""
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """An OCI descriptor of the blob, plus ``extra`` fields."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def make_blob(seed: str, size: int = 100, media_type: str = MediaType.OCI_LAYER_GZIP) -> Blob:
    """``size`` deterministic bytes that differ for every ``seed``."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return Blob(bytes(out[:size]), media_type)


EMPTY_CONFIG = Blob(b"{}", MediaType.OCI_EMPTY)
"""The OCI 1.1 empty descriptor's content (image-spec manifest.md, "Guidance for an Empty Descriptor")."""


@dataclass(frozen=True)
class ManifestDoc:
    """A manifest's exact bytes, its media type, and what must be pushed before it."""

    body: bytes
    media_type: str
    blobs: tuple[Blob, ...] = ()
    children: tuple[ManifestDoc, ...] = ()

    @property
    def digest(self) -> str:
        """The manifest's sha256 digest."""
        return sha256(self.body)

    @property
    def size(self) -> int:
        """The manifest's length."""
        return len(self.body)

    @property
    def document(self) -> dict[str, Any]:
        """The manifest parsed back into JSON."""
        doc: dict[str, Any] = json.loads(self.body)
        return doc

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """A descriptor of this manifest (for an index or a ``subject``), plus ``extra`` fields."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def image_config(seed: str, *, docker: bool = False) -> Blob:
    """An image config blob (its content is opaque to the registry, but realistic)."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"seed": seed}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(seed.encode())]},
    }
    return Blob(json.dumps(config).encode(), MediaType.DOCKER_CONFIG if docker else MediaType.OCI_CONFIG)


def make_image(
    seed: str = "image",
    *,
    layers: int = 1,
    docker: bool = False,
    subject: ManifestDoc | None = None,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
    config: Blob | None = None,
    extra_layers: Sequence[Mapping[str, Any]] = (),
    media_type_field: bool = True,
) -> ManifestDoc:
    """An image manifest (OCI, or Docker schema 2 with ``docker``) with ``layers`` fresh layer blobs.

    ``extra_layers`` are descriptors appended as they are (e.g. foreign layers whose blobs are elsewhere);
    ``media_type_field=False`` leaves out the optional OCI ``mediaType`` field.
    """
    media_type = MediaType.DOCKER_MANIFEST if docker else MediaType.OCI_MANIFEST
    layer_type = MediaType.DOCKER_LAYER if docker else MediaType.OCI_LAYER_GZIP
    config_blob = config or image_config(seed, docker=docker)
    layer_blobs = tuple(make_blob(f"{seed}/layer{i}", 64 + i, layer_type) for i in range(layers))
    doc: dict[str, Any] = {"schemaVersion": 2}
    if media_type_field:
        doc["mediaType"] = media_type
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["config"] = config_blob.descriptor()
    doc["layers"] = [b.descriptor() for b in layer_blobs] + [dict(d) for d in extra_layers]
    if subject is not None:
        doc["subject"] = subject.descriptor()
    if annotations:
        doc["annotations"] = dict(annotations)
    return ManifestDoc(encode(doc), media_type, (config_blob, *layer_blobs))


def make_artifact(
    artifact_type: str,
    *,
    seed: str = "artifact",
    subject: ManifestDoc | None = None,
    annotations: Mapping[str, str] | None = None,
    layers: int = 1,
) -> ManifestDoc:
    """An OCI 1.1 artifact: ``artifactType`` set, the empty config, ``layers`` opaque payload blobs."""
    payload = tuple(make_blob(f"{seed}/payload{i}", 32 + i, "application/octet-stream") for i in range(layers))
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_CONFIG.descriptor(),
        "layers": [b.descriptor() for b in payload] or [EMPTY_CONFIG.descriptor()],
    }
    if subject is not None:
        doc["subject"] = subject.descriptor()
    if annotations:
        doc["annotations"] = dict(annotations)
    return ManifestDoc(encode(doc), MediaType.OCI_MANIFEST, (EMPTY_CONFIG, *payload))


PLATFORMS = ({"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux", "variant": "v8"})


def make_index(
    children: Sequence[ManifestDoc],
    *,
    docker: bool = False,
    subject: ManifestDoc | None = None,
    artifact_type: str | None = None,
    annotations: Mapping[str, str] | None = None,
    extra_manifests: Sequence[Mapping[str, Any]] = (),
) -> ManifestDoc:
    """An OCI image index (or Docker manifest list with ``docker``) of ``children``, one platform each."""
    media_type = MediaType.DOCKER_MANIFEST_LIST if docker else MediaType.OCI_INDEX
    entries = [c.descriptor(platform=PLATFORMS[i % len(PLATFORMS)]) for i, c in enumerate(children)]
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["manifests"] = entries + [dict(m) for m in extra_manifests]
    if subject is not None:
        doc["subject"] = subject.descriptor()
    if annotations:
        doc["annotations"] = dict(annotations)
    return ManifestDoc(encode(doc), media_type, (), tuple(children))


# -- assertions -----------------------------------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, code: str) -> Any:
    """The response is the spec's JSON error with ``code`` (no body for HEAD); returns its ``detail``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["docker-distribution-api-version"] == API_VERSION
    assert response.headers["content-type"].startswith("application/json")
    if response.request.method == "HEAD":
        assert response.content == b""
        return None
    body = response.json()
    assert set(body) == {"errors"}, body
    assert isinstance(body["errors"], list) and len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert set(error) == {"code", "message", "detail"}, error
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    return error["detail"]


# -- the client -----------------------------------------------------------------------------------------------


@dataclass
class RegistryClient:
    """An httpx client of one in-process registry app, with the push steps the tests share."""

    http: httpx.AsyncClient
    app: Starlette
    settings: Settings
    pushed: set[tuple[str, str]] = field(default_factory=set)
    """(repository, digest) of every blob ``push`` uploaded, so shared blobs are uploaded once."""

    async def start_upload(self, name: str, **params: str) -> httpx.Response:
        """POST ``/v2/<name>/blobs/uploads/`` (202 with a Location unless mounted or monolithic)."""
        return await self.http.post(f"/v2/{name}/blobs/uploads/", params=params)

    async def upload_location(self, name: str) -> str:
        """A fresh upload session's Location."""
        response = await self.start_upload(name)
        assert response.status_code == 202, response.text
        location: str = response.headers["location"]
        return location

    async def push_blob(self, name: str, blob: Blob | bytes) -> str:
        """Upload a blob with POST then PUT; returns its digest."""
        data = blob.data if isinstance(blob, Blob) else blob
        location = await self.upload_location(name)
        response = await self.http.put(location, params={"digest": sha256(data)}, content=data)
        assert response.status_code == 201, response.text
        return sha256(data)

    async def put_manifest(
        self,
        name: str,
        reference: str,
        manifest: ManifestDoc | bytes,
        *,
        content_type: str | None = None,
        params: Mapping[str, str | Sequence[str]] | None = None,
    ) -> httpx.Response:
        """PUT a manifest's bytes (Content-Type defaults to its media type)."""
        if isinstance(manifest, ManifestDoc):
            body, ctype = manifest.body, content_type or manifest.media_type
        else:
            body, ctype = manifest, content_type or MediaType.OCI_MANIFEST
        return await self.http.put(
            f"/v2/{name}/manifests/{reference}",
            content=body,
            headers={"Content-Type": ctype},
            params=dict(params or {}),
        )

    async def push(self, name: str, manifest: ManifestDoc, reference: str | None = None) -> httpx.Response:
        """Push everything a manifest needs (children first), then the manifest by ``reference`` or digest."""
        for child in manifest.children:
            await self.push(name, child)
        for blob in manifest.blobs:
            if (name, blob.digest) not in self.pushed:
                await self.push_blob(name, blob)
                self.pushed.add((name, blob.digest))
        response = await self.put_manifest(name, reference or manifest.digest, manifest)
        assert response.status_code == 201, response.text
        return response

    async def get_manifest(self, name: str, reference: str, accept: str = ALL_MANIFEST_TYPES) -> httpx.Response:
        """GET a manifest accepting every manifest type."""
        return await self.http.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": accept})


def asgi_scope(method: str, path: str, query: bytes = b"") -> dict[str, Any]:
    """An HTTP scope for calling the app directly, with ``path`` exactly as given."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"registry.test")],
        "client": ("127.0.0.1", 1234),
        "server": ("registry.test", 80),
    }


async def raw_request(app: Starlette, method: str, path: str, query: bytes = b"") -> tuple[int, bytes]:
    """Call the ASGI app with ``path`` exactly as given (httpx would normalise ``..`` away); status and body."""
    scope = asgi_scope(method, path, query)
    status = 0
    body = bytearray()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(body)


# -- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    """The service layer uses asyncio primitives: run async tests on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the newest schema once per session (migrating takes most of a test)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    Database(f"sqlite:///{path}").dispose()
    return path


@dataclass(frozen=True)
class MetadataDatabase:
    """The metadata database of the apps under test; ``migrated`` when it already has the newest schema."""

    url: str
    migrated: bool
    shared: Database | None = None
    """An open ``Database`` every app of the session shares (PostgreSQL: connections are costly to set up)."""


class PostgresServer(Protocol):
    """What these fixtures use of ``tests/fixtures/databases.py``'s ``postgresql_server``."""

    def create_database(self, hint: str = ...) -> str:
        """Create an empty database; its name."""
        ...

    def drop_database(self, name: str) -> None:
        """Drop a database."""
        ...

    def url(self, dbname: str) -> str:
        """A SQLAlchemy URL of a database on the server."""
        ...


@dataclass(frozen=True)
class SharedPostgresql:
    """The session's migrated PostgreSQL database and a connection pool to empty it between tests."""

    url: str
    db: Database

    def empty(self) -> None:
        """Delete every row (children first); DELETE on a few rows is far cheaper than TRUNCATE.

        The audit log is append-only (its triggers refuse DELETE), so it is left to grow; tests that read it
        filter by what they did.
        """
        with self.db.write() as conn:
            for table in reversed(db_models.metadata.sorted_tables):
                if table is not db_models.audit_events:
                    conn.execute(delete(table))


@pytest.fixture(scope="session")
def migrated_postgresql(postgresql_server: PostgresServer) -> Iterator[SharedPostgresql]:
    """One PostgreSQL database migrated once per session; ``metadata_database`` empties it for every test.

    Creating a database per test (as ``database_url`` does) costs PostgreSQL a checkpoint, 0.3-0.5 s: over
    hundreds of API tests that would be minutes. Emptying the tables of one migrated database takes
    milliseconds and gives the same starting state.
    """
    name = postgresql_server.create_database("registry_api")
    url = postgresql_server.url(name)
    db = Database(url)
    try:
        yield SharedPostgresql(url, db)
    finally:
        db.dispose()
        postgresql_server.drop_database(name)


BACKENDS = (
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
)
BACKEND_INDEPENDENT = "backend_independent"


def pytest_configure(config: pytest.Config) -> None:
    """Register this folder's marker (``--strict-markers``)."""
    config.addinivalue_line(
        "markers",
        f"{BACKEND_INDEPENDENT}: decided before the metadata database is involved (parsing, routing, grammar); "
        "runs on SQLite only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test with an app runs on SQLite and on PostgreSQL, unless marked ``backend_independent``."""
    if "metadata_database" in metafunc.fixturenames:
        independent = metafunc.definition.get_closest_marker(BACKEND_INDEPENDENT) is not None
        metafunc.parametrize("metadata_database", BACKENDS[:1] if independent else BACKENDS, indirect=True)


@pytest.fixture
def metadata_database(request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path) -> MetadataDatabase:
    """The metadata database of the apps under test, on SQLite and on PostgreSQL (see ``pytest_generate_tests``).

    SQLite: a copy of the migrated template in ``tmp_path``. PostgreSQL: the session's migrated database on the
    suite's throwaway server (``tests/fixtures/databases.py``), emptied.
    """
    if request.param == "sqlite":
        path = tmp_path / "metadata.db"
        shutil.copyfile(migrated_sqlite, path)
        return MetadataDatabase(f"sqlite:///{path}", migrated=True)
    server: PostgresServer = request.getfixturevalue("postgresql_server")
    plugin = request.config.pluginmanager.get_plugin("fixtures.databases")
    if plugin is not None:  # a failing test's report then carries the server's log tail
        request.node.stash[plugin.USED_KEY] = server
    shared: SharedPostgresql = request.getfixturevalue("migrated_postgresql")
    shared.empty()
    return MetadataDatabase(shared.url, migrated=True, shared=shared.db)


SettingsFactory = Callable[..., Settings]
ClientFactory = Callable[..., Awaitable[RegistryClient]]


@pytest.fixture
def settings_factory(
    tmp_path: Path, metadata_database: MetadataDatabase, monkeypatch: pytest.MonkeyPatch
) -> SettingsFactory:
    """Settings for an app under test (``**overrides`` on top), unaffected by the caller's environment."""
    for key in list(os.environ):
        if key.startswith("TRUSTYARD_"):
            monkeypatch.delenv(key)

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": metadata_database.url,
            "fsync": False,
            # these tests are about the distribution protocol, so the registry is opened as the bare registry
            # is; access control is tested with it switched off (tests/registry/test_api_access*.py)
            "insecure_anonymous_push": True,
        }
        values.update(overrides)
        return load_settings(**values)

    return factory


@pytest.fixture
async def client_factory(
    settings_factory: SettingsFactory, metadata_database: MetadataDatabase
) -> AsyncIterator[ClientFactory]:
    """Build apps (``factory(raise_app_exceptions=True, **settings)``) and clients, closed after the test.

    The service is wired as ``registry.app.create_registry`` wires it (``test_api_base`` checks that path
    itself), except that an already migrated database is opened without re-running the migrations.
    """
    async with AsyncExitStack() as stack:

        async def factory(*, raise_app_exceptions: bool = True, **overrides: Any) -> RegistryClient:
            settings = settings_factory(**overrides)
            if metadata_database.shared is not None and settings.metadata_url == metadata_database.url:
                db = metadata_database.shared
            else:
                db = Database(settings.metadata_url, migrate=not metadata_database.migrated)
                stack.callback(db.dispose)
            service = RegistryService(
                db=db,
                store=FilesystemBlobStore(settings.data_dir, fsync=settings.fsync),
                max_manifest_size=settings.max_manifest_size,
            )
            app = create_app(settings, registry=service)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
            http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url=BASE))
            return RegistryClient(http, app, settings)

        yield factory


@pytest.fixture
async def client(client_factory: ClientFactory) -> RegistryClient:
    """A client of a fresh, empty registry."""
    return await client_factory()
