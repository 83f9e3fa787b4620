"""The state of each stored finding of an image in a project: still affected, or lifted by VEX or the allowlist.

The background scanner stores findings as matched (``registry.jobs``), the same for every repository and project
holding the image. What lifts a finding depends on where the image is asked for: the OpenVEX documents attached
to it as referrers in that repository (``artifactType: application/openvex+json``, the documents as layers), and
the allowlist of that repository's project. This module is the one place that applies both, so the pull gate
(``scan.gate``), the findings the management API serves (``auth.api``) and the verdict (``trust.verdict``) cannot
disagree about what still counts:

- ``affected``: nothing lifts it;
- ``not_affected`` / ``fixed``: a VEX statement says so (its justification and detail kept), applied as
  ``trustyard scan --vex`` applies them (``scan.vex.apply``: latest statement wins);
- ``accepted``: an unexpired entry of the project's allowlist names the finding's ID or any alias (the entry's
  reason and expiry kept). An expired entry is ignored. VEX is applied first: it states a fact, the allowlist
  records a decision, so a finding VEX already lifted keeps VEX's state.

A VEX document that cannot be read is skipped with a log line: it can only lift findings, so skipping it is the
strict reading.

Not here: refusing pulls (``scan.gate``), matching (``scan.matcher``), parsing OpenVEX (``scan.vex``), storing
the allowlist (``auth``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from trustyard.auth.model import AcceptedVulnerability, ProjectPolicy
from trustyard.auth.policy import project_of
from trustyard.errors import TrustyardError
from trustyard.oci.manifest import ImageIndex, parse_manifest
from trustyard.registry.jobs import ScanJobs
from trustyard.registry.metadata import MetadataStore
from trustyard.registry.service import RegistryService
from trustyard.scan.findings import Finding, FindingStatus, Level, Mark, Suppression
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.sources.base import platform_choice
from trustyard.scan.vex import VexError, VexStatement, apply, parse_openvex

__all__ = [
    "MAX_VEX_BYTES",
    "VEX_ARTIFACT_TYPE",
    "Judged",
    "State",
    "StoredScan",
    "judge",
    "judge_stored",
    "mark_document",
    "stored_finding",
    "stored_scan",
    "vex_referrers",
]

VEX_ARTIFACT_TYPE: Final = "application/openvex+json"
"""Referrers of this artifact type carry OpenVEX documents about the image they name."""
MAX_VEX_BYTES: Final = 1024 * 1024
"""A VEX layer larger than this is not read (a document about one image is a few kilobytes)."""
log = logging.getLogger(__name__)


class State(StrEnum):
    """Where a finding stands for the image in its project: counting (``affected``) or lifted, and by what."""

    AFFECTED = "affected"
    NOT_AFFECTED = "not_affected"
    FIXED = "fixed"
    ACCEPTED = "accepted"


def state_of(finding: Finding) -> State:
    """The finding's state: its mark (``scan.findings.Mark`` values are ``State`` values) or ``affected``."""
    return State.AFFECTED if finding.suppression is None else State(finding.suppression.mark.value)


@dataclass(frozen=True, slots=True)
class Judged:
    """Findings with their states set, in the order given."""

    findings: tuple[Finding, ...]

    @property
    def counting(self) -> tuple[Finding, ...]:
        """The findings still ``affected``: what a severity threshold and the counts look at."""
        return tuple(f for f in self.findings if f.suppression is None)

    def counts(self) -> dict[str, int]:
        """How many findings are still affected, per severity (every level present, zero when none)."""
        counts = dict.fromkeys((lv.value for lv in Level), 0)
        for finding in self.counting:
            counts[finding.severity.value] += 1
        return counts


def _accepting(policy: ProjectPolicy, ids: frozenset[str], now: float) -> AcceptedVulnerability | None:
    return next((a for a in policy.allowlist if a.id in ids and a.active(now)), None)


def judge(
    findings: Sequence[Finding],
    *,
    statements: Iterable[VexStatement],
    policy: ProjectPolicy,
    project: str,
    image_digest: str,
    now: float,
    also_digests: Iterable[str] = (),
) -> Judged:
    """Set each finding's state: VEX statements first, then the project's unexpired allowlist entries.

    ``also_digests``: the index the image was scanned through (``stored_scan``), which VEX products may name.
    """
    vexed = apply(findings, statements=statements, image_digest=image_digest, also_digests=also_digests).findings
    out = []
    for finding in vexed:
        entry = None if finding.suppression is not None else _accepting(policy, finding.ids, now)
        if entry is not None:
            expires = None if entry.expires_at is None else datetime.fromtimestamp(entry.expires_at, UTC).isoformat()
            mark = Suppression(Mark.ACCEPTED, f"allowlist of project {project!r}", "", entry.reason, expires)
            finding = replace(finding, suppression=mark)
        out.append(finding)
    return Judged(tuple(out))


def stored_finding(data: Mapping[str, Any]) -> Finding:
    """A stored finding (``vulnreport.finding_dict``) back as a ``Finding``, as far as VEX and the states need it.

    A mark stored with it (a report written by ``trustyard scan --vex``) is kept.
    """
    package = data.get("package") or {}
    name, version = package.get("name", ""), package.get("version", "")
    kind = ComponentType(package.get("type", ComponentType.GENERIC.value))
    component = Component(kind, name, version, purl=package.get("purl"))
    stored = data.get("suppressed")
    suppression = None
    if isinstance(stored, dict):
        suppression = Suppression(
            Mark(stored["state"]),
            stored.get("origin", ""),
            stored.get("justification", ""),
            stored.get("detail", ""),
            stored.get("expires"),
        )
    return Finding(
        id=data["id"],
        aliases=tuple(data.get("aliases", ())),
        component=component,
        package=data.get("matched_package") or name,
        version=data.get("installed_version") or version,
        fixed_versions=tuple(data.get("fixed_versions", ())),
        status=FindingStatus(data.get("status", "affected")),
        severity=Level(data.get("severity", "unknown")),
        ratings=(),
        summary=data.get("summary", ""),
        references=(),
        sources=(),
        suppression=suppression,
    )


def vex_referrers(registry: RegistryService, repository: str, digest: str) -> list[VexStatement]:
    """The statements of the OpenVEX documents attached to ``digest`` in ``repository`` (unreadable ones skipped)."""
    statements: list[VexStatement] = []
    try:
        index = json.loads(registry.referrers(repository, digest, VEX_ARTIFACT_TYPE))
        for descriptor in index.get("manifests", []):
            manifest = json.loads(registry.get_manifest(repository, descriptor["digest"]).body)
            for layer in manifest.get("layers", []):
                if layer.get("size", MAX_VEX_BYTES + 1) > MAX_VEX_BYTES:
                    continue
                body = b"".join(registry.read_blob(repository, layer["digest"], 0, layer["size"]))
                try:
                    statements += parse_openvex(body, f"{repository}@{descriptor['digest']}")
                except VexError as e:
                    log.warning("VEX referrer ignored: %s", e.message)
    except (TrustyardError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("VEX referrers of %s@%s not read: %s", repository, digest, e)
    return statements


@dataclass(frozen=True, slots=True)
class StoredScan:
    """The stored scan that stands for a manifest pulled from a repository."""

    pulled: str
    scanned: str
    """The manifest whose scan it is: ``pulled`` itself, or the index ``pulled`` was scanned through."""
    findings: str | None
    """That scan's stored findings document (JSON); ``None`` when there is none yet."""

    @property
    def also_digests(self) -> tuple[str, ...]:
        """The index, when the scan is borrowed from one: VEX statements about it hold for ``pulled`` too."""
        return () if self.scanned == self.pulled else (self.scanned,)


def stored_scan(jobs: ScanJobs, registry: RegistryService | None, repository: str, digest: str) -> StoredScan:
    """The scan that stands for ``digest`` pulled from ``repository``: its own when it has one, else that of an
    index in ``repository`` listing it whose scan followed to it.

    The scanner indexes an index as its linux/amd64 image (``scan.sources.base.platform_choice``), so that
    index's findings are the findings of exactly that child: the same manifest, the same layers. A client that
    pulls a tag naming an index then asks for that child by digest (docker, podman), possibly before the child's
    own job ran; without this the child would be judged unscanned. The index's other platform images are other
    images and borrow nothing. Without the registry (``None``) the index cannot be read, and nothing is borrowed.
    """
    findings = jobs.findings_of(digest)
    if findings is not None or registry is None:
        return StoredScan(digest, digest, findings)
    for index in MetadataStore(jobs.db).indexes_listing(repository, digest):
        index_findings = jobs.findings_of(index)
        if index_findings is not None and _followed(registry, repository, index) == digest:
            return StoredScan(digest, index, index_findings)
    return StoredScan(digest, digest, None)


def judge_stored(
    scan: StoredScan,
    document: Mapping[str, Any],
    *,
    registry: RegistryService | None,
    repository: str,
    policy: ProjectPolicy,
    now: float,
) -> Judged:
    """``judge`` of a stored findings document, with the VEX referrers of the pulled manifest and of the index
    it was scanned through (none without the registry)."""
    digests = (scan.pulled, *scan.also_digests)
    statements = [] if registry is None else [s for d in digests for s in vex_referrers(registry, repository, d)]
    return judge(
        [stored_finding(f) for f in document.get("findings") or []],
        statements=statements,
        policy=policy,
        project=project_of(repository),
        image_digest=scan.pulled,
        also_digests=scan.also_digests,
        now=now,
    )


def _followed(registry: RegistryService, repository: str, index_digest: str) -> str | None:
    """The child the scanner followed when it indexed ``index_digest``; ``None`` if it is not a readable index."""
    try:
        stored = registry.get_manifest(repository, index_digest)
        index = parse_manifest(stored.body, stored.media_type)
        if not isinstance(index, ImageIndex):
            return None
        return str(platform_choice(index, index_digest).digest)
    except TrustyardError:
        return None


def mark_document(
    document: Mapping[str, Any],
    *,
    statements: Iterable[VexStatement],
    policy: ProjectPolicy,
    repository: str,
    image_digest: str,
    now: float,
) -> dict[str, Any]:
    """A stored findings document with each finding's ``state`` and ``suppressed`` set for ``repository`` (what
    the management API serves; its pages count the findings still affected, ``registry.scan_pages``)."""
    stored = list(document.get("findings") or [])
    judged = judge(
        [stored_finding(f) for f in stored],
        statements=statements,
        policy=policy,
        project=project_of(repository),
        image_digest=image_digest,
        now=now,
    )
    findings = []
    for data, finding in zip(stored, judged.findings, strict=True):
        mark = finding.suppression
        suppressed = None
        if mark is not None:
            suppressed = {
                "state": mark.mark.value,
                "justification": mark.justification,
                "detail": mark.detail,
                "origin": mark.origin,
                "expires": mark.expires,
            }
        findings.append({**data, "state": state_of(finding).value, "suppressed": suppressed})
    return {**document, "findings": findings}
