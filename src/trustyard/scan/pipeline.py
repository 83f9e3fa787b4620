"""The registry's background scanner: index every pushed image once, match it, keep the result, attach the SBOM.

A job (``registry/jobs.py``) names a manifest digest. ``ScanPipeline.run`` reads the image straight from the
blob store (``RegistryImageSource``), indexes it through the layer cache under ``<data dir>/scan-cache``,
renders its CycloneDX and SPDX documents, matches the components against the vulnerability store that
``trustyard db`` fills, and stores all of it by manifest digest together with the (ecosystem, package) lookups
the match made: the index the re-check (``recheck.py``) follows when advisories change, so that it never reads
a layer again. Then the CycloneDX document is attached to the image in every repository that holds it, as an
OCI 1.1 artifact whose ``subject`` is the image (the referrers API lists it); those artifacts are never indexed.

Outcomes are always recorded, never raised: an artifact is ``skipped``; a broken or hostile image (bad
layers, bombs, a missing blob) is ``failed`` with the scanner's one-line reason; an unexpected exception is
``failed`` too, with its traceback in the log. A missing vulnerability store is not a failure: the findings
say ``unknown`` with the reason ``no data`` until data arrives (and the re-check then fills them in).

``ScanWorkers`` runs the pipeline in daemon threads (``scan_workers`` of them) started and stopped by the
app's lifespan; the first thread also polls the store's import generation for the re-check.

Not here: the queue's rules (``registry/jobs.py``), the re-check's diffing and notifications (``recheck.py``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from trustyard.errors import TrustyardError
from trustyard.oci.digest import Digest
from trustyard.oci.mediatypes import MediaType
from trustyard.registry.jobs import SBOM_ARTIFACT_TYPE, Job, JobStatus, ScanJobs, StoredReport
from trustyard.registry.service import RegistryService
from trustyard.scan.cache import DirectoryLayerCache, LayerCache, decode_component, encode_component
from trustyard.scan.indexer import Indexer
from trustyard.scan.matcher import Matcher
from trustyard.scan.model import Component
from trustyard.scan.sbom.cyclonedx import to_cyclonedx_json
from trustyard.scan.sbom.spdx import to_spdx_json
from trustyard.scan.sources.registry import NotAnImageError, RegistryImageSource
from trustyard.scan.vulndb.store import StoredAffected, VulnerabilityStore, default_path, package_key
from trustyard.scan.vulnreport import finding_dict

log = logging.getLogger("trustyard.scan")

EMPTY_CONFIG: Final = b"{}"
INVENTORY_FORMAT: Final = 1


# -- the inventory: what the re-check matches again, without layers ----------------------------------------------


def encode_inventory(components: Sequence[Component], layers: Sequence[Digest | None]) -> str:
    """Components (with their file lists: the matcher needs OS-owned paths) and the layer order, as JSON."""
    return json.dumps(
        {
            "format": INVENTORY_FORMAT,
            "layers": [str(d) if d is not None else None for d in layers],
            "components": [encode_component(c) for c in components],
        },
        separators=(",", ":"),
    )


def decode_inventory(text: str) -> tuple[tuple[Component, ...], tuple[str | None, ...]]:
    """The components and layer digests ``encode_inventory`` wrote."""
    data = json.loads(text)
    parsed: dict[str, Digest] = {}
    components = tuple(decode_component(c, parsed) for c in data["components"])
    return components, tuple(data["layers"])


# -- the vulnerability store as the scanner sees it -----------------------------------------------------------


def store_generation(path: Path) -> int:
    """The store's import generation: the newest provenance row (every import adds one); 0 without a store.

    Every advisory row names the provenance row of the import that last wrote it, so "changed since
    generation G" is "written by a provenance row above G" (``changed_packages``).
    """
    if not path.exists():
        return 0
    try:
        with _read_only(path) as db:
            row = db.execute("SELECT max(id) FROM provenance").fetchone()
    except sqlite3.Error as e:
        log.warning("cannot read the generation of %s: %s", path, e)
        return 0
    return int(row[0] or 0)


ADVISORY_KEY: Final = "advisory:"
"""Index rows ``("advisory:<source>", id)`` name the advisories an inventory has findings from."""


def changed_packages(path: Path, since: int) -> set[tuple[str, str]]:
    """The index keys advisories written after generation ``since`` touch: every (ecosystem, indexed name) they
    name now, and the advisories themselves (an advisory that stops naming a package still reaches the
    inventories that had a finding from it)."""
    with _read_only(path) as db:
        rows = db.execute(
            "SELECT DISTINCT f.ecosystem, f.name FROM affected f JOIN advisories a ON a.pk = f.advisory"
            " WHERE a.provenance > ?",
            (since,),
        ).fetchall()
        advisories = db.execute("SELECT source, id FROM advisories WHERE provenance > ?", (since,)).fetchall()
    return {(str(e), str(n)) for e, n in rows} | {(ADVISORY_KEY + str(s), str(i)) for s, i in advisories}


class _ReadOnly:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)

    def __enter__(self) -> sqlite3.Connection:
        return self._db

    def __exit__(self, *exc: object) -> None:
        self._db.close()


def _read_only(path: Path) -> _ReadOnly:
    return _ReadOnly(path)


class RecordingStore(VulnerabilityStore):
    """The store, remembering every (ecosystem, package) a match asks for: the re-check index of an inventory.

    Lookups are also cached for the object's life, so that a re-check of many inventories asks the file once
    per package; ``take`` returns (and forgets) what was asked since the last call.
    """

    def __init__(self, path: Path, *, create: bool = True) -> None:
        super().__init__(path, create=create)
        self._asked: set[tuple[str, str]] = set()
        self._cache: dict[tuple[str, str], list[StoredAffected]] = {}

    def affected_by_package(self, ecosystem: str, name: str) -> list[StoredAffected]:
        """The stored entries, recording the lookup under the store's own indexed name."""
        key = (ecosystem, package_key(ecosystem, name))
        self._asked.add(key)
        if key not in self._cache:
            self._cache[key] = super().affected_by_package(ecosystem, name)
        return self._cache[key]

    def take(self) -> set[tuple[str, str]]:
        """The lookups made since the last call."""
        asked, self._asked = self._asked, set()
        return asked


@dataclass(frozen=True, slots=True)
class MatchOutcome:
    """One inventory matched: the findings document, the finding ids, the lookups made, the data's age."""

    findings: str
    ids: frozenset[str]
    packages: frozenset[tuple[str, str]]
    generation: int
    data_time: str | None


class InventoryMatcher:
    """Matches inventories against the store at ``path`` (or against nothing, saying so, when there is none)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.missing = not path.exists()
        self.generation = store_generation(path)
        # an absent store is an empty one in memory: the lookups are still recorded for the re-check index
        self._store = RecordingStore(Path(":memory:") if self.missing else path, create=self.missing)
        sources = self._store.sources()
        self._data = [{"source": s.source, "data_time": s.data_time} for s in sources]
        times = [s.data_time for s in sources if s.data_time]
        self.data_time = max(times) if times else None

    def close(self) -> None:
        """Close the store file."""
        self._store.close()

    def __enter__(self) -> InventoryMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def match(self, components: Sequence[Component], layers: Sequence[str | None]) -> MatchOutcome:
        """The findings of one inventory and the lookups that produced them."""
        self._store.take()
        result = Matcher(self._store).match(components)
        index = {d: i for i, d in enumerate(layers) if d is not None}
        doc: dict[str, Any] = {
            "status": "unknown" if self.missing else "ok",
            "reason": "no data: the vulnerability store does not exist yet (run `trustyard db import`)"
            if self.missing
            else None,
            "generation": self.generation,
            "data": self._data,
            "findings": [finding_dict(f, index) for f in result.findings],
            "notes": list(result.notes),
        }
        return MatchOutcome(
            findings=json.dumps(doc, separators=(",", ":")),
            ids=frozenset(f.id for f in result.findings),
            packages=frozenset(self._store.take())
            | {(ADVISORY_KEY + source, advisory) for f in result.findings for source, advisory in f.sources},
            generation=self.generation,
            data_time=self.data_time,
        )


# -- the pipeline -------------------------------------------------------------------------------------------------


class ScanPipeline:
    """Indexes, matches, stores and attaches, for one job at a time (thread-safe: no state between jobs)."""

    def __init__(
        self,
        *,
        registry: RegistryService,
        jobs: ScanJobs,
        vulndb: Path,
        cache: LayerCache | None,
        indexer: Indexer | None = None,
    ) -> None:
        self.registry = registry
        self.jobs = jobs
        self.vulndb = vulndb
        self.indexer = indexer or Indexer(cache=cache)

    @classmethod
    def from_data_dir(
        cls, registry: RegistryService, jobs: ScanJobs, data_dir: Path, *, vulndb: Path | None, fsync: bool
    ) -> ScanPipeline:
        """The pipeline with the layer cache and vulnerability store ``trustyard scan`` uses in ``data_dir``."""
        cache = DirectoryLayerCache(data_dir / "scan-cache", fsync=fsync)
        return cls(registry=registry, jobs=jobs, vulndb=vulndb or default_path(data_dir), cache=cache)

    def run(self, job: Job) -> JobStatus:
        """Do ``job`` and record its outcome; never raises for a bad image."""
        try:
            if job.index and self.jobs.report(job.digest) is None:
                status = self._index(job.digest)
                if status is not JobStatus.DONE:
                    return status
            self._attach_everywhere(job.digest)
        except NotAnImageError as e:
            self.jobs.finish(job.digest, JobStatus.SKIPPED, e.message)
            return JobStatus.SKIPPED
        except TrustyardError as e:
            log.warning("scan of %s failed: %s", job.digest, e.message)
            self.jobs.finish(job.digest, JobStatus.FAILED, e.message)
            return JobStatus.FAILED
        except Exception as e:  # a bug must fail the job, not the worker (and not retry forever)
            log.exception("scan of %s failed unexpectedly", job.digest)
            self.jobs.finish(job.digest, JobStatus.FAILED, f"internal error: {type(e).__name__}: {e}")
            return JobStatus.FAILED
        if job.index:
            self.jobs.finish(job.digest, JobStatus.DONE)
        return JobStatus.DONE

    def _media_type(self, digest: str) -> str | None:
        for name in self.jobs.repositories_of(digest):
            return self.registry.head_manifest(name, digest).media_type
        return None

    def _index(self, digest: str) -> JobStatus:
        media_type = self._media_type(digest)
        if media_type is None:
            self.jobs.finish(digest, JobStatus.SKIPPED, "the manifest was deleted before it was scanned")
            return JobStatus.SKIPPED
        source = RegistryImageSource(self.registry.store, Digest.parse(digest), media_type=media_type)
        try:
            report = self.indexer.index(source)
        finally:
            source.close()
        cyclonedx = to_cyclonedx_json(report)
        spdx = to_spdx_json(report)
        layers = [s.digest for s in report.layers]
        inventory = encode_inventory(report.components, layers)
        with InventoryMatcher(self.vulndb) as matcher:
            outcome = matcher.match(report.components, [str(d) if d else None for d in layers])
        now = time.time()
        stored = StoredReport(
            digest=digest,
            indexed_at=now,
            checked_at=now,
            generation=outcome.generation,
            data_time=outcome.data_time,
            inventory=inventory,
            cyclonedx=cyclonedx,
            spdx=spdx,
            findings=outcome.findings,
            finding_ids=tuple(sorted(outcome.ids)),
            sbom_digest=None,
        )
        self.jobs.store_report(stored, outcome.packages)
        log.info(
            "image indexed",
            extra={"digest": digest, "components": len(report.components), "findings": len(outcome.ids)},
        )
        return JobStatus.DONE

    def _attach_everywhere(self, digest: str) -> None:
        stored = self.jobs.report(digest)
        if stored is None:
            return
        for name in self.jobs.repositories_of(digest):
            sbom = self.attach(name, digest, stored.cyclonedx.encode())
            if stored.sbom_digest != str(sbom):
                self.jobs.set_sbom_digest(digest, str(sbom))
                stored = self.jobs.report(digest) or stored

    def attach(self, name: str, digest: str, cyclonedx: bytes) -> Digest:
        """Push the SBOM to ``name`` as a referrer of ``digest`` (idempotent: the same bytes, the same digest)."""
        subject = self.registry.head_manifest(name, digest)
        sbom = self.registry.put_small_blob(name, cyclonedx)
        config = self.registry.put_small_blob(name, EMPTY_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MediaType.OCI_MANIFEST.value,
            "artifactType": SBOM_ARTIFACT_TYPE,
            "config": {"mediaType": MediaType.OCI_EMPTY.value, "digest": str(config), "size": len(EMPTY_CONFIG)},
            "layers": [{"mediaType": SBOM_ARTIFACT_TYPE, "digest": str(sbom), "size": len(cyclonedx)}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
            "annotations": {"dev.trustyard.sbom.format": "CycloneDX 1.6"},
        }
        body = json.dumps(manifest, indent=2).encode()
        reference = str(Digest.of(body))
        self.registry.put_manifest(name, reference, body, MediaType.OCI_MANIFEST.value)
        return sbom


# -- workers ------------------------------------------------------------------------------------------------------


class ScanWorkers:
    """Daemon threads taking jobs from the queue; the first also runs ``tick`` (the re-check) periodically."""

    def __init__(
        self,
        pipeline: ScanPipeline,
        *,
        threads: int,
        tick: Callable[[], None] | None = None,
        tick_interval: float = 10.0,
        idle_wait: float = 1.0,
    ) -> None:
        self.pipeline = pipeline
        self.jobs = pipeline.jobs
        self._count = threads
        self._tick = tick
        self._tick_interval = tick_interval
        self._idle_wait = idle_wait
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = 0  # jobs in hand (an attach-only job is no longer "pending" in the table while it runs)
        self._busy_lock = threading.Lock()

    def start(self) -> None:
        """Recover jobs a dead process left running, queue what was never queued, start the threads."""
        recovered = self.jobs.recover()
        added = self.jobs.backfill()
        if recovered or added:
            log.info("scan queue restored", extra={"requeued": recovered, "backfilled": added})
        for i in range(self._count):
            thread = threading.Thread(target=self._loop, args=(i == 0,), name=f"trustyard-scan-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """A job was queued: stop waiting."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the threads to finish their job and stop; a job cut short is re-queued at the next start."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self, ticks: bool) -> None:
        next_tick = 0.0
        with self._busy_lock:
            self._busy += 1
        try:
            self._work(ticks, next_tick)
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _work(self, ticks: bool, next_tick: float) -> None:
        while not self._stop.is_set():
            if ticks and self._tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self._tick_interval
                try:
                    self._tick()
                except Exception:  # a broken store or database: said once per interval, tried again after it
                    log.exception("vulnerability re-check failed")
            try:
                job = self.jobs.claim()
            except Exception:  # the database may be down for a while: wait and try again
                log.exception("scan worker cannot reach its queue")
                self._stop.wait(self._idle_wait)
                continue
            if job is None:
                with self._busy_lock:
                    self._busy -= 1
                self._wake.wait(self._idle_wait)
                self._wake.clear()
                with self._busy_lock:
                    self._busy += 1
                continue
            self.pipeline.run(job)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Whether the queue emptied within ``timeout`` seconds (for tests and orderly shutdowns)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._busy_lock:
                busy = self._busy
            if busy == 0 and self.jobs.pending() == 0:
                return True
            time.sleep(0.02)
        return False


def enqueue_hook(jobs: ScanJobs, wake: Callable[[], None]) -> Callable[[str, str, str | None], None]:
    """The ``RegistryService.on_push`` callback: queue every pushed manifest except our own SBOM referrers."""

    def on_push(repository: str, digest: str, artifact_type: str | None) -> None:
        if artifact_type == SBOM_ARTIFACT_TYPE:
            return
        jobs.enqueue(digest)
        wake()

    return on_push


__all__ = [
    "InventoryMatcher",
    "MatchOutcome",
    "RecordingStore",
    "ScanPipeline",
    "ScanWorkers",
    "changed_packages",
    "decode_inventory",
    "encode_inventory",
    "enqueue_hook",
    "store_generation",
]
