"""Establishing who a caller is: password logins (users and robots) and the ``Authorization`` header.

``login`` is the one place a secret is checked: it applies the login throttle first, tells users from robots
(``robot$name``), records the attempt in the audit log, and raises ``AuthenticationError`` (or
``ThrottledError``) with a message that never contains the secret. ``from_header`` turns ``Basic`` and
``Bearer`` credentials into a ``Caller``; a bearer token's subject is looked up again on every request
(``AccessPolicy.resolve``), so a deleted, disabled or expired account's tokens stop working before they expire.

Verified tokens are remembered until they expire (their signature cannot change), and successful Basic
logins are remembered for ``cache_ttl`` seconds under a SHA-256 of the credentials, because
argon2 costs tens of milliseconds by design and clients such as curl send Basic credentials with every
request; any change to identities made through this process forgets them at once.

Not here: which actions the caller gets (``policy.py``), HTTP responses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from trustyard.auth.audit import AuditEvent, AuditLog
from trustyard.auth.errors import AuthenticationError, ThrottledError
from trustyard.auth.policy import ANONYMOUS, AccessPolicy, Kind, Principal, account_id
from trustyard.auth.providers import IdentityProvider
from trustyard.auth.scopes import WILDCARD, Scope
from trustyard.auth.store import ROBOT_PREFIX, IdentityStore
from trustyard.auth.throttle import LoginThrottle
from trustyard.auth.tokens import AccessClaims, TokenService
from trustyard.decision_cache import DecisionCache

__all__ = ["Authenticator", "Caller"]

_MAX_CREDENTIALS: Final = 4096
_MAX_CACHED: Final = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, and what their token grants (``None``: no token, so everything they are allowed)."""

    principal: Principal
    granted: tuple[Scope, ...] | None = None
    via: str = "anonymous"
    """How they proved it: ``anonymous``, ``basic`` or ``bearer``."""

    def token_grants(self, type_: str, name: str, action: str) -> bool:
        """Whether the token (if any) covers ``action`` on the resource; no token covers everything."""
        if self.granted is None:
            return True
        return any(
            s.type == type_ and s.name == name and (action in s.actions or WILDCARD in s.actions) for s in self.granted
        )


class Authenticator:
    """Checks passwords and robot secrets, and reads ``Authorization`` headers."""

    def __init__(
        self,
        *,
        store: IdentityStore,
        provider: IdentityProvider,
        policy: AccessPolicy,
        tokens: TokenService,
        throttle: LoginThrottle,
        audit: AuditLog,
        cache_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.provider = provider
        self.policy = policy
        self.tokens = tokens
        self.throttle = throttle
        self.audit = audit
        self.cache_ttl = cache_ttl
        self._lock = threading.Lock()
        self._basic: DecisionCache[bytes, str] = DecisionCache(
            store, ttl=cache_ttl, max_entries=_MAX_CACHED, clock=clock
        )
        self._verified: dict[str, AccessClaims] = {}

    def login(self, username: str, password: str, address: str, *, via: str = "password") -> Principal:
        """The principal these credentials belong to; raises ``AuthenticationError`` / ``ThrottledError``."""
        if not username or len(username) > 512 or len(password) > _MAX_CREDENTIALS:
            raise AuthenticationError("invalid username or password")
        try:
            self.throttle.check(username, address)
        except ThrottledError:
            self.audit.record(AuditEvent(username, "login", "denied", address=address, detail={"reason": "throttled"}))
            raise
        try:
            if username.startswith(ROBOT_PREFIX):
                robot = self.store.authenticate_robot(username[len(ROBOT_PREFIX) :], password)
                principal = Principal(Kind.ROBOT, robot.name, robot=robot, account=account_id(robot))
            else:
                user = self.provider.authenticate(username, password)
                principal = Principal(Kind.USER, user.name, is_admin=user.is_admin, account=account_id(user))
        except AuthenticationError as e:
            self.throttle.record_failure(username, address)
            self.audit.record(AuditEvent(username, "login", "failure", address=address, detail={"reason": str(e)}))
            raise
        self.throttle.record_success(username, address)
        self.audit.record(AuditEvent(principal.subject, "login", address=address, detail={"via": via}))
        return principal

    def _basic_login(self, username: str, password: str, address: str) -> Principal:
        key = hashlib.sha256(f"{username}\0{password}".encode()).digest()
        subject = self._basic.get(key)
        if subject is not None:
            return self.policy.resolve(subject)
        principal = self.login(username, password, address, via="basic")
        self._basic.put(key, principal.subject)
        return principal

    def from_header(self, authorization: str | None, address: str) -> Caller:
        """The caller an ``Authorization`` header names; no header is the anonymous caller."""
        if not authorization:
            return Caller(ANONYMOUS)
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "basic":
            username, password = parse_basic(credentials)
            return Caller(self._basic_login(username, password, address), via="basic")
        if scheme.lower() == "bearer":
            claims = self._verify(credentials)
            principal = self.policy.resolve(claims.subject)
            if claims.account is not None and claims.account != principal.account:
                raise AuthenticationError(f"the account {claims.subject!r} this token was issued to no longer exists")
            return Caller(principal, granted=claims.access, via="bearer")
        raise AuthenticationError(f"unsupported authorization scheme {scheme[:20]!r}; use Basic or Bearer")

    def _verify(self, token: str) -> AccessClaims:
        """``TokenService.verify``, remembered until the token expires: a client presents one token for many
        requests, and an ECDSA verification costs more than the rest of a manifest GET."""
        claims = self._verified.get(token)
        if claims is not None and self.tokens.now() < claims.expires_at + self.tokens.leeway:
            return claims
        claims = self.tokens.verify(token)
        with self._lock:
            if len(self._verified) >= _MAX_CACHED:
                self._verified.clear()
            self._verified[token] = claims
        return claims


def parse_basic(credentials: str) -> tuple[str, str]:
    """``user:password`` from the base64 of a Basic ``Authorization`` header (RFC 7617, UTF-8)."""
    if len(credentials) > _MAX_CREDENTIALS:
        raise AuthenticationError("credentials too long")
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthenticationError("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise AuthenticationError("malformed Basic credentials")
    return username, password
