"""Image sources: ``oci:``, ``oci-archive:``, ``docker-archive:`` and ``rootfs:`` on the shared fixtures.

Archives are built from the shared OCI layout under ``tmp_path`` (a tar of the layout; ``docker save``'s
legacy shape with uncompressed ``<id>/layer.tar`` files) so that every transport reads the same image; a
case table names every way a source is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from scan.shared import ALPINE_ROOTFS, OCI_ALPINE_APP, OCI_ALPINE_APP_TAG, expected
from scan.tars import build_tar, file
from trustyard.oci.digest import Digest
from trustyard.scan.errors import SourceError
from trustyard.scan.image import ImageView
from trustyard.scan.layers import EntryType, LayerLimits
from trustyard.scan.sources import ImageSource, open_source

EXPECTED = expected("oci-alpine-app.expected.json")
LAYER_DIGESTS = [Digest.parse(layer["digest"]) for layer in EXPECTED["layers"]]
DIFF_IDS = [Digest.parse(layer["diff_id"]) for layer in EXPECTED["layers"]]


def merged(source: ImageSource) -> ImageView:
    """The merged view of every layer of ``source``."""
    view = ImageView()
    for ref in source.layers():
        layer = source.read_layer(ref, wants=lambda p: p == "etc/os-release", limits=LayerLimits())
        view.apply(layer, ref.digest or layer.digest)
    source.close()
    return view


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """Add a regular file member."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def oci_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared layout as an ``oci-archive`` tar."""
    path = tmp_path_factory.mktemp("archives") / "alpine-app.tar"
    with tarfile.open(path, "w") as tar:
        for child in sorted(OCI_ALPINE_APP.rglob("*")):
            if child.is_file():
                tar.add(child, arcname=child.relative_to(OCI_ALPINE_APP).as_posix())
    return path


@pytest.fixture(scope="module")
def docker_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared image in ``docker save``'s legacy shape: uncompressed ``<id>/layer.tar`` and a config."""
    path = tmp_path_factory.mktemp("archives") / "alpine-app-docker.tar"
    blobs = OCI_ALPINE_APP / "blobs" / "sha256"
    manifest = json.loads((blobs / EXPECTED["manifest_digest"].split(":")[1]).read_bytes())
    config = (blobs / manifest["config"]["digest"].split(":")[1]).read_bytes()
    layers = []
    with tarfile.open(path, "w") as tar:
        for digest in LAYER_DIGESTS:
            data = gzip.decompress((blobs / digest.hex).read_bytes())
            name = f"{hashlib.sha256(data).hexdigest()}/layer.tar"
            add_bytes(tar, name, data)
            layers.append(name)
        add_bytes(tar, "config.json", config)
        entry = {"Config": "config.json", "RepoTags": ["fixture/alpine-app:1"], "Layers": layers}
        add_bytes(tar, "manifest.json", json.dumps([entry]).encode())
    return path


def check_alpine_app(view: ImageView) -> None:
    files = {f.path: f.entry.sha256 for f in view.regular_files()}
    assert len(files) == EXPECTED_FILES["count"]
    assert files == {f["path"]: f["sha256"] for f in EXPECTED_FILES["files"]}


EXPECTED_FILES = expected("oci-alpine-app.files.json")


def test_oci_layout_by_tag_gives_the_merged_file_bill_of_materials() -> None:
    source = open_source(f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}")
    assert str(source.manifest_digest) == EXPECTED["manifest_digest"]
    refs = source.layers()
    assert [r.digest for r in refs] == LAYER_DIGESTS
    assert [r.diff_id for r in refs] == DIFF_IDS
    check_alpine_app(merged(source))


def test_oci_layout_with_one_image_needs_no_tag() -> None:
    assert str(open_source(f"oci:{OCI_ALPINE_APP}").manifest_digest) == EXPECTED["manifest_digest"]


def test_oci_archive(oci_archive: Path) -> None:
    source = open_source(f"oci-archive:{oci_archive}:{OCI_ALPINE_APP_TAG}")
    assert str(source.manifest_digest) == EXPECTED["manifest_digest"]
    check_alpine_app(merged(source))


@pytest.mark.parametrize("ref", ["", ":fixture/alpine-app:1", ":docker.io/fixture/alpine-app:1", ":@0"])
def test_docker_archive(docker_archive: Path, ref: str) -> None:
    source = open_source(f"docker-archive:{docker_archive}{ref}")
    assert source.manifest_digest is None
    assert [r.diff_id for r in source.layers()] == DIFF_IDS
    check_alpine_app(merged(source))


def test_rootfs_tar() -> None:
    view = merged(open_source(f"rootfs:{ALPINE_ROOTFS}"))
    assert view.read("etc/os-release") is not None
    found = view.get("etc/os-release")
    assert found is not None and found.layer == LAYER_DIGESTS[0]


def test_rootfs_directory(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").write_bytes(b"ID=test\n")
    (tmp_path / "etc" / "link").symlink_to("/etc/os-release")
    (tmp_path / "etc" / "hard").hardlink_to(tmp_path / "etc" / "os-release")
    (tmp_path / "run").mkdir()
    source = open_source(f"rootfs:{tmp_path}")
    layer = source.read_layer(source.layers()[0], wants=lambda p: p.endswith("os-release"), limits=LayerLimits())
    assert layer.digest is None
    assert layer.contents == {"etc/os-release": b"ID=test\n"}
    kinds = {path: e.type for path, e in layer.entries.items()}
    assert kinds == {
        "etc": EntryType.DIR,
        "etc/hard": EntryType.FILE,
        "etc/link": EntryType.SYMLINK,
        "etc/os-release": EntryType.HARDLINK,
        "run": EntryType.DIR,
    }
    assert layer.entries["etc/os-release"].sha256 == hashlib.sha256(b"ID=test\n").hexdigest()
    view = ImageView()
    view.apply(layer)
    assert view.read("etc/link") == b"ID=test\n"


def test_a_layer_that_does_not_match_its_digest_is_refused(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    layer = gzip.compress(build_tar([file("a", b"x")]))
    wrong = Digest.of(b"something else")
    config = b'{"rootfs": {"type": "layers", "diff_ids": []}}'
    (blobs / wrong.hex).write_bytes(layer)
    (blobs / Digest.of(config).hex).write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(Digest.of(config)),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": str(wrong), "size": len(layer)}
            ],
        }
    ).encode()
    (blobs / Digest.of(manifest).hex).write_bytes(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": str(Digest.of(manifest)),
                "size": len(manifest),
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    source = open_source(f"oci:{layout}")
    with pytest.raises(SourceError, match="has digest"):
        source.read_layer(source.layers()[0], wants=lambda p: False, limits=LayerLimits())


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nothing", "unknown image source"),
        ("docker:example.com/x:1", "write docker://HOST/REPOSITORY"),
        ("docker://example.com/UPPER:1", "invalid repository name"),
        ("oci:", "no layout path"),
        ("oci:/nonexistent/layout", "does not exist"),
        (f"oci:{OCI_ALPINE_APP}:no-such-tag", "no image tagged 'no-such-tag'"),
        ("oci-archive:/nonexistent.tar", "does not exist"),
        ("docker-archive:/nonexistent.tar", "is not a file"),
        (f"docker-archive:{ALPINE_ROOTFS}", "cannot read the archive"),
        ("rootfs:/nonexistent", "does not exist"),
    ],
)
def test_bad_sources_are_refused(name: str, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(name)


def test_an_archive_without_a_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.tar"
    path.write_bytes(build_tar([file("other", b"x")]))
    with pytest.raises(SourceError, match=r"no file 'manifest\.json'"):
        open_source(f"docker-archive:{path}")
    with pytest.raises(SourceError, match=r"no file 'index\.json'"):
        open_source(f"oci-archive:{path}")
