"""One answer to "may this image be pulled, and why": signature, scan and the project's pull gates together.

``GET /api/v1/repositories/{name}/verdict/{reference}`` (``auth/api.py``) serves it to the Docker
authorization plugin (which refuses ``docker run`` of what the registry would refuse) and to the web interface
(which shows the badge). The contract, which those consumers rely on:

``{"repository", "reference", "digest", "signed", "signed_digest", "signers", "scan", "pull_allowed",
"refusal"}`` where ``digest`` is what the reference resolves to now; ``signed`` is, for a tag, a valid signed
target for that tag whose digest equals ``digest`` (for a digest: some signed target names it, or names an
index that lists it); ``signed_digest`` the digest the tag's signed target names (``null`` when unsigned);
``signers`` as ``docker trust inspect`` names them; ``scan`` ``{"status": none|queued|running|done|failed,
"worst": critical|high|medium|low|unknown|null, "counts": {...}}`` counting findings still affected once the
image's VEX referrers and the project's allowlist are applied (``scan.states``, as the pull gate does; a
platform image with no scan of its own takes that of the index it was scanned through);
``pull_allowed``/``refusal`` what the registry's pull gates decide for a GET of this reference now (the
message a refused client is shown).

Not here: authorization of the caller (the endpoint), the gates' rules (``registry.gates`` and the gates).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from trustyard.auth.model import ProjectPolicy
from trustyard.auth.service import AccessControl
from trustyard.db.engine import Database
from trustyard.oci.reference import is_digest
from trustyard.registry.gates import Pull, first_refusal
from trustyard.registry.jobs import JobStatus, ScanJobs
from trustyard.registry.metadata import ManifestRecord, MetadataStore
from trustyard.registry.service import RegistryService
from trustyard.scan.states import judge_stored, stored_scan
from trustyard.trust.gate import gates_of
from trustyard.trust.signed import SignedLookup

__all__ = ["SEVERITIES", "ScanCounts", "ScanVerdict", "Verdict", "judge", "pull_gates"]

Severity = Literal["critical", "high", "medium", "low", "unknown"]
SEVERITIES: Final[tuple[Severity, ...]] = ("critical", "high", "medium", "low", "unknown")
ScanState = Literal["none", "queued", "running", "done", "failed"]
_STATE: Final[dict[JobStatus, ScanState]] = {
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.DONE: "done",
    JobStatus.FAILED: "failed",
    JobStatus.SKIPPED: "none",  # an artifact, not an image: there is nothing to scan
}

PullCheck = Callable[[ManifestRecord], str | None]
"""The pull gates for a resolved manifest: ``None`` to allow, else the refusal message."""


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScanCounts(_Out):
    """Findings per severity, suppressed ones (VEX, allowlist) left out."""

    critical: int = 0
    high: int = 0
    medium: int = 0
    low: int = 0
    unknown: int = 0


class ScanVerdict(_Out):
    """Where the image is in the scan pipeline and the worst of what was found."""

    status: ScanState
    worst: Severity | None = Field(description="the highest severity with a finding; null when none (or not scanned)")
    counts: ScanCounts


class Verdict(_Out):
    """Whether a reference is signed, what its scan found, and whether the registry lets it be pulled now."""

    repository: str
    reference: str
    digest: str = Field(description="the manifest digest the reference resolves to now")
    signed: bool
    signed_digest: str | None = Field(description="the digest the reference's valid signed target names")
    signers: list[str] = Field(description="the signing roles as docker trust inspect names them")
    scan: ScanVerdict
    pull_allowed: bool
    refusal: str | None = Field(description="why a pull is refused (what the client is shown); null if allowed")


def pull_gates(access: AccessControl, repository: str, reference: str, subject: str) -> PullCheck:
    """What the registry's door would answer a GET of ``reference`` by ``subject``: its pull gates' decision.

    Fails closed: a project that demands something while no gates run in this process is refused.
    """
    policy = access.policy.pull_policy(repository)

    def check(record: ManifestRecord) -> str | None:
        if not policy.gated:
            return None
        gates = gates_of(access)
        if gates is None:
            return "the registry's pull gates do not run in this process; the pull cannot be judged"
        pull = Pull(repository, reference, record.digest, record.media_type, policy, subject)
        refusal = first_refusal(gates, pull)
        return None if refusal is None else refusal.message

    return check


def _scan(
    db: Database, registry: RegistryService | None, policy: ProjectPolicy, repository: str, digest: str
) -> ScanVerdict:
    """The scan of ``digest`` (or of the index it was scanned through), its findings judged as the pull gate
    judges them (``scan.states``: VEX referrers and the project's allowlist)."""
    jobs = ScanJobs(db)
    scan = stored_scan(jobs, registry, repository, digest)
    job = jobs.state(scan.scanned)
    counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
    if scan.findings is not None:
        document = json.loads(scan.findings)
        judged = judge_stored(scan, document, registry=registry, repository=repository, policy=policy, now=time.time())
        counts.update(judged.counts())
    worst: Severity | None = next((s for s in SEVERITIES if counts[s]), None)
    status: ScanState = "none" if job is None else _STATE[job.status]
    return ScanVerdict(status=status, worst=worst, counts=ScanCounts(**counts))


def judge(
    db: Database,
    lookup: SignedLookup,
    repository: str,
    reference: str,
    gates: PullCheck,
    hosts: frozenset[str],
    *,
    registry: RegistryService | None = None,
    policy: ProjectPolicy | None = None,
) -> Verdict | None:
    """The verdict on ``reference`` (a tag or a digest) of ``repository``; ``None`` when it names no manifest.

        ``hosts``: the host names of the request besides the configured ones (Docker's GUNs carry them);
        ``registry`` reads VEX referrers and indexes (without it neither is used); ``policy`` is the project's
    (its allowlist; none: nothing accepted).
    """
    meta = MetadataStore(db)
    by_digest = is_digest(reference)
    record = meta.get_manifest(repository, reference) if by_digest else meta.resolve_tag(repository, reference)
    if record is None:
        return None
    if by_digest:
        judged = lookup.judge_digest(repository, record.digest, hosts)
    else:
        judged = lookup.judge_tag(repository, reference, record.digest, hosts)
    refusal = gates(record)
    return Verdict(
        repository=repository,
        reference=reference,
        digest=record.digest,
        signed=judged.signed,
        signed_digest=judged.signed_digest,
        signers=list(judged.signers),
        scan=_scan(db, registry, policy or ProjectPolicy(), repository, record.digest),
        pull_allowed=refusal is None,
        refusal=refusal,
    )
