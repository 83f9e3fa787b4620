"""The real `notary` client (Debian's notary 0.7.0) against `trustyard serve` with TLS and token auth.

The whole publisher workflow of notes/notary-v1.md section 2 runs against the registry's own host and port:
init, add, publish, list, lookup, remove, a delegation with its own key, key rotation of snapshot and
timestamp to the server (`-r`), a fresh client trusting on first use, and `delete --remote`. The client logs
in as the registry's admin (`NOTARY_AUTH`) and fetches Docker tokens with the scopes it asks for itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .servers import INTEROP_ADMIN_PASSWORD, TrustyardServer

pytestmark = pytest.mark.interop

GUN = "library/notary-app"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost (P-256), as notes/notary-v1.md section 1 makes them."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("trustyard interop CA"))
        .issuer_name(_name("trustyard interop CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "server.crt", folder / "server.key", folder / "ca.crt"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, paths[1])
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


def make_delegation(folder: Path) -> tuple[Path, Path]:
    """A delegation key and its self-signed certificate (what `notary delegation add` takes)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("releases"))
        .issuer_name(_name("releases"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    crt, pem = folder / "delegation.crt", folder / "delegation.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pem)
    return crt, pem


@dataclass
class Notary:
    """The `notary` CLI pointed at one server, with its own trust directory."""

    server: str
    ca: Path
    trust_dir: Path
    home: Path

    def env(self) -> dict[str, str]:
        """Passphrases and credentials from the environment, so nothing prompts."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTARY_", "DOCKER_"))}
        env.update(
            HOME=str(self.home),
            NOTARY_ROOT_PASSPHRASE="root-pass-1",
            NOTARY_TARGETS_PASSPHRASE="targets-pass-1",
            NOTARY_SNAPSHOT_PASSPHRASE="snapshot-pass-1",
            NOTARY_DELEGATION_PASSPHRASE="delegation-pass-1",
            NOTARY_AUTH=base64.b64encode(f"admin:{INTEROP_ADMIN_PASSWORD}".encode()).decode(),
        )
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one notary command; fail with its output if ``check`` and it fails."""
        argv = ["notary", "-s", self.server, "--tlscacert", str(self.ca), "-d", str(self.trust_dir), *args]
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=120, check=False)
        if check and done.returncode != 0:
            pytest.fail(f"{' '.join(args)} -> rc {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done

    def targets(self, gun: str) -> dict[str, tuple[str, int, str]]:
        """`notary list`: target name -> (sha256 hex, size, role)."""
        out = self.run("list", gun).stdout
        rows: dict[str, tuple[str, int, str]] = {}
        for line in out.splitlines()[2:]:
            fields = line.split()
            if len(fields) == 4:
                rows[fields[0]] = (fields[1], int(fields[2]), fields[3])
        return rows


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrustyardServer]:
    """`trustyard serve` with TLS; access control on (the client logs in as admin)."""
    tls = make_tls(tmp_path / "tls")
    srv = TrustyardServer(workdir=tmp_path / "trustyard", tls=tls)
    srv.start()
    try:
        yield srv
    finally:
        srv.close()
    errors = srv.server_errors()
    assert errors == [], "requests answered with 5xx:\n" + "\n".join(errors)


def client(server: TrustyardServer, tmp_path: Path, name: str) -> Notary:
    """A notary client with a fresh trust directory."""
    home = tmp_path / f"home-{name}"
    home.mkdir()
    assert server.tls is not None
    return Notary(server.url, server.tls[2], tmp_path / f"trust-{name}", home)


def test_notary_cli_is_installed() -> None:
    assert shutil.which("notary") is not None, "the Debian package notary is missing (scripts/test installs it)"


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
    notary.run("key", "rotate", GUN, "targets")
    notary.run("key", "rotate", GUN, "root")
    assert set(notary.targets(GUN)) == {"v2", "v3", "v4"}

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
    env_auth = notary.env()
    del env_auth["NOTARY_AUTH"]
    payload = tmp_path / "t.txt"
    payload.write_bytes(b"x")
    notary.run("init", GUN, check=False)
    notary.run("add", GUN, "v1", str(payload))
    argv = ["notary", "-s", notary.server, "--tlscacert", str(notary.ca), "-d", str(notary.trust_dir), "publish", GUN]
    done = subprocess.run(argv, capture_output=True, text=True, env=env_auth, timeout=120, check=False)
    assert done.returncode != 0
    assert "not authorized" in done.stdout + done.stderr or "401" in done.stdout + done.stderr


def _publish_twice(notary: Notary, tmp_path: Path) -> None:
    payload = tmp_path / "target.txt"
    payload.write_bytes(b"hello\n")
    notary.run("init", GUN)
    notary.run("add", GUN, "v1", str(payload))
    notary.run("publish", GUN)
    notary.run("add", GUN, "v2", str(payload))
    notary.run("publish", GUN)
    assert set(notary.targets(GUN)) == {"v1", "v2"}


def _server_db(server: TrustyardServer) -> sqlite3.Connection:
    """The server's SQLite database, opened beside it: the tests play a hostile or broken server with it."""
    return sqlite3.connect(server.data_dir / "trustyard.db", timeout=30, isolation_level=None)


def test_attack_client_that_saw_version_n_served_n_minus_1_fails(server: TrustyardServer, tmp_path: Path) -> None:
    """Rollback: a server that serves the previous (validly signed) timestamp to a client that saw the newer."""
    notary = client(server, tmp_path, "publisher")
    _publish_twice(notary, tmp_path)
    with contextlib.closing(_server_db(server)) as db:
        newest = db.execute("SELECT max(version) FROM trust_files WHERE role = 'timestamp'").fetchone()[0]
        db.execute("DELETE FROM trust_files WHERE role = 'timestamp' AND version = ?", (newest,))
    done = notary.run("list", GUN, check=False)
    assert done.returncode != 0
    assert f"version {newest - 1} is lower than current version {newest}" in done.stdout + done.stderr


def test_attack_tampered_targets_bytes_are_not_served(server: TrustyardServer, tmp_path: Path) -> None:
    """Tamper: targets bytes changed in storage under their name. The client fetches targets by the SHA-256
    the signed snapshot names; trustyard re-hashes what it serves for that name, so the tampered bytes are
    never sent and the client stops with "trust data unavailable" instead of reading them."""
    notary = client(server, tmp_path, "publisher")
    _publish_twice(notary, tmp_path)
    with contextlib.closing(_server_db(server)) as db:
        row = db.execute("SELECT id, data FROM trust_files WHERE role = 'targets' ORDER BY version DESC").fetchone()
        tampered = bytes(row[1]).replace(b'"length":6', b'"length":7')
        assert tampered != bytes(row[1])
        db.execute("UPDATE trust_files SET data = ? WHERE id = ?", (tampered, row[0]))
    done = client(server, tmp_path, "fresh").run("list", GUN, check=False)
    assert done.returncode != 0
    assert "trust data unavailable" in done.stdout + done.stderr
    assert "v1" not in done.stdout
