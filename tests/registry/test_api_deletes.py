"""Deleting tags and manifests (end-9); blob deletes are in ``test_api_blobs.py``.

Spec: distribution-spec v1.1 "Deleting tags" (202; the tag then 404s, its manifest stays) and "Deleting
Manifests" (202; the digest and every tag pointing to it then 404; 404 for unknown manifests or repositories).
"""

from __future__ import annotations

import pytest

from .conftest import EXAMPLE_ARTIFACT, RegistryClient, assert_error, make_artifact, make_image, make_index, sha256

pytestmark = pytest.mark.anyio


async def test_delete_tag_removes_only_the_tag(client: RegistryClient) -> None:
    image = make_image("tagged")
    await client.push("repo", image, "a")
    await client.push("repo", image, "b")
    response = await client.http.delete("/v2/repo/manifests/a")
    assert response.status_code == 202
    assert response.headers["content-length"] == "0"
    assert_error(await client.get_manifest("repo", "a"), 404, "MANIFEST_UNKNOWN")
    assert (await client.get_manifest("repo", "b")).content == image.body
    assert (await client.get_manifest("repo", image.digest)).content == image.body


async def test_delete_manifest_removes_it_and_every_tag_pointing_to_it(client: RegistryClient) -> None:
    image, other = make_image("doomed"), make_image("survivor")
    await client.push("repo", image, "a")
    await client.push("repo", image, "b")
    await client.push("repo", other, "c")
    response = await client.http.delete(f"/v2/repo/manifests/{image.digest}")
    assert response.status_code == 202
    for reference in ("a", "b", image.digest):
        for method in ("GET", "HEAD"):
            assert_error(await client.http.request(method, f"/v2/repo/manifests/{reference}"), 404, "MANIFEST_UNKNOWN")
    assert (await client.http.get("/v2/repo/tags/list")).json()["tags"] == ["c"]
    assert (await client.get_manifest("repo", "c")).content == other.body


async def test_delete_manifest_leaves_other_repositories_alone(client: RegistryClient) -> None:
    image = make_image("shared")
    await client.push("one", image, "latest")
    await client.push("two", image, "latest")
    assert (await client.http.delete(f"/v2/one/manifests/{image.digest}")).status_code == 202
    assert (await client.get_manifest("two", "latest")).content == image.body


async def test_deleted_manifest_can_be_pushed_again(client: RegistryClient) -> None:
    image = make_image("phoenix")
    await client.push("repo", image, "latest")
    assert (await client.http.delete(f"/v2/repo/manifests/{image.digest}")).status_code == 202
    await client.push("repo", image, "latest")
    assert (await client.get_manifest("repo", "latest")).content == image.body


async def test_delete_index_then_its_children(client: RegistryClient) -> None:
    index = make_index([make_image("c1"), make_image("c2")])
    await client.push("repo", index, "multi")
    assert (await client.http.delete(f"/v2/repo/manifests/{index.digest}")).status_code == 202
    for child in index.children:
        assert (await client.http.delete(f"/v2/repo/manifests/{child.digest}")).status_code == 202
        assert_error(await client.get_manifest("repo", child.digest), 404, "MANIFEST_UNKNOWN")


async def test_deleting_a_subject_leaves_its_referrers(client: RegistryClient) -> None:
    image = make_image("subject")
    await client.push("repo", image)
    sbom = make_artifact(EXAMPLE_ARTIFACT, subject=image)
    await client.push("repo", sbom)
    assert (await client.http.delete(f"/v2/repo/manifests/{image.digest}")).status_code == 202
    assert (await client.get_manifest("repo", sbom.digest)).status_code == 200
    listing = await client.http.get(f"/v2/repo/referrers/{image.digest}")
    assert [d["digest"] for d in listing.json()["manifests"]] == [sbom.digest]


@pytest.mark.parametrize("reference", ["nope", sha256(b"never pushed")])
async def test_delete_unknown_reference_is_404(client: RegistryClient, reference: str) -> None:
    await client.push("repo", make_image("x"), "latest")
    response = await client.http.delete(f"/v2/repo/manifests/{reference}")
    assert_error(response, 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("reference", ["latest", sha256(b"x")])
async def test_delete_in_unknown_repository_is_404(client: RegistryClient, reference: str) -> None:
    response = await client.http.delete(f"/v2/nobody/manifests/{reference}")
    assert_error(response, 404, "MANIFEST_UNKNOWN")


async def test_delete_twice_is_404_the_second_time(client: RegistryClient) -> None:
    image = make_image("twice")
    await client.push("repo", image, "latest")
    assert (await client.http.delete("/v2/repo/manifests/latest")).status_code == 202
    assert_error(await client.http.delete("/v2/repo/manifests/latest"), 404, "MANIFEST_UNKNOWN")
    assert (await client.http.delete(f"/v2/repo/manifests/{image.digest}")).status_code == 202
    assert_error(await client.http.delete(f"/v2/repo/manifests/{image.digest}"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize(
    ("reference", "code"),
    [("sha256:bad", "DIGEST_INVALID"), ("md5:" + "0" * 32, "DIGEST_INVALID"), ("-bad", "MANIFEST_INVALID")],
)
@pytest.mark.backend_independent
async def test_delete_by_malformed_reference_is_400(client: RegistryClient, reference: str, code: str) -> None:
    await client.push("repo", make_image("x"), "latest")
    assert_error(await client.http.delete(f"/v2/repo/manifests/{reference}"), 400, code)
