"""oras-py (the ORAS client for Python) pushes OCI 1.1 artifacts to the registry and pulls them back; artifacts
that name a skopeo-pushed image as their `subject` are listed by the referrers API.

Artifacts are pushed the two ways ORAS writes them: with oras-py's `push()` (files with their media types,
manifest annotations, the artifact type carried by the config's media type, as `oras push --image-spec v1.0`
does) and as an OCI 1.1 artifact manifest (`artifactType`, the empty config `application/vnd.oci.empty.v1+json`,
as `oras push` does by default). oras-py 0.2's `push()` cannot set `artifactType`, so that manifest is built
and uploaded with oras-py's own provider calls (`oras.oci.NewLayer`, `ManifestConfig`, `upload_blob`,
`upload_manifest`). oras-py has no referrers call: the referrers index is read over HTTP.

Not here: signatures (notation, cosign) and the referrers tag schema fallback. Debian's docker-registry (2.8)
has no referrers API, so `TRUSTYARD_INTEROP_SUT=distribution` passes only the push/pull round trips.
Spec: OCI distribution-spec 1.1 "Pushing Manifests with Subject" and "Listing Referrers"; image-spec 1.1
"Guidelines for Artifact Usage".
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import oras.oci
import oras.provider
import pytest

from .clients import Skopeo
from .images import OCI_INDEX, OCI_MANIFEST, OciImage, sha256_digest
from .registry_api import RegistryClient
from .servers import RegistryServer

pytestmark = pytest.mark.interop

TITLE = "org.opencontainers.image.title"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
# the test artifacts' types: a report's as its config media type (OCI 1.0 style), an attestation's as the
# manifest's `artifactType` (OCI 1.1)
REPORT_TYPE = "application/vnd.trustyard.test.report.v1+json"
ATTESTATION_TYPE = "application/vnd.trustyard.test.attestation.v1"
CHUNK_SIZE = 64 * 1024


@dataclass(frozen=True)
class ArtifactFile:
    """A file that goes into an artifact as one layer of its media type."""

    path: Path
    media_type: str

    @property
    def oras_spec(self) -> str:
        """The file as oras-py's `push(files=...)` takes it: `<path>:<media type>`."""
        return f"{self.path}:{self.media_type}"


@dataclass(frozen=True)
class Pushed:
    """A manifest oras-py pushed: the digest and `OCI-Subject` the registry answered with, and the annotations
    it carried."""

    digest: str
    oci_subject: str | None
    annotations: dict[str, str]


class Oras:
    """oras-py's `Registry` (plain HTTP to one registry), behind typed calls."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.client: Any = oras.provider.Registry(hostname=host, insecure=True)

    def push(
        self,
        target: str,
        files: list[ArtifactFile],
        *,
        config: Path,
        config_type: str,
        annotations: dict[str, str],
        subject: oras.oci.Subject | None = None,
        chunked: bool = False,
    ) -> Pushed:
        """`Registry.push()`: one layer per file, the config blob of `config_type`, manifest annotations."""
        response = self.client.push(
            target=f"{self.host}/{target}",
            files=[f.oras_spec for f in files],
            manifest_config=f"{config}:{config_type}",
            manifest_annotations=annotations,
            subject=subject,
            disable_path_validation=True,  # the files live under the test's tmp_path, not the working dir
            do_chunked=chunked,
            chunk_size=CHUNK_SIZE,
            quiet=True,
        )
        return _pushed(response, annotations)

    def push_artifact(
        self,
        target: str,
        files: list[ArtifactFile],
        *,
        artifact_type: str,
        annotations: dict[str, str],
        workdir: Path,
        subject: oras.oci.Subject | None = None,
    ) -> Pushed:
        """An OCI 1.1 artifact manifest (`artifactType`, empty config) built and uploaded with oras-py's
        provider calls."""
        container = self.client.get_container(f"{self.host}/{target}")
        manifest = oras.oci.NewManifest()
        for f in files:
            layer = oras.oci.NewLayer(str(f.path), media_type=f.media_type)
            layer["annotations"] = {TITLE: f.path.name}
            _check(self.client.upload_blob(str(f.path), container, layer), f"blob {f.path.name}")
            manifest["layers"].append(layer)
        empty = workdir / "empty-config.json"
        empty.write_bytes(b"{}")
        config, _ = oras.oci.ManifestConfig(str(empty), EMPTY_CONFIG)
        _check(self.client.upload_blob(str(empty), container, config), "empty config")
        manifest["config"] = config
        manifest["artifactType"] = artifact_type
        manifest["annotations"] = annotations
        if subject is not None:
            manifest["subject"] = asdict(subject)
        response = self.client.upload_manifest(manifest, container)
        return _pushed(response, annotations)

    def pull(self, target: str, outdir: Path) -> list[Path]:
        """`Registry.pull()` into `outdir`: the files it wrote, named by their title annotations."""
        written = self.client.pull(target=f"{self.host}/{target}", outdir=str(outdir))
        return sorted(Path(p) for p in written)


def _check(response: Any, what: str) -> None:
    status: int = response.status_code
    assert status in (200, 201, 202), f"{what}: HTTP {status} {response.text[:500]}"


def _pushed(response: Any, annotations: dict[str, str]) -> Pushed:
    """What the registry answered to a manifest PUT that oras-py made (which must have succeeded)."""
    _check(response, "manifest PUT")
    assert response.status_code == 201
    digest: str = response.headers["Docker-Content-Digest"]
    subject: str | None = response.headers.get("OCI-Subject")
    return Pushed(digest, subject, annotations)


@pytest.fixture
def oras_client(registry: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Oras:
    """oras-py talking plain HTTP to the registry under test, with no credentials from this machine
    (it reads ~/.docker/config.json: HOME points at an empty directory)."""
    home = tmp_path / "oras-home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    client = Oras(registry.host)
    if registry.credentials is not None:
        client.client.auth.set_basic_auth(*registry.credentials)  # login() would ask a docker daemon
    return client


def write_files(folder: Path, seed: str) -> list[ArtifactFile]:
    """A JSON report and a binary trace (200 kB, more than three upload chunks), each with its media type."""
    folder.mkdir(parents=True)
    report = folder / "report.json"
    report.write_text(json.dumps({"seed": seed, "findings": [{"id": "TY-1", "severity": "low"}]}, indent=1))
    trace = folder / "trace.bin"
    trace.write_bytes(random.Random(seed).randbytes(200_000))
    return [
        ArtifactFile(report, "application/vnd.trustyard.test.report.layer.v1+json"),
        ArtifactFile(trace, "application/vnd.trustyard.test.trace.v1"),
    ]


def write_config(folder: Path) -> Path:
    """A small config blob for `push()` (its media type is the artifact type)."""
    config = folder / "config.json"
    config.write_text(json.dumps({"tool": "trustyard-interop", "version": 1}))
    return config


@pytest.mark.parametrize("how", ["push", "push-chunked", "artifact-manifest"])
def test_push_and_pull_files(how: str, oras_client: Oras, api: RegistryClient, tmp_path: Path) -> None:
    """Two files of different media types go up as one artifact (monolithic or chunked uploads, or as an OCI
    1.1 artifact manifest) and `pull()` writes them back byte for byte; the manifest keeps its artifact type,
    layer media types, titles and annotations."""
    files = write_files(tmp_path / "in", seed=how)
    annotations = {"org.opencontainers.image.description": f"oras-py {how}", "com.example.build": "42"}
    repo, tag = "artifacts/files", how
    if how == "artifact-manifest":
        pushed = oras_client.push_artifact(
            f"{repo}:{tag}", files, artifact_type=ATTESTATION_TYPE, annotations=annotations, workdir=tmp_path
        )
    else:
        pushed = oras_client.push(
            f"{repo}:{tag}",
            files,
            config=write_config(tmp_path),
            config_type=REPORT_TYPE,
            annotations=annotations,
            chunked=how == "push-chunked",
        )

    assert pushed.oci_subject is None
    served = api.get_manifest(repo, tag)
    assert served.digest == pushed.digest
    assert served.digest_header == pushed.digest
    assert served.media_type == OCI_MANIFEST
    body = json.loads(served.body)
    assert body["annotations"] == annotations
    assert [(layer["mediaType"], layer["annotations"][TITLE]) for layer in body["layers"]] == [
        (f.media_type, f.path.name) for f in files
    ]
    if how == "artifact-manifest":
        assert body["artifactType"] == ATTESTATION_TYPE
        assert body["config"]["mediaType"] == EMPTY_CONFIG
    else:
        assert "artifactType" not in body
        assert body["config"]["mediaType"] == REPORT_TYPE

    out = tmp_path / "out"
    pulled = oras_client.pull(f"{repo}:{tag}", out)
    assert pulled == sorted(out / f.path.name for f in files)
    for f in files:
        assert (out / f.path.name).read_bytes() == f.path.read_bytes()
    assert api.check_integrity().problems == []


REGISTRY_SBOM_TYPE = "application/vnd.cyclonedx+json"


def test_referrers_of_skopeo_image(
    oras_client: Oras,
    api: RegistryClient,
    registry: RegistryServer,
    skopeo: Skopeo,
    alpine_app: OciImage,
    tmp_path: Path,
) -> None:
    """Two artifacts whose `subject` is an image skopeo pushed are its referrers, each with its artifact type
    (`artifactType`, else the config media type) and annotations; `?artifactType=` filters them and says so."""
    repo = "app/alpine"
    skopeo.copy(alpine_app.transport, f"docker://{registry.host}/{repo}:1")
    subject_digest = alpine_app.manifest_digest
    # the subject descriptor from the bytes skopeo pushed: oras.oci.Subject.from_manifest(dict) would hash a
    # re-serialisation of the parsed manifest, which is not the digest the registry has
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=subject_digest, size=len(alpine_app.manifest))

    report = oras_client.push(
        f"{repo}:report",
        write_files(tmp_path / "report", seed="report"),
        config=write_config(tmp_path),
        config_type=REPORT_TYPE,
        annotations={"org.opencontainers.image.created": "2024-10-01T12:00:00Z", "com.example.kind": "report"},
        subject=subject,
    )
    attestation = oras_client.push_artifact(
        f"{repo}:attestation",
        write_files(tmp_path / "attestation", seed="attestation"),
        artifact_type=ATTESTATION_TYPE,
        annotations={"org.opencontainers.image.created": "2024-10-02T12:00:00Z", "com.example.kind": "attestation"},
        workdir=tmp_path,
        subject=subject,
    )
    # a registry with the referrers API names the subject in its answer, so ORAS skips the referrers tag schema
    assert (report.oci_subject, attestation.oci_subject) == (subject_digest, subject_digest)
    expected = {
        REPORT_TYPE: _referrer(api, repo, report, REPORT_TYPE),
        ATTESTATION_TYPE: _referrer(api, repo, attestation, ATTESTATION_TYPE),
    }

    everything = api.http.get(f"/v2/{repo}/referrers/{subject_digest}")
    assert everything.status_code == 200
    assert everything.headers["content-type"] == OCI_INDEX
    assert "oci-filters-applied" not in everything.headers
    index = json.loads(everything.content)
    assert (index["schemaVersion"], index["mediaType"]) == (2, OCI_INDEX)
    # trustyard indexes every pushed image in the background and may have attached its own CycloneDX SBOM as a
    # referrer by now (docs/scanning.md); the two artifacts pushed here are what this test is about
    theirs = [m for m in index["manifests"] if m.get("artifactType") != REGISTRY_SBOM_TYPE]
    assert _by_digest(theirs) == _by_digest(list(expected.values()))

    for artifact_type, descriptor in expected.items():
        filtered = api.http.get(f"/v2/{repo}/referrers/{subject_digest}", params={"artifactType": artifact_type})
        assert filtered.status_code == 200
        assert filtered.headers["oci-filters-applied"] == "artifactType"
        assert json.loads(filtered.content)["manifests"] == [descriptor]

    none = api.http.get(
        f"/v2/{repo}/referrers/{subject_digest}", params={"artifactType": "application/vnd.example.none"}
    )
    assert none.status_code == 200
    assert none.headers["oci-filters-applied"] == "artifactType"
    assert json.loads(none.content)["manifests"] == []

    # the artifacts are not referrers of anything else, and the image is served as skopeo pushed it
    artifact_referrers = api.http.get(f"/v2/{repo}/referrers/{report.digest}")
    assert json.loads(artifact_referrers.content)["manifests"] == []
    assert api.get_manifest(repo, "1").body == alpine_app.manifest
    assert api.check_integrity().problems == []


def _referrer(api: RegistryClient, repo: str, pushed: Pushed, artifact_type: str) -> dict[str, object]:
    """The descriptor the referrers index must hold for a pushed artifact (size and digest from its bytes)."""
    body = api.get_manifest(repo, pushed.digest).body
    assert sha256_digest(body) == pushed.digest
    return {
        "mediaType": OCI_MANIFEST,
        "digest": pushed.digest,
        "size": len(body),
        "artifactType": artifact_type,
        "annotations": pushed.annotations,
    }


def _by_digest(descriptors: list[dict[str, object]]) -> list[dict[str, object]]:
    return sorted(descriptors, key=lambda d: str(d["digest"]))
