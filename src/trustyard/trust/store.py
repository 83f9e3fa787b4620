"""SQL storage of trust metadata, the change feed and sealed server keys (SQLite and PostgreSQL).

Files are stored as the exact bytes uploaded or signed and found by (GUN, role) latest, by version and by
SHA-256: the client names snapshot, targets and delegations by the hash of their bytes, so serving anything
but those bytes would break every client. The unique (gun, role, version) constraint is the last line against
two concurrent updates writing the same version: the loser gets notary's ``VERSION`` error.

Not here: what may be written (``validation``) or signed (``service``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from trustyard.db.engine import Database
from trustyard.db.models import trust_changes, trust_files, trust_keys
from trustyard.trust.errors import VersionError

__all__ = ["Change", "SealedKey", "StoredFile", "TrustStore"]

_HEX_ALGORITHMS = {64: "sha256", 96: "sha384", 128: "sha512"}

# The statements of every read, built once with bound parameters: building a SQLAlchemy expression costs more
# than running the query on SQLite, and an update reads the stored roles and the server keys several times.
_GUN: BindParameter[str] = bindparam("gun")
_ROLE: BindParameter[str] = bindparam("role")
_LATEST = (
    select(trust_files.c.version, trust_files.c.data, trust_files.c.created_at)
    .where(trust_files.c.gun == _GUN, trust_files.c.role == _ROLE)
    .order_by(trust_files.c.version.desc())
    .limit(1)
)
_NEWEST = (
    select(trust_files.c.role, func.max(trust_files.c.version).label("version"))
    .where(trust_files.c.gun == _GUN)
    .group_by(trust_files.c.role)
    .subquery()
)
_CURRENT = select(trust_files.c.role, trust_files.c.version, trust_files.c.data, trust_files.c.created_at).join(
    _NEWEST,
    and_(
        trust_files.c.gun == _GUN,
        trust_files.c.role == _NEWEST.c.role,
        trust_files.c.version == _NEWEST.c.version,
    ),
)
_BY_VERSION = select(trust_files.c.data, trust_files.c.created_at).where(
    trust_files.c.gun == _GUN, trust_files.c.role == _ROLE, trust_files.c.version == bindparam("version")
)
_BY_ROLE = select(trust_files.c.version, trust_files.c.data, trust_files.c.created_at).where(
    trust_files.c.gun == _GUN, trust_files.c.role == _ROLE
)
_BY_SHA256 = _BY_ROLE.where(trust_files.c.sha256 == bindparam("sha256")).order_by(trust_files.c.version.desc())
_KEYS = select(trust_keys).where(trust_keys.c.gun == _GUN, trust_keys.c.role == _ROLE).order_by(trust_keys.c.id.desc())


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One stored version of a role: its bytes and when it was written."""

    role: str
    version: int
    data: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class SealedKey:
    """A server key as stored: its public Notary object (JSON text) and its sealed private half."""

    role: str
    key_id: str
    public: str
    sealed: bytes
    created_at: float


@dataclass(frozen=True, slots=True)
class Change:
    """One change-feed record."""

    id: int
    gun: str
    version: int
    sha256: str
    category: str
    created_at: float


class TrustStore:
    """Rows of ``trust_files``, ``trust_changes`` and ``trust_keys``; every method takes the caller's transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- files ---------------------------------------------------------------------------------------------
    def latest(self, conn: Connection, gun: str, role: str) -> StoredFile | None:
        """The newest version of ``role``."""
        row = conn.execute(_LATEST, {"gun": gun, "role": role}).first()
        return None if row is None else StoredFile(role, row.version, bytes(row.data), row.created_at)

    def current(self, conn: Connection, gun: str) -> dict[str, StoredFile]:
        """The newest version of every role of ``gun``."""
        rows = conn.execute(_CURRENT, {"gun": gun})
        return {r.role: StoredFile(r.role, r.version, bytes(r.data), r.created_at) for r in rows}

    def by_version(self, conn: Connection, gun: str, role: str, version: int) -> StoredFile | None:
        """Version ``version`` of ``role``."""
        row = conn.execute(_BY_VERSION, {"gun": gun, "role": role, "version": version}).first()
        return None if row is None else StoredFile(role, version, bytes(row.data), row.created_at)

    def by_checksum(self, conn: Connection, gun: str, role: str, hex_digest: str) -> StoredFile | None:
        """The version of ``role`` whose bytes hash to ``hex_digest`` (sha256 indexed; sha384/512 by scan)."""
        algorithm = _HEX_ALGORITHMS.get(len(hex_digest))
        if algorithm is None:
            return None
        if algorithm == "sha256":
            rows = conn.execute(_BY_SHA256, {"gun": gun, "role": role, "sha256": hex_digest})
        else:
            rows = conn.execute(_BY_ROLE.order_by(trust_files.c.version.desc()), {"gun": gun, "role": role})
        for row in rows:
            data = bytes(row.data)
            if hashlib.new(algorithm, data).hexdigest() == hex_digest:
                return StoredFile(role, row.version, data, row.created_at)
        return None

    def add_files(self, conn: Connection, gun: str, files: Iterable[tuple[str, int, bytes]], now: float) -> None:
        """Insert (role, version, bytes) rows; a version already stored is notary's ``VERSION`` error."""
        rows: list[dict[str, Any]] = [
            {
                "gun": gun,
                "role": role,
                "version": version,
                "sha256": hashlib.sha256(data).hexdigest(),
                "data": data,
                "created_at": now,
            }
            for role, version, data in files
        ]
        if not rows:
            return
        try:
            with conn.begin_nested():
                conn.execute(insert(trust_files), rows)
        except IntegrityError as e:
            raise VersionError("a version in this update was stored concurrently") from e

    def delete(self, conn: Connection, gun: str) -> int:
        """Forget every file and key of ``gun``; the number of files removed."""
        removed = conn.execute(delete(trust_files).where(trust_files.c.gun == gun)).rowcount
        conn.execute(delete(trust_keys).where(trust_keys.c.gun == gun))
        return int(removed or 0)

    # -- change feed ---------------------------------------------------------------------------------------
    def add_change(self, conn: Connection, gun: str, version: int, sha256: str, category: str, now: float) -> None:
        """Append one change-feed record."""
        conn.execute(
            insert(trust_changes).values(gun=gun, version=version, sha256=sha256, category=category, created_at=now)
        )

    def changes(self, conn: Connection, gun: str | None, after: int, records: int) -> list[Change]:
        """Up to ``|records|`` changes after id ``after`` (or, for negative ``records``, the ones before it)."""
        query = select(trust_changes)
        if gun is not None:
            query = query.where(trust_changes.c.gun == gun)
        if records >= 0:
            query = query.where(trust_changes.c.id > after).order_by(trust_changes.c.id).limit(records)
        else:
            if after > 0:
                query = query.where(trust_changes.c.id < after)
            query = query.order_by(trust_changes.c.id.desc()).limit(-records)
        out = [Change(r.id, r.gun, r.version, r.sha256, r.category, r.created_at) for r in conn.execute(query)]
        return sorted(out, key=lambda c: c.id)

    # -- keys ----------------------------------------------------------------------------------------------
    def keys(self, conn: Connection, gun: str, role: str) -> list[SealedKey]:
        """The server keys held for ``role`` of ``gun``, newest first."""
        rows = conn.execute(_KEYS, {"gun": gun, "role": role})
        return [SealedKey(r.role, r.key_id, r.public, bytes(r.sealed), r.created_at) for r in rows]

    def add_key(self, conn: Connection, gun: str, key: SealedKey) -> None:
        """Store a new sealed server key."""
        conn.execute(
            insert(trust_keys).values(
                gun=gun,
                role=key.role,
                key_id=key.key_id,
                public=key.public,
                sealed=key.sealed,
                created_at=key.created_at,
            )
        )
