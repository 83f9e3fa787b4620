"""What is signed in a repository, as the server itself verifies it: tag -> digest, size and signers.

The registry's door (``trust.gate``) and the verdict endpoint need to know, on every pull, whether a tag has a
valid signed target and which digest it names. Trusting the stored metadata because validation accepted it
once is not enough (roles expire, the timestamp is re-signed), so ``verify_repository`` checks the chain as
a TUF client would, over the newest stored files of a GUN:

- root signed by its own root threshold and not expired (its rotations were checked on upload);
- timestamp signed by the root's timestamp keys, not expired, naming exactly the stored snapshot;
- snapshot signed by the root's snapshot keys, not expired, naming exactly the stored root, targets and every
  delegation it walks;
- targets, then delegations depth first (as the TUF spec orders them): each signed by its threshold of the
  keys its parent names, not expired; a delegation's targets count only inside its path prefixes.

Any failure makes the whole GUN untrusted (a client would refuse the update the same way) and says why. A
tag's signed target is the one Docker would pull: ``targets/releases`` first, then ``targets``, then other
delegations in walk order; its signers are as ``docker trust inspect`` lists them: the delegations (named
without ``targets/``) that sign that same digest, other than ``targets/releases``, or ``Repo Admin`` when only
the repository's own roles (``targets``, ``targets/releases``) do.

``SignedLookup`` caches each GUN's verified result under the (version, SHA-256) of its newest timestamp,
which every update and every re-signing changes, and each repository's result under the newest change-feed
id of its GUNs, so a pull costs one indexed query while nothing changed.

A repository's trust data may sit under several GUNs: the repository name itself (the ``notary`` CLI,
``trustyard trust``) and ``<host>/<repository>`` for each host this registry is reached by (Docker Content
Trust names trust data by the full image name): ``public_hosts``, the ``listen`` address, and for a request
its ``Host``. Only those hosts: ``evil.example/app`` is the repository of project ``evil.example``, whose
signers must not vouch for ``app``.

Not here: whether a pull is allowed (``trust.gate``), HTTP, writing trust data (``service``).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy.exc import SQLAlchemyError

from trustyard.config import Settings
from trustyard.db.engine import Database, describe
from trustyard.registry.metadata import MetadataStore
from trustyard.trust.errors import TrustError
from trustyard.trust.keys import PublicKey, now_utc
from trustyard.trust.metadata import (
    DelegatedRole,
    FileMeta,
    Root,
    Signed,
    Snapshot,
    Targets,
    Timestamp,
    parse_metadata,
)
from trustyard.trust.service import TrustService
from trustyard.trust.store import TrustStore

__all__ = [
    "RELEASES",
    "REPO_ADMIN",
    "Judgement",
    "SignedLookup",
    "SignedTarget",
    "TrustedTargets",
    "UntrustedError",
    "gun_candidates",
    "listen_hosts",
    "signer_name",
    "verify_repository",
]

RELEASES: Final = "targets/releases"
REPO_ADMIN: Final = "Repo Admin"
_RELEASED: Final = ("targets", RELEASES)
_MAX_CACHED: Final = 4096
_NEWEST_CHANGE: Final = "SELECT max(id) FROM trust_changes WHERE gun IN ({})"
_NEWEST_TIMESTAMP: Final = (
    "SELECT version, sha256 FROM trust_files WHERE gun = ? AND role = 'timestamp' ORDER BY version DESC LIMIT 1"
)
_SHARED: weakref.WeakKeyDictionary[Database, SignedLookup] = weakref.WeakKeyDictionary()
_SHARED_LOCK: Final = threading.Lock()


class UntrustedError(TrustError):
    """Stored trust data that does not verify now (expired, mis-signed, inconsistent): nothing in it counts."""

    code = "UNTRUSTED"
    public_message = "The trust data does not verify."


def signer_name(role: str) -> str:
    """The name ``docker trust inspect`` gives the signer of ``role``: ``targets`` and ``targets/releases``
    (which ``docker trust sign`` fills for every signer) are the repository's own, "Repo Admin"."""
    return REPO_ADMIN if role in ("targets", RELEASES) else role.removeprefix("targets/")


@dataclass(frozen=True, slots=True)
class SignedTarget:
    """A tag's signed target: the digest and size Docker would pull, the role it came from and its signers."""

    name: str
    digest: str
    size: int
    role: str
    signers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TrustedTargets:
    """One GUN's verified targets, or why none can be trusted (``problem``)."""

    gun: str
    targets: Mapping[str, SignedTarget]
    problem: str | None
    valid_until: datetime | None
    """When the earliest-expiring role expires: the result is not reused past it."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """Whether a reference of a repository is signed, and by whom."""

    signed: bool
    signed_digest: str | None
    signers: tuple[str, ...]
    reason: str
    """Why (a sentence for a refusal message or the UI)."""


def _fresh(s: Signed[Root] | Signed[Targets] | Signed[Snapshot] | Signed[Timestamp], now: datetime) -> None:
    if s.expires <= now:
        raise UntrustedError(f"{s.role} expired at {s.expires:%Y-%m-%d %H:%M:%S} UTC")


def _named(snapshot: Snapshot, role: str, files: Mapping[str, bytes]) -> bytes:
    """The stored bytes of ``role``, which the snapshot must name exactly."""
    raw, meta = files.get(role), snapshot.meta.get(role)
    if raw is None or meta is None:
        raise UntrustedError(f"the snapshot does not name {role}")
    if not meta.matches(raw):
        raise UntrustedError(f"the snapshot names other {role} metadata than is stored")
    return raw


def _digest(meta: FileMeta) -> str | None:
    sha256 = meta.hashes.get("sha256")
    return None if sha256 is None else "sha256:" + sha256.hex()


def verify_repository(gun: str, files: Mapping[str, bytes], now: datetime) -> TrustedTargets:
    """Verify the newest ``files`` (role -> bytes) of ``gun`` and return its signed targets.

    Raises ``UntrustedError`` (or ``MalformedJSONError``) when the chain does not verify.
    """
    for name in ("root", "timestamp", "snapshot", "targets"):
        if name not in files:
            raise UntrustedError(f"no {name} metadata is stored")
    root = parse_metadata("root", files["root"], Root)
    root.verify(root.body.role_keys("root"), root.body.roles["root"].threshold, UntrustedError, "root")
    timestamp = parse_metadata("timestamp", files["timestamp"], Timestamp)
    keys, role = root.body.role_keys("timestamp"), root.body.roles["timestamp"]
    timestamp.verify(keys, role.threshold, UntrustedError, "timestamp")
    if not timestamp.body.snapshot.matches(files["snapshot"]):
        raise UntrustedError("the timestamp names another snapshot than is stored")
    snapshot = parse_metadata("snapshot", files["snapshot"], Snapshot)
    keys, role = root.body.role_keys("snapshot"), root.body.roles["snapshot"]
    snapshot.verify(keys, role.threshold, UntrustedError, "snapshot")
    if "root" in snapshot.body.meta:
        _named(snapshot.body, "root", files)
    targets = parse_metadata("targets", _named(snapshot.body, "targets", files), Targets)
    keys, role = root.body.role_keys("targets"), root.body.roles["targets"]
    targets.verify(keys, role.threshold, UntrustedError, "targets")
    checked: list[Signed[Root] | Signed[Targets] | Signed[Snapshot] | Signed[Timestamp]] = [root, timestamp, snapshot]
    walked: list[tuple[str, Signed[Targets], DelegatedRole | None]] = []
    _walk(targets, None, snapshot.body, files, walked)
    checked += [s for _, s, _ in walked]
    for s in checked:
        _fresh(s, now)
    return TrustedTargets(gun, _choose(walked), None, min(s.expires for s in checked))


def _walk(
    signed: Signed[Targets],
    delegation: DelegatedRole | None,
    snapshot: Snapshot,
    files: Mapping[str, bytes],
    out: list[tuple[str, Signed[Targets], DelegatedRole | None]],
) -> None:
    """Pre-order: ``signed`` itself, then each delegation it names that has metadata, verified by its keys."""
    out.append((signed.role, signed, delegation))
    for child in signed.body.delegations.roles:
        if child.name not in files or child.name not in snapshot.meta:
            continue  # delegated but never published: it signs nothing yet
        raw = _named(snapshot, child.name, files)
        metadata = parse_metadata(child.name, raw, Targets)
        parent_keys = signed.body.delegations.keys
        keys: dict[str, PublicKey] = {k: parent_keys[k] for k in child.keyids if k in parent_keys}
        metadata.verify(keys, child.threshold, UntrustedError, child.name)
        if delegation is not None:  # a grandchild may only narrow its parent's paths
            child = DelegatedRole(
                child.name,
                child.keyids,
                child.threshold,
                tuple(p for p in child.paths if any(p.startswith(q) for q in delegation.paths)),
            )
        _walk(metadata, child, snapshot, files, out)


def _choose(walked: Iterable[tuple[str, Signed[Targets], DelegatedRole | None]]) -> dict[str, SignedTarget]:
    """Per target name, the entry Docker would use (releases, then targets, then walk order) and its signers."""
    entries: dict[str, list[tuple[str, FileMeta]]] = {}
    for role, signed, delegation in walked:
        for name, meta in signed.body.targets.items():
            if delegation is None or delegation.allows(name):
                entries.setdefault(name, []).append((role, meta))
    chosen: dict[str, SignedTarget] = {}
    for name, found in entries.items():
        ranked = sorted(found, key=lambda e: {RELEASES: 0, "targets": 1}.get(e[0], 2))  # stable: walk order kept
        role, meta = ranked[0]
        digest = _digest(meta)
        if digest is None:
            continue  # not an image target (Docker signs sha256 digests)
        same = [r for r, m in found if _digest(m) == digest and m.length == meta.length]
        # as docker trust inspect lists them: the delegations that signed this digest, else the repository's own
        signers = tuple(dict.fromkeys(signer_name(r) for r in same if r not in _RELEASED)) or (REPO_ADMIN,)
        chosen[name] = SignedTarget(name, digest, meta.length, role, signers)
    return chosen


def listen_hosts(listen: str, public_hosts: Iterable[str]) -> frozenset[str]:
    """The ``host[:port]`` names (lower-case) this registry is reached by, known without a request."""
    hosts = {h.strip().lower() for h in public_hosts if h.strip()}
    host, _, port = listen.rpartition(":")
    host = host.strip("[]").lower()
    if host in ("", "0.0.0.0", "::", "127.0.0.1", "localhost", "::1"):  # names, not a bind
        hosts |= {f"127.0.0.1:{port}", f"localhost:{port}"}
    else:
        hosts.add(f"{host}:{port}")
    return frozenset(hosts)


def gun_candidates(repository: str, hosts: Collection[str]) -> list[str]:
    """The GUNs whose trust data speaks for ``repository``: its own name, then ``<host>/<name>`` (sorted)."""
    return [repository, *(f"{h}/{repository}" for h in sorted(hosts))]


class SignedLookup:
    """Verified signed targets per repository, cached per GUN by the newest timestamp's version and checksum."""

    def __init__(
        self,
        *,
        db: Database,
        trust: Callable[[], TrustService],
        hosts: Collection[str] = (),
        clock: Callable[[], datetime] = now_utc,
        max_cached: int = _MAX_CACHED,
    ) -> None:
        self.db = db
        self.trust = trust
        self.hosts = frozenset(hosts)
        self.clock = clock
        self.max_cached = max_cached
        self._store = TrustStore(db)
        self._cache: OrderedDict[str, tuple[int, str, TrustedTargets]] = OrderedDict()
        self._repositories: OrderedDict[tuple[str, ...], tuple[int, list[TrustedTargets]]] = OrderedDict()
        self._lock = threading.Lock()
        self.verifications = 0
        """How many times a chain was verified (not served from the cache): for tests and benchmarks."""

    @classmethod
    def shared(cls, db: Database, settings: Settings) -> SignedLookup:
        """The one lookup of a registry's database, so the door and the verdict endpoint share one cache.

        Kept per ``Database`` object (weakly: it goes with the app), built on first use with this
        registry's known hosts; its trust service (for re-signing a timestamp) is built on first need.
        """
        with _SHARED_LOCK:
            found = _SHARED.get(db)
            if found is None:
                trust: list[TrustService] = []

                def service() -> TrustService:
                    if not trust:
                        trust.append(TrustService.from_settings(settings, db))
                    return trust[0]

                found = cls(db=db, trust=service, hosts=listen_hosts(settings.listen, settings.public_hosts))
                _SHARED[db] = found
            return found

    # -- per GUN -------------------------------------------------------------------------------------------
    def _heads(self, guns: list[str]) -> dict[str, tuple[int, str]]:
        """GUN -> (version, sha256) of its newest timestamp, for the GUNs that have one.

        One lean indexed lookup per GUN (the unique (gun, role, version) index): this runs on every gated pull.
        """
        heads: dict[str, tuple[int, str]] = {}
        for gun in guns:
            row = self.db.fetch_one(_NEWEST_TIMESTAMP, (gun,))
            if row is not None:
                heads[gun] = (int(row[0]), str(row[1]))
        return heads

    def _verify(self, gun: str) -> tuple[int, str, TrustedTargets]:
        # re-sign a timestamp about to expire, as a client's read would; nothing to re-sign, or no key to do it
        # with: what is stored is judged as it is
        with contextlib.suppress(TrustError):
            self.trust().get(gun, "timestamp")
        with self.db.read() as conn:
            stored = self._store.current(conn, gun)
        files = {role: f.data for role, f in stored.items()}
        timestamp = stored.get("timestamp")
        key = (timestamp.version, hashlib.sha256(timestamp.data).hexdigest()) if timestamp is not None else (0, "")
        self.verifications += 1
        try:
            result = verify_repository(gun, files, self.clock())
        except TrustError as e:
            result = TrustedTargets(gun, {}, e.message, None)
        return key[0], key[1], result

    def trusted(self, guns: list[str]) -> list[TrustedTargets]:
        """The verified targets of each of ``guns`` that has trust data, in order."""
        try:
            heads = self._heads(guns)
            out: list[TrustedTargets] = []
            now = self.clock()
            for gun in guns:
                head = heads.get(gun)
                if head is None:
                    continue
                with self._lock:
                    cached = self._cache.get(gun)
                if (
                    cached is not None
                    and cached[:2] == head
                    and (cached[2].valid_until is None or now < cached[2].valid_until)
                ):
                    out.append(cached[2])
                    continue
                version, sha256, result = self._verify(gun)
                with self._lock:
                    self._cache[gun] = (version, sha256, result)
                    self._cache.move_to_end(gun)
                    while len(self._cache) > self.max_cached:
                        self._cache.popitem(last=False)
                out.append(result)
            return out
        except SQLAlchemyError as e:
            raise UntrustedError(f"the trust data cannot be read: {describe(e)}") from e

    # -- per repository ------------------------------------------------------------------------------------
    def targets(self, repository: str, extra_hosts: Collection[str] = ()) -> list[TrustedTargets]:
        """The verified targets of every GUN that speaks for ``repository`` and has trust data.

        Remembered per candidate set under the newest change-feed id of those GUNs (every update, re-signing
        and deletion appends one), so a pull while nothing changed costs one indexed query.
        """
        guns = gun_candidates(repository, self.hosts | frozenset(extra_hosts))
        key = tuple(guns)
        try:
            row = self.db.fetch_one(_NEWEST_CHANGE.format(", ".join("?" * len(guns))), guns)
        except SQLAlchemyError as e:
            raise UntrustedError(f"the trust data cannot be read: {describe(e)}") from e
        stamp = int(row[0]) if row is not None and row[0] is not None else 0
        now = self.clock()
        with self._lock:
            hit = self._repositories.get(key)
        if hit is not None and hit[0] == stamp and all(t.valid_until is None or now < t.valid_until for t in hit[1]):
            return hit[1]
        found = self.trusted(guns)
        with self._lock:
            self._repositories[key] = (stamp, found)  # the stamp read before: a change meanwhile misses next time
            self._repositories.move_to_end(key)
            while len(self._repositories) > self.max_cached:
                self._repositories.popitem(last=False)
        return found

    def judge_tag(self, repository: str, tag: str, current: str | None, extra_hosts: Collection[str] = ()) -> Judgement:
        """Whether ``tag`` has a valid signed target naming ``current`` (the digest the tag points at now)."""
        found = self.targets(repository, extra_hosts)
        signed = [t.targets[tag] for t in found if tag in t.targets]
        for target in signed:
            if target.digest == current:
                return Judgement(True, target.digest, target.signers, f"tag {tag!r} is signed by {_who(target)}")
        if signed:
            first = signed[0]
            now = "no manifest" if current is None else current
            reason = f"tag {tag!r} is signed for {first.digest}, but it points at {now}"
            return Judgement(False, first.digest, first.signers, reason)
        return Judgement(False, None, (), _unsigned(f"tag {tag!r}", repository, found))

    def judge_digest(self, repository: str, digest: str, extra_hosts: Collection[str] = ()) -> Judgement:
        """Whether a signed target names ``digest``, or names an index of ``repository`` that lists it."""
        found = self.targets(repository, extra_hosts)
        signed = {t.digest: t for trusted in found for t in trusted.targets.values()}
        target = signed.get(digest)
        if target is not None:
            return Judgement(True, digest, target.signers, f"{digest} is signed by {_who(target)} as {target.name!r}")
        parent = self._signed_parent(repository, digest, list(signed))
        if parent is not None:
            target = signed[parent]
            reason = f"{digest} is listed by {parent}, signed by {_who(target)} as {target.name!r}"
            return Judgement(True, digest, target.signers, reason)
        return Judgement(False, None, (), _unsigned(digest, repository, found))

    def _signed_parent(self, repository: str, digest: str, signed: list[str]) -> str | None:
        """A signed index of ``repository`` that lists ``digest`` (a platform image Docker pulls by digest)."""
        if not signed:
            return None
        try:
            parents = MetadataStore(self.db).indexes_listing(repository, digest)
        except SQLAlchemyError as e:
            raise UntrustedError(f"the registry's manifests cannot be read: {describe(e)}") from e
        wanted = set(signed)
        return next((p for p in parents if p in wanted), None)


def _who(target: SignedTarget) -> str:
    return ", ".join(target.signers)


def _unsigned(what: str, repository: str, found: list[TrustedTargets]) -> str:
    problems = [f"{t.gun}: {t.problem}" for t in found if t.problem is not None]
    if problems:
        return f"{what} has no valid signature: the trust data does not verify ({'; '.join(problems)})"
    if not found:
        return f"{what} has no signature: repository {repository!r} has no trust data"
    return f"{what} has no signed target in the trust data of {repository!r}"
