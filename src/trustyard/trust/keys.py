"""Notary's public keys and signatures: parse a key object, compute its ID, verify one signature.

Notary v1 keys are ``{"keytype", "keyval": {"private": null, "public": <base64>}}`` with no ``scheme``; the key
ID is the SHA-256 of that object's canonical JSON. ``ed25519`` carries the raw 32 bytes, ``ecdsa`` and ``rsa``
a DER SubjectPublicKeyInfo, ``ecdsa-x509`` and ``rsa-x509`` a PEM certificate (root and delegation keys).
Signatures are ``{"keyid", "method", "sig"}`` with a base64 ``sig``; ECDSA is raw ``r‖s`` over SHA-256
(notes/notary-v1.md section 4; ``tuf/signed/verifiers.go``). Verification goes through ``cryptography``;
canonical JSON is securesystemslib's, which gives the same bytes as Go's canonical encoder.

Not here: private keys of publishers (the client holds those) and which keys a role trusts (``metadata``).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from securesystemslib.formats import encode_canonical

__all__ = ["KEY_TYPES", "KeyFormatError", "PublicKey", "SignatureError", "canonical"]

KEY_TYPES: Final = frozenset({"ed25519", "ecdsa", "ecdsa-x509", "rsa", "rsa-x509"})
# which signature methods each key type may be used with (a key must never verify under another scheme)
_METHODS: Final[dict[str, frozenset[str]]] = {
    "ed25519": frozenset({"eddsa"}),
    "ecdsa": frozenset({"ecdsa"}),
    "ecdsa-x509": frozenset({"ecdsa"}),
    "rsa": frozenset({"rsapss", "rsapkcs1v15", "pycrypto-pkcs#1 pss"}),
    "rsa-x509": frozenset({"rsapss", "rsapkcs1v15", "pycrypto-pkcs#1 pss"}),
}
_PublicKeyTypes = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


class KeyFormatError(ValueError):
    """A key object that is not a Notary public key; the metadata parser turns it into its own error."""


class SignatureError(ValueError):
    """One signature that does not verify (bad encoding, wrong method, or a forgery)."""


def canonical(value: Any) -> bytes:
    """The OLPC canonical JSON notary signs over (sorted keys, no whitespace), as bytes."""
    text = encode_canonical(value)
    if text is None:  # only when an output function is given, which it is not
        raise ValueError("canonical JSON produced nothing")
    return text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One public key of a role: its wire object, ID, and the parsed ``cryptography`` key."""

    key_id: str
    keytype: str
    public: str
    key: _PublicKeyTypes
    certificate: x509.Certificate | None

    @classmethod
    def from_json(cls, obj: Any) -> PublicKey:
        """Parse a key object; the ID is computed over it exactly as notary does (``"private": null`` included)."""
        if not isinstance(obj, dict) or set(obj) - {"keytype", "keyval"}:
            raise KeyFormatError("a key must be an object with keytype and keyval")
        keytype, keyval = obj.get("keytype"), obj.get("keyval")
        if not isinstance(keytype, str) or keytype not in KEY_TYPES:
            raise KeyFormatError(f"unsupported key type {str(keytype)[:40]!r}")
        if not isinstance(keyval, dict) or keyval.get("private") is not None or set(keyval) - {"public", "private"}:
            raise KeyFormatError("keyval must hold a public key and no private key")
        public = keyval.get("public")
        if not isinstance(public, str):
            raise KeyFormatError("keyval.public must be a base64 string")
        try:
            raw = base64.b64decode(public, validate=True)
        except ValueError as e:  # binascii.Error, or non-ASCII text
            raise KeyFormatError("keyval.public is not base64") from e
        key, cert = _load(keytype, raw)
        key_id = hashlib.sha256(
            canonical({"keytype": keytype, "keyval": {"private": None, "public": public}})
        ).hexdigest()
        return cls(key_id=key_id, keytype=keytype, public=public, key=key, certificate=cert)

    @classmethod
    def ed25519(cls, key: ed25519.Ed25519PublicKey) -> PublicKey:
        """The Notary form of a server-held ed25519 key."""
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls.from_json(
            {"keytype": "ed25519", "keyval": {"private": None, "public": base64.b64encode(raw).decode()}}
        )

    def to_json(self) -> dict[str, Any]:
        """The wire object (the one the ID is computed over)."""
        return {"keytype": self.keytype, "keyval": {"private": None, "public": self.public}}

    def common_name(self) -> str | None:
        """The certificate's subject CN (root keys must name the GUN), or ``None`` for a bare key."""
        if self.certificate is None:
            return None
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        value = names[0].value if names else None
        return value if isinstance(value, str) else None

    def check_certificate(self, now: datetime) -> None:
        """Refuse an x509 key whose certificate is not valid at ``now`` (notary's ``validRootLeafCerts``)."""
        cert = self.certificate
        if cert is None:
            return
        if cert.not_valid_before_utc > now or cert.not_valid_after_utc <= now:
            raise KeyFormatError(
                f"certificate of key {self.key_id} is not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d}"
                f" to {cert.not_valid_after_utc:%Y-%m-%d})"
            )

    def verify(self, method: str, signature: bytes, message: bytes) -> None:
        """Raise ``SignatureError`` unless ``signature`` by this key over ``message`` is valid under ``method``."""
        if method not in _METHODS[self.keytype]:
            raise SignatureError(f"method {method[:30]!r} cannot be used with a {self.keytype} key")
        key = self.key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                size = (key.curve.key_size + 7) // 8
                if len(signature) != 2 * size:
                    raise SignatureError("an ecdsa signature must be raw r||s")
                der = encode_dss_signature(int.from_bytes(signature[:size]), int.from_bytes(signature[size:]))
                key.verify(der, message, ec.ECDSA(_ecdsa_hash(key)))
            elif method == "rsapkcs1v15":
                key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            else:
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                key.verify(signature, message, pss, hashes.SHA256())
        except InvalidSignature as e:
            raise SignatureError(f"signature by key {self.key_id} does not verify") from e


def _ecdsa_hash(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    # notary signs P-256 over SHA-256; its verifier hashes with SHA-256 for every curve
    del key
    return hashes.SHA256()


def _load(keytype: str, raw: bytes) -> tuple[_PublicKeyTypes, x509.Certificate | None]:
    cert: x509.Certificate | None = None
    try:
        if keytype == "ed25519":
            if len(raw) != 32:
                raise KeyFormatError("an ed25519 public key is 32 bytes")
            return ed25519.Ed25519PublicKey.from_public_bytes(raw), None
        if keytype.endswith("-x509"):
            cert = x509.load_pem_x509_certificate(raw)
            key: Any = cert.public_key()
        else:
            key = serialization.load_der_public_key(raw)
    except KeyFormatError:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFormatError(f"cannot read {keytype} key: {e}") from e
    want = ec.EllipticCurvePublicKey if keytype.startswith("ecdsa") else rsa.RSAPublicKey
    if not isinstance(key, want):
        raise KeyFormatError(f"a {keytype} key holds a {type(key).__name__}")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise KeyFormatError("RSA keys must have at least 2048 bits")
    return key, cert


def now_utc() -> datetime:
    """The current time, aware, in UTC (one place, so tests can reason about it)."""
    return datetime.now(UTC)
