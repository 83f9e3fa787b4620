"""argon2id hashing of passwords and robot secrets: hashes, verification that raises, dummy verification, rehash.

Not here: which account a secret belongs to (``test_store.py``).
"""

from __future__ import annotations

import threading
import time
from typing import Literal

import pytest
from argon2 import PasswordHasher, Type

from trustyard.auth import passwords
from trustyard.auth.errors import AuthenticationError
from trustyard.auth.passwords import hash_secret, needs_rehash, new_secret, verify_secret


class CountingHasher(PasswordHasher):
    """The real hasher, counting verifications."""

    verified: int = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        return super().verify(hash, password)


def test_a_hash_is_argon2id_with_a_salt_and_never_the_secret() -> None:
    first, second = hash_secret("correct horse"), hash_secret("correct horse")
    assert first.startswith("$argon2id$")
    assert "correct horse" not in first
    assert first != second  # a fresh salt each time


def test_the_right_secret_verifies() -> None:
    verify_secret(hash_secret("s3cret"), "s3cret")


@pytest.mark.parametrize("attempt", ["s3creT", "", "s3cret ", "s3cre"], ids=["case", "empty", "trailing", "prefix"])
def test_a_wrong_secret_raises(attempt: str) -> None:
    with pytest.raises(AuthenticationError, match="invalid username or password"):
        verify_secret(hash_secret("s3cret"), attempt)


def test_a_broken_hash_raises_authentication_error() -> None:
    with pytest.raises(AuthenticationError):
        verify_secret("not a hash", "s3cret")


def test_an_unknown_account_is_verified_against_a_dummy_hash_and_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = CountingHasher()
    monkeypatch.setattr(passwords, "_HASHER", hasher)
    passwords._dummy_hash.cache_clear()
    try:
        with pytest.raises(AuthenticationError, match="invalid username or password"):
            verify_secret(None, "anything")
        assert hasher.verified == 1  # the same argon2 work as a wrong password
    finally:
        passwords._dummy_hash.cache_clear()


def test_hashes_with_weaker_parameters_need_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID).hash("pw")
    argon2i = PasswordHasher(type=Type.I).hash("pw")
    assert needs_rehash(weak)
    assert needs_rehash(argon2i)
    assert not needs_rehash(hash_secret("pw"))
    verify_secret(weak, "pw")  # still verifies until it is replaced


def test_new_secrets_are_long_random_and_url_safe() -> None:
    made = {new_secret() for _ in range(100)}
    assert len(made) == 100
    assert all(len(s) >= 43 and s.replace("-", "").replace("_", "").isalnum() for s in made)


def test_concurrent_hashing_is_bounded_so_a_login_flood_cannot_exhaust_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each argon2 computation takes 64 MiB: at most ``_SLOTS`` run at once, the rest wait their turn."""
    lock = threading.Lock()
    running = peak = 0

    class Counting:
        def verify(self, hashed: str, secret: str) -> bool:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.02)
            with lock:
                running -= 1
            return True

    monkeypatch.setattr(passwords, "_HASHER", Counting())
    threads = [threading.Thread(target=passwords.verify_secret, args=("$argon2id$x", "pw")) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == passwords.MAX_CONCURRENT_HASHES  # as many as allowed ran together, never more
