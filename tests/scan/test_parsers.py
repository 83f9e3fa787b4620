"""The pure parsers of package databases: named cases for what each accepts and refuses, and fuzzing.

Every parser of untrusted bytes gets a hypothesis property: any input either parses or raises that
parser's own error (a ``PackageDatabaseError`` subclass), never another exception. The rpm header parser
is also fed headers built here from their specification, then corrupted.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scan.shared import MARINER_ROOTFS
from trustyard.scan.layers import read_layer
from trustyard.scan.parsers.apk import ApkError, parse_installed
from trustyard.scan.parsers.dpkg import DpkgError, parse_list, parse_md5sums, parse_status
from trustyard.scan.parsers.osrelease import parse_os_release
from trustyard.scan.parsers.python import PythonMetadataError, parse_installed_files, parse_metadata, parse_record
from trustyard.scan.parsers.rpm import RpmError, Tag, package_from_header, parse_header, parse_sqlite_rpmdb

STATUS = b"""Package: bsdutils
Status: install ok installed
Version: 1:2.38.1-5+deb12u3
Architecture: amd64
Source: util-linux (2.38.1-5+deb12u3)
Description: basic utilities
 from 4.4BSD-Lite
 .

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: held
Status: hold ok installed
Version: 2.0
Architecture: all
Source: heldsrc

Package: half
Status: install reinstreq half-installed
Version: 3.0
"""


def test_dpkg_status_installed_packages_and_source_fields() -> None:
    packages = parse_status(STATUS)
    assert [(p.name, p.version, p.architecture, p.source_name, p.source_version) for p in packages] == [
        ("bsdutils", "1:2.38.1-5+deb12u3", "amd64", "util-linux", "2.38.1-5+deb12u3"),
        ("held", "2.0", "all", "heldsrc", "2.0"),
    ]


def test_distroless_status_d_paragraphs_have_no_status() -> None:
    [package] = parse_status(b"Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\nSource: glibc\n")
    assert (package.name, package.source_name, package.source_version) == ("libc6", "glibc", "2.36-9")


@pytest.mark.parametrize(
    "data",
    [
        b"Version: 1.0\nStatus: install ok installed\n",
        b"Package: x\nStatus: install ok installed\n",
        b" continuation first\n",
        b"Package: x\nno colon here\n",
        b"Package: x\nVersion: 1\nSource: a (b) c\n",
    ],
)
def test_dpkg_status_refuses_what_is_not_a_status_file(data: bytes) -> None:
    with pytest.raises(DpkgError):
        parse_status(data)


def test_dpkg_list_and_md5sums() -> None:
    assert parse_list(b"/.\n/usr\n/usr/bin/bash\n\n") == ["usr", "usr/bin/bash"]
    assert parse_md5sums(b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/x\n") == {
        "usr/bin/x": "d41d8cd98f00b204e9800998ecf8427e"
    }
    with pytest.raises(DpkgError):
        parse_md5sums(b"nothex  usr/bin/x\n")


APK = b"""C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
o:musl
L:MIT
F:lib
R:ld-musl-x86_64.so.1
Z:Q1zzz=
R:libc.musl-x86_64.so.1

P:second
V:1
"""


def test_apk_installed_database() -> None:
    first, second = parse_installed(APK)
    assert (first.name, first.version, first.origin, first.license, first.checksum) == (
        "musl",
        "1.2.5-r0",
        "musl",
        "MIT",
        "Q1abc=",
    )
    assert [(f.path, f.checksum) for f in first.files] == [
        ("lib/ld-musl-x86_64.so.1", "Q1zzz="),
        ("lib/libc.musl-x86_64.so.1", None),
    ]
    assert second.name == "second" and second.files == ()


@pytest.mark.parametrize("data", [b"P:x\n", b"V:1\n", b"P:x\nV:1\nbad line\n", b"P:x\nV:1\nZ:Q1=\n"])
def test_apk_refuses_malformed_stanzas(data: bytes) -> None:
    with pytest.raises(ApkError):
        parse_installed(data)


def test_os_release_quoting_and_defaults() -> None:
    release = parse_os_release(b'# comment\nID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian \\"x\\""\nnot a line\n')
    assert (release.id, release.version_id, release.pretty_name) == ("debian", "12", 'Debian "x"')
    assert parse_os_release(b"").id == "linux"


METADATA = b"""Metadata-Version: 2.1
Name: PyYAML
Version: 5.3
License: MIT
Classifier: License :: OSI Approved :: MIT License

long description
"""


def test_python_metadata_and_licenses() -> None:
    dist = parse_metadata(METADATA)
    assert (dist.name, dist.version, dist.licenses) == ("PyYAML", "5.3", ("MIT",))
    by_classifier = parse_metadata(
        b"Name: a\nVersion: 1\nLicense: UNKNOWN\nClassifier: License :: OSI Approved :: BSD License\n"
    )
    assert by_classifier.licenses == ("BSD License",)
    assert parse_metadata(b"Name: a\nVersion: 1\nLicense-Expression: Apache-2.0\n").licenses == ("Apache-2.0",)
    with pytest.raises(PythonMetadataError):
        parse_metadata(b"Name: a\n")


def test_python_record_paths_stay_inside_the_image() -> None:
    rows = parse_record(
        b"yaml/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n../../../../../../bin/x,,\n",
        "usr/lib/site",
    )
    assert rows == [
        ("usr/lib/site/yaml/__init__.py", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("bin/x", None),
    ]
    assert parse_installed_files(b"../foo.py\n\n", "site/foo.egg-info") == ["site/foo.py"]


def header(entries: list[tuple[int, int, bytes, int]]) -> bytes:
    """An rpm header blob of (tag, type, value bytes, count) entries, laid out as rpm does."""
    index, data = b"", b""
    for tag, kind, value, count in entries:
        index += struct.pack(">IIII", tag, kind, len(data), count)
        data += value
    return struct.pack(">II", len(entries), len(data)) + index + data


GOOD_HEADER = header(
    [
        (Tag.NAME, 6, b"bash\0", 1),
        (Tag.VERSION, 6, b"5.1.8\0", 1),
        (Tag.RELEASE, 6, b"1.cm2\0", 1),
        (Tag.EPOCH, 4, struct.pack(">I", 2), 1),
        (Tag.ARCH, 6, b"x86_64\0", 1),
        (Tag.LICENSE, 6, b"GPLv3\0", 1),
        (Tag.SOURCERPM, 6, b"bash-5.1.8-1.cm2.src.rpm\0", 1),
        (Tag.DIRNAMES, 8, b"/usr/bin/\0", 1),
        (Tag.BASENAMES, 8, b"bash\0", 1),
        (Tag.DIRINDEXES, 4, struct.pack(">I", 0), 1),
        (Tag.FILEDIGESTS, 8, b"ab" * 32 + b"\0", 1),
        (Tag.FILEDIGESTALGO, 4, struct.pack(">I", 8), 1),
    ]
)


def test_rpm_header_from_its_specification() -> None:
    package = package_from_header(GOOD_HEADER)
    assert (package.name, package.evr, package.arch, package.source_rpm) == (
        "bash",
        "2:5.1.8-1.cm2",
        "x86_64",
        "bash-5.1.8-1.cm2.src.rpm",
    )
    assert [(f.path, f.digest) for f in package.files] == [("usr/bin/bash", "sha256:" + "ab" * 32)]


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\0\0\0\1",
        struct.pack(">II", 0xFFFFFF, 0),
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 6, 0, 1) + b"abcd",
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 4, 0, 2) + b"abcd",
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 99, 0, 1) + b"abcd",
        header([(Tag.NAME, 6, b"x\0", 1)]),
    ],
)
def test_rpm_header_refuses_corrupt_blobs(blob: bytes) -> None:
    with pytest.raises(RpmError):
        package_from_header(blob)


def test_rpm_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "rpmdb.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
        db.execute("INSERT INTO Packages (blob) VALUES (?)", (GOOD_HEADER,))
        db.commit()
    [package] = parse_sqlite_rpmdb(path.read_bytes())
    assert package.name == "bash"
    for bad in (b"", b"SQLite format 3\x00" + b"\xff" * 200, path.read_bytes()[:100] + b"\0" * 100):
        with pytest.raises(RpmError):
            parse_sqlite_rpmdb(bad)


_FUZZ = settings(max_examples=300, deadline=None)


@_FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_dpkg(data: bytes) -> None:
    with contextlib.suppress(DpkgError):
        parse_status(data)
    with contextlib.suppress(DpkgError):
        parse_md5sums(data)
    parse_list(data)


@_FUZZ
@given(
    st.lists(
        st.sampled_from(["Package: a", "Version: 1", "Status: x y installed", "Source: s (1)", " c", "", "#", "x"])
    )
)
def test_fuzz_dpkg_structured(lines: list[str]) -> None:
    with contextlib.suppress(DpkgError):
        parse_status("\n".join(lines).encode())


@_FUZZ
@given(
    st.binary(max_size=2048)
    | st.lists(st.sampled_from(["P:a", "V:1", "F:d", "R:f", "Z:Q1", "", "x", "C:"])).map(
        lambda x: "\n".join(x).encode()
    )
)
def test_fuzz_apk(data: bytes) -> None:
    with contextlib.suppress(ApkError):
        parse_installed(data)


@_FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_os_release_never_fails(data: bytes) -> None:
    parse_os_release(data)


@_FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_python(data: bytes) -> None:
    with contextlib.suppress(PythonMetadataError):
        parse_metadata(data)
    with contextlib.suppress(PythonMetadataError):
        parse_record(data, "site")
    parse_installed_files(data, "site/x.egg-info")


@_FUZZ
@given(st.binary(max_size=1024))
def test_fuzz_rpm_header_bytes(data: bytes) -> None:
    with contextlib.suppress(RpmError):
        parse_header(data)


@_FUZZ
@given(st.lists(st.tuples(st.integers(0, len(GOOD_HEADER) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzz_rpm_header_corrupted(flips: list[tuple[int, int]]) -> None:
    blob = bytearray(GOOD_HEADER)
    for offset, value in flips:
        blob[offset] = value
    with contextlib.suppress(RpmError):
        package_from_header(bytes(blob))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_rpm_sqlite(data: bytes) -> None:
    with contextlib.suppress(RpmError):
        parse_sqlite_rpmdb(b"SQLite format 3\x00" + data)


@cache
def mariner_rpmdb() -> bytes:
    """The real rpmdb.sqlite of the shared CBL-Mariner fixture, read from its tar without extracting."""
    with MARINER_ROOTFS.open("rb") as f:
        layer = read_layer(f, wants=lambda p: p == "var/lib/rpm/rpmdb.sqlite")
    return layer.contents["var/lib/rpm/rpmdb.sqlite"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 << 20), st.integers(0, 255)), min_size=1, max_size=16))
def test_fuzz_real_rpmdb_corrupted(flips: list[tuple[int, int]]) -> None:
    data = bytearray(mariner_rpmdb())
    for offset, value in flips:
        data[offset % len(data)] = value
    with contextlib.suppress(RpmError):
        parse_sqlite_rpmdb(bytes(data))
