"""Password and secret hashing: argon2id through argon2-cffi, verification that raises.

Passwords of local users and robot-account secrets are stored only as argon2id hashes (PHC strings with
their parameters, RFC 9106's low-memory profile, argon2-cffi's default). ``verify_secret`` raises
``AuthenticationError`` and never returns a bool; it takes ``None`` for "no such account" and then verifies
against a dummy hash, so an unknown name costs as much time as a wrong password. argon2 compares in
constant time. At most one hash per CPU (at least two) is computed at once, because each needs 64 MiB: a burst
of logins queues instead of taking the server's memory.

Not here: who the account is (``store.py``), login throttling (``throttle.py``).
"""

from __future__ import annotations

import functools
import os
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from trustyard.auth.errors import AuthenticationError

SECRET_BYTES = 32
"""Random bytes in a generated secret (43 URL-safe characters)."""

_HASHER = PasswordHasher()  # stateless configuration: argon2id, t=3, m=64 MiB, p=4
MAX_CONCURRENT_HASHES = max(2, os.cpu_count() or 1)
"""Hashes computed at once: each takes 64 MiB, so a flood of logins waits here instead of exhausting memory."""
_SLOTS = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)


def hash_secret(secret: str) -> str:
    """The argon2id hash (PHC string) of a password or robot secret."""
    with _SLOTS:
        return _HASHER.hash(secret)


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(SECRET_BYTES))


def verify_secret(hashed: str | None, secret: str) -> None:
    """Return if ``secret`` matches ``hashed``, else raise ``AuthenticationError``.

    ``hashed`` is ``None`` when the account does not exist (or has no local password): the secret is then
    checked against a dummy hash and refused, taking the same time as a wrong password.
    """
    try:
        with _SLOTS:
            _HASHER.verify(hashed if hashed is not None else _dummy_hash(), secret)
    except (VerificationError, InvalidHashError) as e:
        raise AuthenticationError("invalid username or password") from e
    if hashed is None:
        raise AuthenticationError("invalid username or password")


def needs_rehash(hashed: str) -> bool:
    """Whether a stored hash was made with weaker parameters than today's (re-hash it on the next login)."""
    try:
        return _HASHER.check_needs_rehash(hashed)
    except (InvalidHashError, ValueError):
        return True


def new_secret() -> str:
    """A random secret for a generated admin password or a robot account (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(SECRET_BYTES)
