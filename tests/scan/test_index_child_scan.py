"""A platform image pulled by digest takes the scan of the index it was scanned through (``scan.states.stored_scan``).

Docker and podman pull a tag that names an index by asking for the index, then for their platform's image by
digest. The scanner indexes an index as its linux/amd64 image, so that child's findings are the index's. Here
the real in-process app (scan workers off; SQLite and PostgreSQL) holds an index of the shared Alpine app
image (linux/amd64) and an arm64 image; the scan pipeline runs for the index only, against the real OSV npm
data (lodash 4.17.15: two high findings), so the children have no scan of their own. The pull gate and the
verdict must judge the amd64 child by the index's findings (refused at ``high``; a VEX document attached to
the index lifts a finding for the child too) and must not lend them to the arm64 image, which stays unscanned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.conftest import (
    BACKENDS,
    RegistryClient,
    anyio_backend,
    assert_error,
    client_factory,
    make_image,
    make_index,
    metadata_database,
    migrated_postgresql,
    migrated_sqlite,
    settings_factory,
)
from registry.test_scan_pipeline import IMAGE_DIGEST, layout_image
from scan.openvex import vex_referrer
from scan.vulndb.shared import OSV, needs_shared
from trustyard.auth.model import AcceptedVulnerability, ProjectPolicy
from trustyard.registry.jobs import JobStatus, ScanJobs
from trustyard.scan.pipeline import ScanPipeline
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.store import VulnerabilityStore

__all__ = [
    "anyio_backend",
    "client_factory",
    "metadata_database",
    "migrated_postgresql",
    "migrated_sqlite",
    "settings_factory",
]
pytestmark = [pytest.mark.anyio, needs_shared, pytest.mark.parametrize("metadata_database", BACKENDS, indirect=True)]

TARGET = "GHSA-p6mc-m468-83gw"  # lodash 4.17.15, CVE-2020-8203, high
OTHER = "GHSA-35jh-r3h4-6jhm"  # lodash 4.17.15, CVE-2021-23337, high


def scan_only(client: RegistryClient, digest: str) -> None:
    """Queue and run the scan pipeline for ``digest`` alone (the workers are off: nothing else is scanned)."""
    registry = client.app.state.registry
    jobs = ScanJobs(registry.db)
    pipeline = ScanPipeline.from_data_dir(registry, jobs, client.settings.data_dir, vulndb=None, fsync=False)
    jobs.enqueue(digest)
    job = jobs.claim()
    assert job is not None and job.digest == digest
    assert pipeline.run(job) is JobStatus.DONE


async def verdict_scan(client: RegistryClient, digest: str) -> dict[str, Any]:
    """The ``scan`` part of the verdict on ``lab/multi@digest``, asked by the administrator."""
    access = client.app.state.access
    if access.store.get_user("root") is None:
        access.store.create_user("root", is_admin=True)
    headers = {"Authorization": f"Bearer {access.tokens.issue('root', [])}"}
    response = await client.http.get(f"/api/v1/repositories/lab/multi/verdict/{digest}", headers=headers)
    assert response.status_code == 200, response.text
    scan: dict[str, Any] = response.json()["scan"]
    return scan


async def test_a_platform_image_is_judged_by_the_index_it_was_scanned_through(
    client_factory: Any, tmp_path: Path
) -> None:
    with VulnerabilityStore(tmp_path / "data" / "vulndb.sqlite") as store:
        import_path(store, OSV / "npm" / "all.zip")
    client: RegistryClient = await client_factory(scan_workers=0)
    amd64, arm64 = layout_image(), make_image("arm64-only")
    index = make_index([amd64, arm64])  # amd64 first: linux/amd64, then linux/arm64/v8
    await client.push("lab/multi", index, "1")
    scan_only(client, index.digest)
    jobs = ScanJobs(client.app.state.registry.db)
    assert jobs.findings_of(IMAGE_DIGEST) is None and jobs.findings_of(arm64.digest) is None  # no scan of their own

    access = client.app.state.access
    if access.store.get_project("lab") is None:
        access.store.create_project("lab")
    access.store.set_project_policy("lab", ProjectPolicy(block_severity="high", block_unscanned=True))
    access.policy.forget()

    # the amd64 image: the index's findings, so refused for them (not for being unscanned)
    refused = await client.get_manifest("lab/multi", IMAGE_DIGEST)
    assert_error(refused, 403, "DENIED")
    message = refused.json()["errors"][0]["message"]
    assert f"scanned through its index {index.digest}" in message and TARGET in message and OTHER in message
    assert "not scanned" not in message
    scan = await verdict_scan(client, IMAGE_DIGEST)
    assert scan["status"] == "done" and scan["worst"] == "high" and scan["counts"]["high"] == 2

    # the arm64 image is another image: nothing is lent to it
    other = await client.get_manifest("lab/multi", arm64.digest)
    assert_error(other, 403, "DENIED")
    assert "refuses images not scanned yet" in other.json()["errors"][0]["message"]
    assert (await verdict_scan(client, arm64.digest)) == {
        "status": "none",
        "worst": None,
        "counts": {"critical": 0, "high": 0, "medium": 0, "low": 0, "unknown": 0},
    }

    # VEX attached to the index and the project's allowlist hold for the child as for the index
    vexed = await client.push("lab/multi", vex_referrer(index, TARGET))
    assert vexed.status_code == 201, vexed.text
    left = await client.get_manifest("lab/multi", IMAGE_DIGEST)
    assert_error(left, 403, "DENIED")
    assert TARGET not in left.json()["errors"][0]["message"] and "has 1:" in left.json()["errors"][0]["message"]
    assert (await verdict_scan(client, IMAGE_DIGEST))["counts"]["high"] == 1
    policy = ProjectPolicy(block_severity="high", block_unscanned=True, allowlist=(AcceptedVulnerability(OTHER),))
    access.store.set_project_policy("lab", policy)
    access.policy.forget()
    assert (await client.get_manifest("lab/multi", IMAGE_DIGEST)).status_code == 200
    assert (await verdict_scan(client, IMAGE_DIGEST))["worst"] is None
    assert (await client.get_manifest("lab/multi", index.digest)).status_code == 200
