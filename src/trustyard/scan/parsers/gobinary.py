"""The build information Go writes into every binary it links (``go version -m``), read without running it.

Where it is: the ELF section ``.go.buildinfo`` (found through the section headers; when those are stripped,
by its 16-byte-aligned magic ``\\xff Go buildinf:``). Its 32-byte header holds the magic, the pointer size
and a flags byte. Since Go 1.18 (flag bit 2) the Go version and the module information follow as two
length-prefixed (unsigned varint) strings. Before, the header holds two pointers to Go string headers
(pointer, length) in the binary's memory, which are translated to file offsets through the sections that
hold them; flag bit 1 means big-endian. The module information is the text ``runtime/debug.BuildInfo``
prints, wrapped in 16 sentinel bytes at each end: ``path``, ``mod``, ``dep`` and ``=>`` (a replacement of
the line before) lines with tab-separated fields, and ``build KEY=VALUE`` settings.

Not here: other executable formats (PE, Mach-O) and the version of a binary with no build information
(Go before 1.13 wrote none); both are left to the binary classifiers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from trustyard.scan.errors import PackageDatabaseError

MAGIC: Final = b"\xff Go buildinf:"
_ELF: Final = b"\x7fELF"
_HEADER: Final = 32
_MAX_STRING: Final = 1 << 20


class GoBinaryError(PackageDatabaseError):
    """A Go build-information block that points outside the file or is otherwise malformed."""


@dataclass(frozen=True, slots=True)
class GoModule:
    """One module of the build: path, version and go.sum hash; ``replaced_by`` when a ``=>`` line follows."""

    path: str
    version: str
    sum: str | None = None
    replaced_by: GoModule | None = None


@dataclass(frozen=True, slots=True)
class GoBuildInfo:
    """What ``go version -m`` prints for one binary."""

    go_version: str
    path: str | None
    main: GoModule | None
    deps: tuple[GoModule, ...]
    settings: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ElfSection:
    """One ELF section header: its name, load address, file offset and size (the binary classifiers use it too)."""

    name: str
    addr: int
    offset: int
    size: int


def elf_sections(data: bytes) -> list[ElfSection]:
    """The ELF section headers (empty when there are none or they are unreadable)."""
    if len(data) < 64 or not data.startswith(_ELF) or data[4] not in (1, 2) or data[5] not in (1, 2):
        return []
    wide, endian = data[4] == 2, "<" if data[5] == 1 else ">"
    try:
        if wide:
            (shoff,) = struct.unpack_from(endian + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x3A)
            layout = endian + "IIQQQQ"
        else:
            (shoff,) = struct.unpack_from(endian + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(endian + "HHH", data, 0x2E)
            layout = endian + "IIIIII"
        raw = []
        for i in range(min(shnum, 4096)):
            name, _kind, _flags, addr, offset, size = struct.unpack_from(layout, data, shoff + i * shentsize)
            raw.append((name, addr, offset, size))
    except (struct.error, OverflowError):  # an offset past what the platform can index is not a table
        return []
    if not raw or shstrndx >= len(raw):
        return []
    strtab = raw[shstrndx][2]
    sections = []
    for name, addr, offset, size in raw:
        start = strtab + name
        end = data.find(b"\0", start, start + 256)
        sections.append(ElfSection(data[start:end].decode("latin-1") if end > 0 else "", addr, offset, size))
    return sections


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    raise GoBinaryError("truncated varint in the build information")


def _inline_strings(block: bytes) -> tuple[str, str]:
    at = _HEADER
    found = []
    for _ in range(2):
        size, at = _uvarint(block, at)
        if size > _MAX_STRING or at + size > len(block):
            raise GoBinaryError("build information string runs past its section")
        found.append(block[at : at + size].decode("utf-8", errors="replace"))
        at += size
    return found[0], found[1]


def _pointer_strings(data: bytes, block: bytes, sections: list[ElfSection]) -> tuple[str, str]:
    """Go < 1.18: two pointers to string headers, read through the sections that map those addresses."""
    size = block[14]
    if size not in (4, 8):
        raise GoBinaryError(f"pointer size {size} in the build information")
    endian = ">" if block[15] & 1 else "<"
    word = endian + ("Q" if size == 8 else "I")

    def read(addr: int, length: int) -> bytes:
        for s in sections:
            if s.addr and s.addr <= addr and addr + length <= s.addr + s.size:
                start = s.offset + addr - s.addr
                if start + length <= len(data):
                    return data[start : start + length]
        raise GoBinaryError(f"build information points at {addr:#x}, outside the file")

    found = []
    for header_at in (16, 16 + size):
        (header,) = struct.unpack_from(word, block, header_at)
        pointer, length = struct.unpack(endian + ("QQ" if size == 8 else "II"), read(header, 2 * size))
        if length > _MAX_STRING:
            raise GoBinaryError("build information string is implausibly long")
        found.append(read(pointer, length).decode("utf-8", errors="replace") if length else "")
    return found[0], found[1]


def read_build_info(data: bytes) -> GoBuildInfo | None:
    """The build information of an ELF Go binary; ``None`` for anything that is not one."""
    if not data.startswith(_ELF):
        return None
    sections = elf_sections(data)
    section = next((s for s in sections if s.name == ".go.buildinfo"), None)
    if section is not None and data[section.offset : section.offset + len(MAGIC)] == MAGIC:
        start = section.offset
    else:
        start = data.find(MAGIC)
        while start >= 0 and start % 16:
            start = data.find(MAGIC, start + 1)
        if start < 0:
            return None
    block = data[start : start + (section.size if section is not None else 64 * 1024) + _MAX_STRING]
    if len(block) < _HEADER:
        raise GoBinaryError("build information header is truncated")
    version, modinfo = _inline_strings(block) if block[15] & 2 else _pointer_strings(data, block, sections)
    return parse_modinfo(version, modinfo)


def parse_modinfo(go_version: str, modinfo: str) -> GoBuildInfo:
    """The module text of a binary (with or without its 16-byte sentinels) as a ``GoBuildInfo``."""
    if len(modinfo) >= 33 and modinfo[-17] == "\n":
        modinfo = modinfo[16:-16]
    path: str | None = None
    main: GoModule | None = None
    deps: list[GoModule] = []
    settings: list[tuple[str, str]] = []
    for line in modinfo.splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind == "path":
            path = rest
        elif kind in ("mod", "dep") and len(fields) >= 2:
            module = GoModule(fields[0], fields[1], fields[2] if len(fields) > 2 and fields[2] else None)
            if kind == "mod":
                main = module
            else:
                deps.append(module)
        elif kind == "=>" and len(fields) >= 2 and deps:
            replacement = GoModule(fields[0], fields[1], fields[2] if len(fields) > 2 and fields[2] else None)
            last = deps.pop()
            deps.append(GoModule(last.path, last.version, last.sum, replacement))
        elif kind == "build" and "=" in rest:
            key, _, value = rest.partition("=")
            settings.append((key, value))
    return GoBuildInfo(go_version, path, main, tuple(deps), tuple(settings))
