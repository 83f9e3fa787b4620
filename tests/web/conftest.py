"""Fixtures of the web interface tests: the real app in-process, called through ``httpx.ASGITransport``.

``site`` builds the app with ``create_app`` (the registry, the management API and the web interface on one
router, access control on, no background scanner) over a fresh data dir, with three users: the administrator
``root``, ``alice`` and ``guest`` (no project role until a test gives one). Each ``client`` is one browser (one
cookie jar); ``sign_in`` does what a browser does: fetch the form, take its CSRF token, post it with the
credentials. (Starlette's ``TestClient`` now warns that it wants ``httpx2``, and warnings are errors here; the
ASGI transport is what ``tests/auth`` uses too.)

Not here: the end-to-end tests in a real Chromium against ``trustyard serve`` (``test_browser.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from trustyard.auth.passwords import hash_secret
from trustyard.auth.service import AccessControl
from trustyard.config import load_settings
from trustyard.registry.app import create_app

PASSWORD = "correct-horse-battery"
USERS = ("root", "alice", "guest")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class Site:
    """One app and the way to make browser-like clients of it."""

    app: Starlette
    access: AccessControl
    data_dir: Path
    stack: AsyncExitStack

    async def client(self, base_url: str = "http://registry.test") -> httpx.AsyncClient:
        """A new cookie jar: one browser."""
        transport = httpx.ASGITransport(app=self.app)
        client = httpx.AsyncClient(transport=transport, base_url=base_url, follow_redirects=False)
        return await self.stack.enter_async_context(client)

    async def sign_in(self, client: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
        """Sign ``user`` in through the form, as a browser would."""
        token = csrf_of((await client.get("/login")).text)
        fields = {"csrf": token, "username": user, "password": password, "next": "/projects"}
        return await client.post("/login", data=fields)

    async def form(self, client: httpx.AsyncClient, page: str, action: str, **fields: Any) -> httpx.Response:
        """Post a form found on ``page`` with its CSRF token and ``fields``."""
        token = csrf_of((await client.get(page)).text)
        return await client.post(action, data={"csrf": token, **fields})


@pytest.fixture
def anyio_backend() -> str:
    """The app uses asyncio primitives: run async tests on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="session")
def password_hash() -> str:
    """``PASSWORD`` hashed once: argon2 costs tens of milliseconds by design, three users per test add up."""
    return hash_secret(PASSWORD)


@asynccontextmanager
async def open_site(tmp_path: Path, password_hash: str, **overrides: Any) -> AsyncIterator[Site]:
    """The real app over a fresh data dir (and database, ``database_url`` in ``overrides``), with users root
    (admin), alice and guest; closed when the block ends."""
    settings = load_settings(data_dir=tmp_path / "data", fsync=False, scan_workers=0, login_max_failures=3, **overrides)
    app = create_app(settings)
    access: AccessControl = app.state.access
    for name in USERS:
        access.store.create_user(name, is_admin=name == "root")
        access.store.set_password_hash(name, password_hash)
    async with AsyncExitStack() as stack:
        stack.callback(app.state.registry.db.dispose)
        yield Site(app, access, settings.data_dir, stack)


@pytest.fixture
async def site(
    password_hash: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Site]:
    """``open_site`` on SQLite; settings overridden by an indirect parameter (a dict) when a test gives one."""
    for key in list(os.environ):
        if key.startswith("TRUSTYARD_"):
            monkeypatch.delenv(key)
    async with open_site(tmp_path, password_hash, **getattr(request, "param", {})) as opened:
        yield opened
