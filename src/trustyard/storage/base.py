"""The blob store seam: where blob bytes and in-progress uploads live, behind one ``Protocol``.

A store knows bytes and digests, nothing about repositories, manifests or who may see what: those rules
live in the registry's service layer, which also does the hashing. Every method raises ``StorageError``
(never ``OSError``) so that callers map exactly one family to protocol errors.

Contract every driver keeps (DESIGN.md rule 5, durable before visible):
- ``sync_upload`` then ``commit_upload`` make the blob durable (data synced, then atomically named by
  its digest) before they return; callers record the blob in the database only afterwards.
- A blob's content never changes once committed; committing the same digest again is harmless.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from trustyard.errors import TrustyardError
from trustyard.oci.digest import Digest


class StorageError(TrustyardError):
    """A blob store failure (I/O error, missing content where content was promised)."""


class BlobNotFoundError(StorageError):
    """The store has no blob (or upload) of that name."""


class BlobStore(Protocol):
    """Content-addressed blob storage plus append-only upload files."""

    def stat(self, digest: Digest) -> int | None:
        """The blob's size, or ``None`` when the store does not hold it."""
        ...

    def read(self, digest: Digest) -> bytes:
        """The whole blob (for small blobs such as manifests)."""
        ...

    def iter_range(self, digest: Digest, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` (exclusive) of the blob, in chunks of at most ``chunk_size``."""
        ...

    def put(self, digest: Digest, data: bytes) -> None:
        """Store a small blob whose digest the caller verified (durably, atomically)."""
        ...

    def delete(self, digest: Digest) -> None:
        """Remove a blob; removing a missing blob is not an error."""
        ...

    def iter_blobs(self) -> Iterator[tuple[Digest, float]]:
        """Every committed blob with its modification time, for garbage collection of orphan files."""
        ...

    def upload_size(self, upload_id: str) -> int:
        """How many bytes the upload holds (``BlobNotFoundError`` when there is no such upload)."""
        ...

    def create_upload(self, upload_id: str) -> None:
        """Start an empty upload."""
        ...

    def append_upload(self, upload_id: str, chunks: Sequence[bytes | bytearray | memoryview]) -> None:
        """Append the chunks, in order, to an upload (the caller guarantees no concurrent append)."""
        ...

    def iter_upload(self, upload_id: str, chunk_size: int) -> Iterator[bytes]:
        """Read an upload back from the start (to rebuild a hash after a restart)."""
        ...

    def sync_upload(self, upload_id: str) -> None:
        """Make the upload's bytes durable (called before ``commit_upload``, outside any transaction)."""
        ...

    def commit_upload(self, upload_id: str, digest: Digest) -> None:
        """Name the synced upload by ``digest`` atomically and durably; the upload is gone afterwards."""
        ...

    def delete_upload(self, upload_id: str) -> None:
        """Discard an upload; discarding a missing upload is not an error."""
        ...

    def iter_uploads(self) -> Iterator[tuple[str, float]]:
        """Every upload's id and last modification time (epoch seconds), for expiry."""
        ...

    def remove_stale_temporaries(self, before: float) -> int:
        """Delete temporary files left by a crash, older than ``before``; how many were removed."""
        ...
