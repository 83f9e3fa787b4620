"""The real `notary` client and what the Notary interop tests need around it.

`Notary` drives Debian's notary 0.7.0 CLI against one server with its own trust directory, passphrases and
registry credentials from the environment (so nothing prompts). `Uploader` plays a hostile publisher: it
uploads crafted metadata over HTTP exactly as the real client does (the multipart POST, after fetching a
Bearer token with the scope the server's challenge asks for), so an attack test can show what the server
answers. `ClientKeys` opens the private keys the real client wrote (PKCS#8 PBES2 files with notary's `role:`
and `gun:` PEM headers; `openssl pkcs8` decrypts them, `cryptography` does not) so that a test can sign
metadata as a publisher whose keys were stolen would. The TLS and delegation helpers make the certificates
notes/notary-v1.md section 1 describes.

Not here: the tests themselves (test_notary*.py) and the server process (servers.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import sqlite3
import ssl
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustyard.trust.keys import PublicKey, canonical
from trustyard.trust.metadata import FileMeta

from .servers import INTEROP_ADMIN_PASSWORD, TrustyardServer

PASSPHRASES = {
    "root": "root-pass-1",
    "targets": "targets-pass-1",
    "snapshot": "snapshot-pass-1",
    "delegation": "delegation-pass-1",
}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)


def self_signed(key: ec.EllipticCurvePrivateKey, cn: str, days: int = 365) -> x509.Certificate:
    """A self-signed certificate for ``key`` naming ``cn``: what notary uses for root and delegation keys."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


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


def make_delegation(folder: Path, name: str = "releases") -> tuple[Path, Path]:
    """A delegation key and its self-signed certificate (what `notary delegation add` takes)."""
    key = ec.generate_private_key(ec.SECP256R1())
    crt, pem = folder / f"{name}.crt", folder / f"{name}.key"
    crt.write_bytes(self_signed(key, name).public_bytes(serialization.Encoding.PEM))
    _write_key(key, pem)
    return crt, pem


@dataclass
class Notary:
    """The `notary` CLI pointed at one server, with its own trust directory."""

    server: str
    ca: Path
    trust_dir: Path
    home: Path
    credentials: tuple[str, str] | None = ("admin", INTEROP_ADMIN_PASSWORD)

    def env(self) -> dict[str, str]:
        """Passphrases and credentials from the environment, so nothing prompts."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTARY_", "DOCKER_"))}
        env["HOME"] = str(self.home)
        env.update({f"NOTARY_{role.upper()}_PASSPHRASE": value for role, value in PASSPHRASES.items()})
        if self.credentials is not None:
            env["NOTARY_AUTH"] = base64.b64encode(":".join(self.credentials).encode()).decode()
        return env

    def argv(self, *args: str) -> list[str]:
        """The full command line of one notary command."""
        return ["notary", "-s", self.server, "--tlscacert", str(self.ca), "-d", str(self.trust_dir), *args]

    def run(self, *args: str, check: bool = True, answer: str = "") -> subprocess.CompletedProcess[str]:
        """Run one notary command with ``answer`` on its stdin (``yes`` confirms a root rotation, which the client
        otherwise aborts with exit code 0); fail with its output if ``check`` and it fails."""
        done = subprocess.run(
            self.argv(*args), input=answer, capture_output=True, text=True, env=self.env(), timeout=120, check=False
        )
        if check and done.returncode != 0:
            pytest.fail(f"{' '.join(args)} -> rc {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done

    def targets(self, gun: str) -> dict[str, tuple[str, int, str]]:
        """`notary list`: target name -> (sha256 hex, size, role)."""
        return parse_list(self.run("list", gun).stdout)

    def cached(self, gun: str, role: str) -> bytes:
        """The metadata file the client last accepted for ``role`` (its local cache)."""
        return (self.trust_dir / "tuf" / gun / "metadata" / f"{role}.json").read_bytes()


def parse_list(out: str) -> dict[str, tuple[str, int, str]]:
    """The rows of `notary list` output: target name -> (sha256 hex, size, role)."""
    rows: dict[str, tuple[str, int, str]] = {}
    for line in out.splitlines()[2:]:
        fields = line.split()
        if len(fields) == 4:
            rows[fields[0]] = (fields[1], int(fields[2]), fields[3])
    return rows


class ConfiguredTrustyard(TrustyardServer):
    """`trustyard serve` with extra settings (``TRUSTYARD_*`` environment variables), e.g. short lifetimes."""

    def __init__(self, *, settings: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = dict(settings)

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update({f"TRUSTYARD_{k.upper()}": v for k, v in self.settings.items()})
        return env


@contextlib.contextmanager
def running_trustyard(tmp_path: Path, settings: Mapping[str, str] | None = None) -> Iterator[TrustyardServer]:
    """`trustyard serve` with TLS and access control on; fails the test if any request was answered 5xx."""
    tls = make_tls(tmp_path / "tls")
    srv = ConfiguredTrustyard(workdir=tmp_path / "trustyard", tls=tls, settings=settings or {})
    srv.start()
    try:
        yield srv
    finally:
        srv.close()
    errors = srv.server_errors()
    assert errors == [], "requests answered with 5xx:\n" + "\n".join(errors)


def client(server: TrustyardServer, tmp_path: Path, name: str) -> Notary:
    """A notary client with a fresh trust directory, logging in as the registry's admin."""
    home = tmp_path / f"home-{name}"
    home.mkdir()
    assert server.tls is not None
    return Notary(server.url, server.tls[2], tmp_path / f"trust-{name}", home)


def server_db(server: TrustyardServer) -> sqlite3.Connection:
    """The server's SQLite database, opened beside it: tests read its state (and play a broken server)."""
    return sqlite3.connect(server.data_dir / "trustyard.db", timeout=30, isolation_level=None)


def stored_files(server: TrustyardServer, gun: str) -> list[tuple[str, int, str]]:
    """Every stored (role, version, sha256) of ``gun``: the whole server state of that repository."""
    with contextlib.closing(server_db(server)) as db:
        rows = db.execute("SELECT role, version, sha256 FROM trust_files WHERE gun = ? ORDER BY role, version", (gun,))
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]


# -- a hostile publisher ---------------------------------------------------------------------------------------
@dataclass
class ErrorAnswer:
    """A refused upload: HTTP status and the first entry of the docker-distribution error envelope."""

    status: int
    code: str
    detail: Any


@dataclass
class Uploader:
    """Uploads metadata as the real client does: multipart POST to `/v2/<gun>/_trust/tuf/` with a Bearer token."""

    server: TrustyardServer
    credentials: tuple[str, str] = ("admin", INTEROP_ADMIN_PASSWORD)
    tokens: dict[str, str] = field(default_factory=dict)

    def _client(self) -> httpx.Client:
        assert self.server.tls is not None
        return httpx.Client(verify=ssl.create_default_context(cafile=self.server.tls[2]), timeout=30)

    def _token(self, http: httpx.Client, challenge: str) -> str:
        """Answer a `Bearer realm=…,service=…,scope=…` challenge at the token endpoint, as the client does."""
        assert challenge.startswith("Bearer "), challenge
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm")
        answer = http.get(realm, params=params, auth=self.credentials)
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["token"]
        return token

    def post(self, gun: str, files: Mapping[str, bytes]) -> httpx.Response:
        """POST ``files`` (role -> bytes) as one update; asks for a token first, as the client does."""
        url = f"{self.server.url}/v2/{gun}/_trust/tuf/"
        parts = [("files", (role, data, "application/octet-stream")) for role, data in files.items()]
        with self._client() as http:
            answer = http.post(url, files=parts, headers=self._auth(gun))
            if answer.status_code == 401:
                self.tokens[gun] = self._token(http, answer.headers["www-authenticate"])
                answer = http.post(url, files=parts, headers=self._auth(gun))
        return answer

    def _auth(self, gun: str) -> dict[str, str]:
        token = self.tokens.get(gun)
        return {"Authorization": f"Bearer {token}"} if token else {}

    def refused(self, gun: str, files: Mapping[str, bytes]) -> ErrorAnswer:
        """POST and expect a 4xx answer in notary's error envelope; the status, code and detail."""
        answer = self.post(gun, files)
        assert 400 <= answer.status_code < 500, f"{answer.status_code} {answer.text}"
        error = answer.json()["errors"][0]
        return ErrorAnswer(answer.status_code, error["code"], error.get("detail"))


# -- the publisher's own keys, opened ---------------------------------------------------------------------------
@dataclass
class SigningKey:
    """A P-256 private key with the key ID the metadata lists it by."""

    key_id: str
    private: ec.EllipticCurvePrivateKey

    def sign(self, signed: Mapping[str, Any]) -> dict[str, str]:
        """A Notary signature object over the canonical JSON of ``signed`` (ECDSA raw r||s, SHA-256)."""
        der = self.private.sign(canonical(dict(signed)), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return {"keyid": self.key_id, "method": "ecdsa", "sig": base64.b64encode(raw).decode()}


def ecdsa_key_id(private: ec.EllipticCurvePrivateKey) -> str:
    """The Notary ID of ``private``'s public half as a bare ``ecdsa`` key (how targets/snapshot keys are listed)."""
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    obj = {"keytype": "ecdsa", "keyval": {"private": None, "public": base64.b64encode(der).decode()}}
    return PublicKey.from_json(obj).key_id


def x509_key(private: ec.EllipticCurvePrivateKey, cn: str) -> tuple[str, dict[str, Any]]:
    """An ``ecdsa-x509`` key object (a self-signed certificate naming ``cn``) and its Notary ID."""
    pem = self_signed(private, cn, days=3650).public_bytes(serialization.Encoding.PEM)
    obj = {"keytype": "ecdsa-x509", "keyval": {"private": None, "public": base64.b64encode(pem).decode()}}
    return PublicKey.from_json(obj).key_id, obj


def client_key(notary: Notary, role: str, scratch: Path) -> SigningKey:
    """The client's private key for ``role`` (targets or snapshot), decrypted with its passphrase."""
    for path in sorted((notary.trust_dir / "private").glob("*.key")):
        lines = path.read_text().splitlines()
        if f"role: {role}" not in lines:
            continue
        body = "\n".join(line for line in lines if not line.startswith(("role:", "gun:")))
        encrypted = scratch / f"{role}.p8"
        encrypted.write_text(body.replace("-----\n\n", "-----\n") + "\n")
        opened = subprocess.run(
            ["openssl", "pkcs8", "-in", str(encrypted), "-passin", f"pass:{PASSPHRASES[role]}"],
            capture_output=True,
            check=True,
            timeout=30,
        )
        private = serialization.load_pem_private_key(opened.stdout, password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        return SigningKey(ecdsa_key_id(private), private)
    raise AssertionError(f"the client holds no {role} key in {notary.trust_dir / 'private'}")


def swap_client_key(notary: Notary, role: str, scratch: Path) -> None:
    """Replace the client's private key for ``role`` by a new P-256 key under the same name and passphrase.

    The client then signs ``role`` with a key the repository does not trust, as an attacker with a copy of the
    trust directory but not the key would: the file is PKCS#8 PBES2 (PBKDF2-SHA1, 2048 rounds, AES-256-CBC)
    with notary's ``role:``/``gun:`` PEM headers, the format the client writes itself.
    """
    for path in sorted((notary.trust_dir / "private").glob("*.key")):
        lines = path.read_text().splitlines()
        if f"role: {role}" not in lines:
            continue
        plain = scratch / f"new-{role}.pem"
        _write_key(ec.generate_private_key(ec.SECP256R1()), plain)
        sealed = subprocess.run(
            ["openssl", "pkcs8", "-topk8", "-in", str(plain), "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1",
             "-iter", "2048", "-passout", f"pass:{PASSPHRASES[role]}"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip().splitlines()  # fmt: skip
        headers = [line for line in lines if line.startswith(("role:", "gun:"))]
        path.write_text("\n".join([sealed[0], *headers, "", *sealed[1:]]) + "\n")
        return
    raise AssertionError(f"the client holds no {role} key in {notary.trust_dir / 'private'}")


def envelope(signed: Mapping[str, Any], *keys: SigningKey) -> bytes:
    """A metadata file as notary writes it: compact, ``signed`` first, signed by ``keys``."""
    return json.dumps({"signed": signed, "signatures": [k.sign(signed) for k in keys]}, separators=(",", ":")).encode()


def file_meta(data: bytes) -> dict[str, Any]:
    """The snapshot/timestamp entry for ``data`` (sha256 + sha512 base64, length)."""
    return FileMeta.of(data).to_json()


def target_meta(data: bytes) -> dict[str, Any]:
    """The targets entry for a target file with content ``data``."""
    return {"hashes": file_meta(data)["hashes"], "length": len(data)}


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256, as `notary list` prints it."""
    return hashlib.sha256(data).hexdigest()
