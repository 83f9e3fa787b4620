"""Garbage collection semantics over a real app: what is kept, what goes, and dry runs.

The concurrency property (GC beside pushes loses nothing) is tested in ``tests/registry/test_metadata.py``
(threads, both databases) and ``tests/interop/test_gc.py`` (real clients and a real server).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from trustyard.db.models import blobs, manifests
from trustyard.oci.digest import Digest
from trustyard.registry.gc import GarbageCollector
from trustyard.registry.service import RegistryService

from .conftest import (
    EXAMPLE_ARTIFACT,
    RegistryClient,
    assert_error,
    make_artifact,
    make_blob,
    make_image,
    make_index,
    sha256,
)

pytestmark = pytest.mark.anyio


def _collector(client: RegistryClient, *, grace: float = 0, untagged: bool = False) -> GarbageCollector:
    service: RegistryService = client.app.state.registry
    return GarbageCollector(service, grace_period=grace, delete_untagged=untagged)


async def _blob_ok(client: RegistryClient, name: str, digest: str) -> bool:
    response = await client.http.get(f"/v2/{name}/blobs/{digest}")
    return response.status_code == 200


async def test_unreferenced_blob_collected_referenced_kept(client: RegistryClient) -> None:
    image = make_image("kept", layers=2)
    await client.push("repo", image, "v1")
    stray = make_blob("stray", 500)
    await client.push_blob("repo", stray)
    report = _collector(client).run()
    assert report.blobs == [stray.digest]
    assert report.bytes_freed == stray.size
    assert not await _blob_ok(client, "repo", stray.digest)
    for blob in image.blobs:
        assert await _blob_ok(client, "repo", blob.digest)
    assert (await client.get_manifest("repo", "v1")).content == image.body


async def test_grace_period_spares_fresh_uploads(client: RegistryClient) -> None:
    stray = make_blob("fresh", 300)
    await client.push_blob("repo", stray)
    report = _collector(client, grace=3600).run()
    assert report.blobs == []
    assert await _blob_ok(client, "repo", stray.digest)


async def test_dry_run_deletes_nothing(client: RegistryClient) -> None:
    stray = make_blob("dry", 300)
    await client.push_blob("repo", stray)
    image = make_image("untagged")
    await client.push("repo", image)  # by digest: no tag reaches it
    report = _collector(client, untagged=True).run(dry_run=True)
    assert report.dry_run
    assert ("repo", image.digest) in report.manifests
    assert stray.digest in report.blobs
    assert await _blob_ok(client, "repo", stray.digest)
    assert (await client.get_manifest("repo", image.digest)).status_code == 200


async def test_untagged_manifest_goes_with_its_blobs_only_when_asked(client: RegistryClient) -> None:
    image = make_image("orphan", layers=1)
    await client.push("repo", image)
    assert _collector(client).run().manifests == []  # without --delete-untagged, manifests stay
    assert (await client.get_manifest("repo", image.digest)).status_code == 200
    report = _collector(client, untagged=True).run()
    assert report.manifests == [("repo", image.digest)]
    assert set(report.blobs) >= {b.digest for b in image.blobs}
    assert_error(await client.get_manifest("repo", image.digest), 404, "MANIFEST_UNKNOWN")


async def test_index_children_and_referrers_of_tagged_content_survive(client: RegistryClient) -> None:
    amd, arm = make_image("amd"), make_image("arm")
    index = make_index([amd, arm])
    await client.push("repo", index, "multi")
    sbom = make_artifact(EXAMPLE_ARTIFACT, seed="sbom", subject=index)
    await client.push("repo", sbom)  # untagged, but refers to tagged content
    sig_of_sbom = make_artifact(EXAMPLE_ARTIFACT, seed="sig", subject=sbom)
    await client.push("repo", sig_of_sbom)  # a referrer of a referrer
    orphan_sig = make_artifact(EXAMPLE_ARTIFACT, seed="orphan-sig", subject=make_image("never-pushed"))
    await client.push("repo", orphan_sig)
    report = _collector(client, untagged=True).run()
    assert report.manifests == [("repo", orphan_sig.digest)]
    for doc in (index, amd, arm, sbom, sig_of_sbom):
        assert (await client.get_manifest("repo", doc.digest)).status_code == 200
        for blob in doc.blobs:
            assert await _blob_ok(client, "repo", blob.digest)


async def test_blob_shared_across_repositories_kept_while_one_references_it(client: RegistryClient) -> None:
    image = make_image("shared")
    await client.push("a", image, "v1")
    await client.push("b", image, "v1")
    await client.http.delete(f"/v2/a/manifests/{image.digest}")
    report = _collector(client, untagged=True).run()
    assert report.manifests == [] and not set(report.blobs) & {b.digest for b in image.blobs}
    for blob in image.blobs:
        assert await _blob_ok(client, "b", blob.digest)


async def test_expired_uploads_removed(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    await client.http.patch(location, content=b"partial")
    service: RegistryService = client.app.state.registry
    gc = GarbageCollector(service, grace_period=0, upload_expiry=0.001)
    time.sleep(0.01)
    report = gc.run()
    assert report.uploads == 1
    assert_error(await client.http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


async def test_orphan_file_older_than_grace_removed(client: RegistryClient) -> None:
    service: RegistryService = client.app.state.registry
    orphan = make_blob("orphan-file", 77)
    service.store.put(Digest.parse(orphan.digest), orphan.data)  # a file with no row: a crash leftover
    assert _collector(client, grace=3600).run().orphan_files == 0
    report = _collector(client).run()
    assert report.orphan_files == 1
    assert service.store.stat(Digest.parse(orphan.digest)) is None


async def test_manifest_pushed_again_is_fresh_for_untagged_collection(client: RegistryClient) -> None:
    """Regression: untagged GC aged manifests by their first push, so a re-push (an index's child being
    pushed again right before its index) could be collected inside the grace period."""
    image = make_image("repushed")
    await client.push("repo", image)
    service: RegistryService = client.app.state.registry
    with service.db.write() as conn:  # make the first push look two hours old
        conn.execute(update(blobs).values(last_used=time.time() - 7200))
        conn.execute(update(manifests).values(created_at=time.time() - 7200))
    await client.push("repo", image)  # pushed again now
    report = _collector(client, grace=3600, untagged=True).run()
    assert report.manifests == []
    assert (await client.get_manifest("repo", image.digest)).status_code == 200


async def test_new_upload_session_survives_gc_with_no_grace(client: RegistryClient) -> None:
    """A session whose row exists is never a leftover, even with no grace period (its row is written
    before its file, so a collection listing files never sees a file of an unknown session)."""
    location = await client.upload_location("repo")
    report = _collector(client, grace=0).run()
    assert report.uploads == 0
    response = await client.http.put(location, params={"digest": sha256(b"late")}, content=b"late")
    assert response.status_code == 201, response.text


async def test_upload_whose_file_vanished_is_unknown_not_unavailable(client: RegistryClient) -> None:
    location = await client.upload_location("repo")
    upload_id = location.rsplit("/", 1)[1]
    (client.settings.data_dir / "uploads" / upload_id).unlink()
    assert_error(await client.http.patch(location, content=b"data"), 404, "BLOB_UPLOAD_UNKNOWN")
