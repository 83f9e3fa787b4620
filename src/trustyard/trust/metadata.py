"""Notary-format TUF metadata, parsed once from the signed bytes into typed, immutable objects.

Notary v1 speaks its own dialect of TUF (capitalised ``_type``, no ``spec_version``, base64 hashes, snapshot
meta without versions keyed by role name, delegation ``paths`` as string prefixes, x509 root keys), which
python-tuf cannot read (notes/notary-v1.md section 4), so this is a small model of exactly that dialect.
``Signed[T]`` keeps the uploaded bytes next to the typed body: hashes and lengths in snapshot and timestamp
refer to those exact bytes, so they are stored and served unchanged and never re-serialised. Signatures are
checked over the canonical JSON of the ``signed`` member, as notary does.

Not here: which update is acceptable given what is stored (``validation``), storage, HTTP.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar, cast

from trustyard.trust.errors import MalformedJSONError, TrustError
from trustyard.trust.keys import KeyFormatError, PublicKey, SignatureError, canonical

__all__ = [
    "BASE_ROLES",
    "MAX_NAME",
    "DelegatedRole",
    "Delegations",
    "FileMeta",
    "Role",
    "Root",
    "Signature",
    "Signed",
    "Snapshot",
    "Targets",
    "Timestamp",
    "format_expires",
    "is_delegation",
    "is_valid_role",
    "parse_expires",
    "parse_metadata",
]

BASE_ROLES: Final = ("root", "targets", "snapshot", "timestamp")
MAX_NAME: Final = 255  # longest GUN or role name the database stores
MAX_VERSION: Final = 2**31 - 1  # versions are 32-bit integers in the database (and in notary's)
_ROLE: Final = re.compile(r"^(?:root|snapshot|timestamp|targets(?:/[^/\s]+)*)$")
_EXPIRES: Final = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)$")
_HASHES: Final = {"sha256": 32, "sha512": 64}
_TYPES: Final = {"root": "Root", "targets": "Targets", "snapshot": "Snapshot", "timestamp": "Timestamp"}

T = TypeVar("T", "Root", "Targets", "Snapshot", "Timestamp")


def is_valid_role(name: str) -> bool:
    """Whether ``name`` is a role notary accepts: a base role or ``targets/<x>[/<y>…]`` (stored in 255 chars)."""
    return len(name) <= MAX_NAME and bool(_ROLE.match(name))


def is_delegation(name: str) -> bool:
    """Whether ``name`` is a delegated targets role (``targets/…``)."""
    return name.startswith("targets/")


def parse_expires(text: Any) -> datetime:
    """Parse Go's RFC 3339 (nanoseconds allowed) into an aware UTC datetime; microseconds are kept."""
    if not isinstance(text, str) or not (m := _EXPIRES.match(text)):
        raise MalformedJSONError(f"expires {str(text)[:40]!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    try:
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC)
        if zone not in ("Z", "z"):
            sign = 1 if zone[0] == "+" else -1
            value -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    except (ValueError, OverflowError) as e:
        raise MalformedJSONError(f"expires {text[:40]!r}: {e}") from e
    return value


def format_expires(value: datetime) -> str:
    """Format as Go does for metadata the server signs (UTC, ``Z``, fractional seconds only when non-zero)."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedJSONError(f"{what} must be an object")
    return value


def _int(value: Any, what: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_VERSION:
        raise MalformedJSONError(f"{what} must be an integer from {minimum} to {MAX_VERSION}")
    return value


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedJSONError(f"{what} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class FileMeta:
    """Length and hashes (raw digests) of a file, as in snapshot, timestamp and targets entries."""

    length: int
    hashes: dict[str, bytes]

    @classmethod
    def from_json(cls, obj: Any, what: str) -> FileMeta:
        """Parse ``{"hashes": {alg: base64}, "length": n}``; at least one known hash is required."""
        obj = _obj(obj, what)
        length = _int(obj.get("length"), f"{what}.length", minimum=0)
        hashes: dict[str, bytes] = {}
        for alg, value in _obj(obj.get("hashes"), f"{what}.hashes").items():
            if not isinstance(value, str):
                raise MalformedJSONError(f"{what}.hashes.{alg} must be base64")
            try:
                hashes[alg] = base64.b64decode(value, validate=True)
            except ValueError as e:  # binascii.Error, or non-ASCII text
                raise MalformedJSONError(f"{what}.hashes.{alg} is not base64") from e
            if alg in _HASHES and len(hashes[alg]) != _HASHES[alg]:
                raise MalformedJSONError(f"{what}.hashes.{alg} has the wrong length")
        if not set(hashes) & set(_HASHES):
            raise MalformedJSONError(f"{what} has no sha256 or sha512 hash")
        return cls(length=length, hashes=hashes)

    @classmethod
    def of(cls, data: bytes) -> FileMeta:
        """The meta notary writes for ``data``: its length, sha256 and sha512."""
        return cls(len(data), {"sha256": hashlib.sha256(data).digest(), "sha512": hashlib.sha512(data).digest()})

    def to_json(self) -> dict[str, Any]:
        """The wire form, hashes base64."""
        return {"hashes": {k: base64.b64encode(v).decode() for k, v in self.hashes.items()}, "length": self.length}

    def matches(self, data: bytes) -> bool:
        """Whether ``data`` has this length and every known hash listed (unknown algorithms are not trusted)."""
        if len(data) != self.length:
            return False
        known = [alg for alg in self.hashes if alg in _HASHES]
        return bool(known) and all(hashlib.new(alg, data).digest() == self.hashes[alg] for alg in known)


@dataclass(frozen=True, slots=True)
class Role:
    """Which keys sign a role and how many must."""

    keyids: tuple[str, ...]
    threshold: int

    @classmethod
    def from_json(cls, obj: Any, what: str) -> Role:
        """Parse ``{"keyids": [...], "threshold": n}``."""
        obj = _obj(obj, what)
        return cls(
            _str_list(obj.get("keyids"), f"{what}.keyids"), _int(obj.get("threshold"), f"{what}.threshold", minimum=1)
        )


def _keys(obj: Any, what: str) -> dict[str, PublicKey]:
    keys: dict[str, PublicKey] = {}
    for key_id, key_obj in _obj(obj, what).items():
        try:
            key = PublicKey.from_json(key_obj)
        except KeyFormatError as e:
            raise MalformedJSONError(f"{what}.{key_id[:70]}: {e}") from e
        if key.key_id != key_id:
            raise MalformedJSONError(f"{what}: key listed as {key_id[:70]} has ID {key.key_id}")
        keys[key_id] = key
    return keys


@dataclass(frozen=True, slots=True)
class Root:
    """The root role: every top-level key and which keys sign which role."""

    version: int
    expires: datetime
    keys: dict[str, PublicKey]
    roles: dict[str, Role]
    consistent_snapshot: bool

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Root:
        """Parse the ``signed`` member of root.json; every base role must be present."""
        keys = _keys(obj.get("keys"), "keys")
        roles = {name: Role.from_json(r, f"roles.{name}") for name, r in _obj(obj.get("roles"), "roles").items()}
        for name in BASE_ROLES:
            if name not in roles:
                raise MalformedJSONError(f"root has no {name} role")
        for name, role in roles.items():
            if len(set(role.keyids) & set(keys)) < role.threshold:
                raise MalformedJSONError(f"root lists fewer known keys for {name} than its threshold")
        cs = obj.get("consistent_snapshot", False)
        if not isinstance(cs, bool):
            raise MalformedJSONError("consistent_snapshot must be a boolean")
        return cls(_version(obj), parse_expires(obj.get("expires")), keys, roles, cs)

    def role_keys(self, name: str) -> dict[str, PublicKey]:
        """The keys trusted for base role ``name``."""
        return {k: self.keys[k] for k in self.roles[name].keyids if k in self.keys}


@dataclass(frozen=True, slots=True)
class DelegatedRole:
    """A delegation: its name, keys, threshold and the target-name prefixes it may sign (``""`` = all)."""

    name: str
    keyids: tuple[str, ...]
    threshold: int
    paths: tuple[str, ...]

    def allows(self, target: str) -> bool:
        """Whether this role may sign ``target``: notary matches paths as plain string prefixes."""
        return any(target.startswith(p) for p in self.paths)


@dataclass(frozen=True, slots=True)
class Delegations:
    """The keys and roles a targets role delegates to."""

    keys: dict[str, PublicKey]
    roles: tuple[DelegatedRole, ...]

    @classmethod
    def from_json(cls, obj: Any) -> Delegations:
        """Parse ``{"keys": {...}, "roles": [{keyids, name, paths, threshold}]}``."""
        # Go marshals an empty (nil) map or slice as null: notary sends "roles": null after a delegation removal
        obj = _obj(obj, "delegations")
        keys = _keys(obj.get("keys") or {}, "delegations.keys")
        roles_json = obj.get("roles") or []
        if not isinstance(roles_json, list):
            raise MalformedJSONError("delegations.roles must be a list")
        roles: list[DelegatedRole] = []
        for i, r in enumerate(roles_json):
            r = _obj(r, f"delegations.roles[{i}]")
            name = r.get("name")
            if not isinstance(name, str) or not is_delegation(name) or not is_valid_role(name):
                raise MalformedJSONError(f"delegations.roles[{i}].name is not a delegated role name")
            role = Role.from_json(r, f"delegations.roles[{i}]")
            paths = _str_list(r.get("paths") or [], f"delegations.roles[{i}].paths")
            roles.append(DelegatedRole(name, role.keyids, role.threshold, paths))
        if len({r.name for r in roles}) != len(roles):
            raise MalformedJSONError("a delegation is listed twice")
        return cls(keys, tuple(roles))

    def get(self, name: str) -> DelegatedRole | None:
        """The delegation called ``name``, if any."""
        return next((r for r in self.roles if r.name == name), None)


@dataclass(frozen=True, slots=True)
class Targets:
    """A targets role (top-level or delegated): signed target names with hashes, and delegations."""

    version: int
    expires: datetime
    targets: dict[str, FileMeta]
    delegations: Delegations

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Targets:
        """Parse the ``signed`` member of a targets role."""
        targets = {
            name: FileMeta.from_json(meta, f"targets.{name[:70]}")
            for name, meta in _obj(obj.get("targets") or {}, "targets").items()
        }
        delegations = Delegations.from_json(obj.get("delegations") or {"keys": {}, "roles": []})
        return cls(_version(obj), parse_expires(obj.get("expires")), targets, delegations)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The snapshot: the hashes and length of root, targets and every delegation at one moment."""

    version: int
    expires: datetime
    meta: dict[str, FileMeta]

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Snapshot:
        """Parse the ``signed`` member of snapshot.json; entries are keyed by role name, without ``.json``."""
        meta = {name: FileMeta.from_json(m, f"meta.{name[:70]}") for name, m in _obj(obj.get("meta"), "meta").items()}
        for name in meta:
            if not is_valid_role(name) or name in ("snapshot", "timestamp"):
                raise MalformedJSONError(f"snapshot meta names {name[:70]!r}, which it may not")
        return cls(_version(obj), parse_expires(obj.get("expires")), meta)


@dataclass(frozen=True, slots=True)
class Timestamp:
    """The timestamp: the current snapshot's hashes and length, short-lived against freeze attacks."""

    version: int
    expires: datetime
    snapshot: FileMeta

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Timestamp:
        """Parse the ``signed`` member of timestamp.json."""
        meta = _obj(obj.get("meta"), "meta")
        return cls(
            _version(obj), parse_expires(obj.get("expires")), FileMeta.from_json(meta.get("snapshot"), "meta.snapshot")
        )


_KINDS: Final[dict[str, type[Root | Targets | Snapshot | Timestamp]]] = {
    k.__name__: k for k in (Root, Targets, Snapshot, Timestamp)
}


def _version(obj: dict[str, Any]) -> int:
    return _int(obj.get("version"), "version", minimum=1)


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature of an envelope."""

    keyid: str
    method: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Signed(Generic[T]):
    """A metadata file: its exact bytes, the bytes its signatures cover, its signatures and typed body."""

    role: str
    raw: bytes
    signed_bytes: bytes
    signatures: tuple[Signature, ...]
    body: T

    @property
    def version(self) -> int:
        """The body's version."""
        return self.body.version

    @property
    def expires(self) -> datetime:
        """The body's expiry."""
        return self.body.expires

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the exact bytes: the name a client fetches it by."""
        return hashlib.sha256(self.raw).hexdigest()

    def verify(self, keys: dict[str, PublicKey], threshold: int, error: type[TrustError], what: str) -> None:
        """Raise ``error`` unless signatures by at least ``threshold`` distinct ``keys`` verify.

        Signatures by unknown keys and invalid signatures are ignored rather than fatal, as in notary: what
        matters is that enough trusted keys signed these bytes.
        """
        valid: set[str] = set()
        for s in self.signatures:
            key = keys.get(s.keyid)
            if key is None or s.keyid in valid:
                continue
            try:
                key.verify(s.method, s.sig, self.signed_bytes)
            except SignatureError:
                continue
            valid.add(s.keyid)
        if len(valid) < threshold:
            raise error(f"valid signatures did not meet threshold for {what}")


class _NumberWatch:
    """``json.loads`` hooks that note whether a document holds a float, NaN or infinity (none is canonical)."""

    def __init__(self) -> None:
        self.seen = False

    def parse_float(self, text: str) -> float:
        self.seen = True
        return float(text)

    def parse_constant(self, text: str) -> float:
        self.seen = True
        return float(text)


def _canonical_signed(signed: dict[str, Any], has_floats: bool) -> bytes:
    """The canonical JSON notary signs over, the fast way when it is provably the same bytes.

    ``json.dumps`` with sorted keys, compact separators and raw non-ASCII writes exactly the OLPC canonical
    form, except that it escapes control characters (canonical JSON leaves them raw) and accepts floats
    (canonical JSON has none). So when the output holds no backslash at all (no string needed an escape)
    and the document had no float, it is the canonical form; otherwise securesystemslib's encoder decides.
    This is the hottest step of an update (every stored and uploaded role is parsed), and the pure-Python
    encoder costs about ten times as much for a 100-target role.
    """
    if not has_floats:
        text = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        if "\\" not in text:
            return text.encode("utf-8")
    return canonical(signed)


def parse_metadata(role: str, raw: bytes, kind: type[T]) -> Signed[T]:
    """Parse ``raw`` as the metadata of ``role`` with body type ``kind``; raise ``MalformedJSONError``.

    Small files are remembered (an LRU of ``_CACHED_FILES`` entries of at most ``_CACHED_BYTES``): an update
    parses every stored role again (root with its certificates, targets with each target's hashes) although
    it parsed most of them when they were uploaded, and every read of ``timestamp.json`` parses the stored
    timestamp to check its expiry. Parsing is a pure function of the bytes and the result is never mutated.
    Failures are not remembered (they raise).
    """
    if len(raw) <= _CACHED_BYTES:
        return cast(Signed[T], _parse_cached(role, raw, kind.__name__))
    return _parse(role, raw, kind)


_CACHED_BYTES: Final = 64 * 1024  # a targets role of about 300 targets
_CACHED_FILES: Final = 64


@functools.lru_cache(maxsize=_CACHED_FILES)
def _parse_cached(role: str, raw: bytes, kind: str) -> Signed[Any]:
    body: type[Root | Targets | Snapshot | Timestamp] = _KINDS[kind]
    return _parse(role, raw, body)


def _parse(role: str, raw: bytes, kind: type[T]) -> Signed[T]:
    numbers = _NumberWatch()
    try:
        envelope = json.loads(raw, parse_float=numbers.parse_float, parse_constant=numbers.parse_constant)
    except (ValueError, RecursionError) as e:
        raise MalformedJSONError(f"{role}: not JSON") from e
    envelope = _obj(envelope, role)
    signed = _obj(envelope.get("signed"), f"{role}.signed")
    want = _TYPES["targets" if is_delegation(role) else role]
    if signed.get("_type") != want:
        raise MalformedJSONError(f"{role}: _type must be {want}")
    sigs_json = envelope.get("signatures") or []  # Go's nil slice: unsigned, so no threshold is met
    if not isinstance(sigs_json, list):
        raise MalformedJSONError(f"{role}: signatures must be a list")
    signatures: list[Signature] = []
    for s in sigs_json:
        s = _obj(s, f"{role} signature")
        keyid, method, sig = s.get("keyid"), s.get("method"), s.get("sig")
        if not (isinstance(keyid, str) and isinstance(method, str) and isinstance(sig, str)):
            raise MalformedJSONError(f"{role}: a signature needs keyid, method and sig strings")
        try:
            signatures.append(Signature(keyid, method, base64.b64decode(sig, validate=True)))
        except ValueError as e:  # binascii.Error, or non-ASCII text
            raise MalformedJSONError(f"{role}: a signature is not base64") from e
    try:
        signed_bytes = _canonical_signed(signed, numbers.seen)
    except Exception as e:  # securesystemslib raises its own FormatError for floats and odd types
        raise MalformedJSONError(f"{role}: cannot be canonicalised: {e}") from e
    return Signed(role, raw, signed_bytes, tuple(signatures), kind.from_json(signed))
