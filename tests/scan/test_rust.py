"""Rust: a real binary built by cargo from real crates, its ``.dep-v0`` section, and the Cargo.lock cargo wrote.

The crates are Debian's (``librust-itoa-dev``, ``librust-memchr-dev``, fetched with ``apt-get download``):
the source of crates.io's itoa and memchr with their ``.cargo-checksum.json``, which cargo uses as a directory
source standing in for crates.io, offline. cargo builds a two-crate workspace on them and writes Cargo.lock.

cargo-auditable itself is not installable here (not packaged by Debian 12, crates.io unreachable), and Debian's
Rust binaries carry no ``.dep-v0`` (checked on ripgrep and fd-find). So, as the brief allows, the section is
added to the real binary the way cargo-auditable's output looks: the dependency graph from ``cargo metadata``
in the JSON format of cargo-auditable's ``cargo-auditable.schema.json``, zlib-compressed, added with
``objcopy --add-section .dep-v0=...``; the binary still runs afterwards.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scan.tools import need
from trustyard.scan.analyzers.rust import RustAnalyzer
from trustyard.scan.errors import PackageDatabaseError
from trustyard.scan.indexer import Indexer
from trustyard.scan.model import ComponentType
from trustyard.scan.parsers.rust import RustError, parse_audit_json, parse_cargo_lock, read_audit_data
from trustyard.scan.sources import open_source

CRATES = ("librust-itoa-dev", "librust-memchr-dev")
APP = """\
[package]
name = "trustyard-fixture"
version = "0.3.1"
edition = "2021"

[dependencies]
itoa = "1"
helper = { path = "../helper" }
"""
MAIN = """\
fn main() {
    let mut buffer = itoa::Buffer::new();
    println!("{} {}", buffer.format(helper::answer()), helper::found(b"cargo", b'g'));
}
"""
HELPER = """\
[package]
name = "helper"
version = "0.1.0"
edition = "2021"

[dependencies]
memchr = "2"
"""
HELPER_LIB = """\
pub fn answer() -> u64 { 42 }
pub fn found(haystack: &[u8], needle: u8) -> bool { memchr::memchr(needle, haystack).is_some() }
"""
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


def _run(*argv: str, cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(argv)}:\n{done.stderr[-3000:]}"
    return done.stdout


def auditable_json(metadata: dict[str, Any]) -> dict[str, Any]:
    """cargo-auditable's ``VersionInfo`` for a ``cargo metadata`` graph: packages sorted by name and version,
    dependencies as indexes, the workspace's binary the one root, crates.io sources as ``crates.io``, path
    crates as ``local``."""
    packages = {p["id"]: p for p in metadata["packages"]}
    order = sorted(packages, key=lambda i: (packages[i]["name"], packages[i]["version"]))
    index = {pid: n for n, pid in enumerate(order)}
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    out = []
    for pid in order:
        package = packages[pid]
        entry: dict[str, Any] = {
            "name": package["name"],
            "version": package["version"],
            "source": "crates.io" if package["source"] == CRATES_IO else "local",
        }
        deps = sorted(index[d["pkg"]] for d in nodes[pid]["deps"])
        if deps:
            entry["dependencies"] = deps
        if pid == metadata["resolve"]["root"]:
            entry["root"] = True
        out.append(entry)
    return {"packages": out}


class Project:
    """The built project: its binary with and without ``.dep-v0``, its Cargo.lock, the embedded JSON."""

    def __init__(self, root: Path) -> None:
        cargo = need("cargo", "cargo")
        objcopy = need("objcopy", "binutils")
        registry = root / "debian"
        for package in CRATES:
            _run(need("apt-get", "apt"), "download", package, cwd=root)
        for deb in root.glob("*.deb"):
            _run(need("dpkg-deb", "dpkg"), "-x", str(deb), str(registry), cwd=root)
        app, helper = root / "app", root / "helper"
        for folder, manifest, source, name in ((app, APP, MAIN, "main.rs"), (helper, HELPER, HELPER_LIB, "lib.rs")):
            (folder / "src").mkdir(parents=True)
            (folder / "Cargo.toml").write_text(manifest)
            (folder / "src" / name).write_text(source)
        (app / ".cargo").mkdir()
        (app / ".cargo" / "config.toml").write_text(
            '[source.crates-io]\nreplace-with = "debian"\n'
            f'[source.debian]\ndirectory = "{registry}/usr/share/cargo/registry"\n'
        )
        _run(cargo, "build", "--offline", "--release", "--target-dir", str(root / "target"), cwd=app)
        metadata = json.loads(_run(cargo, "metadata", "--offline", "--format-version", "1", cwd=app))
        self.plain = root / "target" / "release" / "trustyard-fixture"
        self.lock = (app / "Cargo.lock").read_bytes()
        self.embedded = auditable_json(metadata)
        section = root / "dep-v0.bin"
        section.write_bytes(zlib.compress(json.dumps(self.embedded).encode(), 9))
        self.auditable = root / "trustyard-fixture"
        _run(objcopy, "--add-section", f".dep-v0={section}", "--set-section-flags", ".dep-v0=noload,readonly",
             str(self.plain), str(self.auditable), cwd=root)  # fmt: skip
        self.checksums = {
            p.parent.name: json.loads(p.read_text())["package"]
            for p in (registry / "usr/share/cargo/registry").glob("*/.cargo-checksum.json")
        }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return Project(tmp_path_factory.mktemp("rust"))


def test_the_auditable_binary_is_real_and_still_runs(project: Project) -> None:
    assert subprocess.run([str(project.auditable)], capture_output=True, text=True, check=True).stdout == "42 true\n"
    assert read_audit_data(project.plain.read_bytes()) is None  # cargo alone embeds nothing


def test_crates_from_the_dep_v0_section(project: Project) -> None:
    analyzer = RustAnalyzer()
    path = "usr/local/bin/trustyard-fixture"
    assert analyzer.wants(path)
    summary = analyzer.extract(path, project.auditable.read_bytes())
    assert summary is not None
    found = analyzer.analyze({path: summary})
    expected = [(p["name"], p["version"], p["source"]) for p in project.embedded["packages"]]
    assert [(c.name, c.version, dict(c.extra)["source"]) for c in found] == expected
    assert {c.purl for c in found} >= {"pkg:cargo/itoa@1.0.1", "pkg:cargo/memchr@2.5.0"}
    assert all(c.type is ComponentType.CARGO and c.evidence == path for c in found)
    roots = [c for c in parse_audit_json(read_audit_data(project.auditable.read_bytes()) or b"") if c.root]
    assert [(r.name, r.version) for r in roots] == [("trustyard-fixture", "0.3.1")]


def test_crates_from_the_cargo_lock_cargo_wrote(project: Project) -> None:
    crates = {c.name: c for c in parse_cargo_lock(project.lock)}
    assert sorted(crates) == ["helper", "itoa", "memchr", "trustyard-fixture"]
    for name in ("itoa", "memchr"):
        crate = crates[name]
        assert crate.source == CRATES_IO and crate.from_crates_io
        assert crate.checksum == project.checksums[f"{name}-{crate.version}"]
    assert crates["helper"].source is None and crates["helper"].checksum is None


def test_an_image_with_both_gets_both(project: Project, tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "src/app").mkdir(parents=True)
    shutil.copy(project.auditable, root / "usr/local/bin/trustyard-fixture")
    (root / "src/app/Cargo.lock").write_bytes(project.lock)
    source = open_source(f"rootfs:{root}")
    try:
        report = Indexer().index(source)
    finally:
        source.close()
    cargo = [c for c in report.components if c.type is ComponentType.CARGO]
    assert {c.evidence for c in cargo} == {"usr/local/bin/trustyard-fixture", "src/app/Cargo.lock"}
    assert len(cargo) == 8


def test_cargo_lock_version_1_checksums_in_metadata() -> None:
    lock = b"""
[[package]]
name = "itoa"
version = "1.0.1"
source = "registry+https://github.com/rust-lang/crates.io-index"

[metadata]
"checksum itoa 1.0.1 (registry+https://github.com/rust-lang/crates.io-index)" = "1aab8fc3"
"""
    [crate] = parse_cargo_lock(lock)
    assert crate.checksum == "1aab8fc3"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "no 'packages'"),
        (b'{"packages": [{"name": "a", "version": "1", "source": "local"}]}', "0 root"),
        (b'{"packages": [{"name": "a", "version": "1", "source": "local", "root": true, "dependencies": [1]}]}',
         "indexes"),
        (b'{"packages": [{"name": "a", "version": "1", "source": "local", "root": true, "kind": "dev"}]}', "kind"),
        (b'{"packages": [{"version": "1", "source": "local", "root": true}]}', "'name'"),
    ],
)  # fmt: skip
def test_malformed_audit_data_is_refused(document: bytes, message: str) -> None:
    with pytest.raises(RustError, match=message):
        parse_audit_json(document)


def test_bad_sections_are_refused(project: Project, tmp_path: Path) -> None:
    objcopy = need("objcopy", "binutils")
    for name, payload, message in [
        ("garbage", b"\x00not zlib at all", "not zlib"),
        ("bomb", zlib.compress(b"{" + b" " * (9 << 20), 9), "inflates past"),
    ]:
        section, binary = tmp_path / f"{name}.bin", tmp_path / name
        section.write_bytes(payload)
        _run(objcopy, "--add-section", f".dep-v0={section}", str(project.plain), str(binary), cwd=tmp_path)
        with pytest.raises(RustError, match=message):
            read_audit_data(binary.read_bytes())


FUZZ = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 24), st.integers(1, 255)), min_size=1, max_size=8))
def test_fuzz_corrupted_binary(project: Project, flips: list[tuple[int, int]]) -> None:
    data = bytearray(project.auditable.read_bytes())
    for at, mask in flips:
        data[at % len(data)] ^= mask
    try:
        audit = read_audit_data(bytes(data))
        if audit is not None:
            parse_audit_json(audit)
    except PackageDatabaseError:
        pass


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 5) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["packages", "name", "version", "source", "kind", "dependencies", "root"]), inner, max_size=6),
    max_leaves=20,
)  # fmt: skip


@FUZZ
@given(document=JSON)
def test_fuzz_audit_json(document: object) -> None:
    try:
        crates = parse_audit_json(json.dumps(document).encode())
    except RustError:
        return
    assert all(c.name and c.version and c.source for c in crates)


@FUZZ
@given(text=st.text(max_size=400))
def test_fuzz_cargo_lock(text: str) -> None:
    with contextlib.suppress(RustError):
        parse_cargo_lock(("[[package]]\n" + text).encode())
