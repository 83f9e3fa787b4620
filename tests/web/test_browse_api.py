"""The management API endpoints the web interface needed and added (issue 9: "close the gaps in the APIs"):
repositories with sizes, tags with platforms and pushers, one image's layers and referrers, the exposure
summary and the vulnerability data status; and the pages that show them.

Each test runs on SQLite and on PostgreSQL. Content is pushed over the registry's own ``/v2`` API by the
administrator (Basic credentials), as a client would: an image index of two platforms tagged ``multi``, a single
image tagged ``v1``, and an artifact that refers to the image.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.conftest import ManifestDoc, RegistryClient, make_artifact, make_image, make_index
from trustyard.auth.api import PREFIX
from trustyard.auth.model import Role

from .conftest import PASSWORD, Site, open_site

pytestmark = pytest.mark.anyio

REPO = "apps/web"


@pytest.fixture
async def site(
    database_url: str, password_hash: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Site]:
    """The sites of this module run on SQLite and on PostgreSQL: the new queries are plain SQL on both."""
    for key in list(os.environ):
        if key.startswith("TRUSTYARD_"):
            monkeypatch.delenv(key)
    async with open_site(tmp_path, password_hash, database_url=database_url) as opened:
        yield opened


def _size(image: ManifestDoc) -> int:
    return image.size + sum(b.size for b in image.blobs)


async def _pushed(site: Site) -> tuple[ManifestDoc, ManifestDoc, ManifestDoc]:
    """Push the index, the image and a referrer of the image as root; return them."""
    http = await site.client()
    http.auth = ("root", PASSWORD)
    client = RegistryClient(http, site.app, site.app.state.settings)
    index = make_index([make_image("amd"), make_image("arm", layers=2)])
    image = make_image("single", layers=3)
    await client.push(REPO, index, "multi")
    await client.push(REPO, image, "v1")
    referrer = make_artifact("application/vnd.example.signature", subject=image)
    await client.push(REPO, referrer)
    return index, image, referrer


async def _get(site: Site, who: str, path: str, **params: str) -> httpx.Response:
    client = await site.client()
    return await client.get(PREFIX + path, params=params, auth=(who, PASSWORD))


async def test_repositories_with_counts_sizes_and_pushes(site: Site) -> None:
    index, image, referrer = await _pushed(site)
    response = await _get(site, "root", "/repositories")
    assert response.status_code == 200, response.text
    (repo,) = response.json()["repositories"]
    assert repo["name"] == REPO and repo["project"] == "apps" and repo["tags"] == 2
    assert repo["images"] == 4  # the index, its two images, the single image (the referrer is not an image)
    blobs = {b.digest: b.size for m in (*index.children, image, referrer) for b in m.blobs}
    manifests = [*index.children, index, image, referrer]
    assert repo["size"] == sum(blobs.values()) + sum(m.size for m in manifests)
    assert repo["pushed_at"] is not None
    narrowed = await _get(site, "root", "/repositories", project="other")
    assert narrowed.json() == {"repositories": []}


async def test_a_guest_lists_no_private_repository_and_a_member_does(site: Site) -> None:
    await _pushed(site)
    assert (await _get(site, "guest", "/repositories")).json() == {"repositories": []}
    assert (await _get(site, "guest", f"/repositories/{REPO}/tags")).status_code == 403
    site.access.store.set_member("apps", Role.GUEST, user="guest")
    names = [r["name"] for r in (await _get(site, "guest", "/repositories")).json()["repositories"]]
    assert names == [REPO]


async def test_tags_with_platforms_sizes_and_pushers(site: Site) -> None:
    index, image, _ = await _pushed(site)
    response = await _get(site, "root", f"/repositories/{REPO}/tags")
    assert response.status_code == 200, response.text
    tags: dict[str, Any] = {t["name"]: t for t in response.json()["tags"]}
    assert set(tags) == {"multi", "v1"}
    multi, single = tags["multi"], tags["v1"]
    assert multi["digest"] == index.digest and single["digest"] == image.digest
    assert [(p["digest"], p["size"]) for p in multi["platforms"]] == [(c.digest, _size(c)) for c in index.children]
    expected = [(e["platform"]["os"], e["platform"]["architecture"]) for e in index.document["manifests"]]
    assert [(p["os"], p["architecture"]) for p in multi["platforms"]] == expected
    assert multi["size"] == index.size + sum(_size(c) for c in index.children)
    assert single["platforms"][0]["os"] == "linux" and single["platforms"][0]["architecture"] == "amd64"
    assert single["size"] == _size(image)
    assert multi["pushed_by"] == single["pushed_by"] == "root"
    assert single["platforms"][0]["scan"]["status"] == "none"  # no scanner runs in these tests


async def test_one_image_with_layers_and_referrers(site: Site) -> None:
    _, image, referrer = await _pushed(site)
    response = await _get(site, "root", f"/repositories/{REPO}/manifests/{image.digest}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tags"] == ["v1"] and body["os"] == "linux" and body["architecture"] == "amd64"
    assert [layer["digest"] for layer in body["layers"]] == [b.digest for b in image.blobs[1:]]
    assert [(r["digest"], r["artifact_type"]) for r in body["referrers"]] == [
        (referrer.digest, "application/vnd.example.signature")
    ]
    missing = await _get(site, "root", f"/repositories/{REPO}/manifests/sha256:{'0' * 64}")
    assert missing.status_code == 404


async def test_unknown_repository_is_404_for_those_allowed_and_403_for_others(site: Site) -> None:
    await _pushed(site)
    assert (await _get(site, "root", "/repositories/apps/none/tags")).status_code == 404
    assert (await _get(site, "guest", "/repositories/apps/none/tags")).status_code == 403


async def test_exposure_and_vulnerability_data(site: Site) -> None:
    await _pushed(site)
    exposure = (await _get(site, "root", "/exposure")).json()
    assert exposure["images"] == 3  # the index's two images and the single one
    assert exposure["by_worst"]["unscanned"] == 3 and exposure["packages"] == []
    assert (await _get(site, "guest", "/exposure")).json()["images"] == 0
    data = (await _get(site, "alice", "/vulnerability-data")).json()
    assert data["sources"] == [] and data["path"].endswith("vulndb.sqlite")


async def test_the_openapi_document_lists_the_new_endpoints(site: Site) -> None:
    client = await site.client()
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/repositories",
        "/api/v1/repositories/{name}/tags",
        "/api/v1/repositories/{name}/manifests/{digest}",
        "/api/v1/exposure",
        "/api/v1/vulnerability-data",
    ):
        assert "get" in paths[path], path


async def test_the_pages_show_tags_platforms_and_layers(site: Site) -> None:
    index, image, _ = await _pushed(site)
    browser = await site.client()
    await site.sign_in(browser, "root")
    page = await browser.get(f"/repositories/{REPO}")
    assert page.status_code == 200
    assert f"podman pull registry.test/{REPO}:" in page.text
    for child in index.children:
        assert child.digest[:19] in page.text
    assert "index of 2" in page.text and "linux/amd64" in page.text
    detail = await browser.get(f"/repositories/{REPO}/-/manifests/{image.digest}")
    assert detail.status_code == 200
    for layer in image.blobs[1:]:
        assert layer.digest[:19] in detail.text
    assert "has not been queued for scanning" in detail.text
    listing = await browser.get(f"/repositories/{REPO}/-/manifests/{index.digest}")
    assert listing.status_code == 200 and "Platforms" in listing.text
    for child in index.children:
        assert f'href="/repositories/{REPO}/-/manifests/{child.digest}"' in listing.text
    projects = await browser.get("/projects")
    assert 'href="/projects/apps"' in projects.text
    dashboard = await browser.get("/dashboard")
    assert dashboard.status_code == 200 and "<svg" in dashboard.text and "unscanned" in dashboard.text


async def test_tags_come_in_pages_newest_first(site: Site) -> None:
    _, image, _ = await _pushed(site)
    http = await site.client()
    http.auth = ("root", PASSWORD)
    client = RegistryClient(http, site.app, site.app.state.settings)
    for i in range(26):  # the same image under 26 more tags: the page shows 25 per page
        assert (await client.put_manifest(REPO, f"t{i:02d}", image)).status_code == 201
    first = (await _get(site, "root", f"/repositories/{REPO}/tags", limit="2")).json()
    assert first["total"] == 28 and first["offset"] == 0
    assert [t["name"] for t in first["tags"]] == ["t25", "t24"]
    second = (await _get(site, "root", f"/repositories/{REPO}/tags", limit="2", offset="2")).json()
    assert [t["name"] for t in second["tags"]] == ["t23", "t22"]
    assert (await _get(site, "root", f"/repositories/{REPO}/tags", limit="0")).status_code == 400
    browser = await site.client()
    await site.sign_in(browser, "root")
    page = await browser.get(f"/repositories/{REPO}")
    assert "Tags 1–25 of 28" in page.text and 'href="?page=2"' in page.text
    older = await browser.get(f"/repositories/{REPO}", params={"page": "2"})
    assert "Tags 26–28 of 28" in older.text and ">multi<" in older.text
