"""Whether an update may be accepted: the rules notary-server applies to every POST, as a pure function.

Given what is stored for a GUN and the uploaded files, ``validate_update`` returns the typed, verified update or
raises the ``TrustError`` notary-server would have answered (``server/handlers/validation.go``, in its order):

1. root, if uploaded: exactly one version above the stored one, signed by the thresholds of the old *and*
   the new root (rotation), every root key an x509 certificate naming the GUN and valid now, not expired, and
   listing a timestamp key the server holds (the server must be able to sign the timestamp);
2. targets and delegations: delegated by their parent (as uploaded, else as stored), signed by its threshold
   of the keys the parent names, every target inside the delegation's path prefixes, not expired; a new root
   that changes the targets keys needs targets signed by the new keys;
3. snapshot: if uploaded, signed by the root's snapshot keys, not expired, and naming exactly the bytes that
   will be current for every role it lists (a mix of old targets and a new snapshot is refused); if not
   uploaded, the server must hold the snapshot key the root lists (it will then sign one itself);
4. every uploaded version strictly above the stored one (``VERSION``), checked after the signatures as the
   real server's store does.

The timestamp is never uploaded; the server always makes it. No I/O happens here: the caller reads the
stored state and writes the result (python-tuf's ``TrustedMetadataSet`` split).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from trustyard.trust.errors import (
    BadHierarchyError,
    BadRootError,
    BadSnapshotError,
    BadTargetsError,
    InvalidRoleError,
    InvalidUpdateError,
    ValidationFailedError,
    VersionError,
)
from trustyard.trust.keys import KeyFormatError, PublicKey
from trustyard.trust.metadata import (
    DelegatedRole,
    Root,
    Signed,
    Snapshot,
    Targets,
    is_delegation,
    is_valid_role,
    parse_metadata,
)

__all__ = ["RepositoryState", "ValidatedUpdate", "go_time", "validate_update"]


@dataclass(frozen=True, slots=True)
class RepositoryState:
    """What is stored for a GUN: the current root, targets roles and snapshot (all optional for a new GUN)."""

    root: Signed[Root] | None = None
    targets: Mapping[str, Signed[Targets]] = field(default_factory=dict)
    snapshot: Signed[Snapshot] | None = None


@dataclass(frozen=True, slots=True)
class ValidatedUpdate:
    """An accepted update: the new root (if any), targets roles and snapshot (``None``: server must sign one)."""

    root: Signed[Root]
    root_changed: bool
    targets: dict[str, Signed[Targets]]
    snapshot: Signed[Snapshot] | None
    current_targets: dict[str, Signed[Targets]]

    def current_bytes(self) -> dict[str, bytes]:
        """The bytes that are current after the update for root, targets and every delegation."""
        out = {"root": self.root.raw}
        out.update({name: s.raw for name, s in self.current_targets.items()})
        return out


def go_time(value: datetime) -> str:
    """A time as Go's ``time.UnixDate`` prints it in notary's error messages (``Sat Jan 1 00:00:00 UTC 2000``)."""
    return f"{value:%a %b} {value.day} {value:%H:%M:%S} UTC {value.year}"


def _check_expiry(
    s: Signed[Root] | Signed[Targets] | Signed[Snapshot], now: datetime, error: type[InvalidUpdateError]
) -> None:
    if s.expires <= now:
        raise error(f"{s.role} expired at {go_time(s.expires)}")


def _check_root_keys(root: Root, gun: str, now: datetime) -> None:
    """Every root key must be a certificate whose CN is the GUN and that is valid now (``trustpinning``)."""
    for key in root.role_keys("root").values():
        if key.certificate is None:
            raise BadRootError(f"root key {key.key_id} is not an x509 certificate")
        cn = key.common_name()
        if cn != gun:
            raise BadRootError(f"root certificate CN {cn!r} does not match the GUN {gun!r}")
        try:
            key.check_certificate(now)
        except KeyFormatError as e:
            raise BadRootError(str(e)) from e


def _validate_root(
    gun: str, raw: bytes, old: Signed[Root] | None, held: Mapping[str, frozenset[str]], now: datetime
) -> Signed[Root]:
    new = parse_metadata("root", raw, Root)
    _check_root_keys(new.body, gun, now)
    if old is not None:
        old_role = old.body.roles["root"]
        new.verify(old.body.role_keys("root"), old_role.threshold, BadRootError, "root (rotation: previous root)")
    new.verify(new.body.role_keys("root"), new.body.roles["root"].threshold, BadRootError, "root")
    _check_expiry(new, now, BadRootError)
    if old is not None:
        if new.version <= old.version:
            raise VersionError(f"root version {new.version} is not above {old.version}")
        if new.version != old.version + 1:
            raise BadRootError(f"root version must be {old.version + 1}, got {new.version}")
    if not set(new.body.roles["timestamp"].keyids) & held.get("timestamp", frozenset()):
        raise BadRootError("root does not list a timestamp key held by the server; fetch timestamp.key first")
    return new


def _parent_delegation(name: str, current: Mapping[str, Signed[Targets]]) -> tuple[Signed[Targets], DelegatedRole]:
    parent_name = name.rsplit("/", 1)[0]
    parent = current.get(parent_name)
    if parent is None:
        raise BadHierarchyError(f"parent role {parent_name} of {name} does not exist", missing=parent_name)
    role = parent.body.delegations.get(name)
    if role is None:
        raise BadHierarchyError(f"{parent_name} does not delegate to {name}", missing=name)
    return parent, role


def _validate_targets(
    name: str, raw: bytes, root: Root, current: Mapping[str, Signed[Targets]], now: datetime
) -> Signed[Targets]:
    new = parse_metadata(name, raw, Targets)
    if not is_delegation(name):
        new.verify(root.role_keys("targets"), root.roles["targets"].threshold, BadTargetsError, name)
        paths: tuple[str, ...] | None = None
    else:
        parent, role = _parent_delegation(name, current)
        keys: dict[str, PublicKey] = {
            k: parent.body.delegations.keys[k] for k in role.keyids if k in parent.body.delegations.keys
        }
        new.verify(keys, role.threshold, BadTargetsError, name)
        paths = role.paths
        for target in new.body.targets:
            if not role.allows(target):
                raise BadTargetsError(f"{name} signs target {target[:100]!r}, outside its delegated paths")
    for child in new.body.delegations.roles:
        if not child.name.startswith(name + "/"):
            raise BadTargetsError(f"{name} may only delegate to {name}/…, not {child.name}")
        if paths is not None and not all(any(p.startswith(q) for q in paths) for p in child.paths):
            raise BadTargetsError(f"{child.name} is given paths outside those of {name}")
    _check_expiry(new, now, BadTargetsError)
    return new


def _check_snapshot_names(snapshot: Snapshot, current: Mapping[str, bytes], updated: set[str]) -> None:
    for name in ("root", "targets"):
        if name not in snapshot.meta:
            raise BadSnapshotError(f"snapshot does not list {name}")
    for name in updated:
        if name not in snapshot.meta:
            raise BadSnapshotError(f"snapshot does not list {name}, which the update changes")
    for name, meta in snapshot.meta.items():
        data = current.get(name)
        if data is None:
            raise BadSnapshotError(f"snapshot lists {name}, which does not exist")
        if not meta.matches(data):
            raise BadSnapshotError(f"snapshot has the wrong hashes for {name}: it names other {name} metadata")


def validate_update(
    gun: str,
    files: Mapping[str, bytes],
    state: RepositoryState,
    *,
    held_keys: Mapping[str, frozenset[str]],
    now: datetime,
) -> ValidatedUpdate:
    """Validate the uploaded ``files`` (role -> exact bytes) against ``state``; raise a ``TrustError``.

    ``held_keys`` maps ``timestamp``/``snapshot`` to the IDs of the keys the server can sign with (pending
    rotations included, so a root that adopts a freshly generated key is accepted).
    """
    for role in files:
        if not is_valid_role(role):
            raise InvalidRoleError(role)
    if "timestamp" in files:
        raise ValidationFailedError("the timestamp is made by the server and cannot be uploaded")
    if state.root is None and "root" not in files:
        raise ValidationFailedError("no pre-existing root and no root provided in update.")
    root = state.root
    root_changed = "root" in files
    if root_changed:
        root = _validate_root(gun, files["root"], state.root, held_keys, now)
    if root is None:  # unreachable: the check above, spelt out for the type checker
        raise ValidationFailedError("no pre-existing root and no root provided in update.")

    # parents before children, so a delegation added in the same update can be used by it
    current: dict[str, Signed[Targets]] = dict(state.targets)
    updated: dict[str, Signed[Targets]] = {}
    for name in sorted((r for r in files if r.startswith("targets")), key=lambda r: r.count("/")):
        new = _validate_targets(name, files[name], root.body, current, now)
        current[name] = updated[name] = new
    if "targets" not in current:
        raise BadHierarchyError("the repository has no targets metadata", missing="targets")
    if root_changed and "targets" not in updated:
        # a root that changes the targets keys must come with targets those keys signed
        current["targets"].verify(
            root.body.role_keys("targets"), root.body.roles["targets"].threshold, BadTargetsError, "targets"
        )
    # roles the parent no longer delegates to stop being current
    current = {n: s for n, s in current.items() if not is_delegation(n) or _is_delegated(n, current)}

    snapshot: Signed[Snapshot] | None = None
    if "snapshot" in files:
        snapshot = parse_metadata("snapshot", files["snapshot"], Snapshot)
        snapshot.verify(
            root.body.role_keys("snapshot"), root.body.roles["snapshot"].threshold, BadSnapshotError, "snapshot"
        )
        _check_expiry(snapshot, now, BadSnapshotError)
        current_bytes = {"root": root.raw} | {n: s.raw for n, s in current.items()}
        _check_snapshot_names(snapshot.body, current_bytes, set(updated) | ({"root"} if root_changed else set()))
    elif not set(root.body.roles["snapshot"].keyids) & held_keys.get("snapshot", frozenset()):
        raise BadHierarchyError(
            "no snapshot was included in update and server does not hold current snapshot key for repository",
            missing="snapshot",
        )

    if root_changed and state.root is not None and root.version <= state.root.version:
        raise VersionError("root")
    for name, new in updated.items():
        old = state.targets.get(name)
        if old is not None and new.version <= old.version:
            raise VersionError(f"{name} version {new.version} is not above {old.version}")
    if snapshot is not None and state.snapshot is not None and snapshot.version <= state.snapshot.version:
        raise VersionError(f"snapshot version {snapshot.version} is not above {state.snapshot.version}")
    return ValidatedUpdate(root, root_changed, updated, snapshot, current)


def _is_delegated(name: str, current: Mapping[str, Signed[Targets]]) -> bool:
    parent = current.get(name.rsplit("/", 1)[0])
    if parent is None or parent.body.delegations.get(name) is None:
        return False
    return not is_delegation(parent.role) or _is_delegated(parent.role, current)
