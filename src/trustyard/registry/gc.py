"""Online garbage collection: reclaim blobs and manifests nothing needs, while pushes keep going.

Unlike the reference registry, which must be read-only while it collects, this collector runs beside a
live server (or inside it, on a schedule). Safety rests on three rules:
- a blob is deleted only if no manifest references it and its ``last_used`` is older than the grace
  period; that condition is re-checked inside the deleting transaction after the row is locked (in a
  statement of its own: on PostgreSQL a statement that waited for a lock re-reads only the locked row),
  and every write that starts relying on a blob (upload, mount, manifest push, HEAD) refreshes
  ``last_used`` under the same lock, so the two serialise;
- the blob file is unlinked inside that transaction, so a concurrent re-upload (which renames its file
  while holding the row) is ordered before or after it, never between;
- orphan files and upload leftovers are removed only when older than the grace period (a commit
  refreshes the file's mtime first), and an orphan blob file only while its digest is claimed in the
  blobs table, so an upload committing that very blob is ordered before or after the unlink.
With ``delete_untagged``, manifests not reachable from a tag (directly, through an index, or as a
referrer of a reachable manifest) and older than the grace period are deleted first.

Every run is recorded in ``gc_runs`` (``GcRunLog``): a row written when it starts and completed when it ends,
so operators can see (``GET /api/v1/gc/runs``, the web interface's operations pages) when collection last ran,
what started it, what it freed and why it failed, without reading server logs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Final, Literal

import anyio.to_thread
from sqlalchemy import ColumnElement, and_, delete, exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from trustyard.db.engine import Database
from trustyard.db.models import (
    blobs,
    gc_runs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    uploads,
)
from trustyard.errors import TrustyardError
from trustyard.oci.digest import Digest
from trustyard.registry.service import RegistryService
from trustyard.storage.base import StorageError

log = logging.getLogger("trustyard.gc")
BATCH = 200
Trigger = Literal["schedule", "cli"]
MAX_ERROR: Final = 2000


@dataclass
class GcReport:
    """What a collection deleted (or, in a dry run, would delete)."""

    dry_run: bool
    manifests: list[tuple[str, str]] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes_freed: int = 0
    uploads: int = 0
    orphan_files: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON-able summary."""
        return {
            "dry_run": self.dry_run,
            "manifests_deleted": [{"repository": r, "digest": d} for r, d in self.manifests],
            "blobs_deleted": self.blobs,
            "bytes_freed": self.bytes_freed,
            "uploads_expired": self.uploads,
            "orphan_files_removed": self.orphan_files,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class GcRun:
    """One recorded run: ``finished_at`` is None while it runs (or if its process died before it ended)."""

    id: int
    started_at: float
    finished_at: float | None
    trigger: str
    dry_run: bool
    status: str  # running | done | failed
    manifests_deleted: int
    blobs_deleted: int
    bytes_freed: int
    uploads_expired: int
    orphan_files: int
    error: str | None


class GcRunLog:
    """The ``gc_runs`` table: each write is a transaction of its own, apart from the collection's, so a run
    that fails half-way still records what it had deleted by then (those deletions are committed)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, trigger: Trigger, *, dry_run: bool) -> int:
        """Record that a run began; its id, for ``finish``."""
        with self.db.write() as conn:
            row = conn.execute(
                insert(gc_runs)
                .values(started_at=time.time(), trigger=trigger, dry_run=dry_run, status="running")
                .returning(gc_runs.c.id)
            ).one()
        return int(row[0])

    def finish(self, run_id: int, report: GcReport, error: str | None = None) -> None:
        """Complete the run's row with what it deleted (or, in a dry run, would have) and its error, if any."""
        with self.db.write() as conn:
            conn.execute(
                update(gc_runs)
                .where(gc_runs.c.id == run_id)
                .values(
                    finished_at=time.time(),
                    status="failed" if error else "done",
                    manifests_deleted=len(report.manifests),
                    blobs_deleted=len(report.blobs),
                    bytes_freed=report.bytes_freed,
                    uploads_expired=report.uploads,
                    orphan_files=report.orphan_files,
                    error=error[:MAX_ERROR] if error else None,
                )
            )

    def recent(self, limit: int) -> list[GcRun]:
        """The newest ``limit`` runs, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(select(gc_runs).order_by(gc_runs.c.id.desc()).limit(limit)).mappings().all()
        return [GcRun(**{**row, "dry_run": bool(row["dry_run"])}) for row in rows]


class GarbageCollector:
    """Mark and sweep over the metadata database and the blob store."""

    def __init__(
        self,
        service: RegistryService,
        *,
        grace_period: float,
        delete_untagged: bool = False,
        upload_expiry: float = 7 * 24 * 3600,
    ) -> None:
        self.service = service
        self.db = service.db
        self.store = service.store
        self.grace_period = grace_period
        self.delete_untagged = delete_untagged
        self.upload_expiry = upload_expiry
        self.runs = GcRunLog(self.db)

    def run(self, *, dry_run: bool = False, trigger: Trigger = "cli") -> GcReport:
        """One full collection, recorded in ``gc_runs`` (a failure too, with what was deleted before it)."""
        started = time.monotonic()
        report = GcReport(dry_run=dry_run)
        cutoff = time.time() - self.grace_period
        try:
            run_id = self.runs.start(trigger, dry_run=dry_run)
        except SQLAlchemyError as e:
            raise TrustyardError(f"garbage collection did not start: database error: {e}") from e
        try:
            if self.delete_untagged:
                self._untagged(cutoff, report)
            self._blobs(cutoff, report)
            self._uploads(cutoff, report)
            self._orphans(cutoff, report)
        except SQLAlchemyError as e:
            self._record_failure(run_id, report, f"database error: {e}")
            raise TrustyardError(f"garbage collection stopped: database error: {e}") from e
        except StorageError as e:
            self._record_failure(run_id, report, e.message)
            raise TrustyardError(f"garbage collection stopped: {e.message}") from e
        report.seconds = time.monotonic() - started
        try:
            self.runs.finish(run_id, report)
        except SQLAlchemyError as e:
            raise TrustyardError(f"garbage collection finished but could not be recorded: database error: {e}") from e
        log.info(
            "garbage collection finished",
            extra={
                "dry_run": dry_run,
                "manifests": len(report.manifests),
                "blobs": len(report.blobs),
                "bytes_freed": report.bytes_freed,
                "uploads": report.uploads,
                "orphans": report.orphan_files,
                "seconds": round(report.seconds, 3),
            },
        )
        return report

    def _record_failure(self, run_id: int, report: GcReport, error: str) -> None:
        """Best effort: the database that just failed the run may refuse this too (then the row stays
        ``running`` and the log says why)."""
        try:
            self.runs.finish(run_id, report, error)
        except SQLAlchemyError as e:
            log.error("could not record the failed garbage collection run %d: %s", run_id, e)

    async def run_every(self, interval: float) -> None:
        """Collect forever, every ``interval`` seconds (the ``serve`` schedule); errors are logged."""
        while True:
            await asyncio.sleep(interval)
            try:
                await anyio.to_thread.run_sync(lambda: self.run(trigger="schedule"))
            except TrustyardError as e:
                log.error("scheduled garbage collection failed: %s", e.message)

    # -- untagged manifests --------------------------------------------------------------------------------

    def _untagged(self, cutoff: float, report: GcReport) -> None:
        with self.db.read() as conn:
            repos = list(conn.execute(select(repositories.c.id, repositories.c.name)))
        for rid, name in repos:
            with self.db.read() as conn:
                # a manifest's age is its blob row's last_used, which every push of it refreshes (created_at
                # is not: a manifest pushed again by digest just now, e.g. an index's child, is fresh)
                rows = list(
                    conn.execute(
                        select(manifests.c.digest, manifests.c.subject, blobs.c.last_used)
                        .join(blobs, blobs.c.digest == manifests.c.digest)
                        .where(manifests.c.repository_id == rid)
                    )
                )
                tagged = {r[0] for r in conn.execute(select(tags.c.manifest_digest).where(tags.c.repository_id == rid))}
                edges = list(
                    conn.execute(
                        select(manifest_references.c.manifest_digest, manifest_references.c.child_digest).where(
                            manifest_references.c.repository_id == rid, manifest_references.c.is_manifest == 1
                        )
                    )
                )
            children: dict[str, list[str]] = {}
            for parent, child in edges:
                children.setdefault(parent, []).append(child)
            referrers: dict[str, list[str]] = {}
            for digest, subject, _ in rows:
                if subject:
                    referrers.setdefault(subject, []).append(digest)
            live: set[str] = set()
            todo = list(tagged)
            while todo:
                d = todo.pop()
                if d in live:
                    continue
                live.add(d)
                todo.extend(children.get(d, ()))
                todo.extend(referrers.get(d, ()))
            doomed = [digest for digest, _, last_used in rows if digest not in live and last_used < cutoff]
            for digest in doomed:
                if report.dry_run or self._delete_manifest(rid, digest, cutoff):
                    report.manifests.append((name, digest))

    def _delete_manifest(self, rid: int, digest: str, cutoff: float) -> bool:
        """Delete an untagged manifest unless, by now, it was pushed again or a tag or manifest points to it.

        The manifest row is locked before the check (see ``_blobs`` for why the check must come after): a
        push that tags the manifest or names it from an index share-locks the row first, so either it
        commits before this check sees the tag or reference, or it waits and finds the manifest gone.
        """
        with self.db.write() as conn:
            if (
                conn.execute(
                    select(manifests.c.digest)
                    .where(manifests.c.repository_id == rid, manifests.c.digest == digest)
                    .with_for_update()
                ).first()
                is None
            ):
                return False
            last_used = conn.execute(select(blobs.c.last_used).where(blobs.c.digest == digest)).scalar()
            if last_used is None or last_used >= cutoff:
                return False
            if conn.execute(
                select(tags.c.name).where(tags.c.repository_id == rid, tags.c.manifest_digest == digest).limit(1)
            ).first():
                return False
            if conn.execute(
                select(manifest_references.c.manifest_digest)
                .where(manifest_references.c.repository_id == rid, manifest_references.c.child_digest == digest)
                .limit(1)
            ).first():
                return False
            return self.service.meta.remove_manifest_rows(conn, rid, digest)

    # -- blobs ---------------------------------------------------------------------------------------------

    @staticmethod
    def _unreferenced(cutoff: float) -> ColumnElement[bool]:
        return and_(
            blobs.c.last_used < cutoff,
            ~exists().where(manifest_references.c.child_digest == blobs.c.digest),
            ~exists().where(manifests.c.digest == blobs.c.digest),
        )

    def _blobs(self, cutoff: float, report: GcReport) -> None:
        condition = self._unreferenced(cutoff)
        with self.db.read() as conn:
            candidates = list(conn.execute(select(blobs.c.digest, blobs.c.size).where(condition)))
        if report.dry_run:
            report.blobs.extend(d for d, _ in candidates)
            report.bytes_freed += sum(int(s) for _, s in candidates)
            return
        for i in range(0, len(candidates), BATCH):
            batch = [d for d, _ in candidates[i : i + BATCH]]
            with self.db.write() as conn:
                # Lock first (in digest order, as pushes do: no deadlocks), decide after, in a new statement.
                # On PostgreSQL (READ COMMITTED) a statement that waited for a row lock re-checks only that
                # row, against the snapshot it started with: it would not see the references a push that
                # held the lock has just committed. Once the locks are held, every push that touched these
                # rows has committed (the next statement sees it) and every later one waits for this one.
                conn.execute(
                    select(blobs.c.digest).where(blobs.c.digest.in_(batch)).order_by(blobs.c.digest).with_for_update()
                ).all()
                locked = list(
                    conn.execute(select(blobs.c.digest, blobs.c.size).where(blobs.c.digest.in_(batch), condition))
                )
                if not locked:
                    continue
                digests = [d for d, _ in locked]
                conn.execute(delete(repository_blobs).where(repository_blobs.c.digest.in_(digests)))
                conn.execute(delete(blobs).where(blobs.c.digest.in_(digests)))
                for d in digests:
                    self.store.delete(Digest.parse(d))
            report.blobs.extend(digests)
            report.bytes_freed += sum(int(s) for _, s in locked)

    # -- uploads and orphans -------------------------------------------------------------------------------

    def _uploads(self, cutoff: float, report: GcReport) -> None:
        expired = self.service.meta.expired_uploads(time.time() - self.upload_expiry)
        # A session's row is committed before its file is created, so re-reading the rows after listing
        # the files sees every live session: what is still unknown then is a leftover.
        listed = [uid for uid, mtime in self.store.iter_uploads() if mtime < cutoff]
        known = self.service.meta.all_upload_ids()
        stray = [uid for uid in listed if uid not in known]
        report.uploads = len(expired) + len(stray)
        if report.dry_run:
            return
        for uid in expired:
            with self.db.write() as conn:
                conn.execute(delete(uploads).where(uploads.c.id == uid))
            self.store.delete_upload(uid)
        for uid in stray:
            self.store.delete_upload(uid)
        report.orphan_files += self.store.remove_stale_temporaries(cutoff)

    def _orphans(self, cutoff: float, report: GcReport) -> None:
        """Blob files no row names (a crash between rename and commit), older than the grace period."""
        with self.db.read() as conn:
            known = {r[0] for r in conn.execute(select(blobs.c.digest))}
        for digest, mtime in list(self.store.iter_blobs()):
            if str(digest) in known or mtime >= cutoff:
                continue
            report.orphan_files += 1
            if report.dry_run:
                continue
            with self.db.write() as conn:
                # Claim the digest with a placeholder row, deleted again before commit. An INSERT waits for a
                # commit in flight that is recording this very blob (its file already renamed into place),
                # where a SELECT would not see that row on PostgreSQL and the file would go; and while the
                # claim is held, any upload of the digest waits, then renames its file after the unlink.
                insert = sqlite.insert(blobs) if self.db.is_sqlite else postgresql.insert(blobs)
                claimed = conn.execute(
                    insert.values(digest=str(digest), size=0, created_at=0.0, last_used=0.0)
                    .on_conflict_do_nothing(index_elements=["digest"])
                    .returning(blobs.c.digest)
                ).first()
                if claimed is not None:
                    self.store.delete(digest)
                    conn.execute(delete(blobs).where(blobs.c.digest == str(digest)))
