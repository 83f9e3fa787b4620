"""Building and signing Notary metadata on the publisher's side: a new repository, and edits of a verified one.

Everything here is pure: it takes the verified chain (``client_chain``) and signers, and returns the files of
one multipart update, byte for byte what the server will store and serve. It writes what the ``notary``
client writes (notes/notary-v1.md section 4): the canonical JSON of ``signed`` inside a compact envelope,
ECDSA signatures as base64 raw ``r‖s`` with method ``ecdsa``, versions one above the verified ones, notary's
default expiries (root 10 years, targets, delegations and snapshot 3 years), snapshot meta with sha256 and
sha512 of every role. Snapshot is signed here only when the publisher holds its key; otherwise the server
signs it (``--server-snapshot`` / ``key rotate snapshot --server``).

Not here: fetching and posting (``client``), keys on disk (``keyfiles``).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from trustyard.trust.client_chain import TrustClientError, TrustedChain
from trustyard.trust.keys import PublicKey, canonical
from trustyard.trust.metadata import FileMeta, format_expires, is_delegation
from trustyard.trust.signers import Signer

__all__ = ["EXPIRY", "Draft", "MissingKeyError", "RoleSigners", "envelope", "new_repository"]

EXPIRY: Final = {
    "root": timedelta(days=3650),
    "targets": timedelta(days=3 * 365),
    "snapshot": timedelta(days=3 * 365),
}
METHOD: Final = "ecdsa"


class MissingKeyError(TrustClientError):
    """The publisher holds too few of the keys a role must be signed with."""


RoleSigners = Sequence[tuple[str, Signer]]
"""(key ID as the metadata lists it, signer) pairs that sign one role."""


def envelope(signed: dict[str, Any], signers: RoleSigners) -> bytes:
    """``{"signed": …, "signatures": […]}`` with every signer's signature over the canonical ``signed``."""
    body = canonical(signed)
    signatures = [
        {"keyid": key_id, "method": METHOD, "sig": base64.b64encode(signer.sign(body)).decode()}
        for key_id, signer in signers
    ]
    return b'{"signed":' + body + b',"signatures":' + json.dumps(signatures, separators=(",", ":")).encode() + b"}"


def _keys_json(keys: dict[str, PublicKey]) -> dict[str, Any]:
    return {key_id: key.to_json() for key_id, key in keys.items()}


def _role(*keys: PublicKey) -> dict[str, Any]:
    return {"keyids": [k.key_id for k in keys], "threshold": 1}


def root_body(
    *, root: PublicKey, targets: PublicKey, snapshot: PublicKey, timestamp: PublicKey, version: int, now: datetime
) -> dict[str, Any]:
    """The ``signed`` member of a root naming one key per base role."""
    keys = {k.key_id: k for k in (root, targets, snapshot, timestamp)}
    return {
        "_type": "Root",
        "consistent_snapshot": False,
        "expires": format_expires(now + EXPIRY["root"]),
        "keys": _keys_json(keys),
        "roles": {
            "root": _role(root),
            "snapshot": _role(snapshot),
            "targets": _role(targets),
            "timestamp": _role(timestamp),
        },
        "version": version,
    }


def _empty_targets(now: datetime, expiry: timedelta) -> dict[str, Any]:
    return {
        "_type": "Targets",
        "delegations": {"keys": {}, "roles": []},
        "expires": format_expires(now + expiry),
        "targets": {},
        "version": 0,
    }


def _snapshot_body(files: dict[str, bytes], version: int, now: datetime) -> dict[str, Any]:
    return {
        "_type": "Snapshot",
        "expires": format_expires(now + EXPIRY["snapshot"]),
        "meta": {role: FileMeta.of(data).to_json() for role, data in sorted(files.items())},
        "version": version,
    }


def new_repository(
    *,
    root: tuple[PublicKey, Signer],
    targets: tuple[PublicKey, Signer],
    snapshot: tuple[PublicKey, Signer | None],
    timestamp: PublicKey,
    now: datetime,
) -> dict[str, bytes]:
    """The first update of a GUN: root v1, empty targets v1, and snapshot v1 when the publisher signs it."""
    body = root_body(root=root[0], targets=targets[0], snapshot=snapshot[0], timestamp=timestamp, version=1, now=now)
    files = {"root": envelope(body, [(root[0].key_id, root[1])])}
    empty = _empty_targets(now, EXPIRY["targets"]) | {"version": 1}
    files["targets"] = envelope(empty, [(targets[0].key_id, targets[1])])
    if snapshot[1] is not None:
        files["snapshot"] = envelope(_snapshot_body(files, 1, now), [(snapshot[0].key_id, snapshot[1])])
    return files


def target_meta(size: int, sha256_hex: str) -> dict[str, Any]:
    """A target entry as Docker writes it for an image: the manifest's length and sha256 (base64)."""
    return {"hashes": {"sha256": base64.b64encode(bytes.fromhex(sha256_hex)).decode()}, "length": size}


@dataclass
class Draft:
    """Edits of a verified repository, turned into one signed update by ``files``.

    ``signed(role)`` hands out a mutable copy of a role's ``signed`` member (an empty body for a delegation
    that has no metadata yet); ``files`` bumps the version of each edited role, re-signs it with ``signers``
    and, when ``snapshot_signers`` is given, writes a snapshot naming the new bytes.
    """

    chain: TrustedChain
    now: datetime
    edited: dict[str, dict[str, Any]] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)

    def signed(self, role: str) -> dict[str, Any]:
        """The editable ``signed`` member of ``role``."""
        if role not in self.edited:
            current = self._current(role)
            if current is not None:
                self.edited[role] = copy.deepcopy(json.loads(current)["signed"])
            elif is_delegation(role):
                self.edited[role] = _empty_targets(self.now, EXPIRY["targets"])
            else:
                raise TrustClientError(f"the repository has no {role} metadata to edit")
        return self.edited[role]

    def _current(self, role: str) -> bytes | None:
        if role == "root":
            return self.chain.root.raw if self.chain.root is not None else None
        md = self.chain.targets.get(role)
        return md.raw if md is not None else None

    def _version(self, role: str) -> int:
        if role == "root":
            return self.chain.root.version if self.chain.root is not None else 0
        md = self.chain.targets.get(role)
        return md.version if md is not None else 0

    def files(self, signers: dict[str, RoleSigners], snapshot_signers: RoleSigners | None) -> dict[str, bytes]:
        """The update: every edited role re-signed, plus a new snapshot when the publisher signs it."""
        files: dict[str, bytes] = {}
        for role, body in self.edited.items():
            role_signers = signers.get(role)
            if not role_signers:
                raise MissingKeyError(f"no key to sign {role} with")
            body["version"] = self._version(role) + 1
            body["expires"] = format_expires(self.now + EXPIRY["root" if role == "root" else "targets"])
            files[role] = envelope(body, role_signers)
        if snapshot_signers is not None:
            current = {r: m.raw for r, m in self.chain.targets.items() if r not in self.removed}
            if self.chain.root is not None:
                current["root"] = self.chain.root.raw
            current.update(files)
            version = self.chain.snapshot.version + 1 if self.chain.snapshot is not None else 1
            files["snapshot"] = envelope(_snapshot_body(current, version, self.now), snapshot_signers)
        return files
