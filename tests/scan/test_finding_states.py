"""Finding states (``scan/states.py``) in what the management API serves, and the pull gate agreeing with it.

The real in-process registry app with its scan workers (the fixtures of ``tests/registry``, on SQLite and on
PostgreSQL) scans the shared Alpine app image (npm lodash 4.17.15: two high findings) against the real OSV npm
data. The image is pushed to two repositories of one project. ``GET .../findings`` then shows, per
repository: every finding ``affected`` before anything is said; the project's unexpired allowlist entry makes
one ``accepted`` (reason and expiry kept) while an expired one changes nothing; an OpenVEX referrer attached in
one repository makes a finding ``not_affected`` there (justification kept) but not in the other repository.
The answer's ``counts`` of what is still affected and the pull gate's answer on a manifest GET follow the same
states, because both come from ``scan.states.judge``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry.conftest import (
    BACKENDS,
    anyio_backend,
    client_factory,
    metadata_database,
    migrated_postgresql,
    migrated_sqlite,
    settings_factory,
)
from registry.test_scan_pipeline import IMAGE_DIGEST, Running, layout_image, running, wait_idle
from scan.openvex import vex_referrer
from scan.vulndb.shared import OSV, needs_shared
from trustyard.auth.model import AcceptedVulnerability, ProjectPolicy
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.store import VulnerabilityStore

__all__ = [
    "anyio_backend",
    "client_factory",
    "metadata_database",
    "migrated_postgresql",
    "migrated_sqlite",
    "running",
    "settings_factory",
]
pytestmark = [pytest.mark.anyio, needs_shared, pytest.mark.parametrize("metadata_database", BACKENDS, indirect=True)]

TARGET = "GHSA-p6mc-m468-83gw"  # lodash 4.17.15, CVE-2020-8203, high
OTHER = "GHSA-35jh-r3h4-6jhm"  # lodash 4.17.15, CVE-2021-23337, high


async def findings(r: Running, repository: str) -> dict[str, Any]:
    """The management API's findings of the image in ``repository``, asked by the administrator ``root``."""
    access = r.client.app.state.access
    if access.store.get_user("root") is None:
        access.store.create_user("root", is_admin=True)
    headers = {"Authorization": f"Bearer {access.tokens.issue('root', [])}"}
    response = await r.client.http.get(
        f"/api/v1/repositories/{repository}/manifests/{IMAGE_DIGEST}/findings", headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def states(body: dict[str, Any]) -> dict[str, str]:
    """Finding id -> state (the lodash findings each name one component)."""
    return {f["id"]: f["state"] for f in body["findings"]}


def by_id(body: dict[str, Any], finding_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in body["findings"] if f["id"] == finding_id]
    assert len(found) == 1, found
    return found[0]


async def pulled(r: Running, repository: str) -> int:
    """The status of a manifest GET (the pull gates decide it)."""
    return (await r.client.get_manifest(repository, IMAGE_DIGEST)).status_code


async def test_vex_referrers_and_the_allowlist_set_states_per_repository(running: Any, tmp_path: Path) -> None:
    with VulnerabilityStore(tmp_path / "data" / "vulndb.sqlite") as store:
        import_path(store, OSV / "npm" / "all.zip")
    r: Running = await running()
    for repository in ("lab/app", "lab/copy"):
        await r.client.push(repository, layout_image(), "1")
    await wait_idle(r)
    access = r.client.app.state.access
    if access.store.get_project("lab") is None:
        access.store.create_project("lab")

    before = await findings(r, "lab/app")
    assert before["status"] == "ok"
    assert states(before) == {TARGET: "affected", OTHER: "affected"}  # minimist 1.2.6 is the fixed version
    assert before["counts"] == {"unknown": 0, "low": 0, "medium": 0, "high": 2, "critical": 0}
    assert all(f["suppressed"] is None for f in before["findings"])

    now = datetime.now(UTC)
    later, earlier = now + timedelta(days=30), now - timedelta(days=1)
    access.store.set_project_policy(
        "lab",
        ProjectPolicy(
            block_severity="high",
            allowlist=(
                AcceptedVulnerability(OTHER, later.timestamp(), "template strings come from us"),
                AcceptedVulnerability(TARGET, earlier.timestamp(), "was accepted until yesterday"),
            ),
        ),
    )
    access.policy.forget()
    accepted = await findings(r, "lab/app")
    assert states(accepted) == {TARGET: "affected", OTHER: "accepted"}  # the expired entry counts for nothing
    mark = by_id(accepted, OTHER)["suppressed"]
    assert mark["state"] == "accepted" and mark["detail"] == "template strings come from us"
    assert mark["expires"] == later.isoformat() and "lab" in mark["origin"]
    assert accepted["counts"]["high"] == 1
    assert await pulled(r, "lab/app") == 403  # the gate sees the same one finding left

    pushed = await r.client.push("lab/app", vex_referrer(layout_image(), TARGET))
    assert pushed.status_code == 201, pushed.text
    vexed = await findings(r, "lab/app")
    assert states(vexed) == {TARGET: "not_affected", OTHER: "accepted"}
    mark = by_id(vexed, TARGET)["suppressed"]
    assert mark["justification"] == "vulnerable_code_not_in_execute_path" and mark["origin"].startswith("lab/app@")
    assert vexed["counts"]["high"] == 0
    assert await pulled(r, "lab/app") == 200

    # the VEX document is attached in lab/app only: the same image in lab/copy still has the finding
    copy = await findings(r, "lab/copy")
    assert states(copy) == {TARGET: "affected", OTHER: "accepted"} and copy["counts"]["high"] == 1
    assert await pulled(r, "lab/copy") == 403
