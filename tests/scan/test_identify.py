"""Identification by file hash: a copied, renamed file of a package analysed before is reported as that package.

The images (``copies.py``): the Debian fixture plus a layer holding a copy of its ``usr/bin/bash`` under
another name, and that layer alone (no package database at all); the Debian fixture plus a layer that
replaces ``usr/bin/bash`` with other bytes (dpkg's md5sums still claim it), and that replacement alone.
The index is a real SQLite file; every analysis opens it anew, as separate runs would.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from scan import copies
from scan.shared import ALPINE_ROOTFS, APP_LAYER
from trustyard.scan.cache import DirectoryLayerCache
from trustyard.scan.identify import FILE_HASH, HASH_EVIDENCE
from trustyard.scan.identify_index import FILE_NAME, SqliteFileIndex
from trustyard.scan.indexer import Indexer, IndexReport
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.sources import open_source

TAMPERED = "usr/bin/bash"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> copies.Copies:
    """The Debian fixture with a renamed copy of its bash, and with its bash replaced; and those layers alone."""
    bash = copies.fixture_file("./usr/bin/bash")
    tampered = bash[:-16] + b"\0tampered binary"
    layers = {"copy": {copies.COPY: bash}, "tampered": {TAMPERED: tampered}, "tampered-copy": {copies.COPY: tampered}}
    return copies.build(tmp_path_factory.mktemp("oci"), layers)


def analyse(image: str, indexer: Indexer) -> IndexReport:
    """One analysis of ``image``."""
    source = open_source(image)
    try:
        return indexer.index(source)
    finally:
        source.close()


def by_hash(report: IndexReport) -> list[Component]:
    """The components identified by file hash."""
    return [c for c in report.components if c.found_by == FILE_HASH]


def test_a_renamed_copy_is_its_package_once_the_package_has_been_seen(images: copies.Copies, tmp_path: Path) -> None:
    index_file = tmp_path / "file-index.sqlite"
    # Nothing learnt yet: only the bytes name the copy (its bash signature), no package does.
    before = analyse(images.alone["copy"], Indexer(file_index=SqliteFileIndex(index_file)))
    assert by_hash(before) == []
    assert [c.name for c in before.components if c.found_by == "binary"] == ["bash"]

    debian = analyse(images.on_debian["copy"], Indexer(file_index=SqliteFileIndex(index_file)))
    (bash,) = [c for c in debian.components if c.type is ComponentType.DEB and c.name == "bash"]
    with sqlite3.connect(index_file) as db:
        learnt = db.execute("SELECT COUNT(*), COUNT(DISTINCT identity) FROM package_files").fetchone()
    assert learnt[0] > 100 and learnt[1] > 20  # the ELF files of the fixture's packages, verified
    # in the image itself the copy is the package dpkg reports already: not a second component, and not a
    # signature finding either
    assert by_hash(debian) == []
    assert not [c for c in debian.components if c.found_by == "binary"]

    after = analyse(images.alone["copy"], Indexer(file_index=SqliteFileIndex(index_file)))
    (found,) = by_hash(after)
    assert found.type is ComponentType.DEB
    assert (found.name, found.version, found.purl, found.cpe) == (bash.name, bash.version, bash.purl, bash.cpe)
    assert (found.source_name, found.source_version) == (bash.source_name, bash.source_version)
    assert found.evidence == copies.COPY
    assert ("evidence", HASH_EVIDENCE) in found.extra
    assert ("installed_as", "usr/bin/bash") in found.extra
    assert found.layer == after.layers[0].digest
    assert after.layers[0].components == (found,)
    assert not [c for c in after.components if c.found_by == "binary"]  # the package, not the signature


def test_a_file_that_does_not_match_its_package_record_is_not_learnt(images: copies.Copies, tmp_path: Path) -> None:
    index = SqliteFileIndex(tmp_path / "file-index.sqlite")
    report = analyse(images.on_debian["tampered"], Indexer(file_index=index))
    (bash,) = [c for c in report.components if c.type is ComponentType.DEB and c.name == "bash"]
    assert any(f.path.endswith("bin/bash") and f.digest for f in bash.files)  # dpkg still claims it
    tampered_sha = next(f.entry.sha256 for f in report.files if f.path == TAMPERED)
    assert tampered_sha is not None
    assert index.lookup({tampered_sha}) == {}
    elsewhere = analyse(images.alone["tampered-copy"], Indexer(file_index=index))
    assert by_hash(elsewhere) == []


def test_the_cache_keeps_the_index_beside_it_and_a_cached_report_is_identified_too(
    images: copies.Copies, tmp_path: Path
) -> None:
    first = analyse(images.alone["copy"], Indexer(cache=DirectoryLayerCache(tmp_path)))
    assert by_hash(first) == []
    analyse(images.on_debian["copy"], Indexer(cache=DirectoryLayerCache(tmp_path)))
    assert (tmp_path / FILE_NAME).is_file()
    again = analyse(images.alone["copy"], Indexer(cache=DirectoryLayerCache(tmp_path)))
    assert all(layer.cached for layer in again.layers)  # the stored report, learnt from since
    assert [c.name for c in by_hash(again)] == ["bash"]


def test_an_unreadable_index_identifies_nothing_and_breaks_nothing(images: copies.Copies, tmp_path: Path) -> None:
    broken = tmp_path / "file-index.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    report = analyse(images.alone["copy"], Indexer(file_index=SqliteFileIndex(broken)))
    assert by_hash(report) == []
    assert [c.name for c in report.components] == ["bash"]


def test_apk_checksums_and_wheel_records_are_verified_and_learnt(tmp_path: Path) -> None:
    index = SqliteFileIndex(tmp_path / "file-index.sqlite")
    alpine = analyse(f"rootfs:{ALPINE_ROOTFS}", Indexer(file_index=index))
    app = analyse(f"rootfs:{APP_LAYER}", Indexer(file_index=index))
    busybox = next(f for f in alpine.files if f.path == "bin/busybox")
    assert busybox.entry.sha256 is not None
    (known,) = index.lookup({busybox.entry.sha256})[busybox.entry.sha256]
    assert (known.package.type, known.package.name, known.path) == (ComponentType.APK, "busybox", "bin/busybox")
    by_path = {f.path: f for f in app.files}
    wheel_files = [
        (by_path[listed.path].entry.sha256 or "", c.name)
        for c in app.components
        if c.type is ComponentType.PYPI
        for listed in c.files
        if listed.digest and listed.path in by_path and by_path[listed.path].entry.size > 0
    ]
    assert wheel_files
    found = index.lookup({sha for sha, _ in wheel_files})
    assert all(any(k.package.name == name for k in found[sha]) for sha, name in wheel_files)


def test_an_index_that_cannot_be_written_only_logs(
    images: copies.Copies, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-folder").write_text("a file where the index's folder should be")
    index = SqliteFileIndex(tmp_path / "not-a-folder" / FILE_NAME)
    report = analyse(f"rootfs:{APP_LAYER}", Indexer(file_index=index))
    assert len(report.components) > 3
    assert "cannot record" in caplog.text
