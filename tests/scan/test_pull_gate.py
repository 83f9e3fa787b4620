"""The vulnerability pull gate (``scan/gate.py``) on a real ``trustyard serve`` with skopeo as the client.

The shared Alpine app image (npm lodash 4.17.15: two high findings; its minimist is the fixed 1.2.6) is pushed
into a project whose policy refuses ``high`` or worse, once the background scanner has matched it against the
real OSV npm data. skopeo's pull is refused with the OCI DENIED error naming the findings; after the project
accepts them (allowlist), or an OpenVEX document attached to the image says ``not_affected``, it goes through;
an expired acceptance counts for nothing. A registry that scans nothing (``scan_workers = 0``) shows the
``block_unscanned`` setting: refused when set, served when not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from interop.clients import Skopeo, add_login
from interop.servers import TrustyardServer
from scan.openvex import not_affected
from scan.shared import OCI_ALPINE_APP, OCI_ALPINE_APP_TAG
from scan.vulndb.shared import OSV, needs_shared
from trustyard.oci.digest import Digest
from trustyard.scan.gate import VEX_ARTIFACT_TYPE
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.store import VulnerabilityStore
from trustyard.scan.vulndb.transport import Reference, RegistryClient

pytestmark = [pytest.mark.interop, needs_shared]
SOURCE = f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}"
TARGET = "GHSA-p6mc-m468-83gw"  # lodash 4.17.15, CVE-2020-8203, high


class UnscanningServer(TrustyardServer):
    """trustyard with background scanning off: every image stays unscanned."""

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "TRUSTYARD_SCAN_WORKERS": "0"}


class Setup:
    """A running registry, skopeo logged in to it, and an admin HTTP client for the management API."""

    def __init__(self, server: TrustyardServer, workdir: Path) -> None:
        assert server.credentials is not None
        self.server = server
        self.skopeo = Skopeo(workdir / "skopeo")
        add_login(self.skopeo.auth_file, server.host, server.credentials)
        self.http = httpx.Client(base_url=server.url, auth=server.credentials, timeout=30)

    def push(self, repository: str) -> str:
        """Copy the fixture image in; its manifest digest."""
        self.skopeo.copy(SOURCE, f"docker://{self.server.host}/{repository}:1")
        head = self.http.head(
            f"/v2/{repository}/manifests/1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
        )
        assert head.status_code == 200, head.text
        return head.headers["docker-content-digest"]

    def policy(self, project: str, **fields: Any) -> None:
        response = self.http.patch(f"/api/v1/projects/{project}", json=fields)
        assert response.status_code == 200, response.text

    def pull(self, repository: str, target: Path) -> tuple[bool, str]:
        """skopeo copy out of the registry: (succeeded, stderr)."""
        proc = self.skopeo.run(
            *Skopeo.copy_args(f"docker://{self.server.host}/{repository}:1", f"oci:{target}:1"), check=False
        )
        return proc.returncode == 0, proc.stderr

    def wait_scanned(self, repository: str, digest: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            scan = self.http.get(f"/api/v1/repositories/{repository}/manifests/{digest}/scan")
            if scan.status_code == 200 and scan.json()["status"] in ("done", "failed"):
                assert scan.json()["status"] == "done", scan.json()
                found = self.http.get(f"/api/v1/repositories/{repository}/manifests/{digest}/findings")
                findings: list[dict[str, Any]] = found.json()["findings"]
                return findings
            time.sleep(0.2)
        raise AssertionError(f"{repository}@{digest} was not scanned in 120 s")

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def scanning(tmp_path: Path) -> Iterator[Setup]:
    server = TrustyardServer(workdir=tmp_path / "trustyard")
    with VulnerabilityStore(server.data_dir / "vulndb.sqlite") as store:
        import_path(store, OSV / "npm" / "all.zip")
    server.start()
    setup = Setup(server, tmp_path)
    yield setup
    setup.close()
    server.close()


def _attach_vex(setup: Setup, repository: str, digest: str, ids: list[str], workdir: Path) -> None:
    """An OpenVEX document saying the image is not affected by ``ids``, pushed as a referrer of the image."""
    body = not_affected(digest, ids)
    image = setup.http.get(
        f"/v2/{repository}/manifests/{digest}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    )
    assert setup.server.credentials is not None
    user, password = setup.server.credentials
    ref = Reference.parse(f"{setup.server.host}/{repository}:vex")
    with RegistryClient(ref, actions="pull,push", username=user, password=password, plain_http=True) as client:
        client.push_blob(Digest.of(b"{}"), data=b"{}")
        client.push_blob(Digest.of(body), data=body)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": VEX_ARTIFACT_TYPE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": str(Digest.of(b"{}")), "size": 2},
            "layers": [{"mediaType": VEX_ARTIFACT_TYPE, "digest": str(Digest.of(body)), "size": len(body)}],
            "subject": {"mediaType": image.headers["content-type"], "digest": digest, "size": len(image.content)},
        }
        client.push_manifest(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")


def test_findings_refuse_pulls_until_accepted_or_vexed(scanning: Setup, tmp_path: Path) -> None:
    digest = scanning.push("gated/app")
    findings = scanning.wait_scanned("gated/app", digest)
    serious = sorted({f["id"] for f in findings if f["severity"] in ("high", "critical")})
    assert TARGET in serious and len(serious) == 2

    ok, _ = scanning.pull("gated/app", tmp_path / "before")
    assert ok  # no policy yet
    scanning.policy("gated", block_severity="high")
    ok, stderr = scanning.pull("gated/app", tmp_path / "refused")
    assert not ok
    assert "denied" in stderr.lower() and all(i in stderr for i in serious) and "high, lodash" in stderr, stderr
    assert "refuses images with high or worse findings" in stderr

    expired = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    scanning.policy("gated", allowlist=[{"id": i, "expires_at": expired} for i in serious])
    ok, stderr = scanning.pull("gated/app", tmp_path / "expired")
    assert not ok and TARGET in stderr  # expired acceptances are ignored

    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    scanning.policy("gated", allowlist=[{"id": i, "expires_at": later, "reason": "accepted"} for i in serious])
    ok, stderr = scanning.pull("gated/app", tmp_path / "accepted")
    assert ok, stderr

    scanning.policy("gated", allowlist=[{"id": i} for i in serious if i != TARGET])
    ok, stderr = scanning.pull("gated/app", tmp_path / "one-left")
    assert not ok and TARGET in stderr and "has 1:" in stderr, stderr
    _attach_vex(scanning, "gated/app", digest, [TARGET], tmp_path)
    ok, stderr = scanning.pull("gated/app", tmp_path / "vexed")
    assert ok, stderr


@pytest.fixture
def unscanning(tmp_path: Path) -> Iterator[Setup]:
    server = UnscanningServer(workdir=tmp_path / "trustyard")
    server.start()
    setup = Setup(server, tmp_path)
    yield setup
    setup.close()
    server.close()


def test_unscanned_images_follow_block_unscanned(unscanning: Setup, tmp_path: Path) -> None:
    unscanning.push("fresh/app")
    unscanning.policy("fresh", block_severity="high", block_unscanned=True)
    ok, stderr = unscanning.pull("fresh/app", tmp_path / "refused")
    assert not ok and "refuses images not scanned yet" in stderr and "queued" in stderr, stderr
    unscanning.policy("fresh", block_unscanned=False)
    ok, stderr = unscanning.pull("fresh/app", tmp_path / "served")
    assert ok, stderr  # the severity cannot be judged yet: served
