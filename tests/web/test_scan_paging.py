"""Findings and SBOM components come in pages, from the API and on the image page.

The shared Alpine application fixture (an OCI layout: musl, openssl, npm packages with known advisories) is pushed
over ``/v2`` into the in-process app and scanned by the real background scanner against OSV's npm advisories;
then ``GET .../findings?limit=&offset=`` and ``GET .../sbom/components?q=&limit=&offset=`` must slice the same
worst-first and by-ecosystem lists the unpaged answers give, with totals that describe the whole list, and the
image page must show one page of each with links to the next.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.conftest import RegistryClient
from registry.test_scan_pipeline import IMAGE_DIGEST, layout_image
from scan.vulndb.shared import OSV
from trustyard.registry.scan_summary import SEVERITIES
from trustyard.scan.background import BackgroundScanner
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.store import VulnerabilityStore, configured_path
from trustyard.web import images

from .conftest import PASSWORD, Site, open_site

pytestmark = pytest.mark.anyio

REPO = "apps/scanned"
IMAGE = f"/api/v1/repositories/{REPO}/manifests/{IMAGE_DIGEST}"
PAGE = f"/repositories/{REPO}/-/manifests/{IMAGE_DIGEST}"


@pytest.fixture
async def site(password_hash: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    """A site holding the fixture image, scanned against OSV npm by a real scanner worker."""
    for key in list(os.environ):
        if key.startswith("TRUSTYARD_"):
            monkeypatch.delenv(key)
    async with open_site(tmp_path, password_hash) as opened:
        settings = opened.app.state.settings
        with VulnerabilityStore(configured_path(settings)) as store:
            import_path(store, OSV / "npm" / "all.zip")
        scanner = BackgroundScanner.from_settings(
            settings.model_copy(update={"scan_workers": 1}), opened.app.state.registry, opened.access.audit
        )
        await asyncio.to_thread(scanner.start)
        try:
            http = await opened.client()
            http.auth = ("root", PASSWORD)
            await RegistryClient(http, opened.app, settings).push(REPO, layout_image(), "1")
            assert await asyncio.to_thread(scanner.workers.wait_idle, 300), "the scanner did not finish"
        finally:
            await asyncio.to_thread(scanner.stop)
        yield opened


async def _api(site: Site) -> httpx.AsyncClient:
    client = await site.client()
    client.auth = ("root", PASSWORD)
    return client


def _rank(finding: dict[str, Any]) -> int:
    return SEVERITIES.index(finding["severity"]) if finding["severity"] in SEVERITIES else len(SEVERITIES)


async def test_findings_pages_slice_the_worst_first_list(site: Site) -> None:
    api = await _api(site)
    whole = (await api.get(f"{IMAGE}/findings")).json()
    every = whole["findings"]
    assert whole["total"] == len(every) >= 2, "the fixture has known-vulnerable npm packages"
    assert [_rank(f) for f in every] == sorted(_rank(f) for f in every)
    unsuppressed = [f for f in every if not f.get("suppressed")]
    assert sum(whole["counts"].values()) == len(unsuppressed)
    for offset in range(len(every)):
        page = (await api.get(f"{IMAGE}/findings", params={"limit": "1", "offset": str(offset)})).json()
        assert page["findings"] == every[offset : offset + 1]
        assert (page["total"], page["offset"], page["counts"]) == (len(every), offset, whole["counts"])
    beyond = (await api.get(f"{IMAGE}/findings", params={"offset": str(len(every))})).json()
    assert beyond["findings"] == [] and beyond["total"] == len(every)
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}, {"limit": "x"}, {"page": "2"}):
        refused = await api.get(f"{IMAGE}/findings", params=bad)
        assert refused.status_code == 400, bad


async def test_component_pages_and_search(site: Site) -> None:
    api = await _api(site)
    whole = (await api.get(f"{IMAGE}/sbom/components", params={"limit": "1000"})).json()
    rows = whole["components"]
    assert whole["total"] == whole["matched"] == len(rows) > 10
    assert sum(whole["ecosystems"].values()) == len(rows) and "npm" in whole["ecosystems"]
    assert rows == sorted(rows, key=lambda r: (r["ecosystem"], r["name"].lower(), r["version"]))
    paged: list[dict[str, Any]] = []
    for offset in range(0, len(rows), 7):
        page = (await api.get(f"{IMAGE}/sbom/components", params={"limit": "7", "offset": str(offset)})).json()
        assert page["total"] == len(rows) and page["offset"] == offset
        paged += page["components"]
    assert paged == rows
    npm = (await api.get(f"{IMAGE}/sbom/components", params={"q": "NPM", "limit": "2"})).json()
    assert npm["matched"] == whole["ecosystems"]["npm"] and npm["total"] == len(rows)
    assert [r["ecosystem"] for r in npm["components"]] == ["npm", "npm"]
    assert (await api.get(f"{IMAGE}/sbom/components", params={"limit": "0"})).status_code == 400
    # the bill of materials is still served whole, as a document, for downloads
    assert len((await api.get(f"{IMAGE}/sbom")).json()["components"]) == len(rows)


async def test_the_image_page_shows_one_page_of_each_with_links(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "FINDINGS_PER_PAGE", 1)
    monkeypatch.setattr(images, "COMPONENTS_PER_PAGE", 10)
    api = await _api(site)
    every = (await api.get(f"{IMAGE}/findings")).json()["findings"]
    rows = (await api.get(f"{IMAGE}/sbom/components", params={"limit": "1000"})).json()["components"]
    browser = await site.client()
    await site.sign_in(browser, "root")
    first = await browser.get(PAGE)
    assert first.status_code == 200
    assert f"findings 1–1 of {len(every)}" in first.text and f"page 1 of {len(every)}" in first.text
    assert f">{every[0]['id']}<" in first.text and f">{every[1]['id']}<" not in first.text
    assert f"components 1–10 of {len(rows)}" in first.text
    following = re.search(r'<nav class="pager" aria-label="Component pages">.*?href="([^"]+)" rel="next"', first.text)
    assert following is not None
    second = await browser.get(PAGE + following.group(1).replace("&amp;", "&").split("#")[0])
    assert f"components 11–{min(20, len(rows))} of {len(rows)}" in second.text
    assert f">{rows[10]['name']}<" in second.text
    searched = await browser.get(PAGE, params={"q": "npm"})
    assert f"{sum(r['ecosystem'] == 'npm' for r in rows)} match “npm”" in searched.text
