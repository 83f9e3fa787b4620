"""`trustyard trust` against `trustyard serve` (TLS, token auth), checked with the real `notary` client.

Each test pushes a real image manifest to the registry, then signs or verifies with the `trustyard trust` CLI
(a separate process, as a user runs it) and looks at the result with Debian's notary 0.7.0: what trustyard
signs, `notary list` shows; what `notary` publishes, `trustyard trust verify` accepts and `inspect` shows.
Signer keys live in passphrase-encrypted files or on a SoftHSM2 token (standing for a YubiKey), initialised
with `softhsm2-util` in a temporary SOFTHSM2_CONF. The GUN is Docker's: `<host>:<port>/<repository>`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import ssl
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from .notary_client import Notary, client, make_delegation, running_trustyard
from .servers import INTEROP_ADMIN_PASSWORD, TrustyardServer

pytestmark = pytest.mark.interop

PASSPHRASE = "trust-cli-passphrase"
SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "123456"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrustyardServer]:
    """`trustyard serve` with TLS and access control on."""
    with running_trustyard(tmp_path) as srv:
        yield srv


def push_image(server: TrustyardServer, repository: str, tag: str, text: str) -> tuple[str, int, bytes]:
    """Push a one-layer OCI image (a real tar layer) and return its manifest digest, size and bytes."""
    assert server.tls is not None
    layer_buffer = io.BytesIO()
    with tarfile.open(fileobj=layer_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = text.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    layer = layer_buffer.getvalue()
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": len(layer)}
            ],
        }
    ).encode()
    verify = ssl.create_default_context(cafile=str(server.tls[2]))
    with httpx.Client(base_url=server.url, verify=verify, auth=server.credentials, timeout=30) as http:
        for blob in (layer, config):
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            done = http.post(f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, content=blob)
            assert done.status_code == 201, done.text
        put = http.put(
            f"/v2/{repository}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert put.status_code == 201, put.text
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert put.headers["docker-content-digest"] == digest
    return digest, len(manifest), manifest


@dataclass
class TrustCli:
    """`trustyard trust …` as a user runs it: its own trust dir, the server's CA, the admin's login."""

    server: TrustyardServer
    trust_dir: Path
    extra_env: dict[str, str]

    def env(self, passphrase: str = PASSPHRASE) -> dict[str, str]:
        """Nothing prompts: passphrase, password and CA from the environment."""
        assert self.server.tls is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUSTYARD_", "SOFTHSM2_"))}
        env.update(
            TRUSTYARD_TRUST_DIR=str(self.trust_dir),
            TRUSTYARD_TRUST_CA=str(self.server.tls[2]),
            TRUSTYARD_USERNAME="admin",
            TRUSTYARD_PASSWORD=INTEROP_ADMIN_PASSWORD,
            TRUSTYARD_TRUST_PASSPHRASE=passphrase,
        )
        env.update(self.extra_env)
        return env

    def run(self, *args: str, passphrase: str = PASSPHRASE, expect: int = 0) -> subprocess.CompletedProcess[str]:
        """Run one `trustyard trust` command; fail with its output unless it exits with ``expect``."""
        argv = [sys.executable, "-m", "trustyard", "trust", *args]
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=self.env(passphrase),
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != expect:
            pytest.fail(
                f"trust {' '.join(args)} -> rc {done.returncode} (expected {expect})\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )
        assert "Traceback" not in done.stderr
        return done

    def inspect(self, image: str) -> list[dict[str, Any]]:
        """`trust inspect` as parsed JSON."""
        result: list[dict[str, Any]] = json.loads(self.run("inspect", image).stdout)
        return result


def trust_cli(server: TrustyardServer, tmp_path: Path, name: str, **extra_env: str) -> TrustCli:
    """A `trustyard trust` user with a fresh trust dir."""
    return TrustCli(server, tmp_path / f"trustyard-{name}", dict(extra_env))


def test_trust_sign_then_real_notary_lists_the_signed_digest(server: TrustyardServer, tmp_path: Path) -> None:
    gun = f"{server.host}/library/signed"
    digest, size, _ = push_image(server, "library/signed", "v1", "one")
    cli = trust_cli(server, tmp_path, "publisher")
    out = cli.run("sign", f"{gun}:v1")
    assert f"{digest} ({size} bytes) into targets" in out.stderr
    notary = client(server, tmp_path, "reader")
    assert notary.targets(gun) == {"v1": (digest.removeprefix("sha256:"), size, "targets")}
    assert notary.run("lookup", gun, "v1").stdout.split() == ["v1", digest, str(size)]

    # a second tag is published onto the same repository; the first stays signed
    digest2, size2, _ = push_image(server, "library/signed", "v2", "two")
    cli.run("sign", f"{gun}:v2")
    assert notary.targets(gun)["v2"] == (digest2.removeprefix("sha256:"), size2, "targets")
    assert set(notary.targets(gun)) == {"v1", "v2"}
    cli.run("verify", f"{gun}:v1")
    cli.run("verify", f"{gun}:v2")
    [report] = cli.inspect(f"{gun}:v2")
    assert report["SignedTags"] == [
        {"SignedTag": "v2", "Digest": digest2.removeprefix("sha256:"), "Signers": ["Repo Admin"]}
    ]

    # revoking removes the signature; verify then exits 1
    cli.run("revoke", f"{gun}:v1")
    assert set(notary.targets(gun)) == {"v2"}
    refused = cli.run("verify", f"{gun}:v1", expect=1)
    assert "is not signed" in refused.stderr


def test_notary_publishes_then_trust_verify_accepts_and_inspect_shows_the_signer(
    server: TrustyardServer, tmp_path: Path
) -> None:
    gun = f"{server.host}/library/by-notary"
    digest, size, manifest = push_image(server, "library/by-notary", "v1", "notary")
    manifest_file = tmp_path / "manifest.json"
    manifest_file.write_bytes(manifest)  # a target's hash is the manifest digest, as Docker signs it
    notary = client(server, tmp_path, "publisher")
    notary.run("init", gun)
    notary.run("add", gun, "v1", str(manifest_file))
    notary.run("publish", gun)
    crt, key = make_delegation(tmp_path, "carol")
    notary.run("delegation", "add", gun, "targets/carol", str(crt), "--all-paths")
    notary.run("publish", gun)
    notary.run("key", "import", str(key), "--role", "targets/carol")
    notary.run("add", gun, "v1", str(manifest_file), "--roles", "targets/carol")
    notary.run("publish", gun)

    cli = trust_cli(server, tmp_path, "user")
    ok = cli.run("verify", f"{gun}:v1")
    assert ok.stdout.split() == [f"{gun}:v1", digest, "signed", "by", "targets"]
    [report] = cli.inspect(f"{gun}:v1")
    assert report["Name"] == f"{gun}:v1"
    assert report["SignedTags"] == [{"SignedTag": "v1", "Digest": digest.removeprefix("sha256:"), "Signers": ["carol"]}]
    [signer] = report["Signers"]
    assert signer["Name"] == "carol" and len(signer["Keys"]) == 1
    assert [a["Name"] for a in report["AdministrativeKeys"]] == ["Root", "Repository"]
    table = cli.run("inspect", "--format", "table", gun).stdout
    assert "carol" in table and "Root" in table

    # the tag moves to an unsigned manifest: verify refuses (exit 1) and says which digests differ
    moved, _, _ = push_image(server, "library/by-notary", "v1", "moved")
    refused = cli.run("verify", f"{gun}:v1", expect=1)
    assert moved in refused.stderr and digest in refused.stderr
    # a tag nobody signed
    push_image(server, "library/by-notary", "unsigned", "nobody")
    assert "is not signed" in cli.run("verify", f"{gun}:unsigned", expect=1).stderr
    assert size > 0


def test_signer_added_with_trust_signs_into_its_delegation(server: TrustyardServer, tmp_path: Path) -> None:
    gun = f"{server.host}/library/delegated"
    admin = trust_cli(server, tmp_path, "admin")
    alice = trust_cli(server, tmp_path, "alice")
    alice.run("key", "generate", "alice", "--dir", str(tmp_path))
    listed = json.loads(alice.run("key", "list", "--format", "json").stdout)
    assert [(k["Name"], k["Role"], k["Backend"]) for k in listed] == [("alice", "signer", "file")]
    # a delegate cannot sign snapshot: the repository is created with the server holding it, as Docker does
    admin.run("signer", "add", "alice", gun, "--key", str(tmp_path / "alice.pub"), "--server-snapshot")

    digest, size, _ = push_image(server, "library/delegated", "v1", "alice")
    signed = alice.run("sign", f"{gun}:v1")
    assert "into targets/alice, targets/releases" in signed.stderr
    notary = client(server, tmp_path, "reader")
    assert notary.run("list", gun, "--roles", "targets/alice").stdout.split()[-4:] == [
        "v1",
        digest.removeprefix("sha256:"),
        str(size),
        "targets/alice",
    ]
    assert notary.targets(gun)["v1"][:2] == (digest.removeprefix("sha256:"), size)
    [report] = admin.inspect(gun)
    assert report["SignedTags"][0]["Signers"] == ["alice"]  # as docker trust inspect names it
    assert [s["Name"] for s in report["Signers"]] == ["alice"]
    alice.run("verify", f"{gun}:v1")

    # the admin has no alice key: with signers present, it cannot sign (as docker trust sign refuses)
    refused = admin.run("sign", f"{gun}:v1", expect=1)
    assert "hold none of their keys" in refused.stderr
    admin.run("signer", "remove", "alice", gun)
    assert admin.inspect(gun)[0]["Signers"] == []
    assert "v1" not in notary.targets(gun)


@pytest.fixture
def softhsm(tmp_path: Path) -> dict[str, str]:
    """A fresh SoftHSM2 token labelled `trustyard-test` in a temporary SOFTHSM2_CONF."""
    assert shutil.which("softhsm2-util") is not None, (
        "the Debian package softhsm2 is missing (scripts/test installs it)"
    )
    assert SOFTHSM_MODULE.is_file(), f"{SOFTHSM_MODULE} is missing: install the Debian package softhsm2"
    tokens = tmp_path / "softhsm-tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {"SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "trustyard-test", "--pin", PIN, "--so-pin", "5678"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=60,
    )
    return {**env, "TRUSTYARD_PKCS11_MODULE": str(SOFTHSM_MODULE), "TRUSTYARD_PKCS11_PIN": PIN}


def test_keys_on_a_pkcs11_token_sign_a_tag_that_notary_lists(
    server: TrustyardServer, tmp_path: Path, softhsm: dict[str, str]
) -> None:
    # root and targets keys generated on the token: the root certificate is signed by the token too
    gun = f"{server.host}/library/hsm"
    digest, size, _ = push_image(server, "library/hsm", "v1", "token")
    publisher = trust_cli(server, tmp_path, "hsm-publisher", **softhsm)
    publisher.run("sign", "--pkcs11-token", "trustyard-test", f"{gun}:v1")
    keys = json.loads(publisher.run("key", "list", "--format", "json").stdout)
    assert {(k["Role"], k["Backend"]) for k in keys} == {
        ("root", "pkcs11"),
        ("targets", "pkcs11"),
        ("snapshot", "file"),
    }
    notary = client(server, tmp_path, "reader")
    assert notary.targets(gun) == {"v1": (digest.removeprefix("sha256:"), size, "targets")}

    # a signer key on the token signs into its delegation
    publisher.run("key", "generate", "bob", "--pkcs11-token", "trustyard-test", "--dir", str(tmp_path))
    publisher.run("signer", "add", "bob", gun, "--key", str(tmp_path / "bob.pub"))
    digest2, size2, _ = push_image(server, "library/hsm", "v2", "token two")
    publisher.run("sign", f"{gun}:v2")
    assert notary.run("list", gun, "--roles", "targets/bob").stdout.split()[-4:] == [
        "v2",
        digest2.removeprefix("sha256:"),
        str(size2),
        "targets/bob",
    ]
    publisher.run("verify", f"{gun}:v2")

    # a wrong PIN is a clear error and changes nothing
    wrong = TrustCli(server, publisher.trust_dir, {**softhsm, "TRUSTYARD_PKCS11_PIN": "000000"})
    push_image(server, "library/hsm", "v3", "token three")
    failed = wrong.run("sign", f"{gun}:v3", expect=1)
    assert "wrong PIN for PKCS#11 token 'trustyard-test'" in failed.stderr
    assert "v3" not in notary.targets(gun)


def test_wrong_passphrase_is_a_clear_error_and_changes_nothing(server: TrustyardServer, tmp_path: Path) -> None:
    gun = f"{server.host}/library/locked"
    push_image(server, "library/locked", "v1", "locked")
    cli = trust_cli(server, tmp_path, "publisher")
    cli.run("sign", f"{gun}:v1")
    digest2, _, _ = push_image(server, "library/locked", "v2", "locked two")
    failed = cli.run("sign", f"{gun}:v2", passphrase="not-the-passphrase", expect=1)
    assert failed.stderr.startswith("error: wrong passphrase for ")
    notary: Notary = client(server, tmp_path, "reader")
    assert set(notary.targets(gun)) == {"v1"}
    cli.run("sign", f"{gun}:v2")
    assert notary.targets(gun)["v2"][0] == digest2.removeprefix("sha256:")


def test_key_rotation_keeps_the_repository_readable_by_notary(server: TrustyardServer, tmp_path: Path) -> None:
    gun = f"{server.host}/library/rotated"
    digest, size, _ = push_image(server, "library/rotated", "v1", "rotate")
    cli = trust_cli(server, tmp_path, "publisher")
    cli.run("sign", f"{gun}:v1")
    notary = client(server, tmp_path, "reader")
    assert notary.targets(gun) == {"v1": (digest.removeprefix("sha256:"), size, "targets")}
    before = cli.inspect(gun)[0]["AdministrativeKeys"]
    cli.run("key", "rotate", "snapshot", gun, "--server-managed")
    cli.run("key", "rotate", "targets", gun)
    cli.run("key", "rotate", "root", gun)
    cli.run("key", "rotate", "timestamp", gun)
    after = cli.inspect(gun)[0]["AdministrativeKeys"]
    assert before[0] != after[0] and before[1] != after[1]  # new root and repository keys
    # the client that pinned the first root follows the rotations (each root signed by the one before)
    assert notary.targets(gun) == {"v1": (digest.removeprefix("sha256:"), size, "targets")}
    digest2, _, _ = push_image(server, "library/rotated", "v2", "after rotation")
    cli.run("sign", f"{gun}:v2")  # snapshot now signed by the server
    assert notary.targets(gun)["v2"][0] == digest2.removeprefix("sha256:")
    assert client(server, tmp_path, "fresh").targets(gun)["v2"][0] == digest2.removeprefix("sha256:")


def test_verify_of_an_unreachable_registry_exits_2(server: TrustyardServer, tmp_path: Path) -> None:
    cli = trust_cli(server, tmp_path, "user")
    failed = cli.run("verify", "127.0.0.1:1/library/nowhere:v1", expect=2)
    assert "cannot reach" in failed.stderr
    bad = cli.run("verify", "library/no-host:v1", expect=2)
    assert "name the registry too" in bad.stderr
