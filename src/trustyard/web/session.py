"""Browser sessions of the web interface: a signed cookie that says who signed in, and the form token against
cross-site request forgery.

The cookie holds a small JSON payload (session id, subject, account id, CSRF token, issue and expiry times)
and its HMAC-SHA256 under a 32-byte key kept per data dir (``<data_dir>/web/session-key``, mode 0600, created on
first start), so every process and node sharing the data dir accepts the same sessions and nothing is stored
per session. A visitor who has not signed in gets an anonymous session too: the sign-in form needs a CSRF
token before anyone is known. Signing in issues a new session (new id, new token), so a token planted before
sign-in is worthless after it. Signing out forgets the session id in this process until it would have expired
(a copied cookie stops working at once here; other ``--workers`` processes refuse it when it expires).

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (not sent with cross-site POSTs) and ``Secure``
when the server speaks TLS. Every POST must carry the session's CSRF token in its form (``check_csrf``); the
comparison is constant-time.

Not here: checking passwords (``auth/authenticator.py``, which applies the login throttle), pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from trustyard.errors import TrustyardError
from trustyard.privatefile import PrivateFileError, create_private, read_private

__all__ = [
    "COOKIE",
    "CsrfError",
    "Session",
    "SessionCodec",
    "SessionKeyError",
    "load_or_create_key",
]

COOKIE: Final = "trustyard_session"
KEY_BYTES: Final = 32
SIGNED_IN_LIFETIME: Final = 8 * 3600.0
ANONYMOUS_LIFETIME: Final = 2 * 3600.0
_MAX_COOKIE: Final = 4096
_MAX_REVOKED: Final = 100_000


class SessionKeyError(TrustyardError):
    """The session key file cannot be read or created (the server does not start without it)."""


class CsrfError(TrustyardError):
    """A POST without the session's CSRF token: refused with 403, nothing changed."""


@dataclass(frozen=True, slots=True)
class Session:
    """One browser's session: anonymous (``subject`` empty) or signed in."""

    sid: str
    csrf: str
    subject: str
    account: str | None
    issued_at: float
    expires_at: float

    @property
    def signed_in(self) -> bool:
        """Whether someone signed in with this session."""
        return bool(self.subject)


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, created (random, 0600) if missing; refused if others may read it."""
    what = "session key"
    try:
        key = read_private(path, what)
        if key is None:
            key = create_private(path, secrets.token_bytes(KEY_BYTES), what)
    except PrivateFileError as e:
        raise SessionKeyError(e.message) from e
    if len(key) != KEY_BYTES:
        raise SessionKeyError(f"{what} {path} is not {KEY_BYTES} bytes; delete it to make a new one")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Makes, signs, reads and revokes sessions with one key."""

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if len(key) < KEY_BYTES:
            raise SessionKeyError(f"a session key needs at least {KEY_BYTES} bytes")
        self._key = key
        self._clock = clock
        self._lock = threading.Lock()
        self._revoked: dict[str, float] = {}

    def anonymous(self) -> Session:
        """A fresh session for a visitor who has not signed in (it carries the sign-in form's CSRF token)."""
        now = self._clock()
        return Session(secrets.token_urlsafe(18), secrets.token_urlsafe(24), "", None, now, now + ANONYMOUS_LIFETIME)

    def signed_in(self, subject: str, account: str | None) -> Session:
        """A new session (new id, new CSRF token) for someone who just proved who they are."""
        fresh = self.anonymous()
        return replace(fresh, subject=subject, account=account, expires_at=fresh.issued_at + SIGNED_IN_LIFETIME)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, session: Session) -> str:
        """The cookie value: base64url(JSON) "." base64url(HMAC-SHA256)."""
        body: dict[str, Any] = {
            "sid": session.sid,
            "csrf": session.csrf,
            "sub": session.subject,
            "acct": session.account,
            "iat": session.issued_at,
            "exp": session.expires_at,
        }
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, value: str | None) -> Session | None:
        """The session a cookie carries, if it is well-formed, signed with our key, unexpired and not revoked."""
        if not value or len(value) > _MAX_COOKIE or value.count(".") != 1:
            return None
        encoded, signature = value.split(".")
        try:
            payload, mac = _unb64(encoded), _unb64(signature)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            body = json.loads(payload)
            session = Session(
                sid=str(body["sid"]),
                csrf=str(body["csrf"]),
                subject=str(body["sub"]),
                account=None if body["acct"] is None else str(body["acct"]),
                issued_at=float(body["iat"]),
                expires_at=float(body["exp"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires_at <= self._clock() or self.is_revoked(session.sid):
            return None
        return session

    def revoke(self, session: Session) -> None:
        """Forget ``session`` here: its cookie is refused from now on (sign-out)."""
        now = self._clock()
        with self._lock:
            if len(self._revoked) >= _MAX_REVOKED:
                self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
            self._revoked[session.sid] = session.expires_at

    def is_revoked(self, sid: str) -> bool:
        """Whether the session id was signed out here."""
        with self._lock:
            return sid in self._revoked

    @staticmethod
    def check_csrf(session: Session, sent: str | None) -> None:
        """Raise ``CsrfError`` unless ``sent`` is the session's CSRF token."""
        if not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise CsrfError("The form's security token is missing or stale: reload the page and try again.")
