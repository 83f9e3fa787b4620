"""Validation of updates as notary-server does it: the happy paths and each attack of issue 6, by name.

Each attack test builds what a hostile publisher, a stolen key or a replaying proxy would upload with the
simulator, and checks the exact error code and Go error name the real client would print.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from trustyard.trust.errors import (
    BadHierarchyError,
    BadRootError,
    BadSnapshotError,
    BadTargetsError,
    InvalidRoleError,
    MalformedJSONError,
    TrustError,
    ValidationFailedError,
    VersionError,
)
from trustyard.trust.metadata import Root, Snapshot, Targets, parse_metadata
from trustyard.trust.validation import RepositoryState, ValidatedUpdate, validate_update

from .simulator import SimKey, SimRepo, envelope, now

GUN = "example.com/app"


def held(repo: SimRepo, *, snapshot: bool = False) -> dict[str, frozenset[str]]:
    """The keys a server holds for ``repo``: its timestamp key, and the snapshot key when server-managed."""
    return {
        "timestamp": frozenset({repo.timestamp_key.key_id}),
        "snapshot": frozenset({repo.snapshot_key.key_id}) if snapshot else frozenset(),
    }


def validate(repo: SimRepo, files: dict[str, bytes], state: RepositoryState, **kw: bool) -> ValidatedUpdate:
    """Validate ``files`` for ``repo`` against ``state`` now."""
    return validate_update(GUN, files, state, held_keys=held(repo, **kw), now=now())


def accepted(update: ValidatedUpdate, state: RepositoryState) -> RepositoryState:
    """The state after storing ``update``."""
    return RepositoryState(update.root, update.current_targets, update.snapshot or state.snapshot)


@pytest.fixture
def repo() -> SimRepo:
    """A repository with one target, not yet published."""
    r = SimRepo(GUN, SimKey.ed25519())
    r.add_target("targets", "v1", b"hello\n")
    return r


@pytest.fixture
def published(repo: SimRepo) -> RepositoryState:
    """The state after the first publish of ``repo``."""
    return accepted(validate(repo, repo.first_publish(), RepositoryState()), RepositoryState())


def test_first_publish_is_accepted(repo: SimRepo) -> None:
    update = validate(repo, repo.first_publish(), RepositoryState())
    assert update.root_changed and update.root.version == 1
    assert set(update.current_targets) == {"targets"}
    assert update.snapshot is not None and update.snapshot.version == 1


def test_incremental_publish_is_accepted(repo: SimRepo, published: RepositoryState) -> None:
    repo.add_target("targets", "v2", b"two")
    update = validate(repo, {"targets": repo.targets_role(), "snapshot": repo.snapshot()}, published)
    assert set(update.current_targets["targets"].body.targets) == {"v1", "v2"}


def test_delegation_publish_is_accepted(repo: SimRepo, published: RepositoryState) -> None:
    repo.delegate("targets/releases", SimKey.x509("releases"), ["v"])
    repo.add_target("targets/releases", "v2", b"two")
    files = {"targets": repo.targets_role(), "targets/releases": repo.targets_role("targets/releases")}
    files["snapshot"] = repo.snapshot()
    update = validate(repo, files, published)
    assert set(update.current_targets) == {"targets", "targets/releases"}


def test_new_gun_without_root_is_refused(repo: SimRepo) -> None:
    with pytest.raises(ValidationFailedError, match=r"no pre-existing root and no root provided in update\."):
        validate(repo, {"targets": repo.targets_role()}, RepositoryState())


def test_unknown_role_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    with pytest.raises(InvalidRoleError) as e:
        validate(repo, {"foo": b"{}"}, published)
    assert e.value.detail() == "foo"


def test_garbage_json_is_malformed(repo: SimRepo, published: RepositoryState) -> None:
    with pytest.raises(MalformedJSONError):
        validate(repo, {"targets": b"not json", "snapshot": repo.snapshot()}, published)


# -- attacks (issue 6) -------------------------------------------------------------------------------------


def test_attack_forged_target_signature_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    """A targets file signed by a key the root does not trust (or tampered after signing)."""
    repo.add_target("targets", "evil", b"malware")
    forged = repo.targets_role(signer=SimKey.ecdsa())
    with pytest.raises(BadTargetsError) as e:
        validate(repo, {"targets": forged, "snapshot": repo.snapshot()}, published)
    assert e.value.detail() == {
        "Name": "ErrBadTargets",
        "Error": {"Msg": "valid signatures did not meet threshold for targets"},
    }


def test_attack_tampered_target_bytes_are_refused(repo: SimRepo, published: RepositoryState) -> None:
    good = repo.targets_role()
    tampered = good.replace(b'"length":6', b'"length":7')
    assert tampered != good
    with pytest.raises(BadTargetsError, match="threshold"):
        validate(repo, {"targets": tampered, "snapshot": repo.snapshot()}, published)


def test_attack_rollback_version_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    """A validly signed targets file whose version is not above the stored one (replay of an old upload)."""
    old = parse_metadata("targets", repo.current["targets"], Targets)
    replay = repo.targets_role(version=old.version)
    with pytest.raises(VersionError) as e:
        validate(repo, {"targets": replay, "snapshot": repo.snapshot()}, published)
    assert (e.value.code, e.value.status) == ("VERSION", 400)
    with pytest.raises(VersionError):
        validate(
            repo, {"targets": repo.targets_role(version=old.version - 1 or 1), "snapshot": repo.snapshot()}, published
        )


def test_attack_rollback_snapshot_version_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    repo.versions["snapshot"] = 0
    with pytest.raises(VersionError):
        validate(repo, {"targets": repo.targets_role(), "snapshot": repo.snapshot()}, published)


def test_attack_root_rotation_not_signed_by_old_root_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    """A new root with a new root key, signed only by the new key: a takeover without the old root key."""
    repo.root_key = SimKey.x509(GUN)
    with pytest.raises(BadRootError, match="threshold for root"):
        validate(repo, {"root": repo.root()}, published, snapshot=True)


def test_root_rotation_signed_by_old_and_new_root_is_accepted(repo: SimRepo, published: RepositoryState) -> None:
    old_key = repo.root_key
    repo.root_key = SimKey.x509(GUN)
    update = validate(repo, {"root": repo.root(signers=(old_key, repo.root_key))}, published, snapshot=True)
    assert update.root.version == 2 and update.snapshot is None  # the server signs the snapshot


def test_root_rotation_not_signed_by_new_root_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    old_key = repo.root_key
    repo.root_key = SimKey.x509(GUN)
    with pytest.raises(BadRootError, match=r"threshold for root$"):
        validate(repo, {"root": repo.root(signers=(old_key,))}, published, snapshot=True)


def test_root_version_gap_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    repo.versions["root"] = 5
    with pytest.raises(BadRootError, match="version must be 2"):
        validate(repo, {"root": repo.root()}, published, snapshot=True)


def test_root_certificate_cn_must_be_the_gun(repo: SimRepo) -> None:
    repo.root_key = SimKey.x509("other.example/app")
    with pytest.raises(BadRootError, match="does not match the GUN"):
        validate(repo, repo.first_publish(), RepositoryState())


def test_expired_root_certificate_is_refused(repo: SimRepo) -> None:
    repo.root_key = SimKey.x509(GUN, days=1, not_before=now() - timedelta(days=3))
    with pytest.raises(BadRootError, match="not valid now"):
        validate(repo, repo.first_publish(), RepositoryState())


def test_root_must_list_a_server_timestamp_key(repo: SimRepo) -> None:
    repo.timestamp_key = SimKey.ed25519()
    with pytest.raises(BadRootError, match="timestamp key"):
        validate_update(GUN, repo.first_publish(), RepositoryState(), held_keys={"timestamp": frozenset()}, now=now())


def test_attack_delegation_outside_its_paths_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    """A delegated key that signs a target outside the prefixes its parent gave it."""
    repo.delegate("targets/releases", SimKey.x509("releases"), ["release-"])
    repo.add_target("targets/releases", "latest", b"evil")
    files = {"targets": repo.targets_role(), "targets/releases": repo.targets_role("targets/releases")}
    files["snapshot"] = repo.snapshot()
    with pytest.raises(BadTargetsError, match="outside its delegated paths"):
        validate(repo, files, published)


def test_delegation_signed_by_undelegated_key_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    repo.delegate("targets/releases", SimKey.x509("releases"), [""])
    repo.add_target("targets/releases", "v2", b"two")
    files = {"targets": repo.targets_role()}
    files["targets/releases"] = repo.targets_role("targets/releases", signer=SimKey.ecdsa())
    files["snapshot"] = repo.snapshot()
    with pytest.raises(BadTargetsError, match="threshold for targets/releases"):
        validate(repo, files, published)


def test_delegation_without_parent_delegation_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    repo.delegation_keys["targets/releases"] = SimKey.ecdsa()
    files = {"targets/releases": repo.targets_role("targets/releases"), "snapshot": repo.snapshot()}
    with pytest.raises(BadHierarchyError) as e:
        validate(repo, files, published)
    assert e.value.detail()["Name"] == "ErrBadHierarchy"


def test_attack_mix_and_match_snapshot_and_targets_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    """A validly signed new snapshot that names an older targets file than the one being uploaded."""
    old_targets = repo.current["targets"]
    repo.add_target("targets", "v2", b"two")
    new_targets = repo.targets_role()
    mixed = repo.snapshot(meta={"root": repo.current["root"], "targets": old_targets})
    with pytest.raises(BadSnapshotError, match="wrong hashes for targets"):
        validate(repo, {"targets": new_targets, "snapshot": mixed}, published)


def test_snapshot_naming_a_missing_role_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    meta = {"root": repo.current["root"], "targets": repo.current["targets"], "targets/ghost": b"x"}
    with pytest.raises(BadSnapshotError, match="does not exist"):
        validate(repo, {"snapshot": repo.snapshot(meta=meta)}, published)


def test_snapshot_signed_by_wrong_key_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    with pytest.raises(BadSnapshotError, match="threshold for snapshot"):
        validate(repo, {"targets": repo.targets_role(), "snapshot": repo.snapshot(signer=SimKey.ecdsa())}, published)


def test_missing_snapshot_without_server_key_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    with pytest.raises(BadHierarchyError, match="does not hold current snapshot key"):
        validate(repo, {"targets": repo.targets_role()}, published)


def test_missing_snapshot_with_server_key_is_accepted(repo: SimRepo, published: RepositoryState) -> None:
    update = validate(repo, {"targets": repo.targets_role()}, published, snapshot=True)
    assert update.snapshot is None


@pytest.mark.parametrize("role", ["root", "targets", "snapshot"])
def test_attack_expired_metadata_is_refused(repo: SimRepo, role: str) -> None:
    """Metadata whose ``expires`` has passed, even validly signed, is never accepted."""
    past = now() - timedelta(days=1)
    files = {
        "root": repo.root(expires=past if role == "root" else None),
        "targets": repo.targets_role(expires=past if role == "targets" else None),
    }
    files["snapshot"] = repo.snapshot(expires=past if role == "snapshot" else None)
    with pytest.raises(TrustError, match=f"^{role} expired at ") as e:
        validate(repo, files, RepositoryState())
    assert e.value.code == "INVALID_UPDATE"


def test_uploaded_timestamp_is_refused(repo: SimRepo, published: RepositoryState) -> None:
    with pytest.raises(ValidationFailedError, match="timestamp"):
        validate(repo, {"timestamp": b"{}"}, published)


def test_parsed_metadata_keeps_exact_bytes(repo: SimRepo) -> None:
    raw = repo.root()
    padded = raw[:-1] + b',"pad":"x"}'
    root = parse_metadata("root", padded, Root)
    assert root.raw == padded and root.body.version == 1
    snap = parse_metadata(
        "snapshot",
        envelope({"_type": "Snapshot", "expires": "2030-01-01T00:00:00.123456789Z", "meta": {}, "version": 1}),
        Snapshot,
    )
    assert snap.expires.microsecond == 123456


def test_root_changing_targets_key_needs_targets_signed_by_it(repo: SimRepo, published: RepositoryState) -> None:
    repo.targets_key = SimKey.ecdsa()
    with pytest.raises(BadTargetsError, match="threshold for targets"):
        validate(repo, {"root": repo.root(), "snapshot": repo.snapshot()}, published)
    repo.versions["root"] -= 1
    files = {"root": repo.root(), "targets": repo.targets_role()}
    files["snapshot"] = repo.snapshot()
    assert validate(repo, files, published).root.version == 2


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda: SimKey.x509("releases"), id="ecdsa-x509"),
        pytest.param(SimKey.ecdsa, id="ecdsa"),
        pytest.param(SimKey.ed25519, id="ed25519"),
        pytest.param(lambda: SimKey.rsa_x509("releases"), id="rsa-x509-pss"),
        pytest.param(lambda: SimKey.rsa_x509("releases", method="rsapkcs1v15"), id="rsa-x509-pkcs1v15"),
    ],
)
def test_delegation_keys_of_every_notary_type_verify(
    repo: SimRepo, published: RepositoryState, make_key: Callable[[], SimKey]
) -> None:
    key = make_key()
    repo.delegate("targets/releases", key, [""])
    repo.add_target("targets/releases", "v2", b"two")
    files = {"targets": repo.targets_role(), "targets/releases": repo.targets_role("targets/releases")}
    files["snapshot"] = repo.snapshot()
    assert "targets/releases" in validate(repo, files, published).current_targets


def test_signature_method_must_match_the_key_type(repo: SimRepo, published: RepositoryState) -> None:
    """An RSA key's signature labelled as ecdsa (or any other method) never counts."""
    key = SimKey.rsa_x509("releases")
    repo.delegate("targets/releases", key, [""])
    files = {"targets": repo.targets_role()}
    good = json.loads(repo.targets_role("targets/releases"))
    good["signatures"][0]["method"] = "ecdsa"
    files["targets/releases"] = json.dumps(good, separators=(",", ":")).encode()
    files["snapshot"] = repo.snapshot()
    with pytest.raises(BadTargetsError, match="threshold for targets/releases"):
        validate(repo, files, published)


def test_go_nulls_for_empty_delegations_and_targets_are_accepted(repo: SimRepo, published: RepositoryState) -> None:
    """After ``notary delegation remove`` the client sends ``"roles": null`` (Go's nil slice), and may send
    ``"targets": null``; both mean empty."""
    signed = {
        "_type": "Targets",
        "delegations": {"keys": None, "roles": None},
        "expires": "2030-01-01T00:00:00Z",
        "targets": None,
        "version": 2,
    }
    files = {"targets": envelope(signed, repo.targets_key)}
    repo.current["targets"] = files["targets"]
    files["snapshot"] = repo.snapshot()
    update = validate(repo, files, published)
    assert update.current_targets["targets"].body.targets == {}
