"""Layer tars built in memory for the scanner's tests: a tiny typed builder over ``tarfile``.

Each ``Member`` is one tar header (and its data); ``build_tar`` writes them in order, so tests can make
duplicates, whiteouts, hostile names and device files exactly as a hostile image would carry them.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from dataclasses import dataclass

import zstandard


@dataclass(frozen=True)
class Member:
    """One tar entry: ``kind`` is a tarfile type constant (``tarfile.REGTYPE`` ...)."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    mode: int = 0o644
    linkname: str = ""
    uid: int = 0
    gid: int = 0


def file(name: str, data: bytes = b"", mode: int = 0o644) -> Member:
    """A regular file."""
    return Member(name, data, tarfile.REGTYPE, mode)


def directory(name: str) -> Member:
    """A directory."""
    return Member(name, kind=tarfile.DIRTYPE, mode=0o755)


def symlink(name: str, target: str) -> Member:
    """A symbolic link."""
    return Member(name, kind=tarfile.SYMTYPE, mode=0o777, linkname=target)


def hardlink(name: str, target: str) -> Member:
    """A hard link to an earlier member."""
    return Member(name, kind=tarfile.LNKTYPE, linkname=target)


def build_tar(members: list[Member], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """The uncompressed tar of ``members``, in order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.kind
            info.mode = m.mode
            info.uid, info.gid = m.uid, m.gid
            info.linkname = m.linkname
            info.mtime = 1704067200
            if m.kind == tarfile.REGTYPE:
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                tar.addfile(info)
    return out.getvalue()


def compress(data: bytes, kind: str) -> bytes:
    """``data`` compressed as ``kind`` (none, gzip, zstd, xz, bzip2)."""
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    if kind == "xz":
        return lzma.compress(data)
    if kind == "bzip2":
        return bz2.compress(data)
    return data
