"""Binary classifiers on real binaries: Debian packages unpacked without their database, then renamed copies.

Each package is downloaded by name (``debs.py``) and unpacked with ``dpkg-deb -x`` into one root file system
that has no dpkg database, so nothing but the bytes can name what is there; the version each classifier
reports must be the package's own upstream version, read from the package. Then: renamed and statically
placed copies are still named; a match cut by a chunk boundary is still found; non-ELF files are never
searched; and in an image whose package database lists a file, the file is that package and not a second
component (the Debian fixture plus a layer holding a copy of its bash).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scan import copies, debs
from trustyard.scan.analyzers import BinaryAnalyzer
from trustyard.scan.analyzers.binary import EVIDENCE, MAX_SCAN, chunks, classify, needed, regions, summary_of
from trustyard.scan.indexer import Indexer, IndexReport
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.sources import open_source

# package -> (classifier, the file that carries the signature, relative to the root)
REAL: dict[str, tuple[str, str]] = {
    "libssl3": ("openssl", "usr/lib/x86_64-linux-gnu/libcrypto.so.3"),
    "zlib1g": ("zlib", "lib/x86_64-linux-gnu/libz.so.1.2.13"),
    "libcurl4": ("libcurl", "usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0"),
    "curl": ("curl", "usr/bin/curl"),
    "busybox-static": ("busybox", "bin/busybox"),
    "libsqlite3-0": ("sqlite", "usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6"),
    "libc6": ("glibc", "lib/x86_64-linux-gnu/libc.so.6"),
    "python3.11-minimal": ("python", "usr/bin/python3.11"),
    "libnode108": ("node", "usr/lib/x86_64-linux-gnu/libnode.so.108"),
    "nginx": ("nginx", "usr/sbin/nginx"),
    "redis-tools": ("redis", "usr/bin/redis-check-rdb"),
    "bash": ("bash", "bin/bash"),
    "perl-base": ("perl", "usr/bin/perl"),
    "postgresql-15": ("postgresql", "usr/lib/postgresql/15/bin/postgres"),
    "memcached": ("memcached", "usr/bin/memcached"),
    "haproxy": ("haproxy", "usr/sbin/haproxy"),
    "apache2-bin": ("httpd", "usr/sbin/apache2"),
}
RENAMED = {
    "usr/local/bin/tool": "bin/busybox",  # a static program under another name
    "opt/vendor/bin/cryptocore": "usr/lib/x86_64-linux-gnu/libcrypto.so.3",  # a library as a program
    "opt/app/lib/libbundled.so": "usr/lib/x86_64-linux-gnu/libnode.so.108",
}


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Every package of ``REAL`` unpacked into one root, plus the renamed copies; and each package's version."""
    root = tmp_path_factory.mktemp("debs") / "rootfs"
    versions = {}
    for package in REAL:
        package_file = debs.deb(package)
        debs.extract(package_file, root)
        versions[package] = debs.version(package_file)
    for copy, original in RENAMED.items():
        (root / copy).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / original, root / copy)
    return root, versions


@pytest.fixture(scope="module")
def found(unpacked: tuple[Path, dict[str, str]]) -> IndexReport:
    """The index of that root with the default analyzers."""
    source = open_source(f"rootfs:{unpacked[0]}")
    try:
        return Indexer().index(source)
    finally:
        source.close()


def signature_components(report: IndexReport) -> dict[str, list[Component]]:
    """The components named by a binary signature, by classifier."""
    by_name: dict[str, list[Component]] = {}
    for c in report.components:
        if c.found_by == "binary":
            by_name.setdefault(c.name, []).append(c)
    return by_name


@pytest.mark.parametrize("package", sorted(REAL))
def test_a_real_debian_binary_is_named_with_its_upstream_version(
    package: str, unpacked: tuple[Path, dict[str, str]], found: IndexReport
) -> None:
    classifier, path = REAL[package]
    expected = debs.upstream(unpacked[1][package])
    components = signature_components(found).get(classifier, [])
    holding = [c for c in components if path in c.paths]
    assert len(holding) == 1, f"{classifier} in {path}: {components}"
    component = holding[0]
    assert component.version == expected
    assert component.type is ComponentType.GENERIC
    assert component.purl == f"pkg:generic/{classifier}@{expected}"
    assert component.cpe is not None and f":{expected}:" in component.cpe
    assert ("evidence", EVIDENCE) in component.extra


def test_renamed_copies_are_named_by_their_bytes(found: IndexReport) -> None:
    by_name = signature_components(found)
    assert any("usr/local/bin/tool" in c.paths for c in by_name["busybox"])
    assert any("opt/vendor/bin/cryptocore" in c.paths for c in by_name["openssl"])
    assert any("opt/app/lib/libbundled.so" in c.paths for c in by_name["node"])


def test_a_library_the_program_loads_is_not_named_in_it(found: IndexReport) -> None:
    # nginx and haproxy print the OpenSSL version they were built against, and load libssl.so.3 at run time
    openssl = signature_components(found)["openssl"]
    assert not any(p in c.paths for c in openssl for p in ("usr/sbin/nginx", "usr/sbin/haproxy"))
    assert not any("usr/bin/curl" in c.paths for c in signature_components(found)["libcurl"])


def test_one_component_per_version_naming_every_file(found: IndexReport) -> None:
    (busybox,) = signature_components(found)["busybox"]
    assert sorted(busybox.paths) == ["bin/busybox", "usr/local/bin/tool"]


def test_a_match_cut_by_any_chunk_boundary_is_found(unpacked: tuple[Path, dict[str, str]]) -> None:
    data = (unpacked[0] / "bin" / "busybox").read_bytes()
    at = data.index(b"BusyBox v")
    piece = data[at - 300 : at + 300]
    expected = debs.upstream(unpacked[1]["busybox-static"])
    for cut in range(280, 330):
        assert classify("bin/busybox", [piece[:cut], piece[cut:]]) == {"busybox": expected}, cut
    assert classify("bin/busybox", [piece[i : i + 7] for i in range(0, len(piece), 7)]) == {"busybox": expected}


def test_a_version_at_the_very_end_of_a_chunk_waits_for_the_next() -> None:
    # "OpenSSL 3.0.1" then, in the next chunk, "5 24 Aug 2024": never reported as 3.0.1
    pieces = [b"\0OpenSSL 3.0.1", b"5 24 Aug 2024\0"]
    assert classify("libcrypto.so.3", pieces) == {"openssl": "3.0.15"}


def test_only_elf_files_are_searched_and_reads_are_bounded(unpacked: tuple[Path, dict[str, str]]) -> None:
    analyzer = BinaryAnalyzer()
    banner = b"#!/bin/sh\necho 'BusyBox v1.36.1 (fake)'\n"
    assert analyzer.extract("usr/local/bin/fake", banner) is None
    data = (unpacked[0] / "bin" / "busybox").read_bytes()
    spans = regions(data)
    assert sum(size for _, size in spans) < len(data) // 2  # the string sections, not the code
    assert sum(len(c) for c in chunks(data, spans, size=4096, limit=10_000)) == 10_000
    assert MAX_SCAN < 256 << 20


@pytest.fixture(scope="module")
def debian_with_copy(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Debian fixture plus a layer with its bash copied to ``copies.COPY``."""
    built = copies.build(tmp_path_factory.mktemp("oci"), {"bash": {copies.COPY: copies.fixture_file("./usr/bin/bash")}})
    return built.on_debian["bash"]


def test_a_file_a_package_owns_is_not_reported_again(debian_with_copy: str) -> None:
    source = open_source(debian_with_copy)
    try:
        report = Indexer().index(source)
    finally:
        source.close()
    signatures = [c for c in report.components if c.found_by == "binary"]
    assert [(c.name, c.paths) for c in signatures] == [("bash", (copies.COPY,))]
    (bash,) = [c for c in report.components if c.name == "bash" and c.type is ComponentType.DEB]
    assert "usr/bin/bash" in bash.paths or "bin/bash" in bash.paths
    assert signatures[0].version == debs.upstream(bash.version)
    # the same image with the binary analyzer alone: the dpkg-owned libc, bash, zlib are all classified
    source = open_source(debian_with_copy)
    try:
        alone = Indexer(analyzers=[BinaryAnalyzer()]).index(source)
    finally:
        source.close()
    assert {"glibc", "bash", "zlib", "perl"} <= {c.name for c in alone.components}


@given(st.binary(max_size=4096))
@settings(max_examples=300, deadline=None)
def test_hostile_elf_bytes_never_break_the_extractor(tail: bytes) -> None:
    data = b"\x7fELF" + tail
    summary = BinaryAnalyzer().extract("usr/bin/x", data)
    assert summary is not None
    assert summary_of("usr/bin/x", summary)["md5"] == hashlib.md5(data).hexdigest()  # noqa: S324 - what dpkg lists


@given(st.lists(st.sampled_from([b"\x7fELF\x02\x01\x01", b"\x00" * 8, b"\xff" * 8, b"\x40\x00", b"\x10\x00\x00\x00"])))
@settings(max_examples=200, deadline=None)
def test_malformed_section_tables_are_read_safely(parts: list[bytes]) -> None:
    data = b"".join(parts) + b"\x00" * 64
    assert all(offset >= 0 and size >= 0 for offset, size in regions(data))
    assert all(name for name in needed(data))
