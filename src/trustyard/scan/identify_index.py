"""The file-hash index: the SHA-256 of every file a package database said was a package's, checked, kept.

Filled as images are indexed: for each package whose database records a digest per file (dpkg's md5sums,
apk's SHA-1 checksums, rpm's file digests, a wheel's RECORD), each listed file that is a regular file of the
image is compared with that digest computed *from the file's bytes as the layer streamed* (the walker's
SHA-256 of every file; the MD5 and SHA-1 the binary analyzer keeps of every ELF file). Only a file whose
bytes match what the package recorded is indexed, under the SHA-256 of those bytes: an entry in a database
is a claim, and a file an upper layer replaced (a patched or trojaned binary) does not match it. Empty
files are never indexed (every package has some, and they are all the same file).

Then a file of any later image whose SHA-256 is in the index, and which no package database of *that*
image owns, is reported as the package it came from (``scan/identify.py``), even renamed and in an image
with no database at all.

Storage: one SQLite file beside the layer cache (``<cache>/file-index.sqlite``), a row per (digest,
package identity), WAL and a busy timeout so that the CLI and the registry's workers share it; a connection
per call, so one ``SqliteFileIndex`` serves many threads. The identity is the package's canonical JSON
(ecosystem, name, version, arch, purl, CPE, source package, licenses): the same file shipped by two packages
(or two versions) has two rows, and both are reported. Packages are stored as they were found, less where
and how (no evidence, files, layer, analyzer).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Collection, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from trustyard.scan.cache import decode_component, encode_component
from trustyard.scan.model import Component

_log = logging.getLogger(__name__)

FILE_NAME: Final = "file-index.sqlite"
_BATCH: Final = 500
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS package_files (
    sha256 TEXT NOT NULL,
    identity TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (sha256, identity)
) WITHOUT ROWID
"""


@dataclass(frozen=True, slots=True)
class KnownFile:
    """A file the index knows: the package it belongs to (a component without files or layer) and its path there."""

    package: Component
    path: str


class FileIndex(Protocol):
    """Where verified (SHA-256 -> package) facts are kept."""

    def learn(self, files: Iterable[tuple[str, Component, str]]) -> int:
        """Record ``(sha256, package, path)`` facts; returns how many were new."""
        ...

    def lookup(self, digests: Collection[str]) -> dict[str, list[KnownFile]]:
        """The known packages of each digest in ``digests`` that the index holds."""
        ...


def identity(package: Component) -> str:
    """The canonical JSON of a package as the index keeps it (``cache.encode_component``, keys sorted)."""
    return json.dumps(encode_component(package), sort_keys=True, separators=(",", ":"))


def _package(text: str) -> Component:
    return decode_component(json.loads(text))


class SqliteFileIndex:
    """The index in one SQLite file (created, with its folder, on first use)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = sqlite3.connect(self._path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(_SCHEMA)
        return db

    def learn(self, files: Iterable[tuple[str, Component, str]]) -> int:
        """Insert the facts not yet known (one transaction); a database error is logged, never raised."""
        rows = [(sha256, identity(package), path) for sha256, package, path in files]
        if not rows:
            return 0
        try:
            with closing(self._connect()) as db, db:
                before = db.total_changes
                db.executemany("INSERT OR IGNORE INTO package_files (sha256, identity, path) VALUES (?, ?, ?)", rows)
                return db.total_changes - before
        except (sqlite3.Error, OSError) as e:
            _log.warning("file-hash index %s: cannot record %d files (%s)", self._path, len(rows), e)
            return 0

    def lookup(self, digests: Collection[str]) -> dict[str, list[KnownFile]]:
        """Known packages by digest; an unreadable index is logged and answers nothing."""
        found: dict[str, list[KnownFile]] = {}
        wanted = sorted(set(digests))
        if not wanted or not self._path.exists():
            return found
        try:
            # read-only, no schema or journal set-up: this runs on every analysis, a cached one included
            with closing(sqlite3.connect(f"{self._path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)) as db:
                for start in range(0, len(wanted), _BATCH):
                    batch = wanted[start : start + _BATCH]
                    marks = ",".join("?" * len(batch))
                    query = f"SELECT sha256, identity, path FROM package_files WHERE sha256 IN ({marks}) ORDER BY 1, 2"  # noqa: S608 - placeholders only
                    for sha256, text, path in db.execute(query, batch):
                        found.setdefault(sha256, []).append(KnownFile(_package(text), path))
        except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as e:
            _log.warning("file-hash index %s: unreadable (%s); no file is identified by hash", self._path, e)
            return {}
        return found
