"""The registry's background scanning, wired from settings: queue, pipeline, workers, re-check, webhook.

``create_app`` builds one ``BackgroundScanner`` when ``scan_workers`` is above 0, starts it in its lifespan
(after which every manifest push is queued through ``RegistryService.on_push``) and stops it on shutdown.
Everything it holds is described in ``pipeline.py``, ``recheck.py`` and ``webhook.py``; this module only
puts them together, so that the app has one object to start and stop.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustyard.auth.audit import AuditLog
from trustyard.config import Settings
from trustyard.registry.jobs import ScanJobs
from trustyard.registry.service import RegistryService
from trustyard.scan.pipeline import ScanPipeline, ScanWorkers, enqueue_hook
from trustyard.scan.recheck import Rechecker
from trustyard.scan.webhook import WebhookNotifier


@dataclass
class BackgroundScanner:
    """The scanning parts of one registry process."""

    registry: RegistryService
    jobs: ScanJobs
    pipeline: ScanPipeline
    workers: ScanWorkers
    rechecker: Rechecker
    notifier: WebhookNotifier | None

    @classmethod
    def from_settings(cls, settings: Settings, registry: RegistryService, audit: AuditLog) -> BackgroundScanner:
        """Everything wired from ``settings`` (not started)."""
        jobs = ScanJobs(registry.db)
        pipeline = ScanPipeline.from_data_dir(
            registry, jobs, settings.data_dir, vulndb=settings.vulndb_path, fsync=settings.fsync
        )
        notifier = None
        if settings.webhook_url:
            secret = settings.webhook_secret.get_secret_value().encode() if settings.webhook_secret else None
            notifier = WebhookNotifier(settings.webhook_url, secret, attempts=settings.webhook_attempts)
        rechecker = Rechecker(jobs=jobs, vulndb=pipeline.vulndb, audit=audit, notifier=notifier)
        workers = ScanWorkers(
            pipeline,
            threads=settings.scan_workers,
            tick=rechecker.tick,
            tick_interval=settings.scan_recheck_interval,
        )
        return cls(registry, jobs, pipeline, workers, rechecker, notifier)

    def start(self) -> None:
        """Queue pushes from now on, restore the queue, start the threads."""
        if self.notifier is not None:
            self.notifier.start()
        self.registry.on_push = enqueue_hook(self.jobs, self.workers.wake)
        self.workers.start()

    def stop(self) -> None:
        """Stop taking jobs (a job cut short runs again at the next start) and deliver queued webhooks."""
        self.registry.on_push = None
        self.workers.stop()
        if self.notifier is not None:
            self.notifier.stop()
