"""The trust service over a real database (SQLite and PostgreSQL): storage byte for byte, server signing,
timestamp freshness, key sealing, deletion and the change feed."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import update

from trustyard.config import Settings
from trustyard.db.engine import Database
from trustyard.db.models import trust_keys
from trustyard.trust.errors import BadHierarchyError, MetadataNotFoundError, VersionError
from trustyard.trust.metadata import Snapshot, Timestamp, parse_metadata
from trustyard.trust.sealing import KeyEncryptionKey, KeySealError, ServerKey
from trustyard.trust.service import TrustConfig, TrustService

from .simulator import SimKey, SimRepo, now

GUN = "example.com/app"


class Clock:
    """A settable clock, so tests can move past expiry without waiting."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return now() + self.offset


@pytest.fixture
def clock() -> Clock:
    """The service's clock."""
    return Clock()


@pytest.fixture
def service(database_url: str, clock: Clock) -> Iterator[TrustService]:
    """A trust service over a migrated database."""
    db = Database(database_url)
    try:
        yield TrustService(db=db, kek=KeyEncryptionKey(os.urandom(32)), config=TrustConfig(), clock=clock)
    finally:
        db.dispose()


class Publisher:
    """A client of the service, as the notary CLI drives it: server keys first, then uploads."""

    def __init__(self, service: TrustService) -> None:
        self.service = service
        ts = service.public_key(GUN, "timestamp")
        self.repo = SimRepo(GUN, SimKey.ed25519())
        self.repo.timestamp_key = SimKey(self.repo.timestamp_key.private, ts)  # the public half is the server's

    def publish(self, files: dict[str, bytes]) -> None:
        """POST an update."""
        self.service.update(GUN, files)


@pytest.fixture
def publisher(service: TrustService) -> Publisher:
    """A publisher that has published one target."""
    p = Publisher(service)
    p.repo.add_target("targets", "v1", b"hello\n")
    p.publish(p.repo.first_publish())
    return p


def test_files_are_served_byte_for_byte_by_latest_checksum_and_version(
    service: TrustService, publisher: Publisher
) -> None:
    for role in ("root", "targets", "snapshot"):
        data = publisher.repo.current[role]
        assert service.get(GUN, role).data == data
        assert service.get(GUN, role, checksum=hashlib.sha256(data).hexdigest()).data == data
        assert service.get(GUN, role, checksum=hashlib.sha512(data).hexdigest()).data == data
    assert service.get(GUN, "root", version=1).data == publisher.repo.current["root"]
    with pytest.raises(MetadataNotFoundError):
        service.get(GUN, "targets", checksum="0" * 64)
    with pytest.raises(MetadataNotFoundError):
        service.get("other/gun", "root")


def test_timestamp_is_server_signed_and_names_the_snapshot(service: TrustService, publisher: Publisher) -> None:
    ts = parse_metadata("timestamp", service.get(GUN, "timestamp").data, Timestamp)
    key = service.public_key(GUN, "timestamp")
    ts.verify({key.key_id: key}, 1, VersionError, "timestamp")
    assert ts.body.snapshot.matches(service.get(GUN, "snapshot").data)
    assert ts.expires - now() > timedelta(days=13)


def test_timestamp_key_is_stable_once_listed_and_rotates_on_post(service: TrustService, publisher: Publisher) -> None:
    listed = publisher.repo.timestamp_key.key_id
    assert service.public_key(GUN, "timestamp").key_id == listed
    rotated = service.rotate_key(GUN, "timestamp")
    assert rotated.key_id != listed
    assert service.public_key(GUN, "timestamp").key_id == listed  # pending until a root lists it
    with pytest.raises(MetadataNotFoundError):
        service.public_key(GUN, "root")


def test_rollback_upload_is_refused_with_version(service: TrustService, publisher: Publisher) -> None:
    repo = publisher.repo
    replay = repo.targets_role(version=repo.versions["targets"])
    with pytest.raises(VersionError):
        service.update(GUN, {"targets": replay, "snapshot": repo.snapshot()})
    assert service.get(GUN, "targets").version == 1


def test_server_signs_snapshot_after_snapshot_key_rotation(service: TrustService, publisher: Publisher) -> None:
    repo = publisher.repo
    with pytest.raises(BadHierarchyError):
        service.update(GUN, {"targets": repo.targets_role()})
    server_snapshot = service.rotate_key(GUN, "snapshot")
    repo.snapshot_key = SimKey(repo.snapshot_key.private, server_snapshot)
    service.update(GUN, {"root": repo.root()})
    snap = parse_metadata("snapshot", service.get(GUN, "snapshot").data, Snapshot)
    snap.verify({server_snapshot.key_id: server_snapshot}, 1, VersionError, "snapshot")
    assert snap.body.meta["root"].matches(service.get(GUN, "root").data)
    repo.add_target("targets", "v2", b"two")
    service.update(GUN, {"targets": repo.targets_role()})  # no snapshot: the server makes it
    snap = parse_metadata("snapshot", service.get(GUN, "snapshot").data, Snapshot)
    assert snap.body.meta["targets"].matches(service.get(GUN, "targets").data)


def test_attack_expired_timestamp_is_never_served(service: TrustService, publisher: Publisher, clock: Clock) -> None:
    """Freeze: a timestamp past (or near) its expiry is re-signed before it is served."""
    first = service.get(GUN, "timestamp")
    clock.offset = timedelta(days=15)
    served = service.get(GUN, "timestamp")
    assert served.version == first.version + 1
    ts = parse_metadata("timestamp", served.data, Timestamp)
    assert ts.expires > clock() + timedelta(days=13)
    assert ts.body.snapshot.matches(service.get(GUN, "snapshot").data)
    assert service.get(GUN, "timestamp").data == served.data  # fresh ones are not re-signed again


def test_delete_forgets_everything(service: TrustService, publisher: Publisher) -> None:
    service.delete(GUN)
    for role in ("root", "targets", "snapshot", "timestamp"):
        with pytest.raises(MetadataNotFoundError):
            service.get(GUN, role)
    feed = service.changes(GUN, 0, 10)
    assert [c.category for c in feed] == ["update", "deletion"]


def test_change_feed_records_each_update(service: TrustService, publisher: Publisher) -> None:
    repo = publisher.repo
    repo.add_target("targets", "v2", b"two")
    service.update(GUN, {"targets": repo.targets_role(), "snapshot": repo.snapshot()})
    feed = service.changes(GUN, 0, 10)
    assert [c.version for c in feed] == [1, 2]
    assert feed[-1].sha256 == hashlib.sha256(service.get(GUN, "timestamp").data).hexdigest()
    assert service.changes(None, feed[0].id, 10) == feed[1:]
    assert service.changes(GUN, 0, -1) == feed[1:]


def test_server_keys_are_sealed_and_bound_to_their_gun(
    service: TrustService, publisher: Publisher, database_url: str
) -> None:
    key = service.public_key(GUN, "timestamp")
    with service.db.read() as conn:
        sealed = service.store.keys(conn, GUN, "timestamp")[0].sealed
    other = KeyEncryptionKey(os.urandom(32))
    with pytest.raises(KeySealError):
        other.open(GUN, "timestamp", key, sealed)
    with pytest.raises(KeySealError):
        service.kek.open("other/gun", "timestamp", key, sealed)
    assert service.kek.open(GUN, "timestamp", key, sealed).public.key_id == key.key_id
    raw = base64.b64decode(key.public)
    assert raw not in sealed
    with service.db.write() as conn:  # tampering with the sealed key makes signing fail closed
        conn.execute(update(trust_keys).values(sealed=sealed[:-1] + bytes([sealed[-1] ^ 1])))
    repo = publisher.repo
    with pytest.raises(KeySealError):
        service.update(GUN, {"targets": repo.targets_role(), "snapshot": repo.snapshot()})


def test_kek_from_settings_file_is_created_once_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key = ServerKey.generate()
    sealed = KeyEncryptionKey.from_settings(settings).seal(GUN, "timestamp", key)
    assert (tmp_path / "trust" / "kek").stat().st_mode & 0o777 == 0o600
    reopened = KeyEncryptionKey.from_settings(settings).open(GUN, "timestamp", key.public, sealed)
    assert reopened.public == key.public


def test_kek_from_settings_value(tmp_path: Path) -> None:
    kek = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(data_dir=tmp_path, trust_kek=SecretStr(kek))
    KeyEncryptionKey.from_settings(settings)
    assert not (tmp_path / "trust").exists()
    with pytest.raises(KeySealError):
        KeyEncryptionKey.from_settings(Settings(data_dir=tmp_path, trust_kek=SecretStr("c2hvcnQ=")))


def test_concurrent_identical_updates_store_one(service: TrustService, publisher: Publisher) -> None:
    """Two publishers racing with the same next version: one wins, the other gets VERSION, nothing is mixed."""
    repo = publisher.repo
    repo.add_target("targets", "v2", b"two")
    files = {"targets": repo.targets_role(), "snapshot": repo.snapshot()}
    outcomes: list[str] = []

    def publish() -> None:
        try:
            service.update(GUN, files)
            outcomes.append("ok")
        except VersionError:
            outcomes.append("version")

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "version"]
    assert service.get(GUN, "targets").data == files["targets"]
    assert [c.version for c in service.changes(GUN, 0, 10)] == [1, 2]
