"""Advisory data on disk as a stream of JSON documents: a ``.json`` file, a ``.zip`` of them, or a directory.

osv.dev publishes one zip per ecosystem with one JSON file per advisory (tens of thousands of members for
the big ecosystems); the Debian tracker and Alpine's secdb publish one JSON file each. ``open_input`` hides
the container: zip members are read one at a time (never the whole archive into memory), directories are
walked in name order (so imports are reproducible). Each member or file is limited in size
(``max_document_bytes``): a zip bomb or a wrong file ends in a ``SourceFormatError``, not in exhausted memory.

What a document means is the sources' business (``sources/``); this module only reads bytes and JSON.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trustyard.scan.vulndb.errors import SourceFormatError, VulnDbError
from trustyard.scan.vulndb.sources.base import Document

DEFAULT_MAX_DOCUMENT_BYTES = 512 * 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"


def _decode(origin: str, raw: bytes, time: str | None) -> Document:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceFormatError(origin, f"not JSON: {e}") from e
    return Document(origin=origin, raw=raw, data=data, time=time)


def _mtime(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class _Entry:
    """One file to read: a JSON file, or a zip whose ``.json`` members are the documents."""

    path: Path
    is_zip: bool


class Input:
    """The documents under one path, countable up front (for a progress bar) and iterated once."""

    def __init__(self, path: Path, *, max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> None:
        self.path = path
        self.max_document_bytes = max_document_bytes
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".zip"))
            self._entries = [_Entry(p, p.suffix.lower() == ".zip") for p in files]
        elif path.is_file():
            self._entries = [_Entry(path, _is_zip(path))]
        else:
            raise VulnDbError(f"{path}: no such file or directory")

    @property
    def locations(self) -> list[str]:
        """The files this input reads (provenance records each)."""
        return [str(e.path) for e in self._entries]

    def count(self) -> int:
        """How many documents iterating will yield (zip members named ``*.json`` plus plain files)."""
        total = 0
        for entry in self._entries:
            if entry.is_zip:
                with _open_zip(entry.path) as zf:
                    total += sum(1 for i in zf.infolist() if _is_json_member(i))
            else:
                total += 1
        return total

    def documents(self) -> Iterator[Document]:
        """Every document, in order; ``SourceFormatError`` for unreadable zips, oversized members, bad JSON."""
        for entry in self._entries:
            if entry.is_zip:
                yield from self._zip_documents(entry.path)
            else:
                size = entry.path.stat().st_size
                if size > self.max_document_bytes:
                    raise SourceFormatError(
                        str(entry.path), f"{size} bytes is over the limit of {self.max_document_bytes}"
                    )
                yield _decode(str(entry.path), entry.path.read_bytes(), _mtime(entry.path))

    def _zip_documents(self, path: Path) -> Iterator[Document]:
        with _open_zip(path) as zf:
            for info in zf.infolist():
                if not _is_json_member(info):
                    continue
                origin = f"{path}!{info.filename}"
                if info.file_size > self.max_document_bytes:
                    raise SourceFormatError(
                        origin, f"{info.file_size} bytes is over the limit of {self.max_document_bytes}"
                    )
                try:
                    with zf.open(info) as member:
                        raw = member.read(self.max_document_bytes + 1)
                except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as e:
                    raise SourceFormatError(origin, f"cannot read the zip member: {e}") from e
                if len(raw) > self.max_document_bytes:
                    raise SourceFormatError(origin, f"expands beyond the limit of {self.max_document_bytes} bytes")
                time = _zip_time(info)
                yield _decode(origin, raw, time)


def _is_zip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == _ZIP_MAGIC


def _is_json_member(info: zipfile.ZipInfo) -> bool:
    return not info.is_dir() and info.filename.lower().endswith(".json")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise SourceFormatError(str(path), f"not a readable zip archive: {e}") from e


def _zip_time(info: zipfile.ZipInfo) -> str | None:
    try:
        return datetime(*info.date_time, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return None
