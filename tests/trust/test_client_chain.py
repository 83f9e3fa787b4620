"""The trust client's chain verification (``TrustedChain``) on real metadata made by the real `notary` client.

A module fixture runs Debian's notary 0.7.0 against `trustyard serve` (TLS, token auth) and keeps copies of
what the client itself accepted and cached after each step: a first publish, a second one with a delegation,
two root rotations, and another repository. The tests feed those exact bytes, unmodified or tampered with,
to the pure verifier: a forged signature, a rollback, expired metadata, a root of another repository, a
root rotation that skips a version, mixed-and-matched snapshot and targets.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from interop.notary_client import Notary, client, make_delegation, running_trustyard
from interop.servers import TrustyardServer
from trustyard.trust.client import TrustClient
from trustyard.trust.client_chain import ChainError, TrustedChain
from trustyard.trust.client_http import HttpSession
from trustyard.trust.keyfiles import KeyStore
from trustyard.trust.metadata import FileMeta, Snapshot

GUN = "library/chain"
OTHER = "library/other-chain"
ROLES = ("root", "timestamp", "snapshot", "targets", "targets/releases")

Files = dict[str, bytes]


@dataclass(frozen=True)
class Recorded:
    """The metadata the real client cached after each step."""

    first: Files
    second: Files
    rotated: Files
    rotated_twice: Files
    other: Files
    server: TrustyardServer


def _cached(notary: Notary, gun: str) -> Files:
    folder = notary.trust_dir / "tuf" / gun / "metadata"
    return {role: (folder / f"{role}.json").read_bytes() for role in ROLES if (folder / f"{role}.json").exists()}


def _rotate_root(notary: Notary) -> None:
    """`notary key rotate GUN root`, answering its confirmation prompt (without "yes" it aborts with rc 0)."""
    done = subprocess.run(
        notary.argv("key", "rotate", GUN, "root"),
        input="yes\n",
        capture_output=True,
        text=True,
        env=notary.env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and "Aborting" not in done.stdout, done.stdout + done.stderr


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """Run the real client's publisher workflow once and record its verified metadata at each step."""
    assert shutil.which("notary") is not None, "the Debian package notary is missing (scripts/test installs it)"
    tmp = tmp_path_factory.mktemp("chain")
    payload = tmp / "target.txt"
    payload.write_bytes(b"hello\n")
    with running_trustyard(tmp) as server:
        notary = client(server, tmp, "publisher")
        notary.run("init", GUN)
        notary.run("add", GUN, "v1", str(payload))
        notary.run("publish", GUN)
        notary.run("list", GUN)
        first = _cached(notary, GUN)
        crt, key = make_delegation(tmp)
        notary.run("delegation", "add", GUN, "targets/releases", str(crt), "--all-paths")
        notary.run("publish", GUN)
        notary.run("key", "import", str(key), "--role", "targets/releases")
        notary.run("add", GUN, "v2", str(payload), "--roles", "targets/releases")
        notary.run("add", GUN, "v3", str(payload))
        notary.run("publish", GUN)
        notary.run("list", GUN)
        second = _cached(notary, GUN)
        _rotate_root(notary)
        notary.run("list", GUN)
        rotated = _cached(notary, GUN)
        _rotate_root(notary)
        notary.run("list", GUN)
        rotated_twice = _cached(notary, GUN)
        notary.run("init", OTHER)
        notary.run("add", OTHER, "v1", str(payload))
        notary.run("publish", OTHER)
        notary.run("list", OTHER)
        yield Recorded(first, second, rotated, rotated_twice, _cached(notary, OTHER), server)


def _now() -> datetime:
    return datetime.now(UTC)


def _load(files: Files, *, gun: str = GUN, now: datetime | None = None) -> TrustedChain:
    chain = TrustedChain(gun, now or _now())
    chain.pin_root(files["root"])
    chain.check_root_fresh()
    chain.load_timestamp(files["timestamp"])
    chain.load_snapshot(files["snapshot"])
    chain.load_targets("targets", files["targets"])
    if "targets/releases" in files:
        chain.load_targets("targets/releases", files["targets/releases"])
    return chain


def _version(data: bytes) -> int:
    version = json.loads(data)["signed"]["version"]
    assert isinstance(version, int)
    return version


def _forge_signature(data: bytes) -> bytes:
    """The same metadata with one bit of its (first) signature flipped."""
    envelope = json.loads(data)
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[5] ^= 0x01
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return json.dumps(envelope, separators=(",", ":")).encode()


def test_the_real_clients_metadata_verifies_and_lists_what_it_signed(recorded: Recorded) -> None:
    first = _load(recorded.first)
    assert [(t.name, t.role) for t in first.signed_targets()] == [("v1", "targets")]
    second = _load(recorded.second)
    assert [(t.name, t.role) for t in second.signed_targets()] == [
        ("v1", "targets"),
        ("v3", "targets"),
        ("v2", "targets/releases"),
    ]
    hello = FileMeta.of(b"hello\n")
    assert all(t.meta.hashes["sha256"] == hello.hashes["sha256"] for t in second.signed_targets())
    assert set(second.verified_files()) == set(ROLES)


def test_a_forged_timestamp_signature_is_refused(recorded: Recorded) -> None:
    chain = TrustedChain(GUN, _now())
    chain.pin_root(recorded.second["root"])
    with pytest.raises(ChainError, match="valid signatures did not meet threshold for timestamp"):
        chain.load_timestamp(_forge_signature(recorded.second["timestamp"]))


def test_a_forged_root_signature_is_refused(recorded: Recorded) -> None:
    with pytest.raises(ChainError, match="valid signatures did not meet threshold for root"):
        TrustedChain(GUN, _now()).pin_root(_forge_signature(recorded.first["root"]))


def test_targets_forged_behind_a_compromised_snapshot_key_are_refused(recorded: Recorded) -> None:
    # the snapshot names the other repository's (validly signed) targets, as a stolen snapshot key could
    chain = TrustedChain(GUN, _now())
    chain.pin_root(recorded.second["root"])
    chain.load_timestamp(recorded.second["timestamp"])
    snapshot = chain.load_snapshot(recorded.second["snapshot"])
    foreign = recorded.other["targets"]
    forged = Snapshot(snapshot.version, snapshot.expires, {**snapshot.body.meta, "targets": FileMeta.of(foreign)})
    chain.snapshot = replace(snapshot, body=forged)
    with pytest.raises(ChainError, match="valid signatures did not meet threshold for targets"):
        chain.load_targets("targets", foreign)


def test_a_changed_target_list_does_not_match_the_snapshot(recorded: Recorded) -> None:
    chain = TrustedChain(GUN, _now())
    chain.pin_root(recorded.second["root"])
    chain.load_timestamp(recorded.second["timestamp"])
    chain.load_snapshot(recorded.second["snapshot"])
    tampered = recorded.second["targets"].replace(b'"length":6', b'"length":7')
    assert tampered != recorded.second["targets"]
    with pytest.raises(ChainError, match="checksum for targets did not match"):
        chain.load_targets("targets", tampered)


def test_rollback_to_older_validly_signed_metadata_is_refused(recorded: Recorded) -> None:
    seen = _version(recorded.second["timestamp"])
    old = _version(recorded.first["timestamp"])
    assert old < seen
    chain = TrustedChain(GUN, _now(), floors={"timestamp": seen})
    chain.pin_root(recorded.second["root"])
    with pytest.raises(ChainError, match=f"timestamp version {old} is lower than current version {seen}"):
        chain.load_timestamp(recorded.first["timestamp"])
    # the same for targets, when a server replays an old snapshot and targets under a fresh timestamp
    floors = {"targets": _version(recorded.second["targets"])}
    chain = TrustedChain(GUN, _now(), floors=floors)
    chain.pin_root(recorded.first["root"])
    chain.load_timestamp(recorded.first["timestamp"])
    chain.load_snapshot(recorded.first["snapshot"])
    with pytest.raises(ChainError, match=r"targets version \d+ is lower than current version"):
        chain.load_targets("targets", recorded.first["targets"])


def test_expired_metadata_is_refused(recorded: Recorded) -> None:
    # notary's timestamps last 14 days: a server frozen for 15 days serves an expired one
    with pytest.raises(ChainError, match="timestamp expired at"):
        _load(recorded.second, now=_now() + timedelta(days=15))
    # snapshot and targets last 3 years (the timestamp check comes first, so skip it here)
    chain = TrustedChain(GUN, _now())
    chain.pin_root(recorded.second["root"])
    chain.load_timestamp(recorded.second["timestamp"])
    chain.now = _now() + timedelta(days=4 * 365)
    with pytest.raises(ChainError, match="snapshot expired at"):
        chain.load_snapshot(recorded.second["snapshot"])
    # and a root older than its 10 years
    late = TrustedChain(GUN, _now() + timedelta(days=11 * 365))
    late.pin_root(recorded.second["root"])
    with pytest.raises(ChainError, match="root expired at"):
        late.check_root_fresh()


def test_a_root_of_another_repository_is_refused(recorded: Recorded) -> None:
    # trust on first use still checks the root certificate names this GUN
    with pytest.raises(ChainError, match=f"is for '{OTHER}', not '{GUN}'"):
        TrustedChain(GUN, _now()).pin_root(recorded.other["root"])
    # pinned to the right root, another repository's timestamp does not verify
    chain = TrustedChain(GUN, _now())
    chain.pin_root(recorded.second["root"])
    with pytest.raises(ChainError, match="threshold for timestamp"):
        chain.load_timestamp(recorded.other["timestamp"])
    # and a root update to another repository's root is refused
    with pytest.raises(ChainError, match="is for"):
        chain.update_root(recorded.other["root"])


def test_root_rotations_are_followed_one_version_at_a_time(recorded: Recorded) -> None:
    v1, v2, v3 = recorded.first["root"], recorded.rotated["root"], recorded.rotated_twice["root"]
    assert (_version(v1), _version(v2), _version(v3)) == (1, 2, 3)
    skipping = TrustedChain(GUN, _now())
    skipping.pin_root(v1)
    with pytest.raises(ChainError, match="root version 3 does not follow version 1"):
        skipping.update_root(v3)
    chain = TrustedChain(GUN, _now())
    chain.pin_root(v1)
    chain.update_root(v2)
    chain.update_root(v3)
    chain.load_timestamp(recorded.rotated_twice["timestamp"])
    chain.load_snapshot(recorded.rotated_twice["snapshot"])
    with pytest.raises(ChainError, match="root version 2 is lower than current version 3"):
        chain.update_root(v2)


def test_a_snapshot_from_another_moment_is_refused(recorded: Recorded) -> None:
    # mix-and-match: the second publish's timestamp with the first publish's snapshot
    chain = TrustedChain(GUN, _now())
    chain.pin_root(recorded.second["root"])
    chain.load_timestamp(recorded.second["timestamp"])
    with pytest.raises(ChainError, match="checksum for snapshot did not match"):
        chain.load_snapshot(recorded.first["snapshot"])
    # a snapshot naming another root than the pinned one
    rotated = TrustedChain(GUN, _now())
    rotated.pin_root(recorded.first["root"])
    rotated.update_root(recorded.rotated["root"])
    rotated.load_timestamp(recorded.second["timestamp"])
    with pytest.raises(ChainError, match="lists another root than the trusted one"):
        rotated.load_snapshot(recorded.second["snapshot"])


class _NoSecrets:
    def passphrase(self, what: str, *, confirm: bool) -> str:
        raise AssertionError(f"reading needs no passphrase ({what}, {confirm})")

    def pin(self, token: str) -> str:
        raise AssertionError(f"reading needs no PIN ({token})")


def _trust_client(server: TrustyardServer, trust_dir: Path) -> TrustClient:
    assert server.tls is not None and server.credentials is not None
    verify = ssl.create_default_context(cafile=str(server.tls[2]))
    session = HttpSession(server.url, credentials=server.credentials, verify=verify)
    return TrustClient(trust_dir=trust_dir, session=session, keys=KeyStore(trust_dir, _NoSecrets()))


def test_the_client_pins_what_it_verified_and_refuses_a_server_that_goes_back(
    recorded: Recorded, tmp_path: Path
) -> None:
    trust = _trust_client(recorded.server, tmp_path)
    try:
        chain = trust.update(GUN)  # trust on first use, over HTTPS with a token for repository:<gun>:pull
        assert {t.name for t in chain.signed_targets()} == {"v1", "v2", "v3"}
        pinned = tmp_path / "tuf" / "library%2Fchain" / "metadata"
        assert (pinned / "root.json").read_bytes() == recorded.rotated_twice["root"]
        assert (pinned / "targets" / "releases.json").is_file()

        # the client saw a newer timestamp than the server now serves (a replay, or a server rolled back)
        seen = json.loads((pinned / "timestamp.json").read_bytes())
        served = seen["signed"]["version"]
        seen["signed"]["version"] = served + 5
        (pinned / "timestamp.json").write_text(json.dumps(seen))
        with pytest.raises(ChainError, match=f"timestamp version {served} is lower than current version {served + 5}"):
            trust.update(GUN)

        # a pinned root of another repository: the server's root is not a rotation of it
        (pinned / "root.json").write_bytes(recorded.other["root"])
        with pytest.raises(ChainError, match=f"is for '{OTHER}'"):
            trust.update(GUN)
    finally:
        trust.session.close()
