"""Publishers' keys: the encrypted file backend, the key store's records, root certificates made through a
``Signer``, signed envelopes, and the `trustyard trust key` commands (no server needed).

Every signature made here is checked with the server's own verifier (``trust.keys.PublicKey.verify``), the
same check notary makes, so what the client signs is what the server and the real client accept.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from trustyard.cli import main
from trustyard.trust.client_publish import envelope
from trustyard.trust.errors import BadRootError
from trustyard.trust.keyfiles import KeyStore
from trustyard.trust.keys import canonical
from trustyard.trust.metadata import Root, parse_metadata
from trustyard.trust.signers import FileSigner, KeyFileError, notary_key, root_certificate_key


class FixedSecrets:
    """A passphrase and PIN given up front; counts how often each was asked for."""

    def __init__(self, passphrase: str) -> None:
        self.value = passphrase
        self.asked = 0

    def passphrase(self, what: str, *, confirm: bool) -> str:
        del what, confirm
        self.asked += 1
        return self.value

    def pin(self, token: str) -> str:
        del token
        return self.value


def test_file_keys_are_encrypted_and_load_only_with_their_passphrase(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, FixedSecrets("right"))
    record = store.generate(name="alice", role="signer")
    pem = (tmp_path / "private" / f"{record.key_id}.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert oct((tmp_path / "private" / f"{record.key_id}.pem").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(pem, password=None)

    again = KeyStore(tmp_path, FixedSecrets("right"))
    [listed] = again.records()
    assert (listed.key_id, listed.name, listed.role, listed.backend) == (record.key_id, "alice", "signer", "file")
    signature = again.signer(listed).sign(b"message")
    listed.public.verify("ecdsa", signature, b"message")

    wrong = KeyStore(tmp_path, FixedSecrets("wrong"))
    with pytest.raises(KeyFileError, match=r"wrong passphrase for .*\.pem"):
        wrong.signer(wrong.records()[0])


def test_key_ids_are_notarys_canonical_ids() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = notary_key(private.public_key())
    der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.keytype == "ecdsa"
    assert key.to_json()["keyval"]["private"] is None
    assert key.public == base64.b64encode(der).decode()
    # notary: sha256 of the canonical JSON of the key object, "private": null included
    assert key.key_id == hashlib.sha256(canonical(key.to_json())).hexdigest()


def test_import_takes_p256_keys_only_and_asks_for_an_encrypted_files_passphrase(tmp_path: Path) -> None:
    secrets = FixedSecrets("import-pass")
    store = KeyStore(tmp_path / "trust", secrets)
    private = ec.generate_private_key(ec.SECP256R1())
    encrypted = tmp_path / "delegation.key"
    encrypted.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"import-pass"),
        )
    )
    record = store.import_file(encrypted, name="delegation", role="signer")
    assert record.public.key_id == notary_key(private.public_key()).key_id
    assert secrets.asked == 2  # once to open the file, once to protect the stored copy

    other = tmp_path / "ed.key"
    other.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(KeyFileError, match="not an ECDSA P-256 key"):
        store.import_file(other, name="ed", role="signer")
    with pytest.raises(KeyFileError, match="already in the trust dir"):
        store.import_file(encrypted, name="again", role="signer")
    assert len(store.records()) == 1


def test_a_root_certificate_made_through_a_signer_is_what_notary_requires() -> None:
    signer = FileSigner(ec.generate_private_key(ec.SECP256R1()))
    key = root_certificate_key(signer, "registry.example:5000/library/app")
    assert key.keytype == "ecdsa-x509"
    assert key.common_name() == "registry.example:5000/library/app"
    assert key.certificate is not None
    key.certificate.verify_directly_issued_by(key.certificate)
    assert key.key.public_numbers() == signer.public_key.public_numbers()  # type: ignore[union-attr]


def test_envelopes_verify_with_the_servers_verifier() -> None:
    signer = FileSigner(ec.generate_private_key(ec.SECP256R1()))
    root_key = root_certificate_key(signer, "gun")
    ts = notary_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    body = {
        "_type": "Root",
        "consistent_snapshot": False,
        "expires": "2030-01-01T00:00:00Z",
        "keys": {root_key.key_id: root_key.to_json(), ts.key_id: ts.to_json()},
        "roles": {
            name: {"keyids": [root_key.key_id if name == "root" else ts.key_id], "threshold": 1}
            for name in ("root", "targets", "snapshot", "timestamp")
        },
        "version": 1,
    }
    raw = envelope(body, [(root_key.key_id, signer)])
    parsed = parse_metadata("root", raw, Root)
    assert parsed.signed_bytes == canonical(body)
    assert json.loads(raw)["signed"] == body
    parsed.verify(parsed.body.role_keys("root"), 1, BadRootError, "root")  # raises if the signature is bad


def test_key_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"TRUSTYARD_TRUST_DIR": str(tmp_path / "trust"), "TRUSTYARD_TRUST_PASSPHRASE": "cli-pass"}
    done = runner.invoke(main, ["trust", "key", "generate", "alice", "--dir", str(tmp_path)], env=env)
    assert done.exit_code == 0, done.output
    public = serialization.load_pem_public_key((tmp_path / "alice.pub").read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    again = runner.invoke(main, ["trust", "key", "generate", "alice", "--dir", str(tmp_path)], env=env)
    assert again.exit_code == 1 and "already exists" in again.output
    listed = runner.invoke(main, ["trust", "key", "list", "--format", "json"], env=env)
    [row] = json.loads(listed.output)
    assert (row["Name"], row["Role"], row["Backend"]) == ("alice", "signer", "file")
    assert row["ID"] == notary_key(public).key_id
    table = runner.invoke(main, ["trust", "key", "list"], env=env)
    assert row["ID"][:12] in table.output and "alice" in table.output


def test_bad_image_references_are_clear_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"TRUSTYARD_TRUST_DIR": str(tmp_path)}
    cases = {
        ("sign", "library/app:v1"): "name the registry too",
        ("sign", "reg.example/library/app"): "name a tag",
        ("sign", "reg.example/library/app@sha256:" + "0" * 64): "name a tag, not a digest",
        ("sign", "reg.example/Library/app:v1"): "invalid repository name",
        ("verify", "reg.example/library/app"): "name a tag",
    }
    for args, message in cases.items():
        done = runner.invoke(main, ["trust", *args], env=env)
        assert done.exit_code == (2 if args[0] == "verify" else 1), (args, done.output)
        assert message in done.output, (args, done.output)
        assert done.exception is None or isinstance(done.exception, SystemExit)
