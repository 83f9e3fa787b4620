"""Fuzz tests for the parsers of untrusted application files: npm lock files, Java archives, Python lock files.

Each parser may return records or raise its own ``PackageDatabaseError`` subclass; anything else (a
``KeyError``, a ``RecursionError``, a zipfile ``RuntimeError``) is a bug that would surface as a traceback or
kill a layer's analysis. Inputs are random bytes, structured documents made of the format's own keys, and
byte flips of real files (the shared app layer's jar, package-lock.json and the lock files built here).
"""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from collections.abc import Callable
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from scan.shared import APP_LAYER
from trustyard.scan.layers import read_layer
from trustyard.scan.parsers.java import JavaArchiveError, parse_archive
from trustyard.scan.parsers.npm import (
    NpmError,
    parse_package_json,
    parse_package_lock,
    parse_pnpm_lock,
    parse_yarn_lock,
)
from trustyard.scan.parsers.pylock import (
    PythonLockError,
    parse_pipfile_lock,
    parse_poetry_lock,
    parse_requirements,
    parse_uv_lock,
)

FUZZ = settings(max_examples=300, deadline=2000)
JAR = "app/lib/commons-text-1.10.0.jar"
LOCK = "app/package-lock.json"


@cache
def app_files() -> dict[str, bytes]:
    """The real jar and package-lock.json of the shared application layer."""
    with APP_LAYER.open("rb") as f:
        layer = read_layer(f, wants=lambda p: p in (JAR, LOCK))
    return {p: layer.contents[p] for p in (JAR, LOCK)}


def _only(error: type[Exception], parse: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(error):
        parse(data)


def _flipped(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, mask in flips:
        out[at % len(out)] ^= mask
    return bytes(out)


FLIPS = st.lists(st.tuples(st.integers(0, 1 << 24), st.integers(1, 255)), min_size=1, max_size=10)


def _json_of(keys: list[str]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from(["", "1.0.0", "==1.2", "x"])
    return st.recursive(
        scalars | st.text(max_size=6),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), inner, max_size=5)
        ),
        max_leaves=25,
    )


# --- npm -----------------------------------------------------------------------------------------------------

NPM_KEYS = ["lockfileVersion", "packages", "dependencies", "", "node_modules/a", "node_modules/@s/b/node_modules/c",
            "name", "version", "dev", "link", "license", "licenses", "type"]  # fmt: skip


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_npm_bytes(data: bytes) -> None:
    for parse in (parse_package_lock, parse_package_json, parse_yarn_lock, parse_pnpm_lock):
        _only(NpmError, parse, data)


@FUZZ
@given(_json_of(NPM_KEYS))
def test_fuzz_package_lock_structures(document: Any) -> None:
    data = json.dumps(document).encode()
    _only(NpmError, parse_package_lock, data)
    _only(NpmError, parse_package_json, data)


@FUZZ
@given(FLIPS)
def test_fuzz_real_package_lock_corrupted(flips: list[tuple[int, int]]) -> None:
    _only(NpmError, parse_package_lock, _flipped(app_files()[LOCK], flips))


YARN_LINES = ['"@babel/core@^7.0.0", "@babel/core@^7.1.0":', "lodash@^4.17.15:", '  version "4.17.21"',
              "  version: 1.2.3", "    version nested", "__metadata:", '"app@workspace:.":', "# yarn lockfile v1",
              "", "  resolved \"https://x\"", "lodash@npm:4.17.21:", "@:", "  version"]  # fmt: skip
PNPM_LINES = ["lockfileVersion: '9.0'", "packages:", "snapshots:", "importers:", "  /lodash@4.17.21:",
              "  lodash@4.17.21:", "  '@scope/pkg@1.0.0(react@18.0.0)':", "    resolution: {integrity: x}",
              "  /@:", "  :", "   deep@1.0.0:", ""]  # fmt: skip


@FUZZ
@given(st.lists(st.sampled_from(YARN_LINES) | st.text(max_size=20), max_size=30))
def test_fuzz_yarn_lock(lines: list[str]) -> None:
    _only(NpmError, parse_yarn_lock, "\n".join(lines).encode())


@FUZZ
@given(st.lists(st.sampled_from(PNPM_LINES) | st.text(max_size=20), max_size=30))
def test_fuzz_pnpm_lock(lines: list[str]) -> None:
    _only(NpmError, parse_pnpm_lock, "\n".join(lines).encode())


# --- Java archives ---------------------------------------------------------------------------------------------

MEMBERS = ["META-INF/maven/g/a/pom.properties", "META-INF/MANIFEST.MF", "WEB-INF/lib/inner.jar", "lib/x.war",
           "a.class", "META-INF/maven/pom.properties", "dir/"]  # fmt: skip
PROPERTIES = st.lists(st.sampled_from(["groupId=g", "artifactId=a", "version=1", "version:", "#c", "=x", "k"])
                      | st.text(max_size=10), max_size=6).map(lambda lines: "\n".join(lines).encode())  # fmt: skip


def _zip(members: list[tuple[str, bytes, bool]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content, deflate in {m[0]: m for m in members}.values():  # zipfile warns of duplicate names
            archive.writestr(name, content, zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)
    return buffer.getvalue()


ARCHIVES = st.recursive(
    st.lists(st.tuples(st.sampled_from(MEMBERS), PROPERTIES | st.binary(max_size=64), st.booleans()), max_size=5).map(
        _zip
    ),
    lambda inner: st.lists(st.tuples(st.sampled_from(MEMBERS), inner, st.booleans()), min_size=1, max_size=3).map(_zip),
    max_leaves=6,
)


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_java_bytes(data: bytes) -> None:
    _only(JavaArchiveError, lambda d: parse_archive(d, "x.jar"), b"PK\x03\x04" + data)
    _only(JavaArchiveError, lambda d: parse_archive(d, "x.jar"), data)


@FUZZ
@given(ARCHIVES, st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), max_size=4))
def test_fuzz_nested_archives(data: bytes, flips: list[tuple[int, int]]) -> None:
    _only(JavaArchiveError, lambda d: parse_archive(d, "x.war"), _flipped(data, flips) if flips else data)


@FUZZ
@given(FLIPS)
def test_fuzz_real_jar_corrupted(flips: list[tuple[int, int]]) -> None:
    _only(JavaArchiveError, lambda d: parse_archive(d, JAR), _flipped(app_files()[JAR], flips))


# --- Python lock files -----------------------------------------------------------------------------------------

TOML_LINES = ["[[package]]", 'name = "requests"', 'version = "2.19.1"', 'category = "dev"', "version = 3",
              'source = { editable = "." }', 'source = { registry = "https://pypi.org/simple" }', "[metadata]",
              "package = 1", "[package]", 'name = """x"""', "a = [[[[1]]]]", "b = {c = {d = {e = 1}}}",
              "[[package.dependencies]]", ""]  # fmt: skip
REQUIREMENT_LINES = ["requests==2.19.1", "Django[argon2]===4.2 ; python_version>'3'", "-r other.txt",
                     "urllib3==1.* ", "pkg==1.0 --hash=sha256:ab", "# comment", "x==1 \\", "  ==2", "a[b==1",
                     "git+https://x/y.git#egg=y", ""]  # fmt: skip


@FUZZ
@given(st.lists(st.sampled_from(TOML_LINES) | st.text(max_size=20), max_size=25))
def test_fuzz_poetry_and_uv_locks(lines: list[str]) -> None:
    data = "\n".join(lines).encode()
    _only(PythonLockError, parse_poetry_lock, data)
    _only(PythonLockError, parse_uv_lock, data)


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_python_lock_bytes(data: bytes) -> None:
    for parse in (parse_poetry_lock, parse_uv_lock, parse_pipfile_lock, parse_requirements):
        _only(PythonLockError, parse, data)


@FUZZ
@given(_json_of(["default", "develop", "_meta", "version", "requests", "hashes", "git"]))
def test_fuzz_pipfile_lock_structures(document: Any) -> None:
    _only(PythonLockError, parse_pipfile_lock, json.dumps(document).encode())


@FUZZ
@given(st.lists(st.sampled_from(REQUIREMENT_LINES) | st.text(max_size=30), max_size=25))
def test_fuzz_requirements(lines: list[str]) -> None:
    for package in parse_requirements("\n".join(lines).encode()):
        assert package.name and package.version and "*" not in package.version


def test_deeply_nested_documents_are_refused_not_crashed() -> None:
    deep_json = b"[" * 100_000 + b"]" * 100_000
    deep_toml = b"a = " + b"[" * 100_000 + b"]" * 100_000
    _only(NpmError, parse_package_lock, deep_json)
    _only(PythonLockError, parse_pipfile_lock, deep_json)
    _only(PythonLockError, parse_poetry_lock, deep_toml)
    _only(PythonLockError, parse_uv_lock, deep_toml)
