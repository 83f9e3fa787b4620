"""The server's own view of what is signed (``trust.signed``): the chain verified, tags resolved, results cached.

Trust data is published through the real ``TrustService`` (validation, server-signed snapshot and timestamp)
with the simulator's keys; the chain checks that validation makes impossible (a delegation signing outside
its paths, a role expired since, stored bytes changed behind the service's back) are driven through
``verify_repository`` directly or by editing the stored rows, as a hostile storage would.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from trustyard.db.engine import Database
from trustyard.db.models import trust_files
from trustyard.trust.metadata import FileMeta, format_expires
from trustyard.trust.sealing import KeyEncryptionKey
from trustyard.trust.service import TrustConfig, TrustService
from trustyard.trust.signed import (
    REPO_ADMIN,
    SignedLookup,
    UntrustedError,
    gun_candidates,
    listen_hosts,
    signer_name,
    verify_repository,
)

from .simulator import SimKey, SimRepo, envelope, now
from .test_service import Clock

REPOSITORY = "library/app"
HOST = "127.0.0.1:5000"
DOCKER_GUN = f"{HOST}/{REPOSITORY}"
V1 = b'{"schemaVersion":2,"config":"one"}'
V2 = b'{"schemaVersion":2,"config":"two"}'


def digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def clock() -> Clock:
    """The clock of the service and the lookup."""
    return Clock()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated metadata database (SQLite and PostgreSQL)."""
    database = Database(database_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def service(db: Database, clock: Clock) -> TrustService:
    """The trust service that publishes (and re-signs) the metadata the lookup reads."""
    return TrustService(db=db, kek=KeyEncryptionKey(os.urandom(32)), config=TrustConfig(), clock=clock)


@pytest.fixture
def lookup(db: Database, service: TrustService, clock: Clock) -> SignedLookup:
    """The lookup, knowing this registry as ``127.0.0.1:5000``."""
    return SignedLookup(db=db, trust=lambda: service, hosts={HOST}, clock=clock)


def publisher(service: TrustService, gun: str) -> SimRepo:
    """A publisher of ``gun`` whose root lists the server's timestamp key."""
    repo = SimRepo(gun, SimKey.ed25519())
    repo.timestamp_key = SimKey(repo.timestamp_key.private, service.public_key(gun, "timestamp"))
    return repo


def test_a_published_tag_resolves_to_its_digest_size_and_signer(service: TrustService, lookup: SignedLookup) -> None:
    repo = publisher(service, DOCKER_GUN)
    repo.add_target("targets", "v1", V1)
    service.update(DOCKER_GUN, repo.first_publish())
    [trusted] = lookup.targets(REPOSITORY)
    assert trusted.gun == DOCKER_GUN and trusted.problem is None
    target = trusted.targets["v1"]
    assert (target.digest, target.size, target.role, target.signers) == (digest(V1), len(V1), "targets", (REPO_ADMIN,))
    judged = lookup.judge_tag(REPOSITORY, "v1", digest(V1))
    assert judged.signed and judged.signed_digest == digest(V1) and judged.signers == (REPO_ADMIN,)
    assert judged.reason == "tag 'v1' is signed by Repo Admin"
    moved = lookup.judge_tag(REPOSITORY, "v1", digest(V2))
    assert not moved.signed and moved.signed_digest == digest(V1)
    assert moved.reason == f"tag 'v1' is signed for {digest(V1)}, but it points at {digest(V2)}"
    assert lookup.judge_digest(REPOSITORY, digest(V1)).signed
    unsigned = lookup.judge_digest(REPOSITORY, digest(V2))
    assert not unsigned.signed and unsigned.signed_digest is None
    assert unsigned.reason == f"{digest(V2)} has no signed target in the trust data of 'library/app'"


def test_releases_delegation_wins_as_docker_pulls_it_and_every_signer_is_named(
    service: TrustService, lookup: SignedLookup
) -> None:
    repo = publisher(service, REPOSITORY)
    alice, bob = SimKey.ecdsa(), SimKey.ecdsa()
    repo.delegate("targets/releases", alice, [""])
    repo.delegate("targets/bob", bob, [""])
    repo.add_target("targets", "v1", V1)
    repo.add_target("targets/releases", "v1", V2)
    repo.add_target("targets/bob", "v1", V2)
    root, targets = repo.root(), repo.targets_role()
    files = {"root": root, "targets": targets}
    files |= {
        "targets/releases": repo.targets_role("targets/releases"),
        "targets/bob": repo.targets_role("targets/bob"),
    }
    service.update(REPOSITORY, files | {"snapshot": repo.snapshot()})
    [trusted] = lookup.targets(REPOSITORY)
    target = trusted.targets["v1"]
    assert target.digest == digest(V2) and target.role == "targets/releases"
    assert target.signers == ("bob",), "as docker trust inspect lists them: releases is the repository's own"
    assert signer_name("targets/team/ci") == "team/ci"


def test_no_trust_data_and_foreign_namespaces_sign_nothing(service: TrustService, lookup: SignedLookup) -> None:
    assert lookup.targets(REPOSITORY) == []
    judged = lookup.judge_tag(REPOSITORY, "v1", digest(V1))
    assert judged.reason == "tag 'v1' has no signature: repository 'library/app' has no trust data"
    # project evil.example's repository evil.example/library/app is not this registry's library/app
    repo = publisher(service, f"evil.example/{REPOSITORY}")
    repo.add_target("targets", "v1", V1)
    service.update(f"evil.example/{REPOSITORY}", repo.first_publish())
    assert lookup.targets(REPOSITORY) == []
    assert lookup.targets(REPOSITORY, extra_hosts={"evil.example"})[0].targets["v1"].digest == digest(V1)


def test_verification_is_cached_until_the_timestamp_changes(service: TrustService, lookup: SignedLookup) -> None:
    repo = publisher(service, REPOSITORY)
    repo.add_target("targets", "v1", V1)
    service.update(REPOSITORY, repo.first_publish())
    for _ in range(5):
        assert lookup.judge_tag(REPOSITORY, "v1", digest(V1)).signed
    assert lookup.verifications == 1
    repo.add_target("targets", "v2", V2)
    service.update(REPOSITORY, {"targets": repo.targets_role(), "snapshot": repo.snapshot()})
    assert lookup.judge_tag(REPOSITORY, "v2", digest(V2)).signed
    assert lookup.verifications == 2


def test_expired_targets_are_not_trusted_and_the_reason_says_so(
    service: TrustService, lookup: SignedLookup, clock: Clock
) -> None:
    repo = publisher(service, REPOSITORY)
    repo.add_target("targets", "v1", V1)
    expiry = now() + timedelta(days=2)
    service.update(
        REPOSITORY, {"root": repo.root(), "targets": repo.targets_role(expires=expiry), "snapshot": repo.snapshot()}
    )
    assert lookup.judge_tag(REPOSITORY, "v1", digest(V1)).signed
    clock.offset = timedelta(days=3)  # the timestamp is re-signed on the way; targets stay expired
    judged = lookup.judge_tag(REPOSITORY, "v1", digest(V1))
    assert not judged.signed
    assert judged.reason.startswith(
        "tag 'v1' has no valid signature: the trust data does not verify (library/app: targets expired at "
    )


def test_stored_targets_changed_behind_the_services_back_are_not_trusted(
    db: Database, service: TrustService, lookup: SignedLookup
) -> None:
    repo = publisher(service, REPOSITORY)
    repo.add_target("targets", "v1", V1)
    service.update(REPOSITORY, repo.first_publish())
    assert lookup.judge_tag(REPOSITORY, "v1", digest(V1)).signed
    repo.targets["targets"]["v1"] = FileMeta.of(V2).to_json()
    forged = repo.targets_role(version=1)  # validly signed, but not what the snapshot names
    with db.write() as conn:
        conn.execute(
            update(trust_files)
            .where(trust_files.c.gun == REPOSITORY, trust_files.c.role == "targets")
            .values(data=forged, sha256=hashlib.sha256(forged).hexdigest())
        )
    assert lookup.judge_tag(REPOSITORY, "v1", digest(V1)).signed, "cached: the timestamp did not change"
    fresh = SignedLookup(db=db, trust=lambda: service, hosts={HOST})  # a registry process started later
    judged = fresh.judge_tag(REPOSITORY, "v1", digest(V2))
    assert not judged.signed
    assert "the snapshot names other targets metadata than is stored" in judged.reason


# -- the chain, without the service's validation in front ----------------------------------------------------


def signed_files(
    repo: SimRepo, *, delegated: tuple[str, list[str], dict[str, bytes]] | None = None
) -> dict[str, bytes]:
    """Root, targets, an optional delegation, snapshot and a timestamp signed with the simulator's keys."""
    if delegated is not None:
        name, paths, targets = delegated
        key = SimKey.ecdsa()
        repo.delegate(name, key, paths)
        for target, content in targets.items():
            repo.add_target(name, target, content)
    files = {"root": repo.root(), "targets": repo.targets_role()}
    if delegated is not None:
        files[delegated[0]] = repo.targets_role(delegated[0])
    files["snapshot"] = repo.snapshot()
    signed = {
        "_type": "Timestamp",
        "expires": format_expires(now() + timedelta(days=14)),
        "meta": {"snapshot": FileMeta.of(files["snapshot"]).to_json()},
        "version": 1,
    }
    files["timestamp"] = envelope(signed, repo.timestamp_key)
    return files


def test_a_delegation_counts_only_inside_its_paths() -> None:
    repo = SimRepo(REPOSITORY, SimKey.ed25519())
    files = signed_files(repo, delegated=("targets/releases", ["rel-"], {"rel-1": V1, "v1": V2}))
    trusted = verify_repository(REPOSITORY, files, now())
    assert set(trusted.targets) == {"rel-1"}
    assert trusted.targets["rel-1"].signers == (REPO_ADMIN,)


def test_a_timestamp_not_naming_the_stored_snapshot_is_untrusted() -> None:
    repo = SimRepo(REPOSITORY, SimKey.ed25519())
    repo.add_target("targets", "v1", V1)
    files = signed_files(repo)
    files["snapshot"] = repo.snapshot()  # a newer snapshot the timestamp does not name
    with pytest.raises(UntrustedError, match="the timestamp names another snapshot than is stored"):
        verify_repository(REPOSITORY, files, now())


def test_a_timestamp_signed_by_another_key_is_untrusted() -> None:
    repo = SimRepo(REPOSITORY, SimKey.ed25519())
    files = signed_files(repo)
    repo.timestamp_key = SimKey.ed25519()
    files["timestamp"] = signed_files(repo)["timestamp"]  # root now lists the new key; keep the old root
    files["root"] = signed_files(SimRepo(REPOSITORY, SimKey.ed25519()))["root"]
    with pytest.raises(UntrustedError, match="valid signatures did not meet threshold for timestamp"):
        verify_repository(REPOSITORY, files, now())


def test_hosts_and_candidate_guns() -> None:
    assert listen_hosts("0.0.0.0:5000", ["Reg.Example"]) == {"127.0.0.1:5000", "localhost:5000", "reg.example"}
    assert listen_hosts("10.1.2.3:443", []) == {"10.1.2.3:443"}
    assert gun_candidates("a/b", {"z:1", "a:2"}) == ["a/b", "a:2/a/b", "z:1/a/b"]
