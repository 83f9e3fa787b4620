"""The scan queue's rules on SQLite and PostgreSQL: one job per digest, claims, recovery after a crash, no crash loop.

Driven through ``ScanJobs`` over a real migrated database (``registry_service``); the worker threads and the
pipeline are exercised end to end in ``test_scan_pipeline.py``.
"""

from __future__ import annotations

from trustyard.registry.jobs import MAX_ATTEMPTS, JobStatus, ScanJobs
from trustyard.registry.service import RegistryService

DIGEST = "sha256:" + "1" * 64
OTHER = "sha256:" + "2" * 64


def test_a_digest_is_one_job_however_often_it_is_pushed(registry_service: RegistryService) -> None:
    jobs = ScanJobs(registry_service.db)
    jobs.enqueue(DIGEST)
    jobs.enqueue(DIGEST)
    job = jobs.claim()
    assert job is not None and (job.digest, job.index, job.attempts) == (DIGEST, True, 1)
    assert jobs.claim() is None
    jobs.finish(DIGEST, JobStatus.DONE)
    # pushed again (to another repository): only the SBOM is attached, the image is not indexed again
    jobs.enqueue(DIGEST)
    assert jobs.pending() == 1
    again = jobs.claim()
    assert again is not None and (again.digest, again.index) == (DIGEST, False)
    state = jobs.state(DIGEST)
    assert state is not None and state.status is JobStatus.DONE and jobs.pending() == 0


def test_jobs_are_claimed_oldest_first(registry_service: RegistryService) -> None:
    jobs = ScanJobs(registry_service.db)
    jobs.enqueue(OTHER)
    jobs.enqueue(DIGEST)
    first, second = jobs.claim(), jobs.claim()
    assert first is not None and second is not None and (first.digest, second.digest) == (OTHER, DIGEST)


def test_a_job_that_keeps_killing_the_worker_is_failed_not_retried(registry_service: RegistryService) -> None:
    jobs = ScanJobs(registry_service.db)
    jobs.enqueue(DIGEST)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job = jobs.claim()
        assert job is not None and job.attempts == attempt
        # the process dies here; the next start recovers
        requeued = jobs.recover()
        assert requeued == (1 if attempt < MAX_ATTEMPTS else 0)
    state = jobs.state(DIGEST)
    assert state is not None and state.status is JobStatus.FAILED
    assert state.error == f"the scan worker stopped during this job {MAX_ATTEMPTS} times; not tried again"
    assert jobs.claim() is None


def test_a_failed_job_is_not_queued_again_by_a_push(registry_service: RegistryService) -> None:
    jobs = ScanJobs(registry_service.db)
    jobs.enqueue(DIGEST)
    assert jobs.claim() is not None
    jobs.finish(DIGEST, JobStatus.FAILED, "layer 0: not a tar archive")
    jobs.enqueue(DIGEST)
    assert jobs.claim() is None
    state = jobs.state(DIGEST)
    assert state is not None and state.error == "layer 0: not a tar archive"
