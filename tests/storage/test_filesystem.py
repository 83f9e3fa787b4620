"""``FilesystemBlobStore``: the blob store contract (``storage/base.py``) on a real folder in ``tmp_path``.

Committed blobs (stat, read, ranges, put, delete, listing), uploads (create, append, read back, sync, commit,
discard, expiry listing), the guarantees that matter for safety: commit and put are atomic renames (a blob
path holds all of the content or does not exist), upload ids cannot name anything outside ``uploads/``, and
only ``StorageError`` escapes (``BlobNotFoundError`` for what is missing).
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustyard.oci.digest import Digest
from trustyard.storage import DRIVERS
from trustyard.storage.base import BlobNotFoundError, BlobStore, StorageError
from trustyard.storage.filesystem import FilesystemBlobStore

DATA = bytes(range(256)) * 40  # 10240 bytes
DIGEST = Digest.of(DATA)
UPLOAD = "0123456789abcdef0123456789abcdef"


@pytest.fixture(params=[False, True], ids=["no-fsync", "fsync"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "store", fsync=request.param)


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_the_store_satisfies_the_protocol(store: FilesystemBlobStore) -> None:
    as_protocol: BlobStore = store
    assert as_protocol is store
    assert DRIVERS["filesystem"] is FilesystemBlobStore


def test_layout_is_algorithm_shard_hex(store: FilesystemBlobStore) -> None:
    store.put(DIGEST, DATA)
    assert files(store.root) == {f"blobs/sha256/{DIGEST.hex[:2]}/{DIGEST.hex}"}


# -- committed blobs --------------------------------------------------------------------------------------------


def test_put_then_read_stat_and_range(store: FilesystemBlobStore) -> None:
    assert store.stat(DIGEST) is None
    store.put(DIGEST, DATA)
    assert store.stat(DIGEST) == len(DATA)
    assert store.read(DIGEST) == DATA
    assert b"".join(store.iter_range(DIGEST, 0, len(DATA), 4096)) == DATA


def test_sha512_blobs_live_apart(store: FilesystemBlobStore) -> None:
    d512 = Digest.of(DATA, "sha512")
    store.put(d512, DATA)
    assert store.stat(d512) == len(DATA)
    assert store.stat(DIGEST) is None
    assert f"blobs/sha512/{d512.hex[:2]}/{d512.hex}" in files(store.root)


def test_put_twice_is_harmless(store: FilesystemBlobStore) -> None:
    store.put(DIGEST, DATA)
    store.put(DIGEST, DATA)
    assert store.read(DIGEST) == DATA


def test_put_leaves_no_temporary_behind(store: FilesystemBlobStore) -> None:
    store.put(DIGEST, DATA)
    assert list((store.root / "uploads").iterdir()) == []


def test_failed_put_raises_storage_error_and_leaves_nothing(store: FilesystemBlobStore) -> None:
    shard = store.root / "blobs" / "sha256" / DIGEST.hex[:2]
    shard.parent.mkdir(parents=True, exist_ok=True)
    shard.write_bytes(b"a file where the shard folder should be")
    with pytest.raises(StorageError):
        store.put(DIGEST, DATA)
    assert list((store.root / "uploads").iterdir()) == []


def test_missing_blob_raises_blob_not_found(store: FilesystemBlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        store.read(DIGEST)
    with pytest.raises(BlobNotFoundError):
        store.iter_range(DIGEST, 0, 1, 1)  # raised by the call itself, before any iteration


def test_blob_not_found_is_a_storage_error() -> None:
    assert issubclass(BlobNotFoundError, StorageError)


def test_delete_removes_and_tolerates_missing(store: FilesystemBlobStore) -> None:
    store.put(DIGEST, DATA)
    store.delete(DIGEST)
    assert store.stat(DIGEST) is None
    store.delete(DIGEST)


def test_iter_blobs_lists_committed_blobs_and_skips_strays(store: FilesystemBlobStore) -> None:
    other = Digest.of(b"other")
    store.put(DIGEST, DATA)
    store.put(other, b"other")
    stray = store.root / "blobs" / "sha256" / DIGEST.hex[:2] / "not-a-digest"
    stray.write_bytes(b"")
    listed = dict(store.iter_blobs())
    assert set(listed) == {DIGEST, other}
    assert all(abs(mtime - time.time()) < 60 for mtime in listed.values())


# -- ranges -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "chunk"),
    [
        (0, len(DATA), 1 << 20),
        (0, len(DATA), 1000),
        (0, len(DATA), 1),
        (100, 200, 7),
        (len(DATA) - 1, len(DATA), 4096),
        (5, 5, 10),
        (len(DATA), len(DATA), 10),
    ],
)
def test_iter_range_returns_exactly_the_range_in_bounded_chunks(
    store: FilesystemBlobStore, start: int, end: int, chunk: int
) -> None:
    store.put(DIGEST, DATA)
    chunks = list(store.iter_range(DIGEST, start, end, chunk))
    assert b"".join(chunks) == DATA[start:end]
    assert all(0 < len(c) <= chunk for c in chunks)


@pytest.mark.parametrize(
    ("start", "end"), [(0, len(DATA) + 1), (len(DATA), len(DATA) + 10), (len(DATA) + 5, len(DATA) + 6)]
)
def test_range_past_the_end_raises_storage_error(store: FilesystemBlobStore, start: int, end: int) -> None:
    store.put(DIGEST, DATA)
    with pytest.raises(StorageError, match="shorter than recorded"):
        b"".join(store.iter_range(DIGEST, start, end, 4096))


def test_negative_range_start_raises_storage_error(store: FilesystemBlobStore) -> None:
    store.put(DIGEST, DATA)
    with pytest.raises(StorageError):
        b"".join(store.iter_range(DIGEST, -1, 10, 4096))


def test_abandoned_range_iterator_closes_its_file(store: FilesystemBlobStore) -> None:
    store.put(DIGEST, DATA)
    before = len(os.listdir("/proc/self/fd"))
    iterators = [store.iter_range(DIGEST, 0, len(DATA), 10) for _ in range(20)]
    for it in iterators:
        assert isinstance(it, Generator)
        next(it)
        it.close()  # what a server does when the client hangs up mid-download
    assert len(os.listdir("/proc/self/fd")) <= before + 1


_PROPERTY_STORES: dict[str, FilesystemBlobStore] = {}


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3000),
    bounds=st.tuples(st.integers(0, 3000), st.integers(0, 3000)),
    chunk=st.integers(1, 700),
)
def test_iter_range_property(
    tmp_path_factory: pytest.TempPathFactory, data: bytes, bounds: tuple[int, int], chunk: int
) -> None:
    store = _PROPERTY_STORES.get("store")
    if store is None:  # one store for every example (content-addressed: examples cannot disturb each other)
        store = _PROPERTY_STORES["store"] = FilesystemBlobStore(tmp_path_factory.mktemp("prop"), fsync=False)
    digest = Digest.of(data)
    store.put(digest, data)
    start, end = sorted(bounds)
    if end <= len(data) or start == end:  # an empty range reads nothing, wherever it is
        chunks = list(store.iter_range(digest, start, end, chunk))
        assert b"".join(chunks) == data[start:end]
        assert all(0 < len(c) <= chunk for c in chunks)
    else:
        with pytest.raises(StorageError):
            b"".join(store.iter_range(digest, start, end, chunk))


# -- uploads ----------------------------------------------------------------------------------------------------


def test_upload_lifecycle(store: FilesystemBlobStore) -> None:
    store.create_upload(UPLOAD)
    assert store.upload_size(UPLOAD) == 0
    store.append_upload(UPLOAD, [DATA[:100], bytearray(DATA[100:5000]), memoryview(DATA)[5000:], b""])
    assert store.upload_size(UPLOAD) == len(DATA)
    assert b"".join(store.iter_upload(UPLOAD, 999)) == DATA
    assert dict(store.iter_uploads()).keys() == {UPLOAD}
    store.sync_upload(UPLOAD)
    store.commit_upload(UPLOAD, DIGEST)
    assert store.read(DIGEST) == DATA
    with pytest.raises(BlobNotFoundError):
        store.upload_size(UPLOAD)
    assert list(store.iter_uploads()) == []


def test_append_many_small_chunks_in_one_call(store: FilesystemBlobStore) -> None:
    pieces = [bytes([i % 256]) * (i % 7 + 1) for i in range(3000)]  # more than one writev batch
    store.create_upload(UPLOAD)
    store.append_upload(UPLOAD, pieces)
    assert b"".join(store.iter_upload(UPLOAD, 4096)) == b"".join(pieces)


def test_commit_is_an_atomic_rename_of_the_upload_file(store: FilesystemBlobStore) -> None:
    store.create_upload(UPLOAD)
    store.append_upload(UPLOAD, [DATA])
    inode = os.stat(store.root / "uploads" / UPLOAD).st_ino
    assert store.stat(DIGEST) is None  # not visible before the commit
    old = time.time() - 7200
    os.utime(store.root / "uploads" / UPLOAD, (old, old))
    store.commit_upload(UPLOAD, DIGEST)
    blob = store.root / "blobs" / "sha256" / DIGEST.hex[:2] / DIGEST.hex
    assert os.stat(blob).st_ino == inode  # renamed, never copied: no partial file can be seen
    assert os.stat(blob).st_mtime > time.time() - 60  # fresh, so garbage collection's grace period applies
    assert files(store.root) == {f"blobs/sha256/{DIGEST.hex[:2]}/{DIGEST.hex}"}


def test_commit_of_a_digest_already_stored_replaces_it_with_equal_content(store: FilesystemBlobStore) -> None:
    store.put(DIGEST, DATA)
    store.create_upload(UPLOAD)
    store.append_upload(UPLOAD, [DATA])
    store.commit_upload(UPLOAD, DIGEST)
    assert store.read(DIGEST) == DATA


def test_commit_of_a_missing_upload_raises_and_creates_nothing(store: FilesystemBlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        store.commit_upload(UPLOAD, DIGEST)
    assert store.stat(DIGEST) is None


def test_operations_on_a_missing_upload_raise_blob_not_found(store: FilesystemBlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        store.upload_size(UPLOAD)
    with pytest.raises(BlobNotFoundError):
        store.append_upload(UPLOAD, [b"x"])
    with pytest.raises(BlobNotFoundError):
        store.iter_upload(UPLOAD, 10)
    with pytest.raises(BlobNotFoundError):
        store.sync_upload(UPLOAD) if store.fsync else store.commit_upload(UPLOAD, DIGEST)
    store.delete_upload(UPLOAD)  # discarding a missing upload is not an error


def test_creating_an_upload_twice_is_a_storage_error(store: FilesystemBlobStore) -> None:
    store.create_upload(UPLOAD)
    with pytest.raises(StorageError):
        store.create_upload(UPLOAD)


def test_delete_upload_discards_its_data(store: FilesystemBlobStore) -> None:
    store.create_upload(UPLOAD)
    store.append_upload(UPLOAD, [DATA])
    store.delete_upload(UPLOAD)
    assert files(store.root) == set()


BAD_IDS = [
    "..",
    ".",
    "../../etc/passwd",
    "/etc/passwd",
    "0123456789abcdef0123456789abcde/",
    "../" + UPLOAD,
    UPLOAD + "/..",
    UPLOAD.upper(),
    UPLOAD[:-1],
    UPLOAD + "0",
    UPLOAD + "\n",
    "\n" + UPLOAD,
    UPLOAD[:-1] + "\x00",
    "put-123-abc-0123456789abcdef",
    "",
]


@pytest.mark.parametrize("upload_id", BAD_IDS)
def test_upload_ids_outside_the_grammar_name_nothing(store: FilesystemBlobStore, upload_id: str) -> None:
    outside = store.root.parent / "outside"
    outside.mkdir(exist_ok=True)
    before = files(store.root.parent)
    with pytest.raises(StorageError):
        store.create_upload(upload_id)
    for call in (
        lambda: store.upload_size(upload_id),
        lambda: store.append_upload(upload_id, [b"x"]),
        lambda: store.iter_upload(upload_id, 10),
        lambda: store.commit_upload(upload_id, DIGEST),
    ):
        with pytest.raises(BlobNotFoundError):
            call()
    store.delete_upload(upload_id)
    assert files(store.root.parent) == before


def test_sync_upload_without_fsync_is_a_no_op(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path, fsync=False)
    store.sync_upload(UPLOAD)  # nothing to sync, nothing checked


def test_iter_uploads_skips_other_files(store: FilesystemBlobStore) -> None:
    store.create_upload(UPLOAD)
    (store.root / "uploads" / "put-1-2-3").write_bytes(b"")
    (store.root / "uploads" / "README").write_bytes(b"")
    assert [u for u, _ in store.iter_uploads()] == [UPLOAD]


def test_remove_stale_temporaries_spares_fresh_ones_and_uploads(store: FilesystemBlobStore) -> None:
    uploads = store.root / "uploads"
    store.create_upload(UPLOAD)
    old, fresh = uploads / "put-1-1-old", uploads / "put-1-1-fresh"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    past = time.time() - 3600
    os.utime(old, (past, past))
    os.utime(uploads / UPLOAD, (past, past))
    assert store.remove_stale_temporaries(time.time() - 60) == 1
    assert sorted(p.name for p in uploads.iterdir()) == sorted([UPLOAD, fresh.name])


def test_unusable_root_is_a_storage_error(tmp_path: Path) -> None:
    root = tmp_path / "a-file"
    root.write_bytes(b"")
    with pytest.raises(StorageError):
        FilesystemBlobStore(root)
