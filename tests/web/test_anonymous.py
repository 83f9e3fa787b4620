"""Anonymous browsing, in-process: a visitor without a session sees public projects, their repositories and
images read-only, and nothing of a private project: its pages answer exactly as a project that does not exist
does (the sign-in redirect, as the API answers every anonymous caller with 401), so no name leaks.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from registry.conftest import RegistryClient, make_image

from .conftest import PASSWORD, Site

pytestmark = pytest.mark.anyio


async def _push(site: Site, repository: str) -> str:
    http = await site.client()
    http.auth = ("root", PASSWORD)
    image = make_image(repository)
    await RegistryClient(http, site.app, site.app.state.settings).push(repository, image, "v1")
    return image.digest


def _sign_in_redirect(response: httpx.Response, path: str) -> None:
    assert response.status_code == 303, (path, response.status_code)
    assert response.headers["location"] == "/login?next=" + quote(path, safe="")


async def test_public_projects_are_browsable_read_only(site: Site) -> None:
    site.access.store.create_project("open", public=True)
    site.access.store.create_project("secret")
    open_digest = await _push(site, "open/app")
    await _push(site, "secret/app")
    visitor = await site.client()
    listing = await visitor.get("/projects")
    assert listing.status_code == 200
    assert 'href="/projects/open"' in listing.text and "secret" not in listing.text
    assert 'href="/login?next=%2Fprojects"' in listing.text and "Sign out" not in listing.text
    for path in (
        "/projects",
        "/projects/open",
        "/repositories/open/app",
        f"/repositories/open/app/-/manifests/{open_digest}",
    ):
        page = await visitor.get(path)
        assert page.status_code == 200, path
        assert 'method="post"' not in page.text, path  # no forms: nothing to change, no CSRF token to take
        assert "secret" not in page.text, path
    project = (await visitor.get("/projects/open")).text
    assert "/projects/open/members" not in project and "/projects/open/settings" not in project
    assert "open/app" in (await visitor.get("/repositories/open/app")).text


async def test_a_private_project_answers_as_a_missing_one(site: Site) -> None:
    site.access.store.create_project("secret")
    digest = await _push(site, "secret/app")
    visitor = await site.client()
    pairs = [
        ("/projects/secret", "/projects/absent"),
        ("/repositories/secret/app", "/repositories/absent/app"),
        (f"/repositories/secret/app/-/manifests/{digest}", f"/repositories/absent/app/-/manifests/{digest}"),
        (f"/repositories/secret/app/-/manifests/{digest}/sbom", f"/repositories/absent/app/-/manifests/{digest}/sbom"),
    ]
    for private, missing in pairs:
        _sign_in_redirect(await visitor.get(private), private)
        _sign_in_redirect(await visitor.get(missing), missing)
    # the API gives anonymous callers the same 401 for both
    for path in ("/api/v1/projects/secret", "/api/v1/projects/absent"):
        assert (await visitor.get(path)).status_code == 401


async def test_anonymous_visitors_change_nothing_and_see_no_operations(site: Site) -> None:
    site.access.store.create_project("open", public=True)
    visitor = await site.client()
    for path in ("/projects/open/members", "/projects/open/robots", "/projects/open/settings", "/dashboard", "/audit",
                 "/vulnerability-data", "/gc", "/users", "/account"):  # fmt: skip
        _sign_in_redirect(await visitor.get(path), path)
    created = await visitor.post("/projects", data={"name": "sneaky", "visibility": "public"})
    assert created.status_code == 303 and created.headers["location"].startswith("/login")
    assert [p.name for p in site.access.store.list_projects()] == ["open"]


async def test_signing_in_from_a_public_page_comes_back_to_it(site: Site) -> None:
    site.access.store.create_project("open", public=True)
    await _push(site, "open/app")
    visitor = await site.client()
    page = await visitor.get("/repositories/open/app")
    assert 'href="/login?next=%2Frepositories%2Fopen%2Fapp"' in page.text
    signed = await site.sign_in(visitor, "alice")
    assert signed.status_code == 303
    assert "Sign out" in (await visitor.get("/repositories/open/app")).text
