"""The webhook notifier against a real HTTP server on 127.0.0.1: signature, retries with backoff, giving up.

Each case is a scripted list of HTTP statuses the receiver answers in turn; the notifier must retry on
5xx/429/408 and connection errors only, stop at the first 2xx or other 4xx, and sign every attempt alike.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from trustyard.scan.webhook import SIGNATURE_HEADER, WebhookNotifier, sign


class _Scripted(BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []
    seen: ClassVar[list[tuple[bytes, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        cls.seen.append((body, self.headers.get(SIGNATURE_HEADER, "")))
        self.send_response(cls.statuses.pop(0) if cls.statuses else 204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Scripted]]]:
    """A receiver answering the statuses its class lists, in order (then 204)."""
    handler = type("Handler", (_Scripted,), {"statuses": [], "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


CASES = [
    pytest.param([], 1, 1, 0, id="delivered-first-time"),
    pytest.param([500, 502, 204], 3, 1, 0, id="retried-on-5xx"),
    pytest.param([429, 200], 2, 1, 0, id="retried-on-429"),
    pytest.param([404], 1, 0, 1, id="4xx-not-retried"),
    pytest.param([503, 503, 503], 3, 0, 1, id="gives-up-after-attempts"),
]


@pytest.mark.parametrize(("statuses", "posts", "delivered", "given_up"), CASES)
def test_delivery(
    server: tuple[str, type[_Scripted]], statuses: list[int], posts: int, delivered: int, given_up: int
) -> None:
    url, handler = server
    handler.statuses.extend(statuses)
    notifier = WebhookNotifier(url, b"key", attempts=3, backoff=0.01)
    notifier.start()
    event_id = notifier.send("scan.changed", {"digest": "sha256:" + "a" * 64, "added": ["CVE-1"]})
    notifier.flush()
    notifier.stop()
    assert len(handler.seen) == posts
    assert (notifier.delivered, notifier.given_up) == (delivered, given_up)
    bodies = {body for body, _ in handler.seen}
    assert len(bodies) == 1  # every attempt sends the same event
    (body,) = bodies
    assert json.loads(body)["id"] == event_id and json.loads(body)["event"] == "scan.changed"
    expected = "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert {signature for _, signature in handler.seen} == {expected} == {sign(b"key", body)}


def test_an_unreachable_receiver_is_tried_then_given_up() -> None:
    notifier = WebhookNotifier("http://127.0.0.1:9/", None, attempts=2, backoff=0.01, timeout=2)
    notifier.start()
    notifier.send("scan.changed", {})
    notifier.flush()
    notifier.stop()
    assert (notifier.delivered, notifier.given_up) == (0, 1)
