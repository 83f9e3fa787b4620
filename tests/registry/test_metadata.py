"""``MetadataStore`` on SQLite and PostgreSQL: blobs, manifests, tags, listings, referrers, and its contract
with online garbage collection under concurrency.

Every test runs on both backends (``database_url`` / ``registry_service``, ``tests/fixtures/databases.py``).
The PostgreSQL test databases collate like a production one (ICU ``en-US``), so an order that leaned on
the database's default collation would show here. The concurrency tests check the safety property of
``registry/gc.py``: whatever interleaving of pushes, mounts, deletes and collections, every manifest's
own bytes and every blob it references keep their row and their file.

Not here: HTTP (``test_api_*.py``), the schema and engine (``tests/db``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, select, update

from trustyard.db.engine import Database
from trustyard.db.models import blobs, manifest_references, manifests, repository_blobs, tags
from trustyard.errors import TrustyardError
from trustyard.oci.digest import Digest
from trustyard.oci.mediatypes import MediaType
from trustyard.registry.errors import (
    BlobUnknownError,
    BlobUploadUnknownError,
    ManifestBlobUnknownError,
    UnavailableError,
)
from trustyard.registry.gc import GarbageCollector, GcRunLog
from trustyard.registry.metadata import MetadataStore, MissingReferencesError, NewManifest, ReferrerRecord
from trustyard.registry.service import RegistryService
from trustyard.storage.base import BlobNotFoundError
from trustyard.storage.filesystem import FilesystemBlobStore


def fake_digest(seed: str) -> str:
    """A well-formed digest for rows whose content the test never reads."""
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def new_manifest(
    seed: str,
    *,
    blobs: tuple[str, ...] = (),
    children: tuple[str, ...] = (),
    subject: str | None = None,
    artifact_type: str | None = None,
    annotations: dict[str, str] | None = None,
) -> NewManifest:
    """What ``put_manifest`` records for a manifest named by ``seed``."""
    return NewManifest(
        digest=fake_digest(f"manifest:{seed}"),
        media_type=MediaType.OCI_INDEX if children else MediaType.OCI_MANIFEST,
        size=100 + len(seed),
        artifact_type=artifact_type,
        subject=subject,
        annotations=annotations or {},
        blob_digests=frozenset(blobs),
        child_digests=frozenset(children),
    )


def no_content() -> None:
    """``write_content`` for manifests whose bytes the test does not store."""


@pytest.fixture
def meta(database_url: str) -> Iterator[MetadataStore]:
    """A metadata store over an empty, migrated database."""
    db = Database(database_url)
    try:
        yield MetadataStore(db)
    finally:
        db.dispose()


def record(meta: MetadataStore, repo: str, *digests: str, size: int = 10) -> None:
    """Record blobs as committed uploads into ``repo``."""
    with meta.db.write() as conn:
        for d in digests:
            meta.record_blob(conn, repo, d, size)


def push(meta: MetadataStore, repo: str, m: NewManifest, *tag_names: str) -> NewManifest:
    """Record the manifest's blobs, then the manifest."""
    record(meta, repo, *m.blob_digests)
    meta.put_manifest(repo, m, tag_names, no_content)
    return m


def last_used(meta: MetadataStore, digest: str) -> float:
    """A blob row's ``last_used``."""
    with meta.db.read() as conn:
        return float(conn.execute(select(blobs.c.last_used).where(blobs.c.digest == digest)).scalar_one())


def age(db: Database, digest: str, seconds: float = 3600) -> None:
    """Make a blob look unused for ``seconds``."""
    with db.write() as conn:
        conn.execute(update(blobs).where(blobs.c.digest == digest).values(last_used=time.time() - seconds))


# -- blobs --------------------------------------------------------------------------------------------------------

LAYER = fake_digest("layer")
CONFIG = fake_digest("config")


def test_record_blob_links_the_blob_to_one_repository(meta: MetadataStore) -> None:
    record(meta, "team/app", LAYER, size=1234)
    assert meta.repository_exists("team/app")
    found = meta.blob_size("team/app", LAYER)
    assert found is not None and found[0] == 1234
    assert meta.blob_size("team/other", LAYER) is None
    assert not meta.repository_exists("team/other")
    assert meta.blob_exists_anywhere(LAYER) == 1234
    assert meta.blob_exists_anywhere(CONFIG) is None


def test_recording_a_blob_again_refreshes_last_used_and_keeps_one_row(meta: MetadataStore) -> None:
    record(meta, "team/app", LAYER, size=5)
    age(meta.db, LAYER)
    before = last_used(meta, LAYER)
    record(meta, "team/app", LAYER, size=5)
    assert last_used(meta, LAYER) > before + 3000
    assert meta.counts()["blobs"] == 1
    with meta.db.read() as conn:
        assert len(list(conn.execute(select(repository_blobs)))) == 1


def test_blob_size_says_when_last_used_is_stale(meta: MetadataStore) -> None:
    record(meta, "team/app", LAYER)
    assert meta.blob_size("team/app", LAYER) == (10, False)
    age(meta.db, LAYER)
    assert meta.blob_size("team/app", LAYER) == (10, True)
    meta.touch_blob(LAYER)
    assert meta.blob_size("team/app", LAYER) == (10, False)


def test_mount_links_a_blob_of_another_repository(meta: MetadataStore) -> None:
    record(meta, "team/base", LAYER, size=77)
    age(meta.db, LAYER)
    assert meta.mount_blob("team/app", LAYER, "team/base") == 77
    found = meta.blob_size("team/app", LAYER)
    assert found is not None and found[0] == 77
    assert last_used(meta, LAYER) > time.time() - 60  # a mount relies on the blob: it is touched


def test_mount_from_a_repository_without_the_blob_changes_nothing(meta: MetadataStore) -> None:
    record(meta, "team/base", LAYER)
    record(meta, "team/elsewhere", CONFIG)
    assert meta.mount_blob("team/app", CONFIG, "team/base") is None  # exists, but not in the source
    assert meta.mount_blob("team/app", LAYER, "team/unknown") is None
    assert meta.mount_blob("team/app", fake_digest("never"), "team/base") is None
    assert not meta.repository_exists("team/app")
    assert meta.blob_size("team/app", CONFIG) is None


def test_unlink_removes_the_link_not_the_blob(meta: MetadataStore) -> None:
    record(meta, "team/app", LAYER)
    record(meta, "team/other", LAYER)
    assert meta.unlink_blob("team/app", LAYER)
    assert meta.blob_size("team/app", LAYER) is None
    assert meta.blob_size("team/other", LAYER) is not None
    assert meta.blob_exists_anywhere(LAYER) == 10
    assert not meta.unlink_blob("team/app", LAYER)
    assert not meta.unlink_blob("team/unknown", LAYER)


def test_uploads_belong_to_their_repository(meta: MetadataStore) -> None:
    upload_id = "a" * 32
    meta.create_upload("team/app", upload_id)
    assert meta.upload_exists("team/app", upload_id)
    assert not meta.upload_exists("team/other", upload_id)
    assert meta.all_upload_ids() == {upload_id}
    assert meta.expired_uploads(time.time() + 1) == [upload_id]
    assert meta.expired_uploads(time.time() - 60) == []
    with meta.db.write() as conn:
        meta.delete_upload(conn, upload_id)
    assert not meta.upload_exists("team/app", upload_id)


# -- manifests ----------------------------------------------------------------------------------------------------


def test_put_manifest_records_the_manifest_its_references_and_tags(meta: MetadataStore) -> None:
    image = push(meta, "team/app", new_manifest("image", blobs=(CONFIG, LAYER)), "v1", "latest")
    index = new_manifest("index", children=(image.digest,))
    written: list[str] = []
    meta.put_manifest("team/app", index, ["multi"], lambda: written.append("index"))
    assert written == ["index"]
    for tag, m in [("v1", image), ("latest", image), ("multi", index)]:
        rec = meta.resolve_tag("team/app", tag)
        assert rec is not None and (rec.digest, rec.media_type, rec.size) == (m.digest, m.media_type, m.size)
    assert meta.get_manifest("team/app", index.digest) is not None
    assert meta.get_manifest("team/other", index.digest) is None
    with meta.db.read() as conn:
        refs = sorted(
            conn.execute(
                select(
                    manifest_references.c.manifest_digest,
                    manifest_references.c.child_digest,
                    manifest_references.c.is_manifest,
                )
            )
        )
        manifest_rows = {r[0] for r in conn.execute(select(blobs.c.digest).where(blobs.c.size >= 100))}
    assert refs == sorted([(image.digest, CONFIG, 0), (image.digest, LAYER, 0), (index.digest, image.digest, 1)])
    assert manifest_rows == {image.digest, index.digest}  # a manifest's bytes are a blob row too


@dataclass(frozen=True)
class MissingCase:
    """A manifest push that names content the repository does not hold."""

    name: str
    arrange: Callable[[MetadataStore], None]
    manifest: NewManifest
    missing: list[str]


CHILD = new_manifest("child", blobs=(CONFIG,))


def nothing(meta: MetadataStore) -> None:
    """No content at all."""


def child_elsewhere(meta: MetadataStore) -> None:
    """The child manifest exists, in another repository."""
    push(meta, "team/other", CHILD)


def layers_elsewhere(meta: MetadataStore) -> None:
    """The blobs exist, in another repository."""
    record(meta, "team/other", CONFIG, LAYER)


MISSING_CASES = [
    MissingCase("nothing-uploaded", nothing, new_manifest("a", blobs=(CONFIG, LAYER)), sorted([CONFIG, LAYER])),
    MissingCase(
        "layers-in-another-repository",
        layers_elsewhere,
        new_manifest("b", blobs=(CONFIG, LAYER)),
        sorted([CONFIG, LAYER]),
    ),
    MissingCase("child-manifest-missing", nothing, new_manifest("c", children=(CHILD.digest,)), [CHILD.digest]),
    MissingCase(
        "child-in-another-repository", child_elsewhere, new_manifest("d", children=(CHILD.digest,)), [CHILD.digest]
    ),
    MissingCase(
        "blob-and-child",
        child_elsewhere,
        new_manifest("e", blobs=(LAYER,), children=(CHILD.digest,)),
        [LAYER, CHILD.digest],
    ),
]


@pytest.mark.parametrize("case", MISSING_CASES, ids=[c.name for c in MISSING_CASES])
def test_put_manifest_with_missing_references_raises_and_changes_nothing(
    meta: MetadataStore, case: MissingCase
) -> None:
    case.arrange(meta)
    before = meta.counts()
    with pytest.raises(MissingReferencesError) as info:
        meta.put_manifest("team/new", case.manifest, ["v1"], lambda: pytest.fail("content written"))
    assert info.value.missing == case.missing
    assert meta.counts() == before
    assert not meta.repository_exists("team/new")


def test_put_manifest_with_a_missing_layer_in_a_known_repository_changes_nothing(meta: MetadataStore) -> None:
    push(meta, "team/app", new_manifest("old", blobs=(CONFIG,)), "v1")
    before = meta.counts()
    with pytest.raises(MissingReferencesError) as info:
        meta.put_manifest("team/app", new_manifest("new", blobs=(CONFIG, LAYER)), ["v1"], no_content)
    assert info.value.missing == [LAYER]
    assert meta.counts() == before
    rec = meta.resolve_tag("team/app", "v1")
    assert rec is not None and rec.digest == new_manifest("old", blobs=(CONFIG,)).digest


def test_pushing_the_same_manifest_again_keeps_one_set_of_references(meta: MetadataStore) -> None:
    m = push(meta, "team/app", new_manifest("image", blobs=(CONFIG, LAYER)), "v1")
    meta.put_manifest("team/app", m, ["v2"], no_content)
    meta.put_manifest("team/app", m, [], no_content)
    with meta.db.read() as conn:
        assert len(list(conn.execute(select(manifest_references)))) == 2
    assert meta.counts()["manifests"] == 1
    assert meta.list_tags("team/app", None, None) == ["v1", "v2"]


def test_tags_move_with_pushes_and_go_with_their_manifest(meta: MetadataStore) -> None:
    one = push(meta, "team/app", new_manifest("one", blobs=(CONFIG,)), "latest", "stable")
    two = push(meta, "team/app", new_manifest("two", blobs=(LAYER,)), "latest")
    rec = meta.resolve_tag("team/app", "latest")
    assert rec is not None and rec.digest == two.digest
    rec = meta.resolve_tag("team/app", "stable")
    assert rec is not None and rec.digest == one.digest
    assert meta.delete_tag("team/app", "stable")
    assert not meta.delete_tag("team/app", "stable")
    assert not meta.delete_tag("team/unknown", "latest")
    assert meta.get_manifest("team/app", one.digest) is not None  # deleting a tag keeps the manifest
    push(meta, "team/app", one, "stable", "old")
    assert meta.delete_manifest("team/app", one.digest)
    assert meta.list_tags("team/app", None, None) == ["latest"]
    assert meta.get_manifest("team/app", one.digest) is None
    assert not meta.delete_manifest("team/app", one.digest)
    assert not meta.delete_manifest("team/unknown", one.digest)


# -- listings -----------------------------------------------------------------------------------------------------

# lexical = byte order; a natural-language collation would interleave cases and skip punctuation
TAGS = ["b", "B", "a", "A", "_x", "1.0", "a-b", "ab", "a.c", "a_c", "Z", "latest", "v1.10", "v1.9", "v1-rc"]


def pages(fetch: Callable[[int | None, str | None], list[str]], size: int) -> list[list[str]]:
    """Every page of a listing, following ``last`` the way clients follow the Link header."""
    out: list[list[str]] = []
    last: str | None = None
    while True:
        page = fetch(size, last)
        if not page:
            return out
        out.append(page)
        last = page[-1]


def test_list_tags_is_lexical_and_paginates(meta: MetadataStore) -> None:
    m = push(meta, "team/app", new_manifest("image", blobs=(CONFIG,)))
    for tag in TAGS:
        meta.put_manifest("team/app", m, [tag], no_content)
    assert meta.list_tags("team/app", None, None) == sorted(TAGS)
    assert meta.list_tags("team/app", 4, None) == sorted(TAGS)[:4]
    assert meta.list_tags("team/app", None, "a") == [t for t in sorted(TAGS) if t > "a"]
    assert meta.list_tags("team/app", 0, None) == []
    got = pages(lambda n, last: meta.list_tags("team/app", n, last) or [], 4)
    assert [t for page in got for t in page] == sorted(TAGS)
    assert [len(page) for page in got] == [4, 4, 4, 3]
    assert meta.list_tags("team/unknown", None, None) is None


REPOSITORIES = ["b", "a/b", "a-b", "a.b", "a_b", "ab", "a/b/c", "z9", "library/alpine", "library-x/alpine"]


def test_catalog_lists_repositories_holding_manifests_in_lexical_order(meta: MetadataStore) -> None:
    for i, repo in enumerate(REPOSITORIES):
        push(meta, repo, new_manifest(f"image{i}", blobs=(CONFIG,)))
    record(meta, "only/blobs", LAYER)  # a repository with blobs but no manifest is not listed
    assert meta.catalog(None, None) == sorted(REPOSITORIES)
    got = pages(meta.catalog, 3)
    assert [r for page in got for r in page] == sorted(REPOSITORIES)
    assert meta.catalog(2, "a_b") == [r for r in sorted(REPOSITORIES) if r > "a_b"][:2]


def test_referrers_carry_artifact_type_and_annotations_in_push_order(meta: MetadataStore) -> None:
    subject = push(meta, "team/app", new_manifest("image", blobs=(CONFIG,)), "v1")
    sbom = new_manifest(
        "sbom",
        blobs=(LAYER,),
        subject=subject.digest,
        artifact_type="application/spdx+json",
        annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z", "ünïcode": "✓"},
    )
    signature = new_manifest("sig", blobs=(LAYER,), subject=subject.digest, artifact_type="application/sig")
    push(meta, "team/app", sbom)
    push(meta, "team/app", signature)
    push(meta, "team/app", new_manifest("unrelated", blobs=(LAYER,), subject=fake_digest("other")))
    push(meta, "team/other", new_manifest("elsewhere", blobs=(LAYER,), subject=subject.digest))
    assert meta.referrers("team/app", subject.digest) == [
        ReferrerRecord(sbom.digest, sbom.media_type, sbom.size, "application/spdx+json", sbom.annotations),
        ReferrerRecord(signature.digest, signature.media_type, signature.size, "application/sig", {}),
    ]
    assert meta.referrers("team/app", fake_digest("nothing")) == []
    assert meta.referrers("team/unknown", subject.digest) == []


def test_counts(meta: MetadataStore) -> None:
    assert meta.counts() == {"repositories": 0, "blobs": 0, "manifests": 0, "tags": 0, "uploads": 0}
    push(meta, "team/app", new_manifest("image", blobs=(CONFIG, LAYER)), "v1")
    meta.create_upload("team/app", "b" * 32)
    assert meta.counts() == {"repositories": 1, "blobs": 3, "manifests": 1, "tags": 1, "uploads": 1}


# -- concurrency with online garbage collection -------------------------------------------------------------------
#
# The collector (grace period 0: anything unreferenced is fair game) runs while pushes, mounts and deletes go on.
# Its safety argument (gc.py) is that every write that starts relying on a blob locks the blob's row, and the
# collector decides under the same lock. The interleaving tests stop a push at one statement, run a collection
# from another thread right there, and let the push go on once the collection finished or has waited for a
# while on a lock the push holds (which is the right outcome).


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload(service: RegistryService, repo: str, data: bytes) -> str:
    """Push a blob through the service's upload path (monolithic); returns its digest."""
    upload_id = service.start_upload(repo)

    async def body() -> AsyncIterator[bytes]:
        yield data

    return str(asyncio.run(service.finish(repo, upload_id, sha256(data), body())))


@dataclass(frozen=True)
class Image:
    """An OCI image manifest's bytes and the blobs it names."""

    body: bytes
    blobs: tuple[bytes, ...]

    @property
    def digest(self) -> str:
        """The manifest's digest."""
        return sha256(self.body)


def make_image(seed: str, *layers: bytes) -> Image:
    """An image with its own config (from ``seed``) and the given layers."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()

    def descriptor(media_type: str, data: bytes) -> dict[str, object]:
        return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}

    doc = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST.value,
        "config": descriptor(MediaType.OCI_CONFIG.value, config),
        "layers": [descriptor(MediaType.OCI_LAYER_GZIP.value, layer) for layer in layers],
    }
    return Image(json.dumps(doc).encode(), (config, *layers))


def push_image(service: RegistryService, repo: str, image: Image, tag: str | None = None) -> None:
    """Upload the image's blobs, then push its manifest by ``tag`` (or by digest: untagged)."""
    for data in image.blobs:
        upload(service, repo, data)
    service.put_manifest(repo, tag or image.digest, image.body, MediaType.OCI_MANIFEST.value)


def make_old(service: RegistryService) -> None:
    """Every blob unused and every manifest created an hour ago (so a collection may take what is unreferenced)."""
    past = time.time() - 3600
    with service.db.write() as conn:
        conn.execute(update(blobs).values(last_used=past))
        conn.execute(update(manifests).values(created_at=past))


def consistency_problems(service: RegistryService) -> list[str]:
    """What breaks the collector's safety property: a row naming content whose row or file is gone."""
    with service.db.read() as conn:
        blob_rows = {str(d): int(s) for d, s in conn.execute(select(blobs.c.digest, blobs.c.size))}
        manifest_rows = {
            (int(r), str(d)) for r, d in conn.execute(select(manifests.c.repository_id, manifests.c.digest))
        }
        links = {
            (int(r), str(d))
            for r, d in conn.execute(select(repository_blobs.c.repository_id, repository_blobs.c.digest))
        }
        refs = list(
            conn.execute(
                select(
                    manifest_references.c.repository_id,
                    manifest_references.c.manifest_digest,
                    manifest_references.c.child_digest,
                    manifest_references.c.is_manifest,
                )
            )
        )
        tag_rows = list(conn.execute(select(tags.c.repository_id, tags.c.name, tags.c.manifest_digest)))
    problems: list[str] = []
    for digest, size in blob_rows.items():
        if service.store.stat(Digest.parse(digest)) != size:
            problems.append(f"blob row {digest} has no file of {size} bytes")
    for rid, digest in manifest_rows:
        if digest not in blob_rows:
            problems.append(f"manifest {digest} (repository {rid}) has no blob row")
    for rid, parent, child, is_manifest in refs:
        if child not in blob_rows:
            problems.append(f"{parent} references {child}, which has no blob row")
        elif is_manifest and (rid, child) not in manifest_rows:
            problems.append(f"{parent} references manifest {child}, gone from repository {rid}")
        elif not is_manifest and (rid, child) not in links:
            problems.append(f"{parent} references blob {child}, unlinked from repository {rid}")
    for rid, tag, digest in tag_rows:
        if (rid, digest) not in manifest_rows:
            problems.append(f"tag {tag} points to missing manifest {digest}")
    return problems


@dataclass
class Interleaving:
    """Run ``action`` from another thread when a statement starting with ``prefix`` is about to execute
    (``"COMMIT"``: a transaction is about to commit); the statement goes on when ``action`` returned or after
    ``patience`` seconds (``action`` waits for a lock the statement's transaction holds). ``finish()`` joins
    ``action`` and re-raises its error. Only one such statement, of any thread, triggers: the first after
    ``skip`` others."""

    db: Database
    prefix: str
    action: Callable[[], object]
    patience: float = 0.3
    skip: int = 0
    fired: bool = False
    errors: list[BaseException] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Interleaving:
        event.listen(self.db.engine, "before_cursor_execute", self._before_execute)
        event.listen(self.db.engine, "commit", self._before_commit)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self._before_execute)
        event.remove(self.db.engine, "commit", self._before_commit)

    def _before_execute(self, conn: Connection, cursor: object, statement: str, *args: object) -> None:
        self._maybe_fire(statement)

    def _before_commit(self, conn: Connection) -> None:
        self._maybe_fire("COMMIT")

    def _maybe_fire(self, statement: str) -> None:
        if self.fired or not statement.lstrip().upper().startswith(self.prefix):
            return
        if self.skip > 0:
            self.skip -= 1
            return
        self.fired = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._thread.join(self.patience)

    def _run(self) -> None:
        try:
            self.action()
        except BaseException as e:  # reported by finish()
            self.errors.append(e)

    def finish(self) -> None:
        """Wait for ``action``; raise what it raised."""
        assert self.fired, f"no statement starting with {self.prefix!r} ran"
        assert self._thread is not None
        self._thread.join(60)
        assert not self._thread.is_alive(), "the interleaved action is stuck"
        if self.errors:
            raise self.errors[0]


def collect(service: RegistryService, *, delete_untagged: bool = False) -> Callable[[], object]:
    """One collection with a grace period of 0, to run later."""
    return GarbageCollector(service, grace_period=0, delete_untagged=delete_untagged).run


BASE = b"base layer shared by every image" * 10


def test_collection_during_a_push_that_adopts_unreferenced_blobs(registry_service: RegistryService) -> None:
    """Regression (PostgreSQL): the collector locked blob rows a push had just touched, then re-checked
    "unreferenced" against its statement's old snapshot (READ COMMITTED re-evaluates only the locked row), so
    it went on to delete them; the foreign key stopped it, and the collection failed with an IntegrityError."""
    service = registry_service
    image = make_image("adopter", BASE)
    for data in image.blobs:  # uploaded long ago, never referenced: collectable
        upload(service, "team/app", data)
    make_old(service)
    with Interleaving(service.db, "INSERT INTO MANIFESTS", collect(service)) as step:
        service.put_manifest("team/app", "v1", image.body, MediaType.OCI_MANIFEST.value)
    step.finish()
    assert consistency_problems(service) == []
    assert service.get_manifest("team/app", "v1").digest == image.digest
    collect(service)()
    assert consistency_problems(service) == []


def test_collection_during_a_push_of_a_manifest_deleted_earlier(registry_service: RegistryService) -> None:
    """The manifest's own blob row is collectable (its manifest was deleted) when it is pushed again: the
    bytes must be on disk under the row the push leaves, whichever of the two goes first."""
    service = registry_service
    image = make_image("again", BASE)
    push_image(service, "team/app", image, "v1")
    push_image(service, "team/keep", image, "v1")  # keeps the config and layer referenced
    service.delete_manifest("team/app", image.digest)
    service.delete_manifest("team/keep", image.digest)
    push_image(service, "team/keep", make_image("keeper", BASE), "v1")
    make_old(service)
    with Interleaving(service.db, "INSERT INTO BLOBS", collect(service)) as step:
        service.put_manifest("team/app", "v2", image.body, MediaType.OCI_MANIFEST.value)
    step.finish()
    assert consistency_problems(service) == []
    assert service.get_manifest("team/app", "v2").body == image.body


def test_collection_during_a_mount(registry_service: RegistryService) -> None:
    service = registry_service
    digest = upload(service, "team/base", BASE)
    make_old(service)
    with Interleaving(service.db, "INSERT INTO REPOSITORY_BLOBS", collect(service)) as step:
        service.mount_blob("team/app", digest, "team/base")
    step.finish()
    assert consistency_problems(service) == []


def test_collection_during_an_upload_commit(registry_service: RegistryService) -> None:
    """Regression (PostgreSQL): a blob file whose row was being committed looked like an orphan (the row was
    not visible yet, and a plain SELECT does not wait for it), so the collector deleted the file under it."""
    service = registry_service
    upload_id = service.start_upload("team/app")

    async def body() -> AsyncIterator[bytes]:
        yield BASE

    with Interleaving(service.db, "COMMIT", collect(service)) as step:
        asyncio.run(service.finish("team/app", upload_id, sha256(BASE), body()))
    step.finish()
    assert consistency_problems(service) == []
    (run,) = GcRunLog(service.db).recent(1)
    if service.db.is_sqlite:
        # SQLite serialises writers: the collection's first write (its gc_runs row) waits for this commit, so
        # it runs after it and, with a grace period of 0, rightly collects the blob no manifest names, row and
        # file together; the race above exists on PostgreSQL only
        assert run.blobs_deleted == 1
        with pytest.raises(BlobUnknownError):
            service.stat_blob("team/app", sha256(BASE))
    else:
        assert run.blobs_deleted == 0
        assert service.stat_blob("team/app", sha256(BASE))[0] == len(BASE)


def test_pushes_setting_the_same_tags_in_opposite_orders(registry_service: RegistryService) -> None:
    """Regression (PostgreSQL): two pushes tagging ``a, b`` and ``b, a`` locked the tag rows in opposite
    orders and deadlocked; one of them failed (503). Tags are now written in one order."""
    service = registry_service
    first, second = make_image("first", b"first layer"), make_image("second", b"second layer")
    for image in (first, second):
        for data in image.blobs:
            upload(service, "team/app", data)

    def push_second() -> None:
        service.put_manifest("team/app", "b", second.body, MediaType.OCI_MANIFEST.value, ("a",))

    with Interleaving(service.db, "INSERT INTO TAGS", push_second, skip=1) as step:
        service.put_manifest("team/app", "a", first.body, MediaType.OCI_MANIFEST.value, ("b",))
    step.finish()
    assert {service.get_manifest("team/app", tag).digest for tag in ("a", "b")} == {second.digest}


def test_untagged_collection_during_a_push_that_tags_the_manifest(registry_service: RegistryService) -> None:
    """Regression (PostgreSQL): the collector found the manifest untagged, the push tagged it, and the
    collector deleted it anyway (no lock on the manifest row): the push failed on the tag's foreign key, or,
    a moment later, the tag vanished by ON DELETE CASCADE."""
    service = registry_service
    image = make_image("retag", BASE)
    push_image(service, "team/app", image)  # by digest: untagged
    make_old(service)
    with Interleaving(service.db, "INSERT INTO TAGS", collect(service, delete_untagged=True)) as step:
        service.put_manifest("team/app", "v1", image.body, MediaType.OCI_MANIFEST.value)
    step.finish()
    assert consistency_problems(service) == []
    assert service.get_manifest("team/app", "v1").digest == image.digest


def test_untagged_collection_during_a_push_of_an_index_naming_the_manifest(registry_service: RegistryService) -> None:
    """Same race through an index (PostgreSQL): the collector deleted the untagged child while the index
    that names it was being pushed, leaving the index pointing at a manifest the repository no longer has."""
    service = registry_service
    image = make_image("child", BASE)
    push_image(service, "team/app", image)
    make_old(service)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MediaType.OCI_INDEX.value,
            "manifests": [{"mediaType": MediaType.OCI_MANIFEST.value, "digest": image.digest, "size": len(image.body)}],
        }
    ).encode()
    with Interleaving(service.db, "INSERT INTO MANIFEST_REFERENCES", collect(service, delete_untagged=True)) as step:
        service.put_manifest("team/app", "multi", index, MediaType.OCI_INDEX.value)
    step.finish()
    assert consistency_problems(service) == []
    assert service.get_manifest("team/app", image.digest).body == image.body


# -- the stress test ----------------------------------------------------------------------------------------------


@pytest.fixture
def unsynced_service(database_url: str, tmp_path: Path) -> Iterator[RegistryService]:
    """``registry_service`` without fsync: the stress test is about the database, and fsyncs would slow it."""
    service = RegistryService(
        db=Database(database_url),
        store=FilesystemBlobStore(tmp_path / "data", fsync=False),
        max_manifest_size=4 * 1024 * 1024,
    )
    try:
        yield service
    finally:
        service.db.dispose()


WRITERS = 4
ROUNDS = 8
COLLECTORS = 2
COLLECTOR_PAUSE = 0.05  # seconds, at most, between two runs of a collector (pushes need some luck to finish)
MAX_ATTEMPTS = 30


@dataclass
class Tally:
    """What the writers did, and every error nobody expected."""

    pushes: int = 0
    retries: int = 0
    abandoned: int = 0
    deletes: int = 0
    mounts: int = 0
    collections: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        with self.lock:
            for key, n in counts.items():
                setattr(self, key, getattr(self, key) + n)

    def fail(self, who: str, error: BaseException) -> None:
        with self.lock:
            self.errors.append(f"{who}: {type(error).__name__}: {error}")


SHARED = [f"shared layer {i}".encode() * 50 for i in range(3)]


def is_taken_by_collector(error: TrustyardError) -> bool:
    """Errors a client must expect with a grace period of 0 (and retry): the collector took a blob between
    its upload and the manifest, or an upload file created a moment before its session's row (a stray
    file, to the collector)."""
    if isinstance(error, ManifestBlobUnknownError | BlobUploadUnknownError | BlobNotFoundError):
        return True
    return isinstance(error, UnavailableError) and error.message.startswith("no upload")


def writer(service: RegistryService, n: int, tally: Tally, rng: random.Random) -> None:
    """Push images (shared and own layers), re-push deleted ones, mount, delete; retry what the collector took."""
    repo = f"team{n % 2}/app{n}"
    pushed: list[Image] = []
    for i in range(ROUNDS):
        if pushed and rng.random() < 0.3:
            image = rng.choice(pushed)  # a manifest that may have been deleted (its blobs collected) meanwhile
        else:
            image = make_image(f"{n}/{i}", rng.choice(SHARED), f"own layer {n}/{i}".encode() * 20)
        for _ in range(MAX_ATTEMPTS):
            try:
                for data in image.blobs:
                    source = f"team{(n + 1) % 2}/app{(n + 1) % WRITERS}"
                    if rng.random() < 0.3 and service.mount_blob(repo, sha256(data), source):
                        tally.add(mounts=1)
                    else:
                        upload(service, repo, data)
                service.put_manifest(repo, f"v{i % 3}", image.body, MediaType.OCI_MANIFEST.value)
            except TrustyardError as e:
                if not is_taken_by_collector(e):
                    raise
                tally.add(retries=1)
                continue
            tally.add(pushes=1)
            pushed.append(image)
            break
        else:
            tally.add(abandoned=1)  # starved by the collectors: a liveness matter, which grace 0 gives up
        if pushed and rng.random() < 0.4:
            victim = rng.choice(pushed)
            try:
                service.delete_manifest(repo, victim.digest)
                tally.add(deletes=1)
            except TrustyardError:
                pass  # already deleted


def test_pushes_mounts_and_deletes_racing_collections_leave_nothing_dangling(unsynced_service: RegistryService) -> None:
    service = unsynced_service
    tally = Tally()
    done = threading.Event()

    def run_writer(n: int) -> None:
        try:
            writer(service, n, tally, random.Random(n))
        except BaseException as e:
            tally.fail(f"writer {n}", e)

    def run_collector(n: int) -> None:
        collector = GarbageCollector(service, grace_period=0, delete_untagged=n == 1)
        rng = random.Random(-n)
        while not done.wait(rng.uniform(0, COLLECTOR_PAUSE)):
            try:
                collector.run()
                tally.add(collections=1)
            except BaseException as e:
                tally.fail(f"collector {n}", e)
                return

    collectors = [threading.Thread(target=run_collector, args=(n,)) for n in range(COLLECTORS)]
    writers = [threading.Thread(target=run_writer, args=(n,)) for n in range(WRITERS)]
    for t in collectors + writers:
        t.start()
    for t in writers:
        t.join(300)
    done.set()
    for t in collectors:
        t.join(300)
    assert tally.errors == []
    assert tally.pushes >= WRITERS * ROUNDS // 2 and tally.collections >= 2, tally
    assert consistency_problems(service) == []
    # every tag still serves its manifest's bytes
    for n in range(WRITERS):
        repo = f"team{n % 2}/app{n}"
        for tag in service.tags(repo, None, None):
            stored = service.get_manifest(repo, tag)
            assert sha256(stored.body) == stored.digest
    # and, quiet now, one more collection leaves only what is referenced
    GarbageCollector(service, grace_period=0, delete_untagged=True).run()
    assert consistency_problems(service) == []
    with service.db.read() as conn:
        unreferenced = conn.execute(
            select(blobs.c.digest).where(
                ~select(manifest_references.c.child_digest)
                .where(manifest_references.c.child_digest == blobs.c.digest)
                .exists(),
                ~select(manifests.c.digest).where(manifests.c.digest == blobs.c.digest).exists(),
            )
        ).all()
    assert unreferenced == []
