"""The local vulnerability store: every imported advisory in one SQLite file, indexed by (ecosystem, package).

One file (default ``<data dir>/vulndb.sqlite``), WAL journal so that scans read while an import writes, the
schema version in ``meta`` (a store written by a newer trustyard is refused, not misread). Tables:
- ``advisories``: one row per (source, id): aliases, summary, details, severity vectors, times, the record as
  published (``raw``) and its SHA-256 (``digest``), and the provenance row that last wrote it;
- ``aliases``: alias -> advisory, so that one vulnerability known by several ids is one finding;
- ``affected``: one row per affected package entry: (ecosystem, name) indexed, ranges and versions as JSON;
- ``provenance``: one row per source per import: where from, the data's own time, when imported, counts.

Imports are incremental and atomic. An advisory whose ``modified`` time is not newer than the stored one
changes nothing (older data never replaces newer); records without a usable time (Alpine and Debian data,
Go's ``0001-01-01`` placeholder) are compared by digest instead. Each import is one transaction: a malformed
record anywhere leaves the store exactly as it was. The import names the advisories it added and changed,
which is what a re-check of stored inventories needs.

Not here: deleting advisories that vanished from a source (osv.dev marks them ``withdrawn`` instead, which
is stored), downloading (``trustyard.cli.db``), matching (the matcher queries ``affected_by_package``).
Plain ``sqlite3`` rather than SQLAlchemy: one embedded file with a fixed schema, read by one process at a
time per import, is what the standard library does best; the registry's metadata database is a separate one.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trustyard.config import Settings
from trustyard.scan.vulndb.errors import StoreError, VulnDbError
from trustyard.scan.vulndb.model import Advisory, Affected, Event, EventKind, Range, Severity, Status

SCHEMA_VERSION = 1
FILENAME = "vulndb.sqlite"
STORE_ID_KEY = "store_id"
"""``meta`` key of a random id given to a store when it is created; a copy (``db push``/``db pull``) keeps it."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS provenance (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    location TEXT NOT NULL,
    data_time TEXT,
    imported_at TEXT NOT NULL,
    records INTEGER NOT NULL DEFAULT 0,
    added INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    older INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS advisories (
    pk INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    aliases TEXT NOT NULL,
    summary TEXT NOT NULL,
    details TEXT NOT NULL,
    severity TEXT NOT NULL,
    published TEXT,
    modified TEXT,
    withdrawn TEXT,
    digest TEXT NOT NULL,
    raw BLOB NOT NULL,
    provenance INTEGER NOT NULL REFERENCES provenance (id),
    UNIQUE (source, id)
);
CREATE TABLE IF NOT EXISTS aliases (
    alias TEXT NOT NULL,
    advisory INTEGER NOT NULL REFERENCES advisories (pk) ON DELETE CASCADE,
    PRIMARY KEY (alias, advisory)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS affected (
    advisory INTEGER NOT NULL REFERENCES advisories (pk) ON DELETE CASCADE,
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    package TEXT NOT NULL,
    purl TEXT,
    status TEXT,
    ranges TEXT NOT NULL,
    versions TEXT NOT NULL,
    severity TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_package ON affected (ecosystem, name);
CREATE INDEX IF NOT EXISTS affected_advisory ON affected (advisory);
CREATE INDEX IF NOT EXISTS aliases_advisory ON aliases (advisory);
"""

# A time before this is a placeholder (Go's vulndb writes 0001-01-01 until it deploys), not a time.
_NO_TIME_BEFORE = "1970"


def default_path(data_dir: Path) -> Path:
    """Where the store lives in a data dir."""
    return data_dir / FILENAME


def configured_path(settings: Settings) -> Path:
    """The store the settings name: ``vulndb_path``, else the data dir's; the registry and the CLI share it."""
    return settings.vulndb_path or default_path(settings.data_dir)


def store_identity(path: Path) -> str | None:
    """The id of the store at ``path`` read without opening it for writing; ``None`` without a store or an id."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (STORE_ID_KEY,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def package_key(ecosystem: str, name: str) -> str:
    """The name under which a package is indexed: PyPI names normalised as PEP 503 says, others as given."""
    if ecosystem.split(":", 1)[0] == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _timed(value: str | None) -> bool:
    return value is not None and value >= _NO_TIME_BEFORE


@dataclass(frozen=True, slots=True)
class ImportItem:
    """What an import stores: an advisory of a feed, or (``advisory`` None) just the fact that a feed was read.

    ``time`` is the time of the document it came from, the data's age when the records carry no times;
    ``location`` where it came from, when one import reads several places (``db update``).
    """

    source: str
    advisory: Advisory | None
    time: str | None = None
    location: str | None = None


@dataclass(slots=True)
class FeedReport:
    """What one import did to one source (feed): ids added and changed, counts of the rest."""

    source: str
    location: str
    data_time: str | None = None
    records: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    older: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape ``trustyard db import --json`` prints."""
        return {
            "source": self.source,
            "location": self.location,
            "data_time": self.data_time,
            "records": self.records,
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "older": self.older,
        }


@dataclass(slots=True)
class ImportReport:
    """What one import did, per source; ``skipped`` lists files of a directory in no known format."""

    feeds: dict[str, FeedReport] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def added(self) -> list[tuple[str, str]]:
        """(source, id) of every advisory the import added."""
        return [(f.source, i) for f in self.feeds.values() for i in f.added]

    @property
    def changed(self) -> list[tuple[str, str]]:
        """(source, id) of every advisory the import replaced with a newer version."""
        return [(f.source, i) for f in self.feeds.values() for i in f.changed]

    @property
    def records(self) -> int:
        """How many advisory records the import read."""
        return sum(f.records for f in self.feeds.values())

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape ``trustyard db import --json`` prints."""
        return {"feeds": [f.as_dict() for f in self.feeds.values()], "skipped": self.skipped}


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """One source in the store: how many advisories and package entries, and its latest import."""

    source: str
    advisories: int
    withdrawn: int
    affected: int
    location: str
    data_time: str | None
    imported_at: str


@dataclass(frozen=True, slots=True)
class StoredAffected:
    """An affected-package entry as the matcher needs it: which advisory, and the entry itself."""

    source: str
    advisory_id: str
    withdrawn: bool
    affected: Affected


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _ranges_json(ranges: tuple[Range, ...]) -> str:
    return _json(
        [
            {
                "type": r.type,
                **({"repo": r.repo} if r.repo else {}),
                "events": [{e.kind.value: e.version} for e in r.events],
            }
            for r in ranges
        ]
    )


def _severity_json(items: tuple[Severity, ...]) -> str:
    return _json([{"type": s.type, "score": s.score} for s in items])


def _ranges_from(text: str) -> tuple[Range, ...]:
    out = []
    for r in json.loads(text):
        events = tuple(Event(EventKind(k), v) for e in r["events"] for k, v in e.items())
        out.append(Range(r["type"], events, r.get("repo")))
    return tuple(out)


class VulnerabilityStore:
    """The store file, opened (and created or upgraded) on construction; close it, or use it as a context."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.memo: dict[object, object] = {}
        """Derived data callers compute from this store (the matcher's hits), emptied by every import here."""
        if not create and not path.exists():
            raise StoreError(f"{path}: no vulnerability store here (run `trustyard db import` first)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"{path}: cannot open the vulnerability store: {e}") from e
        try:
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
            self._identify()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StoreError(f"{path}: not a trustyard vulnerability store: {e}") from e

    def _migrate(self) -> None:
        has_meta = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if has_meta:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this trustyard's ({SCHEMA_VERSION}); upgrade"
                )
            if version == SCHEMA_VERSION:
                return
        elif self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(f"{self.path}: an SQLite file, but not a trustyard vulnerability store")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):  # executescript would commit first: keep it one transaction
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._db.execute("ROLLBACK")
            raise

    def _identify(self) -> None:
        """Give the store its id if it has none (stores from before ids get one on their next open)."""
        if self._db.execute("SELECT 1 FROM meta WHERE key = ?", (STORE_ID_KEY,)).fetchone() is None:
            self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (STORE_ID_KEY, uuid.uuid4().hex))

    @property
    def identity(self) -> str:
        """The store's id: the same for every copy of it, different for a store built elsewhere."""
        return str(self._db.execute("SELECT value FROM meta WHERE key = ?", (STORE_ID_KEY,)).fetchone()[0])

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the file."""
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def close(self) -> None:
        """Close the file (a WAL checkpoint happens on the last close)."""
        self._db.close()

    def __enter__(self) -> VulnerabilityStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- import -----------------------------------------------------------------------------------------

    def import_advisories(
        self, items: Iterable[ImportItem], *, location: str, report: ImportReport | None = None
    ) -> ImportReport:
        """Store advisories, and record every feed read, even one without advisories, with its data's time.

        One transaction: any exception while ``items`` is consumed (a malformed record further on) rolls the
        whole import back and propagates. ``report`` may be passed to collect notes gathered by the caller.
        """
        report = report if report is not None else ImportReport()
        provenance: dict[str, int] = {}
        doc_times: dict[str, str] = {}
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StoreError(f"{self.path}: cannot start an import: {e}") from e
        try:
            for item in items:
                feed = report.feeds.get(item.source)
                if feed is None:
                    where = item.location or location
                    feed = report.feeds[item.source] = FeedReport(item.source, where)
                    provenance[item.source] = (
                        self._db.execute(
                            "INSERT INTO provenance (source, location, imported_at) VALUES (?, ?, ?)",
                            (item.source, where, _now()),
                        ).lastrowid
                        or 0
                    )
                if item.time and item.time > doc_times.get(item.source, ""):
                    doc_times[item.source] = item.time
                advisory = item.advisory
                if advisory is None:
                    continue
                if advisory.source != item.source:
                    raise VulnDbError(f"advisory {advisory.id} of source {advisory.source} filed under {item.source}")
                modified = advisory.modified
                if modified is not None and _timed(modified) and (feed.data_time is None or modified > feed.data_time):
                    feed.data_time = modified
                feed.records += 1
                self._store_one(advisory, feed, provenance[item.source])
            for source, feed in report.feeds.items():
                if feed.data_time is None:
                    feed.data_time = doc_times.get(source)
                self._db.execute(
                    "UPDATE provenance SET data_time = ?, records = ?, added = ?, changed = ?, unchanged = ?, older = ?"
                    " WHERE id = ?",
                    (
                        feed.data_time,
                        feed.records,
                        len(feed.added),
                        len(feed.changed),
                        feed.unchanged,
                        feed.older,
                        provenance[source],
                    ),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self.memo.clear()
        return report

    def _store_one(self, advisory: Advisory, feed: FeedReport, provenance: int) -> None:
        digest = hashlib.sha256(advisory.raw).hexdigest()
        row = self._db.execute(
            "SELECT pk, modified, digest FROM advisories WHERE source = ? AND id = ?", (advisory.source, advisory.id)
        ).fetchone()
        values = (
            _json(list(advisory.aliases)),
            advisory.summary,
            advisory.details,
            _severity_json(advisory.severity),
            advisory.published,
            advisory.modified,
            advisory.withdrawn,
            digest,
            advisory.raw,
            provenance,
        )
        if row is None:
            pk = self._db.execute(
                "INSERT INTO advisories (aliases, summary, details, severity, published, modified, withdrawn, digest,"
                " raw, provenance, source, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, advisory.source, advisory.id),
            ).lastrowid
            feed.added.append(advisory.id)
        else:
            pk, stored_modified, stored_digest = row
            if _timed(advisory.modified) and _timed(stored_modified):
                if advisory.modified is not None and advisory.modified <= stored_modified:
                    if stored_digest == digest:
                        feed.unchanged += 1
                    else:
                        feed.older += 1
                    return
            elif stored_digest == digest:
                feed.unchanged += 1
                return
            self._db.execute(
                "UPDATE advisories SET aliases = ?, summary = ?, details = ?, severity = ?, published = ?,"
                " modified = ?, withdrawn = ?, digest = ?, raw = ?, provenance = ? WHERE pk = ?",
                (*values, pk),
            )
            self._db.execute("DELETE FROM affected WHERE advisory = ?", (pk,))
            self._db.execute("DELETE FROM aliases WHERE advisory = ?", (pk,))
            feed.changed.append(advisory.id)
        self._db.executemany(
            "INSERT OR IGNORE INTO aliases (alias, advisory) VALUES (?, ?)", [(a, pk) for a in advisory.aliases]
        )
        self._db.executemany(
            "INSERT INTO affected (advisory, ecosystem, name, package, purl, status, ranges, versions, severity)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    pk,
                    a.ecosystem,
                    package_key(a.ecosystem, a.name),
                    a.name,
                    a.purl,
                    a.status.value if a.status else None,
                    _ranges_json(a.ranges),
                    _json(list(a.versions)),
                    _severity_json(a.severity),
                )
                for a in advisory.affected
            ],
        )

    # --- state of downloads (db update): HTTP validators, the NVD's last fetch, what each update did ---------

    def get_meta(self, key: str) -> str | None:
        """A value ``db update`` remembered (``http:<url>``, ``update:<feed>``, ...), or ``None``."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, str]) -> None:
        """Remember several values in one transaction (written after the import they describe committed)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StoreError(f"{self.path}: cannot record the update state: {e}") from e

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every remembered value whose key starts with ``prefix``."""
        rows = self._db.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))
        return {str(k): str(v) for k, v in rows}

    # --- queries ----------------------------------------------------------------------------------------

    def affected_by_package(self, ecosystem: str, name: str) -> list[StoredAffected]:
        """Every stored entry naming this package in this ecosystem (``Debian:12``, ``PyPI``), any source."""
        rows = self._db.execute(
            "SELECT a.source, a.id, a.withdrawn, f.ecosystem, f.package, f.purl, f.status, f.ranges, f.versions,"
            " f.severity FROM affected f JOIN advisories a ON a.pk = f.advisory"
            " WHERE f.ecosystem = ? AND f.name = ? ORDER BY a.source, a.id",
            (ecosystem, package_key(ecosystem, name)),
        ).fetchall()
        return [
            StoredAffected(
                source=src,
                advisory_id=aid,
                withdrawn=withdrawn is not None,
                affected=Affected(
                    ecosystem=eco,
                    name=pkg,
                    purl=purl,
                    status=Status(status) if status else None,
                    ranges=_ranges_from(ranges),
                    versions=tuple(json.loads(versions)),
                    severity=tuple(Severity(s["type"], s["score"]) for s in json.loads(severity)),
                ),
            )
            for src, aid, withdrawn, eco, pkg, purl, status, ranges, versions, severity in rows
        ]

    def advisory(self, source: str, advisory_id: str) -> Advisory | None:
        """The stored advisory without its affected entries (``affected_by_package`` has those), or ``None``."""
        row = self._db.execute(
            "SELECT aliases, summary, details, severity, published, modified, withdrawn, raw FROM advisories"
            " WHERE source = ? AND id = ?",
            (source, advisory_id),
        ).fetchone()
        if row is None:
            return None
        aliases, summary, details, severity, published, modified, withdrawn, raw = row
        return Advisory(
            source=source,
            id=advisory_id,
            raw=bytes(raw),
            aliases=tuple(json.loads(aliases)),
            summary=summary,
            details=details,
            severity=tuple(Severity(s["type"], s["score"]) for s in json.loads(severity)),
            published=published,
            modified=modified,
            withdrawn=withdrawn,
        )

    def has_ecosystem(self, ecosystem: str) -> bool:
        """Whether any stored entry is in ``ecosystem``: a scan warns when a distribution has no data at all."""
        row = self._db.execute("SELECT 1 FROM affected WHERE ecosystem = ? LIMIT 1", (ecosystem,)).fetchone()
        return row is not None

    def raw(self, source: str, advisory_id: str) -> bytes | None:
        """The record as published, or ``None`` if the store does not hold it."""
        row = self._db.execute(
            "SELECT raw FROM advisories WHERE source = ? AND id = ?", (source, advisory_id)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def counts(self) -> dict[str, int]:
        """Rows per table: advisories, affected entries, aliases, provenance records."""
        return {
            table: self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
            for table in ("advisories", "affected", "aliases", "provenance")
        }

    def sources(self) -> list[SourceStatus]:
        """Each source in the store with its counts and its latest import."""
        rows = self._db.execute(
            "SELECT p.source, p.location, p.data_time, p.imported_at,"
            " (SELECT count(*) FROM advisories a WHERE a.source = p.source),"
            " (SELECT count(*) FROM advisories a WHERE a.source = p.source AND a.withdrawn IS NOT NULL),"
            " (SELECT count(*) FROM affected f JOIN advisories a ON a.pk = f.advisory WHERE a.source = p.source)"
            " FROM provenance p WHERE p.id = (SELECT max(id) FROM provenance q WHERE q.source = p.source)"
            " ORDER BY p.source"
        ).fetchall()
        return [
            SourceStatus(source=s, location=loc, data_time=dt, imported_at=at, advisories=n, withdrawn=w, affected=f)
            for s, loc, dt, at, n, w, f in rows
        ]

    def export(self, source: str | None = None) -> Iterator[dict[str, Any]]:
        """Every advisory as a JSON-ready dict (source, id, times, and the record as published), by source and id."""
        query = "SELECT source, id, published, modified, withdrawn, raw FROM advisories"
        params: tuple[str, ...] = ()
        if source is not None:
            query += " WHERE source = ?"
            params = (source,)
        for src, aid, published, modified, withdrawn, raw in self._db.execute(query + " ORDER BY source, id", params):
            try:
                record = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise VulnDbError(f"{self.path}: advisory {src}/{aid} holds undecodable data: {e}") from e
            yield {
                "source": src,
                "id": aid,
                "published": published,
                "modified": modified,
                "withdrawn": withdrawn,
                "record": record,
            }
