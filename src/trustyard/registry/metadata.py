"""The registry's metadata: repositories, blob links, manifests, tags and uploads, in SQL.

Every function here is one query or one short transaction; the rules (what may be pushed, what a
reference means) live in ``service.py``. SQLite and PostgreSQL share every statement; upserts use each
dialect's ``ON CONFLICT``. Write paths that must not race garbage collection ``touch`` the blob rows they
rely on (``UPDATE blobs SET last_used``), which takes the row lock GC needs to delete them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from trustyard.db.engine import Database
from trustyard.db.models import (
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    uploads,
)

# Hot-path reads, written once as plain SQL with ``?`` placeholders (see ``Database.fetch_one``).
_RESOLVE_TAG = (
    "SELECT m.digest, m.media_type, m.size FROM repositories r"
    " JOIN tags t ON t.repository_id = r.id"
    " JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest"
    " WHERE r.name = ? AND t.name = ?"
)
_GET_MANIFEST = (
    "SELECT m.digest, m.media_type, m.size FROM repositories r"
    " JOIN manifests m ON m.repository_id = r.id WHERE r.name = ? AND m.digest = ?"
)
_BLOB_SIZE = (
    "SELECT b.size, b.last_used FROM repositories r"
    " JOIN repository_blobs rb ON rb.repository_id = r.id"
    " JOIN blobs b ON b.digest = rb.digest WHERE r.name = ? AND rb.digest = ?"
)

TOUCH_INTERVAL = 10.0
"""A blob's ``last_used`` is refreshed by reads at most this often (seconds); writes always refresh it."""


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    """What the database knows of a manifest in a repository."""

    digest: str
    media_type: str
    size: int


@dataclass(frozen=True, slots=True)
class ReferrerRecord:
    """A manifest whose subject is a given digest."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class NewManifest:
    """Everything ``put_manifest`` records about a pushed manifest."""

    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    subject: str | None
    annotations: dict[str, str]
    blob_digests: frozenset[str]
    child_digests: frozenset[str]


class MissingReferencesError(Exception):
    """Internal signal: some blobs or child manifests named by a manifest are not in the repository."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(", ".join(missing))
        self.missing = list(missing)


class MetadataStore:
    """SQL metadata over a ``Database``; thread-safe (one connection per call)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._repo_ids: dict[str, int] = {}

    # -- helpers -------------------------------------------------------------------------------------------

    def _insert(self, table: Any) -> Any:
        return sqlite.insert(table) if self.db.is_sqlite else postgresql.insert(table)

    def _repo_id(self, conn: Connection, name: str) -> int | None:
        cached = self._repo_ids.get(name)
        if cached is not None:
            return cached
        rid = conn.execute(select(repositories.c.id).where(repositories.c.name == name)).scalar()
        if rid is not None:
            self._repo_ids[name] = rid
        return rid

    def _ensure_repo(self, conn: Connection, name: str) -> int:
        rid = self._repo_id(conn, name)
        if rid is not None:
            return rid
        conn.execute(
            self._insert(repositories)
            .values(name=name, created_at=time.time())
            .on_conflict_do_nothing(index_elements=["name"])
        )
        rid = conn.execute(select(repositories.c.id).where(repositories.c.name == name)).scalar_one()
        return int(rid)

    # -- repositories --------------------------------------------------------------------------------------

    def repository_exists(self, name: str) -> bool:
        """Whether the repository has ever held anything."""
        with self.db.read() as conn:
            return self._repo_id(conn, name) is not None

    def _lexical(self, column: ColumnElement[str]) -> ColumnElement[str]:
        """``column`` compared and sorted byte by byte, as the distribution spec's "lexical" order means.

        SQLite's default (BINARY) already is; a PostgreSQL database collates by its locale (``en_US``
        sorts ``a < B < b`` and puts ``_`` first), so the order is pinned with ``COLLATE "C"``.
        """
        return column if self.db.is_sqlite else column.collate("C")

    def catalog(self, limit: int | None, last: str | None) -> list[str]:
        """Repository names holding at least one manifest, sorted, after ``last``."""
        key = self._lexical(repositories.c.name)
        q = (
            select(repositories.c.name)
            .where(exists().where(manifests.c.repository_id == repositories.c.id))
            .order_by(key)
        )
        if last:
            q = q.where(key > last)
        if limit is not None:
            q = q.limit(limit)
        with self.db.read() as conn:
            return [r[0] for r in conn.execute(q)]

    # -- blobs ---------------------------------------------------------------------------------------------

    def blob_size(self, name: str, digest: str) -> tuple[int, bool] | None:
        """Size of a blob linked to the repository and whether its ``last_used`` is stale, else ``None``."""
        row = self.db.fetch_one(_BLOB_SIZE, (name, digest))
        if row is None:
            return None
        return int(row[0]), float(row[1]) < time.time() - TOUCH_INTERVAL

    def touch_blob(self, digest: str) -> None:
        """Mark a blob as in use now (it will not be collected within the grace period)."""
        with self.db.write() as conn:
            conn.execute(update(blobs).where(blobs.c.digest == digest).values(last_used=time.time()))

    def blob_exists_anywhere(self, digest: str) -> int | None:
        """The size of a blob held in any repository (for manifests stored as blobs)."""
        with self.db.read() as conn:
            size = conn.execute(select(blobs.c.size).where(blobs.c.digest == digest)).scalar()
        return None if size is None else int(size)

    def record_blob(self, conn: Connection, name: str, digest: str, size: int) -> None:
        """Inside a write transaction: make sure the blob row exists (touched) and is linked to ``name``."""
        now = time.time()
        rid = self._ensure_repo(conn, name)
        conn.execute(
            self._insert(blobs)
            .values(digest=digest, size=size, created_at=now, last_used=now)
            .on_conflict_do_update(index_elements=["digest"], set_={"last_used": now})
        )
        conn.execute(
            self._insert(repository_blobs)
            .values(repository_id=rid, digest=digest, created_at=now)
            .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
        )

    def mount_blob(self, name: str, digest: str, source: str) -> int | None:
        """Link a blob of repository ``source`` into ``name``; its size, or ``None`` if ``source`` lacks it.

        The blob row is touched first (taking its lock), so garbage collection cannot delete it between
        the check and the link.
        """
        now = time.time()
        with self.db.write() as conn:
            src = self._repo_id(conn, source)
            if src is None:
                return None
            size = conn.execute(
                update(blobs).where(blobs.c.digest == digest).values(last_used=now).returning(blobs.c.size)
            ).scalar()
            if size is None:
                return None
            linked = conn.execute(
                select(repository_blobs.c.digest).where(
                    repository_blobs.c.repository_id == src, repository_blobs.c.digest == digest
                )
            ).first()
            if linked is None:
                return None
            rid = self._ensure_repo(conn, name)
            conn.execute(
                self._insert(repository_blobs)
                .values(repository_id=rid, digest=digest, created_at=now)
                .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
            )
            return int(size)

    def unlink_blob(self, name: str, digest: str) -> bool:
        """Remove a blob from a repository (the content stays for other repositories until GC)."""
        with self.db.write() as conn:
            rid = self._repo_id(conn, name)
            if rid is None:
                return False
            result = conn.execute(
                delete(repository_blobs).where(
                    repository_blobs.c.repository_id == rid, repository_blobs.c.digest == digest
                )
            )
            return bool(result.rowcount)

    # -- uploads -------------------------------------------------------------------------------------------

    def create_upload(self, name: str, upload_id: str) -> None:
        """Record a new upload session for a repository."""
        with self.db.write() as conn:
            rid = self._ensure_repo(conn, name)
            conn.execute(uploads.insert().values(id=upload_id, repository_id=rid, created_at=time.time()))

    def upload_exists(self, name: str, upload_id: str) -> bool:
        """Whether the upload session belongs to the repository."""
        q = (
            select(uploads.c.id)
            .join(repositories, repositories.c.id == uploads.c.repository_id)
            .where(uploads.c.id == upload_id, repositories.c.name == name)
        )
        with self.db.read() as conn:
            return conn.execute(q).first() is not None

    def delete_upload(self, conn: Connection, upload_id: str) -> None:
        """Inside a write transaction: forget an upload session."""
        conn.execute(delete(uploads).where(uploads.c.id == upload_id))

    def expired_uploads(self, before: float) -> list[str]:
        """Upload sessions created before ``before``."""
        with self.db.read() as conn:
            return [r[0] for r in conn.execute(select(uploads.c.id).where(uploads.c.created_at < before))]

    def all_upload_ids(self) -> set[str]:
        """Every recorded upload session."""
        with self.db.read() as conn:
            return {r[0] for r in conn.execute(select(uploads.c.id))}

    # -- manifests and tags --------------------------------------------------------------------------------

    def resolve_tag(self, name: str, tag: str) -> ManifestRecord | None:
        """The manifest a tag points to (a hot path: one lean query)."""
        row = self.db.fetch_one(_RESOLVE_TAG, (name, tag))
        return None if row is None else ManifestRecord(str(row[0]), str(row[1]), int(row[2]))

    def get_manifest(self, name: str, digest: str) -> ManifestRecord | None:
        """A manifest of the repository by digest (a hot path: one lean query)."""
        row = self.db.fetch_one(_GET_MANIFEST, (name, digest))
        return None if row is None else ManifestRecord(str(row[0]), str(row[1]), int(row[2]))

    def put_manifest(
        self, name: str, m: NewManifest, tag_names: Iterable[str], write_content: Callable[[], None]
    ) -> None:
        """Record a manifest, its references and tags, atomically.

        Raises ``MissingReferencesError`` (and changes nothing) when a blob or child manifest is not in the
        repository. The blob rows it relies on are touched, which serialises with garbage collection;
        ``write_content`` stores the manifest's bytes once its own blob row is locked, so a collection
        running at the same moment cannot delete the file under a row that names it.
        """
        now = time.time()
        with self.db.write() as conn:
            rid = self._ensure_repo(conn, name)
            missing: list[str] = []
            if m.blob_digests:
                linked = {
                    r[0]
                    for r in conn.execute(
                        select(repository_blobs.c.digest).where(
                            repository_blobs.c.repository_id == rid,
                            repository_blobs.c.digest.in_(m.blob_digests),
                        )
                    )
                }
                missing += sorted(m.blob_digests - linked)
            if m.child_digests:
                # share-locked: untagged-manifest collection locks a manifest row before it checks
                present = {
                    r[0]
                    for r in conn.execute(
                        select(manifests.c.digest)
                        .where(manifests.c.repository_id == rid, manifests.c.digest.in_(m.child_digests))
                        .order_by(manifests.c.digest)
                        .with_for_update(read=True, key_share=True)
                    )
                }
                missing += sorted(m.child_digests - present)
            referenced = m.blob_digests | m.child_digests
            if not missing:
                # lock the blob rows this push relies on, its own too, in digest order (as the collector does,
                # so neither deadlocks on the other), then touch them
                locked = conn.execute(
                    select(blobs.c.digest)
                    .where(blobs.c.digest.in_(referenced | {m.digest}))
                    .order_by(blobs.c.digest)
                    .with_for_update(key_share=True)
                ).scalars()
                missing += sorted(referenced - set(locked))
                if referenced and not missing:
                    conn.execute(update(blobs).where(blobs.c.digest.in_(referenced)).values(last_used=now))
            if missing:
                raise MissingReferencesError(missing)
            conn.execute(
                self._insert(blobs)
                .values(digest=m.digest, size=m.size, created_at=now, last_used=now)
                .on_conflict_do_update(index_elements=["digest"], set_={"last_used": now})
            )
            write_content()
            # an existing manifest row is share-locked, like a child's above: the collector cannot take it
            # between here and the tags (or, if it already has, this waits and inserts the row again)
            conn.execute(
                select(manifests.c.digest)
                .where(manifests.c.repository_id == rid, manifests.c.digest == m.digest)
                .with_for_update(read=True, key_share=True)
            ).all()
            inserted = (
                conn.execute(
                    self._insert(manifests)
                    .values(
                        repository_id=rid,
                        digest=m.digest,
                        media_type=m.media_type,
                        size=m.size,
                        artifact_type=m.artifact_type,
                        subject=m.subject,
                        annotations=json.dumps(m.annotations, sort_keys=True) if m.annotations else None,
                        created_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["repository_id", "digest"])
                    .returning(manifests.c.digest)  # rowcount of INSERT .. ON CONFLICT is -1 on psycopg
                ).first()
                is not None
            )
            if inserted and referenced:
                conn.execute(
                    manifest_references.insert(),
                    [
                        {
                            "repository_id": rid,
                            "manifest_digest": m.digest,
                            "child_digest": d,
                            "is_manifest": int(d in m.child_digests),
                        }
                        for d in sorted(referenced)
                    ],
                )
            for tag in sorted(set(tag_names)):  # one lock order for every push: no deadlock on PostgreSQL
                conn.execute(
                    self._insert(tags)
                    .values(repository_id=rid, name=tag, manifest_digest=m.digest, updated_at=now)
                    .on_conflict_do_update(
                        index_elements=["repository_id", "name"],
                        set_={"manifest_digest": m.digest, "updated_at": now},
                    )
                )

    def delete_manifest(self, name: str, digest: str) -> bool:
        """Delete a manifest and every tag pointing to it."""
        with self.db.write() as conn:
            rid = self._repo_id(conn, name)
            if rid is None:
                return False
            conn.execute(delete(tags).where(tags.c.repository_id == rid, tags.c.manifest_digest == digest))
            return self.remove_manifest_rows(conn, rid, digest)

    @staticmethod
    def remove_manifest_rows(conn: Connection, rid: int, digest: str) -> bool:
        """Inside a write transaction: delete a manifest's references and its row; whether it existed."""
        conn.execute(
            delete(manifest_references).where(
                manifest_references.c.repository_id == rid,
                manifest_references.c.manifest_digest == digest,
            )
        )
        result = conn.execute(delete(manifests).where(manifests.c.repository_id == rid, manifests.c.digest == digest))
        return bool(result.rowcount)

    def delete_tag(self, name: str, tag: str) -> bool:
        """Delete one tag (the manifest stays)."""
        with self.db.write() as conn:
            rid = self._repo_id(conn, name)
            if rid is None:
                return False
            result = conn.execute(delete(tags).where(tags.c.repository_id == rid, tags.c.name == tag))
            return bool(result.rowcount)

    def list_tags(self, name: str, limit: int | None, last: str | None) -> list[str] | None:
        """Tags of a repository in lexical order after ``last``; ``None`` if the repository is unknown."""
        with self.db.read() as conn:
            rid = self._repo_id(conn, name)
            if rid is None:
                return None
            key = self._lexical(tags.c.name)
            q = select(tags.c.name).where(tags.c.repository_id == rid).order_by(key)
            if last:
                q = q.where(key > last)
            if limit is not None:
                q = q.limit(limit)
            return [r[0] for r in conn.execute(q)]

    def indexes_listing(self, name: str, digest: str) -> list[str]:
        """Digests of the repository's indexes that list the manifest ``digest`` as a child (sorted)."""
        q = (
            select(manifest_references.c.manifest_digest)
            .join(repositories, repositories.c.id == manifest_references.c.repository_id)
            .where(
                repositories.c.name == name,
                manifest_references.c.child_digest == digest,
                manifest_references.c.is_manifest == 1,
            )
            .order_by(manifest_references.c.manifest_digest)
        )
        with self.db.read() as conn:
            return [str(d) for d in conn.execute(q).scalars()]

    def referrers(self, name: str, subject: str) -> list[ReferrerRecord]:
        """Manifests of the repository whose ``subject`` is ``subject``."""
        q = (
            select(
                manifests.c.digest,
                manifests.c.media_type,
                manifests.c.size,
                manifests.c.artifact_type,
                manifests.c.annotations,
            )
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(repositories.c.name == name, manifests.c.subject == subject)
            .order_by(manifests.c.created_at, manifests.c.digest)
        )
        with self.db.read() as conn:
            return [
                ReferrerRecord(
                    r.digest,
                    r.media_type,
                    int(r.size),
                    r.artifact_type,
                    json.loads(r.annotations) if r.annotations else {},
                )
                for r in conn.execute(q)
            ]

    def counts(self) -> dict[str, int]:
        """How many rows each table holds (for status output)."""
        with self.db.read() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (repositories, blobs, manifests, tags, uploads)
            }
