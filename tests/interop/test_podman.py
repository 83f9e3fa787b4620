"""podman pulls from the registry, runs the image, and pushes it back (rootful, vfs, runc); buildah builds on it.

The images are real root filesystems from ../shared/images: Alpine 3.20.3 with an application layer and a
whiteout layer (which deletes /etc/motd), and Debian 12 minbase. Running a command in them proves the layers
came back whole and in order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .clients import Podman, Skopeo
from .images import ALPINE_CHECK, ALPINE_EXPECTED, OciImage, read_dir_copy
from .registry_api import RegistryClient
from .servers import RegistryServer

pytestmark = pytest.mark.interop


def test_podman_pull_run_push(
    registry: RegistryServer,
    api: RegistryClient,
    skopeo: Skopeo,
    podman: Podman,
    alpine_app: OciImage,
    tmp_path: Path,
) -> None:
    source = f"{registry.host}/podman/alpine-app:1"
    skopeo.copy(alpine_app.transport, f"docker://{source}")

    podman.run("pull", "--tls-verify=false", source)
    assert podman.run("image", "inspect", "--format", "{{.Digest}}", source).stdout.strip() == (
        alpine_app.manifest_digest
    )
    out = podman.run("run", "--rm", "--network", "none", source, "sh", "-c", ALPINE_CHECK).stdout
    assert out.splitlines() == ALPINE_EXPECTED

    pushed = f"{registry.host}/podman/pushed:1"
    digestfile = tmp_path / "podman-digest"
    podman.run("tag", source, pushed)
    podman.run("push", "--tls-verify=false", f"--digestfile={digestfile}", pushed)
    digest = digestfile.read_text().strip()
    assert api.manifest_digest("podman/pushed", "1") == digest
    served = api.get_manifest("podman/pushed", digest)
    assert served.digest == digest
    assert api.check_integrity().problems == []

    out_dir = tmp_path / "pulled"
    skopeo.copy(f"docker://{pushed}", f"dir:{out_dir}")
    pulled = read_dir_copy(out_dir)
    assert pulled.manifest == served.body
    assert pulled.mismatched_blobs() == []

    # gone locally, then pulled by digest and run again
    podman.run("rmi", "--force", source, pushed)
    by_digest = f"{registry.host}/podman/pushed@{digest}"
    podman.run("pull", "--tls-verify=false", by_digest)
    out = podman.run("run", "--rm", "--network", "none", by_digest, "cat", "/etc/alpine-release").stdout
    assert out.strip() == "3.20.3"


def test_podman_runs_debian(registry: RegistryServer, skopeo: Skopeo, podman: Podman, debian: OciImage) -> None:
    ref = f"{registry.host}/library/debian:bookworm"
    skopeo.copy(debian.transport, f"docker://{ref}")
    podman.run("pull", "--tls-verify=false", ref)
    out = podman.run(
        "run", "--rm", "--network", "none", ref, "sh", "-c", "cat /etc/debian_version /etc/trustyard-test.txt"
    ).stdout.split("\n")
    assert out[0].startswith("12.")
    assert out[1] == "hello from layer 2"


def test_buildah_builds_on_a_registry_image(
    registry: RegistryServer, api: RegistryClient, skopeo: Skopeo, podman: Podman, alpine_app: OciImage, tmp_path: Path
) -> None:
    """buildah bud FROM an image in the registry (RUN in a chroot, COPY), pushes the result; podman pulls
    it back and runs it: base layers unchanged, the build's layer on top."""
    base = f"{registry.host}/buildah/base:1"
    skopeo.copy(alpine_app.transport, f"docker://{base}")
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text("hello from buildah\n")
    (context / "Containerfile").write_text(
        f"FROM {base}\nRUN cat /etc/alpine-release > /built.txt\nCOPY hello.txt /hello.txt\n"
    )
    built = f"{registry.host}/buildah/built:1"
    podman.buildah("bud", "--isolation", "chroot", "--tls-verify=false", "--tag", built, str(context))
    digestfile = tmp_path / "buildah-digest"
    podman.buildah("push", "--tls-verify=false", f"--digestfile={digestfile}", built)
    digest = digestfile.read_text().strip()
    assert api.manifest_digest("buildah/built", "1") == digest
    assert api.check_integrity().problems == []

    # buildah bud commits the whole build as one layer; the base layers are reused as they were pushed
    _config, *layers = api.get_manifest("buildah/built", digest).blobs()
    assert layers[:-1] == [layer.digest for layer in alpine_app.layers]
    assert len(layers) == len(alpine_app.layers) + 1
    podman.run("rmi", "--force", built, base)
    podman.run("pull", "--tls-verify=false", built)
    out = podman.run("run", "--rm", "--network", "none", built, "cat", "/built.txt", "/hello.txt").stdout
    assert out.splitlines() == ["3.20.3", "hello from buildah"]
