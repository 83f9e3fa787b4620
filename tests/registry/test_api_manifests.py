"""Pushing and pulling manifests (end-3, end-7a/7b): every kind the registry accepts and every way it refuses one.

Kinds: OCI image manifest and index, Docker schema 2 manifest and manifest list, nested indexes, OCI 1.1
artifacts (``artifactType`` with the empty config), manifests with ``subject``, foreign/non-distributable
layers. Refusals: schema 1, malformed documents, digests that do not match, the size limit (413), content
the repository does not hold (``MANIFEST_BLOB_UNKNOWN``). Pulls: exact bytes, headers, negotiation by
``Accept``. Spec: distribution-spec v1.1 "Pulling manifests", "Pushing Manifests", "Pushing Manifests with
Subject"; image-spec v1.1 manifest.md and image-index.md.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from trustyard.oci.mediatypes import MediaType

from .conftest import (
    ALL_MANIFEST_TYPES,
    EMPTY_CONFIG,
    EXAMPLE_ARTIFACT,
    ClientFactory,
    ManifestDoc,
    RegistryClient,
    assert_error,
    encode,
    make_artifact,
    make_blob,
    make_image,
    make_index,
    sha256,
    sha512,
)

pytestmark = pytest.mark.anyio


async def assert_served(client: RegistryClient, name: str, reference: str, manifest: ManifestDoc) -> None:
    """GET and HEAD by ``reference`` serve the exact bytes, media type, digest and size."""
    response = await client.get_manifest(name, reference)
    assert response.status_code == 200, response.text
    assert response.content == manifest.body
    assert response.headers["content-type"] == manifest.media_type
    assert response.headers["docker-content-digest"] == manifest.digest
    assert response.headers["content-length"] == str(manifest.size)
    assert response.headers["etag"] == f'"{manifest.digest}"'
    head = await client.http.head(f"/v2/{name}/manifests/{reference}", headers={"Accept": ALL_MANIFEST_TYPES})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == manifest.media_type
    assert head.headers["docker-content-digest"] == manifest.digest
    assert head.headers["content-length"] == str(manifest.size)


# -- the kinds a registry accepts -------------------------------------------------------------------------------


async def test_oci_image_pushed_by_tag(client: RegistryClient) -> None:
    image = make_image("oci", layers=3)
    response = await client.push("team/app", image, "v1.0")
    assert response.headers["location"] == f"/v2/team/app/manifests/{image.digest}"
    assert response.headers["docker-content-digest"] == image.digest
    assert response.headers["content-length"] == "0"
    assert "oci-subject" not in response.headers
    await assert_served(client, "team/app", "v1.0", image)
    await assert_served(client, "team/app", image.digest, image)


async def test_oci_image_pushed_by_digest_is_untagged(client: RegistryClient) -> None:
    image = make_image("by-digest")
    await client.push("repo", image)
    await assert_served(client, "repo", image.digest, image)
    tags = await client.http.get("/v2/repo/tags/list")
    assert tags.json() == {"name": "repo", "tags": []}


async def test_docker_schema2_image(client: RegistryClient) -> None:
    image = make_image("docker", layers=2, docker=True)
    await client.push("repo", image, "latest")
    await assert_served(client, "repo", "latest", image)


async def test_oci_index_of_images(client: RegistryClient) -> None:
    index = make_index([make_image("amd64"), make_image("arm64")])
    await client.push("repo", index, "multi")
    await assert_served(client, "repo", "multi", index)
    for child in index.children:
        await assert_served(client, "repo", child.digest, child)


async def test_docker_manifest_list(client: RegistryClient) -> None:
    index = make_index([make_image("d-amd64", docker=True), make_image("d-arm64", docker=True)], docker=True)
    await client.push("repo", index, "multi")
    await assert_served(client, "repo", "multi", index)


async def test_nested_index(client: RegistryClient) -> None:
    inner1 = make_index([make_image("n1"), make_image("n2")])
    inner2 = make_index([make_image("n3")])
    outer = make_index([inner1, inner2])
    await client.push("repo", outer, "index-of-index")
    await assert_served(client, "repo", "index-of-index", outer)


async def test_empty_index(client: RegistryClient) -> None:
    index = make_index([])
    await client.push("repo", index, "empty")
    await assert_served(client, "repo", "empty", index)


async def test_image_without_layers(client: RegistryClient) -> None:
    image = make_image("no-layers", layers=0)
    await client.push("repo", image, "no-layers")
    await assert_served(client, "repo", "no-layers", image)


async def test_artifact_with_artifact_type_and_the_empty_config(client: RegistryClient) -> None:
    artifact = make_artifact(EXAMPLE_ARTIFACT, layers=2)
    assert artifact.document["config"] == {
        "mediaType": MediaType.OCI_EMPTY,
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    await client.push("repo", artifact, "sbom")
    await assert_served(client, "repo", "sbom", artifact)
    config = await client.http.get(f"/v2/repo/blobs/{EMPTY_CONFIG.digest}")
    assert config.content == b"{}"


async def test_artifact_whose_only_layer_is_the_empty_descriptor(client: RegistryClient) -> None:
    artifact = make_artifact(EXAMPLE_ARTIFACT, layers=0)
    assert artifact.document["layers"] == [EMPTY_CONFIG.descriptor()]
    await client.push("repo", artifact, "bare")
    await assert_served(client, "repo", "bare", artifact)


async def test_artifact_index(client: RegistryClient) -> None:
    index = make_index([make_artifact(EXAMPLE_ARTIFACT, seed="a1")], artifact_type="application/vnd.example.set")
    await client.push("repo", index, "set")
    await assert_served(client, "repo", "set", index)


async def test_manifest_keeps_unknown_fields_and_exact_bytes(client: RegistryClient) -> None:
    config = make_blob("custom-config", 40, MediaType.OCI_CONFIG)
    layer = make_blob("custom-layer")
    doc = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST,
        "config": config.descriptor(**{"x-custom": {"nested": [1, 2]}}),
        "layers": [layer.descriptor(data="AAAA")],
        "org.example.field": "kept",
    }
    body = json.dumps(doc, indent=7, sort_keys=True).encode() + b"\n\n"
    manifest = ManifestDoc(body, MediaType.OCI_MANIFEST, (config, layer))
    await client.push("repo", manifest, "custom")
    await assert_served(client, "repo", "custom", manifest)


async def test_large_manifest_under_the_default_limit(client: RegistryClient) -> None:
    """Registries SHOULD accept manifests of at least 4 megabytes (spec "Pushing Manifests")."""
    annotations = {f"large-annotation-{i}": "A" * 10_000 for i in range(390)}
    image = make_image("large", annotations=annotations)
    assert 3_900_000 < image.size < 4_000_000
    await client.push("repo", image, "large")
    response = await client.get_manifest("repo", "large")
    assert response.content == image.body


async def test_manifest_without_media_type_field_takes_the_content_type(client: RegistryClient) -> None:
    image = make_image("no-mt", media_type_field=False)
    await client.push("repo", image, "latest")
    await assert_served(client, "repo", "latest", image)


async def test_manifest_without_media_type_or_content_type_is_guessed_from_its_shape(client: RegistryClient) -> None:
    image = make_image("guess", media_type_field=False)
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    response = await client.http.put("/v2/repo/manifests/latest", content=image.body)
    assert response.status_code == 201, response.text
    got = await client.get_manifest("repo", "latest")
    assert got.headers["content-type"] == MediaType.OCI_MANIFEST


@pytest.mark.parametrize(
    "content_type",
    [f"{MediaType.OCI_MANIFEST}; charset=utf-8", "application/json", f"  {MediaType.OCI_MANIFEST}  "],
)
@pytest.mark.backend_independent
async def test_content_type_parameters_and_plain_json_are_accepted(client: RegistryClient, content_type: str) -> None:
    image = make_image("ctype")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    response = await client.put_manifest("repo", "latest", image, content_type=content_type)
    assert response.status_code == 201, response.text
    got = await client.get_manifest("repo", "latest")
    assert got.headers["content-type"] == MediaType.OCI_MANIFEST


@pytest.mark.backend_independent
async def test_content_type_contradicting_the_media_type_field_is_manifest_invalid(client: RegistryClient) -> None:
    image = make_image("contradiction")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    response = await client.put_manifest("repo", "latest", image, content_type=MediaType.DOCKER_MANIFEST)
    assert_error(response, 400, "MANIFEST_INVALID")


async def test_retag_moves_the_tag(client: RegistryClient) -> None:
    first, second = make_image("first"), make_image("second")
    await client.push("repo", first, "latest")
    await client.push("repo", second, "latest")
    await assert_served(client, "repo", "latest", second)
    await assert_served(client, "repo", first.digest, first)


async def test_same_manifest_under_two_tags(client: RegistryClient) -> None:
    image = make_image("twice")
    await client.push("repo", image, "a")
    await client.push("repo", image, "b")
    await assert_served(client, "repo", "a", image)
    await assert_served(client, "repo", "b", image)


async def test_manifests_survive_a_restart_of_the_registry(client_factory: ClientFactory) -> None:
    first = await client_factory()
    index = make_index([make_image("durable-a"), make_image("durable-b", docker=True)])
    await first.push("repo", index, "latest")
    second = await client_factory()  # same data dir and database, nothing cached
    await assert_served(second, "repo", "latest", index)
    for child in index.children:
        await assert_served(second, "repo", child.digest, child)


async def test_same_manifest_in_two_repositories(client: RegistryClient) -> None:
    image = make_image("shared")
    await client.push("one", image, "latest")
    await client.push("two", image, "latest")
    await assert_served(client, "two", "latest", image)


# -- subject ----------------------------------------------------------------------------------------------------


async def test_manifest_with_subject_answers_oci_subject(client: RegistryClient) -> None:
    image = make_image("subject")
    await client.push("repo", image, "latest")
    sbom = make_artifact(EXAMPLE_ARTIFACT, subject=image)
    response = await client.push("repo", sbom)
    assert response.headers["oci-subject"] == image.digest
    await assert_served(client, "repo", sbom.digest, sbom)


async def test_subject_that_does_not_exist_yet_is_accepted(client: RegistryClient) -> None:
    """A registry MUST accept a manifest whose subject is not (yet) in the repository."""
    absent = make_image("not-pushed")
    sbom = make_artifact(EXAMPLE_ARTIFACT, subject=absent)
    response = await client.push("repo", sbom)
    assert response.headers["oci-subject"] == absent.digest


async def test_index_with_subject_answers_oci_subject(client: RegistryClient) -> None:
    image = make_image("index-subject")
    await client.push("repo", image)
    index = make_index([make_artifact(EXAMPLE_ARTIFACT, seed="x")], subject=image)
    response = await client.push("repo", index)
    assert response.headers["oci-subject"] == image.digest


# -- PUT by digest, ?tag= ---------------------------------------------------------------------------------------


async def test_put_by_digest_that_does_not_match_is_digest_invalid(client: RegistryClient) -> None:
    image = make_image("mismatch")
    await client.push("repo", image)
    wrong = sha256(image.body + b"  ")
    response = await client.put_manifest("repo", wrong, image)
    assert assert_error(response, 400, "DIGEST_INVALID") == {"expected": wrong, "actual": image.digest}
    assert_error(await client.get_manifest("repo", wrong), 404, "MANIFEST_UNKNOWN")


async def test_body_with_extra_whitespace_is_a_different_manifest(client: RegistryClient) -> None:
    image = make_image("whitespace")
    await client.push("repo", image)
    response = await client.put_manifest("repo", image.digest, image.body + b"  ")
    assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", ["sha256:baddigeststring", "sha256:" + "0" * 63, "md5:" + "0" * 32])
@pytest.mark.backend_independent
async def test_put_by_malformed_digest_is_digest_invalid(client: RegistryClient, digest: str) -> None:
    image = make_image("malformed")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    response = await client.put_manifest("repo", digest, image)
    assert_error(response, 400, "DIGEST_INVALID")


async def test_put_by_sha512_digest(client: RegistryClient) -> None:
    image = make_image("sha512")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    digest = sha512(image.body)
    response = await client.put_manifest("repo", digest, image)
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert response.headers["location"] == f"/v2/repo/manifests/{digest}"
    got = await client.get_manifest("repo", digest)
    assert got.content == image.body
    assert got.headers["docker-content-digest"] == digest


async def test_put_with_tag_parameters_creates_every_tag_and_reports_them(client: RegistryClient) -> None:
    image = make_image("tag-param")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    tags = ["1.2.3", "1.2", "1", "latest"]
    response = await client.put_manifest("repo", image.digest, image, params={"tag": tags})
    assert response.status_code == 201, response.text
    reported = [t.strip() for value in response.headers.get_list("oci-tag") for t in value.split(",")]
    assert sorted(reported) == sorted(tags)
    listing = await client.http.get("/v2/repo/tags/list")
    assert sorted(listing.json()["tags"]) == sorted(tags)
    for tag in tags:
        await assert_served(client, "repo", tag, image)


async def test_put_by_tag_with_tag_parameters_creates_all_of_them(client: RegistryClient) -> None:
    image = make_image("tag-and-param")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    response = await client.put_manifest("repo", "main", image, params={"tag": ["extra"]})
    assert response.status_code == 201, response.text
    listing = await client.http.get("/v2/repo/tags/list")
    assert listing.json()["tags"] == ["extra", "main"]


async def test_put_without_tag_parameters_has_no_oci_tag_header(client: RegistryClient) -> None:
    response = await client.push("repo", make_image("no-tag-param"), "latest")
    assert "oci-tag" not in response.headers


@pytest.mark.parametrize("bad", ["-leading-dash", "a" * 129, "has space", "sha256:" + "0" * 64, ""])
@pytest.mark.backend_independent
async def test_invalid_tag_parameter_refuses_the_whole_push(client: RegistryClient, bad: str) -> None:
    image = make_image("bad-tag-param")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    response = await client.put_manifest("repo", image.digest, image, params={"tag": ["good", bad]})
    assert_error(response, 400, "MANIFEST_INVALID")
    assert_error(await client.get_manifest("repo", image.digest), 404, "MANIFEST_UNKNOWN")
    assert_error(await client.get_manifest("repo", "good"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("reference", ["-bad", "a" * 129, "bad!tag", ".hidden"])
@pytest.mark.backend_independent
async def test_put_by_invalid_reference_is_refused(client: RegistryClient, reference: str) -> None:
    image = make_image("bad-reference")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    response = await client.put_manifest("repo", reference, image)
    assert_error(response, 400, "MANIFEST_INVALID")


async def test_longest_tag_is_accepted(client: RegistryClient) -> None:
    tag = "T" + "a" * 127
    image = make_image("long-tag")
    await client.push("repo", image, tag)
    await assert_served(client, "repo", tag, image)


# -- refused: malformed -----------------------------------------------------------------------------------------

DIGEST = "sha256:" + "a" * 64
CONFIG_DESCRIPTOR = {"mediaType": MediaType.OCI_CONFIG, "digest": DIGEST, "size": 10}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(b"", MediaType.OCI_MANIFEST, id="empty"),
        pytest.param(b"{not json", MediaType.OCI_MANIFEST, id="not-json"),
        pytest.param(b"[]", MediaType.OCI_MANIFEST, id="array"),
        pytest.param(b"\xff\xfe", MediaType.OCI_MANIFEST, id="not-utf8"),
        pytest.param(encode({"mediaType": MediaType.OCI_MANIFEST}), MediaType.OCI_MANIFEST, id="no-schema-version"),
        pytest.param(
            encode(
                {"schemaVersion": 3, "mediaType": MediaType.OCI_MANIFEST, "config": CONFIG_DESCRIPTOR, "layers": []}
            ),
            MediaType.OCI_MANIFEST,
            id="schema-version-3",
        ),
        pytest.param(
            encode({"schemaVersion": 2, "mediaType": MediaType.OCI_MANIFEST, "layers": []}),
            MediaType.OCI_MANIFEST,
            id="image-without-config",
        ),
        pytest.param(
            encode({"schemaVersion": 2, "mediaType": MediaType.DOCKER_MANIFEST, "config": CONFIG_DESCRIPTOR}),
            MediaType.DOCKER_MANIFEST,
            id="docker-without-layers",
        ),
        pytest.param(
            encode(
                {"schemaVersion": 2, "mediaType": MediaType.OCI_MANIFEST, "config": CONFIG_DESCRIPTOR, "manifests": []}
            ),
            MediaType.OCI_MANIFEST,
            id="image-with-manifests",
        ),
        pytest.param(
            encode({"schemaVersion": 2, "mediaType": MediaType.OCI_INDEX}),
            MediaType.OCI_INDEX,
            id="index-without-manifests",
        ),
        pytest.param(
            encode(
                {"schemaVersion": 2, "mediaType": MediaType.OCI_INDEX, "manifests": [], "config": CONFIG_DESCRIPTOR}
            ),
            MediaType.OCI_INDEX,
            id="index-with-config",
        ),
        pytest.param(
            encode(
                {
                    "schemaVersion": 2,
                    "mediaType": MediaType.OCI_MANIFEST,
                    "config": {**CONFIG_DESCRIPTOR, "digest": "sha256:nothex"},
                    "layers": [],
                }
            ),
            MediaType.OCI_MANIFEST,
            id="bad-descriptor-digest",
        ),
        pytest.param(
            encode(
                {
                    "schemaVersion": 2,
                    "mediaType": MediaType.OCI_MANIFEST,
                    "config": {**CONFIG_DESCRIPTOR, "size": -1},
                    "layers": [],
                }
            ),
            MediaType.OCI_MANIFEST,
            id="negative-size",
        ),
        pytest.param(
            encode(
                {
                    "schemaVersion": 2,
                    "mediaType": MediaType.OCI_MANIFEST,
                    "config": {"digest": DIGEST, "size": 1},
                    "layers": [],
                }
            ),
            MediaType.OCI_MANIFEST,
            id="descriptor-without-media-type",
        ),
        pytest.param(
            encode({"schemaVersion": 2, "mediaType": "application/vnd.oci.artifact.manifest.v1+json", "blobs": []}),
            "application/vnd.oci.artifact.manifest.v1+json",
            id="withdrawn-artifact-manifest",
        ),
        pytest.param(
            encode({"schemaVersion": 2, "config": CONFIG_DESCRIPTOR, "layers": []}),
            "text/plain",
            id="unknown-content-type",
        ),
        pytest.param(encode({"schemaVersion": 2}), None, id="shapeless"),
    ],
)
@pytest.mark.backend_independent
async def test_malformed_manifest_is_manifest_invalid(
    client: RegistryClient, body: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.http.put("/v2/repo/manifests/latest", content=body, headers=headers)
    assert_error(response, 400, "MANIFEST_INVALID")
    assert_error(await client.get_manifest("repo", "latest"), 404, "NAME_UNKNOWN")


SCHEMA1 = encode(
    {
        "schemaVersion": 1,
        "name": "library/old",
        "tag": "latest",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": DIGEST}],
        "history": [{"v1Compatibility": "{}"}],
        "signatures": [{"header": {"alg": "ES256"}, "signature": "abc", "protected": "def"}],
    }
)


@pytest.mark.parametrize(
    "content_type",
    [MediaType.DOCKER_SCHEMA1_SIGNED, MediaType.DOCKER_SCHEMA1, "application/json", None],
)
@pytest.mark.backend_independent
async def test_docker_schema1_is_refused(client: RegistryClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.http.put("/v2/repo/manifests/latest", content=SCHEMA1, headers=headers)
    assert_error(response, 400, "MANIFEST_INVALID")
    message = response.json()["errors"][0]["message"].lower()
    assert "schema" in message
    assert "1" in message


# -- refused: too large -----------------------------------------------------------------------------------------


async def padded(image: ManifestDoc, size: int) -> bytes:
    """The manifest padded with trailing whitespace (still valid JSON) to exactly ``size`` bytes."""
    assert image.size <= size
    return image.body + b" " * (size - image.size)


@pytest.mark.backend_independent
async def test_manifest_over_the_limit_is_413(client_factory: ClientFactory) -> None:
    client = await client_factory(max_manifest_size=2048)
    image = make_image("too-large")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    body = await padded(image, 2049)
    response = await client.put_manifest("repo", "latest", body)
    assert_error(response, 413, "SIZE_INVALID")
    assert_error(await client.get_manifest("repo", "latest"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.backend_independent
async def test_manifest_over_the_limit_without_content_length_is_413(client_factory: ClientFactory) -> None:
    client = await client_factory(max_manifest_size=2048)
    image = make_image("too-large-streamed")
    body = await padded(image, 5000)

    async def stream() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 500):
            yield body[i : i + 500]

    response = await client.http.put(
        "/v2/repo/manifests/latest", content=stream(), headers={"Content-Type": MediaType.OCI_MANIFEST}
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "SIZE_INVALID")


@pytest.mark.backend_independent
async def test_content_length_over_the_limit_is_413_before_reading(client_factory: ClientFactory) -> None:
    client = await client_factory(max_manifest_size=2048)
    response = await client.http.put(
        "/v2/repo/manifests/latest",
        content=b"{}",
        headers={"Content-Type": MediaType.OCI_MANIFEST, "Content-Length": "999999"},
    )
    assert_error(response, 413, "SIZE_INVALID")


@pytest.mark.parametrize("value", ["abc", "²"])
@pytest.mark.backend_independent
async def test_non_numeric_content_length_of_a_manifest_is_size_invalid(client: RegistryClient, value: str) -> None:
    image = make_image("bad-length")
    response = await client.http.put(
        "/v2/repo/manifests/latest",
        content=image.body,
        headers={b"Content-Type": image.media_type.encode(), b"Content-Length": value.encode("latin-1")},
    )
    assert_error(response, 400, "SIZE_INVALID")


async def test_manifest_exactly_at_the_limit_is_accepted(client_factory: ClientFactory) -> None:
    client = await client_factory(max_manifest_size=2048)
    image = make_image("at-limit")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    body = await padded(image, 2048)
    response = await client.put_manifest("repo", "latest", body)
    assert response.status_code == 201, response.text
    assert (await client.get_manifest("repo", "latest")).content == body


# -- refused: content the repository does not hold --------------------------------------------------------------


async def push_blobs_except(client: RegistryClient, name: str, manifest: ManifestDoc, skip: int) -> None:
    for i, blob in enumerate(manifest.blobs):
        if i != skip:
            await client.push_blob(name, blob)


@pytest.mark.parametrize(("skip", "what"), [(0, "config"), (1, "first layer"), (2, "last layer")])
async def test_missing_blob_is_manifest_blob_unknown(client: RegistryClient, skip: int, what: str) -> None:
    image = make_image(f"missing-{skip}", layers=2)
    await push_blobs_except(client, "repo", image, skip)
    response = await client.put_manifest("repo", "latest", image)
    detail = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert detail == {"digests": [image.blobs[skip].digest]}, what
    assert_error(await client.get_manifest("repo", "latest"), 404, "MANIFEST_UNKNOWN")
    assert_error(await client.get_manifest("repo", image.digest), 404, "MANIFEST_UNKNOWN")


async def test_every_missing_blob_is_listed(client: RegistryClient) -> None:
    image = make_image("all-missing", layers=2)
    response = await client.put_manifest("repo", "latest", image)
    detail = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert sorted(detail["digests"]) == sorted(b.digest for b in image.blobs)


async def test_blob_held_only_by_another_repository_is_manifest_blob_unknown(client: RegistryClient) -> None:
    image = make_image("elsewhere")
    for blob in image.blobs:
        await client.push_blob("other", blob)
    response = await client.put_manifest("repo", "latest", image)
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


async def test_blob_deleted_from_the_repository_is_manifest_blob_unknown(client: RegistryClient) -> None:
    image = make_image("deleted-blob")
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    assert (await client.http.delete(f"/v2/repo/blobs/{image.blobs[1].digest}")).status_code == 202
    response = await client.put_manifest("repo", "latest", image)
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-list"])
async def test_missing_index_child_is_manifest_blob_unknown(client: RegistryClient, docker: bool) -> None:
    present, absent = make_image("present", docker=docker), make_image("absent", docker=docker)
    await client.push("repo", present)
    for blob in absent.blobs:  # its blobs are there, the child manifest itself is not
        await client.push_blob("repo", blob)
    index = make_index([present, absent], docker=docker)
    response = await client.put_manifest("repo", "multi", index)
    assert assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN") == {"digests": [absent.digest]}
    assert_error(await client.get_manifest("repo", "multi"), 404, "MANIFEST_UNKNOWN")


async def test_index_child_held_only_by_another_repository_is_manifest_blob_unknown(client: RegistryClient) -> None:
    child = make_image("child-elsewhere")
    await client.push("other", child)
    response = await client.put_manifest("repo", "multi", make_index([child]))
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


async def test_index_child_that_is_only_a_blob_is_manifest_blob_unknown(client: RegistryClient) -> None:
    """A child must be a manifest of the repository, not merely a blob with the same bytes."""
    child = make_image("child-as-blob")
    await client.push_blob("repo", child.body)
    response = await client.put_manifest("repo", "multi", make_index([child]))
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


async def test_missing_empty_config_of_an_artifact_is_manifest_blob_unknown(client: RegistryClient) -> None:
    artifact = make_artifact(EXAMPLE_ARTIFACT)
    for blob in artifact.blobs[1:]:
        await client.push_blob("repo", blob)
    response = await client.put_manifest("repo", "sbom", artifact)
    assert assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN") == {"digests": [EMPTY_CONFIG.digest]}


# -- foreign layers ---------------------------------------------------------------------------------------------


def foreign(media_type: str, seed: str, urls: bool = True) -> dict[str, Any]:
    digest = sha256(seed.encode())
    descriptor: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": 123456}
    if urls:
        descriptor["urls"] = [f"https://store.example.com/blobs/sha256/{digest[7:]}"]
    return descriptor


@pytest.mark.parametrize(
    "media_type",
    [
        MediaType.DOCKER_FOREIGN_LAYER,
        MediaType.OCI_LAYER_NONDIST,
        MediaType.OCI_LAYER_NONDIST_GZIP,
        MediaType.OCI_LAYER_NONDIST_ZSTD,
    ],
)
async def test_foreign_layer_with_urls_need_not_be_in_the_registry(client: RegistryClient, media_type: str) -> None:
    image = make_image("foreign", extra_layers=[foreign(media_type, "windows-base")], docker="docker" in media_type)
    response = await client.push("repo", image, "latest")
    assert response.status_code == 201
    await assert_served(client, "repo", "latest", image)


async def test_foreign_layer_without_urls_must_be_in_the_registry(client: RegistryClient) -> None:
    layer = foreign(MediaType.DOCKER_FOREIGN_LAYER, "no-urls", urls=False)
    image = make_image("foreign-no-urls", docker=True, extra_layers=[layer])
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    response = await client.put_manifest("repo", "latest", image)
    assert assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN") == {"digests": [layer["digest"]]}


async def test_ordinary_layer_with_urls_must_be_in_the_registry(client: RegistryClient) -> None:
    layer = foreign(MediaType.OCI_LAYER_GZIP, "ordinary-with-urls")
    image = make_image("ordinary-urls", extra_layers=[layer])
    for blob in image.blobs:
        await client.push_blob("repo", blob)
    response = await client.put_manifest("repo", "latest", image)
    assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


# -- pulls: negotiation and errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        (None, True),
        ("", True),
        (" , ", True),
        ("*/*", True),
        (MediaType.OCI_MANIFEST, True),
        (f"{MediaType.DOCKER_MANIFEST}, {MediaType.OCI_MANIFEST};q=0.5", True),
        ("application/json", True),
        (MediaType.DOCKER_MANIFEST, False),
        (f"{MediaType.DOCKER_MANIFEST}, {MediaType.DOCKER_MANIFEST_LIST}", False),
        (MediaType.OCI_INDEX, False),
    ],
)
@pytest.mark.backend_independent
async def test_oci_manifest_is_served_only_when_accepted(client: RegistryClient, accept: str | None, ok: bool) -> None:
    image = make_image("negotiate")
    await client.push("repo", image, "latest")
    for method in ("GET", "HEAD"):
        request = client.http.build_request(method, "/v2/repo/manifests/latest")
        if accept is None:
            del request.headers["accept"]  # httpx sends */* unless told otherwise
        else:
            request.headers["accept"] = accept
        response = await client.http.send(request)
        if ok:
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == MediaType.OCI_MANIFEST
        else:
            detail = assert_error(response, 404, "MANIFEST_UNKNOWN")
            if method == "GET":
                assert detail == {"mediaType": MediaType.OCI_MANIFEST}


@pytest.mark.backend_independent
async def test_accept_given_in_several_headers_is_combined(client: RegistryClient) -> None:
    image = make_image("multi-accept", docker=True)
    await client.push("repo", image, "latest")
    response = await client.http.get(
        "/v2/repo/manifests/latest",
        headers=[("Accept", MediaType.OCI_MANIFEST), ("Accept", MediaType.DOCKER_MANIFEST)],
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == MediaType.DOCKER_MANIFEST


@pytest.mark.backend_independent
async def test_index_is_served_to_an_accept_that_names_it(client: RegistryClient) -> None:
    index = make_index([make_image("neg-child")])
    await client.push("repo", index, "multi")
    response = await client.http.get("/v2/repo/manifests/multi", headers={"Accept": MediaType.OCI_INDEX})
    assert response.status_code == 200
    assert response.content == index.body


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    ("docker", "accept"),
    [(True, MediaType.DOCKER_MANIFEST), (False, MediaType.OCI_MANIFEST), (False, "application/json")],
    ids=["docker-list", "oci-index", "plain-json"],
)
async def test_tag_of_an_index_falls_back_to_linux_amd64_for_clients_without_index_support(
    client: RegistryClient, docker: bool, accept: str, method: str
) -> None:
    """Like the reference registry: a client that cannot read indexes, asking by tag, gets the
    linux/amd64 image (with that image's digest); by digest it still gets exactly what it asked for."""
    amd64, arm64 = make_image("fb-amd64", docker=docker), make_image("fb-arm64", docker=docker)
    index = make_index([amd64, arm64], docker=docker)
    await client.push("repo", index, "multi")
    response = await client.http.request(method, "/v2/repo/manifests/multi", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["docker-content-digest"] == amd64.digest
    assert response.headers["content-type"] == amd64.media_type
    assert response.headers["content-length"] == str(amd64.size)
    assert response.content == (amd64.body if method == "GET" else b"")
    by_digest = await client.http.request(method, f"/v2/repo/manifests/{index.digest}", headers={"Accept": accept})
    assert_error(by_digest, 404, "MANIFEST_UNKNOWN")


async def test_index_without_an_acceptable_linux_amd64_image_is_not_served(client: RegistryClient) -> None:
    index = make_index([make_image("only-amd64")])  # an OCI image: a Docker-v2-only client cannot take it
    await client.push("repo", index, "multi")
    response = await client.http.get("/v2/repo/manifests/multi", headers={"Accept": MediaType.DOCKER_MANIFEST})
    assert_error(response, 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_unknown_tag_is_manifest_unknown(client: RegistryClient, method: str) -> None:
    await client.push("repo", make_image("known"), "known")
    response = await client.http.request(method, "/v2/repo/manifests/unknown")
    detail = assert_error(response, 404, "MANIFEST_UNKNOWN")
    if method == "GET":
        assert detail == {"reference": "unknown"}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_unknown_digest_is_manifest_unknown(client: RegistryClient, method: str) -> None:
    await client.push("repo", make_image("known"), "known")
    response = await client.http.request(method, f"/v2/repo/manifests/{sha256(b'random')}")
    assert_error(response, 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("reference", ["latest", sha256(b"x")])
async def test_unknown_repository_is_name_unknown(client: RegistryClient, reference: str) -> None:
    response = await client.get_manifest("nobody/here", reference)
    assert assert_error(response, 404, "NAME_UNKNOWN") == {"name": "nobody/here"}
    head = await client.http.head(f"/v2/nobody/here/manifests/{reference}")
    assert_error(head, 404, "NAME_UNKNOWN")


async def test_manifest_of_another_repository_is_not_visible(client: RegistryClient) -> None:
    image = make_image("private")
    await client.push("alice", image, "latest")
    await client.push("bob", make_image("bobs"), "latest")
    assert_error(await client.get_manifest("bob", image.digest), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("reference", ["sha256:baddigeststring", "md5:" + "0" * 32])
@pytest.mark.backend_independent
async def test_get_by_malformed_digest_is_400(client: RegistryClient, reference: str) -> None:
    await client.push("repo", make_image("x"), "latest")
    assert_error(await client.get_manifest("repo", reference), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("reference", ["-bad", "a" * 129, "bad!"])
@pytest.mark.backend_independent
async def test_get_by_invalid_reference_is_400(client: RegistryClient, reference: str) -> None:
    await client.push("repo", make_image("x"), "latest")
    assert_error(await client.get_manifest("repo", reference), 400, "MANIFEST_INVALID")


async def test_accept_type_wildcard_is_honoured(client: RegistryClient) -> None:
    image = make_image("wildcard")
    await client.push("repo", image, "v1")
    response = await client.get_manifest("repo", "v1", accept="application/*")
    assert response.status_code == 200
    assert response.content == image.body
    assert_error(await client.get_manifest("repo", "v1", accept="text/*"), 404, "MANIFEST_UNKNOWN")
