"""A deliberately broken authorization plugin, to show what dockerd does when its plugin misbehaves.

Run as a process in place of ``trustyard authz serve`` (same ``--socket``, ``--plugin-dir``, ``--audit-log``
options; ``fixtures.dockerd.AuthzPlugin(program=...)``). It activates and allows every request, except a
container create whose name says how to fail: ``close-*`` closes the connection without answering,
``garbage-*`` answers 200 with a body that is not JSON, ``error-*`` answers HTTP 500. An empty message —
dockerd's retry of a failed call, which comes without the message — is closed too: a plugin that allowed it
would let the retried request through. Every ``AuthZReq`` it receives is a line in the audit log, so a test
can tell that the request reached it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socketserver
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import FrameType
from typing import Any

PLUGIN_JSON = "application/vnd.docker.plugins.v1.2+json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        message = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/Plugin.Activate":
            self._answer(200, json.dumps({"Implements": ["authz"]}).encode())
            return
        envelope: dict[str, Any] = json.loads(message) if message else {}
        uri = str(envelope.get("RequestUri", "name=close-"))  # dockerd's retry of a failed call comes empty
        if self.path == "/AuthZPlugin.AuthZReq":
            with self.server.audit.open("a") as log:
                log.write(json.dumps({"method": envelope.get("RequestMethod"), "uri": uri}) + "\n")
            if "name=close-" in uri:
                self.close_connection = True  # no status line, no headers: dockerd reads EOF
                return
            if "name=garbage-" in uri:
                self._answer(200, b"<html>this is not a plugin answer")
                return
            if "name=error-" in uri:
                self._answer(500, b"plugin exploded", content_type="text/plain")
                return
        self._answer(200, json.dumps({"Allow": True}).encode())

    def _answer(self, status: int, body: bytes, content_type: str = PLUGIN_JSON) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix"  # a unix socket's peer address is empty

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, audit: Path) -> None:
        self.audit = audit
        super().__init__(str(path), _Handler)


def _stop(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--plugin-dir", type=Path, required=True)
    parser.add_argument("--audit-log", type=Path, required=True)
    options = parser.parse_args()
    with contextlib.suppress(FileNotFoundError):
        options.socket.unlink()
    server = _Server(options.socket, options.audit_log)
    options.plugin_dir.mkdir(parents=True, exist_ok=True)
    spec = options.plugin_dir / "trustyard.spec"
    spec.write_text(f"unix://{options.socket}\n")
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    finally:
        spec.unlink()
        os.unlink(options.socket)


if __name__ == "__main__":
    main()
