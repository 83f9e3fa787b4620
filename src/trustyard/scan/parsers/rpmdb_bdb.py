"""rpm's Berkeley DB ``Packages`` file (a BDB hash database), read in pure Python: the header blobs it holds.

Before rpm 4.16 every distribution kept its package headers in ``/var/lib/rpm/Packages``, a Berkeley DB
*hash* database whose keys are 4-byte header numbers and whose values are header blobs (``parsers/rpm.py``
parses those). Images of CentOS 7/8, RHEL 7/8, Amazon Linux 2 and old Fedora still carry one. No BDB library
is used: the layout read here is the one rpm's own read-only backend reads (``lib/backend/bdb_ro.c``) and
Berkeley DB's ``dbinc/db_page.h`` / ``hash.h`` describe:

- page 0 is the hash metadata page: magic ``0x061561`` at byte 12 (its byte order is the database's), version,
  page size, last page number, ``max_bucket``, and the ``spares`` table that maps a bucket to its first page
  (``bucket + spares[bit length of bucket]``);
- a bucket is a chain of hash pages (type 2 or 13) linked by ``next_pgno``; a page holds ``entries`` offsets
  to items packed from the end of the page, alternately key and value;
- an item is ``H_KEYDATA`` (type 1, bytes inline) or ``H_OFFPAGE`` (type 3: first overflow page and total
  length); overflow pages (type 7) carry ``hf_offset`` bytes each and chain by ``next_pgno``.

Every offset, length and page number is checked before it is used, every page is visited at most once and
every overflow page must carry bytes, so garbage ends in ``RpmError``, never in an endless walk. Key 0 is
rpm's "next header number" counter, not a package.
"""

from __future__ import annotations

import struct
from typing import Final

from trustyard.scan.parsers.rpm import RpmError

HASH_MAGIC: Final = 0x061561
_META_SIZE: Final = 224 + 4 * 2
_PAGE_HEADER: Final = 26
_HASH_PAGES: Final = frozenset({2, 13})  # P_HASH_UNSORTED, P_HASH
_OVERFLOW_PAGE: Final = 7
_KEYDATA: Final = 1
_OFFPAGE: Final = 3


def is_bdb_hash(data: bytes) -> bool:
    """Whether ``data`` starts with a Berkeley DB hash metadata page (either byte order)."""
    return len(data) >= 16 and HASH_MAGIC in struct.unpack_from("<I", data, 12) + struct.unpack_from(">I", data, 12)


class _Database:
    def __init__(self, data: bytes) -> None:
        if len(data) < 512 or not is_bdb_hash(data):
            raise RpmError("not a Berkeley DB hash database")
        self.order = "<" if struct.unpack_from("<I", data, 12)[0] == HASH_MAGIC else ">"
        version, pagesize = struct.unpack_from(self.order + "II", data, 16)
        if not 8 <= version <= 10:
            raise RpmError(f"Berkeley DB hash version {version} is not supported (8 to 10 are)")
        if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
            raise RpmError(f"Berkeley DB page size {pagesize} is not a power of two from 512 to 65536")
        (last_page,) = struct.unpack_from(self.order + "I", data, 32)
        if (last_page + 1) * pagesize > len(data):
            raise RpmError(f"Berkeley DB file is truncated: {len(data)} bytes for {last_page + 1} pages")
        self.data = data
        self.pagesize = pagesize
        self.last_page = last_page
        self.max_bucket: int = struct.unpack_from(self.order + "I", data, 72)[0]
        self.spares: tuple[int, ...] = struct.unpack_from(self.order + "32I", data, 96)

    def page(self, number: int) -> memoryview:
        if not 0 < number <= self.last_page:
            raise RpmError(f"Berkeley DB page {number} is outside the file (last page {self.last_page})")
        start = number * self.pagesize
        page = memoryview(self.data)[start : start + self.pagesize]
        if self.u32(page, 8) != number:
            raise RpmError(f"Berkeley DB page {number} says it is page {self.u32(page, 8)}")
        return page

    def u16(self, page: memoryview, offset: int) -> int:
        value: int = struct.unpack_from(self.order + "H", page, offset)[0]
        return value

    def u32(self, page: memoryview, offset: int) -> int:
        value: int = struct.unpack_from(self.order + "I", page, offset)[0]
        return value

    def bucket_page(self, bucket: int) -> int:
        return bucket + self.spares[bucket.bit_length()]

    def item(self, page: memoryview, offset: int, length: int) -> bytes:
        if length <= 0 or offset + length > self.pagesize:
            raise RpmError("Berkeley DB item runs outside its page")
        kind = page[offset]
        if kind == _KEYDATA:
            return bytes(page[offset + 1 : offset + length])
        if kind == _OFFPAGE:
            if length != 12:
                raise RpmError("Berkeley DB off-page item of the wrong size")
            return self.overflow(self.u32(page, offset + 4), self.u32(page, offset + 8))
        raise RpmError(f"Berkeley DB item type {kind} is not supported in a hash page")

    def overflow(self, number: int, length: int) -> bytes:
        if length == 0 or length > len(self.data):
            raise RpmError(f"Berkeley DB overflow item of {length} bytes in a {len(self.data)}-byte file")
        parts: list[bytes] = []
        left = length
        while left:
            page = self.page(number)
            if page[25] != _OVERFLOW_PAGE:
                raise RpmError(f"Berkeley DB page {number} should be an overflow page")
            used = self.u16(page, 22)
            if used == 0 or used > left or used + _PAGE_HEADER > self.pagesize:
                raise RpmError(f"Berkeley DB overflow page {number} holds {used} bytes of the {left} left")
            parts.append(bytes(page[_PAGE_HEADER : _PAGE_HEADER + used]))
            left -= used  # strictly decreasing: the chain cannot loop
            number = self.u32(page, 16)
        return b"".join(parts)

    def pairs(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value) of every bucket, each page read once."""
        if self.max_bucket > self.last_page or self.max_bucket.bit_length() >= len(self.spares):
            raise RpmError(f"Berkeley DB claims {self.max_bucket + 1} buckets in {self.last_page} pages")
        seen: set[int] = set()
        out: list[tuple[bytes, bytes]] = []
        for bucket in range(self.max_bucket + 1):
            number = self.bucket_page(bucket)
            while number:
                if number in seen:
                    raise RpmError(f"Berkeley DB page {number} is reached twice")
                seen.add(number)
                page = self.page(number)
                if page[25] not in _HASH_PAGES:
                    raise RpmError(f"Berkeley DB page {number} should be a hash page, it has type {page[25]}")
                out.extend(self._page_pairs(page))
                number = self.u32(page, 16)
        return out

    def _page_pairs(self, page: memoryview) -> list[tuple[bytes, bytes]]:
        entries = self.u16(page, 20)
        if entries % 2 or _PAGE_HEADER + 2 * entries > self.pagesize:
            raise RpmError(f"Berkeley DB hash page with {entries} entries")
        offsets = [self.u16(page, _PAGE_HEADER + 2 * i) for i in range(entries)]
        pairs = []
        for i in range(0, entries, 2):
            key_at, value_at = offsets[i], offsets[i + 1]
            key_end = self.pagesize if i == 0 else offsets[i - 1]
            pairs.append((self.item(page, key_at, key_end - key_at), self.item(page, value_at, key_at - value_at)))
        return pairs


def bdb_headers(data: bytes) -> list[bytes]:
    """The header blobs of a BDB ``Packages`` file, by header number; ``RpmError`` when it is not one."""
    db = _Database(data)
    headers: dict[int, bytes] = {}
    for key, value in db.pairs():
        if len(key) != 4:
            raise RpmError(f"rpm Packages key of {len(key)} bytes (header numbers have 4)")
        (number,) = struct.unpack(db.order + "I", key)
        if number:  # key 0: rpm's counter of the next header number
            headers[number] = value
    return [headers[n] for n in sorted(headers)]
