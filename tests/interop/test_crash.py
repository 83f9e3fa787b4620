"""SIGKILL of the registry in the middle of concurrent pushes, then a restart on the same data dir.

What must hold afterwards (DESIGN.md, "durable before visible"):
- every push that skopeo reported done (exit 0) pulls back byte for byte;
- nothing reachable from the catalog is corrupt: every manifest and every blob served hashes to its digest;
- an upload session cut by the kill either resumes from the offset the registry reports and closes to an
  intact blob, or is gone with an OCI error (404 BLOB_UPLOAD_UNKNOWN), never a 5xx;
- pushing the interrupted images again succeeds.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from .clients import BackgroundCopy, Skopeo, wait_all
from .images import Descriptor, OciImage, random_image, read_dir_copy
from .registry_api import RegistryClient, oci_error_codes
from .servers import EACH_DATABASE, RegistryServer

pytestmark = pytest.mark.interop

SMALL, LARGE = 256 * 1024, 32 * 1024 * 1024
# two small pushes finish first; the kill comes while the four large ones stream
SIZES = [SMALL, SMALL, LARGE, LARGE, LARGE, LARGE]
FINISH_BEFORE_KILL = 2
UPLOAD_URL = re.compile(r'msg="PATCH (http://\S+/v2/\S+/blobs/uploads/[^"?\s]+(?:\?[^"\s]*)?)"')
COPYING_CONFIG = re.compile(r"^Copying config (sha256:[0-9a-f]{64})", re.MULTILINE)


def upload_sessions(copy: BackgroundCopy, image: OciImage) -> dict[str, Descriptor]:
    """URL (state query included) -> blob, of each upload session a push of `image` sent data to.

    Each test image has one layer; skopeo uploads it before it prints "Copying config", and the config
    after. Whether skopeo's closing PUT reached the registry before the kill is unknown, so each is checked.
    """
    (layer,) = image.layers
    sessions = {}
    log = copy.output()
    config_at = m.start() if (m := COPYING_CONFIG.search(log)) else len(log)
    for match in UPLOAD_URL.finditer(log):
        sessions[match.group(1)] = layer if match.start() < config_at else image.config
    return sessions


def resume_or_gone(api: RegistryClient, repo: str, url: str, image: OciImage, blob: Descriptor) -> str:
    """Check one session of a cut push of `blob`; finish it when the registry keeps it. Says what happened."""
    status = api.upload_status(url)
    assert status.status_code in (204, 404), f"GET {url}: {status.status_code} {status.text}"
    if status.status_code == 404:
        # closed before the kill (PUT done), or dropped: either way said with an OCI error
        # (distribution 2.8 answers BLOB_UPLOAD_INVALID when the state token in the URL is stale)
        codes = oci_error_codes(status)
        assert codes, status.text
        assert set(codes) <= {"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"}, status.text
        return "gone"
    match = re.fullmatch(r"0-(\d+)", status.headers.get("range", ""))
    assert match, f"upload status without a valid Range: {status.headers}"
    offset = int(match.group(1)) + 1 if match.group(1) != "0" else 0
    data = image.blob_path(blob.digest).read_bytes()
    assert offset <= len(data), f"registry claims {offset} B of a {len(data)} B blob"
    location = status.headers.get("location", url)
    if offset < len(data):
        patched = api.patch_chunk(location, data[offset:], offset)
        assert patched.status_code == 202, patched.text
        location = patched.headers["location"]
    closed = api.finish_upload(location, blob.digest)
    assert closed.status_code == 201, f"resumed at {offset}: {closed.status_code} {closed.text}"
    assert api.blob_digest(repo, blob.digest) == (200, blob.digest, blob.size)
    return f"{'layer' if blob in image.layers else 'config'} resumed at {offset}"


@EACH_DATABASE
def test_sigkill_during_concurrent_pushes(
    registry: RegistryServer, api: RegistryClient, skopeo: Skopeo, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    images = [
        random_image(layout, f"crash-{i}:1", seed=f"crash-{i}", layer_sizes=[size]) for i, size in enumerate(SIZES)
    ]
    repos = [f"crash/image-{i}" for i in range(len(images))]
    copies = [
        skopeo.start_copy(
            img.transport, f"docker://{registry.host}/{repo}:1", log=tmp_path / f"push-{i}.log", debug=True
        )
        for i, (img, repo) in enumerate(zip(images, repos, strict=True))
    ]

    deadline = time.monotonic() + 60
    while sum(c.returncode is not None for c in copies) < FINISH_BEFORE_KILL:
        assert time.monotonic() < deadline, f"fewer than {FINISH_BEFORE_KILL} pushes finished within 60 s"
        time.sleep(0.02)
    finished_before_kill = {i: c.returncode for i, c in enumerate(copies) if c.returncode is not None}
    registry.kill()
    codes = wait_all(copies, timeout=60)
    # while the registry was up, nothing failed
    assert set(finished_before_kill.values()) == {0}, [copies[i].output()[-2000:] for i in finished_before_kill]

    done = [i for i, code in enumerate(codes) if code == 0]
    cut = [i for i, code in enumerate(codes) if code != 0]
    assert cut, "every push finished before the kill: nothing was interrupted, make the large images larger"

    registry.start()

    for i in done:
        assert api.manifest_digest(repos[i], "1") == images[i].manifest_digest, copies[i].output()[-2000:]
        out = tmp_path / f"pulled-{i}"
        skopeo.copy(f"docker://{registry.host}/{repos[i]}:1", f"dir:{out}")
        pulled = read_dir_copy(out)
        assert pulled.manifest == images[i].manifest
        assert pulled.mismatched_blobs() == []

    report = api.check_integrity()
    assert report.problems == []
    assert report.tags >= len(done)

    outcomes = {
        url: resume_or_gone(api, repos[i], url, images[i], blob)
        for i in cut
        for url, blob in upload_sessions(copies[i], images[i]).items()
    }
    assert outcomes, "the debug logs of the cut pushes show no upload session"
    print("sessions of cut pushes after the restart:", sorted(outcomes.values()))

    for i in cut:
        skopeo.copy(images[i].transport, f"docker://{registry.host}/{repos[i]}:1")
        assert api.manifest_digest(repos[i], "1") == images[i].manifest_digest

    report = api.check_integrity()
    assert report.problems == []
    assert report.tags == len(images)
    assert report.blobs == 2 * len(images)
