"""`docker push` / `docker pull` through Debian's dockerd 20.10 (with a current docker CLI).

dockerd treats the registry as insecure through `insecure-registries: ["127.0.0.0/8"]`, so a registry on any
loopback port started after the daemon works. The image is the shared Alpine application image; dockerd
pushes what `docker load` gave it (Docker schema 2, layers recompressed by dockerd), and pulls OCI manifests
pushed by skopeo. Digests are compared with what the registry reports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fixtures.dockerd import Dockerd

from .clients import Skopeo
from .images import ALPINE_CHECK, ALPINE_EXPECTED, Layer, LayoutBuilder, OciImage
from .registry_api import RegistryClient
from .servers import RegistryServer

pytestmark = pytest.mark.interop

PUSHED_DIGEST = re.compile(r"^\S+: digest: (sha256:[0-9a-f]{64}) size: (\d+)$", re.MULTILINE)
PULLED_DIGEST = re.compile(r"^Digest: (sha256:[0-9a-f]{64})$", re.MULTILINE)
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def repo_digests(docker: Dockerd, ref: str) -> list[str]:
    """`docker inspect` RepoDigests of an image."""
    digests: list[str] = json.loads(
        docker.docker("inspect", "--format", "{{json .RepoDigests}}", ref, check=True).stdout
    )
    return digests


def run_check(docker: Dockerd, ref: str) -> list[str]:
    """Output lines of ALPINE_CHECK run in a container of `ref` (no network)."""
    return docker.docker(
        "run", "--rm", "--network", "none", ref, "sh", "-c", ALPINE_CHECK, check=True
    ).stdout.splitlines()


def test_docker_push_pull_run(
    registry: RegistryServer,
    api: RegistryClient,
    skopeo: Skopeo,
    docker: Dockerd,
    alpine_app: OciImage,
    tmp_path: Path,
) -> None:
    archive = tmp_path / "alpine-app.tar"
    skopeo.run("copy", alpine_app.transport, f"docker-archive:{archive}:trustyard-test/alpine-app:1")
    docker.docker("load", "--input", str(archive), check=True)

    ref = f"{registry.host}/docker/alpine-app:1"
    docker.docker("tag", "trustyard-test/alpine-app:1", ref, check=True)
    push = docker.docker("push", ref, check=True).stdout
    match = PUSHED_DIGEST.search(push)
    assert match, push
    digest, size = match.group(1), int(match.group(2))

    manifest = api.get_manifest("docker/alpine-app", "1")
    assert manifest.digest == digest
    assert manifest.digest_header == digest
    assert len(manifest.body) == size
    assert manifest.media_type == DOCKER_V2
    assert len(manifest.blobs()) == 1 + len(alpine_app.layers)
    report = api.check_integrity()
    assert report.problems == []
    assert report.blobs == 1 + len(alpine_app.layers)

    docker.docker("rmi", ref, "trustyard-test/alpine-app:1", check=True)
    assert docker.docker("image", "inspect", ref, check=False).returncode != 0

    pull = docker.docker("pull", ref, check=True).stdout
    match = PULLED_DIGEST.search(pull)
    assert match, pull
    assert match.group(1) == digest
    assert repo_digests(docker, ref) == [f"{registry.host}/docker/alpine-app@{digest}"]
    assert run_check(docker, ref) == ALPINE_EXPECTED


def test_docker_pulls_oci_image_pushed_by_skopeo(
    registry: RegistryServer, skopeo: Skopeo, docker: Dockerd, alpine_app: OciImage
) -> None:
    ref = f"{registry.host}/docker/oci:1"
    skopeo.copy(alpine_app.transport, f"docker://{ref}")

    pull = docker.docker("pull", ref, check=True).stdout
    match = PULLED_DIGEST.search(pull)
    assert match, pull
    assert match.group(1) == alpine_app.manifest_digest
    assert repo_digests(docker, ref) == [f"{registry.host}/docker/oci@{alpine_app.manifest_digest}"]
    assert run_check(docker, ref) == ALPINE_EXPECTED

    by_digest = f"{registry.host}/docker/oci@{alpine_app.manifest_digest}"
    docker.docker("rmi", ref, check=True)
    docker.docker("pull", by_digest, check=True)
    assert run_check(docker, by_digest) == ALPINE_EXPECTED


def test_docker_pulls_platform_from_index(
    registry: RegistryServer, skopeo: Skopeo, docker: Dockerd, tmp_path: Path
) -> None:
    """dockerd resolves an OCI image index to its linux/amd64 manifest and records the index digest."""
    builder = LayoutBuilder(tmp_path / "layout")
    images = [
        (
            builder.add_layers_image(f"app-{arch}", [Layer.random(f"docker-index-{arch}", 100_000)], architecture=arch),
            arch,
        )
        for arch in ("arm64", "amd64")
    ]
    index = builder.add_index("app:1", images)
    ref = f"{registry.host}/docker/multi:1"
    skopeo.copy(index.transport, f"docker://{ref}", "--all")

    pull = docker.docker("pull", ref, check=True).stdout
    match = PULLED_DIGEST.search(pull)
    assert match, pull
    assert match.group(1) == index.digest
    assert repo_digests(docker, ref) == [f"{registry.host}/docker/multi@{index.digest}"]
    amd64 = images[1][0]
    inspect = docker.docker("image", "inspect", "--format", "{{.Id}} {{.Architecture}}", ref, check=True).stdout.split()
    assert inspect == [amd64.config.digest, "amd64"]
