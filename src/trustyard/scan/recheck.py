"""Re-check stored inventories when the vulnerability data changes, without reading a single layer again.

The vulnerability store numbers its imports (``pipeline.store_generation``); the registry remembers the
generation it has re-checked up to (``scan_state``). When the store is newer, the packages named by the
advisories written since then (``pipeline.changed_packages``) are looked up in the (ecosystem, package) index
that was filled when each inventory was stored, and only those inventories are matched again, from their
stored components. Reports matched before the store existed (or before the last pass, after a race with a
worker) are matched again whole. An image whose finding ids change gets, once per change:
- its stored findings replaced (the scan status shows the new check time and data generation);
- an audit event ``scan.changed`` per repository that holds it, with the added and removed ids;
- one webhook event ``scan.changed`` listing its repositories, when a webhook is configured.

The remembered generation carries the store's id (``store.store_identity``): a store replaced by another
(``trustyard db pull`` of one built elsewhere, whose generation numbers are that machine's) has every stored
inventory matched again, once. Each pass is claimed by moving the remembered generation forward first (compare
and set): of several registry
processes on one database (``serve --workers N``, several nodes), exactly one re-checks a given import, so each
change is notified once. A pass cut short by a crash leaves its remaining reports at their older generation;
the next pass matches those again whole.

``trustyard db import`` needs no connection to a running registry: the import adds a generation, the registry's
worker polls for it (``scan_recheck_interval``), and a registry that was down re-checks at its next start.

The index also lists the advisories each inventory has findings from, so that an advisory changed to stop
naming a package (or to fix it in an older version) re-checks the images it used to affect.

Not here: deciding how findings are computed (``pipeline.InventoryMatcher``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from trustyard.auth.audit import AuditEvent, AuditLog
from trustyard.auth.policy import project_of
from trustyard.config import Settings
from trustyard.db.engine import Database
from trustyard.registry.jobs import FindingsUpdate, ScanJobs
from trustyard.scan.pipeline import InventoryMatcher, changed_packages, decode_inventory, store_generation
from trustyard.scan.vulndb.store import configured_path, store_identity
from trustyard.scan.webhook import WebhookNotifier

log = logging.getLogger("trustyard.scan")

GENERATION_KEY: Final = "vulndb.generation"
"""State key of the generation re-checked up to, as ``N@STORE-ID`` (or ``N`` from before store ids)."""
EVERYTHING: Final = 1 << 62
"""A generation above any: ``stale(EVERYTHING)`` is every stored report."""
ACTOR: Final = "system:scanner"
BATCH: Final = 200
"""Inventories read, and findings written, per database transaction during a re-check."""


@dataclass(frozen=True, slots=True)
class Change:
    """One image whose findings changed."""

    digest: str
    repositories: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass
class RecheckResult:
    """What one pass did (for logs, tests and the benchmark)."""

    since: int
    generation: int
    packages: int = 0
    inventories: int = 0
    changes: list[Change] = field(default_factory=list)
    seconds: float = 0.0


class Rechecker:
    """One pass at a time (a lock), from the worker thread's tick or a direct call."""

    def __init__(
        self, *, jobs: ScanJobs, vulndb: Path, audit: AuditLog | None = None, notifier: WebhookNotifier | None = None
    ) -> None:
        self.jobs = jobs
        self.vulndb = vulndb
        self.audit = audit
        self.notifier = notifier
        self._lock = threading.Lock()

    def tick(self) -> None:
        """The worker's periodic call: a pass when the store moved on, logged."""
        result = self.run()
        if result is not None and result.inventories:
            log.info(
                "re-check done",
                extra={
                    "generation": result.generation,
                    "inventories": result.inventories,
                    "changed": len(result.changes),
                    "seconds": round(result.seconds, 3),
                },
            )

    def run(self) -> RecheckResult | None:
        """Re-check what the imports since the last pass can have changed; ``None`` when nothing is new."""
        with self._lock:
            generation = store_generation(self.vulndb)
            identity = store_identity(self.vulndb)
            stored = self.jobs.get_state(GENERATION_KEY)
            since, seen = _parse_state(stored)
            replaced = seen is not None and identity is not None and seen != identity
            if generation <= since and stored is not None and not replaced:
                return None
            state = f"{generation}@{identity}" if identity else str(generation)
            if not self.jobs.replace_state(GENERATION_KEY, stored, state):
                return None  # another registry process sharing the database took this pass
            start = time.perf_counter()
            result = RecheckResult(0 if replaced else since, generation)
            if replaced:  # another store (db pull): its generations are not comparable, match everything again
                digests = self.jobs.stale(EVERYTHING)
            else:
                packages = changed_packages(self.vulndb, since) if generation else set()
                result.packages = len(packages)
                digests = sorted(set(self.jobs.affected(packages)) | set(self.jobs.stale(since)))
            if digests:
                with InventoryMatcher(self.vulndb) as matcher:
                    for first in range(0, len(digests), BATCH):
                        found = self._recheck(matcher, digests[first : first + BATCH])
                        result.inventories += found[0]
                        result.changes += found[1]
            result.seconds = time.perf_counter() - start
            for change in result.changes:
                self._notify(change, generation)
            return result

    def _recheck(self, matcher: InventoryMatcher, digests: list[str]) -> tuple[int, list[Change]]:
        """Match a batch of stored inventories again; their new findings are written in one transaction."""
        updates: list[FindingsUpdate] = []
        diffs: list[tuple[str, list[str], list[str]]] = []
        stored = self.jobs.inventories(digests)
        for digest, inventory, finding_ids in stored:
            components, layers = decode_inventory(inventory)
            outcome = matcher.match(components, layers)
            ids = tuple(sorted(outcome.ids))
            updates.append(FindingsUpdate(digest, outcome.findings, ids, outcome.generation, outcome.data_time))
            old = set(finding_ids)
            added, removed = sorted(outcome.ids - old), sorted(old - outcome.ids)
            if added or removed:
                diffs.append((digest, added, removed))
        self.jobs.update_findings(updates)
        holders = self.jobs.repositories_by_digest([digest for digest, _, _ in diffs])
        changes = [
            Change(digest, tuple(holders[digest]), tuple(added), tuple(removed)) for digest, added, removed in diffs
        ]
        return len(stored), changes

    def _notify(self, change: Change, generation: int) -> None:
        detail = {"added": list(change.added), "removed": list(change.removed), "generation": generation}
        if self.audit is not None:
            for repository in change.repositories:
                self.audit.record(
                    AuditEvent(
                        ACTOR,
                        "scan.changed",
                        project=project_of(repository),
                        repository=repository,
                        target=change.digest,
                        detail=detail,
                    )
                )
        if self.notifier is not None:
            self.notifier.send(
                "scan.changed",
                {
                    "digest": change.digest,
                    "repositories": list(change.repositories),
                    "added": list(change.added),
                    "removed": list(change.removed),
                    "generation": generation,
                    "at": datetime.now(UTC).isoformat(),
                },
            )
        log.info("findings changed", extra={"digest": change.digest, **detail})


def _parse_state(value: str | None) -> tuple[int, str | None]:
    """(generation, store id) of the remembered state; ``(0, None)`` when there is none."""
    if value is None:
        return 0, None
    number, _, identity = value.partition("@")
    return int(number), identity or None


def findings_count(findings: str) -> int:
    """How many findings a stored findings document holds."""
    return len(json.loads(findings).get("findings", []))


def recheck_after_import(settings: Settings, store_file: Path) -> RecheckResult | None:
    """The re-check ``trustyard db import`` runs when it imported into the store of a registry on this machine.

    Nothing happens unless ``store_file`` is the registry's store and the registry's metadata database exists
    (a SQLite file that is there, or a configured ``database_url``). The pass is claimed like the worker's,
    so a running registry and the CLI never both re-check (and notify) the same import; audit events and
    webhooks go out as the registry sends them, before the command returns.
    """
    registry_store = configured_path(settings)
    if registry_store.resolve() != store_file.resolve():
        return None
    if settings.database_url is None and not (settings.data_dir / "trustyard.db").exists():
        return None
    db = Database(settings.metadata_url)
    audit = AuditLog(db, flush_interval=settings.audit_flush_interval)
    notifier = None
    if settings.webhook_url:
        secret = settings.webhook_secret.get_secret_value().encode() if settings.webhook_secret else None
        notifier = WebhookNotifier(settings.webhook_url, secret, attempts=settings.webhook_attempts)
        notifier.start()
    try:
        return Rechecker(jobs=ScanJobs(db), vulndb=store_file, audit=audit, notifier=notifier).run()
    finally:
        if notifier is not None:
            notifier.flush()
            notifier.stop()
        audit.close()
        db.dispose()
