"""The default blob store: a local (or shared, POSIX) folder.

Layout: ``blobs/<algorithm>/<first two hex>/<hex>`` for committed blobs and ``uploads/<id>`` for uploads
in progress. Commit is fsync(file) -> rename -> fsync(directory), so after a crash a blob path either
does not exist or holds the complete, verified content. Upload ids are validated so that no name can
escape the folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

from trustyard.oci.digest import Digest, DigestError
from trustyard.storage.base import BlobNotFoundError, StorageError

_UPLOAD_ID: Final = re.compile(r"[a-f0-9]{32}")


def _writeback_starter() -> Callable[[int], None]:
    """``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)``: start writing a file's dirty pages, don't wait.

    Called after every append, it lets the disk work while the rest of the upload arrives, so the fsync
    that makes the blob durable at commit finds little left to write. Linux only; elsewhere a no-op.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        sync_file_range = libc.sync_file_range
    except (OSError, AttributeError):
        return lambda fd: None
    sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    sync_file_range.restype = ctypes.c_int
    sync_file_range_write = 2

    def start(fd: int) -> None:
        sync_file_range(fd, 0, 0, sync_file_range_write)  # advisory: a failure only means a slower fsync

    return start


_start_writeback = _writeback_starter()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemBlobStore:
    """Blobs as files under ``root``; see the module docstring for the layout and guarantees."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self._blobs = root / "blobs"
        self._uploads = root / "uploads"
        try:
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._uploads.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create the blob folders under {root}: {e.strerror}") from e
        self._made_dirs: set[Path] = set()

    # -- committed blobs -------------------------------------------------------------------------------

    def _path(self, digest: Digest) -> Path:
        return self._blobs / digest.algorithm / digest.hex[:2] / digest.hex

    def stat(self, digest: Digest) -> int | None:
        """The size of the blob file, or ``None``."""
        try:
            return os.stat(self._path(digest)).st_size
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageError(f"cannot stat blob {digest}: {e.strerror}") from e

    def read(self, digest: Digest) -> bytes:
        """The whole blob."""
        try:
            return self._path(digest).read_bytes()
        except FileNotFoundError as e:
            raise BlobNotFoundError(f"blob {digest} is not in the store") from e
        except OSError as e:
            raise StorageError(f"cannot read blob {digest}: {e.strerror}") from e

    def iter_range(self, digest: Digest, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        """Stream a byte range; the file is opened before the first chunk so a missing blob fails early."""
        try:
            f = open(self._path(digest), "rb", buffering=0)  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as e:
            raise BlobNotFoundError(f"blob {digest} is not in the store") from e
        except OSError as e:
            raise StorageError(f"cannot open blob {digest}: {e.strerror}") from e
        return self._chunks(f, start, end, chunk_size, str(digest))

    @staticmethod
    def _chunks(f: io.FileIO, start: int, end: int, chunk_size: int, name: str) -> Iterator[bytes]:
        fd = f.fileno()
        try:
            pos = start
            while pos < end:
                try:
                    data = os.pread(fd, min(chunk_size, end - pos), pos)
                except OSError as e:
                    raise StorageError(f"cannot read {name}: {e.strerror}") from e
                if not data:
                    raise StorageError(f"{name} is shorter than recorded")
                pos += len(data)
                yield data
        finally:
            f.close()

    def _ensure_parent(self, path: Path) -> None:
        parent = path.parent
        if parent not in self._made_dirs:
            parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(parent)

    def put(self, digest: Digest, data: bytes) -> None:
        """Write a small blob through a temporary file, durably."""
        path = self._path(digest)
        tmp = self._uploads / f"put-{os.getpid()}-{threading.get_ident():x}-{digest.hex[:16]}"
        try:
            self._ensure_parent(path)
            with open(tmp, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
            if self.fsync:
                _fsync_dir(path.parent)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageError(f"cannot store blob {digest}: {e.strerror}") from e

    def delete(self, digest: Digest) -> None:
        """Unlink the blob file."""
        try:
            self._path(digest).unlink()
        except FileNotFoundError:
            return
        except OSError as e:
            raise StorageError(f"cannot delete blob {digest}: {e.strerror}") from e

    def iter_blobs(self) -> Iterator[tuple[Digest, float]]:
        """Walk the blob folders."""
        for algo_dir in sorted(p for p in self._blobs.iterdir() if p.is_dir()):
            for shard in sorted(p for p in algo_dir.iterdir() if p.is_dir()):
                for entry in os.scandir(shard):
                    try:
                        digest = Digest.parse(f"{algo_dir.name}:{entry.name}")
                        yield digest, entry.stat().st_mtime
                    except (DigestError, FileNotFoundError):
                        continue

    # -- uploads -----------------------------------------------------------------------------------------

    def _upload(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise BlobNotFoundError(f"no upload {upload_id[:40]!r}")
        return self._uploads / upload_id

    def upload_size(self, upload_id: str) -> int:
        """Size of the upload file."""
        try:
            return os.stat(self._upload(upload_id)).st_size
        except FileNotFoundError as e:
            raise BlobNotFoundError(f"no upload {upload_id}") from e
        except OSError as e:
            raise StorageError(f"cannot stat upload {upload_id}: {e.strerror}") from e

    def create_upload(self, upload_id: str) -> None:
        """Create the empty upload file."""
        try:
            with open(self._upload(upload_id), "xb"):
                pass
        except OSError as e:
            raise StorageError(f"cannot create upload {upload_id}: {e.strerror}") from e

    def append_upload(self, upload_id: str, chunks: Sequence[bytes | bytearray | memoryview]) -> None:
        """Append the chunks to the upload file in one ``writev`` (no joining copy)."""
        path = self._upload(upload_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError as e:
            raise BlobNotFoundError(f"no upload {upload_id}") from e
        except OSError as e:
            raise StorageError(f"cannot open upload {upload_id}: {e.strerror}") from e
        try:
            pending = [memoryview(c) for c in chunks if len(c)]
            while pending:
                written = os.writev(fd, pending[:1024])
                while pending and written >= len(pending[0]):
                    written -= len(pending[0])
                    pending.pop(0)
                if written:
                    pending[0] = pending[0][written:]
            if self.fsync:
                _start_writeback(fd)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise StorageError(f"no space left to store upload {upload_id}") from e
            raise StorageError(f"cannot write upload {upload_id}: {e.strerror}") from e
        finally:
            os.close(fd)

    def iter_upload(self, upload_id: str, chunk_size: int) -> Iterator[bytes]:
        """Read the upload file from its start."""
        size = self.upload_size(upload_id)
        try:
            f = open(self._upload(upload_id), "rb", buffering=0)  # noqa: SIM115 - closed by the generator
        except OSError as e:
            raise StorageError(f"cannot open upload {upload_id}: {e.strerror}") from e
        return self._chunks(f, 0, size, chunk_size, f"upload {upload_id}")

    def sync_upload(self, upload_id: str) -> None:
        """fsync the upload's data (before it is committed; slow for big blobs, so done first)."""
        if not self.fsync:
            return
        try:
            fd = os.open(self._upload(upload_id), os.O_RDONLY)
        except FileNotFoundError as e:
            raise BlobNotFoundError(f"no upload {upload_id}") from e
        except OSError as e:
            raise StorageError(f"cannot open upload {upload_id}: {e.strerror}") from e
        try:
            os.fsync(fd)
        except OSError as e:
            raise StorageError(f"cannot sync upload {upload_id}: {e.strerror}") from e
        finally:
            os.close(fd)

    def commit_upload(self, upload_id: str, digest: Digest) -> None:
        """Rename the (synced) upload to its digest and fsync the folder.

        The file's mtime is set to now first: garbage collection spares files younger than its grace
        period, and a blob being committed right now must never look like an old orphan.
        """
        src = self._upload(upload_id)
        dst = self._path(digest)
        try:
            os.utime(src)
            self._ensure_parent(dst)
            os.replace(src, dst)
            if self.fsync:
                _fsync_dir(dst.parent)
        except FileNotFoundError as e:
            raise BlobNotFoundError(f"no upload {upload_id}") from e
        except OSError as e:
            raise StorageError(f"cannot commit upload {upload_id} as {digest}: {e.strerror}") from e

    def delete_upload(self, upload_id: str) -> None:
        """Unlink the upload file."""
        try:
            self._upload(upload_id).unlink()
        except (FileNotFoundError, BlobNotFoundError):
            return
        except OSError as e:
            raise StorageError(f"cannot delete upload {upload_id}: {e.strerror}") from e

    def iter_uploads(self) -> Iterator[tuple[str, float]]:
        """Every upload file with its mtime."""
        for entry in os.scandir(self._uploads):
            if _UPLOAD_ID.fullmatch(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    yield entry.name, entry.stat().st_mtime

    def remove_stale_temporaries(self, before: float) -> int:
        """Remove ``put-*`` files (manifest writes interrupted by a crash) older than ``before``."""
        removed = 0
        for entry in os.scandir(self._uploads):
            if entry.name.startswith("put-"):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < before:
                        os.unlink(entry.path)
                        removed += 1
        return removed
