"""``GET /api/v1/repositories/{name}/verdict/{reference}``: the contract the authz plugin and the web UI read.

Runs on copies of the registry access tests' world (``tests/registry/access_helpers.py``): ``priv/app:v1``
signed through the real ``TrustService`` (validation, server-signed snapshot and timestamp) with the
simulator's keys; a scan report stored as the scanner stores it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from registry.access_helpers import (
    ADMIN,
    DEVELOPER,
    NON_MEMBER,
    WorldTemplate,
    app_image,
    as_account,
    world_fixtures,
)
from registry.conftest import RegistryClient, anyio_backend, make_image, make_index, migrated_sqlite
from trustyard.registry.jobs import JobStatus, ScanJobs, StoredReport
from trustyard.trust.service import TrustService

from .simulator import SimKey, SimRepo

pytestmark = pytest.mark.anyio

isolated, template, open_world, registry = world_fixtures()
__all__ = ["anyio_backend", "migrated_sqlite"]  # the registry tests' fixtures, which the world needs


VERDICT_KEYS = {
    "repository",
    "reference",
    "digest",
    "signed",
    "signed_digest",
    "signers",
    "scan",
    "pull_allowed",
    "refusal",
}
NO_FINDINGS = {"critical": 0, "high": 0, "medium": 0, "low": 0, "unknown": 0}


def sign(client: RegistryClient, gun: str, tags: dict[str, bytes]) -> None:
    """Publish targets ``tag -> manifest bytes`` for ``gun`` as a publisher would (first publish)."""
    service = TrustService.from_settings(client.settings, client.app.state.registry.db)
    repo = SimRepo(gun, SimKey.ed25519())
    repo.timestamp_key = SimKey(repo.timestamp_key.private, service.public_key(gun, "timestamp"))
    for tag, body in tags.items():
        repo.add_target("targets", tag, body)
    service.update(gun, repo.first_publish())


async def verdict(client: RegistryClient, template: WorldTemplate, name: str, reference: str) -> httpx.Response:
    """The verdict as the developer of the world asks it."""
    who = template.world.account(DEVELOPER)
    return await client.http.get(f"/api/v1/repositories/{name}/verdict/{reference}", auth=who.auth)


def finding(severity: str, *, suppressed: bool = False) -> dict[str, Any]:
    """A finding as the scanner stores it (only what the verdict reads matters)."""
    mark = {"state": "not_affected", "justification": "", "detail": "", "origin": "vex", "expires": None}
    return {"id": f"CVE-2024-{severity}", "severity": severity, "suppressed": mark if suppressed else None}


async def test_a_signed_tag_and_its_digest(registry: RegistryClient, template: WorldTemplate) -> None:
    image = app_image("priv")
    sign(registry, "127.0.0.1:5000/priv/app", {"v1": image.body})  # Docker's GUN: this registry's listen address
    response = await verdict(registry, template, "priv/app", "v1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == VERDICT_KEYS
    assert body["repository"] == "priv/app" and body["reference"] == "v1" and body["digest"] == image.digest
    assert body["signed"] is True and body["signed_digest"] == image.digest and body["signers"] == ["Repo Admin"]
    assert body["pull_allowed"] is True and body["refusal"] is None
    assert body["scan"]["status"] in {"none", "queued", "running", "done", "failed"}
    by_digest = (await verdict(registry, template, "priv/app", image.digest)).json()
    assert by_digest["signed"] is True and by_digest["digest"] == image.digest
    assert by_digest["signed_digest"] == image.digest and by_digest["signers"] == ["Repo Admin"]


async def test_an_unsigned_tag_and_a_tag_moved_after_signing(registry: RegistryClient, template: WorldTemplate) -> None:
    unsigned = (await verdict(registry, template, "priv/app", "v1")).json()
    assert unsigned["signed"] is False and unsigned["signed_digest"] is None and unsigned["signers"] == []
    sign(registry, "priv/app", {"v1": app_image("priv").body})
    moved = make_image("priv/app-moved")
    with as_account(registry, template.world.account(ADMIN)):
        pushed = await registry.push("priv/app", moved, "v1")
    assert pushed.status_code == 201, pushed.text
    body = (await verdict(registry, template, "priv/app", "v1")).json()
    assert body["digest"] == moved.digest
    assert body["signed"] is False and body["signed_digest"] == app_image("priv").digest
    assert body["signers"] == ["Repo Admin"]


async def test_scan_status_worst_and_counts_leave_suppressed_findings_out(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    digest = app_image("priv").digest
    jobs = ScanJobs(registry.app.state.registry.db)
    jobs.enqueue(digest)
    doc = {"findings": [finding("high"), finding("low"), finding("low"), finding("critical", suppressed=True)]}
    now = time.time()
    jobs.store_report(
        StoredReport(digest, now, now, 1, None, "{}", "{}", "{}", json.dumps(doc), ("CVE-2024-high",), None), []
    )
    jobs.finish(digest, JobStatus.DONE)
    scan = (await verdict(registry, template, "priv/app", "v1")).json()["scan"]
    assert scan == {"status": "done", "worst": "high", "counts": {**NO_FINDINGS, "high": 1, "low": 2}}


async def test_refusals(registry: RegistryClient, template: WorldTemplate) -> None:
    outsider = template.world.account(NON_MEMBER)
    forbidden = await registry.http.get("/api/v1/repositories/priv/app/verdict/v1", auth=outsider.auth)
    assert forbidden.status_code == 403
    assert forbidden.json()["errors"][0]["code"] == "FORBIDDEN"
    anonymous = await registry.http.get("/api/v1/repositories/priv/app/verdict/v1")
    assert anonymous.status_code == 401
    missing = await verdict(registry, template, "priv/app", "v9")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["message"] == "'v9' names no manifest in repository priv/app"
    no_digest = await verdict(registry, template, "priv/app", "sha256:" + "0" * 64)
    assert no_digest.status_code == 404


async def test_a_platform_image_of_a_signed_index_is_signed_through_it(
    registry: RegistryClient, template: WorldTemplate
) -> None:
    """Docker resolves a signed multi-platform tag to the index, then pulls its platform image by digest."""
    children = [make_image("priv/multi-amd64"), make_image("priv/multi-arm64")]
    index = make_index(children)
    stray = make_image("priv/multi-stray")
    with as_account(registry, template.world.account(ADMIN)):
        assert (await registry.push("priv/multi", index, "1")).status_code == 201
        assert (await registry.push("priv/multi", stray, "stray")).status_code == 201
    sign(registry, "priv/multi", {"1": index.body})
    child = (await verdict(registry, template, "priv/multi", children[1].digest)).json()
    assert child["signed"] is True and child["digest"] == children[1].digest
    assert child["signed_digest"] == children[1].digest and child["signers"] == ["Repo Admin"]
    other = (await verdict(registry, template, "priv/multi", stray.digest)).json()
    assert other["signed"] is False and other["signed_digest"] is None
