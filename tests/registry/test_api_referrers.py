"""The referrers API (end-12a, end-12b): descriptors of manifests whose ``subject`` is a digest.

Spec: distribution-spec v1.1 "Listing Referrers": always 200 with an OCI image index (never 404); each
descriptor carries the referrer's ``artifactType`` (else its config media type for an image manifest,
omitted for an index) and annotations; ``?artifactType=`` filters and is reported in ``OCI-Filters-Applied``;
a malformed digest is 400.
"""

from __future__ import annotations

from typing import Any

import pytest

from trustyard.oci.mediatypes import MediaType

from .conftest import (
    EXAMPLE_ARTIFACT,
    EXAMPLE_SIGNATURE,
    ManifestDoc,
    RegistryClient,
    assert_error,
    make_artifact,
    make_image,
    make_index,
    sha256,
)

pytestmark = pytest.mark.anyio


async def referrers(client: RegistryClient, name: str, digest: str, artifact_type: str | None = None) -> Any:
    params = {"artifactType": artifact_type} if artifact_type is not None else {}
    response = await client.http.get(f"/v2/{name}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MediaType.OCI_INDEX
    body = response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == MediaType.OCI_INDEX
    return response


def descriptor(manifest: ManifestDoc, artifact_type: str | None, annotations: dict[str, str] | None) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": manifest.media_type, "digest": manifest.digest, "size": manifest.size}
    if artifact_type is not None:
        d["artifactType"] = artifact_type
    if annotations:
        d["annotations"] = annotations
    return d


async def test_no_referrers_is_an_empty_index(client: RegistryClient) -> None:
    image = make_image("lonely")
    await client.push("repo", image, "latest")
    response = await referrers(client, "repo", image.digest)
    assert response.json() == {"schemaVersion": 2, "mediaType": MediaType.OCI_INDEX, "manifests": []}
    assert "oci-filters-applied" not in response.headers


async def test_unknown_repository_is_an_empty_index_not_404(client: RegistryClient) -> None:
    response = await referrers(client, "nobody", sha256(b"x"))
    assert response.json()["manifests"] == []


async def test_referrers_describe_each_kind_of_referrer(client: RegistryClient) -> None:
    image = make_image("subject")
    await client.push("repo", image, "latest")
    created = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    sbom = make_artifact(EXAMPLE_ARTIFACT, seed="sbom", subject=image, annotations=created)
    signature = make_artifact(EXAMPLE_SIGNATURE, seed="sig", subject=image)
    plain = make_image("plain-referrer", subject=image)  # no artifactType: its config media type stands in
    typed_index = make_index([make_artifact(EXAMPLE_ARTIFACT, seed="in-index")], subject=image, artifact_type="x/y")
    untyped_index = make_index([make_image("untyped-child")], subject=image, annotations={"k": "v"})
    for referrer in (sbom, signature, plain, typed_index, untyped_index):
        await client.push("repo", referrer)
    response = await referrers(client, "repo", image.digest)
    manifests = response.json()["manifests"]
    expected = [
        descriptor(sbom, EXAMPLE_ARTIFACT, created),
        descriptor(signature, EXAMPLE_SIGNATURE, None),
        descriptor(plain, MediaType.OCI_CONFIG, None),
        descriptor(typed_index, "x/y", None),
        descriptor(untyped_index, None, {"k": "v"}),
    ]
    assert sorted(manifests, key=lambda d: d["digest"]) == sorted(expected, key=lambda d: d["digest"])


async def test_artifact_type_filter_is_applied_and_reported(client: RegistryClient) -> None:
    image = make_image("filtered")
    await client.push("repo", image)
    sbom = make_artifact(EXAMPLE_ARTIFACT, seed="f-sbom", subject=image)
    signature = make_artifact(EXAMPLE_SIGNATURE, seed="f-sig", subject=image)
    await client.push("repo", sbom)
    await client.push("repo", signature)
    response = await referrers(client, "repo", image.digest, EXAMPLE_SIGNATURE)
    assert response.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in response.json()["manifests"]] == [signature.digest]
    none = await referrers(client, "repo", image.digest, "application/vnd.example.none")
    assert none.headers["oci-filters-applied"] == "artifactType"
    assert none.json()["manifests"] == []


async def test_empty_artifact_type_parameter_is_no_filter(client: RegistryClient) -> None:
    image = make_image("empty-filter")
    await client.push("repo", image)
    await client.push("repo", make_artifact(EXAMPLE_ARTIFACT, seed="e", subject=image))
    response = await referrers(client, "repo", image.digest, "")
    assert "oci-filters-applied" not in response.headers
    assert len(response.json()["manifests"]) == 1


async def test_referrers_of_a_subject_not_pushed_yet(client: RegistryClient) -> None:
    absent = make_image("absent-subject")
    sbom = make_artifact(EXAMPLE_ARTIFACT, subject=absent)
    await client.push("repo", sbom)
    response = await referrers(client, "repo", absent.digest)
    assert [d["digest"] for d in response.json()["manifests"]] == [sbom.digest]


async def test_referrers_are_per_repository(client: RegistryClient) -> None:
    image = make_image("shared-subject")
    await client.push("one", image)
    await client.push("two", image)
    await client.push("one", make_artifact(EXAMPLE_ARTIFACT, subject=image))
    response = await referrers(client, "two", image.digest)
    assert response.json()["manifests"] == []


async def test_deleted_referrer_is_no_longer_listed(client: RegistryClient) -> None:
    image = make_image("delete-referrer")
    await client.push("repo", image)
    sbom = make_artifact(EXAMPLE_ARTIFACT, subject=image)
    await client.push("repo", sbom)
    assert (await client.http.delete(f"/v2/repo/manifests/{sbom.digest}")).status_code == 202
    response = await referrers(client, "repo", image.digest)
    assert response.json()["manifests"] == []


async def test_referrer_is_listed_once_however_often_it_is_pushed(client: RegistryClient) -> None:
    image = make_image("dup")
    await client.push("repo", image)
    sbom = make_artifact(EXAMPLE_ARTIFACT, subject=image)
    await client.push("repo", sbom)
    await client.push("repo", sbom, "tagged")
    response = await referrers(client, "repo", image.digest)
    assert [d["digest"] for d in response.json()["manifests"]] == [sbom.digest]


@pytest.mark.parametrize("digest", ["latest", "sha256:short", "md5:" + "0" * 32, "sha256:" + "G" * 64])
@pytest.mark.backend_independent
async def test_malformed_digest_is_400_digest_invalid(client: RegistryClient, digest: str) -> None:
    await client.push("repo", make_image("x"), "latest")
    response = await client.http.get(f"/v2/repo/referrers/{digest}")
    assert_error(response, 400, "DIGEST_INVALID")
