"""Native components inside ELF files, named by version signatures (as Syft's binary classifiers do).

A library linked statically into a program, or a program copied under another name, has no package
database entry; the version string its build compiled in is still there. This analyzer looks at every ELF
file outside the data-only trees that is extension-less (where programs are), a shared object
(``*.so``, ``*.so.N``) or named like a known component (``python3.11``), and searches it with the
classifiers of ``binary_classifiers.py``.

Bounded and streamed: the walker hands over each wanted file whole, within its capture limit, as it does Go
binaries, and keeps only the summary; only the ELF magic decides whether a file is searched; of an ELF file its
read-only and initialised-data sections (``.rodata*``, ``.data*``: where string constants live) are searched
when it has section headers, else the whole file; at most ``MAX_SCAN`` bytes of it. A signature of a library
the file loads dynamically (``DT_NEEDED``) is a header's text compiled in, not the library, and is ignored.
The bytes pass in chunks of ``CHUNK``, and the last ``2 * WINDOW`` bytes of each chunk are searched again
with the next, so a match straddling two chunks is found (every signature fits in ``WINDOW`` either side of
its needle) and a match that reaches the very end of a chunk waits for the next one (a version cut short is
never reported).

What is kept of a file (``extract``) is a small JSON summary: the classifier hits and the file's MD5 and
SHA-1, which the file-hash index (``scan/identify_index.py``) compares with the digests package databases
record (dpkg lists MD5s, apk SHA-1s) before it believes that the file belongs to a package.

Which components are reported is decided again by the indexer: a file a package database already lists is
that package's, not a second component (``scan/identify.py``, ``owned_paths``).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import re
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from packageurl import PackageURL

from trustyard.scan.analyzers.binary_classifiers import CLASSIFIERS, WINDOW, Classifier
from trustyard.scan.cpe import cpe23
from trustyard.scan.errors import PackageDatabaseError
from trustyard.scan.model import Component, ComponentType, PackageFile
from trustyard.scan.parsers.gobinary import ElfSection, elf_sections

EVIDENCE: Final = "identified by binary signature"
CHUNK: Final = 1 << 20
MAX_SCAN: Final = 64 << 20
"""Bytes searched per file at most: node's library is 80 MB, its read-only data a quarter of that."""

_ELF: Final = b"\x7fELF"
_DATA_TREES: Final = ("usr/share/", "usr/include/", "etc/", "var/lib/dpkg/", "var/lib/apk/", "var/cache/", "proc/")
_SHARED_OBJECT: Final = re.compile(r"\.so(?:\.[0-9][0-9.]*)?$")
_SEARCHED_SECTIONS: Final = (".rodata", ".data")
_HASH_ASIDE: Final = 256 << 10
"""Files at least this large are hashed in a thread beside the search (smaller ones: a thread costs more)."""


class BinarySummaryError(PackageDatabaseError):
    """A kept summary that is not what ``extract`` writes (a damaged cache entry)."""


def _names_pattern(classifiers: Iterable[Classifier]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(n) for c in classifiers for n in c.names))


def _globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None


@functools.lru_cache(maxsize=8)
def _plan(
    classifiers: tuple[Classifier, ...],
) -> tuple[tuple[Classifier, re.Pattern[str] | None, re.Pattern[str] | None], ...]:
    """Each classifier with its file-name and linked-library patterns compiled (once per table, not per file)."""
    return tuple((c, _globs(c.names), _globs(c.linked)) for c in classifiers)


_NAMED: Final = _names_pattern(CLASSIFIERS)


def regions(data: bytes, sections: Sequence[ElfSection] | None = None) -> list[tuple[int, int]]:
    """The (offset, size) spans of an ELF file worth searching: its string-holding sections, else all of it."""
    found = [
        (s.offset, min(s.size, len(data) - s.offset))
        for s in (elf_sections(data) if sections is None else sections)
        if s.name.startswith(_SEARCHED_SECTIONS) and 0 <= s.offset < len(data) and s.size > 0
    ]
    return sorted(found) if found else [(0, len(data))]


def needed(data: bytes, sections: Sequence[ElfSection] | None = None) -> tuple[str, ...]:
    """The shared libraries an ELF file loads (its ``DT_NEEDED`` entries); empty for a static or unreadable one."""
    if len(data) < 64 or data[4] not in (1, 2) or data[5] not in (1, 2):
        return ()
    wide, endian = data[4] == 2, "<" if data[5] == 1 else ">"
    by_name = {s.name: s for s in (elf_sections(data) if sections is None else sections)}
    dynamic, strings = by_name.get(".dynamic"), by_name.get(".dynstr")
    if dynamic is None or strings is None:
        return ()
    entry = struct.Struct(endian + ("qQ" if wide else "iI"))
    names = []
    end = min(dynamic.offset + dynamic.size, len(data))
    for at in range(dynamic.offset, end - entry.size + 1, entry.size):
        tag, value = entry.unpack_from(data, at)
        if tag == 0:  # DT_NULL ends the table
            break
        if tag == 1 and value < strings.size:  # DT_NEEDED: an offset into .dynstr
            start = strings.offset + value
            stop = data.find(b"\0", start, min(start + 256, len(data)))
            if stop > start:
                names.append(data[start:stop].decode("latin-1"))
    return tuple(names)


def chunks(data: bytes, spans: Iterable[tuple[int, int]], size: int = CHUNK, limit: int = MAX_SCAN) -> Iterator[bytes]:
    """The bytes of ``spans`` in pieces of ``size``, ``limit`` bytes in all."""
    view = memoryview(data)
    left = limit
    for offset, length in spans:
        end = offset + min(length, left)
        left -= end - offset
        for at in range(offset, end, size):
            yield bytes(view[at : min(at + size, end)])
        if left <= 0:
            return


def _first(classifier: Classifier, buf: bytes, final: bool, wanted: str | None) -> str | None:
    """The first acceptable version ``classifier`` finds in ``buf`` (a match touching its end waits, unless final)."""
    limit = len(buf) if final else len(buf) - 1

    def accept(match: re.Match[bytes] | None) -> str | None:
        if match is None or match.end() > limit:
            return None
        version = match.group("version").decode("ascii")
        return version if wanted is None or version.startswith(wanted + ".") else None

    if classifier.needle is None:
        for match in classifier.pattern.finditer(buf):
            if (version := accept(match)) is not None:
                return version
        return None
    at = buf.find(classifier.needle)
    while at >= 0:
        window = classifier.pattern.search(buf, max(0, at - WINDOW), min(len(buf), at + WINDOW))
        if (version := accept(window)) is not None:
            return version
        at = buf.find(classifier.needle, at + 1)
    return None


def classify(
    path: str, pieces: Iterable[bytes], classifiers: Sequence[Classifier] = CLASSIFIERS, libraries: Sequence[str] = ()
) -> dict[str, str]:
    """Classifier name -> version for the file at ``path`` whose searched bytes arrive as ``pieces``;
    ``libraries`` are the shared libraries the file loads (``needed``)."""
    base = path.rpartition("/")[2]
    todo: dict[str, tuple[Classifier, str | None]] = {}
    for c, names, linked in _plan(tuple(classifiers)):
        named = names is not None and names.match(base) is not None
        if linked is not None and any(linked.match(lib) for lib in libraries):
            continue
        if named or c.anywhere:
            wanted = None
            if named and c.name_version is not None and (m := c.name_version.search(base)) is not None:
                wanted = m.group(1)
            todo[c.name] = (c, wanted)
    found: dict[str, str] = {}
    carry = b""
    pending = iter(pieces)
    piece = next(pending, None)
    while piece is not None and todo:
        following = next(pending, None)
        buf = carry + piece
        for name, (classifier, wanted) in list(todo.items()):
            version = _first(classifier, buf, following is None, wanted)
            if version is not None:
                found[name] = version
                del todo[name]
        carry = buf[-2 * WINDOW :]
        piece = following
    return found


def _hash(data: bytes, into: dict[str, str]) -> None:
    """The digests package databases record of a file: dpkg's MD5, apk's SHA-1 (compared, not trusted)."""
    into["md5"] = hashlib.md5(data).hexdigest()  # noqa: S324 - what dpkg lists, compared with it
    into["sha1"] = hashlib.sha1(data).hexdigest()  # noqa: S324 - what apk lists, compared with it


def _purl(name: str, version: str) -> str:
    return PackageURL(type="generic", name=name, version=version).to_string()


class BinaryAnalyzer:
    """Version signatures of native components in ELF files; keeps a summary per ELF file, not the file."""

    name: Final = "binary"
    version: Final = 1

    def __init__(self, classifiers: Sequence[Classifier] = CLASSIFIERS) -> None:
        self._classifiers = tuple(classifiers)
        self._by_name = {c.name: c for c in self._classifiers}
        self._named = _NAMED if self._classifiers == CLASSIFIERS else _names_pattern(self._classifiers)

    def wants(self, path: str) -> bool:
        """Extension-less files, shared objects and files named like a classified program, outside data trees."""
        if path.startswith(_DATA_TREES):
            return False
        base = path.rpartition("/")[2]
        return "." not in base or _SHARED_OBJECT.search(base) is not None or self._named.match(base) is not None

    def extract(self, path: str, data: bytes) -> bytes | None:
        """For an ELF file: its classifier hits, MD5 and SHA-1, as JSON; ``None`` for anything else."""
        if not data.startswith(_ELF):
            return None
        digests: dict[str, str] = {}
        # hashlib lets go of the GIL on large buffers: a large file is hashed on the other core while the
        # classifiers (which hold it) search, as the reference pipeline ``gzip -dc | sha256sum`` uses two
        hashing = threading.Thread(target=_hash, args=(data, digests)) if len(data) >= _HASH_ASIDE else None
        if hashing is not None:
            hashing.start()
        sections = elf_sections(data)
        found = classify(path, chunks(data, regions(data, sections)), self._classifiers, needed(data, sections))
        if hashing is None:
            _hash(data, digests)
        else:
            hashing.join()
        return json.dumps({**digests, "found": found}, sort_keys=True).encode()

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """One component per (classifier, version), naming every file it was found in (sorted)."""
        paths: dict[tuple[str, str], list[str]] = {}
        for path in sorted(files):
            for name, version in summary_of(path, files[path])["found"].items():
                paths.setdefault((name, version), []).append(path)
        components = []
        for (name, version), where in sorted(paths.items()):
            classifier = self._by_name.get(name)
            if classifier is None:
                continue  # a summary from another table: only possible with a hand-edited cache entry
            components.append(
                Component(
                    type=ComponentType.GENERIC,
                    name=name,
                    version=version,
                    purl=_purl(name, version),
                    cpe=cpe23(classifier.vendor, classifier.product, version),
                    evidence=where[0],
                    files=tuple(PackageFile(p) for p in where[1:]),
                    found_by=self.name,
                    extra=(("evidence", EVIDENCE), ("classifier", name)),
                )
            )
        return components


def summary_of(path: str, summary: bytes) -> dict[str, Any]:
    """The summary ``extract`` kept for ``path``, checked; ``BinarySummaryError`` for anything else."""
    try:
        data = json.loads(summary)
        if not (
            isinstance(data, dict)
            and isinstance(data.get("md5"), str)
            and isinstance(data.get("sha1"), str)
            and isinstance(data.get("found"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in data["found"].items())
        ):
            raise ValueError("unexpected shape")
    except ValueError as e:
        raise BinarySummaryError(f"{path}: unreadable binary summary: {e}") from e
    return data
