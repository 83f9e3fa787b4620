"""rpm's ndb ``Packages.db`` (rpm's own "new database", SUSE's default since 2020), read in pure Python.

The layout is the one rpm writes in ``lib/backend/ndb/rpmpkg.c``, all integers little-endian:

- a 32-byte file header: magic ``RpmP``, version 0, generation, number of 4096-byte slot pages, next package
  index;
- slot pages: after the header, 16-byte slots ``Slot`` magic, package index, block offset, block count
  (blocks are 16 bytes; a slot with block offset 0 is free);
- at ``block offset * 16`` each blob: head (``BlbS``, package index, timestamp, blob length), the header blob,
  zero padding to the block count, tail (Adler-32 of head + blob + padding, blob length, ``BlbE``).

Every slot's blob is checked as rpm checks it (magics, package index, lengths against the block count, and
the Adler-32 checksum), so a torn or hostile file is an ``RpmError``; the walk is bounded by the slot pages.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

from trustyard.scan.parsers.rpm import RpmError

NDB_MAGIC: Final = b"RpmP"
_SLOT_MAGIC: Final = b"Slot"
_HEAD_MAGIC: Final = b"BlbS"
_TAIL_MAGIC: Final = b"BlbE"
_HEADER_SIZE: Final = 32
_SLOT_SIZE: Final = 16
_BLOCK: Final = 16
_PAGE: Final = 4096
_HEAD: Final = 16
_TAIL: Final = 12


def is_ndb(data: bytes) -> bool:
    """Whether ``data`` starts like an ndb ``Packages.db``."""
    return data[:4] == NDB_MAGIC


def _blob(data: bytes, index: int, offset: int, count: int) -> bytes:
    start, end = offset * _BLOCK, (offset + count) * _BLOCK
    if end > len(data) or count * _BLOCK < _HEAD + _TAIL:
        raise RpmError(f"ndb package {index}: blocks {offset}+{count} lie outside the file")
    magic, owner, _stamp, length = struct.unpack_from("<4sIII", data, start)
    if magic != _HEAD_MAGIC or owner != index:
        raise RpmError(f"ndb package {index}: no blob head at block {offset}")
    if count != (_HEAD + length + _TAIL + _BLOCK - 1) // _BLOCK:
        raise RpmError(f"ndb package {index}: a {length}-byte blob does not fill {count} blocks")
    checksum, tail_length, tail_magic = struct.unpack_from("<II4s", data, end - _TAIL)
    if tail_magic != _TAIL_MAGIC or tail_length != length:
        raise RpmError(f"ndb package {index}: blob tail does not match its head")
    if zlib.adler32(memoryview(data)[start : end - _TAIL]) != checksum:
        raise RpmError(f"ndb package {index}: blob checksum mismatch")
    return data[start + _HEAD : start + _HEAD + length]


def ndb_headers(data: bytes) -> list[bytes]:
    """The header blobs of an ndb ``Packages.db``, by package index; ``RpmError`` when it is not one."""
    if len(data) < _HEADER_SIZE or not is_ndb(data):
        raise RpmError("not an rpm ndb database")
    version, _generation, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise RpmError(f"ndb version {version} is not supported (0 is)")
    if slot_pages == 0 or slot_pages * _PAGE > len(data):
        raise RpmError(f"ndb file of {len(data)} bytes cannot hold {slot_pages} slot pages")
    first_block = slot_pages * _PAGE // _BLOCK
    headers: dict[int, bytes] = {}
    for at in range(_HEADER_SIZE, slot_pages * _PAGE, _SLOT_SIZE):
        magic, index, offset, count = struct.unpack_from("<4sIII", data, at)
        if magic != _SLOT_MAGIC:
            raise RpmError(f"ndb slot at byte {at} has no slot magic")
        if offset == 0:
            continue  # a free slot
        if index == 0 or count == 0 or offset < first_block:
            raise RpmError(f"ndb slot at byte {at} is malformed")
        if index in headers:
            raise RpmError(f"ndb package {index} has two slots")
        headers[index] = _blob(data, index, offset, count)
    return [headers[n] for n in sorted(headers)]
