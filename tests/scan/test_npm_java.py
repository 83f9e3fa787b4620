"""npm and Java parsers: the fixture's real package-lock.json (v3) and jar, plus case tables for the other lock
formats (v1, v2, yarn v1 and berry, pnpm v5/v6/v9) written in each tool's exact shape; nested jars and
corrupt archives."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pytest

from scan.shared import APP_LAYER
from trustyard.scan.analyzers import JavaArchiveAnalyzer, NpmAnalyzer
from trustyard.scan.errors import ScanError
from trustyard.scan.parsers.java import parse_archive, parse_manifest
from trustyard.scan.parsers.npm import parse_package_lock, parse_pnpm_lock, parse_yarn_lock


def member(name: str) -> bytes:
    """A file of the app layer."""
    with tarfile.open(APP_LAYER) as tar:
        found = tar.extractfile(f"./{name}")
        assert found is not None
        return found.read()


def test_real_package_lock_v3_lists_installed_and_optional_packages() -> None:
    found = {(p.name, p.version) for p in parse_package_lock(member("app/package-lock.json"))}
    assert {("lodash", "4.17.15"), ("minimist", "1.2.0"), ("follow-redirects", "1.16.3")} <= found
    assert ("@esbuild/linux-x64", "0.17.19") in found
    assert ("@esbuild/darwin-arm64", "0.17.19") in found  # optional, not installed: why installs win


def test_lock_v1_nests_dependencies() -> None:
    lock = {
        "lockfileVersion": 1,
        "dependencies": {"a": {"version": "1.0.0", "dependencies": {"b": {"version": "2.0.0", "dev": True}}}},
    }
    found = parse_package_lock(json.dumps(lock).encode())
    assert {(p.name, p.version, p.dev) for p in found} == {("a", "1.0.0", False), ("b", "2.0.0", True)}


def test_lock_v2_packages_skip_the_project_and_links() -> None:
    lock = {
        "lockfileVersion": 2,
        "packages": {
            "": {"name": "app", "version": "1.0.0"},
            "node_modules/@s/x": {"version": "3.0.0", "license": "ISC"},
            "node_modules/a/node_modules/b": {"version": "1.1.0"},
            "node_modules/w": {"resolved": "packages/w", "link": True},
        },
    }
    found = {(p.name, p.version) for p in parse_package_lock(json.dumps(lock).encode())}
    assert found == {("@s/x", "3.0.0"), ("b", "1.1.0")}


def test_yarn_v1_and_berry() -> None:
    v1 = b'# yarn lockfile v1\n\n"@babel/code@^7.0.0", "@babel/code@^7.1.0":\n  version "7.2.0"\n  resolved "x"\n\nlodash@^4.17.0:\n  version "4.17.21"\n  dependencies:\n    version "9"\n'  # noqa: E501 - verbatim lock-file text
    assert {(p.name, p.version) for p in parse_yarn_lock(v1)} == {("@babel/code", "7.2.0"), ("lodash", "4.17.21")}
    berry = b'__metadata:\n  version: 6\n\n"app@workspace:.":\n  version: 0.0.0-use.local\n\n"left-pad@npm:^1.3.0":\n  version: 1.3.0\n'  # noqa: E501 - verbatim lock-file text
    assert {(p.name, p.version) for p in parse_yarn_lock(berry)} == {("left-pad", "1.3.0")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            b"lockfileVersion: 5.4\npackages:\n  /lodash/4.17.21:\n    resolution: {x: y}\n  /@s/x/1.0.0_b@2.0.0:\n    dev: false\n",  # noqa: E501 - verbatim lock-file text
            {("lodash", "4.17.21"), ("@s/x", "1.0.0")},
        ),
        (
            b"lockfileVersion: '6.0'\npackages:\n  /lodash@4.17.21:\n    resolution: {x: y}\n  /@s/x@1.0.0(b@2.0.0):\n    dev: true\n",  # noqa: E501 - verbatim lock-file text
            {("lodash", "4.17.21"), ("@s/x", "1.0.0")},
        ),
        (
            b"lockfileVersion: '9.0'\npackages:\n  lodash@4.17.21:\n    resolution: {x: y}\nsnapshots:\n  lodash@4.17.21: {}\n  '@s/x@1.0.0(b@2.0.0)':\n    dependencies: {}\n",  # noqa: E501 - verbatim lock-file text
            {("lodash", "4.17.21"), ("@s/x", "1.0.0")},
        ),
    ],
)
def test_pnpm_lock_versions(text: bytes, expected: set[tuple[str, str]]) -> None:
    assert {(p.name, p.version) for p in parse_pnpm_lock(text)} == expected


def test_lock_is_read_only_where_nothing_is_installed() -> None:
    lock = json.dumps({"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "1.0.0"}}}).encode()
    installed = json.dumps({"name": "a", "version": "1.0.0"}).encode()
    analyzer = NpmAnalyzer()
    both = analyzer.analyze({"app/package-lock.json": lock, "app/node_modules/a/package.json": installed})
    assert [c.evidence for c in both] == ["app/node_modules/a/package.json"]
    alone = analyzer.analyze({"srv/package-lock.json": lock})
    assert [(c.name, c.purl) for c in alone] == [("a", "pkg:npm/a@1.0.0")]


def test_npm_wants() -> None:
    analyzer = NpmAnalyzer()
    assert analyzer.wants("app/node_modules/@s/x/package.json")
    assert analyzer.wants("app/node_modules/a/node_modules/b/package.json")
    assert not analyzer.wants("app/node_modules/a/lib/package.json")
    assert not analyzer.wants("app/node_modules/a/package-lock.json")
    assert analyzer.wants("app/yarn.lock")


def jar(entries: dict[str, bytes]) -> bytes:
    """A zip with these entries."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def test_real_jar_and_nested_jars_in_a_war() -> None:
    real = member("app/lib/commons-text-1.10.0.jar")
    inner = jar(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nImplementation-Title: inner\nImplementation-Version: 2.\n 1\n"  # noqa: E501 - verbatim lock-file text
        }
    )
    war = jar({"WEB-INF/lib/commons-text-1.10.0.jar": real, "WEB-INF/lib/inner.jar": inner})
    analyzer = JavaArchiveAnalyzer()
    summary = analyzer.extract("srv/app.war", war)
    assert summary is not None
    found = {(c.name, c.version, c.evidence) for c in analyzer.analyze({"srv/app.war": summary})}
    assert found == {
        ("org.apache.commons:commons-text", "1.10.0", "srv/app.war!/WEB-INF/lib/commons-text-1.10.0.jar"),
        ("inner", "2.1", "srv/app.war!/WEB-INF/lib/inner.jar"),
    }
    archives = parse_archive(real, "x.jar")
    assert archives[0].sha1 == __import__("hashlib").sha1(real).hexdigest()


def test_manifest_main_section_only() -> None:
    assert parse_manifest(b"A: 1\nB: lo\n ng\n\nName: x\nC: 3\n") == (("A", "1"), ("B", "long"))


@pytest.mark.parametrize("data", [b"not a zip", jar({"a": b"x"})[:-10]])
def test_corrupt_archives_raise_the_parser_error(data: bytes) -> None:
    with pytest.raises(ScanError):
        parse_archive(data, "bad.jar")
