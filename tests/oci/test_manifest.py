"""``parse_manifest``: typed manifests and indexes from their exact bytes (OCI image-spec v1.1, Docker schema 2).

Golden-ish inputs in ``tests/assets/oci/manifests/`` are shaped like what real tools push (Docker Hub
manifest lists, BuildKit indexes with attestations, cosign signatures, oras artifacts with a subject, Helm
charts, Windows images with foreign layers, a signed schema 1 manifest); a named case table says what each
must parse to. A second table names every way a document is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trustyard.oci.digest import Digest
from trustyard.oci.manifest import Descriptor, ImageIndex, ImageManifest, ManifestError, Platform, parse_manifest
from trustyard.oci.mediatypes import FOREIGN_LAYER_TYPES, INDEX_TYPES, MANIFEST_TYPES, MediaType

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "oci" / "manifests"
EMPTY = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def asset(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


def d(seed: str) -> str:
    """The digests the asset files were written with."""
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


@dataclass(frozen=True)
class Expected:
    """What an asset parses to."""

    content_type: str | None
    media_type: str
    kind: type[ImageManifest] | type[ImageIndex]
    blobs: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    foreign: tuple[str, ...] = ()
    artifact_type: str | None = None
    subject: str | None = None
    annotations: tuple[str, ...] = ()


GOLDEN: dict[str, Expected] = {
    "docker-manifest-list.json": Expected(
        MediaType.DOCKER_MANIFEST_LIST,
        MediaType.DOCKER_MANIFEST_LIST,
        ImageIndex,
        children=(d("alpine-amd64"), d("alpine-arm-v6"), d("alpine-arm64-v8"), d("alpine-s390x")),
    ),
    "docker-manifest-v2.json": Expected(
        MediaType.DOCKER_MANIFEST,
        MediaType.DOCKER_MANIFEST,
        ImageManifest,
        blobs=(d("nginx-config"), d("nginx-l1"), d("nginx-l2"), d("nginx-l3"), d("nginx-l4")),
        artifact_type=MediaType.DOCKER_CONFIG,
    ),
    "oci-image-manifest.json": Expected(
        MediaType.OCI_MANIFEST,
        MediaType.OCI_MANIFEST,
        ImageManifest,
        blobs=(d("busybox-config"), d("busybox-layer")),
        artifact_type=MediaType.OCI_CONFIG,
        annotations=("org.opencontainers.image.base.name", "org.opencontainers.image.created"),
    ),
    "oci-index-with-attestations.json": Expected(
        MediaType.OCI_INDEX,
        MediaType.OCI_INDEX,
        ImageIndex,
        children=(d("app-amd64"), d("app-attestation")),
        annotations=("org.opencontainers.image.revision",),
    ),
    "oci-image-without-media-type.json": Expected(
        MediaType.OCI_MANIFEST,
        MediaType.OCI_MANIFEST,
        ImageManifest,
        blobs=(d("nomt-config"), d("nomt-layer")),
        artifact_type=MediaType.OCI_CONFIG,
    ),
    "oci-index-without-media-type.json": Expected(None, MediaType.OCI_INDEX, ImageIndex, children=(d("nomt-child"),)),
    "cosign-signature.json": Expected(
        MediaType.OCI_MANIFEST,
        MediaType.OCI_MANIFEST,
        ImageManifest,
        blobs=(d("cosign-config"), d("cosign-payload")),
        artifact_type=MediaType.OCI_CONFIG,
    ),
    "oras-sbom-with-subject.json": Expected(
        MediaType.OCI_MANIFEST,
        MediaType.OCI_MANIFEST,
        ImageManifest,
        blobs=(EMPTY, d("sbom")),
        artifact_type="application/spdx+json",
        subject=d("busybox-manifest"),
        annotations=("org.opencontainers.image.created",),
    ),
    "helm-chart.json": Expected(
        None,
        MediaType.OCI_MANIFEST,
        ImageManifest,
        blobs=(d("helm-config"), d("helm-chart")),
        artifact_type="application/vnd.cncf.helm.config.v1+json",
        annotations=("org.opencontainers.image.title", "org.opencontainers.image.version"),
    ),
    "windows-foreign-layers.json": Expected(
        MediaType.DOCKER_MANIFEST,
        MediaType.DOCKER_MANIFEST,
        ImageManifest,
        blobs=(d("win-config"), d("win-base"), d("win-app")),
        foreign=(d("win-base"),),
        artifact_type=MediaType.DOCKER_CONFIG,
    ),
}


def test_every_asset_has_an_expectation() -> None:
    assert {p.name for p in ASSETS.glob("*.json")} == {*GOLDEN, "docker-schema1-signed.json"}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_manifests_parse_to_what_they_say(name: str) -> None:
    raw = asset(name)
    expected = GOLDEN[name]
    m = parse_manifest(raw, expected.content_type)
    assert isinstance(m, expected.kind)
    assert m.media_type == expected.media_type
    assert m.raw is raw
    assert m.digest == Digest.of(raw)
    assert tuple(str(b.digest) for b in m.blobs) == expected.blobs
    assert tuple(str(c.digest) for c in m.children) == expected.children
    assert tuple(str(b.digest) for b in m.blobs if b.is_foreign) == expected.foreign
    assert m.effective_artifact_type == expected.artifact_type
    assert (str(m.subject.digest) if m.subject else None) == expected.subject
    assert tuple(sorted(m.annotations)) == expected.annotations


def test_descriptors_carry_every_typed_field() -> None:
    m = parse_manifest(asset("docker-manifest-list.json"), MediaType.DOCKER_MANIFEST_LIST)
    assert isinstance(m, ImageIndex)
    arm = m.manifests[1]
    assert arm == Descriptor(
        media_type=MediaType.DOCKER_MANIFEST,
        digest=Digest.parse(d("alpine-arm-v6")),
        size=528,
        platform=Platform("arm", "linux", "v6"),
    )
    win = parse_manifest(asset("windows-foreign-layers.json"), None)
    assert isinstance(win, ImageManifest)
    assert win.layers[0].urls == (f"https://mcr.microsoft.com/v2/windows/servercore/blobs/{d('win-base')}",)
    cosign = parse_manifest(asset("cosign-signature.json"), None)
    assert isinstance(cosign, ImageManifest)
    assert cosign.layers[0].annotations["dev.sigstore.cosign/bundle"] == "{}"


def test_digest_follows_the_requested_algorithm() -> None:
    raw = asset("oci-image-manifest.json")
    m = parse_manifest(raw, MediaType.OCI_MANIFEST, algorithm="sha512")
    assert m.digest == Digest.of(raw, "sha512")


def test_content_type_parameters_are_ignored() -> None:
    m = parse_manifest(asset("oci-image-manifest.json"), f"{MediaType.OCI_MANIFEST}; charset=utf-8")
    assert m.media_type == MediaType.OCI_MANIFEST


def test_plain_json_content_type_defers_to_the_document() -> None:
    m = parse_manifest(asset("docker-manifest-v2.json"), "application/json")
    assert m.media_type == MediaType.DOCKER_MANIFEST


def test_content_type_names_the_kind_when_the_document_does_not() -> None:
    m = parse_manifest(asset("oci-image-without-media-type.json"), MediaType.DOCKER_MANIFEST)
    assert m.media_type == MediaType.DOCKER_MANIFEST


def test_index_artifact_type_is_reported_only_when_set() -> None:
    doc = json.loads(asset("oci-index-with-attestations.json"))
    assert parse_manifest(json.dumps(doc).encode(), None).effective_artifact_type is None
    doc["artifactType"] = "application/vnd.example.set"
    assert parse_manifest(json.dumps(doc).encode(), None).effective_artifact_type == "application/vnd.example.set"


@pytest.mark.parametrize(
    ("media_type", "urls", "foreign"),
    [
        (MediaType.DOCKER_FOREIGN_LAYER, True, True),
        (MediaType.OCI_LAYER_NONDIST, True, True),
        (MediaType.OCI_LAYER_NONDIST_GZIP, True, True),
        (MediaType.OCI_LAYER_NONDIST_ZSTD, True, True),
        (MediaType.DOCKER_FOREIGN_LAYER, False, False),
        (MediaType.OCI_LAYER_GZIP, True, False),
        (MediaType.DOCKER_LAYER, True, False),
    ],
)
def test_a_layer_is_foreign_only_with_a_foreign_type_and_urls(media_type: str, urls: bool, foreign: bool) -> None:
    descriptor = Descriptor(media_type, Digest.of(b"x"), 1, ("https://example.com/x",) if urls else ())
    assert descriptor.is_foreign is foreign
    assert (media_type in FOREIGN_LAYER_TYPES and urls) is foreign


def test_media_type_sets_are_consistent() -> None:
    assert INDEX_TYPES <= MANIFEST_TYPES
    assert MediaType.OCI_MANIFEST in MANIFEST_TYPES
    assert MediaType.DOCKER_SCHEMA1 not in MANIFEST_TYPES
    assert str(MediaType.OCI_EMPTY) == "application/vnd.oci.empty.v1+json"


# -- refusals ---------------------------------------------------------------------------------------------------

CONFIG: dict[str, Any] = {"mediaType": MediaType.OCI_CONFIG, "digest": d("c"), "size": 1}
LAYER: dict[str, Any] = {"mediaType": MediaType.OCI_LAYER_GZIP, "digest": d("l"), "size": 1}


def doc(**fields: Any) -> bytes:
    return json.dumps({"schemaVersion": 2, **fields}).encode()


REFUSED: dict[str, tuple[bytes, str | None, str]] = {
    "schema1-by-content-type": (asset("docker-schema1-signed.json"), MediaType.DOCKER_SCHEMA1_SIGNED, "schema 1"),
    "schema1-unsigned-content-type": (asset("docker-schema1-signed.json"), MediaType.DOCKER_SCHEMA1, "schema 1"),
    "schema1-without-content-type": (asset("docker-schema1-signed.json"), None, "schemaVersion 1"),
    "schema1-malformed": (b'{"schemaVersion": "one", "fsLayers": []}', None, "schema 1"),
    "not-json": (b"{", None, "malformed manifest"),
    "empty": (b"", MediaType.OCI_MANIFEST, "malformed manifest"),
    "array": (b"[]", None, "malformed manifest"),
    "no-schema-version": (json.dumps({"config": CONFIG}).encode(), None, "schemaVersion"),
    "schema-version-string": (json.dumps({"schemaVersion": "2x"}).encode(), None, "schemaVersion"),
    "schema-version-3": (json.dumps({"schemaVersion": 3, "config": CONFIG}).encode(), None, "schemaVersion 3"),
    "shapeless": (doc(), None, "no mediaType"),
    "unknown-media-type": (doc(mediaType="application/x-unknown", config=CONFIG), None, "unsupported manifest media"),
    "content-type-contradicts": (
        doc(mediaType=MediaType.OCI_MANIFEST, config=CONFIG, layers=[]),
        MediaType.DOCKER_MANIFEST,
        "does not match",
    ),
    "image-without-config": (doc(mediaType=MediaType.OCI_MANIFEST, layers=[LAYER]), None, "config descriptor"),
    "image-listing-manifests": (
        doc(mediaType=MediaType.OCI_MANIFEST, config=CONFIG, manifests=[]),
        None,
        "cannot list manifests",
    ),
    "docker-without-layers": (doc(mediaType=MediaType.DOCKER_MANIFEST, config=CONFIG), None, "layers list"),
    "index-without-manifests": (doc(mediaType=MediaType.OCI_INDEX), None, "manifests list"),
    "index-with-config": (doc(mediaType=MediaType.OCI_INDEX, manifests=[], config=CONFIG), None, "config or layers"),
    "index-with-layers": (doc(mediaType=MediaType.DOCKER_MANIFEST_LIST, manifests=[], layers=[]), None, "config or"),
    "config-bad-digest": (
        doc(mediaType=MediaType.OCI_MANIFEST, config={**CONFIG, "digest": "sha256:zz"}, layers=[]),
        None,
        "config:",
    ),
    "layer-bad-digest": (
        doc(mediaType=MediaType.OCI_MANIFEST, config=CONFIG, layers=[LAYER, {**LAYER, "digest": "md5:00"}]),
        None,
        "layers[1]:",
    ),
    "child-bad-digest": (
        doc(mediaType=MediaType.OCI_INDEX, manifests=[{**CONFIG, "digest": "nope"}]),
        None,
        "manifests[0]:",
    ),
    "subject-bad-digest": (
        doc(mediaType=MediaType.OCI_MANIFEST, config=CONFIG, layers=[], subject={**CONFIG, "digest": "x"}),
        None,
        "subject:",
    ),
    "negative-size": (doc(mediaType=MediaType.OCI_MANIFEST, config={**CONFIG, "size": -1}, layers=[]), None, "size"),
    "size-not-a-number": (
        doc(mediaType=MediaType.OCI_MANIFEST, config={**CONFIG, "size": "big"}, layers=[]),
        None,
        "size",
    ),
    "empty-descriptor-media-type": (
        doc(mediaType=MediaType.OCI_MANIFEST, config={**CONFIG, "mediaType": ""}, layers=[]),
        None,
        "mediaType",
    ),
    "layers-not-a-list": (doc(mediaType=MediaType.OCI_MANIFEST, config=CONFIG, layers={}), None, "layers"),
    "annotation-not-a-string": (
        doc(mediaType=MediaType.OCI_MANIFEST, config=CONFIG, layers=[], annotations={"a": 1}),
        None,
        "annotations",
    ),
    "platform-without-os": (
        doc(mediaType=MediaType.OCI_INDEX, manifests=[{**CONFIG, "platform": {"architecture": "amd64"}}]),
        None,
        "platform",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_documents_say_why(case: str) -> None:
    raw, content_type, reason = REFUSED[case]
    with pytest.raises(ManifestError) as info:
        parse_manifest(raw, content_type)
    assert reason in info.value.message
    assert len(info.value.message) < 500
