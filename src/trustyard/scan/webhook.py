"""Webhook notifications: a JSON POST per event, signed with HMAC-SHA256, retried with exponential backoff.

The receiver checks ``X-Trustyard-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact body with the shared
``webhook_secret`` (GitHub's scheme, so existing receivers verify it unchanged). Deliveries run in one daemon
thread fed by a queue, so a slow or dead receiver never holds up scanning: a connection error, a timeout, a
429 or a 5xx is tried again after 0.5 s, 1 s, 2 s, ... up to ``webhook_attempts`` times; any other answer
(2xx delivered, 4xx refused) ends the delivery. Each event carries an ``id`` so a receiver can drop duplicates.

Not here: deciding what changed (``recheck.py``). Events waiting in the queue are lost with the process (the
audit log keeps every change durably); a database outbox would make delivery survive restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import uuid
from collections.abc import Mapping
from typing import Any, Final

import httpx

log = logging.getLogger("trustyard.webhook")

SIGNATURE_HEADER: Final = "X-Trustyard-Signature"
_RETRY_STATUSES: Final = frozenset({408, 429})


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """Posts events to one URL from a background thread; ``send`` never blocks on the network."""

    def __init__(
        self, url: str, secret: bytes | None, *, attempts: int = 5, backoff: float = 0.5, timeout: float = 10.0
    ) -> None:
        self.url = url
        self._secret = secret
        self._attempts = attempts
        self._backoff = backoff
        self._timeout = timeout
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.given_up = 0

    def start(self) -> None:
        """Start the delivery thread."""
        self._thread = threading.Thread(target=self._loop, name="trustyard-webhook", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``) and stop."""
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        self._stop.set()

    def send(self, event: str, payload: Mapping[str, Any]) -> str:
        """Queue one event; its id (also in the body) is returned."""
        event_id = str(uuid.uuid4())
        body = json.dumps({"id": event_id, "event": event, **payload}, sort_keys=True).encode()
        self._queue.put(body)
        return event_id

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued event was delivered or given up (tests, shutdown)."""
        done = threading.Event()
        deadline = threading.Timer(timeout, done.set)
        deadline.start()
        try:
            while not done.is_set() and self._queue.unfinished_tasks:
                done.wait(0.01)
        finally:
            deadline.cancel()

    def _loop(self) -> None:
        with httpx.Client(timeout=self._timeout, follow_redirects=False) as client:
            while True:
                body = self._queue.get()
                try:
                    if body is None:
                        return
                    self._deliver(client, body)
                finally:
                    self._queue.task_done()

    def _deliver(self, client: httpx.Client, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "trustyard-webhook"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        for attempt in range(self._attempts):
            if attempt and self._stop.wait(self._backoff * 2 ** (attempt - 1)):
                break
            try:
                response = client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as e:
                log.warning("webhook delivery to %s failed (attempt %d): %s", self.url, attempt + 1, e)
                continue
            if response.status_code < 300:
                self.delivered += 1
                return
            if response.status_code < 500 and response.status_code not in _RETRY_STATUSES:
                log.warning("webhook receiver %s refused the event: HTTP %d", self.url, response.status_code)
                break
            log.warning(
                "webhook receiver %s answered HTTP %d (attempt %d)", self.url, response.status_code, attempt + 1
            )
        self.given_up += 1
        log.error("webhook event not delivered to %s", self.url)
