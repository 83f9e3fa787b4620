"""The JSON shapes of the scan results the management API serves by manifest digest (``/api/v1``).

Answers only: the endpoints take no bodies. ``ScanStatusOut`` is where an image is in the pipeline and how
fresh its findings are; ``FindingsOut`` is the stored findings document (the finding objects are the
``trustyard scan --format json`` ones); the SBOMs are served as the CycloneDX/SPDX documents themselves.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trustyard.registry.jobs import JobStatus


class SbomQuery(BaseModel):
    """Which SBOM document to serve."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["cyclonedx-json", "spdx-json"] = Field(
        default="cyclonedx-json", description="CycloneDX 1.6 JSON or SPDX 2.3 JSON"
    )


class ScanStatusOut(BaseModel):
    """An image's scan: the job's state, and the data its findings were computed from."""

    digest: str
    status: JobStatus
    error: str | None = Field(description="why the scan failed or was skipped")
    attempts: int
    queued_at: float
    started_at: float | None
    finished_at: float | None
    indexed_at: float | None
    checked_at: float | None = Field(description="last match against the vulnerability data (re-checks too)")
    data_generation: int | None = Field(description="the vulnerability store import generation matched against")
    data_time: str | None = Field(description="newest data time of the vulnerability sources then")
    vulnerabilities: int | None = Field(description="distinct vulnerability ids among the findings")
    sbom_digest: str | None = Field(description="digest of the CycloneDX blob attached as a referrer")


class FindingsOut(BaseModel):
    """The findings of an image: ``status`` ``unknown`` (with ``reason``) until vulnerability data exists.

    Each finding carries its ``state`` in the repository asked about (``scan.states``): ``affected``, or lifted
    by a VEX referrer (``not_affected``/``fixed``) or the project's allowlist (``accepted``), with ``suppressed``
    saying by what (origin, justification, detail, expiry).
    """

    status: Literal["ok", "unknown"]
    reason: str | None
    generation: int
    data: list[dict[str, Any]]
    findings: list[dict[str, Any]] = Field(
        description="trustyard scan --format json findings, each with state affected|not_affected|fixed|accepted"
    )
    notes: list[str]
