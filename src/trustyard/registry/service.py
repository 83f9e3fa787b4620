"""The registry's rules: blobs, uploads, manifests, tags and referrers (OCI distribution-spec v1.1).

The HTTP routes, the CLI and the garbage collector call this layer; it never sees HTTP. It validates
names and references, streams and hashes upload bodies, enforces that a blob is visible in a repository
only when pushed or mounted there, and that a manifest only names content the repository holds.

Uploads stream in bounded chunks through a worker thread (hashing and writing overlap with receiving);
the running hash is kept in memory and rebuilt from the upload file after a restart, so a session
survives the server. Manifests are small: they are parsed, stored and cached whole, by digest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError

from trustyard.db.engine import Database, retrying
from trustyard.errors import TrustyardError
from trustyard.oci.digest import Digest, DigestError, Hasher
from trustyard.oci.manifest import ManifestError, parse_manifest
from trustyard.oci.mediatypes import MediaType
from trustyard.oci.reference import InvalidReferenceError, is_digest, is_tag, validate_name, validate_tag
from trustyard.registry.errors import (
    BlobUnknownError,
    BlobUploadUnknownError,
    DigestInvalidError,
    ManifestBlobUnknownError,
    ManifestInvalidError,
    ManifestUnknownError,
    NameInvalidError,
    NameUnknownError,
    RangeInvalidError,
    RegistryError,
    SizeInvalidError,
    TooLargeError,
    UnavailableError,
)
from trustyard.registry.metadata import ManifestRecord, MetadataStore, MissingReferencesError, NewManifest
from trustyard.storage.base import BlobNotFoundError, BlobStore, StorageError

log = logging.getLogger("trustyard.registry")

CHUNK = 4 * 1024 * 1024
"""Upload bodies are written and hashed in pieces of this size (two in flight: bounded memory)."""


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """A manifest as served: its digest, media type and exact bytes."""

    digest: str
    media_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class PushedManifest:
    """The result of a manifest push."""

    digest: str
    subject: str | None


class _ManifestCache:
    """Manifest bytes by digest; content-addressed, so entries never go stale."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes

    def get(self, digest: str) -> bytes | None:
        body = self._items.get(digest)
        if body is not None:
            self._items.move_to_end(digest)
        return body

    def put(self, digest: str, body: bytes) -> None:
        if digest in self._items or len(body) > self._max:
            return
        self._items[digest] = body
        self._bytes += len(body)
        while self._bytes > self._max:
            _, old = self._items.popitem(last=False)
            self._bytes -= len(old)


@dataclass
class _UploadState:
    hasher: Hasher
    lock: asyncio.Lock


def name_of(name: str) -> str:
    """Validate a repository name, mapping the failure to ``NAME_INVALID``."""
    try:
        return validate_name(name)
    except InvalidReferenceError as e:
        raise NameInvalidError(e.message, {"name": name[:300]}) from e


def digest_of(text: str) -> Digest:
    """Parse a digest, mapping the failure to ``DIGEST_INVALID``."""
    try:
        return Digest.parse(text)
    except DigestError as e:
        raise DigestInvalidError(e.message, {"digest": text[:200]}) from e


class RegistryService:
    """Every registry operation; collaborators are injected (see ``registry.app.create_registry``)."""

    def __init__(self, *, db: Database, store: BlobStore, max_manifest_size: int) -> None:
        self.db = db
        self.meta = MetadataStore(db)
        self.store = store
        self.max_manifest_size = max_manifest_size
        self._manifests = _ManifestCache()
        # SQLite lookups take ~20 us: cheaper inline than a hop to a worker thread (~100 us). A network
        # database answers slower, and then the event loop must not wait for it.
        self.inline_reads = db.is_sqlite
        self._uploads: dict[str, _UploadState] = {}
        # called after every manifest push with (repository, digest, artifact type): the scan queue's hook
        self.on_push: Callable[[str, str, str | None], None] | None = None

    # -- blobs ---------------------------------------------------------------------------------------------

    def stat_blob(self, name: str, digest: str) -> tuple[int, bool]:
        """Size of a blob in the repository and whether it should be touched, else ``BLOB_UNKNOWN``."""
        name = name_of(name)
        d = digest_of(digest)
        found = self.meta.blob_size(name, str(d))
        if found is None:
            raise BlobUnknownError(f"blob {d} is not in repository {name}", {"digest": str(d)})
        return found

    def touch_blob(self, digest: str) -> None:
        """Mark a blob as in use (a client that HEADs a blob is about to reference it)."""
        self.meta.touch_blob(digest)

    def read_blob(self, name: str, digest: str, start: int, end: int) -> Iterator[bytes]:
        """A byte range of a blob the caller already ``stat``-ed."""
        try:
            return self.store.iter_range(Digest.parse(digest), start, end, 1024 * 1024)
        except BlobNotFoundError as e:
            log.error("blob %s is recorded in %s but missing from storage", digest, name)
            raise BlobUnknownError(f"blob {digest} is not available", {"digest": digest}) from e
        except StorageError as e:
            raise UnavailableError(e.message) from e

    def delete_blob(self, name: str, digest: str) -> None:
        """Remove a blob from the repository (content is reclaimed by GC once nothing uses it)."""
        name = name_of(name)
        d = digest_of(digest)
        if not self.meta.unlink_blob(name, str(d)):
            raise BlobUnknownError(f"blob {d} is not in repository {name}", {"digest": str(d)})

    def mount_blob(self, name: str, digest: str, source: str) -> bool:
        """Link a blob from ``source`` into ``name``; ``False`` when ``source`` does not have it."""
        name = name_of(name)
        d = digest_of(digest)
        try:
            source = validate_name(source)
        except InvalidReferenceError:
            return False
        return self.meta.mount_blob(name, str(d), source) is not None

    # -- uploads -------------------------------------------------------------------------------------------

    def start_upload(self, name: str) -> str:
        """Open an upload session; returns its id."""
        name = name_of(name)
        upload_id = secrets.token_hex(16)
        self.meta.create_upload(name, upload_id)  # row first: GC treats a file without a row as a leftover
        try:
            self.store.create_upload(upload_id)
        except StorageError as e:
            with self.db.write() as conn:
                self.meta.delete_upload(conn, upload_id)
            raise UnavailableError(e.message) from e
        self._uploads[upload_id] = _UploadState(Hasher(), asyncio.Lock())
        return upload_id

    def upload_offset(self, name: str, upload_id: str) -> int:
        """How many bytes the session holds, else ``BLOB_UPLOAD_UNKNOWN``."""
        name = name_of(name)
        if not self.meta.upload_exists(name, upload_id):
            raise BlobUploadUnknownError(f"no upload {upload_id[:40]} in {name}")
        try:
            return self.store.upload_size(upload_id)
        except BlobNotFoundError as e:
            raise BlobUploadUnknownError(f"upload {upload_id} has no data") from e

    def _state(self, upload_id: str) -> _UploadState:
        state = self._uploads.get(upload_id)
        if state is None:
            state = self._uploads[upload_id] = _UploadState(Hasher(), asyncio.Lock())
            state.hasher.size = -1  # unknown: rebuilt from the file before use
        return state

    def _sync_hasher(self, upload_id: str, state: _UploadState) -> None:
        """Make the running hash cover exactly the upload file (after a restart or a failed write)."""
        if state.hasher.size != self.store.upload_size(upload_id):
            state.hasher = self._rehash(upload_id, "sha256")

    def _write(self, upload_id: str, state: _UploadState, chunks: list[bytes]) -> None:
        try:
            self.store.append_upload(upload_id, chunks)
        except StorageError:
            state.hasher.size = -1
            raise
        for chunk in chunks:
            state.hasher.update(chunk)

    async def append(
        self,
        name: str,
        upload_id: str,
        body: AsyncIterator[bytes],
        *,
        start: int | None = None,
        length: int | None = None,
    ) -> int:
        """Append a request body to the upload; ``start`` (from Content-Range) must equal its size.

        Returns the new size. A body cut short leaves the session at the bytes that arrived, so the
        client can ask for the offset and resume.
        """
        offset = await anyio.to_thread.run_sync(self.upload_offset, name, upload_id)
        state = self._state(upload_id)
        async with state.lock:
            try:
                offset = self.store.upload_size(upload_id)
                if start is not None and start != offset:
                    raise RangeInvalidError(
                        f"chunk starts at {start} but the upload holds {offset} bytes", {"offset": offset}
                    )
                await anyio.to_thread.run_sync(self._sync_hasher, upload_id, state)
                received = await self._stream_into(upload_id, state, body)
            except BlobNotFoundError as e:  # cancelled or expired meanwhile
                raise BlobUploadUnknownError(f"upload {upload_id} no longer exists") from e
            except StorageError as e:
                raise UnavailableError(e.message) from e
            if length is not None and received != length:
                raise SizeInvalidError(f"received {received} bytes, expected {length}")
            return offset + received

    async def _stream_into(self, upload_id: str, state: _UploadState, body: AsyncIterator[bytes]) -> int:
        """Copy ``body`` into the upload: receive the next piece while the previous is hashed and written.

        Chunks are handed over as a list (written with one ``writev``), never joined: no extra copy.
        """
        received = 0
        batch: list[bytes] = []
        batch_size = 0
        pending: asyncio.Future[None] | None = None
        loop = asyncio.get_running_loop()
        try:
            async for chunk in body:
                batch.append(chunk)
                batch_size += len(chunk)
                received += len(chunk)
                if batch_size >= CHUNK:
                    if pending is not None:
                        await pending
                    pending = loop.run_in_executor(None, self._write, upload_id, state, batch)
                    batch, batch_size = [], 0
        except BaseException:
            if pending is not None:  # let the write in flight finish so the file stays a clean prefix
                await asyncio.shield(pending)
            raise
        if pending is not None:
            await pending
        if batch:
            await anyio.to_thread.run_sync(self._write, upload_id, state, batch)
        return received

    async def finish(
        self,
        name: str,
        upload_id: str,
        digest: str,
        body: AsyncIterator[bytes],
        *,
        start: int | None = None,
        length: int | None = None,
    ) -> Digest:
        """Append the final chunk, verify the digest, make the blob durable and link it to the repository.

        ``start`` (from the closing request's Content-Range) must equal the upload's size, as in ``append``.
        """
        d = digest_of(digest)
        await self.append(name, upload_id, body, start=start, length=length)
        state = self._state(upload_id)
        async with state.lock:
            try:
                await anyio.to_thread.run_sync(self._sync_hasher, upload_id, state)
            except BlobNotFoundError as e:
                raise BlobUploadUnknownError(f"no upload {upload_id}") from e
            if d.algorithm != state.hasher.algorithm:
                hasher = await anyio.to_thread.run_sync(self._rehash, upload_id, d.algorithm)
                actual, size = hasher.digest(), hasher.size
            else:
                actual, size = state.hasher.digest(), state.hasher.size
            if actual != d:
                await anyio.to_thread.run_sync(self._discard, upload_id)
                raise DigestInvalidError(
                    f"content digest is {actual}, not the {d} given",
                    {"expected": str(d), "actual": str(actual)},
                )
            await anyio.to_thread.run_sync(self._commit, name, upload_id, d, size)
        self._uploads.pop(upload_id, None)
        return d

    def _rehash(self, upload_id: str, algorithm: str) -> Hasher:
        hasher = Hasher(algorithm)
        for chunk in self.store.iter_upload(upload_id, CHUNK):
            hasher.update(chunk)
        return hasher

    def _commit(self, name: str, upload_id: str, digest: Digest, size: int) -> None:
        try:
            self.store.sync_upload(upload_id)  # the slow part, outside any transaction
            with self.db.write() as conn:
                self.meta.record_blob(conn, name, str(digest), size)
                self.meta.delete_upload(conn, upload_id)
                self.store.commit_upload(upload_id, digest)
        except StorageError as e:
            raise UnavailableError(e.message) from e
        except SQLAlchemyError as e:
            raise UnavailableError("metadata database unavailable; the upload can be retried") from e
        log.info("blob committed", extra={"repository": name, "digest": str(digest), "size": size})

    def _discard(self, upload_id: str) -> None:
        with self.db.write() as conn:
            self.meta.delete_upload(conn, upload_id)
        self.store.delete_upload(upload_id)
        self._uploads.pop(upload_id, None)

    def cancel_upload(self, name: str, upload_id: str) -> None:
        """Cancel an upload session and discard its data."""
        self.upload_offset(name, upload_id)
        self._discard(upload_id)

    # -- manifests -----------------------------------------------------------------------------------------

    def _record(self, name: str, reference: str) -> ManifestRecord:
        name = name_of(name)
        if is_digest(reference):
            d = str(digest_of(reference))
            rec = self.meta.get_manifest(name, d)
        elif is_tag(reference):
            rec = self.meta.resolve_tag(name, reference)
        else:
            raise ManifestInvalidError(f"invalid reference {reference[:140]!r}")
        if rec is None:
            if not self.meta.repository_exists(name):
                raise NameUnknownError(f"repository {name} is not known", {"name": name})
            raise ManifestUnknownError(f"manifest {reference} is not in {name}", {"reference": reference[:140]})
        return rec

    def head_manifest(self, name: str, reference: str) -> ManifestRecord:
        """What a manifest is, without its bytes."""
        return self._record(name, reference)

    def get_manifest(self, name: str, reference: str) -> StoredManifest:
        """A manifest's bytes and media type, by tag or digest."""
        rec = self._record(name, reference)
        body = self._manifests.get(rec.digest)
        if body is None:
            try:
                body = self.store.read(Digest.parse(rec.digest))
            except StorageError as e:
                log.error("manifest %s of %s missing from storage", rec.digest, name)
                raise UnavailableError(e.message) from e
            self._manifests.put(rec.digest, body)
        return StoredManifest(rec.digest, rec.media_type, body)

    def platform_manifest(
        self,
        name: str,
        index: StoredManifest,
        acceptable: Callable[[str], bool],
        *,
        os: str = "linux",
        architecture: str = "amd64",
    ) -> StoredManifest | None:
        """The manifest an index lists for ``os``/``architecture`` in a media type the client accepts, if any."""
        try:
            parsed = parse_manifest(index.body, index.media_type)
        except ManifestError:
            return None
        for child in parsed.children:
            platform = child.platform
            if (
                platform
                and platform.os == os
                and platform.architecture == architecture
                and acceptable(child.media_type)
            ):
                try:
                    return self.get_manifest(name, str(child.digest))
                except RegistryError:
                    return None
        return None

    def put_manifest(
        self,
        name: str,
        reference: str,
        body: bytes,
        content_type: str | None,
        extra_tags: tuple[str, ...] = (),
    ) -> PushedManifest:
        """Validate and store a manifest under a tag or its digest (plus OCI 1.1 ``?tag=`` extras)."""
        name = name_of(name)
        if len(body) > self.max_manifest_size:
            raise TooLargeError(f"manifest of {len(body)} bytes exceeds the limit of {self.max_manifest_size}")
        tag_names: list[str] = []
        algorithm = "sha256"
        if is_digest(reference):
            expected = digest_of(reference)
            algorithm = expected.algorithm
        elif is_tag(reference):
            tag_names.append(reference)
            expected = None
        else:
            raise ManifestInvalidError(f"invalid reference {reference[:140]!r}")
        for t in extra_tags:
            try:
                tag_names.append(validate_tag(t))
            except InvalidReferenceError as e:
                raise ManifestInvalidError(e.message) from e
        try:
            m = parse_manifest(body, content_type, algorithm=algorithm)
        except ManifestError as e:
            raise ManifestInvalidError(e.message) from e
        if expected is not None and m.digest != expected:
            raise DigestInvalidError(
                f"manifest digest is {m.digest}, not the {expected} in the URL",
                {"expected": str(expected), "actual": str(m.digest)},
            )
        record = NewManifest(
            digest=str(m.digest),
            media_type=m.media_type,
            size=len(body),
            artifact_type=m.effective_artifact_type,
            subject=str(m.subject.digest) if m.subject else None,
            annotations=m.annotations,
            blob_digests=frozenset(str(b.digest) for b in m.blobs if not b.is_foreign),
            child_digests=frozenset(str(c.digest) for c in m.children),
        )
        try:
            retrying(lambda: self.meta.put_manifest(name, record, tag_names, lambda: self.store.put(m.digest, body)))
        except MissingReferencesError as e:
            raise ManifestBlobUnknownError(
                f"manifest references content not in {name}: {', '.join(e.missing[:5])}",
                {"digests": e.missing},
            ) from e
        except StorageError as e:
            raise UnavailableError(e.message) from e
        self._manifests.put(record.digest, body)
        log.info(
            "manifest pushed",
            extra={"repository": name, "digest": record.digest, "tags": tag_names, "mediaType": m.media_type},
        )
        if self.on_push is not None:
            try:
                self.on_push(name, record.digest, m.artifact_type)
            except (SQLAlchemyError, TrustyardError) as e:  # the push stands; the scanner's start-up sweep catches up
                log.error("manifest %s of %s not queued for scanning: %s", record.digest, name, e)
        return PushedManifest(record.digest, record.subject)

    def put_small_blob(self, name: str, data: bytes) -> Digest:
        """Store generated content (an SBOM) as a blob of ``name``: the file is durable before the row names it."""
        name = name_of(name)
        digest = Digest.of(data, "sha256")
        try:
            self.store.put(digest, data)
            with self.db.write() as conn:
                self.meta.record_blob(conn, name, str(digest), len(data))
        except StorageError as e:
            raise UnavailableError(e.message) from e
        return digest

    def delete_manifest(self, name: str, reference: str) -> None:
        """Delete by digest (the manifest and its tags) or by tag (only the tag)."""
        name = name_of(name)
        if is_digest(reference):
            d = str(digest_of(reference))
            if not retrying(lambda: self.meta.delete_manifest(name, d)):
                raise ManifestUnknownError(f"manifest {d} is not in {name}", {"reference": d})
        elif is_tag(reference):
            if not self.meta.delete_tag(name, reference):
                raise ManifestUnknownError(f"tag {reference} is not in {name}", {"reference": reference})
        else:
            raise ManifestInvalidError(f"invalid reference {reference[:140]!r}")
        log.info("manifest deleted", extra={"repository": name, "reference": reference})

    # -- listings ------------------------------------------------------------------------------------------

    def tags(self, name: str, limit: int | None, last: str | None) -> list[str]:
        """Tags in lexical order, paginated."""
        name = name_of(name)
        result = self.meta.list_tags(name, limit, last)
        if result is None:
            raise NameUnknownError(f"repository {name} is not known", {"name": name})
        return result

    def catalog(self, limit: int | None, last: str | None) -> list[str]:
        """Repository names, paginated."""
        return self.meta.catalog(limit, last)

    def referrers(self, name: str, digest: str, artifact_type: str | None) -> bytes:
        """The referrers of ``digest`` as an OCI image index (empty when there are none)."""
        name = name_of(name)
        d = digest_of(digest)
        descriptors = []
        for r in self.meta.referrers(name, str(d)):
            if artifact_type is not None and r.artifact_type != artifact_type:
                continue
            desc: dict[str, object] = {"mediaType": r.media_type, "digest": r.digest, "size": r.size}
            if r.artifact_type:
                desc["artifactType"] = r.artifact_type
            if r.annotations:
                desc["annotations"] = r.annotations
            descriptors.append(desc)
        index = {"schemaVersion": 2, "mediaType": MediaType.OCI_INDEX.value, "manifests": descriptors}
        return json.dumps(index, separators=(",", ":")).encode()
