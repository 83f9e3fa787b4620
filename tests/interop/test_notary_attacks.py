"""The attacks of issue 6, each against `trustyard serve` with TLS and token auth, with the real `notary` client.

A hostile publisher uploads crafted metadata the way the real client does (multipart POST after a Bearer
token for `push,pull`; `notary_client.Uploader`); where the attack needs keys, they are the publisher's own
keys opened from the real client's trust directory (a stolen targets or snapshot key) or the delegation key
the test made. Each test asserts the server's answer (status, notary error code and the detail the client
decodes), that the stored metadata of the repository did not change, and what the real client prints
afterwards (the same targets, for the publisher and for a fresh client). The freshness tests play a hostile
or lazy server by editing the server's database beside it, or let the server's own timestamp expire.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustyard.trust.metadata import parse_expires

from .notary_client import (
    ErrorAnswer,
    Notary,
    SigningKey,
    Uploader,
    client,
    client_key,
    envelope,
    file_meta,
    make_delegation,
    running_trustyard,
    server_db,
    sha256_hex,
    stored_files,
    swap_client_key,
    target_meta,
    x509_key,
)
from .servers import TrustyardServer

pytestmark = pytest.mark.interop

GUN = "library/notary-attacked"
PAYLOAD = b"hello\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrustyardServer]:
    """`trustyard serve` with TLS; access control on (clients log in as admin and fetch tokens)."""
    with running_trustyard(tmp_path) as srv:
        yield srv


def _publish_twice(notary: Notary, tmp_path: Path) -> dict[str, bytes]:
    """init, publish v1, publish v2; the metadata the client uploaded in the first publish."""
    payload = tmp_path / "target.txt"
    payload.write_bytes(PAYLOAD)
    notary.run("init", GUN)
    notary.run("add", GUN, "v1", str(payload))
    notary.run("publish", GUN)
    first = {role: notary.cached(GUN, role) for role in ("targets", "snapshot")}
    notary.run("add", GUN, "v2", str(payload))
    notary.run("publish", GUN)
    assert set(notary.targets(GUN)) == {"v1", "v2"}
    return first


def _signed(data: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(data)["signed"]
    return body


def _next_snapshot(notary: Notary, tmp_path: Path, named: dict[str, bytes]) -> bytes:
    """The publisher's snapshot one version on, naming ``named`` (role -> bytes), signed by its snapshot key."""
    snapshot = _signed(notary.cached(GUN, "snapshot"))
    snapshot["meta"].update({role: file_meta(data) for role, data in named.items()})
    snapshot["version"] += 1
    return envelope(snapshot, client_key(notary, "snapshot", tmp_path))


def _assert_invalid_update(answer: ErrorAnswer, name: str, message: str) -> None:
    """A 400 INVALID_UPDATE whose detail is the Go error ``name`` with ``message`` (what the client decodes)."""
    assert (answer.status, answer.code) == (400, "INVALID_UPDATE")
    assert answer.detail == {"Name": name, "Error": {"Msg": message}}


class Unchanged:
    """What the server stores for the GUN and what the real client lists, before an attack; ``check`` after."""

    def __init__(self, server: TrustyardServer, notary: Notary) -> None:
        self.server, self.notary = server, notary
        self.files = stored_files(server, GUN)
        self.listing = notary.run("list", GUN).stdout

    def check(self, tmp_path: Path, name: str) -> Notary:
        """Same stored files, same `notary list` for the publisher and for a new client (returned)."""
        assert stored_files(self.server, GUN) == self.files, "the refused update changed the stored metadata"
        assert self.notary.run("list", GUN).stdout == self.listing
        fresh = client(self.server, tmp_path, name)
        assert fresh.run("list", GUN).stdout == self.listing
        return fresh


def test_attack_forged_target_with_a_bad_signature_is_refused(server: TrustyardServer, tmp_path: Path) -> None:
    """Forgery: targets gain a target and a new version, but carry the old (now invalid) signature."""
    notary = client(server, tmp_path, "publisher")
    _publish_twice(notary, tmp_path)
    before = Unchanged(server, notary)

    targets = json.loads(notary.cached(GUN, "targets"))
    targets["signed"]["targets"]["evil"] = target_meta(b"malware")
    targets["signed"]["version"] += 1
    forged = json.dumps(targets, separators=(",", ":")).encode()
    snapshot = json.loads(notary.cached(GUN, "snapshot"))
    snapshot["signed"]["meta"]["targets"] = file_meta(forged)
    snapshot["signed"]["version"] += 1
    answer = Uploader(server).refused(GUN, {"targets": forged, "snapshot": json.dumps(snapshot).encode()})

    _assert_invalid_update(answer, "ErrBadTargets", "valid signatures did not meet threshold for targets")
    before.check(tmp_path, "fresh")
    assert "evil" not in before.listing


def _update_statuses(server: TrustyardServer) -> list[int]:
    """The HTTP status of every update POST of the GUN, oldest first, from the server's access log."""
    statuses = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and (record.get("method"), record.get("path")) == (
                "POST",
                f"/v2/{GUN}/_trust/tuf/",
            ):
                statuses.append(int(record["status"]))
    return statuses


def _refused_publish(server: TrustyardServer, notary: Notary, *args: str, answer: str = "") -> str:
    """Run a publishing command of the real client that the server must refuse: it fails, exactly one update
    POST reached the server and was answered 400 (so the client did not stop before uploading); what the
    client printed."""
    uploads_before = len(_update_statuses(server))
    done = notary.run(*args, check=False, answer=answer)
    assert done.returncode != 0
    deadline = time.monotonic() + 10  # the access log line follows the response
    while len(statuses := _update_statuses(server)) == uploads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert statuses[uploads_before:] == [400]
    return done.stdout + done.stderr


def test_attack_real_client_signing_targets_with_an_untrusted_key_is_refused(
    server: TrustyardServer, tmp_path: Path
) -> None:
    """Forgery by the real client: its targets key file replaced by another key, it signs a new target with
    a key the root does not trust and uploads; the server refuses and the client prints the refusal."""
    notary = client(server, tmp_path, "publisher")
    _publish_twice(notary, tmp_path)
    before = Unchanged(server, notary)
    swap_client_key(notary, "targets", tmp_path)
    payload = tmp_path / "evil.txt"
    payload.write_bytes(b"malware")
    notary.run("add", GUN, "evil", str(payload))

    printed = _refused_publish(server, notary, "publish", GUN)

    assert "* fatal: The targets metadata is invalid: valid signatures did not meet threshold for targets" in printed
    before.check(tmp_path, "fresh")


def test_attack_real_client_root_rotation_without_the_old_root_key_is_refused(
    server: TrustyardServer, tmp_path: Path
) -> None:
    """Hijack by the real client: its root key file replaced by another key, `notary key rotate root` signs
    the new root with the new key and with a key the old root does not trust; the server refuses."""
    notary = client(server, tmp_path, "publisher")
    _publish_twice(notary, tmp_path)
    before = Unchanged(server, notary)
    swap_client_key(notary, "root", tmp_path)

    printed = _refused_publish(server, notary, "key", "rotate", GUN, "root", answer="yes\n")

    assert (
        "* fatal: The root metadata is invalid: valid signatures did not meet threshold for root "
        "(rotation: previous root)" in printed
    )
    before.check(tmp_path, "fresh")


def test_attack_rollback_upload_of_an_older_version_is_refused(server: TrustyardServer, tmp_path: Path) -> None:
    """Replay: the publisher's first, validly signed update uploaded again after the second."""
    notary = client(server, tmp_path, "publisher")
    first = _publish_twice(notary, tmp_path)
    before = Unchanged(server, notary)

    answer = Uploader(server).refused(GUN, first)

    assert (answer.status, answer.code) == (400, "VERSION")
    before.check(tmp_path, "fresh")
    assert set(notary.targets(GUN)) == {"v1", "v2"}  # not rolled back to {v1}


def test_attack_client_that_saw_version_n_served_n_minus_1_fails(server: TrustyardServer, tmp_path: Path) -> None:
    """Rollback: a server that serves the previous (validly signed) timestamp to a client that saw the newer."""
    notary = client(server, tmp_path, "publisher")
    _publish_twice(notary, tmp_path)
    with contextlib.closing(server_db(server)) as db:
        newest = db.execute("SELECT max(version) FROM trust_files WHERE role = 'timestamp'").fetchone()[0]
        db.execute("DELETE FROM trust_files WHERE role = 'timestamp' AND version = ?", (newest,))
    done = notary.run("list", GUN, check=False)
    assert done.returncode != 0
    assert f"version {newest - 1} is lower than current version {newest}" in done.stdout + done.stderr


def _timestamps(server: TrustyardServer) -> list[tuple[int, datetime]]:
    """Every stored timestamp of the GUN: (version, expiry), oldest first."""
    with contextlib.closing(server_db(server)) as db:
        rows = db.execute(
            "SELECT version, data FROM trust_files WHERE gun = ? AND role = 'timestamp' ORDER BY version", (GUN,)
        ).fetchall()
    return [(int(v), parse_expires(_signed(bytes(data))["expires"])) for v, data in rows]


def test_attack_expired_timestamp_is_never_served(tmp_path: Path) -> None:
    """Freeze: the server's timestamps live 4 s here; once the stored one has expired, clients still only ever
    receive a fresh one (the server re-signs before serving). The expired ones are still stored (fetched by
    version to show it), and a server that can no longer re-sign (its timestamp key deleted) serves the
    expired one, which the real client refuses: that is what re-signing spares every client."""
    settings = {"trust_timestamp_expiry": "4", "trust_timestamp_resign_margin": "2"}
    with running_trustyard(tmp_path, settings) as server:
        notary = client(server, tmp_path, "publisher")
        _publish_twice(notary, tmp_path)
        for round_ in range(2):
            version, expires = _timestamps(server)[-1]
            time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
            assert _timestamps(server)[-1] == (version, expires) and expires < datetime.now(UTC), "not yet expired"

            for who in (notary, client(server, tmp_path, f"fresh-{round_}")):
                asked = datetime.now(UTC)
                assert set(who.targets(GUN)) == {"v1", "v2"}
                served = _signed(who.cached(GUN, "timestamp"))
                assert served["version"] > version
                assert parse_expires(served["expires"]) > asked  # valid when the client got it

        # the expired timestamps are still stored: what a server that did not re-sign would send
        stale_version, stale_expiry = _timestamps(server)[0]
        assert server.tls is not None
        with httpx.Client(verify=ssl.create_default_context(cafile=server.tls[2]), auth=server.credentials) as http:
            stale = http.get(f"{server.url}/v2/{GUN}/_trust/tuf/{stale_version}.timestamp.json")
        assert stale.status_code == 200
        assert parse_expires(_signed(stale.content)["expires"]) == stale_expiry < datetime.now(UTC)

        # and the client refuses one: a server that lost its timestamp key can only serve the expired one
        with contextlib.closing(server_db(server)) as db:
            db.execute("DELETE FROM trust_keys WHERE gun = ? AND role = 'timestamp'", (GUN,))
        _, expires = _timestamps(server)[-1]
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
        done = client(server, tmp_path, "frozen").run("list", GUN, check=False)
        assert done.returncode != 0
        assert "timestamp expired at" in done.stdout + done.stderr


def test_attack_root_rotation_not_signed_by_the_old_root_is_refused(server: TrustyardServer, tmp_path: Path) -> None:
    """Hijack: a new root (a new root certificate for the GUN, signed only by its own key), with a snapshot
    signed by the publisher's stolen snapshot key, as the real client uploads a root rotation."""
    notary = client(server, tmp_path, "publisher")
    _publish_twice(notary, tmp_path)
    before = Unchanged(server, notary)

    root = _signed(notary.cached(GUN, "root"))
    attacker = ec.generate_private_key(ec.SECP256R1())
    key_id, key_obj = x509_key(attacker, GUN)
    for old in root["roles"]["root"]["keyids"]:
        del root["keys"][old]
    root["keys"][key_id] = key_obj
    root["roles"]["root"]["keyids"] = [key_id]
    root["version"] += 1
    new_root = envelope(root, SigningKey(key_id, attacker))
    snapshot_bytes = _next_snapshot(notary, tmp_path, {"root": new_root})

    answer = Uploader(server).refused(GUN, {"root": new_root, "snapshot": snapshot_bytes})

    _assert_invalid_update(
        answer, "ErrBadRoot", "valid signatures did not meet threshold for root (rotation: previous root)"
    )
    fresh = before.check(tmp_path, "fresh")
    assert key_id not in _signed(fresh.cached(GUN, "root"))["keys"]


def test_attack_delegation_signing_outside_its_paths_is_refused(server: TrustyardServer, tmp_path: Path) -> None:
    """A delegation trusted for `releases/` signs `latest` with its own (valid) key: the real client will not
    publish it, and the same role uploaded by a client without that check is refused by the server."""
    notary = client(server, tmp_path, "publisher")
    payload = tmp_path / "target.txt"
    payload.write_bytes(PAYLOAD)
    notary.run("init", GUN)
    notary.run("add", GUN, "v1", str(payload))
    notary.run("publish", GUN)
    crt, pem = make_delegation(tmp_path)
    notary.run("delegation", "add", GUN, "targets/releases", str(crt), "--paths", "releases/")
    notary.run("publish", GUN)
    notary.run("key", "import", str(pem), "--role", "targets/releases")
    notary.run("add", GUN, "releases/1.0", str(payload), "--roles", "targets/releases")
    notary.run("publish", GUN)
    assert notary.targets(GUN)["releases/1.0"] == (sha256_hex(PAYLOAD), len(PAYLOAD), "targets/releases")
    before = Unchanged(server, notary)

    # the real client checks the paths itself and uploads nothing; a modified client is refused by the server
    notary.run("add", GUN, "latest", str(payload), "--roles", "targets/releases")
    done = notary.run("publish", GUN, check=False)
    assert done.returncode != 0
    assert "* fatal: Could not add all targets" in done.stdout + done.stderr

    (delegation_key_id,) = _signed(notary.cached(GUN, "targets"))["delegations"]["keys"]
    private = _load_ec(pem)
    releases = _signed(notary.cached(GUN, "targets/releases"))
    releases["targets"]["latest"] = target_meta(b"malware")
    releases["version"] += 1
    releases_bytes = envelope(releases, SigningKey(delegation_key_id, private))
    snapshot_bytes = _next_snapshot(notary, tmp_path, {"targets/releases": releases_bytes})

    answer = Uploader(server).refused(GUN, {"targets/releases": releases_bytes, "snapshot": snapshot_bytes})

    _assert_invalid_update(
        answer, "ErrBadTargets", "targets/releases signs target 'latest', outside its delegated paths"
    )
    before.check(tmp_path, "fresh")
    assert "latest" not in before.listing


def test_attack_mix_and_match_of_snapshot_and_targets_is_refused(server: TrustyardServer, tmp_path: Path) -> None:
    """Mix and match: new targets (validly signed with the stolen targets key) under a new, validly signed
    snapshot that still names the previous targets. The same update with a matching snapshot is accepted,
    which shows that the keys and the metadata were right and the mix alone was refused."""
    notary = client(server, tmp_path, "publisher")
    _publish_twice(notary, tmp_path)
    before = Unchanged(server, notary)
    targets_key = client_key(notary, "targets", tmp_path)

    targets = _signed(notary.cached(GUN, "targets"))
    targets["targets"]["evil"] = target_meta(b"malware")
    targets["version"] += 1
    new_targets = envelope(targets, targets_key)
    mixed = _next_snapshot(notary, tmp_path, {})  # still names the previous targets

    answer = Uploader(server).refused(GUN, {"targets": new_targets, "snapshot": mixed})

    _assert_invalid_update(
        answer, "ErrBadSnapshot", "snapshot has the wrong hashes for targets: it names other targets metadata"
    )
    before.check(tmp_path, "fresh")

    matched = _next_snapshot(notary, tmp_path, {"targets": new_targets})
    accepted = Uploader(server).post(GUN, {"targets": new_targets, "snapshot": matched})
    assert accepted.status_code == 200, accepted.text
    assert notary.targets(GUN)["evil"] == (sha256_hex(b"malware"), len(b"malware"), "targets")


def test_attack_tampered_targets_bytes_are_not_served(server: TrustyardServer, tmp_path: Path) -> None:
    """Tamper: targets bytes changed in storage under their name. The client fetches targets by the SHA-256
    the signed snapshot names; trustyard re-hashes what it serves for that name, so the tampered bytes are
    never sent and the client stops with "trust data unavailable" instead of reading them."""
    notary = client(server, tmp_path, "publisher")
    _publish_twice(notary, tmp_path)
    with contextlib.closing(server_db(server)) as db:
        row = db.execute("SELECT id, data FROM trust_files WHERE role = 'targets' ORDER BY version DESC").fetchone()
        tampered = bytes(row[1]).replace(b'"length":6', b'"length":7')
        assert tampered != bytes(row[1])
        db.execute("UPDATE trust_files SET data = ? WHERE id = ?", (tampered, row[0]))
    done = client(server, tmp_path, "fresh").run("list", GUN, check=False)
    assert done.returncode != 0
    assert "trust data unavailable" in done.stdout + done.stderr
    assert "v1" not in done.stdout


def _load_ec(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key
