"""``trustyard db push``/``db pull`` through a real ``trustyard serve`` (credentials required: Basic at the token
endpoint, then Bearer), with oras-py reading the artifact as any OCI client would.

A pull that cannot be verified (a blob corrupted in the registry's storage, an artifact of another type, a
layer that is not a store, wrong credentials) must leave the old store byte for byte as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oras.oci
import oras.provider
import pytest
from click.testing import CliRunner, Result

from interop.servers import TrustyardServer
from scan.vulndb.shared import ALPINE, OSV, needs_shared
from trustyard.cli import main
from trustyard.scan.vulndb.artifact import ARTIFACT_TYPE, LAYER_TYPE, TITLE
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.store import VulnerabilityStore

pytestmark = [pytest.mark.interop, needs_shared]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrustyardServer]:
    registry = TrustyardServer(workdir=tmp_path_factory.mktemp("trustyard"))
    registry.start()
    yield registry
    registry.close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "source" / "vulndb.sqlite"
    with VulnerabilityStore(path) as s:
        import_path(s, OSV / "npm" / "all.zip")
        import_path(s, ALPINE / "v3.10-main.json")
    return path


@pytest.fixture
def oras_client(server: TrustyardServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """oras-py over plain HTTP, logged in as the server's admin (HOME empty: no credentials of this machine)."""
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    client = oras.provider.Registry(hostname=server.host, insecure=True)
    assert server.credentials is not None
    client.auth.set_basic_auth(*server.credentials)
    yield client
    client.session.close()


def db(server: TrustyardServer, command: str, ref: str, store: Path, *, creds: str | None = None) -> Result:
    assert server.credentials is not None
    login = creds or ":".join(server.credentials)
    args = ["db", command, f"{server.host}/{ref}", "--creds", login, "--plain-http", "--db", str(store)]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def contents(path: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    rows = con.execute("SELECT source, id, digest FROM advisories ORDER BY source, id").fetchall()
    con.close()
    return rows


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_pull_round_trip_and_oras_reads_it(
    server: TrustyardServer, store: Path, tmp_path: Path, oras_client: Any
) -> None:
    pushed = db(server, "push", "vulndb/store:1", store)
    assert pushed.exit_code == 0, pushed.output
    digest = pushed.stdout.split(": ", 1)[1].split(" ", 1)[0]
    assert digest.startswith("sha256:")

    manifest = oras_client.get_manifest(f"{server.host}/vulndb/store:1")
    assert manifest["artifactType"] == ARTIFACT_TYPE
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == LAYER_TYPE and layer["annotations"]["org.opencontainers.image.title"] == TITLE
    written = oras_client.pull(target=f"{server.host}/vulndb/store:1", outdir=str(tmp_path / "oras"))
    (packed,) = [Path(p) for p in written]
    unpacked = tmp_path / "oras.sqlite"
    unpacked.write_bytes(gzip.decompress(packed.read_bytes()))
    assert f"sha256:{file_digest(unpacked)}" == layer["annotations"]["io.trustyard.vulndb.sqlite.digest"]
    assert contents(unpacked) == contents(store)

    target = tmp_path / "pulled" / "vulndb.sqlite"
    pulled = db(server, "pull", f"vulndb/store@{digest}", target)
    assert pulled.exit_code == 0, pulled.output
    assert "alpine:v3.10-main: data of" in pulled.stdout
    assert contents(target) == contents(store)
    status = CliRunner().invoke(main, ["db", "status", "--db", str(target), "--json"])
    assert {s["source"] for s in json.loads(status.stdout)["sources"]} == {"osv", "alpine:v3.10-main"}


def _unchanged_after(server: TrustyardServer, ref: str, target: Path, message: str, **kw: str) -> None:
    before = file_digest(target)
    result = db(server, "pull", ref, target, **kw)
    assert result.exit_code == 1, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert file_digest(target) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["vulndb.sqlite"]  # no partial files left


@pytest.fixture
def installed(store: Path, tmp_path: Path) -> Path:
    """A store already in place (the one a failed pull must keep)."""
    target = tmp_path / "kept" / "vulndb.sqlite"
    with VulnerabilityStore(target) as s:
        import_path(s, OSV / "Maven" / "all.zip")
    return target


def test_corrupted_blob_is_refused_and_the_store_kept(
    server: TrustyardServer, store: Path, installed: Path, oras_client: Any
) -> None:
    assert db(server, "push", "vulndb/corrupt:1", store).exit_code == 0
    manifest = oras_client.get_manifest(f"{server.host}/vulndb/corrupt:1")
    hexdigest = manifest["layers"][0]["digest"].split(":", 1)[1]
    (blob,) = [p for p in server.data_dir.rglob("*") if p.is_file() and hexdigest in str(p)]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    _unchanged_after(server, "vulndb/corrupt:1", installed, "does not match its digest")


def test_other_artifacts_and_broken_layers_are_refused(
    server: TrustyardServer, installed: Path, tmp_path: Path, oras_client: Any
) -> None:
    container = oras_client.get_container(f"{server.host}/vulndb/other:1")
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"{}")
    config, _ = oras.oci.ManifestConfig(str(empty), "application/vnd.oci.empty.v1+json")
    assert oras_client.upload_blob(str(empty), container, config).status_code in (200, 201, 202)
    junk = tmp_path / TITLE
    junk.write_bytes(b"not gzip at all")
    layer = oras.oci.NewLayer(str(junk), media_type=LAYER_TYPE)
    assert oras_client.upload_blob(str(junk), container, layer).status_code in (200, 201, 202)
    for tag, artifact_type, message in (
        ("other", "application/vnd.example.thing.v1", "not a trustyard vulnerability store"),
        ("junk", ARTIFACT_TYPE, "not a readable gzip file"),
    ):
        manifest = oras.oci.NewManifest()
        manifest.update(config=config, layers=[layer], artifactType=artifact_type)
        target = oras_client.get_container(f"{server.host}/vulndb/other:{tag}")
        assert oras_client.upload_manifest(manifest, target).status_code == 201
        _unchanged_after(server, f"vulndb/other:{tag}", installed, message)


def test_wrong_credentials_and_missing_tag(server: TrustyardServer, store: Path, installed: Path) -> None:
    _unchanged_after(server, "vulndb/store:1", installed, "refused the credentials", creds="admin:wrong")
    _unchanged_after(server, "vulndb/nothing:here", installed, "NAME_UNKNOWN")
    bad = CliRunner().invoke(main, ["db", "pull", "no-registry-here", "--db", str(installed)])
    assert bad.exit_code == 1 and "REGISTRY/REPO:TAG" in bad.stderr
