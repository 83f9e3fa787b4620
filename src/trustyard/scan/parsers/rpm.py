"""rpm's package database: header blobs (rpm's "header image" format) and the SQLite ``rpmdb.sqlite``.

A header blob is ``il`` and ``dl`` (big-endian 32-bit), ``il`` index entries of (tag, type, offset,
count) and ``dl`` bytes of data (rpm's ``lib/header.c``, headerImport; the format is documented in rpm's
``docs/manual/format.md``). Each value is bounds-checked against the data store: a corrupt or hostile blob
raises ``RpmError``, never reads past its end. The SQLite database is read from memory (``deserialize``),
never written to disk; one shipped in WAL mode is switched to rollback mode in our copy so it opens
without its ``-wal`` file, as rpm itself reads a checkpointed database.

The other two database formats (Berkeley DB ``Packages``: ``rpmdb_bdb.py``; ndb ``Packages.db``:
``rpmdb_ndb.py``) yield the same header blobs; ``rpmdb.parse_rpmdb`` tells the three apart by their magic.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from trustyard.scan.errors import PackageDatabaseError

_MAX_INDEX: Final = 0xFFFF
_MAX_DATA: Final = 0x0FFFFFFF
SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_DIGEST_ALGORITHMS: Final = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}


class RpmError(PackageDatabaseError):
    """An rpm header or database that cannot be parsed."""


class Tag(IntEnum):
    """The header tags the scanner reads (rpm's ``rpmtag.h``)."""

    NAME = 1000
    VERSION = 1001
    RELEASE = 1002
    EPOCH = 1003
    VENDOR = 1011
    LICENSE = 1014
    ARCH = 1022
    FILEDIGESTS = 1035
    SOURCERPM = 1044
    DIRINDEXES = 1116
    BASENAMES = 1117
    DIRNAMES = 1118
    FILEDIGESTALGO = 5011


class _Type(IntEnum):
    NULL = 0
    CHAR = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    STRING = 6
    BIN = 7
    STRING_ARRAY = 8
    I18NSTRING = 9


_INT_FORMATS: Final = {_Type.CHAR: "B", _Type.INT8: "B", _Type.INT16: "H", _Type.INT32: "I", _Type.INT64: "Q"}
Value = str | bytes | tuple[int, ...] | tuple[str, ...]


def _strings(data: bytes, offset: int, count: int, tag: int) -> tuple[str, ...]:
    values = []
    for _ in range(count):
        end = data.find(b"\0", offset)
        if end < 0:
            raise RpmError(f"header tag {tag}: string runs past the data store")
        values.append(data[offset:end].decode("utf-8", errors="replace"))
        offset = end + 1
    return tuple(values)


def parse_header(blob: bytes) -> dict[int, Value]:
    """Every tag of a header blob: strings, string tuples, integer tuples or bytes, by tag number."""
    if len(blob) < 8:
        raise RpmError("header blob shorter than its 8-byte preamble")
    index_count, data_length = struct.unpack_from(">II", blob)
    if index_count > _MAX_INDEX or data_length > _MAX_DATA:
        raise RpmError(f"header claims {index_count} tags and {data_length} data bytes, past rpm's limits")
    start = 8 + 16 * index_count
    if start + data_length > len(blob):
        raise RpmError("header blob is shorter than its index and data store")
    data = blob[start : start + data_length]
    values: dict[int, Value] = {}
    for i in range(index_count):
        tag, kind, offset, count = struct.unpack_from(">IIII", blob, 8 + 16 * i)
        if offset > data_length or count > data_length:
            raise RpmError(f"header tag {tag}: offset {offset} or count {count} past the data store")
        if kind in _INT_FORMATS:
            fmt = _INT_FORMATS[_Type(kind)]
            width = struct.calcsize(fmt)
            if offset + width * count > data_length:
                raise RpmError(f"header tag {tag}: integers run past the data store")
            values[tag] = struct.unpack_from(f">{count}{fmt}", data, offset)
        elif kind == _Type.STRING:
            values[tag] = _strings(data, offset, 1, tag)[0]
        elif kind in (_Type.STRING_ARRAY, _Type.I18NSTRING):
            values[tag] = _strings(data, offset, count, tag)
        elif kind == _Type.BIN:
            if offset + count > data_length:
                raise RpmError(f"header tag {tag}: binary value runs past the data store")
            values[tag] = data[offset : offset + count]
        elif kind != _Type.NULL:
            raise RpmError(f"header tag {tag}: unknown type {kind}")
    return values


@dataclass(frozen=True, slots=True)
class RpmFile:
    """A file of a package and its digest as ``algorithm:hex`` (none for directories and links)."""

    path: str
    digest: str | None


@dataclass(frozen=True, slots=True)
class RpmPackage:
    """One installed package, as ``rpm -q --qf`` would show it."""

    name: str
    version: str
    release: str
    epoch: int | None
    arch: str | None
    source_rpm: str | None
    license: str | None
    vendor: str | None
    files: tuple[RpmFile, ...]

    @property
    def evr(self) -> str:
        """``[epoch:]version-release``, the string rpm's version comparison takes."""
        prefix = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{prefix}{self.version}-{self.release}"


def _text(values: dict[int, Value], tag: Tag) -> str | None:
    value = values.get(tag)
    if isinstance(value, str):
        return value
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return value[0]  # an I18NSTRING's first (default-locale) entry
    return None


def _texts(values: dict[int, Value], tag: Tag) -> tuple[str, ...]:
    value = values.get(tag, ())
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, tuple) else ()


def _ints(values: dict[int, Value], tag: Tag) -> tuple[int, ...]:
    value = values.get(tag, ())
    return tuple(v for v in value if isinstance(v, int)) if isinstance(value, tuple) else ()


def _files(values: dict[int, Value]) -> tuple[RpmFile, ...]:
    basenames, dirnames = _texts(values, Tag.BASENAMES), _texts(values, Tag.DIRNAMES)
    indexes, digests = _ints(values, Tag.DIRINDEXES), _texts(values, Tag.FILEDIGESTS)
    if len(indexes) != len(basenames) or any(i >= len(dirnames) for i in indexes):
        raise RpmError("file list: directory indexes do not match the names")
    algorithm = _DIGEST_ALGORITHMS.get((_ints(values, Tag.FILEDIGESTALGO) or (1,))[0], "md5")
    files = []
    for i, (base, index) in enumerate(zip(basenames, indexes, strict=True)):
        digest = digests[i] if i < len(digests) and digests[i] else None
        path = (dirnames[index] + base).lstrip("/")
        files.append(RpmFile(path, f"{algorithm}:{digest}" if digest else None))
    return tuple(files)


def package_from_header(blob: bytes) -> RpmPackage:
    """The package a header blob describes; ``RpmError`` when it has no name, version or release."""
    values = parse_header(blob)
    name, version, release = _text(values, Tag.NAME), _text(values, Tag.VERSION), _text(values, Tag.RELEASE)
    if not name or version is None or release is None:
        raise RpmError("header without a name, version or release")
    epochs = _ints(values, Tag.EPOCH)
    return RpmPackage(
        name=name,
        version=version,
        release=release,
        epoch=epochs[0] if epochs else None,
        arch=_text(values, Tag.ARCH),
        source_rpm=_text(values, Tag.SOURCERPM),
        license=_text(values, Tag.LICENSE),
        vendor=_text(values, Tag.VENDOR),
        files=_files(values),
    )


def parse_sqlite_rpmdb(data: bytes) -> list[RpmPackage]:
    """Every package of an ``rpmdb.sqlite`` given as bytes, in database order."""
    if not data.startswith(SQLITE_MAGIC) or len(data) < 100:
        raise RpmError("not an SQLite database")
    image = bytearray(data)
    if image[18:20] == b"\x02\x02":
        image[18:20] = b"\x01\x01"  # WAL -> rollback journal, in our in-memory copy only
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(bytes(image))
        rows = connection.execute("SELECT blob FROM Packages ORDER BY hnum").fetchall()
    except sqlite3.Error as e:
        raise RpmError(f"unreadable rpm SQLite database: {e}") from e
    finally:
        connection.close()
    packages = []
    for (blob,) in rows:
        if not isinstance(blob, bytes):
            raise RpmError("a Packages row holds no header blob")
        packages.append(package_from_header(blob))
    return packages
