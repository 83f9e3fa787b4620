"""``docker://`` against real registries: trustyard (auth on) and Debian's docker-registry (anonymous).

The shared OCI fixture is pushed with skopeo; the bill of materials read over the registry API must equal the
one read from the OCI layout itself. Credentials come from ``--creds``, from an auth file written by a real
``skopeo login``, and from the docker CLI's config.json. A multi-platform index (the fixture's manifest plus an
arm64 twin with its own config) is pushed with ``skopeo copy --all`` to check platform selection, and a blob
corrupted in docker-registry's storage must be refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from interop.clients import Skopeo, add_login, registries_conf
from interop.servers import DistributionServer, RegistryServer, TrustyardServer
from scan.shared import OCI_ALPINE_APP, OCI_ALPINE_APP_TAG, report
from scan.test_matcher import golden_store
from scan.tools import need
from scan.vulndb.shared import needs_shared
from trustyard.oci.digest import Digest
from trustyard.scan.errors import SourceError
from trustyard.scan.indexer import Indexer
from trustyard.scan.sources import (
    Credentials,
    PlatformSpec,
    RegistryAuthError,
    SourceOptions,
    open_source,
)

pytestmark = pytest.mark.interop

OCI_NAME = f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}"
REPO = "fixtures/alpine-app"
__all__ = ["golden_store"]


class Registries:
    """One trustyard (credentials required) and one docker-registry, each holding the fixture image."""

    def __init__(self, workdir: Path) -> None:
        need("skopeo", "skopeo")
        need("docker-registry", "docker-registry")
        self.trustyard = TrustyardServer(workdir=workdir / "trustyard")
        self.distribution = DistributionServer(workdir=workdir / "distribution")
        self.skopeo = Skopeo(workdir / "skopeo")
        self.started: list[RegistryServer] = []
        servers: tuple[RegistryServer, ...] = (self.trustyard, self.distribution)
        for server in servers:
            server.start()
            self.started.append(server)
        assert self.trustyard.credentials is not None
        add_login(self.skopeo.auth_file, self.trustyard.host, self.trustyard.credentials)
        for server in self.started:
            self.skopeo.copy(OCI_NAME, f"docker://{server.host}/{REPO}:1")

    def close(self) -> None:
        for server in reversed(self.started):
            server.close()


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    r = Registries(tmp_path_factory.mktemp("registries"))
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No auth file anywhere: HOME and XDG_RUNTIME_DIR point at an empty folder."""
    home = tmp_path / "home"
    home.mkdir()
    for name in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home))
    return home


@contextmanager
def pushed(server: RegistryServer, workdir: Path) -> Iterator[str]:
    """``server`` started, the fixture image pushed to it with skopeo (logged in when it needs credentials);
    yields the image's docker:// name and stops the server afterwards."""
    need("skopeo", "skopeo")
    server.start()
    try:
        skopeo = Skopeo(workdir / "skopeo")
        if server.credentials is not None:
            add_login(skopeo.auth_file, server.host, server.credentials)
        skopeo.copy(OCI_NAME, f"docker://{server.host}/{REPO}:1")
        yield f"docker://{server.host}/{REPO}:1"
    finally:
        server.close()


def _creds(server: RegistryServer) -> Credentials:
    assert server.credentials is not None
    return Credentials(*server.credentials)


def _index(name: str, options: SourceOptions | None = None) -> Any:
    source = open_source(name, options)
    try:
        return Indexer().index(source)
    finally:
        source.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "trustyard", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, check=False)


def _sbom_json(tmp_path: Path, image: str, *extra: str) -> dict[str, Any]:
    out = _cli("sbom", "--no-cache", "--data-dir", str(tmp_path / "data"), "--format", "json", *extra, image)
    assert out.returncode == 0, out.stderr
    document: dict[str, Any] = json.loads(out.stdout)
    document.pop("source")
    return document


@pytest.mark.parametrize("kind", ["trustyard", "distribution"])
def test_sbom_over_docker_equals_the_sbom_of_the_oci_layout(registries: Registries, kind: str, tmp_path: Path) -> None:
    server = registries.trustyard if kind == "trustyard" else registries.distribution
    creds = ["--creds", ":".join(server.credentials)] if server.credentials else []
    over_registry = _sbom_json(tmp_path, f"docker://{server.host}/{REPO}:1", *creds)
    from_layout = _sbom_json(tmp_path, OCI_NAME)
    assert over_registry == from_layout
    assert len(over_registry["components"]) == len(report(OCI_NAME).components) > 20


@needs_shared
def test_scan_of_a_docker_image_finds_what_the_oci_layout_scan_finds(
    registries: Registries, golden_store: Path, tmp_path: Path
) -> None:
    def findings(image: str) -> list[Any]:
        argv = ["scan", "--no-cache", "--data-dir", str(tmp_path), "--db", str(golden_store), "--format", "json"]
        out = _cli(*argv, "--fail-on", "high", image)
        assert out.returncode == 3, out.stderr  # lodash 4.17.15 is high
        found: list[Any] = json.loads(out.stdout)["findings"]
        return found

    over_registry = findings(f"docker://{registries.distribution.host}/{REPO}:1")
    assert over_registry == findings(OCI_NAME)
    assert over_registry


def test_by_digest(registries: Registries) -> None:
    digest = report(OCI_NAME).manifest_digest
    found = _index(f"docker://{registries.distribution.host}/{REPO}@{digest}")
    assert found.manifest_digest == digest
    assert found.components == report(OCI_NAME).components
    missing = Digest("sha256", hashlib.sha256(b"no such manifest").hexdigest())
    with pytest.raises(SourceError, match="not found"):
        _index(f"docker://{registries.distribution.host}/{REPO}@{missing}")


def test_login_written_by_skopeo_login_is_used(
    registries: Registries, clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = registries.trustyard
    auth = tmp_path / "skopeo-login.json"
    user, password = _creds(server).username, _creds(server).password
    login = registries.skopeo.run(
        "login", "--authfile", str(auth), "--tls-verify=false", "-u", user, "-p", password, server.host
    )
    assert "Login Succeeded" in login.stdout
    name = f"docker://{server.host}/{REPO}:1"
    with pytest.raises(RegistryAuthError, match="needs credentials"):
        _index(name)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth))
    assert _index(name).components == report(OCI_NAME).components


def test_docker_cli_config_json_is_used(registries: Registries, clean_env: Path) -> None:
    server = registries.trustyard
    (clean_env / ".docker").mkdir()
    assert server.credentials is not None
    add_login(clean_env / ".docker" / "config.json", f"http://{server.host}/v1/", server.credentials)
    assert _index(f"docker://{server.host}/{REPO}:1").manifest_digest == report(OCI_NAME).manifest_digest


def test_wrong_password_is_a_clear_error_without_traceback(registries: Registries, tmp_path: Path) -> None:
    server = registries.trustyard
    image = f"docker://{server.host}/{REPO}:1"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}
    env.pop("REGISTRY_AUTH_FILE", None)
    wrong = _cli("sbom", "--no-cache", "--creds", "admin:not-the-password", image, env=env)
    assert wrong.returncode == 1
    assert "refused the credentials of 'admin'" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    anonymous = _cli("sbom", "--no-cache", image, env=env)
    assert anonymous.returncode == 1
    assert "needs credentials" in anonymous.stderr
    assert "Traceback" not in anonymous.stderr
    malformed = _cli("sbom", "--creds", "no-colon", image, env=env)
    assert malformed.returncode == 2
    assert "USER:PASSWORD" in malformed.stderr


def test_plain_http_needs_tls_verify_false_when_verification_is_asked_for(registries: Registries) -> None:
    name = f"docker://{registries.distribution.host}/{REPO}:1"
    with pytest.raises(SourceError, match="--tls-verify=false"):
        open_source(name, SourceOptions(tls_verify=True))
    source = open_source(name, SourceOptions(tls_verify=False))
    source.close()


def _self_signed(folder: Path) -> tuple[Path, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path, cert_path


def test_https_registry_with_a_self_signed_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text(registries_conf(()))
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(conf))
    server = TrustyardServer(workdir=tmp_path / "tls", tls=_self_signed(tmp_path / "pki"))
    with pushed(server, tmp_path) as name:
        with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED"):
            open_source(name, SourceOptions(credentials=_creds(server)))
        found = _index(name, SourceOptions(credentials=_creds(server), tls_verify=False))
        assert found.components == report(OCI_NAME).components
        conf.write_text(registries_conf([server.host]))  # what skopeo reads for --tls-verify's default
        found = _index(name, SourceOptions(credentials=_creds(server)))
        assert found.manifest_digest == report(OCI_NAME).manifest_digest
        with pytest.raises(SourceError, match="CERTIFICATE_VERIFY_FAILED"):
            open_source(name, SourceOptions(credentials=_creds(server), tls_verify=True))


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hex_ = digest.partition(":")
    return layout / "blobs" / algorithm / hex_


def _write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob(layout, digest).write_bytes(data)
    return {"digest": digest, "size": len(data)}


@pytest.fixture(scope="module")
def multi_platform(registries: Registries, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The fixture image (amd64) and an arm64 twin (same layers, its own config) in one index, pushed."""
    layout = tmp_path_factory.mktemp("index") / "layout"
    shutil.copytree(OCI_ALPINE_APP, layout)
    descriptor = json.loads((layout / "index.json").read_text())["manifests"][0]
    manifest = json.loads(_blob(layout, descriptor["digest"]).read_bytes())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_bytes())
    config["architecture"] = "arm64"
    manifest["config"].update(_write_blob(layout, json.dumps(config).encode()))
    arm = _write_blob(layout, json.dumps(manifest).encode())
    children = [
        {"mediaType": descriptor["mediaType"], "digest": descriptor["digest"], "size": descriptor["size"],
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": descriptor["mediaType"], **arm, "platform": {"architecture": "arm64", "os": "linux"}},
    ]  # fmt: skip
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}
    top = _write_blob(layout, json.dumps(index).encode())
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [
                    {
                        "mediaType": index["mediaType"],
                        **top,
                        "annotations": {"org.opencontainers.image.ref.name": "multi"},
                    }
                ],
            }
        )
    )
    server = registries.distribution
    registries.skopeo.copy(f"oci:{layout}:multi", f"docker://{server.host}/{REPO}:multi", "--all")
    return {
        "name": f"docker://{server.host}/{REPO}:multi",
        "layout": f"oci:{layout}:multi",
        "amd64": descriptor["digest"],
        "arm64": arm["digest"],
    }


def test_index_default_platform_is_linux_amd64(multi_platform: dict[str, str]) -> None:
    found = _index(multi_platform["name"])
    assert str(found.manifest_digest) == multi_platform["amd64"]
    assert found.components == report(OCI_NAME).components


def test_index_platform_option(multi_platform: dict[str, str], tmp_path: Path) -> None:
    for name in (multi_platform["name"], multi_platform["layout"]):  # the option means the same for oci:
        source = open_source(name, SourceOptions(platform=PlatformSpec.parse("linux/arm64")))
        try:
            assert str(source.manifest_digest) == multi_platform["arm64"]
        finally:
            source.close()
    out = _cli("sbom", "--no-cache", "--data-dir", str(tmp_path), "--platform", "linux/s390x", multi_platform["name"])
    assert out.returncode == 1
    assert "no linux/s390x image (it offers: linux/amd64, linux/arm64)" in out.stderr


def test_a_blob_corrupted_in_the_registry_is_refused(tmp_path: Path) -> None:
    need("docker-registry", "docker-registry")
    server = DistributionServer(workdir=tmp_path / "distribution")
    with pushed(server, tmp_path) as name:
        source = open_source(name)
        try:
            top = source.layers()[-1]
        finally:
            source.close()
        assert top.digest is not None
        stored = server.data_dir / "docker/registry/v2/blobs/sha256" / top.digest.hex[:2] / top.digest.hex / "data"
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same length: only the digest can tell
        stored.write_bytes(bytes(data))
        with pytest.raises(SourceError, match=f"not to {top.digest}; refused"):
            _index(name)
        out = _cli("sbom", "--no-cache", "--data-dir", str(tmp_path / "data"), name)
        assert out.returncode == 1
        assert "refused" in out.stderr
        assert "Traceback" not in out.stderr


def test_a_config_of_several_chunks(registries: Registries, tmp_path: Path) -> None:
    """A 2.5 MB config (several 1 MiB transfer chunks) is read whole and verified. One past the 4 MiB metadata
    limit cannot be pushed with skopeo, which refuses it with the same limit."""
    layout = tmp_path / "layout"
    shutil.copytree(OCI_ALPINE_APP, layout)
    descriptor = json.loads((layout / "index.json").read_text())["manifests"][0]
    manifest = json.loads(_blob(layout, descriptor["digest"]).read_bytes())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_bytes())
    config.setdefault("config", {}).setdefault("Labels", {})["org.example.big"] = "x" * 2_500_000
    manifest["config"].update(_write_blob(layout, json.dumps(config).encode()))
    descriptor.update(_write_blob(layout, json.dumps(manifest).encode()))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    name = f"docker://{registries.distribution.host}/{REPO}:big-config"
    registries.skopeo.copy(f"oci:{layout}", name)
    found = _index(name)
    assert found.manifest_digest == Digest.parse(descriptor["digest"])
    assert found.components == report(OCI_NAME).components


class ShortTokenServer(TrustyardServer):
    """trustyard whose access tokens live two seconds (no clock-skew leeway), so a slow read outlives its first."""

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "TRUSTYARD_TOKEN_LIFETIME": "2", "TRUSTYARD_TOKEN_LEEWAY": "0"}


def test_an_expired_token_is_renewed_mid_read(tmp_path: Path) -> None:
    server = ShortTokenServer(workdir=tmp_path / "trustyard")
    with pushed(server, tmp_path) as name:
        source = open_source(name, SourceOptions(credentials=_creds(server)))
        try:
            tokens_before = server.log_path.read_text().count('"path": "/auth/token"')
            time.sleep(3)  # the token fetched for the manifest has expired
            found = Indexer().index(source)
        finally:
            source.close()
        assert found.components == report(OCI_NAME).components
        assert server.log_path.read_text().count('"path": "/auth/token"') == tokens_before + 1


def test_an_artifact_is_not_read_as_an_image(registries: Registries) -> None:
    """trustyard attaches an SBOM referrer to every pushed image; asked for as an image, it is refused plainly."""
    server = registries.trustyard
    digest = report(OCI_NAME).manifest_digest
    assert server.credentials is not None
    deadline = time.monotonic() + 120
    with httpx.Client(base_url=server.url, auth=server.credentials, timeout=30) as http:
        while True:
            found = http.get(f"/v2/{REPO}/referrers/{digest}").json()["manifests"]
            if found or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert [m["artifactType"] for m in found] == ["application/vnd.cyclonedx+json"]
    name = f"docker://{server.host}/{REPO}@{found[0]['digest']}"
    with pytest.raises(SourceError, match="not a container image but an artifact"):
        open_source(name, SourceOptions(credentials=_creds(server)))
