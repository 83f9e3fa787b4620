"""Publishers' signing keys: one ``Signer`` Protocol, one backend per place a private key can live.

A signer signs bytes the way notary verifies them (ECDSA P-256 over SHA-256, raw ``r‖s``, method ``ecdsa``;
notes/notary-v1.md section 4), whatever holds the private key: a passphrase-encrypted PKCS#8 file
(``FileBackend``, notary's default key type) or a PKCS#11 token such as a YubiKey or SoftHSM2
(``signers_pkcs11.Pkcs11Backend``). The key store (``keyfiles``) lists the backends explicitly in
``BACKENDS``, names a backend per key and asks it to generate or load a signer.

Also here: the Notary public form of a signer's key (a bare ``ecdsa`` key, or for a root key an
``ecdsa-x509`` self-signed certificate whose CN is the GUN), built through the ``Signer`` so that a key that
never leaves its token can still be a root key.

Not here: where key records are kept (``keyfiles``), metadata (``client_publish``).
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID

from trustyard.errors import TrustyardError
from trustyard.trust.keys import PublicKey

__all__ = [
    "FileBackend",
    "FileSigner",
    "KeyBackend",
    "KeyFileError",
    "Secrets",
    "Signer",
    "notary_key",
    "root_certificate_key",
]

METHOD: Final = "ecdsa"
ROOT_CERT_DAYS: Final = 3650  # notary's root certificates last 10 years, like the root metadata


class KeyFileError(TrustyardError):
    """A private key that cannot be created, read or used (wrong passphrase or PIN, missing token, bad file)."""


class Secrets(Protocol):
    """Where passphrases and PINs come from (environment or prompt); asked only when a key is used."""

    def passphrase(self, what: str, *, confirm: bool) -> str:
        """The passphrase that protects the key described by ``what``."""
        ...

    def pin(self, token: str) -> str:
        """The user PIN of PKCS#11 token ``token``."""
        ...


class Signer(Protocol):
    """A P-256 private key that signs as notary verifies: ECDSA over SHA-256, raw ``r‖s`` (64 bytes)."""

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half."""
        ...

    def sign(self, message: bytes) -> bytes:
        """Sign ``message`` (hashed with SHA-256 here or on the token); raise ``KeyFileError``."""
        ...


class KeyBackend(Protocol):
    """One place private keys live: makes new keys and loads existing ones as ``Signer`` objects."""

    name: str

    def generate(self, folder: Path, label: str, options: dict[str, str], secrets: Secrets) -> GeneratedKey:
        """Create a key called ``label``; files (if any) go into ``folder``; ``options`` are backend-specific."""
        ...

    def load(
        self, folder: Path, key_id: str, public: ec.EllipticCurvePublicKey, details: dict[str, str], secrets: Secrets
    ) -> Signer:
        """The signer of a key this backend generated or imported, from its public half and recorded ``details``."""
        ...


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new key: its signer, its Notary public form, and what the backend needs to find it again."""

    signer: Signer
    public: PublicKey
    details: dict[str, str]


def raw_signature(der: bytes) -> bytes:
    """DER ``ECDSA-Sig-Value`` -> the raw 64-byte ``r‖s`` notary expects."""
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def notary_key(public: ec.EllipticCurvePublicKey) -> PublicKey:
    """The bare ``ecdsa`` Notary form (base64 DER SubjectPublicKeyInfo); its ID is notary's canonical key ID."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey.from_json(
        {"keytype": "ecdsa", "keyval": {"private": None, "public": base64.b64encode(der).decode()}}
    )


def spki(key: PublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of a Notary key of any form: what identifies the private key behind it."""
    return key.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# ---- the self-signed root certificate, signed through any Signer ---------------------------------------------
_ECDSA_SHA256: Final = bytes.fromhex("300a06082a8648ce3d040302")  # AlgorithmIdentifier ecdsa-with-SHA256


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def root_certificate_key(signer: Signer, gun: str, *, days: int = ROOT_CERT_DAYS) -> PublicKey:
    """An ``ecdsa-x509`` root key: a self-signed certificate, CN = ``gun``, signed by ``signer``.

    ``cryptography`` signs certificates only with keys it holds, so the to-be-signed part is built with a
    throwaway key (it carries the signer's public key and the algorithm), then signed by ``signer`` and wrapped
    into the certificate by hand; the result is checked to verify under its own key before it is used.
    """
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, gun)])
    draft = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    tbs = draft.tbs_certificate_bytes
    r_s = signer.sign(tbs)
    der_sig = encode_dss_signature(int.from_bytes(r_s[:32], "big"), int.from_bytes(r_s[32:], "big"))
    cert_der = _der(0x30, tbs + _ECDSA_SHA256 + _der(0x03, b"\x00" + der_sig))
    cert = x509.load_der_x509_certificate(cert_der)
    try:
        cert.verify_directly_issued_by(cert)
    except Exception as e:  # InvalidSignature, ValueError, TypeError: any of them means the signer is broken
        raise KeyFileError(f"the root certificate signed by this key does not verify: {e}") from e
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return PublicKey.from_json(
        {"keytype": "ecdsa-x509", "keyval": {"private": None, "public": base64.b64encode(pem).decode()}}
    )


# ---- passphrase-encrypted files --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FileSigner:
    """A P-256 key held in memory, read from a passphrase-encrypted PKCS#8 PEM file."""

    private: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half."""
        return self.private.public_key()

    def sign(self, message: bytes) -> bytes:
        """ECDSA-SHA256, raw ``r‖s``."""
        return raw_signature(self.private.sign(message, ec.ECDSA(hashes.SHA256())))


def write_private(path: Path, private: ec.EllipticCurvePrivateKey, passphrase: str) -> None:
    """Write ``private`` as encrypted PKCS#8 PEM (best available encryption), readable by its owner only."""
    if not passphrase:
        raise KeyFileError("an empty passphrase would leave the key unprotected; choose one")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def read_private(data: bytes, passphrase: Callable[[], str], what: str) -> ec.EllipticCurvePrivateKey:
    """Load a PEM private key (encrypted or not) that must be ECDSA P-256; a wrong passphrase is a clear error."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted: only now ask for the passphrase
        try:
            key = serialization.load_pem_private_key(data, password=passphrase().encode())
        except ValueError as e:
            raise KeyFileError(f"wrong passphrase for {what} (or the file is damaged)") from e
    except ValueError as e:
        raise KeyFileError(f"{what} is not a PEM private key: {e}") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyFileError(f"{what} is not an ECDSA P-256 key (the key type notary and Docker use)")
    return key


class FileBackend:
    """Keys in ``<trust dir>/private/<key ID>.pem``, PKCS#8 encrypted under a passphrase."""

    name = "file"

    def generate(self, folder: Path, label: str, options: dict[str, str], secrets: Secrets) -> GeneratedKey:
        """A new P-256 key, written encrypted under a passphrase asked for (twice when prompting)."""
        if options:
            raise KeyFileError(f"file keys take no options ({', '.join(sorted(options))} given)")
        return self.store(folder, ec.generate_private_key(ec.SECP256R1()), label, secrets)

    def store(self, folder: Path, private: ec.EllipticCurvePrivateKey, label: str, secrets: Secrets) -> GeneratedKey:
        """Encrypt and write an existing key (``key import``)."""
        public = notary_key(private.public_key())
        path = folder / f"{public.key_id}.pem"
        if path.exists():
            raise KeyFileError(f"key {public.key_id} is already in the trust dir")
        write_private(path, private, secrets.passphrase(f"key {label!r} ({public.key_id[:12]})", confirm=True))
        return GeneratedKey(FileSigner(private), public, {})

    def load(
        self, folder: Path, key_id: str, public: ec.EllipticCurvePublicKey, details: dict[str, str], secrets: Secrets
    ) -> Signer:
        """Decrypt the key file of ``key_id`` (and check it is the key the record names)."""
        del details
        path = folder / f"{key_id}.pem"
        try:
            data = path.read_bytes()
        except OSError as e:
            raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from e
        private = read_private(data, lambda: secrets.passphrase(f"key {key_id[:12]}", confirm=False), str(path))
        if private.public_key() != public:
            raise KeyFileError(f"key file {path} does not hold key {key_id}")
        return FileSigner(private)
