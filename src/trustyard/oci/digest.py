"""Content digests as the OCI image spec defines them (``algorithm:encoded``), and a streaming hasher.

Scope: the registered algorithms ``sha256`` and ``sha512`` (OCI image-spec, descriptor.md "Digests").
Not in scope: blake3 and other unregistered algorithms, which are refused as unsupported.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

from trustyard.errors import TrustyardError

_GRAMMAR: Final = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_HEX_LENGTH: Final = {"sha256": 64, "sha512": 128}
_HEX: Final = re.compile(r"[a-f0-9]+")


class DigestError(TrustyardError):
    """A digest string that is malformed or names an algorithm we do not support."""


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated digest; ``str(d)`` gives the wire form ``sha256:<hex>``."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate a wire-form digest, raising ``DigestError`` with the reason."""
        if len(text) > 200 or not _GRAMMAR.fullmatch(text):
            raise DigestError(f"invalid digest {text[:80]!r}")
        algorithm, _, encoded = text.partition(":")
        length = _HEX_LENGTH.get(algorithm)
        if length is None:
            raise DigestError(f"unsupported digest algorithm {algorithm!r}")
        if len(encoded) != length or not _HEX.fullmatch(encoded):
            raise DigestError(f"invalid {algorithm} digest {text[:80]!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data`` (the whole content is in memory: use ``Hasher`` for streams)."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class Hasher:
    """Hashes a stream chunk by chunk and counts its bytes, so content is digested while it passes."""

    __slots__ = ("_hash", "algorithm", "size")

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in _HEX_LENGTH:
            raise DigestError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed the next chunk."""
        self._hash.update(chunk)
        self.size += len(chunk)

    def digest(self) -> Digest:
        """The digest of everything fed so far (the hasher can keep going)."""
        return Digest(self.algorithm, self._hash.hexdigest())
