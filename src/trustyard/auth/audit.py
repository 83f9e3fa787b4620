"""The audit log: who did what, when, from where, with what result — append-only, queryable, exportable.

Events go into the ``audit_events`` table, which migration 0003 protects with triggers refusing UPDATE and
DELETE (and TRUNCATE on PostgreSQL): the application has no way to rewrite history, only to add to it.

Events on the request path (pulls, pushes, logins, tokens) are buffered and written in batches by a
background thread, every ``flush_interval`` seconds or when ``max_batch`` are waiting, so auditing a pull
does not put a database write in front of every manifest GET; a crash loses at most the last interval's
events. Changes of permissions and memberships are written before the change is reported done
(``record(..., wait=True)``).

Not here: deciding what to record (the HTTP layer and the management API do), retention.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Final

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError

from trustyard.db.engine import Database
from trustyard.db.models import audit_events

__all__ = ["RESULTS", "AuditEvent", "AuditLog", "AuditQuery"]

log = logging.getLogger("trustyard.audit")

RESULTS: Final = frozenset({"success", "failure", "denied"})
_PAGE: Final = 1000


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened. ``actor`` is a user name, ``robot$name``, ``""`` (anonymous) or ``cli:<user>``."""

    actor: str
    action: str
    result: str = "success"
    project: str | None = None
    repository: str | None = None
    target: str | None = None
    address: str | None = None
    detail: Mapping[str, Any] | None = None
    at: float = field(default_factory=time.time)
    id: int | None = None

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise ValueError(f"audit result must be one of {sorted(RESULTS)}")

    def to_json(self) -> dict[str, Any]:
        """The event as one JSON object (the export format and the API's)."""
        data = asdict(self)
        data["detail"] = dict(self.detail) if self.detail is not None else None
        return data


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for ``AuditLog.query``; every field ``None`` means "any"."""

    actor: str | None = None
    project: str | None = None
    repository: str | None = None
    action: str | None = None
    result: str | None = None
    since: float | None = None
    until: float | None = None
    after_id: int | None = None


def _row(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at,
        "actor": event.actor[:255],
        "action": event.action[:64],
        "project": None if event.project is None else event.project[:255],
        "repository": None if event.repository is None else event.repository[:255],
        "target": None if event.target is None else event.target[:512],
        "result": event.result,
        "address": None if event.address is None else event.address[:64],
        "detail": None if event.detail is None else json.dumps(dict(event.detail), sort_keys=True, default=str),
    }


class AuditLog:
    """Appends events to the database (buffered or at once) and reads them back with filters."""

    def __init__(self, db: Database, *, flush_interval: float = 1.0, max_batch: int = 1000) -> None:
        self.db = db
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, event: AuditEvent, *, wait: bool = False) -> None:
        """Append ``event``: buffered, or with ``wait`` written (with anything pending) before returning."""
        self._append(_row(event), wait)

    def record_request(
        self, actor: str, action: str, result: str, project: str, repository: str, target: str, address: str
    ) -> None:
        """Append a registry request's event (a pull, push or delete), buffered.

        The hot-path twin of ``record``: every manifest GET is audited, and building an ``AuditEvent`` first
        cost more than the rest of the authorization; the row is made directly (same truncation rules).
        """
        row = {
            "at": time.time(),
            "actor": actor[:255],
            "action": action,
            "project": project[:255],
            "repository": repository[:255],
            "target": target[:512],
            "result": result,
            "address": address[:64],
            "detail": None,
        }
        self._append(row, False)

    def _append(self, row: dict[str, Any], wait: bool) -> None:
        with self._lock:
            self._pending.append(row)
            full = len(self._pending) >= self.max_batch
        if wait or self._thread is None:
            self.flush()
        elif full:
            self._wake.set()

    def flush(self) -> int:
        """Write every pending event now; how many were written. A database failure keeps them pending."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            with self.db.write() as conn:
                conn.execute(insert(audit_events), batch)
        except SQLAlchemyError:
            with self._lock:
                self._pending[:0] = batch
            raise
        return len(batch)

    def start(self) -> None:
        """Run the background writer (``serve`` does; without it every ``record`` writes at once)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="trustyard-audit", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except SQLAlchemyError as e:
                log.error("audit events not written yet, will retry: %s", e)

    def close(self) -> None:
        """Stop the background writer and write what is pending."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout=10)
        self.flush()

    def query(self, filters: AuditQuery | None = None, *, limit: int = 100) -> list[AuditEvent]:
        """Events matching ``filters``, oldest first, at most ``limit``; page on with ``after_id``."""
        f = filters or AuditQuery()
        q = select(audit_events).order_by(audit_events.c.id).limit(max(1, min(limit, 10_000)))
        c = audit_events.c
        for column, value in (
            (c.actor, f.actor),
            (c.project, f.project),
            (c.repository, f.repository),
            (c.action, f.action),
            (c.result, f.result),
        ):
            if value is not None:
                q = q.where(column == value)
        if f.since is not None:
            q = q.where(c.at >= f.since)
        if f.until is not None:
            q = q.where(c.at < f.until)
        if f.after_id is not None:
            q = q.where(c.id > f.after_id)
        with self.db.read() as conn:
            rows = conn.execute(q).all()
        return [
            AuditEvent(
                id=r.id,
                at=r.at,
                actor=r.actor,
                action=r.action,
                result=r.result,
                project=r.project,
                repository=r.repository,
                target=r.target,
                address=r.address,
                detail=None if r.detail is None else json.loads(r.detail),
            )
            for r in rows
        ]

    def iterate(self, filters: AuditQuery | None = None) -> Iterator[AuditEvent]:
        """Every matching event, oldest first, read page by page (constant memory)."""
        f = filters or AuditQuery()
        after = f.after_id
        while True:
            page = self.query(
                AuditQuery(f.actor, f.project, f.repository, f.action, f.result, f.since, f.until, after), limit=_PAGE
            )
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1].id

    def export(self, out: IO[str], filters: AuditQuery | None = None) -> int:
        """Write matching events as JSON lines to ``out``; how many were written."""
        count = 0
        for event in self.iterate(filters):
            out.write(json.dumps(event.to_json(), sort_keys=True) + "\n")
            count += 1
        return count
