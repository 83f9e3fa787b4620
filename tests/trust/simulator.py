"""A Notary repository simulator for tests: keys, certificates and signed metadata in Notary's dialect.

Builds what the real ``notary`` client uploads (an x509 root key naming the GUN, ECDSA targets/snapshot keys
signing raw r||s, ed25519 server keys, base64 sha256+sha512 meta) so that validation and the HTTP service can
be driven through every rule and attack without a Go binary; the interop test uses the real client.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from trustyard.trust.keys import PublicKey, canonical
from trustyard.trust.metadata import FileMeta, format_expires

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


@dataclass
class SimKey:
    """A private key with its Notary public form."""

    private: PrivateKey
    public: PublicKey
    rsa_method: str = "rsapss"

    @classmethod
    def ecdsa(cls) -> SimKey:
        """A P-256 key published as a bare ``ecdsa`` key (DER SPKI)."""
        priv = ec.generate_private_key(ec.SECP256R1())
        der = priv.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        obj = {"keytype": "ecdsa", "keyval": {"private": None, "public": base64.b64encode(der).decode()}}
        return cls(priv, PublicKey.from_json(obj))

    @classmethod
    def x509(cls, cn: str, *, days: int = 3650, not_before: datetime | None = None) -> SimKey:
        """A P-256 key published as an ``ecdsa-x509`` self-signed certificate with subject CN ``cn``."""
        priv = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        start = not_before or now() - timedelta(hours=1)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(priv.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .sign(priv, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        obj = {"keytype": "ecdsa-x509", "keyval": {"private": None, "public": base64.b64encode(pem).decode()}}
        return cls(priv, PublicKey.from_json(obj))

    @classmethod
    def rsa_x509(cls, cn: str, *, method: str = "rsapss") -> SimKey:
        """A 2048-bit RSA key published as an ``rsa-x509`` certificate, signing with ``method``."""
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        start = now() - timedelta(hours=1)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(priv.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=365))
            .sign(priv, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        obj = {"keytype": "rsa-x509", "keyval": {"private": None, "public": base64.b64encode(pem).decode()}}
        return cls(priv, PublicKey.from_json(obj), method)

    @classmethod
    def ed25519(cls) -> SimKey:
        """An ed25519 key (as the server holds for timestamp and snapshot)."""
        priv = ed25519.Ed25519PrivateKey.generate()
        return cls(priv, PublicKey.ed25519(priv.public_key()))

    @property
    def key_id(self) -> str:
        """The Notary key ID."""
        return self.public.key_id

    def sign(self, message: bytes) -> dict[str, str]:
        """A Notary signature object over ``message``."""
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            sig, method = self.private.sign(message), "eddsa"
        elif isinstance(self.private, rsa.RSAPrivateKey):
            pad: padding.AsymmetricPadding = padding.PKCS1v15()
            if self.rsa_method == "rsapss":
                pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
            sig, method = self.private.sign(message, pad, hashes.SHA256()), self.rsa_method
        else:
            r, s = decode_dss_signature(self.private.sign(message, ec.ECDSA(hashes.SHA256())))
            sig, method = r.to_bytes(32, "big") + s.to_bytes(32, "big"), "ecdsa"
        return {"keyid": self.key_id, "method": method, "sig": base64.b64encode(sig).decode()}


def envelope(signed: dict[str, Any], *signers: SimKey) -> bytes:
    """The compact envelope notary uploads (``signed`` first), signed over canonical JSON."""
    sigs = [k.sign(canonical(signed)) for k in signers]
    return json.dumps({"signed": signed, "signatures": sigs}, separators=(",", ":")).encode()


@dataclass
class SimRepo:
    """A publisher's view of one GUN: its keys and the next metadata it would upload."""

    gun: str
    timestamp_key: SimKey
    root_key: SimKey = field(init=False)
    targets_key: SimKey = field(default_factory=SimKey.ecdsa)
    snapshot_key: SimKey = field(default_factory=SimKey.ecdsa)
    versions: dict[str, int] = field(default_factory=dict)
    targets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    delegations: dict[str, dict[str, Any]] = field(default_factory=dict)
    delegation_keys: dict[str, SimKey] = field(default_factory=dict)
    current: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root_key = SimKey.x509(self.gun)

    def bump(self, role: str) -> int:
        """The next version of ``role``."""
        self.versions[role] = self.versions.get(role, 0) + 1
        return self.versions[role]

    def root(self, *, signers: tuple[SimKey, ...] | None = None, expires: datetime | None = None) -> bytes:
        """A new root version listing the current keys."""
        keys = [self.root_key, self.targets_key, self.snapshot_key, self.timestamp_key]
        signed = {
            "_type": "Root",
            "consistent_snapshot": False,
            "expires": format_expires(expires or now() + timedelta(days=3650)),
            "keys": {k.key_id: k.public.to_json() for k in keys},
            "roles": {
                "root": {"keyids": [self.root_key.key_id], "threshold": 1},
                "snapshot": {"keyids": [self.snapshot_key.key_id], "threshold": 1},
                "targets": {"keyids": [self.targets_key.key_id], "threshold": 1},
                "timestamp": {"keyids": [self.timestamp_key.key_id], "threshold": 1},
            },
            "version": self.bump("root"),
        }
        data = envelope(signed, *(signers or (self.root_key,)))
        self.current["root"] = data
        return data

    def add_target(self, role: str, name: str, content: bytes) -> None:
        """Stage a target in ``role``."""
        self.targets.setdefault(role, {})[name] = FileMeta.of(content).to_json()

    def delegate(self, name: str, key: SimKey, paths: list[str]) -> None:
        """Stage a delegation from the parent role of ``name`` to ``key`` over ``paths``."""
        self.delegations[name] = {"keyids": [key.key_id], "name": name, "paths": paths, "threshold": 1}
        self.delegation_keys[name] = key

    def targets_role(
        self,
        role: str = "targets",
        *,
        signer: SimKey | None = None,
        expires: datetime | None = None,
        version: int | None = None,
    ) -> bytes:
        """A new version of a targets role with its staged targets (and delegations for its children)."""
        children = {n: d for n, d in self.delegations.items() if n.rsplit("/", 1)[0] == role}
        signed: dict[str, Any] = {
            "_type": "Targets",
            "delegations": {
                "keys": {self.delegation_keys[n].key_id: self.delegation_keys[n].public.to_json() for n in children},
                "roles": list(children.values()),
            },
            "expires": format_expires(expires or now() + timedelta(days=1095)),
            "targets": self.targets.get(role, {}),
            "version": version if version is not None else self.bump(role),
        }
        key = signer or (self.targets_key if role == "targets" else self.delegation_keys[role])
        data = envelope(signed, key)
        self.current[role] = data
        return data

    def snapshot(
        self, *, signer: SimKey | None = None, meta: dict[str, bytes] | None = None, expires: datetime | None = None
    ) -> bytes:
        """A new snapshot naming the current bytes (or ``meta``) of root, targets and delegations."""
        described = meta if meta is not None else {n: d for n, d in self.current.items() if n != "snapshot"}
        signed = {
            "_type": "Snapshot",
            "expires": format_expires(expires or now() + timedelta(days=1095)),
            "meta": {n: FileMeta.of(d).to_json() for n, d in described.items()},
            "version": self.bump("snapshot"),
        }
        data = envelope(signed, signer or self.snapshot_key)
        self.current["snapshot"] = data
        return data

    def first_publish(self) -> dict[str, bytes]:
        """What ``notary publish`` sends first: root v1, targets and snapshot."""
        root = self.root()
        targets = self.targets_role()
        return {"root": root, "targets": targets, "snapshot": self.snapshot()}
