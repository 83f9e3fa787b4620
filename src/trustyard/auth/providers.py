"""Identity providers: who a username and password belong to. One ``Protocol``, local users implement it.

The rest of access control (tokens, permission checks, the management API) asks an ``IdentityProvider`` and
gets a ``User`` or an ``AuthenticationError``; an LDAP or OIDC provider added later implements the same
method (and maps its accounts onto users in the store) without touching the callers.

Not here: robot accounts (``IdentityStore.authenticate_robot``: they are ours whatever the provider),
throttling of failed logins (``throttle.py``).
"""

from __future__ import annotations

from typing import Protocol

from trustyard.auth.errors import AuthenticationError
from trustyard.auth.model import User
from trustyard.auth.passwords import hash_secret, needs_rehash, verify_secret
from trustyard.auth.store import IdentityStore


class IdentityProvider(Protocol):
    """Establishes who a caller is from a username and a password."""

    def authenticate(self, username: str, password: str) -> User:
        """The enabled user these credentials belong to; raises ``AuthenticationError`` otherwise."""
        ...


class LocalIdentityProvider:
    """Users of the ``IdentityStore`` with argon2id password hashes.

    An unknown user, a user without a local password, and a wrong password all cost one argon2 verification
    and raise the same error. A disabled user is refused after the password was verified. A hash made with
    older parameters is replaced on a successful login.
    """

    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    def authenticate(self, username: str, password: str) -> User:
        """The enabled local user these credentials belong to; raises ``AuthenticationError`` otherwise."""
        found = self.store.credentials(username)
        user, hashed = (None, None) if found is None else found
        verify_secret(hashed, password)
        if user is None:  # pragma: no cover - verify_secret refuses a missing hash
            raise AuthenticationError("invalid username or password")
        if user.disabled:
            raise AuthenticationError(f"account {username!r} is disabled")
        if hashed is not None and needs_rehash(hashed):
            self.store.set_password_hash(username, hash_secret(password))
        return user
