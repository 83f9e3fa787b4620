"""The layer walker: compression by magic bytes, typed entries, hashes, captures, whiteouts and hostile tars.

Case tables for what a layer may carry (absolute and climbing paths, devices, duplicates, whiteouts, hard
links) and for every limit; hypothesis properties: any bytes either read as a layer or raise ``LayerError``
(never another exception), and a normalised path never leaves the image root.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scan.tars import Member, build_tar, compress, directory, file, hardlink, symlink
from trustyard.scan.errors import DecompressionBombError, LayerError, LayerLimitError
from trustyard.scan.layers import (
    Compression,
    EntryType,
    LayerLimits,
    LayerStream,
    detect_compression,
    normalize_path,
    read_layer,
)

SAMPLE = [
    directory("etc"),
    file("etc/os-release", b"ID=test\n"),
    file("usr/bin/su", b"\x7fELF", mode=0o4755),
    symlink("bin", "usr/bin"),
    hardlink("usr/bin/su2", "usr/bin/su"),
]


@pytest.mark.parametrize("kind", ["none", "gzip", "zstd", "xz", "bzip2"])
def test_every_compression_reads_the_same_entries_and_digests_the_blob(kind: str) -> None:
    blob = compress(build_tar(SAMPLE), kind)
    layer = read_layer(io.BytesIO(blob), wants=lambda p: p == "etc/os-release")
    assert layer.compression == Compression(kind)
    assert str(layer.digest) == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert layer.compressed_size == len(blob)
    assert list(layer.entries) == ["etc", "etc/os-release", "usr/bin/su", "bin", "usr/bin/su2"]
    assert layer.contents == {"etc/os-release": b"ID=test\n"}
    su = layer.entries["usr/bin/su"]
    assert su.sha256 == hashlib.sha256(b"\x7fELF").hexdigest()
    assert su.is_setuid and not su.is_setgid and su.size == 4
    link = layer.entries["usr/bin/su2"]
    assert (link.type, link.link_target, link.sha256) == (EntryType.HARDLINK, "usr/bin/su", su.sha256)
    assert layer.entries["bin"].link_target == "usr/bin"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x1f\x8b\x08\x00", Compression.GZIP),
        (b"\x28\xb5\x2f\xfd\x00", Compression.ZSTD),
        (b"\xfd7zXZ\x00", Compression.XZ),
        (b"BZh9", Compression.BZIP2),
        (b"etc/\x00", Compression.NONE),
        (b"", Compression.NONE),
    ],
)
def test_compression_is_detected_by_magic(head: bytes, kind: Compression) -> None:
    assert detect_compression(head) is kind


@pytest.mark.parametrize(
    ("name", "path", "escaped"),
    [
        ("etc/passwd", "etc/passwd", False),
        ("/etc/passwd", "etc/passwd", False),
        ("./etc//passwd", "etc/passwd", False),
        ("etc/x/../passwd", "etc/passwd", False),
        ("../../etc/passwd", "etc/passwd", True),
        ("etc/../../passwd", "passwd", True),
        ("./", "", False),
        ("/", "", False),
    ],
)
def test_paths_are_normalised_inside_the_root(name: str, path: str, escaped: bool) -> None:
    assert normalize_path(name) == (path, escaped)


def test_hostile_names_stay_inside_the_root_with_a_warning() -> None:
    blob = build_tar([file("/abs/file", b"a"), file("../../../etc/shadow", b"b"), Member("./", kind=tarfile.DIRTYPE)])
    layer = read_layer(io.BytesIO(blob))
    assert list(layer.entries) == ["abs/file", "etc/shadow"]
    assert any("climbs above the image root" in w for w in layer.warnings)


def test_device_files_are_skipped_with_a_warning() -> None:
    blob = build_tar([Member("dev/null", kind=tarfile.CHRTYPE), Member("dev/sda", kind=tarfile.BLKTYPE), file("a")])
    layer = read_layer(io.BytesIO(blob))
    assert list(layer.entries) == ["a"]
    assert layer.warnings == ("dev/null: device file skipped", "dev/sda: device file skipped")


def test_fifo_is_kept_without_content() -> None:
    layer = read_layer(io.BytesIO(build_tar([Member("run/pipe", kind=tarfile.FIFOTYPE)])))
    assert layer.entries["run/pipe"].type is EntryType.FIFO


def test_duplicate_entries_last_wins_and_moves_to_its_last_position() -> None:
    blob = build_tar([file("a", b"one"), file("b"), file("a", b"two")])
    layer = read_layer(io.BytesIO(blob), wants=lambda p: True)
    assert list(layer.entries) == ["b", "a"]
    assert layer.contents["a"] == b"two"
    assert layer.entries["a"].sha256 == hashlib.sha256(b"two").hexdigest()


def test_whiteouts_and_opaque_markers_are_collected_not_entries() -> None:
    blob = build_tar(
        [file("etc/.wh.motd"), file(".wh.top"), file("app/mod/.wh..wh..opq"), file("app/.wh..wh.plnk"), file("x")]
    )
    layer = read_layer(io.BytesIO(blob))
    assert layer.whiteouts == {"etc/motd", "top"}
    assert layer.opaque_dirs == {"app/mod"}
    assert list(layer.entries) == ["x"]


def test_an_empty_layer_has_no_entries() -> None:
    for blob in (b"", b"\0" * 1024, compress(b"\0" * 1024, "gzip")):
        layer = read_layer(io.BytesIO(blob))
        assert layer.entries == {}


def test_captures_past_the_limit_are_hashed_but_not_kept() -> None:
    blob = build_tar([file("big", b"x" * 100)])
    layer = read_layer(io.BytesIO(blob), wants=lambda p: True, limits=LayerLimits(max_capture_size=10))
    assert layer.contents == {}
    assert layer.entries["big"].sha256 == hashlib.sha256(b"x" * 100).hexdigest()
    assert "past the capture limit" in layer.warnings[0]


@pytest.mark.parametrize(
    ("limits", "members"),
    [
        (LayerLimits(max_entry_size=10), [file("a", b"x" * 11)]),
        (LayerLimits(max_entries=2), [file("a"), file("b"), file("c")]),
        (LayerLimits(max_path_length=10), [file("a" * 11)]),
        (LayerLimits(max_total_size=4096), [file("a", b"x" * 8192)]),
    ],
)
def test_limits_raise_a_limit_error(limits: LayerLimits, members: list[Member]) -> None:
    with pytest.raises(LayerLimitError):
        read_layer(io.BytesIO(build_tar(members)), limits=limits)


@pytest.mark.parametrize("kind", ["gzip", "zstd", "xz", "bzip2"])
def test_decompression_bombs_are_refused(kind: str) -> None:
    blob = compress(build_tar([file("zeros", b"\0" * (4 << 20))]), kind)
    limits = LayerLimits(max_ratio=20, ratio_floor=1 << 20)
    with pytest.raises(DecompressionBombError, match="expands"):
        read_layer(io.BytesIO(blob), limits=limits)


def test_an_uncompressed_layer_has_no_ratio_to_check() -> None:
    blob = build_tar([file("zeros", b"\0" * (4 << 20))])
    read_layer(io.BytesIO(blob), limits=LayerLimits(max_ratio=1, ratio_floor=1024))


@pytest.mark.parametrize(
    "blob",
    [
        b"this is not a tar archive at all, just text" * 20,
        compress(b"not a tar" * 100, "gzip"),
        compress(build_tar(SAMPLE), "gzip")[:-20],
        compress(build_tar(SAMPLE), "zstd")[:40],
        b"\x1f\x8b\x08\x00garbage",
        build_tar([file("a", b"x" * 5000)])[:2048],
    ],
)
def test_broken_layers_raise_layer_error(blob: bytes) -> None:
    with pytest.raises(LayerError):
        read_layer(io.BytesIO(blob))


def test_a_stream_reads_once() -> None:
    walk = LayerStream(io.BytesIO(build_tar([file("a")])))
    assert [e.path for e, _ in walk] == ["a"]
    with pytest.raises(LayerError):
        list(walk)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_read_or_raise_layer_error(blob: bytes) -> None:
    with contextlib.suppress(LayerError):
        read_layer(io.BytesIO(blob), wants=lambda p: True)


_VALID = build_tar([*SAMPLE, file("etc/.wh.motd"), Member("dev/null", kind=tarfile.CHRTYPE)])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_tars_read_or_raise_layer_error(flips: list[tuple[int, int]]) -> None:
    blob = bytearray(_VALID)
    for offset, value in flips:
        blob[offset] = value
    for kind in ("none", "gzip"):
        try:
            layer = read_layer(io.BytesIO(compress(bytes(blob), kind)), wants=lambda p: True)
        except LayerError:
            continue
        for path in layer.entries:
            assert path and not path.startswith("/") and ".." not in path.split("/")


_NAME = st.lists(st.sampled_from(["..", ".", "", "a", "b", "/", ".wh.x", "é"]), max_size=8).map("/".join)


@given(_NAME)
def test_normalised_paths_never_leave_the_root(name: str) -> None:
    path, _ = normalize_path(name)
    parts = path.split("/")
    assert not path.startswith("/")
    assert path == "" or all(p not in ("", ".", "..") for p in parts)
