"""The store as an OCI artifact, for air-gapped sites: ``trustyard db push`` on a connected machine, ``db pull``
on the others, through any OCI 1.1 registry (trustyard's own included), as Trivy ships its database.

The artifact: an image manifest with ``artifactType: application/vnd.trustyard.vulndb.v1``, the empty config
(``application/vnd.oci.empty.v1+json``, ``{}``) and one layer, the SQLite file gzip-compressed
(``application/vnd.trustyard.vulndb.layer.v1.sqlite+gzip``, titled ``vulndb.sqlite.gz`` so that ``oras pull``
writes a file a user can ``gunzip``). gzip rather than zstd: the standard library has it (zstd would be a new
dependency for Python 3.11), every client and tool unpacks it, and the store, mostly JSON text, shrinks to about
a fifth of its size. The layer's annotations carry the uncompressed file's SHA-256 and the schema version; the
manifest's, the creation time and each source's data time.

Push copies the store with SQLite's backup API (a consistent snapshot even while an import runs) into a single
file (journal mode ``DELETE``, no WAL beside it), compresses it and uploads blobs then the manifest.

Pull is all or nothing: the manifest must be this artifact type, the layer's bytes must match its digest and
size as they stream, the unpacked file its annotated digest, and the file must open as a store of a schema this
trustyard reads and pass SQLite's ``quick_check``; only then is it fsynced and renamed over the store (after the
old store's WAL was checkpointed, so no stale WAL is replayed onto the new file). Any failure leaves the old store
as it was and removes the partial files.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from trustyard.oci.digest import Digest, DigestError
from trustyard.oci.mediatypes import MediaType
from trustyard.scan.vulndb.download import staging_folder
from trustyard.scan.vulndb.errors import StoreError, VulnDbError
from trustyard.scan.vulndb.store import SCHEMA_VERSION, VulnerabilityStore
from trustyard.scan.vulndb.transport import RegistryClient, TransportError

ARTIFACT_TYPE: Final = "application/vnd.trustyard.vulndb.v1"
LAYER_TYPE: Final = "application/vnd.trustyard.vulndb.layer.v1.sqlite+gzip"
EMPTY_TYPE: Final = "application/vnd.oci.empty.v1+json"
EMPTY: Final = b"{}"
TITLE: Final = "vulndb.sqlite.gz"
SQLITE_DIGEST: Final = "io.trustyard.vulndb.sqlite.digest"
SCHEMA: Final = "io.trustyard.vulndb.schema"
SOURCES: Final = "io.trustyard.vulndb.sources"
MAX_LAYER: Final = 16 * 1024 * 1024 * 1024
_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Transfer:
    """What a push or pull moved: the manifest's digest, the layer's compressed and unpacked sizes."""

    digest: Digest
    compressed: int
    size: int
    sources: dict[str, str | None]


def _snapshot(store: Path, target: Path) -> None:
    """A consistent single-file copy of the store (SQLite's online backup), with no WAL beside it."""
    try:
        source = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
            source.close()
    except sqlite3.Error as e:
        raise StoreError(f"{store}: cannot copy the store: {e}") from e


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _gzip(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        shutil.copyfileobj(src, out, _CHUNK)


def push(store_path: Path, client: RegistryClient) -> Transfer:
    """Push a snapshot of the store at ``store_path`` to the client's reference."""
    with VulnerabilityStore(store_path, create=False) as store:
        sources = {s.source: s.data_time for s in store.sources()}
    with staging_folder(store_path.parent, ".vulndb-transfer-") as work:
        plain, packed = work / "vulndb.sqlite", work / TITLE
        _snapshot(store_path, plain)
        _gzip(plain, packed)
        layer = Digest("sha256", _sha256(packed))
        size, compressed = plain.stat().st_size, packed.stat().st_size
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": MediaType.OCI_MANIFEST.value,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": EMPTY_TYPE, "digest": str(Digest.of(EMPTY)), "size": len(EMPTY), "data": "e30="},
            "layers": [
                {
                    "mediaType": LAYER_TYPE,
                    "digest": str(layer),
                    "size": compressed,
                    "annotations": {
                        "org.opencontainers.image.title": TITLE,
                        SQLITE_DIGEST: f"sha256:{_sha256(plain)}",
                        SCHEMA: str(SCHEMA_VERSION),
                    },
                }
            ],
            "annotations": {
                "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                SOURCES: json.dumps(sources, sort_keys=True),
            },
        }
        client.push_blob(Digest.of(EMPTY), data=EMPTY)
        client.push_blob(layer, path=packed)
        digest = client.push_manifest(json.dumps(manifest, indent=2).encode(), MediaType.OCI_MANIFEST.value)
    return Transfer(digest, compressed, size, sources)


@dataclass(frozen=True, slots=True)
class _Layer:
    digest: Digest
    size: int
    sqlite_digest: str | None


def _layer_of(manifest: bytes, where: str) -> tuple[_Layer, dict[str, str | None]]:
    """The store layer of an artifact manifest; ``TransportError`` when it is not a trustyard store."""
    try:
        doc = json.loads(manifest)
        kind = doc.get("artifactType") or doc.get("config", {}).get("mediaType")
        if kind != ARTIFACT_TYPE:
            raise TransportError(f"{where}: not a trustyard vulnerability store (artifact type {kind!r})")
        layers = [la for la in doc.get("layers", []) if la.get("mediaType") == LAYER_TYPE]
        if len(layers) != 1:
            raise TransportError(f"{where}: expected one layer of type {LAYER_TYPE}, found {len(layers)}")
        layer = layers[0]
        size = layer["size"]
        if not isinstance(size, int) or not 0 < size <= MAX_LAYER:
            raise TransportError(f"{where}: a layer size of {size!r} bytes is not acceptable")
        annotations = layer.get("annotations") or {}
        sources = json.loads((doc.get("annotations") or {}).get(SOURCES, "{}"))
        return _Layer(Digest.parse(layer["digest"]), size, annotations.get(SQLITE_DIGEST)), sources
    except (ValueError, KeyError, TypeError, AttributeError, DigestError) as e:
        raise TransportError(f"{where}: not a readable artifact manifest: {e}") from e


def _gunzip(packed: Path, target: Path, expected: str | None, where: str) -> int:
    h = hashlib.sha256()
    size = 0
    try:
        with gzip.open(packed, "rb") as src, target.open("wb") as out:
            while chunk := src.read(_CHUNK):
                size += len(chunk)
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise TransportError(f"{where}: the layer is not a readable gzip file: {e}") from e
    if expected is not None and expected != f"sha256:{h.hexdigest()}":
        raise TransportError(f"{where}: the unpacked store is not the one the artifact names ({expected})")
    return size


def _validate(candidate: Path, where: str) -> None:
    """The file opens as a store this trustyard reads, and SQLite's quick check passes."""
    try:
        con = sqlite3.connect(f"file:{candidate}?mode=ro", uri=True)
        try:
            (verdict,) = con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise TransportError(f"{where}: the layer is not an SQLite database: {e}") from e
    if verdict != "ok":
        raise TransportError(f"{where}: the store is damaged: {verdict}")
    try:
        VulnerabilityStore(candidate, create=False).close()
    except StoreError as e:
        raise TransportError(f"{where}: {e.message}") from e


def _retire(store_path: Path) -> None:
    """Fold the old store's WAL into it, so that no WAL of the old file meets the new one."""
    if not store_path.exists():
        return
    try:
        con = sqlite3.connect(store_path, timeout=30)
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
    except sqlite3.Error as e:
        raise StoreError(f"{store_path}: cannot checkpoint the store before replacing it: {e}") from e


def pull(client: RegistryClient, store_path: Path) -> Transfer:
    """Pull the artifact and put its store at ``store_path``, atomically, only when everything checks out."""
    where = str(client.ref)
    manifest, digest = client.manifest(f"{MediaType.OCI_MANIFEST.value}")
    layer, sources = _layer_of(manifest, where)
    with staging_folder(store_path.parent, ".vulndb-transfer-") as work:
        packed, plain = work / TITLE, work / "vulndb.sqlite"
        client.blob_to(layer.digest, layer.size, packed)
        size = _gunzip(packed, plain, layer.sqlite_digest, where)
        _validate(plain, where)
        _retire(store_path)
        for suffix in ("-wal", "-shm"):
            Path(f"{store_path}{suffix}").unlink(missing_ok=True)
        os.replace(plain, store_path)
        directory = os.open(store_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    return Transfer(digest, layer.size, size, sources)


__all__ = ["ARTIFACT_TYPE", "LAYER_TYPE", "Transfer", "TransportError", "VulnDbError", "pull", "push"]
