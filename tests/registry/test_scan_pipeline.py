"""The registry's background scanning, end to end in-process: push, index, SBOM referrer, findings, re-check.

Each test runs the real app with its lifespan (so the scan workers run as in ``serve``), pushes the shared
fixture image ``../shared/images/oci-alpine-app`` (an OCI layout) over the distribution API, and reads what the
scanner stored: through the referrers API, the blob API and the management API (with access control on, in a
second app over the same database and data folder). The vulnerability data is WRITTEN DATA in Alpine's real
secdb format (the shared mirror stops at v3.11): secfixes for the 3.20.3 minirootfs' musl and openssl.

Layer reads are counted by wrapping ``RegistryImageSource.read_layer``: the re-check must read none.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from trustyard.auth.audit import AuditQuery
from trustyard.auth.model import Role
from trustyard.oci.mediatypes import MediaType
from trustyard.registry.jobs import SBOM_ARTIFACT_TYPE, JobStatus, ScanJobs
from trustyard.scan.background import BackgroundScanner
from trustyard.scan.indexer import Indexer
from trustyard.scan.matcher import Matcher
from trustyard.scan.recheck import Rechecker
from trustyard.scan.sbom.cyclonedx import validate as validate_cyclonedx
from trustyard.scan.sources import open_source
from trustyard.scan.sources.registry import RegistryImageSource
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.store import VulnerabilityStore

from .conftest import Blob, ClientFactory, ManifestDoc, RegistryClient, make_image, make_index

LAYOUT = Path(__file__).resolve().parents[3] / "shared" / "images" / "oci-alpine-app"
if not LAYOUT.is_dir():
    LAYOUT = Path("/work/shared/images/oci-alpine-app")
pytestmark = pytest.mark.anyio

IMAGE_DIGEST = "sha256:7a85cc560cb0b9dc6056dfd26f706fd409c24072947cc7857e7ecfe4a7cf610d"


def layout_image() -> ManifestDoc:
    """The fixture's image manifest and its blobs, as the registry client pushes them."""

    def blob(digest: str, media_type: str) -> Blob:
        return Blob((LAYOUT / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes(), media_type)

    body = (LAYOUT / "blobs" / "sha256" / IMAGE_DIGEST.removeprefix("sha256:")).read_bytes()
    doc = json.loads(body)
    layers = [blob(layer["digest"], layer["mediaType"]) for layer in doc["layers"]]
    blobs = (blob(doc["config"]["digest"], doc["config"]["mediaType"]), *layers)
    return ManifestDoc(body, MediaType.OCI_MANIFEST, blobs)


def secdb(packages: dict[str, dict[str, list[str]]]) -> dict[str, Any]:
    """WRITTEN DATA, Alpine secdb format (v3.20 main)."""
    return {
        "apkurl": "{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk",
        "archs": ["x86_64"],
        "reponame": "main",
        "urlprefix": "https://dl-cdn.alpinelinux.org/alpine",
        "distroversion": "v3.20",
        "packages": [{"pkg": {"name": name, "secfixes": fixes}} for name, fixes in packages.items()],
    }


OLDER = {"musl": {"1.2.5-r1": ["CVE-2025-26519"]}, "zlib": {"1.2.12-r2": ["CVE-2022-37434"]}}
NEWER = {**OLDER, "openssl": {"3.3.2-r1": ["CVE-2024-9143"], "3.3.1-r1": ["CVE-2024-5535"]}}


def import_secdb(store: Path, packages: dict[str, dict[str, list[str]]], folder: Path) -> None:
    """Import one version of the written v3.20 secdb into ``store``, as ``trustyard db import`` does."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "v3.20-main.json"
    path.write_text(json.dumps(secdb(packages)))
    with VulnerabilityStore(store) as s:
        import_path(s, path)


@pytest.fixture
def layer_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every layer the registry source reads, by digest."""
    reads: list[str] = []
    original = RegistryImageSource.read_layer

    def counting(self: RegistryImageSource, ref: Any, **kw: Any) -> Any:
        reads.append(str(ref.digest))
        return original(self, ref, **kw)

    monkeypatch.setattr(RegistryImageSource, "read_layer", counting)
    return reads


@dataclass
class Running:
    """A registry app whose lifespan (and so whose scanner) is running."""

    client: RegistryClient
    maybe_scanner: BackgroundScanner | None

    @property
    def scanner(self) -> BackgroundScanner:
        """The app's scanner (``scan_workers`` > 0)."""
        assert self.maybe_scanner is not None
        return self.maybe_scanner

    def idle(self) -> None:
        assert self.scanner.workers.wait_idle(60), "the scan queue did not empty"


@pytest.fixture
async def running(client_factory: ClientFactory) -> AsyncIterator[Any]:
    """Start apps with their lifespan: ``await running(**settings)``."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Running:
            client = await client_factory(**overrides)
            await stack.enter_async_context(client.app.router.lifespan_context(client.app))
            scanner = client.app.state.scanner
            assert scanner is None or isinstance(scanner, BackgroundScanner)
            return Running(client, scanner)

        yield start


async def wait_idle(r: Running) -> None:
    await asyncio.to_thread(r.idle)


async def referrers(client: RegistryClient, name: str, digest: str) -> list[dict[str, Any]]:
    response = await client.http.get(f"/v2/{name}/referrers/{digest}")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["manifests"]
    return found


# -- indexing, SBOM referrer, findings --------------------------------------------------------------------------


async def test_a_pushed_image_gets_its_sbom_referrer_and_findings(running: Any, layer_reads: list[str]) -> None:
    r: Running = await running()
    await r.client.push("lab/app", layout_image(), "1")
    await wait_idle(r)
    jobs = r.scanner.jobs
    state = jobs.state(IMAGE_DIGEST)
    assert state is not None and state.status is JobStatus.DONE, state
    assert len(layer_reads) == 3
    # the referrer: an OCI artifact with the CycloneDX media type, the empty config and one layer
    (ref,) = await referrers(r.client, "lab/app", IMAGE_DIGEST)
    assert ref["artifactType"] == SBOM_ARTIFACT_TYPE
    manifest = (await r.client.get_manifest("lab/app", ref["digest"])).json()
    assert manifest["config"]["mediaType"] == MediaType.OCI_EMPTY
    assert manifest["subject"]["digest"] == IMAGE_DIGEST
    (layer,) = manifest["layers"]
    sbom = (await r.client.http.get(f"/v2/lab/app/blobs/{layer['digest']}")).json()
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    names = {c["name"] for c in sbom["components"]}
    assert {"musl", "libssl3", "busybox", "minimist", "lodash"} <= names
    # the referrer itself is never queued, so never indexed
    assert jobs.state(ref["digest"]) is None
    report = jobs.report(IMAGE_DIGEST)
    assert report is not None and report.sbom_digest == layer["digest"]
    findings = json.loads(report.findings)
    assert findings["status"] == "unknown" and findings["reason"].startswith("no data")


async def test_the_same_image_in_two_repositories_is_indexed_once(running: Any, layer_reads: list[str]) -> None:
    r: Running = await running()
    await r.client.push("lab/one", layout_image(), "1")
    await wait_idle(r)
    await r.client.push("lab/two", layout_image(), "1")
    await wait_idle(r)
    assert len(layer_reads) == 3  # the second push only attached the SBOM
    first = await referrers(r.client, "lab/one", IMAGE_DIGEST)
    second = await referrers(r.client, "lab/two", IMAGE_DIGEST)
    assert [m["digest"] for m in first] == [m["digest"] for m in second]
    assert len(first) == 1


async def test_an_index_is_scanned_as_its_linux_amd64_image_from_the_layer_cache(
    running: Any, layer_reads: list[str]
) -> None:
    r: Running = await running()
    index = make_index([layout_image()])
    await r.client.push("lab/multi", index, "1")
    await wait_idle(r)
    jobs = r.scanner.jobs
    for digest in (IMAGE_DIGEST, index.digest):  # the child and the index: two reports, by digest
        state = jobs.state(digest)
        assert state is not None and state.status is JobStatus.DONE, state
        assert [m["artifactType"] for m in await referrers(r.client, "lab/multi", digest)] == [SBOM_ARTIFACT_TYPE]
    child, parent = jobs.report(IMAGE_DIGEST), jobs.report(index.digest)
    assert child is not None and parent is not None and child.finding_ids == parent.finding_ids
    assert len(layer_reads) == 3  # the second indexing replayed the cached layers


async def test_a_broken_image_fails_its_job_with_a_reason(running: Any) -> None:
    r: Running = await running()
    image = make_image("not-a-tar", layers=2)  # layers of random bytes that claim to be gzip
    await r.client.push("lab/broken", image, "1")
    await wait_idle(r)
    state = r.scanner.jobs.state(image.digest)
    assert state is not None and state.status is JobStatus.FAILED
    assert state.error and "layer" in state.error.lower()
    assert await referrers(r.client, "lab/broken", image.digest) == []


async def test_a_job_left_running_by_a_crash_is_done_at_the_next_start(running: Any, layer_reads: list[str]) -> None:
    r: Running = await running(scan_workers=0)
    # scanning off: queue by hand, then pretend a worker took the job and died
    jobs = ScanJobs(r.client.app.state.registry.db)
    await r.client.push("lab/app", layout_image(), "1")
    jobs.enqueue(IMAGE_DIGEST)
    claimed = jobs.claim()
    assert claimed is not None and claimed.digest == IMAGE_DIGEST
    assert jobs.state(IMAGE_DIGEST).status is JobStatus.RUNNING  # type: ignore[union-attr]
    again: Running = await running()
    await wait_idle(again)
    state = jobs.state(IMAGE_DIGEST)
    assert state is not None and state.status is JobStatus.DONE and state.attempts == 2


# -- the management API ----------------------------------------------------------------------------------------


async def test_results_are_served_by_digest_to_callers_who_may_pull(running: Any, tmp_path: Path) -> None:
    store = tmp_path / "data" / "vulndb.sqlite"
    import_secdb(store, NEWER, tmp_path / "feed")
    r: Running = await running()
    await r.client.push("lab/app", layout_image(), "1")
    await wait_idle(r)
    # a second app over the same database and data, with access control on
    api = (await running(scan_workers=0, insecure_anonymous_push=False)).client
    access = api.app.state.access
    access.store.create_user("root", is_admin=True)
    access.store.create_user("alice")
    access.store.set_member("lab", Role.GUEST, user="alice")
    access.store.create_user("mallory")

    def get(path: str, who: str | None, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {access.tokens.issue(who, [])}"} if who else {}
        return api.http.get(
            f"/api/v1/repositories/lab/app/manifests/{IMAGE_DIGEST}/{path}", headers=headers, params=params
        )

    scan = await get("scan", "alice")
    assert scan.status_code == 200, scan.text
    body = scan.json()
    assert body["status"] == "done" and body["vulnerabilities"] == 2 and body["data_generation"] == 1
    findings = (await get("findings", "alice")).json()
    assert findings["status"] == "ok"
    assert {(f["id"], f["package"]["name"]) for f in findings["findings"]} == {
        ("CVE-2025-26519", "musl"),
        ("CVE-2025-26519", "musl-utils"),
        ("CVE-2024-9143", "libssl3"),
        ("CVE-2024-9143", "libcrypto3"),
    }
    cdx = await get("sbom", "alice")
    assert cdx.headers["content-type"].startswith("application/vnd.cyclonedx+json")
    assert cdx.json()["bomFormat"] == "CycloneDX"
    validate_cyclonedx(cdx.text)  # the 1.6 schema, strict
    spdx = await get("sbom", "alice", format="spdx-json")
    assert spdx.json()["spdxVersion"] == "SPDX-2.3"
    assert (await get("sbom", "alice", format="xml")).status_code == 400
    assert (await get("scan", "mallory")).status_code == 403
    assert (await get("findings", None)).status_code == 401
    missing = await api.http.get(
        f"/api/v1/repositories/lab/other/manifests/{IMAGE_DIGEST}/scan",
        headers={"Authorization": f"Bearer {access.tokens.issue('root', [])}"},
    )
    assert missing.status_code == 404


# -- the re-check ------------------------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    """Records webhook POSTs; the first one is answered 500 (so the retry is exercised)."""

    received: ClassVar[list[tuple[bytes, str]]] = []
    failures_left: ClassVar[int] = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if cls.failures_left:
            cls.failures_left -= 1
            self.send_response(500)
        else:
            cls.received.append((body, self.headers.get("X-Trustyard-Signature", "")))
            self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    """A webhook receiver on 127.0.0.1."""
    handler = type("Receiver", (_Receiver,), {"received": [], "failures_left": 1})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def independent_ids(store: Path) -> set[str]:
    """The image's finding ids as ``trustyard scan`` finds them from the layout (the oracle of the re-check)."""
    source = open_source(f"oci:{LAYOUT}:fixture-alpine-app:1")
    try:
        components = Indexer().index(source).components
    finally:
        source.close()
    with VulnerabilityStore(store) as s:
        return {f.id for f in Matcher(s).match(components).findings}


async def test_new_advisories_notify_exactly_the_new_findings_once_without_reading_layers(
    running: Any, tmp_path: Path, layer_reads: list[str], receiver: tuple[str, type[_Receiver]]
) -> None:
    url, handler = receiver
    store = tmp_path / "data" / "vulndb.sqlite"
    import_secdb(store, OLDER, tmp_path / "older")  # the older slice of the data
    r: Running = await running(webhook_url=url, webhook_secret="s3cret", scan_recheck_interval=0.1)
    await r.client.push("lab/app", layout_image(), "1")
    await wait_idle(r)
    assert len(layer_reads) == 3
    before = set(r.scanner.jobs.report(IMAGE_DIGEST).finding_ids)  # type: ignore[union-attr]
    assert before == independent_ids(store) == {"CVE-2025-26519"}

    import_secdb(store, NEWER, tmp_path / "newer")  # the rest: `trustyard db import` while the registry runs
    expected = independent_ids(store) - before
    assert expected == {"CVE-2024-9143"}
    for _ in range(300):
        if handler.received:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # several more polls: nothing else may arrive
    assert r.scanner.notifier is not None
    await asyncio.to_thread(r.scanner.notifier.flush)
    (body, signature), *more = handler.received
    assert more == []
    assert signature == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    event = json.loads(body)
    assert event["event"] == "scan.changed" and event["digest"] == IMAGE_DIGEST
    assert event["repositories"] == ["lab/app"]
    assert set(event["added"]) == expected and event["removed"] == []
    assert len(layer_reads) == 3  # no layer was read again
    # the stored findings and the status changed; the audit log says so
    report = r.scanner.jobs.report(IMAGE_DIGEST)
    assert report is not None and set(report.finding_ids) == before | expected and report.generation == 2
    audit = r.client.app.state.access.audit
    audit.flush()
    (changed,) = audit.query(AuditQuery(action="scan.changed"), limit=10)
    assert changed.repository == "lab/app" and changed.target == IMAGE_DIGEST
    assert changed.detail is not None and changed.detail["added"] == sorted(expected)


async def test_the_recheck_matches_only_inventories_that_hold_a_changed_package(running: Any, tmp_path: Path) -> None:
    store = tmp_path / "data" / "vulndb.sqlite"
    import_secdb(store, OLDER, tmp_path / "older")
    r: Running = await running(scan_recheck_interval=3600)
    await r.client.push("lab/app", layout_image(), "1")
    await wait_idle(r)
    rechecker = r.scanner.rechecker
    assert rechecker.run() is None  # the worker's first pass recorded the generation: nothing new since
    import_secdb(store, {**OLDER, "ncurses": {"6.4-r1": ["CVE-2023-29491"]}}, tmp_path / "unrelated")
    result = rechecker.run()
    # one package and its advisory are new; no stored inventory looked either up
    assert result is not None and result.packages == 2 and result.inventories == 0 and result.changes == []
    import_secdb(store, NEWER, tmp_path / "newer")
    # another registry process on the same database: whichever claims the pass first re-checks, the other not
    other = Rechecker(jobs=ScanJobs(r.client.app.state.registry.db), vulndb=store)
    result = rechecker.run()
    assert other.run() is None
    assert result is not None and result.inventories == 1
    (change,) = result.changes
    assert change.added == ("CVE-2024-9143",) and change.removed == ()


def osv_advisory(package: str, modified: str) -> dict[str, Any]:
    """WRITTEN DATA, OSV format: an npm advisory for every version of ``package`` before 99."""
    return {
        "schema_version": "1.6.0",
        "id": "GHSA-test-0000-0001",
        "modified": modified,
        "published": "2026-01-01T00:00:00Z",
        "summary": "written for the re-check test",
        "affected": [
            {
                "package": {"ecosystem": "npm", "name": package},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "99.0.0"}]}],
            }
        ],
    }


async def test_an_advisory_that_stops_naming_a_package_removes_its_findings(running: Any, tmp_path: Path) -> None:
    store = tmp_path / "data" / "vulndb.sqlite"
    first = tmp_path / "osv-1" / "GHSA-test-0000-0001.json"
    first.parent.mkdir()
    first.write_text(json.dumps(osv_advisory("lodash", "2026-01-01T00:00:00Z")))
    with VulnerabilityStore(store) as s:
        import_path(s, first)
    r: Running = await running(scan_recheck_interval=3600)
    await r.client.push("lab/app", layout_image(), "1")
    await wait_idle(r)
    assert "GHSA-test-0000-0001" in r.scanner.jobs.report(IMAGE_DIGEST).finding_ids  # type: ignore[union-attr]
    # the advisory is corrected: it was about another package, which the image does not hold
    second = tmp_path / "osv-2" / "GHSA-test-0000-0001.json"
    second.parent.mkdir()
    second.write_text(json.dumps(osv_advisory("lodash-es", "2026-02-01T00:00:00Z")))
    with VulnerabilityStore(store) as s:
        import_path(s, second)
    result = r.scanner.rechecker.run()
    assert result is not None and result.inventories == 1
    (change,) = result.changes
    assert change.added == () and change.removed == ("GHSA-test-0000-0001",)
