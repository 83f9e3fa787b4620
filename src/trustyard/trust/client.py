"""The trust client: fetch and verify a repository's signed metadata, and publish signed changes to it.

``TrustClient`` does the I/O around the pure parts: it fetches root, timestamp, snapshot, targets and
delegations from the trust service (``/v2/<gun>/_trust/tuf/…``, snapshot and targets by their sha256 as the
``notary`` client does), feeds them to a ``TrustedChain`` seeded with what the trust dir pinned, and pins
the result only when all of it verified. Publishing edits a ``Draft`` of the verified state, signs it with
the keys of the ``KeyStore`` and POSTs the multipart update the ``notary`` client sends.

Trust dir layout (besides the keys, see ``keyfiles``): ``tuf/<GUN, percent-encoded>/metadata/<role>.json``,
the last verified bytes of each role. The pinned root is the trust anchor (trust on first use); the versions
of the others are floors against rollback.

Not here: key storage (``keyfiles``), metadata building (``client_publish``), the CLI (``cli/trust``).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import quote

from trustyard.trust.client_chain import ChainError, SignedTarget, TrustClientError, TrustedChain
from trustyard.trust.client_http import HttpSession, TransportError, error_message
from trustyard.trust.client_publish import Draft, MissingKeyError, RoleSigners, new_repository, target_meta
from trustyard.trust.keyfiles import KeyRecord, KeyStore
from trustyard.trust.keys import KeyFormatError, PublicKey
from trustyard.trust.metadata import MAX_NAME, is_valid_role
from trustyard.trust.signers import Signer, root_certificate_key

__all__ = ["NoTrustDataError", "TrustClient", "default_trust_dir"]

MAX_TIMESTAMP: Final = 1024 * 1024  # notary's caps (const.go): timestamp 1 MiB, other roles 100 MiB
MAX_METADATA: Final = 100 * 1024 * 1024
RELEASES: Final = "targets/releases"


class NoTrustDataError(TrustClientError):
    """The trust service has no signed data for the GUN (never signed, or deleted)."""


def default_trust_dir() -> Path:
    """``TRUSTYARD_TRUST_DIR``, else ``~/.trustyard/trust``."""
    configured = os.environ.get("TRUSTYARD_TRUST_DIR")
    return Path(configured) if configured else Path.home() / ".trustyard" / "trust"


@dataclass(frozen=True, slots=True)
class KeyChoice:
    """Where new keys of a repository go: a backend and its options (``pkcs11``: module, token)."""

    backend: str = "file"
    options: tuple[tuple[str, str], ...] = ()


class TrustClient:
    """Verified reads and signed writes of the trust data of GUNs on one trust server."""

    def __init__(
        self,
        *,
        trust_dir: Path,
        session: HttpSession,
        keys: KeyStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.trust_dir = trust_dir
        self.session = session
        self.keys = keys
        self._clock = clock

    # ---- the pinned metadata ---------------------------------------------------------------------------------
    def _cache(self, gun: str) -> Path:
        return self.trust_dir / "tuf" / quote(gun, safe="") / "metadata"

    def _pinned(self, gun: str) -> dict[str, bytes]:
        folder = self._cache(gun)
        found: dict[str, bytes] = {}
        if folder.is_dir():
            for path in folder.rglob("*.json"):
                role = path.relative_to(folder).as_posix()[: -len(".json")]
                if is_valid_role(role):
                    found[role] = path.read_bytes()
        return found

    def _pin(self, gun: str, chain: TrustedChain) -> None:
        folder = self._cache(gun)
        for role, data in chain.verified_files().items():
            path = folder / f"{role}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def forget(self, gun: str) -> None:
        """Drop the pinned metadata of ``gun`` (the next contact trusts on first use again)."""
        shutil.rmtree(self._cache(gun), ignore_errors=True)

    # ---- fetching ----------------------------------------------------------------------------------------------
    @staticmethod
    def _base(gun: str) -> str:
        if not gun or len(gun) > MAX_NAME or "*" in gun:
            raise TrustClientError(f"invalid GUN {gun[:100]!r}")
        return f"/v2/{gun}/_trust/tuf/"

    def _fetch(self, gun: str, name: str, limit: int) -> bytes | None:
        response = self.session.request("GET", self._base(gun) + name, f"repository:{gun}:pull")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise TransportError(
                f"the trust server answered {response.status_code} for {name}: {error_message(response)}"
            )
        if len(response.content) > limit:
            raise ChainError(f"{name} is larger than {limit} bytes")
        return response.content

    def _need(self, gun: str, name: str, limit: int = MAX_METADATA) -> bytes:
        data = self._fetch(gun, name, limit)
        if data is None:
            raise ChainError(f"the trust server lacks {name}, which the verified metadata names")
        return data

    def update(self, gun: str) -> TrustedChain:
        """Fetch and verify the whole chain of ``gun``; pin it; raise ``NoTrustDataError`` when there is none."""
        pinned = self._pinned(gun)
        chain = TrustedChain(gun, self._clock())
        for role, data in pinned.items():
            if role != "root":
                chain.floors[role] = _version_of(data)
        latest = self._fetch(gun, "root.json", MAX_METADATA)
        if latest is None:
            if "root" in pinned:
                raise NoTrustDataError(f"the trust server has no trust data for {gun} any more (it had before)")
            raise NoTrustDataError(f"the trust server does not have trust data for {gun}")
        if "root" in pinned:
            chain.pin_root(pinned["root"])
            target = _version_of(latest)
            pinned_root = chain.root
            if pinned_root is not None and target > pinned_root.version + 1:
                for version in range(pinned_root.version + 1, target):
                    chain.update_root(self._need(gun, f"{version}.root.json"))
            chain.update_root(latest)
        else:
            chain.pin_root(latest)  # trust on first use
        chain.check_root_fresh()
        chain.load_timestamp(self._need(gun, "timestamp.json", MAX_TIMESTAMP))
        chain.load_snapshot(self._need(gun, f"snapshot.{chain.snapshot_sha256()}.json"))
        sha = chain.role_sha256("targets")
        if sha is None:
            raise ChainError("the snapshot does not list targets")
        chain.load_targets("targets", self._need(gun, f"targets.{sha}.json"))
        pending = chain.delegated_roles("targets")
        while pending:
            delegated = pending.pop(0)
            if delegated.name.count("/") > 16 or delegated.name in chain.targets:
                continue
            sha = chain.role_sha256(delegated.name)
            if sha is None:  # delegated but never signed: an empty role, as notary treats it
                continue
            chain.load_targets(delegated.name, self._need(gun, f"{delegated.name}.{sha}.json"))
            pending.extend(chain.delegated_roles(delegated.name))
        self._pin(gun, chain)
        return chain

    def try_update(self, gun: str) -> TrustedChain | None:
        """``update``, or ``None`` when the GUN has no trust data yet."""
        try:
            return self.update(gun)
        except NoTrustDataError:
            return None

    # ---- publishing -------------------------------------------------------------------------------------------
    def _post(self, gun: str, files: dict[str, bytes]) -> None:
        boundary = uuid.uuid4().hex
        parts = [
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{role}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
            for role, data in files.items()
        ]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        response = self.session.request(
            "POST",
            self._base(gun),
            f"repository:{gun}:push,pull",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            content=body,
        )
        if response.status_code != 200:
            message = error_message(response)
            if "does not hold current snapshot key" in message:
                message += (
                    " (the snapshot key is held by whoever created the repository's trust data; they can hand it to"
                    " the server: trustyard trust key rotate snapshot IMAGE --server-managed)"
                )
            raise TransportError(f"the trust server refused the update of {gun} ({response.status_code}): {message}")

    def server_key(self, gun: str, role: str, *, rotate: bool = False) -> PublicKey:
        """The server-held key of ``role`` (timestamp, snapshot); ``rotate`` asks for a new one (scope ``*``)."""
        response = self.session.request(
            "POST" if rotate else "GET",
            f"{self._base(gun)}{role}.key",
            f"repository:{gun}:{'*' if rotate else 'push,pull'}",
        )
        if response.status_code != 200:
            raise TransportError(
                f"the trust server gave no {role} key ({response.status_code}): {error_message(response)}"
            )
        try:
            return PublicKey.from_json(response.json())
        except (ValueError, KeyFormatError) as e:
            raise TransportError(f"the trust server's {role} key is malformed: {e}") from e

    def _signers(self, keys: dict[str, PublicKey], threshold: int, role: str, gun: str) -> RoleSigners:
        held = [(key_id, self.keys.signer(record)) for key_id, record in self.keys.holding(keys)]
        if len(held) < threshold:
            raise MissingKeyError(
                f"you hold {len(held)} of the {threshold} key(s) needed to sign {role} of {gun} "
                f"(trust key list shows your keys; the role's keys are {', '.join(k[:12] for k in keys) or 'none'})"
            )
        return held

    def _role_signers(self, chain: TrustedChain, role: str) -> RoleSigners:
        root = chain.root
        if root is None:
            raise ChainError("no trusted root")
        if role in ("root", "targets", "snapshot"):
            return self._signers(root.body.role_keys(role), root.body.roles[role].threshold, role, chain.gun)
        delegated = chain.delegation(role)
        parent = chain.targets[role.rsplit("/", 1)[0]].body.delegations
        keys = {k: parent.keys[k] for k in delegated.keyids if k in parent.keys}
        return self._signers(keys, delegated.threshold, role, chain.gun)

    def _snapshot_signers(self, chain: TrustedChain) -> RoleSigners | None:
        """The publisher's snapshot signers, or ``None`` when the server signs snapshot."""
        root = chain.root
        if root is None:
            raise ChainError("no trusted root")
        if not list(self.keys.holding(root.body.role_keys("snapshot"))):
            return None
        return self._role_signers(chain, "snapshot")

    def _commit(self, chain: TrustedChain, draft: Draft, extra: dict[str, RoleSigners] | None = None) -> None:
        signers = {role: self._role_signers(chain, role) for role in draft.edited if role != "root"}
        signers.update(extra or {})
        files = draft.files(signers, self._snapshot_signers(chain))
        self._post(chain.gun, files)

    def _new_key(self, role: str, gun: str, name: str, choice: KeyChoice) -> KeyRecord:
        return self.keys.generate(name=name, role=role, gun=gun, backend=choice.backend, options=dict(choice.options))

    def initialize(self, gun: str, *, server_snapshot: bool, choice: KeyChoice = KeyChoice()) -> TrustedChain:
        """Create the trust data of a new GUN: root (an existing root key is reused), targets, snapshot keys."""
        roots = self.keys.find(role="root")
        root_record = roots[-1] if roots else self._new_key("root", "", "root", choice)
        root_signer = self.keys.signer(root_record)
        targets_record = self._new_key("targets", gun, "targets", choice)
        timestamp = self.server_key(gun, "timestamp")
        snapshot: tuple[PublicKey, Signer | None]
        if server_snapshot:
            snapshot = (self.server_key(gun, "snapshot"), None)
        else:
            record = self._new_key("snapshot", gun, "snapshot", KeyChoice())
            snapshot = (record.public, self.keys.signer(record))
        files = new_repository(
            root=(root_certificate_key(root_signer, gun), root_signer),
            targets=(targets_record.public, self.keys.signer(targets_record)),
            snapshot=snapshot,
            timestamp=timestamp,
            now=self._clock(),
        )
        self.forget(gun)
        self._post(gun, files)
        return self.update(gun)

    def ensure(self, gun: str, *, server_snapshot: bool, choice: KeyChoice = KeyChoice()) -> TrustedChain:
        """The verified chain of ``gun``, initialising the repository when it has no trust data."""
        chain = self.try_update(gun)
        return chain if chain is not None else self.initialize(gun, server_snapshot=server_snapshot, choice=choice)

    # ---- what publishers do ----------------------------------------------------------------------------------
    def signable_roles(self, chain: TrustedChain, tag: str) -> list[str]:
        """Where Docker signs ``tag``: ``targets`` when there are no delegations, else every direct delegation
        (``targets/releases`` and each ``targets/<signer>``) whose paths allow the tag and whose key we hold."""
        delegated = chain.delegated_roles("targets")
        if not delegated:
            return ["targets"]
        parent = chain.targets["targets"].body.delegations
        roles: list[str] = []
        for role in delegated:
            if role.name.count("/") != 1 or not role.allows(tag):
                continue
            keys = {k: parent.keys[k] for k in role.keyids if k in parent.keys}
            if next(self.keys.holding(keys), None) is not None:
                roles.append(role.name)
        if not roles:
            raise MissingKeyError(
                f"{chain.gun} has signers ({', '.join(r.name for r in delegated)}) and you hold none of their keys"
            )
        return roles

    def sign(
        self,
        gun: str,
        tag: str,
        size: int,
        sha256_hex: str,
        *,
        server_snapshot: bool = False,
        choice: KeyChoice = KeyChoice(),
    ) -> list[str]:
        """Publish ``tag`` -> (size, sha256) into every role Docker would sign it into; returns those roles."""
        chain = self.ensure(gun, server_snapshot=server_snapshot, choice=choice)
        roles = self.signable_roles(chain, tag)
        draft = Draft(chain, self._clock())
        for role in roles:
            body = draft.signed(role)
            body["targets"] = {**(body.get("targets") or {}), tag: target_meta(size, sha256_hex)}
        self._commit(chain, draft)
        return roles

    def unsign(self, gun: str, tag: str) -> list[str]:
        """Remove ``tag`` from every role of ours that signs it; returns those roles."""
        chain = self.update(gun)
        draft = Draft(chain, self._clock())
        roles = [t.role for t in chain.signed_targets() if t.name == tag]
        for role in roles:
            targets = dict(draft.signed(role).get("targets") or {})
            targets.pop(tag, None)
            draft.signed(role)["targets"] = targets
        if not roles:
            raise TrustClientError(f"{tag} is not signed in {gun}")
        self._commit(chain, draft)
        return roles

    def add_signer(
        self,
        gun: str,
        name: str,
        keys: list[PublicKey],
        *,
        server_snapshot: bool = False,
        choice: KeyChoice = KeyChoice(),
    ) -> None:
        """Delegate ``targets/<name>`` to ``keys`` and add them to ``targets/releases`` (as ``docker trust signer
        add`` does), creating the repository when needed."""
        chain = self.ensure(gun, server_snapshot=server_snapshot, choice=choice)
        draft = Draft(chain, self._clock())
        delegations = draft.signed("targets").get("delegations") or {}
        key_map = dict(delegations.get("keys") or {})
        roles = list(delegations.get("roles") or [])
        for key in keys:
            key_map[key.key_id] = key.to_json()
        for role_name in (f"targets/{name}", RELEASES):
            entry = next((r for r in roles if r.get("name") == role_name), None)
            if entry is None:
                roles.append({"keyids": [k.key_id for k in keys], "name": role_name, "paths": [""], "threshold": 1})
            else:
                entry["keyids"] = sorted(set(entry.get("keyids") or []) | {k.key_id for k in keys})
        draft.signed("targets")["delegations"] = {"keys": key_map, "roles": roles}
        self._commit(chain, draft)

    def remove_signer(self, gun: str, name: str) -> None:
        """Remove ``targets/<name>`` and its keys from ``targets/releases`` (dropped when it has no key left)."""
        role_name = f"targets/{name}"
        chain = self.update(gun)
        draft = Draft(chain, self._clock())
        delegations = draft.signed("targets").get("delegations") or {}
        roles = list(delegations.get("roles") or [])
        gone = next((r for r in roles if r.get("name") == role_name), None)
        if gone is None:
            raise TrustClientError(f"{gun} has no signer {name!r}")
        removed_keys = set(gone.get("keyids") or [])
        roles = [r for r in roles if r.get("name") != role_name]
        draft.removed.add(role_name)
        for entry in roles:
            if entry.get("name") == RELEASES:
                entry["keyids"] = [k for k in entry.get("keyids") or [] if k not in removed_keys]
        if any(r.get("name") == RELEASES and not r["keyids"] for r in roles):
            roles = [r for r in roles if r.get("name") != RELEASES]
            draft.removed.add(RELEASES)
        used = {k for r in roles for k in r.get("keyids") or []}
        keys = {k: v for k, v in (delegations.get("keys") or {}).items() if k in used}
        draft.signed("targets")["delegations"] = {"keys": keys, "roles": roles}
        self._commit(chain, draft)

    def rotate(self, gun: str, role: str, *, server: bool, choice: KeyChoice = KeyChoice()) -> PublicKey:
        """Replace the key of base role ``role`` with a new one (``server``: one the trust server holds);
        publishes a new root signed by the current root keys (and, for root, the new root key too)."""
        chain = self.update(gun)
        root = chain.root
        if root is None:
            raise ChainError("no trusted root")
        if role == "timestamp" and not server:
            raise TrustClientError("the timestamp key is always held by the trust server")
        if role in ("root", "targets") and server:
            raise TrustClientError(
                f"the {role} key stays with the publisher; only snapshot and timestamp go to the server"
            )
        if role not in ("root", "targets", "snapshot", "timestamp"):
            raise TrustClientError(f"cannot rotate {role!r}: one of root, targets, snapshot, timestamp")
        old_root_signers = self._role_signers(chain, "root")
        draft = Draft(chain, self._clock())
        body = draft.signed("root")
        extra: dict[str, RoleSigners] = {}
        if server:
            new = self.server_key(gun, role, rotate=True)
        elif role == "root":
            record = self._new_key("root", "", "root", choice)
            signer = self.keys.signer(record)
            new = root_certificate_key(signer, gun)
            extra["root"] = [*old_root_signers, (new.key_id, signer)]
        else:
            record = self._new_key(role, gun, role, choice)
            new = record.public
        old_ids = set(body["roles"][role]["keyids"])
        body["keys"] = {k: v for k, v in body["keys"].items() if k not in old_ids or _used_elsewhere(body, k, role)}
        body["keys"][new.key_id] = new.to_json()
        body["roles"][role] = {"keyids": [new.key_id], "threshold": 1}
        extra.setdefault("root", old_root_signers)
        if role == "targets":
            draft.signed("targets")  # re-signed by the new key: the server refuses targets the root no longer trusts
            extra["targets"] = [(new.key_id, self.keys.signer(record))]
        signers = {r: self._role_signers(chain, r) for r in draft.edited if r not in ("root", "targets")}
        signers.update(extra)
        snapshot: RoleSigners | None = None
        if role == "snapshot" and not server:
            snapshot = [(new.key_id, self.keys.signer(record))]
        elif role != "snapshot":
            snapshot = self._snapshot_signers(chain)
        self._post(gun, draft.files(signers, snapshot))
        self.update(gun)
        return new


def _used_elsewhere(root: dict[str, object], key_id: str, role: str) -> bool:
    roles = root.get("roles")
    if not isinstance(roles, dict):
        return False
    return any(key_id in (r.get("keyids") or []) for name, r in roles.items() if name != role and isinstance(r, dict))


def _version_of(data: bytes) -> int:
    """The version in metadata bytes (0 when unreadable: a floor of 0 refuses nothing)."""
    try:
        version = json.loads(data)["signed"]["version"]
    except (ValueError, KeyError, TypeError):
        return 0
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def lookup(chain: TrustedChain, tag: str) -> SignedTarget | None:
    """The signed target Docker pulls for ``tag``: from ``targets/releases`` first, else ``targets``."""
    by_role = {t.role: t for t in chain.signed_targets() if t.name == tag}
    return by_role.get(RELEASES) or by_role.get("targets")
