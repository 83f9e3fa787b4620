"""Client-side verification of a repository's Notary metadata: the trusted chain root -> timestamp -> snapshot ->
targets -> delegations, as the ``notary`` client checks it (``tuf/builder.go``, ``client/tufclient.go``).

A pure state machine fed bytes (python-tuf's ``TrustedMetadataSet``): the caller fetches and caches. Rules:

- root is trusted on first use (pinned in the trust dir) and must name the GUN as its certificates' CN; a
  newer root must be signed by the threshold of the pinned root *and* of itself, one version at a time;
- every role meets its threshold with the keys its parent lists, its hashes and length match what the
  snapshot (or, for the snapshot, the timestamp) says, and it has not expired;
- no version is lower than the one last seen (``floors``, from the cache): a server that replays older,
  validly signed metadata is refused, as notary refuses it ("version 7 is lower than current version 8").

Not here: HTTP, files, publishing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, TypeVar

from trustyard.errors import TrustyardError
from trustyard.trust.errors import TrustError
from trustyard.trust.keys import KeyFormatError, PublicKey
from trustyard.trust.metadata import (
    DelegatedRole,
    FileMeta,
    Root,
    Signed,
    Snapshot,
    Targets,
    Timestamp,
    is_delegation,
    parse_metadata,
)

__all__ = ["ChainError", "SignedTarget", "TrustClientError", "TrustedChain"]

MAX_DELEGATION_DEPTH: Final = 16  # notary walks at most this deep too (visitTargets' maxDelegations is larger)
T = TypeVar("T", Root, Targets, Snapshot, Timestamp)


class TrustClientError(TrustyardError):
    """Root of the client-side trust family (the CLI maps it to its exit codes)."""


class ChainError(TrustClientError):
    """Metadata that does not verify: forged, replayed, expired, mixed-and-matched or under another root."""


class _RefusedError(TrustError):
    """Internal: the metadata verifier's refusal, turned into a ``ChainError`` at the boundary."""


@dataclass(frozen=True, slots=True)
class SignedTarget:
    """A target name as one role signs it."""

    name: str
    meta: FileMeta
    role: str

    @property
    def sha256(self) -> str | None:
        """Hex SHA-256 (for an image: the manifest digest without ``sha256:``), if the role lists one."""
        digest = self.meta.hashes.get("sha256")
        return digest.hex() if digest is not None else None


def _parse(role: str, raw: bytes, kind: type[T]) -> Signed[T]:
    try:
        return parse_metadata(role, raw, kind)
    except TrustError as e:
        raise ChainError(f"{role} metadata is malformed: {e.message}") from e


def _verify(signed: Signed[T], keys: dict[str, PublicKey], threshold: int, what: str) -> None:
    try:
        signed.verify(keys, threshold, _RefusedError, what)
    except _RefusedError as e:
        raise ChainError(e.message) from e


@dataclass
class TrustedChain:
    """The verified metadata of one GUN at one moment; each ``load_*`` either extends it or raises."""

    gun: str
    now: datetime
    floors: dict[str, int] = field(default_factory=dict)
    root: Signed[Root] | None = None
    timestamp: Signed[Timestamp] | None = None
    snapshot: Signed[Snapshot] | None = None
    targets: dict[str, Signed[Targets]] = field(default_factory=dict)

    # ---- root ------------------------------------------------------------------------------------------------
    def _check_root_keys(self, root: Signed[Root]) -> None:
        for key in root.body.role_keys("root").values():
            if key.certificate is None:
                raise ChainError(f"root version {root.version}: the root key {key.key_id} is not a certificate")
            if key.common_name() != self.gun:
                raise ChainError(
                    f"root version {root.version} is for {key.common_name()!r}, not {self.gun!r}: refusing a root "
                    "certificate issued for another repository"
                )

    def _self_signed(self, raw: bytes) -> Signed[Root]:
        root = _parse("root", raw, Root)
        self._check_root_keys(root)
        _verify(root, root.body.role_keys("root"), root.body.roles["root"].threshold, "root")
        return root

    def pin_root(self, raw: bytes) -> None:
        """Trust ``raw`` as the root: the pinned copy from the trust dir, or the server's on first use (TOFU)."""
        self.root = self._self_signed(raw)

    def update_root(self, raw: bytes) -> None:
        """Move to the next root version: signed by the pinned root's threshold and by its own."""
        if self.root is None:
            raise ChainError("no trusted root to update from")
        if raw == self.root.raw:
            return
        new = self._self_signed(raw)
        old = self.root
        if new.version <= old.version:
            raise ChainError(f"root version {new.version} is lower than current version {old.version}")
        if new.version != old.version + 1:
            raise ChainError(f"root version {new.version} does not follow version {old.version}")
        _verify(new, old.body.role_keys("root"), old.body.roles["root"].threshold, "root (by the previous root)")
        self.root = new
        self.timestamp, self.snapshot, self.targets = None, None, {}

    def check_root_fresh(self) -> None:
        """Refuse an expired root (after any update: a newer root may replace an expired one)."""
        root = self._need_root()
        if root.expires <= self.now:
            raise ChainError(f"root expired at {root.expires:%Y-%m-%d %H:%M:%S} UTC")
        for key in root.body.role_keys("root").values():
            try:
                key.check_certificate(self.now)
            except KeyFormatError as e:
                raise ChainError(f"root: {e}") from e

    def _need_root(self) -> Signed[Root]:
        if self.root is None:
            raise ChainError("no trusted root")
        return self.root

    # ---- timestamp, snapshot, targets --------------------------------------------------------------------------
    def _fresh(self, role: str, signed: Signed[T]) -> None:
        floor = self.floors.get(role, 0)
        if signed.version < floor:
            raise ChainError(f"{role} version {signed.version} is lower than current version {floor}")
        if signed.expires <= self.now:
            raise ChainError(f"{role} expired at {signed.expires:%Y-%m-%d %H:%M:%S} UTC")

    def load_timestamp(self, raw: bytes) -> Signed[Timestamp]:
        """Verify the timestamp against root's timestamp keys, the version floor and its expiry."""
        root = self._need_root().body
        ts = _parse("timestamp", raw, Timestamp)
        _verify(ts, root.role_keys("timestamp"), root.roles["timestamp"].threshold, "timestamp")
        self._fresh("timestamp", ts)
        self.timestamp = ts
        return ts

    def snapshot_sha256(self) -> str:
        """Hex SHA-256 of the snapshot the timestamp names: the name to fetch it by."""
        if self.timestamp is None:
            raise ChainError("no trusted timestamp")
        return _sha256_hex(self.timestamp.body.snapshot, "snapshot")

    def load_snapshot(self, raw: bytes) -> Signed[Snapshot]:
        """Verify the snapshot: the bytes the timestamp names, root's snapshot keys, floor, expiry, our root."""
        root = self._need_root()
        if self.timestamp is None:
            raise ChainError("no trusted timestamp")
        if not self.timestamp.body.snapshot.matches(raw):
            raise ChainError("checksum for snapshot did not match what the timestamp lists")
        snap = _parse("snapshot", raw, Snapshot)
        _verify(snap, root.body.role_keys("snapshot"), root.body.roles["snapshot"].threshold, "snapshot")
        self._fresh("snapshot", snap)
        listed_root = snap.body.meta.get("root")
        if listed_root is not None and not listed_root.matches(root.raw):
            raise ChainError("the snapshot lists another root than the trusted one (mix-and-match)")
        self.snapshot = snap
        return snap

    def role_sha256(self, role: str) -> str | None:
        """Hex SHA-256 the snapshot lists for ``role``; ``None`` when the role has no metadata yet."""
        if self.snapshot is None:
            raise ChainError("no trusted snapshot")
        meta = self.snapshot.body.meta.get(role)
        return None if meta is None else _sha256_hex(meta, role)

    def delegation(self, role: str) -> DelegatedRole:
        """The verified delegation that names ``role`` (its parent must be loaded)."""
        parent = role.rsplit("/", 1)[0]
        parent_md = self.targets.get(parent)
        found = parent_md.body.delegations.get(role) if parent_md is not None else None
        if found is None:
            raise ChainError(f"{role} is not delegated by {parent}")
        return found

    def load_targets(self, role: str, raw: bytes) -> Signed[Targets]:
        """Verify ``targets`` or a delegation: the bytes the snapshot lists, its parent's keys, floor, expiry."""
        root = self._need_root().body
        if self.snapshot is None:
            raise ChainError("no trusted snapshot")
        meta = self.snapshot.body.meta.get(role)
        if meta is None or not meta.matches(raw):
            raise ChainError(f"checksum for {role} did not match what the snapshot lists")
        md = _parse(role, raw, Targets)
        if is_delegation(role):
            delegated = self.delegation(role)
            parent = self.targets[role.rsplit("/", 1)[0]].body.delegations
            keys = {k: parent.keys[k] for k in delegated.keyids if k in parent.keys}
            _verify(md, keys, delegated.threshold, role)
        else:
            _verify(md, root.role_keys("targets"), root.roles["targets"].threshold, "targets")
        self._fresh(role, md)
        self.targets[role] = md
        return md

    def delegated_roles(self, parent: str) -> list[DelegatedRole]:
        """The roles ``parent`` delegates to, in its order (notary's pre-order walk)."""
        md = self.targets.get(parent)
        return list(md.body.delegations.roles) if md is not None else []

    # ---- results ---------------------------------------------------------------------------------------------
    def signed_targets(self) -> list[SignedTarget]:
        """Every target of every loaded role that the role may sign (delegation paths apply along the way)."""
        found: list[SignedTarget] = []

        def walk(role: str, allowed: tuple[DelegatedRole, ...], depth: int) -> None:
            md = self.targets.get(role)
            if md is None or depth > MAX_DELEGATION_DEPTH:
                return
            for name, meta in sorted(md.body.targets.items()):
                if all(d.allows(name) for d in allowed):
                    found.append(SignedTarget(name, meta, role))
            for child in md.body.delegations.roles:
                if child.name.rsplit("/", 1)[0] == role:
                    walk(child.name, (*allowed, child), depth + 1)

        walk("targets", (), 0)
        return found

    def verified_files(self) -> dict[str, bytes]:
        """Role -> the exact bytes that verified, to pin in the trust dir."""
        files: dict[str, bytes] = {}
        if self.root is not None:
            files["root"] = self.root.raw
        if self.timestamp is not None:
            files["timestamp"] = self.timestamp.raw
        if self.snapshot is not None:
            files["snapshot"] = self.snapshot.raw
        files.update({role: md.raw for role, md in self.targets.items()})
        return files


def _sha256_hex(meta: FileMeta, role: str) -> str:
    digest = meta.hashes.get("sha256")
    if digest is None:
        raise ChainError(f"the metadata lists no sha256 for {role}")
    return digest.hex()
