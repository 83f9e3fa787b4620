"""Server-held signing keys, encrypted at rest with a key-encryption key (KEK) from the settings.

The timestamp key (always) and the snapshot key (after ``key rotate snapshot -r``) are ed25519 keys the server
signs with, as notary-server's local signer does. Their private halves are stored only sealed: AES-256-GCM
under the KEK, with the GUN, role and key ID as associated data, so a row copied to another GUN or role fails
to open. The KEK is ``trust_kek`` (base64 of 32 bytes) or the file ``trust_kek_file``; when neither is set a
random KEK is created once in ``<data_dir>/trust/kek`` with mode 0600, like the token signing key.

Not here: PKCS#11-held keys (a later signer behind the same ``sign`` call).
"""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from trustyard.config import Settings
from trustyard.trust.errors import TrustError
from trustyard.trust.keys import PublicKey

__all__ = ["KeyEncryptionKey", "KeySealError", "ServerKey"]

_NONCE: Final = 12


class KeySealError(TrustError):
    """The KEK is missing or malformed, or a sealed key does not open with it (notary's NO_CRYPTOSERVICE)."""

    code = "NO_CRYPTOSERVICE"
    status = 500
    public_message = "The server does not have a signing service configured."


@dataclass(frozen=True, slots=True)
class ServerKey:
    """A server-held ed25519 key: its Notary public form and the private key to sign with."""

    public: PublicKey
    private: ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls) -> ServerKey:
        """A fresh ed25519 key (what notary-server's local signer makes)."""
        private = ed25519.Ed25519PrivateKey.generate()
        return cls(PublicKey.ed25519(private.public_key()), private)

    def sign(self, message: bytes) -> dict[str, str]:
        """A Notary signature object (``method: eddsa``) over ``message``."""
        sig = base64.b64encode(self.private.sign(message)).decode()
        return {"keyid": self.public.key_id, "method": "eddsa", "sig": sig}


class KeyEncryptionKey:
    """Seals and opens server keys; the only holder of the KEK's bytes."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise KeySealError("the trust key-encryption key must be 32 bytes")
        self._aead = AESGCM(kek)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyEncryptionKey:
        """The KEK from ``trust_kek``, else ``trust_kek_file``, else a file created once under the data dir."""
        if settings.trust_kek is not None:
            return cls(_decode(settings.trust_kek.get_secret_value(), "trust_kek"))
        path = settings.trust_kek_file or settings.data_dir / "trust" / "kek"
        if settings.trust_kek_file is None and not path.exists():
            _create(path)
        try:
            return cls(_decode(path.read_text(encoding="ascii").strip(), str(path)))
        except (OSError, UnicodeDecodeError) as e:
            raise KeySealError(f"cannot read the trust key-encryption key {path}: {e}") from e

    def seal(self, gun: str, role: str, key: ServerKey) -> bytes:
        """The private key encrypted and bound to ``gun``/``role``/its key ID."""
        raw = key.private.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, raw, _aad(gun, role, key.public.key_id))

    def open(self, gun: str, role: str, public: PublicKey, sealed: bytes) -> ServerKey:
        """The key sealed for ``gun``/``role``; raise ``KeySealError`` if it was tampered with or moved."""
        try:
            raw = self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(gun, role, public.key_id))
        except InvalidTag as e:
            raise KeySealError(f"the {role} key of {gun} does not open with this key-encryption key") from e
        private = ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        if PublicKey.ed25519(private.public_key()).key_id != public.key_id:
            raise KeySealError(f"the sealed {role} key of {gun} does not match its public key")
        return ServerKey(public, private)


def _aad(gun: str, role: str, key_id: str) -> bytes:
    return f"trustyard-trust-key\0{gun}\0{role}\0{key_id}".encode()


def _decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as e:  # binascii.Error, or non-ASCII text
        raise KeySealError(f"{what} is not base64") from e


def _create(path: Path) -> None:
    """Write a random KEK to ``path`` atomically (temp file, fsync, link), so no reader sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first; theirs is the KEK
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
