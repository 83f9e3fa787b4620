"""Go build information read from real binaries: the fixture's esbuild (Go 1.20, module mode, inline strings)
and the Go programs Debian ships on this machine (Go 1.19, GOPATH builds: no main module), compared with
what ``go version -m`` printed for the fixture; plus truncated and hostile blocks."""

from __future__ import annotations

import contextlib
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scan.shared import APP_LAYER, expected
from trustyard.scan.analyzers import GoBinaryAnalyzer
from trustyard.scan.errors import ScanError
from trustyard.scan.parsers.gobinary import MAGIC, parse_modinfo, read_build_info

ESBUILD = "app/node_modules/@esbuild/linux-x64/bin/esbuild"


def esbuild() -> bytes:
    """The esbuild binary out of the app layer."""
    with tarfile.open(APP_LAYER) as tar:
        member = tar.extractfile(f"./{ESBUILD}")
        assert member is not None
        return member.read()


def test_esbuild_build_info_equals_go_version_m() -> None:
    truth = expected("app-layer/app-layer.packages.json")["go"][0]
    info = read_build_info(esbuild())
    assert info is not None
    assert info.go_version == truth["go_version"]
    assert info.path == truth["main_path"]
    assert info.main is not None and (info.main.path, info.main.version) == ("github.com/evanw/esbuild", "(devel)")
    assert [(d.path, d.version, d.sum) for d in info.deps] == [
        (d["path"], d["version"], d["sum"]) for d in truth["deps"]
    ]
    assert dict(info.settings) == truth["settings"]


@pytest.mark.parametrize("program", ["/usr/bin/runc", "/usr/bin/containerd", "/usr/bin/skopeo"])
def test_debian_go_programs(program: str) -> None:
    path = Path(program)  # runc, docker.io (containerd) and skopeo: Debian packages scripts/test installs
    assert path.exists(), f"{program} is missing: run scripts/test, which installs it"
    info = read_build_info(path.read_bytes())
    assert info is not None and info.go_version.startswith("go1.")
    assert info.path is not None and info.path.startswith("github.com/")


def test_other_files_are_not_go_binaries() -> None:
    assert read_build_info(Path("/bin/ls").read_bytes()) is None
    assert read_build_info(b"#!/bin/sh\necho hi\n") is None


def test_analyzer_reports_stdlib_main_and_deps_with_purls() -> None:
    analyzer = GoBinaryAnalyzer()
    summary = analyzer.extract(ESBUILD, esbuild())
    assert summary is not None and len(summary) < 2048
    found = {(c.name, c.version, c.purl) for c in analyzer.analyze({ESBUILD: summary})}
    assert found == {
        ("stdlib", "go1.20.4", "pkg:golang/stdlib@1.20.4"),
        ("github.com/evanw/esbuild", "(devel)", "pkg:golang/github.com/evanw/esbuild"),
        (
            "golang.org/x/sys",
            "v0.0.0-20220715151400-c0bba94af5f8",
            "pkg:golang/golang.org/x/sys@v0.0.0-20220715151400-c0bba94af5f8",
        ),
    }


def test_replacement_lines_replace_the_dependency() -> None:
    info = parse_modinfo("go1.21.0", "path\tx\nmod\tx\tv1.0.0\t\ndep\ta\tv1.0.0\th1:a\n=>\t../a\t(devel)\t\n")
    assert info.deps[0].replaced_by is not None and info.deps[0].replaced_by.path == "../a"


@pytest.mark.parametrize(
    "block",
    [
        b"\x7fELF" + b"\0" * 12 + MAGIC + b"\x08\x02" + b"\0" * 16 + b"\xff\xff\xff\xff\x0f",
        b"\x7fELF" + b"\0" * 12 + MAGIC + b"\x08\x00" + b"\xff" * 16,
        b"\x7fELF" + b"\0" * 12 + MAGIC + b"\x03\x00" + b"\0" * 16,
    ],
)
def test_hostile_blocks_raise_the_parser_error(block: bytes) -> None:
    with pytest.raises(ScanError):
        read_build_info(block)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_fuzz_never_raises_anything_but_scan_error(tail: bytes) -> None:
    with contextlib.suppress(ScanError):
        read_build_info(b"\x7fELF" + b"\0" * 12 + MAGIC + tail)
