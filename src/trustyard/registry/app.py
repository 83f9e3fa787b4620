"""Build the ASGI application from settings: ``create_app(settings)``; no module-level app or globals.

The app owns its collaborators (database, blob store, registry service, optional GC schedule) and
closes them on shutdown. Unexpected exceptions are logged with their traceback and answered with the
spec's ``UNAVAILABLE`` error, never with a traceback to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trustyard.auth.api import routes as management_routes
from trustyard.auth.service import AccessControl
from trustyard.config import Settings
from trustyard.db.engine import Database
from trustyard.errors import TrustyardError
from trustyard.logs import configure
from trustyard.registry.api.errors import error_response
from trustyard.registry.api.routes import routes
from trustyard.registry.gates import GateContext, build_gates
from trustyard.registry.gc import GarbageCollector
from trustyard.registry.service import RegistryService
from trustyard.scan.background import BackgroundScanner
from trustyard.storage.filesystem import FilesystemBlobStore
from trustyard.web.interface import WebInterface
from trustyard.web.routes import web_routes

log = logging.getLogger("trustyard.http")


class AccessLog:
    """Logs every request: method, path, status, bytes sent, duration."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``send`` to observe the status and body size."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        sent = 0

        async def observe(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode("latin-1") or None,
                    "status": status,
                    "bytes": sent,
                    "ms": round((time.perf_counter() - start) * 1000, 2),
                    "client": client[0] if client else None,
                },
            )


async def _unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SQLAlchemyError):
        log.error("database error: %s", exc)
        return error_response("UNAVAILABLE", "metadata database unavailable; retry later", 503)
    if isinstance(exc, TrustyardError):
        log.error("request failed: %s", exc.message)
        return error_response("UNAVAILABLE", exc.message, 503)
    log.exception("unexpected error")
    return error_response("UNAVAILABLE", "internal error; the request changed nothing", 500)


def create_registry(settings: Settings) -> RegistryService:
    """The service wired to the configured database and blob store (used by serve, gc and tests)."""
    db = Database(settings.metadata_url)
    store = FilesystemBlobStore(settings.data_dir, fsync=settings.fsync)
    return RegistryService(db=db, store=store, max_manifest_size=settings.max_manifest_size)


def create_app(
    settings: Settings, *, registry: RegistryService | None = None, access: AccessControl | None = None
) -> Starlette:
    """The registry's ASGI application."""
    service = registry or create_registry(settings)
    control = access or AccessControl.from_settings(settings, service.db)
    scanner = BackgroundScanner.from_settings(settings, service, control.audit) if settings.scan_workers else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task: asyncio.Task[Any] | None = None
        if settings.gc_interval > 0:
            gc = GarbageCollector(
                service,
                grace_period=settings.gc_grace_period,
                delete_untagged=settings.gc_delete_untagged,
                upload_expiry=settings.upload_expiry,
            )
            task = asyncio.create_task(gc.run_every(settings.gc_interval))
        control.audit.start()
        control.warn_if_insecure()
        if scanner is not None:
            await asyncio.to_thread(scanner.start)
        log.info("registry ready", extra={"listen": settings.listen, "data_dir": str(settings.data_dir)})
        try:
            yield
        finally:
            if scanner is not None:
                await asyncio.to_thread(scanner.stop)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            try:
                control.audit.close()
            except SQLAlchemyError as e:
                log.error("audit events could not be written at shutdown: %s", e)
            service.db.dispose()

    web = WebInterface(settings=settings, access=control, registry=service)
    app = Starlette(
        routes=routes + management_routes + web_routes(web),
        lifespan=lifespan,
        exception_handlers={Exception: _unexpected},
    )
    app.state.registry = service
    app.state.access = control
    app.state.settings = settings
    app.state.scanner = scanner
    app.state.pull_gates = build_gates(GateContext(settings, service, control))
    return app


def asgi_app(settings: Settings) -> ASGIApp:
    """The application with the access log around it (what ``serve`` runs)."""
    return AccessLog(create_app(settings))


SETTINGS_ENV = "TRUSTYARD_SERVE_SETTINGS_JSON"
"""How ``serve --workers N`` hands its resolved settings to the worker processes uvicorn spawns."""


def worker_app() -> ASGIApp:
    """Factory uvicorn calls in each worker process (``serve --workers N``)."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_ENV])
    configure(settings.log_level, settings.log_format)
    return asgi_app(settings)
