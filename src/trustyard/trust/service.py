"""The trust service: what the Notary routes call, over the store, the validator and the server's keys.

``update`` reads what is stored for a GUN, validates the upload (``validation``), and in one transaction
writes the uploaded files verbatim, a snapshot signed by the server when it holds the snapshot key and none
was uploaded, and always a new timestamp, then a change-feed record. ``get`` serves stored bytes unchanged,
except that the latest ``timestamp.json`` is re-signed first when less than ``resign_margin`` of its
validity is left (or the snapshot it names has expired), so that no client is ever served stale freshness.
Server keys are created on first use (``timestamp.key`` / ``snapshot.key``) and kept sealed (``sealing``).

Not here: HTTP, authorization (``api`` and the registry's access control).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from trustyard.config import Settings
from trustyard.db.engine import Database, describe
from trustyard.trust.errors import InvalidRoleError, MetadataNotFoundError, TrustError
from trustyard.trust.keys import PublicKey, canonical, now_utc
from trustyard.trust.metadata import (
    FileMeta,
    Root,
    Signed,
    Snapshot,
    Targets,
    Timestamp,
    format_expires,
    is_delegation,
    is_valid_role,
    parse_metadata,
)
from trustyard.trust.sealing import KeyEncryptionKey, ServerKey
from trustyard.trust.store import Change, SealedKey, StoredFile, TrustStore
from trustyard.trust.validation import RepositoryState, ValidatedUpdate, validate_update

__all__ = ["SERVER_ROLES", "StorageUnavailableError", "TrustService"]

SERVER_ROLES: Final = ("timestamp", "snapshot")


class StorageUnavailableError(TrustError):
    """The database failed: notary's ``NO_STORAGE`` (500), which the client reports as server unavailable."""

    code = "NO_STORAGE"
    status = 500
    public_message = "The server is unable to access the storage backend."


@dataclass(frozen=True, slots=True)
class TrustConfig:
    """Lifetimes of what the server signs."""

    timestamp_expiry: timedelta = timedelta(days=14)
    resign_margin: timedelta = timedelta(days=1)
    snapshot_expiry: timedelta = timedelta(days=3 * 365)


class TrustService:
    """Notary v1 trust data of every GUN: read, update, delete, server keys, change feed."""

    def __init__(
        self,
        *,
        db: Database,
        kek: KeyEncryptionKey,
        config: TrustConfig | None = None,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.store = TrustStore(db)
        self.db = db
        self.kek = kek
        self.config = config or TrustConfig()
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> TrustService:
        """The service as ``trustyard serve`` configures it."""
        config = TrustConfig(
            timestamp_expiry=timedelta(seconds=settings.trust_timestamp_expiry),
            resign_margin=timedelta(seconds=settings.trust_timestamp_resign_margin),
            snapshot_expiry=timedelta(seconds=settings.trust_snapshot_expiry),
        )
        return cls(db=db, kek=KeyEncryptionKey.from_settings(settings), config=config)

    # -- reads ---------------------------------------------------------------------------------------------
    def get(self, gun: str, role: str, *, checksum: str | None = None, version: int | None = None) -> StoredFile:
        """Stored bytes of ``role``: latest, by checksum (hex) or by version; ``MetadataNotFoundError`` if none."""
        if not is_valid_role(role):
            raise InvalidRoleError(role)
        try:
            with self.db.read() as conn:
                if checksum is not None:
                    found = self.store.by_checksum(conn, gun, role, checksum)
                elif version is not None:
                    found = self.store.by_version(conn, gun, role, version)
                else:
                    found = self.store.latest(conn, gun, role)
            if found is None:
                raise MetadataNotFoundError(f"no {role} for {gun}")
            if role == "timestamp" and checksum is None and version is None and self._is_stale(found):
                found = self._refresh_timestamp(gun)
        except SQLAlchemyError as e:
            raise StorageUnavailableError(describe(e)) from e
        return found

    def changes(self, gun: str | None, after: int, records: int) -> list[Change]:
        """The change feed of ``gun`` (or of every GUN)."""
        try:
            with self.db.read() as conn:
                return self.store.changes(conn, gun, after, records)
        except SQLAlchemyError as e:
            raise StorageUnavailableError(describe(e)) from e

    # -- server keys ---------------------------------------------------------------------------------------
    def public_key(self, gun: str, role: str) -> PublicKey:
        """``GET <role>.key``: the server key the root lists, else the newest pending one, else a new one."""
        self._check_server_role(role)
        try:
            with self.db.write() as conn:
                held = self._held(conn, gun, role)
                root = self.store.latest(conn, gun, "root")
                if root is not None:
                    listed = parse_metadata("root", root.data, Root).body.roles[role].keyids
                    for key in held:
                        if key.key_id in listed:
                            return PublicKey.from_json(json.loads(key.public))
                if held:
                    return PublicKey.from_json(json.loads(held[0].public))
                return self._new_key(conn, gun, role)
        except SQLAlchemyError as e:
            raise StorageUnavailableError(describe(e)) from e

    def rotate_key(self, gun: str, role: str) -> PublicKey:
        """``POST <role>.key``: a new key, pending until a root that lists it is uploaded."""
        self._check_server_role(role)
        try:
            with self.db.write() as conn:
                return self._new_key(conn, gun, role)
        except SQLAlchemyError as e:
            raise StorageUnavailableError(describe(e)) from e

    # -- writes --------------------------------------------------------------------------------------------
    def update(self, gun: str, files: Mapping[str, bytes]) -> None:
        """Validate and apply one atomic update (the multipart POST); raise the protocol's ``TrustError``."""
        try:
            with self.db.write() as conn:
                stored = self.store.current(conn, gun)
                state = _state(stored)
                held = {role: frozenset(k.key_id for k in self._held(conn, gun, role)) for role in SERVER_ROLES}
                now = self.clock()
                update = validate_update(gun, files, state, held_keys=held, now=now)
                written: list[tuple[str, int, bytes]] = []
                if update.root_changed:
                    written.append(("root", update.root.version, update.root.raw))
                written += [(name, s.version, s.raw) for name, s in update.targets.items()]
                if update.snapshot is not None:
                    snapshot = update.snapshot.raw
                    written.append(("snapshot", update.snapshot.version, snapshot))
                else:
                    snapshot = self._sign_snapshot(conn, gun, update, state.snapshot, now)
                    written.append(("snapshot", _version_of(snapshot), snapshot))
                timestamp = self._sign_timestamp(conn, gun, update.root.body, snapshot, stored.get("timestamp"), now)
                written.append(("timestamp", _version_of(timestamp), timestamp))
                stamp = time.time()
                self.store.add_files(conn, gun, written, stamp)
                ts_hex = hashlib.sha256(timestamp).hexdigest()
                self.store.add_change(conn, gun, _version_of(timestamp), ts_hex, "update", stamp)
        except SQLAlchemyError as e:
            raise StorageUnavailableError(describe(e)) from e

    def delete(self, gun: str) -> None:
        """``DELETE``: forget every version of every role (and the server keys) of ``gun``."""
        try:
            with self.db.write() as conn:
                if self.store.delete(conn, gun):
                    self.store.add_change(conn, gun, 0, "", "deletion", time.time())
        except SQLAlchemyError as e:
            raise StorageUnavailableError(describe(e)) from e

    # -- internals -----------------------------------------------------------------------------------------
    @staticmethod
    def _check_server_role(role: str) -> None:
        if role not in SERVER_ROLES:
            raise MetadataNotFoundError(f"the server holds no {role} key")  # notary: root.key is a 404

    def _held(self, conn: Connection, gun: str, role: str) -> list[SealedKey]:
        return self.store.keys(conn, gun, role)

    def _new_key(self, conn: Connection, gun: str, role: str) -> PublicKey:
        key = ServerKey.generate()
        public = json.dumps(key.public.to_json(), separators=(",", ":"))
        sealed = SealedKey(role, key.public.key_id, public, self.kek.seal(gun, role, key), time.time())
        self.store.add_key(conn, gun, sealed)
        return key.public

    def _signer(self, conn: Connection, gun: str, role: str, root: Root) -> ServerKey | None:
        """The held key the root lists for ``role`` (the newest if several), opened; ``None`` if none."""
        listed = set(root.roles[role].keyids)
        for key in self._held(conn, gun, role):
            if key.key_id in listed:
                return self.kek.open(gun, role, PublicKey.from_json(json.loads(key.public)), key.sealed)
        return None

    def _sign_snapshot(
        self, conn: Connection, gun: str, update: ValidatedUpdate, previous: Signed[Snapshot] | None, now: datetime
    ) -> bytes:
        meta = {name: FileMeta.of(data).to_json() for name, data in update.current_bytes().items()}
        return self._sign(conn, gun, "snapshot", update.root.body, meta, previous, now + self.config.snapshot_expiry)

    def _sign_timestamp(
        self, conn: Connection, gun: str, root: Root, snapshot: bytes, previous: StoredFile | None, now: datetime
    ) -> bytes:
        prev = parse_metadata("timestamp", previous.data, Timestamp) if previous is not None else None
        meta = {"snapshot": FileMeta.of(snapshot).to_json()}
        return self._sign(conn, gun, "timestamp", root, meta, prev, now + self.config.timestamp_expiry)

    def _sign(
        self,
        conn: Connection,
        gun: str,
        role: str,
        root: Root,
        meta: dict[str, Any],
        previous: Signed[Snapshot] | Signed[Timestamp] | None,
        expires: datetime,
    ) -> bytes:
        key = self._signer(conn, gun, role, root)
        if key is None:  # validation guarantees the key for an update; a re-sign can find it gone
            raise MetadataNotFoundError(f"the server holds no {role} key listed in the root of {gun}")
        signed = {
            "_type": role.capitalize(),
            "expires": format_expires(expires),
            "meta": meta,
            "version": (previous.version if previous is not None else 0) + 1,
        }
        envelope = {"signed": signed, "signatures": [key.sign(canonical(signed))]}
        return json.dumps(envelope, separators=(",", ":")).encode()

    def _is_stale(self, timestamp: StoredFile) -> bool:
        expires = parse_metadata("timestamp", timestamp.data, Timestamp).expires
        return expires - self.clock() < self.config.resign_margin

    def _refresh_timestamp(self, gun: str) -> StoredFile:
        """Re-sign the timestamp (and an expired server-held snapshot) and return the new latest timestamp."""
        with self.db.write() as conn:
            stored = self.store.current(conn, gun)
            current = stored.get("timestamp")
            if current is None:
                raise MetadataNotFoundError(f"no timestamp for {gun}")
            if not self._is_stale(current) or "root" not in stored or "snapshot" not in stored:
                return current
            now = self.clock()
            root = parse_metadata("root", stored["root"].data, Root).body
            snapshot_file = stored["snapshot"]
            snapshot = parse_metadata("snapshot", snapshot_file.data, Snapshot)
            written: list[tuple[str, int, bytes]] = []
            snapshot_bytes = snapshot_file.data
            if snapshot.expires <= now and self._signer(conn, gun, "snapshot", root) is not None:
                meta = {name: m.to_json() for name, m in snapshot.body.meta.items()}
                expires = now + self.config.snapshot_expiry
                snapshot_bytes = self._sign(conn, gun, "snapshot", root, meta, snapshot, expires)
                written.append(("snapshot", _version_of(snapshot_bytes), snapshot_bytes))
            if self._signer(conn, gun, "timestamp", root) is None:
                return current  # nobody can sign it: serve what there is, the client judges its expiry
            timestamp = self._sign_timestamp(conn, gun, root, snapshot_bytes, current, now)
            version = _version_of(timestamp)
            written.append(("timestamp", version, timestamp))
            stamp = time.time()
            self.store.add_files(conn, gun, written, stamp)
            self.store.add_change(conn, gun, version, hashlib.sha256(timestamp).hexdigest(), "update", stamp)
            return StoredFile("timestamp", version, timestamp, stamp)


def _version_of(data: bytes) -> int:
    version = json.loads(data)["signed"]["version"]
    return int(version)


def _state(stored: Mapping[str, StoredFile]) -> RepositoryState:
    """The typed current state of a GUN from its newest files."""
    root = parse_metadata("root", stored["root"].data, Root) if "root" in stored else None
    targets = {
        name: parse_metadata(name, f.data, Targets)
        for name, f in stored.items()
        if name == "targets" or is_delegation(name)
    }
    snapshot = parse_metadata("snapshot", stored["snapshot"].data, Snapshot) if "snapshot" in stored else None
    return RepositoryState(root, targets, snapshot)
