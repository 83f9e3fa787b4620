"""Fixtures of the management API and audit tests: the real app in-process, over SQLite and PostgreSQL.

``api`` builds the app with ``create_app`` (the management routes beside the registry's, access control on)
over ``database_url`` (``tests/fixtures/databases.py``: each test runs on SQLite and on PostgreSQL) and talks to
it through ``httpx.ASGITransport``. Callers are named by subject and authenticate with a Bearer token the
app's own token service signs, which costs microseconds; argon2 password checks (tens of milliseconds each, on
purpose) are spent only by the tests that are about passwords and Basic credentials.

Not here: the registry's own fixtures (``tests/registry/conftest.py``), real clients (``tests/interop``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from trustyard.auth.api import PREFIX
from trustyard.auth.audit import AuditEvent, AuditQuery
from trustyard.auth.service import AccessControl
from trustyard.config import load_settings
from trustyard.registry.app import create_app

BASE = "http://registry.test"
ADMIN = "root"
"""The administrator every ``api`` starts with (no password: it calls with tokens)."""


@pytest.fixture
def anyio_backend() -> str:
    """The app uses asyncio primitives: run async tests on asyncio only."""
    return "asyncio"


@dataclass
class Api:
    """An httpx client of one in-process app, calling ``/api/v1`` as a named subject."""

    http: httpx.AsyncClient
    access: AccessControl
    app: Starlette

    def bearer(self, subject: str) -> dict[str, str]:
        """An ``Authorization`` header with a fresh token for ``subject`` (a user or ``robot$name``)."""
        return {"Authorization": f"Bearer {self.access.tokens.issue(subject, [])}"}

    async def call(
        self, method: str, path: str, who: str | None = ADMIN, *, auth: tuple[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        """``method`` on ``/api/v1<path>``: as ``who`` (Bearer) unless ``auth`` (Basic) or an
        ``Authorization`` header is given; ``who=None`` without either is anonymous."""
        headers = dict(kw.pop("headers", {}))
        if auth is None and who is not None and "Authorization" not in headers:
            headers.update(self.bearer(who))
        return await self.http.request(method, PREFIX + path, headers=headers, auth=auth, **kw)

    async def get(self, path: str, who: str | None = ADMIN, **kw: Any) -> httpx.Response:
        """GET as ``who``."""
        return await self.call("GET", path, who, **kw)

    async def post(self, path: str, who: str | None = ADMIN, **kw: Any) -> httpx.Response:
        """POST as ``who``."""
        return await self.call("POST", path, who, **kw)

    async def put(self, path: str, who: str | None = ADMIN, **kw: Any) -> httpx.Response:
        """PUT as ``who``."""
        return await self.call("PUT", path, who, **kw)

    async def patch(self, path: str, who: str | None = ADMIN, **kw: Any) -> httpx.Response:
        """PATCH as ``who``."""
        return await self.call("PATCH", path, who, **kw)

    async def delete(self, path: str, who: str | None = ADMIN, **kw: Any) -> httpx.Response:
        """DELETE as ``who``."""
        return await self.call("DELETE", path, who, **kw)

    def events(self, **filters: Any) -> list[AuditEvent]:
        """The audit log's events matching ``filters`` (pending ones written first)."""
        self.access.audit.flush()
        return self.access.audit.query(AuditQuery(**filters), limit=10_000)


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def api_factory(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ApiFactory]:
    """Build apps with settings ``**overrides`` (each with the administrator ``root``), closed after the test."""
    for key in list(os.environ):
        if key.startswith("TRUSTYARD_"):
            monkeypatch.delenv(key)
    async with AsyncExitStack() as stack:

        async def factory(**overrides: Any) -> Api:
            values: dict[str, Any] = {"data_dir": tmp_path / "data", "database_url": database_url, "fsync": False}
            app = create_app(load_settings(**(values | overrides)))
            stack.callback(app.state.registry.db.dispose)
            access: AccessControl = app.state.access
            if access.store.get_user(ADMIN) is None:
                access.store.create_user(ADMIN, is_admin=True)
            transport = httpx.ASGITransport(app=app)
            http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url=BASE))
            return Api(http, access, app)

        yield factory


@pytest.fixture
async def api(api_factory: ApiFactory) -> Api:
    """A client of a fresh app whose only user is the administrator ``root``."""
    return await api_factory()
