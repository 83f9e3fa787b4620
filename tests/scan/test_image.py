"""The merged image view: whiteouts, opaque directories, replacement, symlinks and hard links.

Layers are built in memory with ``scan.tars``; each case names the overlay rule it checks. A hypothesis
property checks that symlink resolution never leaves the image root whatever the links say.
"""

from __future__ import annotations

import hashlib
import io
import string

from hypothesis import given
from hypothesis import strategies as st

from scan.tars import Member, build_tar, directory, file, hardlink, symlink
from trustyard.oci.digest import Digest
from trustyard.scan.image import ImageView
from trustyard.scan.layers import EntryType, Layer, read_layer


def layer(*members: Member) -> Layer:
    """A layer read from a tar of ``members``, every file captured."""
    return read_layer(io.BytesIO(build_tar(list(members))), wants=lambda p: True)


def view(*layers: Layer) -> ImageView:
    """The view of ``layers`` applied bottom to top, each identified by its own digest."""
    result = ImageView()
    for item in layers:
        result.apply(item, item.digest)
    return result


def test_each_path_remembers_the_layer_that_last_wrote_it() -> None:
    lower = layer(file("a", b"1"), file("b", b"1"))
    upper = layer(file("b", b"2"))
    merged = view(lower, upper)
    assert merged.get("a") is not None and merged.get("a").layer == lower.digest  # type: ignore[union-attr]
    assert merged.get("b") is not None and merged.get("b").layer == upper.digest  # type: ignore[union-attr]
    assert merged.read("b") == b"2"


def test_a_whiteout_deletes_a_file_and_a_whole_directory() -> None:
    lower = layer(file("etc/motd"), directory("pkg"), file("pkg/a"), file("pkg/sub/b"), file("keep"))
    upper = layer(file("etc/.wh.motd"), file(".wh.pkg"))
    merged = view(lower, upper)
    assert sorted(f.path for f in merged.files()) == ["keep"]


def test_a_whiteout_applies_only_to_lower_layers() -> None:
    lower = layer(file("a", b"old"))
    upper = layer(file(".wh.a"), file("a", b"new"))
    assert view(lower, upper).read("a") == b"new"


def test_an_opaque_directory_hides_lower_contents_and_keeps_its_own() -> None:
    lower = layer(directory("m"), file("m/old-only"), file("m/both", b"old"), file("other"))
    upper = layer(directory("m"), file("m/.wh..wh..opq"), file("m/both", b"new"), file("m/new-only"))
    merged = view(lower, upper)
    assert sorted(f.path for f in merged.files()) == ["m", "m/both", "m/new-only", "other"]
    assert merged.read("m/both") == b"new"


def test_a_file_replacing_a_directory_takes_its_contents_along() -> None:
    merged = view(layer(directory("d"), file("d/x")), layer(file("d", b"now a file")))
    assert sorted(f.path for f in merged.files()) == ["d"]


def test_a_directory_written_again_keeps_its_children() -> None:
    merged = view(layer(directory("d"), file("d/x")), layer(directory("d")))
    assert sorted(f.path for f in merged.files()) == ["d", "d/x"]


def test_within_a_layer_the_last_write_wins_in_order() -> None:
    merged = view(layer(directory("a"), file("a/b"), file("a", b"file")))
    assert sorted(f.path for f in merged.files()) == ["a"]


def test_entries_under_a_symlinked_directory_land_at_its_target() -> None:
    merged = view(layer(directory("usr/lib"), symlink("lib", "usr/lib")), layer(file("lib/libz.so", b"z")))
    assert merged.get("usr/lib/libz.so") is not None
    assert merged.get("lib/libz.so") is None
    assert merged.read("lib/libz.so") == b"z"


def test_symlinks_resolve_inside_the_root() -> None:
    merged = view(
        layer(
            file("usr/lib/os-release", b"ID=x"),
            symlink("etc/os-release", "../usr/lib/os-release"),
            symlink("abs", "/usr/lib/os-release"),
            symlink("escape", "../../../../usr/lib/os-release"),
            symlink("loop1", "loop2"),
            symlink("loop2", "loop1"),
            symlink("dir", "usr"),
        )
    )
    assert merged.read("etc/os-release") == b"ID=x"
    assert merged.resolve("abs") == "usr/lib/os-release"
    assert merged.resolve("escape") == "usr/lib/os-release"
    assert merged.resolve("dir/lib/os-release") == "usr/lib/os-release"
    assert merged.resolve("loop1") is None
    assert merged.resolve("etc/os-release", follow_last=False) == "etc/os-release"
    found = merged.lookup("dir/lib/os-release")
    assert found is not None and found.entry.type is EntryType.FILE


def test_a_hard_link_keeps_the_content_its_target_had() -> None:
    lower = layer(file("bin/a", b"v1"))
    middle = layer(hardlink("bin/b", "bin/a"))
    upper = layer(file("bin/a", b"v2"))
    merged = view(lower, middle, upper)
    b = merged.get("bin/b")
    assert b is not None and b.entry.sha256 == hashlib.sha256(b"v1").hexdigest() and b.entry.size == 2
    assert merged.read("bin/b") == b"v1"
    assert [f.path for f in merged.regular_files()] == ["bin/a", "bin/b"]


def test_apply_reports_what_changed() -> None:
    result = ImageView()
    result.apply(layer(file("a"), file("d/x")), None)
    changed = result.apply(layer(file(".wh.d"), file("b")), Digest.of(b""))
    assert changed == {"d/x", "b"}


_PART = st.sampled_from(["..", ".", "a", "b", "c", ""])
_TARGET = st.lists(_PART, max_size=6).map("/".join) | st.lists(_PART, max_size=6).map(lambda p: "/" + "/".join(p))


@given(st.lists(st.tuples(st.sampled_from(list(string.ascii_lowercase[:3])), _TARGET), max_size=6), _TARGET)
def test_resolution_never_leaves_the_root(links: list[tuple[str, str]], path: str) -> None:
    merged = view(layer(*(symlink(name, target) for name, target in links)))
    resolved = merged.resolve(path)
    if resolved is not None:
        assert not resolved.startswith("/")
        assert ".." not in resolved.split("/")


def test_a_symlink_written_mid_layer_moves_the_entries_after_it() -> None:
    merged = view(
        layer(directory("usr"), directory("usr/lib"), file("lib/a", b"a")),
        layer(file("lib/b", b"b"), symlink("lib", "usr/lib"), file("lib/c", b"c")),
    )
    assert "lib/b" not in merged and "usr/lib/c" in merged and "lib/a" not in merged


def test_a_symlink_replaced_by_a_directory_mid_layer_stops_redirecting() -> None:
    merged = view(
        layer(directory("usr"), directory("usr/lib"), symlink("lib", "usr/lib")),
        layer(file("lib/a", b"a"), directory("lib"), file("lib/b", b"b")),
    )
    assert "usr/lib/a" in merged and "lib/b" in merged and "usr/lib/b" not in merged
