"""The vulnerability pull gate: a project can refuse pulls of images with findings at or above a severity, and
of images not scanned yet (``auth.model.ProjectPolicy``: ``block_severity``, ``block_unscanned``, ``allowlist``).

On a manifest GET in such a project (``registry.gates`` asks), the gate reads what the background scanner stored
for the digest (``registry.jobs``: no layer is read, the answer costs two indexed rows):
- a platform image with no scan of its own that an index of the repository was scanned through takes that
  index's scan (``scan.states.stored_scan``: the same image), with the VEX documents attached to either;
- not indexed yet (queued, running, failed, never queued) or matched without vulnerability data: "unscanned",
  refused when ``block_unscanned`` says so, else let through (the severity cannot be judged yet);
- an artifact the scanner skips (signatures, SBOMs, VEX documents): never refused, it is not an image;
- else the stored findings, with the OpenVEX documents attached to the image as referrers
  (``artifactType: application/openvex+json``, the documents as layers) applied as ``trustyard scan --vex``
  applies them (``not_affected``/``fixed`` take a finding out of the count), then the project's allowlist
  (an entry names any ID or alias; expired entries are ignored), both by ``scan.states.judge``, which the
  findings the API serves go through too. What is left at or above the threshold is
  refused with the OCI ``DENIED`` error naming the worst findings (up to five) and how many there are.

A VEX document that cannot be read is ignored with a log line rather than refusing: it can only lift findings,
so ignoring it is the strict reading. Data the gate cannot read at all (the database) refuses (fail closed).

Not here: the registry's door (``registry.gates``, its routes), matching (``scan.pipeline``), the allowlist's
storage (``auth``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Final

from trustyard.auth.model import ProjectPolicy
from trustyard.auth.policy import project_of
from trustyard.registry.gates import GateContext, Pull, Refusal, register
from trustyard.registry.jobs import JobStatus, ScanJobs
from trustyard.registry.service import RegistryService
from trustyard.scan.findings import Level
from trustyard.scan.states import VEX_ARTIFACT_TYPE, judge_stored, stored_scan

__all__ = ["NAME", "VEX_ARTIFACT_TYPE", "VulnerabilityGate"]

NAME: Final = "vulnerabilities"
SHOWN: Final = 5


@dataclass(frozen=True, slots=True)
class _Counted:
    """A finding that still counts, as the refusal names it."""

    id: str
    severity: Level
    package: str
    version: str
    fixed: tuple[str, ...]

    def describe(self) -> str:
        fix = f", fixed in {self.fixed[0]}" if self.fixed else ""
        return f"{self.id} ({self.severity.value}, {self.package} {self.version}{fix})"


@register(NAME)
class VulnerabilityGate:
    """Refuses pulls of images with findings at or above the project's threshold, or not scanned when required."""

    name = NAME

    def __init__(self, context: GateContext) -> None:
        self.registry: RegistryService = context.registry
        self.jobs = ScanJobs(context.registry.db)

    def applies(self, policy: ProjectPolicy) -> bool:
        """Projects with a severity threshold or that refuse unscanned images."""
        return policy.block_severity is not None or policy.block_unscanned

    def check(self, pull: Pull) -> Refusal | None:
        """``None`` to serve the manifest, else the refusal naming the worst findings (or the missing scan)."""
        policy = pull.policy
        project = project_of(pull.repository)
        scan = stored_scan(self.jobs, self.registry, pull.repository, pull.digest)
        findings = scan.findings
        if findings is None:
            state = self.jobs.state(pull.digest)
            if state is not None and state.status is JobStatus.SKIPPED:
                return None  # an artifact, not an image
            if not policy.block_unscanned:
                return None
            status = state.status.value if state is not None else "not queued"
            reason = f": {state.error}" if state is not None and state.error else ""
            return Refusal(
                self.name,
                f"project {project!r} refuses images not scanned yet, and {pull.repository}@{pull.digest} is"
                f" {status}{reason}; pull again when its scan is done",
                {"digest": pull.digest, "scan_status": status},
            )
        document = json.loads(findings)
        if document.get("status") != "ok":
            if not policy.block_unscanned:
                return None
            return Refusal(
                self.name,
                f"project {project!r} refuses images not scanned yet, and {pull.repository}@{pull.digest} was"
                f" matched without vulnerability data ({document.get('reason') or 'no data'})",
                {"digest": pull.digest, "scan_status": "no data"},
            )
        if policy.block_severity is None:
            return None
        threshold = Level(policy.block_severity)
        judged = judge_stored(
            scan, document, registry=self.registry, repository=pull.repository, policy=policy, now=time.time()
        )
        counted = [
            _Counted(f.id, f.severity, f.package, f.version, f.fixed_versions)
            for f in judged.counting
            if f.severity.at_least(threshold)
        ]
        if not counted:
            return None
        counted.sort(key=lambda c: (-c.severity.rank, c.id, c.package))
        shown = "; ".join(c.describe() for c in counted[:SHOWN])
        more = f" and {len(counted) - SHOWN} more" if len(counted) > SHOWN else ""
        through = f" (scanned through its index {scan.scanned})" if scan.also_digests else ""
        return Refusal(
            self.name,
            f"project {project!r} refuses images with {policy.block_severity} or worse findings:"
            f" {pull.repository}@{pull.digest}{through} has {len(counted)}: {shown}{more}",
            {
                "digest": pull.digest,
                "threshold": policy.block_severity,
                "findings": [{"id": c.id, "severity": c.severity.value, "package": c.package} for c in counted[:50]],
            },
        )
