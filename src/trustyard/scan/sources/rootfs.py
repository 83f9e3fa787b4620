"""``rootfs:PATH``: a root file system as one layer, either a directory or a tar (plain, gzip, xz, zstd).

A tar is read by the layer walker like any layer (its digest is the tar's own). A directory is walked
without following symlinks, every regular file hashed, wanted files read; hard links are recognised by
inode, device files and sockets are skipped, and the same limits as for layers apply. The directory has no
digest: its components name no layer.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from trustyard.scan.errors import LayerLimitError, SourceError
from trustyard.scan.layers import (
    Compression,
    EntryType,
    Layer,
    LayerEntry,
    LayerLimits,
    Reduce,
    Wants,
    read_layer,
    reduce_content,
)
from trustyard.scan.sources.base import LayerRef, SourceBase, SourceOptions

_CHUNK = 1 << 20


class RootfsSource(SourceBase):
    """A root file system given as a directory or a tar file."""

    def __init__(self, path: Path, *, name: str) -> None:
        if not path.exists():
            raise SourceError(f"{path} does not exist")
        super().__init__(name, (LayerRef(index=0, location=str(path)),))
        self._path = path

    @classmethod
    def open(cls, name: str, rest: str, options: SourceOptions) -> RootfsSource:
        """``rootfs:PATH`` (``rest`` is the path)."""
        if not rest:
            raise SourceError(f"{name!r}: no path")
        return cls(Path(rest), name=name)

    def read_layer(self, ref: LayerRef, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None) -> Layer:
        """Walk the directory, or stream the tar."""
        if self._path.is_dir():
            return read_directory(self._path, wants=wants, limits=limits, reduce=reduce)
        try:
            with self._path.open("rb") as f:
                return read_layer(f, wants=wants, limits=limits, reduce=reduce)
        except OSError as e:
            raise SourceError(f"cannot read {self._path}: {e.strerror}") from e

    def close(self) -> None:
        """Nothing stays open."""


def _hash_file(path: Path, capture: bool) -> tuple[str, bytes | None]:
    digest = hashlib.sha256()
    parts: list[bytes] = []
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            if capture:
                parts.append(chunk)
    return digest.hexdigest(), b"".join(parts) if capture else None


def read_directory(root: Path, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None) -> Layer:
    """A directory tree as a ``Layer``, walked without following symlinks; paths are relative to ``root``."""
    entries: dict[str, LayerEntry] = {}
    contents: dict[str, bytes] = {}
    warnings: list[str] = []
    inodes: dict[tuple[int, int], str] = {}
    total = 0

    def warn(path: str, message: str) -> None:
        warnings.append(f"{path}: {message}")

    for top, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + files):
            full = Path(top, name)
            path = full.relative_to(root).as_posix()
            try:
                st = full.lstat()
            except OSError as e:
                warnings.append(f"{path}: cannot stat ({e.strerror}); skipped")
                continue
            if len(entries) >= limits.max_entries:
                raise LayerLimitError(f"{root} has more than {limits.max_entries} entries")
            mode, uid, gid = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid
            if stat.S_ISDIR(st.st_mode):
                entries[path] = LayerEntry(path, EntryType.DIR, 0, mode, uid, gid)
            elif stat.S_ISLNK(st.st_mode):
                entries[path] = LayerEntry(path, EntryType.SYMLINK, 0, mode, uid, gid, os.readlink(full))
            elif stat.S_ISREG(st.st_mode):
                if st.st_size > limits.max_entry_size:
                    raise LayerLimitError(f"{path} is {st.st_size} bytes, past the limit")
                key = (st.st_dev, st.st_ino)
                first = inodes.get(key) if st.st_nlink > 1 else None
                if first is not None:
                    target = entries[first]
                    entries[path] = LayerEntry(
                        path, EntryType.HARDLINK, target.size, mode, uid, gid, first, target.sha256
                    )
                    if first in contents:
                        contents[path] = contents[first]
                    elif wants(path) and target.size <= limits.max_capture_size:
                        kept = reduce_content(reduce, path, full.read_bytes(), warn)
                        if kept is not None:
                            contents[path] = kept
                    continue
                capture = wants(path) and st.st_size <= limits.max_capture_size
                try:
                    sha256, content = _hash_file(full, capture)
                except OSError as e:
                    warnings.append(f"{path}: cannot read ({e.strerror}); skipped")
                    continue
                if content is not None:
                    content = reduce_content(reduce, path, content, warn)
                total += st.st_size
                if total > limits.max_total_size:
                    raise LayerLimitError(f"{root} holds more than {limits.max_total_size} bytes")
                inodes[key] = path
                entries[path] = LayerEntry(path, EntryType.FILE, st.st_size, mode, uid, gid, None, sha256)
                if content is not None:
                    contents[path] = content
            elif stat.S_ISFIFO(st.st_mode):
                entries[path] = LayerEntry(path, EntryType.FIFO, 0, mode, uid, gid)
            else:
                warnings.append(f"{path}: device file or socket skipped")
    return Layer(
        digest=None,
        compression=Compression.NONE,
        compressed_size=0,
        size=total,
        entries=entries,
        whiteouts=frozenset(),
        opaque_dirs=frozenset(),
        contents=contents,
        warnings=tuple(warnings),
    )
