"""The real `notary` client (Debian's notary 0.7.0) against `trustyard serve` with TLS and token auth.

The whole publisher workflow of notes/notary-v1.md section 2 runs against the registry's own host and port:
init, add, publish, list, lookup, remove, a delegation with its own key, key rotation of snapshot and
timestamp to the server (`-r`), a fresh client trusting on first use, and `delete --remote`. The client logs
in as the registry's admin (`NOTARY_AUTH`) and fetches Docker tokens with the scopes it asks for itself.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .notary_client import Notary, client, make_delegation, running_trustyard
from .servers import TrustyardServer

pytestmark = pytest.mark.interop

GUN = "library/notary-app"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrustyardServer]:
    """`trustyard serve` with TLS; access control on (the client logs in as admin)."""
    with running_trustyard(tmp_path) as srv:
        yield srv


def test_notary_cli_is_installed() -> None:
    assert shutil.which("notary") is not None, "the Debian package notary is missing (scripts/test installs it)"


def _role_keys(notary: Notary, role: str) -> set[str]:
    """The key IDs the client's current root trusts for ``role``."""
    root = json.loads(notary.cached(GUN, "root"))["signed"]
    return set(root["roles"][role]["keyids"])


def test_real_notary_client_whole_workflow(server: TrustyardServer, tmp_path: Path) -> None:
    notary = client(server, tmp_path, "publisher")
    payload = tmp_path / "target.txt"
    payload.write_bytes(b"hello\n")
    digest = hashlib.sha256(b"hello\n").hexdigest()

    notary.run("init", GUN)
    notary.run("add", GUN, "v1", str(payload))
    notary.run("publish", GUN)
    assert notary.targets(GUN) == {"v1": (digest, 6, "targets")}
    assert notary.run("lookup", GUN, "v1").stdout.split() == ["v1", f"sha256:{digest}", "6"]

    notary.run("add", GUN, "v2", str(payload))
    notary.run("remove", GUN, "v1")
    notary.run("publish", GUN)
    assert set(notary.targets(GUN)) == {"v2"}

    # a delegation with its own key, signing into targets/releases
    crt, key = make_delegation(tmp_path)
    notary.run("delegation", "add", GUN, "targets/releases", str(crt), "--all-paths")
    notary.run("publish", GUN)
    assert "targets/releases" in notary.run("delegation", "list", GUN).stdout
    notary.run("key", "import", str(key), "--role", "targets/releases")
    notary.run("add", GUN, "v3", str(payload), "--roles", "targets/releases")
    notary.run("publish", GUN)
    assert notary.targets(GUN)["v3"] == (digest, 6, "targets/releases")

    # the server takes over the snapshot, then a new timestamp key
    notary.run("key", "rotate", GUN, "snapshot", "-r")
    notary.run("add", GUN, "v4", str(payload))
    notary.run("publish", GUN)  # no snapshot uploaded: the server signs it
    notary.run("key", "rotate", GUN, "timestamp", "-r")
    assert set(notary.targets(GUN)) == {"v2", "v3", "v4"}
    # the publisher rotates its own targets key, then the root key (signed by the old and the new root key)
    roots_before = _role_keys(notary, "root")
    targets_before = _role_keys(notary, "targets")
    notary.run("key", "rotate", GUN, "targets")
    notary.run("key", "rotate", GUN, "root", answer="yes\n")  # unconfirmed, the client aborts with exit code 0
    assert set(notary.targets(GUN)) == {"v2", "v3", "v4"}
    assert _role_keys(notary, "targets").isdisjoint(targets_before)  # the root the list fetched: rotated
    assert _role_keys(notary, "root").isdisjoint(roots_before)

    # a new client trusts the root on first use and sees the same targets
    fresh = client(server, tmp_path, "fresh")
    assert set(fresh.targets(GUN)) == {"v2", "v3", "v4"}
    assert fresh.run("lookup", GUN, "v4").stdout.split()[1] == f"sha256:{digest}"

    # witness re-signs the delegation (a POST of targets/releases only; the server makes snapshot+timestamp)
    notary.run("witness", GUN, "targets/releases")
    notary.run("publish", GUN)
    assert notary.targets(GUN)["v3"] == (digest, 6, "targets/releases")
    # removing the delegation removes what it signed
    notary.run("delegation", "remove", GUN, "targets/releases", "-y")
    notary.run("publish", GUN)
    assert set(notary.targets(GUN)) == {"v2", "v4"}
    assert set(fresh.targets(GUN)) == {"v2", "v4"}

    notary.run("delete", GUN, "--remote")
    gone = client(server, tmp_path, "after-delete").run("list", GUN, check=False)
    assert gone.returncode != 0
    assert f"does not have trust data for {GUN}" in gone.stdout + gone.stderr


def test_real_notary_client_without_credentials_is_refused(server: TrustyardServer, tmp_path: Path) -> None:
    notary = client(server, tmp_path, "anonymous")
    notary.credentials = None
    payload = tmp_path / "t.txt"
    payload.write_bytes(b"x")
    notary.run("init", GUN, check=False)
    notary.run("add", GUN, "v1", str(payload))
    done = notary.run("publish", GUN, check=False)
    assert done.returncode != 0
    assert "not authorized" in done.stdout + done.stderr or "401" in done.stdout + done.stderr
