"""Analyzers and the indexer on small images built here: what each wants, what it reports, how errors end.

The shared fixtures cover the common shapes (golden tests); these cases cover the rest: distroless
``status.d``, egg-info files, an analyzer registry with a duplicate, a corrupt database that must become a
warning, and a package whose database an upper layer rewrites.
"""

from __future__ import annotations

import io

import pytest

from scan.tars import Member, build_tar, file
from trustyard.scan.analyzers import ANALYZERS, DpkgAnalyzer, OsReleaseAnalyzer, PythonAnalyzer, registry
from trustyard.scan.errors import ScanError
from trustyard.scan.indexer import Indexer
from trustyard.scan.layers import Layer, LayerLimits, Reduce, Wants, read_layer
from trustyard.scan.model import ComponentType
from trustyard.scan.sources.base import LayerRef, SourceBase


class MemorySource(SourceBase):
    """An image source over in-memory layer tars (the test double of the ImageSource protocol)."""

    def __init__(self, *layers: list[Member]) -> None:
        self._blobs = [build_tar(members) for members in layers]
        super().__init__("memory:", [LayerRef(index=i, location=str(i)) for i in range(len(layers))])

    def read_layer(self, ref: LayerRef, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None) -> Layer:
        """Read the in-memory tar."""
        return read_layer(io.BytesIO(self._blobs[ref.index]), wants=wants, limits=limits, reduce=reduce)

    def close(self) -> None:
        """Nothing to release."""


STATUS_ONE = b"Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n"
STATUS_TWO = STATUS_ONE + b"\nPackage: b\nStatus: install ok installed\nVersion: 2\nArchitecture: all\n"


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("var/lib/dpkg/status", True),
        ("var/lib/dpkg/status.d/base", True),
        ("var/lib/dpkg/status.d/sub/x", False),
        ("var/lib/dpkg/info/bash.list", True),
        ("var/lib/dpkg/info/libc6:amd64.md5sums", True),
        ("var/lib/dpkg/info/bash.postinst", False),
        ("etc/os-release", True),
        ("etc/passwd", False),
    ],
)
def test_dpkg_wants(path: str, wanted: bool) -> None:
    assert DpkgAnalyzer().wants(path) is wanted


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("usr/lib/python3/dist-packages/a-1.dist-info/METADATA", True),
        ("usr/lib/python3/dist-packages/a-1.dist-info/RECORD", True),
        ("usr/lib/python3/dist-packages/a-1.dist-info/WHEEL", False),
        ("site/a-1-py3.11.egg-info/PKG-INFO", True),
        ("site/a-1-py3.11.egg-info", True),
        ("site/a-1-py3.11.egg-info/SOURCES.txt", False),
        ("site/a.py", False),
    ],
)
def test_python_wants(path: str, wanted: bool) -> None:
    assert PythonAnalyzer().wants(path) is wanted


def test_distroless_status_d_with_md5sums() -> None:
    files = {
        "var/lib/dpkg/status.d/libc6": b"Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\nSource: glibc\n",
        "var/lib/dpkg/status.d/libc6.md5sums": b"d41d8cd98f00b204e9800998ecf8427e  lib/x86_64-linux-gnu/libc.so.6\n",
        "usr/lib/os-release": b"ID=debian\nVERSION_ID=12\n",
    }
    [libc] = DpkgAnalyzer().analyze(files)
    assert (libc.name, libc.source_name, libc.evidence) == ("libc6", "glibc", "var/lib/dpkg/status.d/libc6")
    assert [(f.path, f.digest) for f in libc.files] == [
        ("lib/x86_64-linux-gnu/libc.so.6", "md5:d41d8cd98f00b204e9800998ecf8427e")
    ]
    assert libc.purl == "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12"


def test_a_legacy_egg_info_file_is_a_distribution() -> None:
    [dist] = PythonAnalyzer().analyze({"site/six-1.0-py3.11.egg-info": b"Name: six\nVersion: 1.0\n"})
    assert (dist.name, dist.version, dist.files) == ("six", "1.0", ())


def test_os_release_prefers_etc() -> None:
    [os] = OsReleaseAnalyzer().analyze({"etc/os-release": b"ID=a\nVERSION_ID=1", "usr/lib/os-release": b"ID=b"})
    assert (os.type, os.name, os.version, os.evidence) == (ComponentType.OS, "a", "1", "etc/os-release")


def test_analyzer_names_are_unique() -> None:
    assert len(registry(ANALYZERS)) == len(ANALYZERS)
    with pytest.raises(ScanError, match="two analyzers"):
        registry([DpkgAnalyzer(), DpkgAnalyzer()])


def test_a_package_keeps_the_layer_that_introduced_it() -> None:
    source = MemorySource([file("var/lib/dpkg/status", STATUS_ONE)], [file("var/lib/dpkg/status", STATUS_TWO)])
    report = Indexer().index(source)
    layers = {c.name: c.layer for c in report.components}
    assert layers == {"a": report.layers[0].digest, "b": report.layers[1].digest}
    assert [[c.name for c in layer.components] for layer in report.layers] == [["a"], ["b"]]


def test_a_deleted_database_removes_its_packages() -> None:
    source = MemorySource([file("var/lib/dpkg/status", STATUS_TWO)], [file("var/lib/dpkg/.wh.status")])
    assert Indexer().index(source).components == ()


def test_a_corrupt_database_is_a_warning_and_keeps_the_last_good_result() -> None:
    source = MemorySource(
        [file("var/lib/dpkg/status", STATUS_ONE), file("lib/apk/db/installed", b"P:x\nV:1\n")],
        [file("var/lib/dpkg/status", b"garbage without colon\n")],
    )
    report = Indexer().index(source)
    assert sorted(c.name for c in report.components) == ["a", "x"]
    assert any("dpkg" in w and "not a 'Field: value' line" in w for w in report.warnings)
