"""Content trust at the registry's door, with real clients: skopeo pulls, the real `notary` client signs.

`trustyard serve` runs with TLS and access control on. Project ``lab`` requires content trust (management API
PATCH). Two images are pushed with skopeo; one tag is signed with Debian's notary 0.7.0 (``addhash`` of the
manifest digest and size, ``publish``) under Docker's GUN ``127.0.0.1:PORT/lab/app``, exactly what ``docker
trust sign`` stores. Then skopeo pulls the signed tag and its digest, and is refused the unsigned tag and
digest with the registry's message; an unsigned push over the signed tag is in the audit log and the tag is
refused from then on (its signed digest is no longer what it points at).
"""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interop.clients import Skopeo, add_login
from interop.images import random_image
from interop.notary_client import client, running_trustyard
from interop.servers import TrustyardServer

pytestmark = pytest.mark.interop


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrustyardServer]:
    """`trustyard serve` with TLS and access control."""
    with running_trustyard(tmp_path) as srv:
        yield srv


def api(server: TrustyardServer) -> httpx.Client:
    """The management API as the registry's admin."""
    assert server.tls is not None
    tls = ssl.create_default_context(cafile=str(server.tls[2]))
    return httpx.Client(base_url=server.url, auth=server.credentials, verify=tls, timeout=30)


def pull(skopeo: Skopeo, server: TrustyardServer, ref: str, dest: Path) -> subprocess.CompletedProcess[str]:
    """`skopeo copy` of ``lab/app<ref>`` into a ``dir:`` folder (no error raised: the test reads the result)."""
    shutil.rmtree(dest, ignore_errors=True)
    return skopeo.run(*skopeo.copy_args(f"docker://{server.host}/lab/app{ref}", f"dir:{dest}"), check=False)


def test_content_trust_required_refuses_unsigned_and_lets_signed_through(
    server: TrustyardServer, tmp_path: Path
) -> None:
    skopeo = Skopeo(tmp_path / "skopeo")
    add_login(skopeo.auth_file, server.host, server.credentials)
    layout = tmp_path / "layout"
    signed = random_image(layout, "signed", seed="gate-signed", layer_sizes=[2048])
    unsigned = random_image(layout, "unsigned", seed="gate-unsigned", layer_sizes=[2048])
    skopeo.copy(f"oci:{layout}:signed", f"docker://{server.host}/lab/app:signed")
    skopeo.copy(f"oci:{layout}:unsigned", f"docker://{server.host}/lab/app:unsigned")
    manifest = skopeo.inspect_raw(f"docker://{server.host}/lab/app:signed")
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == signed.manifest_digest

    # sign the tag as `docker trust sign` would: Docker's GUN carries this registry's host and port
    gun = f"{server.host}/lab/app"
    notary = client(server, tmp_path, "signer")
    notary.run("init", gun)
    notary.run("addhash", gun, "signed", str(len(manifest)), "--sha256", hashlib.sha256(manifest).hexdigest())
    notary.run("publish", gun)

    with api(server) as http:
        changed = http.patch("/api/v1/projects/lab", json={"content_trust": True})
        assert changed.status_code == 200, changed.text

        assert pull(skopeo, server, ":signed", tmp_path / "got-signed").returncode == 0
        assert (tmp_path / "got-signed" / "manifest.json").read_bytes() == manifest
        assert pull(skopeo, server, f"@{signed.manifest_digest}", tmp_path / "by-digest").returncode == 0

        refused = pull(skopeo, server, ":unsigned", tmp_path / "got-unsigned")
        assert refused.returncode != 0
        assert "denied: content trust is required in project 'lab': tag 'unsigned' has no signed target" in (
            refused.stderr
        )
        refused = pull(skopeo, server, f"@{unsigned.manifest_digest}", tmp_path / "unsigned-digest")
        assert refused.returncode != 0
        assert f"{unsigned.manifest_digest} has no signed target in the trust data of 'lab/app'" in refused.stderr

        verdict = http.get("/api/v1/repositories/lab/app/verdict/signed").json()
        assert verdict["signed"] is True and verdict["pull_allowed"] is True and verdict["refusal"] is None
        assert verdict["signers"] == ["Repo Admin"]
        verdict = http.get("/api/v1/repositories/lab/app/verdict/unsigned").json()
        assert verdict["signed"] is False and verdict["pull_allowed"] is False
        assert verdict["refusal"].startswith("content trust is required in project 'lab': tag 'unsigned'")

        # an unsigned push over the signed tag: audited, and the tag no longer passes
        skopeo.copy(f"oci:{layout}:unsigned", f"docker://{server.host}/lab/app:signed")
        moved = pull(skopeo, server, ":signed", tmp_path / "moved")
        assert moved.returncode != 0
        assert (
            f"tag 'signed' is signed for {signed.manifest_digest}, but it points at {unsigned.manifest_digest}"
            in moved.stderr
        )
        events = http.get("/api/v1/audit", params={"action": "trust.tag_overwritten"}).json()["events"]
        assert [(e["repository"], e["target"], e["actor"]) for e in events] == [("lab/app", "signed", "admin")]
        assert events[0]["detail"]["signed_digest"] == signed.manifest_digest
        assert events[0]["detail"]["digest"] == unsigned.manifest_digest
        # the signed digest itself still passes: what was signed has not changed
        assert pull(skopeo, server, f"@{signed.manifest_digest}", tmp_path / "still").returncode == 0

        # without the requirement, everything pulls again
        assert http.patch("/api/v1/projects/lab", json={"content_trust": False}).status_code == 200
        assert pull(skopeo, server, ":unsigned", tmp_path / "free").returncode == 0
