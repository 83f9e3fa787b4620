"""The scan queue and the scan results, in the metadata database: durable, keyed by manifest digest.

A push enqueues its manifest digest (``ScanJobs.enqueue``); in-process workers (``scan/pipeline.py``) claim
jobs one at a time, index and match the image, and store the result here (``ScanJobs.store_report``). The
queue lives in the database, not in memory, so that nothing is lost with the process:
- a job left ``running`` by a crash is queued again at the next start (``recover``), and one that has
  crashed the worker ``MAX_ATTEMPTS`` times is marked failed instead of being tried forever;
- manifests that reached the database but not the queue (a crash between the two, or images pushed before
  scanning existed) are found by ``backfill`` at start.
Rows are keyed by digest, not repository: an image pushed to two repositories is one job and one report;
pushing it to another repository after it was indexed only flags the job to attach its SBOM there too.
Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that workers of several processes share one queue.

Not here: the indexing and matching themselves (``scan/pipeline.py``), the re-check (``scan/recheck.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from trustyard.db.engine import Database, retrying
from trustyard.db.models import manifests, repositories, scan_jobs, scan_packages, scan_reports, scan_state

MAX_ATTEMPTS: Final = 3
"""A job that was running this many times when the worker died is failed, never tried again (no crash loop)."""

SBOM_ARTIFACT_TYPE: Final = "application/vnd.cyclonedx+json"
"""The artifact type of the SBOM referrers the scanner attaches; such manifests are never indexed."""


class JobStatus(StrEnum):
    """Where a manifest is in the scan pipeline."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # not an image (an artifact): nothing to index


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job: index the image (``index``), or only attach its SBOM to new repositories."""

    digest: str
    index: bool
    attempts: int


@dataclass(frozen=True, slots=True)
class JobState:
    """A job as the API shows it."""

    digest: str
    status: JobStatus
    attempts: int
    queued_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class FindingsUpdate:
    """An image's findings after a re-check."""

    digest: str
    findings: str
    finding_ids: tuple[str, ...]
    generation: int
    data_time: str | None


@dataclass(frozen=True, slots=True)
class StoredReport:
    """What the scanner stored for one manifest digest."""

    digest: str
    indexed_at: float
    checked_at: float
    generation: int
    data_time: str | None
    inventory: str
    cyclonedx: str
    spdx: str
    findings: str
    finding_ids: tuple[str, ...]
    sbom_digest: str | None


class ScanJobs:
    """The queue and the results over one metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _insert(self, table: Any) -> Any:
        return sqlite.insert(table) if self.db.is_sqlite else postgresql.insert(table)

    # -- the queue ---------------------------------------------------------------------------------------------

    def enqueue(self, digest: str) -> None:
        """Queue ``digest`` unless it is known; an indexed one is flagged to attach its SBOM to new repositories."""

        def run() -> None:
            with self.db.write() as conn:
                conn.execute(
                    self._insert(scan_jobs)
                    .values(digest=digest, status=JobStatus.QUEUED.value, attempts=0, queued_at=time.time())
                    .on_conflict_do_nothing(index_elements=["digest"])
                )
                conn.execute(
                    update(scan_jobs)
                    .where(scan_jobs.c.digest == digest, scan_jobs.c.status == JobStatus.DONE.value)
                    .values(attach_pending=True)
                )

        retrying(run)

    def recover(self) -> int:
        """At start: jobs a dead worker left running are queued again, or failed after ``MAX_ATTEMPTS``."""
        with self.db.write() as conn:
            conn.execute(
                update(scan_jobs)
                .where(scan_jobs.c.status == JobStatus.RUNNING.value, scan_jobs.c.attempts >= MAX_ATTEMPTS)
                .values(
                    status=JobStatus.FAILED.value,
                    finished_at=time.time(),
                    error=f"the scan worker stopped during this job {MAX_ATTEMPTS} times; not tried again",
                )
            )
            result = conn.execute(
                update(scan_jobs)
                .where(scan_jobs.c.status == JobStatus.RUNNING.value)
                .values(status=JobStatus.QUEUED.value)
            )
            return int(result.rowcount)

    def backfill(self) -> int:
        """Queue every stored manifest that has no job (pushed before scanning, or lost to a crash)."""
        with self.db.write() as conn:
            known = select(scan_jobs.c.digest)
            missing = (
                conn.execute(
                    select(manifests.c.digest)
                    .where(
                        manifests.c.digest.not_in(known),
                        or_(manifests.c.artifact_type.is_(None), manifests.c.artifact_type != SBOM_ARTIFACT_TYPE),
                    )
                    .distinct()
                )
                .scalars()
                .all()
            )
            now = time.time()
            for digest in missing:
                conn.execute(
                    self._insert(scan_jobs)
                    .values(digest=digest, status=JobStatus.QUEUED.value, attempts=0, queued_at=now)
                    .on_conflict_do_nothing(index_elements=["digest"])
                )
            return len(missing)

    def claim(self) -> Job | None:
        """The oldest waiting job, now ``running`` (or an indexed one with repositories to attach to)."""

        def run() -> Job | None:
            with self.db.write() as conn:
                query = (
                    select(scan_jobs.c.digest, scan_jobs.c.status, scan_jobs.c.attempts)
                    .where(
                        or_(
                            scan_jobs.c.status == JobStatus.QUEUED.value,
                            scan_jobs.c.attach_pending.is_(True),
                        )
                    )
                    .order_by(scan_jobs.c.queued_at, scan_jobs.c.digest)
                    .limit(1)
                )
                if not self.db.is_sqlite:
                    query = query.with_for_update(skip_locked=True)
                row = conn.execute(query).first()
                if row is None:
                    return None
                digest, status, attempts = row
                if status == JobStatus.QUEUED.value:
                    conn.execute(
                        update(scan_jobs)
                        .where(scan_jobs.c.digest == digest)
                        .values(
                            status=JobStatus.RUNNING.value,
                            attempts=attempts + 1,
                            started_at=time.time(),
                            attach_pending=False,
                        )
                    )
                    return Job(digest, True, attempts + 1)
                conn.execute(update(scan_jobs).where(scan_jobs.c.digest == digest).values(attach_pending=False))
                return Job(digest, False, attempts)

        return retrying(run)

    def finish(self, digest: str, status: JobStatus, error: str | None = None) -> None:
        """Record the outcome of a job."""
        with self.db.write() as conn:
            conn.execute(
                update(scan_jobs)
                .where(scan_jobs.c.digest == digest)
                .values(status=status.value, finished_at=time.time(), error=error)
            )

    def state(self, digest: str) -> JobState | None:
        """The job of ``digest``, if it was ever queued."""
        with self.db.read() as conn:
            row = conn.execute(select(scan_jobs).where(scan_jobs.c.digest == digest)).first()
        if row is None:
            return None
        return JobState(
            row.digest, JobStatus(row.status), row.attempts, row.queued_at, row.started_at, row.finished_at, row.error
        )

    def pending(self) -> int:
        """Jobs waiting or running (what a test waits for)."""
        with self.db.read() as conn:
            count = conn.execute(
                select(func.count()).where(
                    or_(
                        scan_jobs.c.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
                        scan_jobs.c.attach_pending.is_(True),
                    )
                )
            ).scalar_one()
        return int(count)

    def repositories_of(self, digest: str) -> list[str]:
        """Every repository that holds the manifest ``digest``."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(repositories.c.name)
                .join(manifests, manifests.c.repository_id == repositories.c.id)
                .where(manifests.c.digest == digest)
                .order_by(repositories.c.name)
            )
            return [r[0] for r in rows]

    def repositories_by_digest(self, digests: Sequence[str]) -> dict[str, list[str]]:
        """``repositories_of`` for many digests in one query (a re-check notifies thousands at once)."""
        found: dict[str, list[str]] = {d: [] for d in digests}
        if not digests:
            return found
        with self.db.read() as conn:
            rows = conn.execute(
                select(manifests.c.digest, repositories.c.name)
                .join(manifests, manifests.c.repository_id == repositories.c.id)
                .where(manifests.c.digest.in_(list(digests)))
                .order_by(repositories.c.name)
            )
            for digest, name in rows:
                found[digest].append(name)
        return found

    def holds(self, repository: str, digest: str) -> bool:
        """Whether ``repository`` holds the manifest ``digest`` (the API answers only for those)."""
        with self.db.read() as conn:
            row = conn.execute(
                select(manifests.c.digest)
                .join(repositories, manifests.c.repository_id == repositories.c.id)
                .where(repositories.c.name == repository, manifests.c.digest == digest)
            ).first()
        return row is not None

    # -- results -----------------------------------------------------------------------------------------------

    def store_report(self, report: StoredReport, packages: Iterable[tuple[str, str]]) -> None:
        """Store (or replace) an image's report and its re-check index rows, in one transaction."""
        values = _report_values(report)
        keys = sorted(set(packages))

        def run() -> None:
            with self.db.write() as conn:
                conn.execute(
                    self._insert(scan_reports)
                    .values(**values)
                    .on_conflict_do_update(index_elements=["digest"], set_=values)
                )
                conn.execute(delete(scan_packages).where(scan_packages.c.digest == report.digest))
                if keys:
                    conn.execute(
                        insert(scan_packages),
                        [{"ecosystem": e[:128], "name": n[:255], "digest": report.digest} for e, n in keys],
                    )

        retrying(run)

    def update_findings(self, updates: Sequence[FindingsUpdate]) -> None:
        """A re-check's new findings for many images, in one transaction (inventories and SBOMs stay as indexed)."""
        if not updates:
            return
        now = time.time()
        statement = (
            update(scan_reports)
            .where(scan_reports.c.digest == bindparam("b_digest"))
            .values(
                findings=bindparam("b_findings"),
                finding_ids=bindparam("b_ids"),
                generation=bindparam("b_generation"),
                data_time=bindparam("b_data_time"),
                checked_at=now,
            )
        )
        rows = [
            {
                "b_digest": u.digest,
                "b_findings": u.findings,
                "b_ids": json.dumps(sorted(u.finding_ids)),
                "b_generation": u.generation,
                "b_data_time": u.data_time,
            }
            for u in updates
        ]
        with self.db.write() as conn:
            conn.execute(statement, rows)  # one statement, executemany: a re-check writes thousands

    def set_sbom_digest(self, digest: str, sbom_digest: str) -> None:
        """Remember the CycloneDX blob the image's referrers carry."""
        with self.db.write() as conn:
            conn.execute(update(scan_reports).where(scan_reports.c.digest == digest).values(sbom_digest=sbom_digest))

    def report(self, digest: str) -> StoredReport | None:
        """The stored report of ``digest``, if it was indexed."""
        with self.db.read() as conn:
            row = conn.execute(select(scan_reports).where(scan_reports.c.digest == digest)).first()
        return None if row is None else _report_of(row)

    def findings_of(self, digest: str) -> str | None:
        """Only the stored findings document of ``digest`` (the pull gate's question on every manifest GET: the
        inventory and SBOMs in the same row are large and not needed)."""
        with self.db.read() as conn:
            row = conn.execute(select(scan_reports.c.findings).where(scan_reports.c.digest == digest)).first()
        return None if row is None else str(row[0])

    def inventories(self, digests: Sequence[str]) -> list[tuple[str, str, tuple[str, ...]]]:
        """(digest, inventory, finding ids) of the stored reports among ``digests``: what a re-check reads."""
        columns = (scan_reports.c.digest, scan_reports.c.inventory, scan_reports.c.finding_ids)
        with self.db.read() as conn:
            rows = conn.execute(select(*columns).where(scan_reports.c.digest.in_(digests))).all()
        return [(r[0], r[1], tuple(json.loads(r[2]))) for r in rows]

    def affected(self, packages: Iterable[tuple[str, str]]) -> list[str]:
        """Digests of the stored inventories whose matching looked up any of ``packages``."""
        keys = sorted(set(packages))
        found: set[str] = set()
        with self.db.read() as conn:
            for start in range(0, len(keys), 200):
                chunk = keys[start : start + 200]
                for ecosystem in {e for e, _ in chunk}:
                    names = [n for e, n in chunk if e == ecosystem]
                    rows = conn.execute(
                        select(scan_packages.c.digest).where(
                            scan_packages.c.ecosystem == ecosystem, scan_packages.c.name.in_(names)
                        )
                    )
                    found.update(r[0] for r in rows)
        return sorted(found)

    def stale(self, generation: int) -> list[str]:
        """Digests of reports matched before ``generation`` or without data (generation 0): matched again whole."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(scan_reports.c.digest).where(
                    or_(scan_reports.c.generation < generation, scan_reports.c.generation == 0)
                )
            )
            return [r[0] for r in rows]

    def get_state(self, key: str) -> str | None:
        """A value the scanner keeps between starts (the store generation re-checked up to)."""
        with self.db.read() as conn:
            value = conn.execute(select(scan_state.c.value).where(scan_state.c.key == key)).scalar()
        return None if value is None else str(value)

    def replace_state(self, key: str, expected: str | None, value: str) -> bool:
        """Set ``key`` to ``value`` only if it still holds ``expected`` (``None``: unset); whether this call did.

        The re-check claims each pass this way, so that of several registry processes sharing the database
        exactly one re-checks a given import (and each change is notified once).
        """
        with self.db.write() as conn:
            if expected is None:
                result = conn.execute(
                    self._insert(scan_state).values(key=key, value=value).on_conflict_do_nothing(index_elements=["key"])
                )
            else:
                result = conn.execute(
                    update(scan_state)
                    .where(scan_state.c.key == key, scan_state.c.value == expected)
                    .values(value=value)
                )
            return int(result.rowcount) == 1

    def set_state(self, key: str, value: str) -> None:
        """Remember ``value`` under ``key``."""
        with self.db.write() as conn:
            conn.execute(
                self._insert(scan_state)
                .values(key=key, value=value)
                .on_conflict_do_update(index_elements=["key"], set_={"value": value})
            )


def _report_values(report: StoredReport) -> dict[str, Any]:
    return {
        "digest": report.digest,
        "indexed_at": report.indexed_at,
        "checked_at": report.checked_at,
        "generation": report.generation,
        "data_time": report.data_time,
        "inventory": report.inventory,
        "cyclonedx": report.cyclonedx,
        "spdx": report.spdx,
        "findings": report.findings,
        "finding_ids": json.dumps(sorted(report.finding_ids)),
        "sbom_digest": report.sbom_digest,
    }


def _report_of(row: Any) -> StoredReport:
    return StoredReport(
        digest=row.digest,
        indexed_at=row.indexed_at,
        checked_at=row.checked_at,
        generation=row.generation,
        data_time=row.data_time,
        inventory=row.inventory,
        cyclonedx=row.cyclonedx,
        spdx=row.spdx,
        findings=row.findings,
        finding_ids=tuple(json.loads(row.finding_ids)),
        sbom_digest=row.sbom_digest,
    )


__all__ = [
    "MAX_ATTEMPTS",
    "SBOM_ARTIFACT_TYPE",
    "FindingsUpdate",
    "Job",
    "JobState",
    "JobStatus",
    "ScanJobs",
    "StoredReport",
]
