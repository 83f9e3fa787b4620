"""skopeo pushes real images into the registry and pulls them out unchanged; copies to and from the reference.

Every check is on digests and bytes: the manifest a registry serves must be the one pushed (its sha256 is the
source manifest digest, the Docker-Content-Digest header agrees), and every blob pulled back hashes to its
digest. skopeo runs with `--preserve-digests`, so it fails rather than silently rewrite a manifest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .clients import Skopeo, wait_all
from .images import (
    OCI_INDEX,
    OCI_MANIFEST,
    Layer,
    LayoutBuilder,
    OciImage,
    parse_manifest,
    random_image,
    read_dir_copy,
    read_layout,
    sha256_digest,
    shared_multilayer_images,
)
from .registry_api import RegistryClient
from .servers import EACH_DATABASE, RegistryServer

pytestmark = pytest.mark.interop


def push(skopeo: Skopeo, image: OciImage, dest: str, tmp_path: Path) -> str:
    """Push with skopeo; returns the digest skopeo reports (--digestfile)."""
    digestfile = tmp_path / f"digest-{sha256_digest(dest.encode())[7:19]}"
    skopeo.copy(image.transport, dest, f"--digestfile={digestfile}")
    return digestfile.read_text().strip()


def assert_served_as_pushed(
    skopeo: Skopeo, api: RegistryClient, host: str, repo: str, tag: str, manifest: bytes, blobs: int
) -> None:
    """Registry serves `manifest` byte for byte under `repo:tag`, by digest too, with all blobs intact."""
    digest = sha256_digest(manifest)
    raw = skopeo.inspect_raw(f"docker://{host}/{repo}:{tag}")
    assert sha256_digest(raw) == digest
    assert raw == manifest
    assert api.manifest_digest(repo, tag) == digest
    by_digest = api.get_manifest(repo, digest)
    assert by_digest.body == manifest
    assert by_digest.digest_header == digest
    assert tag in skopeo.list_tags(f"docker://{host}/{repo}")
    report = api.check_integrity()
    assert report.problems == []
    assert report.blobs >= blobs


@EACH_DATABASE
@pytest.mark.parametrize("image", shared_multilayer_images(), ids=lambda i: f"{i.layout.name}:{i.ref}")
def test_shared_image_round_trip(
    image: OciImage, registry: RegistryServer, api: RegistryClient, skopeo: Skopeo, tmp_path: Path
) -> None:
    repo, tag = "shared/" + image.layout.name, "1"
    dest = f"docker://{registry.host}/{repo}:{tag}"

    assert push(skopeo, image, dest, tmp_path) == image.manifest_digest
    assert_served_as_pushed(skopeo, api, registry.host, repo, tag, image.manifest, len(image.blobs))

    out = tmp_path / "pulled-oci"
    skopeo.copy(dest, f"oci:{out}:{image.ref}")
    (pulled,) = read_layout(out)
    assert pulled.manifest == image.manifest
    assert pulled.blobs == image.blobs
    assert pulled.mismatched_blobs() == []


def test_debian_round_trip(
    debian: OciImage, registry: RegistryServer, api: RegistryClient, skopeo: Skopeo, tmp_path: Path
) -> None:
    """A 60 MB layer (Debian 12 minbase) goes in and comes out (dir: transport) byte for byte."""
    repo, tag = "library/debian", "bookworm"
    dest = f"docker://{registry.host}/{repo}:{tag}"
    assert push(skopeo, debian, dest, tmp_path) == debian.manifest_digest
    assert_served_as_pushed(skopeo, api, registry.host, repo, tag, debian.manifest, len(debian.blobs))

    out = tmp_path / "pulled-dir"
    skopeo.copy(dest, f"dir:{out}")
    pulled = read_dir_copy(out)
    assert pulled.manifest == debian.manifest
    assert pulled.mismatched_blobs() == []


@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
@pytest.mark.parametrize("direction", ["reference-to-trustyard", "trustyard-to-reference"])
def test_copy_between_registries(
    direction: str,
    fmt: str,
    registry: RegistryServer,
    reference_registry: RegistryServer,
    skopeo: Skopeo,
    alpine_app: OciImage,
    tmp_path: Path,
) -> None:
    """A registry-to-registry copy keeps every digest; Docker schema 2 (`v2s2`) manifests too."""
    source, target = (reference_registry, registry)
    if direction == "trustyard-to-reference":
        source, target = target, source
    extra = random_image(tmp_path / "layout", "extra:1", seed=f"copy-{fmt}", layer_sizes=[300_000, 40_000])
    for image, repo in ((alpine_app, "copy/alpine-app"), (extra, "copy/nested/extra")):
        src_ref = f"docker://{source.host}/{repo}:{fmt}"
        if fmt == "oci":
            skopeo.copy(image.transport, src_ref)
        else:  # conversion rewrites the manifest: no --preserve-digests on this first hop
            skopeo.run("copy", "--dest-tls-verify=false", "--format=v2s2", image.transport, src_ref)
        source_manifest = skopeo.inspect_raw(src_ref)

        dst_ref = f"docker://{target.host}/{repo}:{fmt}"
        skopeo.copy(src_ref, dst_ref)
        with RegistryClient(target.url, auth=target.credentials) as target_api:
            assert_served_as_pushed(skopeo, target_api, target.host, repo, fmt, source_manifest, len(image.blobs))
            served = target_api.get_manifest(repo, fmt)
        expected_type = (
            "application/vnd.oci.image.manifest.v1+json"
            if fmt == "oci"
            else "application/vnd.docker.distribution.manifest.v2+json"
        )
        assert served.media_type == expected_type

        out = tmp_path / f"back-{repo.replace('/', '_')}"
        skopeo.copy(dst_ref, f"dir:{out}")
        pulled = read_dir_copy(out)
        assert pulled.manifest == source_manifest
        assert [b.digest for b in pulled.layers] == [b.digest for b in image.layers]
        assert pulled.mismatched_blobs() == []


@EACH_DATABASE
def test_multi_arch_index_round_trip(
    registry: RegistryServer, api: RegistryClient, skopeo: Skopeo, tmp_path: Path
) -> None:
    """`skopeo copy --all` of an OCI image index: the index and both platform manifests keep their bytes."""
    builder = LayoutBuilder(tmp_path / "layout")
    shared = Layer.random("index-shared", 200_000)
    images = [
        (
            builder.add_layers_image(
                f"app-{arch}", [shared, Layer.random(f"index-{arch}", 150_000)], architecture=arch
            ),
            arch,
        )
        for arch in ("amd64", "arm64")
    ]
    index = builder.add_index("app:1", images)
    dest = f"docker://{registry.host}/multi/app:1"
    skopeo.copy(index.transport, dest, "--all")

    assert skopeo.inspect_raw(dest) == index.body
    served = api.get_manifest("multi/app", "1")
    assert served.body == index.body
    assert served.media_type == OCI_INDEX
    assert served.digest_header == index.digest
    for image in index.images:
        child = api.get_manifest("multi/app", image.manifest_digest)
        assert child.body == image.manifest
        assert child.media_type == OCI_MANIFEST
    report = api.check_integrity()
    assert report.problems == []
    assert (report.manifests, report.blobs) == (3, 5)

    out = tmp_path / "pulled"
    skopeo.copy(dest, f"oci:{out}:app:1", "--all")
    pulled_index = json.loads((out / "index.json").read_bytes())
    (entry,) = pulled_index["manifests"]
    assert entry["digest"] == index.digest
    pulled = {img.manifest_digest: img for img in read_images_of_index(out, index.digest)}
    assert set(pulled) == {image.manifest_digest for image in index.images}
    assert all(img.mismatched_blobs() == [] for img in pulled.values())


def read_images_of_index(layout: Path, digest: str) -> list[OciImage]:
    """The image manifests an index blob of `layout` names, parsed from the layout's blobs."""
    body = json.loads((layout / "blobs" / digest.replace(":", "/", 1)).read_bytes())
    return [
        parse_manifest(layout, m["digest"], (layout / "blobs" / m["digest"].replace(":", "/", 1)).read_bytes())
        for m in body["manifests"]
    ]


@EACH_DATABASE
def test_mount_delete_and_gc(registry: RegistryServer, api: RegistryClient, skopeo: Skopeo, tmp_path: Path) -> None:
    """The same image pushed to two repositories (skopeo mounts the blobs it saw in the first), the first
    deleted with `skopeo delete` and collected: the second keeps every blob."""
    image = random_image(tmp_path / "layout", "m:1", seed="mount", layer_sizes=[500_000, 30_000])
    first, second = f"docker://{registry.host}/mount/a:1", f"docker://{registry.host}/mount/b:1"
    skopeo.copy(image.transport, first)
    skopeo.copy(image.transport, second)
    assert api.manifest_digest("mount/b", "1") == image.manifest_digest

    skopeo.run("delete", "--tls-verify=false", first)
    for reference in ("1", image.manifest_digest):
        gone = api.http.head(f"/v2/mount/a/manifests/{reference}")
        assert gone.status_code == 404
    assert "1" not in api.tags("mount/a")

    proc = registry.gc(delete_untagged=True, grace_period=0)
    assert proc.returncode == 0, proc.stderr
    report = api.check_integrity()
    assert report.problems == []
    assert report.blobs == len(image.blobs)
    out = tmp_path / "pulled"
    skopeo.copy(second, f"dir:{out}")
    pulled = read_dir_copy(out)
    assert pulled.manifest == image.manifest
    assert pulled.mismatched_blobs() == []


@EACH_DATABASE
def test_concurrent_identical_pushes(
    registry: RegistryServer, api: RegistryClient, skopeo: Skopeo, tmp_path: Path
) -> None:
    """Eight skopeo processes push the same image at once (four tags of one repository, four repositories):
    every push succeeds and every copy is whole (no torn blob from racing uploads of the same digest)."""
    image = random_image(tmp_path / "layout", "same:1", seed="same", layer_sizes=[4 * 1024 * 1024, 50_000])
    refs = [f"same/one:t{i}" for i in range(4)] + [f"same/repo{i}:1" for i in range(4)]
    copies = [
        skopeo.start_copy(image.transport, f"docker://{registry.host}/{ref}", log=tmp_path / f"push-{n}.log")
        for n, ref in enumerate(refs)
    ]
    codes = wait_all(copies, timeout=90)
    assert codes == [0] * len(refs), [c.output()[-1500:] for c, code in zip(copies, codes, strict=True) if code]
    for ref in refs:
        repo, tag = ref.split(":")
        assert api.manifest_digest(repo, tag) == image.manifest_digest
    report = api.check_integrity()
    assert report.problems == []
    assert report.tags == len(refs)
    assert report.blobs == 5 * len(image.blobs)  # per repository: 4 + 1 of same/one
