"""The publisher's key store in the trust dir: which keys exist, for which role, and where each one lives.

Layout (``<trust dir>`` is ``~/.trustyard/trust`` unless ``--trust-dir`` / ``TRUSTYARD_TRUST_DIR`` say):

- ``private/<key ID>.json``: the record of one key: name, role (``root``, ``targets``, ``snapshot`` or
  ``signer`` for a delegation key), GUN (empty for root and signer keys, which serve every repository), the
  backend (``file`` or ``pkcs11``), the Notary public key and what the backend needs to find the private key;
- ``private/<key ID>.pem``: the private key of a ``file`` key, PKCS#8 encrypted under a passphrase.

Key IDs are notary's canonical IDs (of the bare ``ecdsa`` form), so ``trust key list`` prints what
``notary key list`` and ``docker trust inspect`` print. Keys are matched to metadata by their public key,
not by ID, because a root key appears in root.json as a certificate with another ID.

Not here: the signing itself (``signers``), metadata (``client_publish``).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric import ec

from trustyard.trust.keys import KeyFormatError, PublicKey
from trustyard.trust.signers import (
    FileBackend,
    KeyBackend,
    KeyFileError,
    Secrets,
    Signer,
    read_private,
    spki,
)
from trustyard.trust.signers_pkcs11 import Pkcs11Backend

__all__ = ["BACKENDS", "KEY_ROLES", "KeyRecord", "KeyStore"]

KEY_ROLES: Final = ("root", "targets", "snapshot", "signer")


def _backends(*backends: KeyBackend) -> dict[str, KeyBackend]:
    found: dict[str, KeyBackend] = {}
    for backend in backends:
        if backend.name in found:
            raise RuntimeError(f"two key backends are called {backend.name}")
        found[backend.name] = backend
    return found


BACKENDS: Final[dict[str, KeyBackend]] = _backends(FileBackend(), Pkcs11Backend())


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key of the store (never the private key itself)."""

    key_id: str
    name: str
    role: str
    gun: str
    backend: str
    public: PublicKey
    created: str
    details: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The record file's content."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role,
            "gun": self.gun,
            "backend": self.backend,
            "public": self.public.to_json(),
            "created": self.created,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, obj: object, path: Path) -> KeyRecord:
        """Parse a record file; a damaged one is named."""
        try:
            if not isinstance(obj, dict):
                raise TypeError("not an object")
            details = obj.get("details") or {}
            if not isinstance(details, dict) or not all(isinstance(v, str) for v in details.values()):
                raise TypeError("details must map names to strings")
            record = cls(
                key_id=str(obj["key_id"]),
                name=str(obj["name"]),
                role=str(obj["role"]),
                gun=str(obj["gun"]),
                backend=str(obj["backend"]),
                public=PublicKey.from_json(obj["public"]),
                created=str(obj.get("created", "")),
                details={str(k): v for k, v in details.items()},
            )
        except (KeyError, TypeError, KeyFormatError) as e:
            raise KeyFileError(f"key record {path} is damaged: {e}") from e
        if record.public.key_id != record.key_id or record.backend not in BACKENDS:
            raise KeyFileError(f"key record {path} is damaged: its ID or backend does not fit")
        return record


class KeyStore:
    """The keys under ``<trust dir>/private``; signers are loaded (passphrase, PIN) only when asked for."""

    def __init__(self, trust_dir: Path, secrets: Secrets) -> None:
        self.folder = trust_dir / "private"
        self._secrets = secrets
        self._loaded: dict[str, Signer] = {}

    def _ensure_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, stat.S_IRWXU)

    def records(self) -> list[KeyRecord]:
        """Every key, oldest first."""
        if not self.folder.is_dir():
            return []
        found: list[KeyRecord] = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                obj = json.loads(path.read_bytes())
            except (OSError, ValueError) as e:
                raise KeyFileError(f"key record {path} cannot be read: {e}") from e
            found.append(KeyRecord.from_json(obj, path))
        return sorted(found, key=lambda r: (r.created, r.key_id))

    def find(self, *, role: str | None = None, gun: str | None = None, name: str | None = None) -> list[KeyRecord]:
        """The records with this role, GUN and name (``None``: any)."""
        return [
            r
            for r in self.records()
            if (role is None or r.role == role) and (gun is None or r.gun == gun) and (name is None or r.name == name)
        ]

    def _save(self, record: KeyRecord) -> KeyRecord:
        self._ensure_folder()
        path = self.folder / f"{record.key_id}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w") as f:
            json.dump(record.to_json(), f, indent=2, sort_keys=True)
        return record

    def _record(
        self, name: str, role: str, gun: str, backend: str, public: PublicKey, details: dict[str, str]
    ) -> KeyRecord:
        created = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return KeyRecord(public.key_id, name, role, gun, backend, public, created, details)

    def generate(
        self, *, name: str, role: str, gun: str = "", backend: str = "file", options: dict[str, str] | None = None
    ) -> KeyRecord:
        """Make a new key with ``backend`` and record it."""
        if role not in KEY_ROLES:
            raise KeyFileError(f"unknown key role {role!r} (one of {', '.join(KEY_ROLES)})")
        chosen = BACKENDS.get(backend)
        if chosen is None:
            raise KeyFileError(f"unknown key backend {backend!r} (one of {', '.join(BACKENDS)})")
        self._ensure_folder()
        made = chosen.generate(self.folder, name, options or {}, self._secrets)
        self._loaded[made.public.key_id] = made.signer
        return self._save(self._record(name, role, gun, backend, made.public, made.details))

    def import_file(self, path: Path, *, name: str, role: str, gun: str = "") -> KeyRecord:
        """Import a PEM private key (encrypted: its passphrase is asked for), stored encrypted under a passphrase."""
        if role not in KEY_ROLES:
            raise KeyFileError(f"unknown key role {role!r} (one of {', '.join(KEY_ROLES)})")
        try:
            data = path.read_bytes()
        except OSError as e:
            raise KeyFileError(f"cannot read {path}: {e.strerror}") from e
        private = read_private(data, lambda: self._secrets.passphrase(f"the key file {path}", confirm=False), str(path))
        self._ensure_folder()
        made = FileBackend().store(self.folder, private, name, self._secrets)
        self._loaded[made.public.key_id] = made.signer
        return self._save(self._record(name, role, gun, "file", made.public, {}))

    def signer(self, record: KeyRecord) -> Signer:
        """The signer of ``record`` (decrypted or opened once per run)."""
        if (found := self._loaded.get(record.key_id)) is None:
            public = record.public.key
            if not isinstance(public, ec.EllipticCurvePublicKey):
                raise KeyFileError(f"key {record.key_id} is not an EC key")
            found = BACKENDS[record.backend].load(self.folder, record.key_id, public, record.details, self._secrets)
            self._loaded[record.key_id] = found
        return found

    def holding(self, keys: dict[str, PublicKey]) -> Iterator[tuple[str, KeyRecord]]:
        """The keys of ``keys`` (ID as listed -> public key) that this store holds: (listed ID, record)."""
        mine = {spki(r.public): r for r in self.records()}
        for key_id, key in keys.items():
            try:
                record = mine.get(spki(key))
            except ValueError:
                continue
            if record is not None:
                yield key_id, record
