"""The plugin's HTTP edge: three routes on a unix socket, the discovery spec file, and systemd socket activation.

dockerd finds a plugin by name through a spec file (``/etc/docker/plugins/NAME.spec`` holding
``unix:///path/to.sock``) or a socket ``/run/docker/plugins/NAME.sock``, POSTs ``/Plugin.Activate`` once, then
``/AuthZPlugin.AuthZReq`` and ``/AuthZPlugin.AuthZRes`` per API call. The routes only read the body (capped) and
hand it to the ``Authorizer``; every answer is HTTP 200 with ``Allow`` set, because dockerd turns a non-200
into an error the user sees as "plugin failed", which hides the reason. The socket is created owner-only: a
plugin's answers are not secret, but nobody else should be able to make it busy.

Not here: decisions (``service.py``), command-line options (``cli/authz.py``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Final

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from trustyard.authz.errors import AuthzError
from trustyard.authz.service import Authorizer
from trustyard.authz.wire import MAX_ENVELOPE, PLUGIN_CONTENT_TYPE

SD_LISTEN_FDS_START: Final = 3


def create_app(authorizer: Authorizer, *, record: Path | None = None) -> Starlette:
    """The plugin's ASGI app; ``authorizer`` decides, the app only moves bytes.

    ``record``: also write every ``AuthZReq`` message, as received, to a numbered file in this folder, for
    ``trustyard authz test`` and the benchmark (bodies may hold secrets such as environment variables).
    """
    recorded = itertools.count(1)

    async def activate(_request: Request) -> JSONResponse:
        return JSONResponse({"Implements": ["authz"]}, media_type=PLUGIN_CONTENT_TYPE)

    async def authz_request(request: Request) -> JSONResponse:
        # a thread: the image rules may wait on trustyard (up to its timeout); other requests must not queue behind
        message = await _read(request)
        if record is not None:
            await run_in_threadpool(_record, record, next(recorded), message)
        decision = await run_in_threadpool(authorizer.request, message)
        return JSONResponse(decision.to_wire(), media_type=PLUGIN_CONTENT_TYPE)

    async def authz_response(request: Request) -> JSONResponse:
        decision = authorizer.response(await _read(request))
        return JSONResponse(decision.to_wire(), media_type=PLUGIN_CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/Plugin.Activate", activate, methods=["POST"]),
            Route("/AuthZPlugin.AuthZReq", authz_request, methods=["POST"]),
            Route("/AuthZPlugin.AuthZRes", authz_response, methods=["POST"]),
        ]
    )


async def _read(request: Request) -> bytes:
    """The message, but never more than one byte past the limit (``parse_message`` refuses that)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_ENVELOPE:
            break
    return b"".join(chunks)[: MAX_ENVELOPE + 1]


def _record(folder: Path, number: int, message: bytes) -> None:
    try:
        envelope = json.loads(message)
        name = f"{envelope.get('RequestMethod', '')}{envelope.get('RequestUri', '')}".partition("?")[0]
    except (ValueError, AttributeError):
        name = "unreadable"
    slug = re.sub(r"[^A-Za-z0-9]+", "-", re.sub(r"[0-9a-f]{20,}", "ID", name)).strip("-")[:80] or "request"
    (folder / f"{number:04d}-{slug}.json").write_bytes(message)


def inherited_socket(environ: dict[str, str] | None = None) -> socket.socket | None:
    """The listening socket systemd passed (``LISTEN_FDS``/``LISTEN_PID``), or ``None`` when started otherwise."""
    env = os.environ if environ is None else environ
    if env.get("LISTEN_PID") != str(os.getpid()) or int(env.get("LISTEN_FDS", "0") or "0") < 1:
        return None
    return socket.socket(fileno=SD_LISTEN_FDS_START)


def listen_unix(path: Path) -> socket.socket:
    """Bind a new owner-only unix socket at ``path``; a stale socket is replaced, a live one or a file is an error."""
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise AuthzError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()
        else:
            raise AuthzError(f"another process is listening on {path}")
        finally:
            probe.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)
    try:
        sock.bind(str(path))
    except OSError as e:
        sock.close()
        raise AuthzError(f"cannot listen on {path}: {e.strerror or e}") from e
    finally:
        os.umask(old)
    sock.listen(128)
    return sock


@contextlib.contextmanager
def spec_file(plugin_dir: Path, name: str, socket_path: Path) -> Iterator[Path]:
    """Write ``<plugin_dir>/<name>.spec`` pointing at ``socket_path`` for as long as the block runs."""
    if not name or "/" in name or name.startswith("."):
        raise AuthzError(f"invalid plugin name {name!r}")
    spec = plugin_dir / f"{name}.spec"
    content = f"unix://{socket_path.absolute()}\n"
    try:
        plugin_dir.mkdir(parents=True, exist_ok=True)
        tmp = spec.with_name(f".{name}.spec.{os.getpid()}")
        tmp.write_text(content)
        tmp.chmod(0o644)
        tmp.replace(spec)
    except OSError as e:
        raise AuthzError(f"cannot write plugin spec {spec}: {e.strerror or e}") from e
    try:
        yield spec
    finally:
        with contextlib.suppress(OSError):
            if spec.read_text() == content:  # another instance may have taken the name since
                spec.unlink()


def serve(authorizer: Authorizer, sock: socket.socket, *, record: Path | None = None) -> None:
    """Answer the engine on ``sock`` until SIGTERM or SIGINT, then return normally.

    uvicorn re-raises the stop signal once it has shut down; with the default handler that would kill the
    process before the caller's cleanup (spec file, socket) runs, so the re-raised signal becomes ``SystemExit(0)``.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    config = uvicorn.Config(
        create_app(authorizer, record=record),
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run(sockets=[sock])


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
