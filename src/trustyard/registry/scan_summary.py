"""Scan summaries of many images at once: each image's job state and how many findings of each severity it has,
for tables that show one severity bar per image (a repository's tags, the dashboard).

A stored findings document can be large (an OS image has hundreds of findings); it is parsed once per version
(digest and ``checked_at``, which every re-check moves) and the counts kept, so a page listing fifty tags reads
fifty small rows and parses nothing it parsed before. Suppressed findings (VEX, allowlist) are not counted, as in
the verdict and the ``--fail-on`` threshold.

Not here: the findings themselves (``registry/jobs.py`` stores them, the API serves them).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from trustyard.db.models import scan_jobs, scan_reports
from trustyard.registry.service import RegistryService

__all__ = ["SEVERITIES", "Answer", "Counted", "ScanSummary", "counted_reports", "scan_summaries"]

SEVERITIES: Final = ("critical", "high", "medium", "low", "unknown")
"""Worst first: the order of every severity bar and count."""


class Answer(BaseModel):
    """The base of the browsing answers (here, ``overview.py``, ``exposure.py``): frozen, built only by the server."""

    model_config = ConfigDict(frozen=True)


class ScanSummary(Answer):
    """An image's scan in brief: the job's state and how many findings of each severity it has now."""

    status: str = Field(description="queued | running | done | failed | skipped | none (never queued)")
    error: str | None = None
    findings: dict[str, int] = Field(default_factory=dict, description="severity -> count (suppressed excluded)")
    data: Literal["ok", "unknown"] | None = Field(default=None, description="unknown: no vulnerability data")
    checked_at: float | None = None

    @property
    def worst(self) -> str | None:
        """The worst severity with a finding, if any."""
        return next((s for s in SEVERITIES if self.findings.get(s)), None)

    @property
    def total(self) -> int:
        """How many findings in all."""
        return sum(self.findings.values())


# -- scan summaries --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counted:
    """What the summaries keep of a findings document: counts by severity, data status, vulnerable packages."""

    counts: dict[str, int]
    data: Literal["ok", "unknown"]
    packages: frozenset[tuple[str, str, str]]
    """(type, name, installed version) of every package with an unsuppressed finding."""


def _counts(findings_json: str) -> Counted:
    """Severity counts of a stored findings document (one per finding, suppressed ones not counted)."""
    doc = json.loads(findings_json)
    counts: Counter[str] = Counter()
    packages: set[tuple[str, str, str]] = set()
    for finding in doc.get("findings", []):
        if finding.get("suppressed"):
            continue
        severity = finding.get("severity")
        counts[severity if severity in SEVERITIES else "unknown"] += 1
        package = finding.get("package") or {}
        packages.add((str(package.get("type", "")), str(package.get("name", "")), str(package.get("version", ""))))
    status: Literal["ok", "unknown"] = "unknown" if doc.get("status") == "unknown" else "ok"
    return Counted({s: counts[s] for s in SEVERITIES}, status, frozenset(packages))


class _SummaryCache:
    """Severity counts by (digest, checked_at): a findings document is parsed again only after a re-check."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._entries: dict[tuple[str, float], Counted] = {}

    def get(self, key: tuple[str, float]) -> Counted | None:
        """The counted document, if this version of it was counted before."""
        return self._entries.get(key)

    def put(self, key: tuple[str, float], value: Counted) -> None:
        """Remember a counted document (the cache is emptied when full: re-counting is cheap)."""
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = value


_SUMMARIES: Final = _SummaryCache()


def counted_reports(
    registry: RegistryService, digests: Sequence[str]
) -> dict[str, tuple[str, str | None, Counted | None, float | None]]:
    """(job status, error, counted findings, checked_at) of each of ``digests`` that was ever queued."""
    if not digests:
        return {}
    with registry.db.read() as conn:
        jobs = conn.execute(
            select(scan_jobs.c.digest, scan_jobs.c.status, scan_jobs.c.error).where(
                scan_jobs.c.digest.in_(list(digests))
            )
        ).all()
        checked = dict(
            conn.execute(
                select(scan_reports.c.digest, scan_reports.c.checked_at).where(scan_reports.c.digest.in_(list(digests)))
            ).all()
        )
        missing = [d for d, at in checked.items() if _SUMMARIES.get((d, float(at))) is None]
        if missing:
            for digest, at, text in conn.execute(
                select(scan_reports.c.digest, scan_reports.c.checked_at, scan_reports.c.findings).where(
                    scan_reports.c.digest.in_(missing)
                )
            ):
                _SUMMARIES.put((digest, float(at)), _counts(text))
    found = {}
    for digest, status, error in jobs:
        at = checked.get(digest)
        counted = None if at is None else _SUMMARIES.get((digest, float(at)))
        found[digest] = (status, error, counted, None if at is None else float(at))
    return found


def scan_summaries(registry: RegistryService, digests: Sequence[str]) -> dict[str, ScanSummary]:
    """The scan summary of each of ``digests`` (``status: none`` for one never queued)."""
    found: dict[str, ScanSummary] = {d: ScanSummary(status="none") for d in digests}
    for digest, (status, error, counted, at) in counted_reports(registry, digests).items():
        found[digest] = ScanSummary(
            status=status,
            error=error,
            findings=counted.counts if counted else {},
            data=counted.data if counted else None,
            checked_at=at,
        )
    return found
