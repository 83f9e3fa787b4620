"""Golden tests: the inventory of every shared fixture equals its true package list exactly.

The expectations are the fixtures' own ``*.packages.json`` / ``*.expected.json`` (read from the real package
databases by the real tools, see ../shared/images/README.md). Each test compares complete records (name,
version, source package, arch, license, checksum as the fixture gives them) as sets, and the counts, so a
missing, extra or misread package fails.
"""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

from scan.shared import (
    ALPINE_ROOTFS,
    APP_LAYER,
    DEBIAN_ROOTFS,
    MARINER_ROOTFS,
    OCI_ALPINE_APP,
    OCI_ALPINE_APP_TAG,
    expected,
    report,
)
from trustyard.oci.digest import Digest
from trustyard.scan.indexer import IndexReport
from trustyard.scan.model import Component, ComponentType


def of_type(result: IndexReport, kind: ComponentType) -> list[Component]:
    """The components of one ecosystem."""
    return [c for c in result.components if c.type is kind]


def extra(component: Component, key: str) -> str | None:
    """One of a component's extra fields."""
    return dict(component.extra).get(key)


def apk_records(components: list[Component]) -> set[tuple[Any, ...]]:
    """apk components as the fixture's records: name, version, origin, arch, license, checksum, file count."""
    return {
        (c.name, c.version, c.source_name, c.arch, " ".join(c.licenses), extra(c, "checksum"), len(c.files))
        for c in components
    }


def expected_apk(packages: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """The fixture's apk records in the same shape."""
    return {
        (p["name"], p["version"], p["origin"], p["architecture"], p["license"], p["checksum"], p["file_count"])
        for p in packages
    }


def test_debian_bookworm_minbase_dpkg_inventory() -> None:
    truth = expected("debian-bookworm-minbase/debian-bookworm.packages.json")
    result = report(f"rootfs:{DEBIAN_ROOTFS}")
    debs = of_type(result, ComponentType.DEB)
    got = {(c.name, c.version, c.source_name, c.source_version, c.arch) for c in debs}
    want = {
        (p["name"], p["version"], p["source_name"], p["source_version"], p["architecture"]) for p in truth["packages"]
    }
    assert got == want
    assert len(debs) == truth["count"] == 88
    [os] = of_type(result, ComponentType.OS)
    assert (os.name, os.version, extra(os, "codename")) == ("debian", "12", "bookworm")
    bash = next(c for c in debs if c.name == "bash")
    assert bash.purl == "pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12"
    owned = {f.path: f.digest for f in bash.files}  # as dpkg records them: bin/bash, under bin -> usr/bin
    assert owned["bin/bash"] is not None and owned["bin/bash"].startswith("md5:")
    assert "usr/bin/bash" in {f.path for f in result.files}


def test_alpine_3_20_3_apk_inventory() -> None:
    truth = expected("alpine-3.20.3/alpine-3.20.3.packages.json")
    result = report(f"rootfs:{ALPINE_ROOTFS}")
    apks = of_type(result, ComponentType.APK)
    assert apk_records(apks) == expected_apk(truth["packages"])
    assert len(apks) == truth["count"] == 14
    [os] = of_type(result, ComponentType.OS)
    assert (os.name, os.version) == ("alpine", "3.20.3")
    busybox = next(c for c in apks if c.name == "busybox")
    assert busybox.purl == "pkg:apk/alpine/busybox@1.36.1-r29?arch=x86_64&distro=alpine-3.20.3"


def test_alpine_from_an_unpacked_directory_gives_the_same_inventory(tmp_path: Path) -> None:
    with tarfile.open(ALPINE_ROOTFS) as tar:
        tar.extractall(tmp_path, filter="tar")
    truth = expected("alpine-3.20.3/alpine-3.20.3.packages.json")
    result = report(f"rootfs:{tmp_path}")
    assert apk_records(of_type(result, ComponentType.APK)) == expected_apk(truth["packages"])
    assert all(c.layer is None for c in result.components)


def test_cbl_mariner_rpm_inventory() -> None:
    truth = expected("rpm-cbl-mariner-2.0-partial/cbl-mariner-2.0.packages.json")
    rpms = of_type(report(f"rootfs:{MARINER_ROOTFS}"), ComponentType.RPM)
    got = {(c.name, c.version, c.arch, extra(c, "source_rpm"), " ".join(c.licenses), extra(c, "vendor")) for c in rpms}
    want = {
        (
            p["name"],
            (f"{p['epoch']}:" if p["epoch"] is not None else "") + f"{p['version']}-{p['release']}",
            p["arch"],
            p["source_rpm"],
            p["license"],
            p["vendor"],
        )
        for p in truth["packages"]
    }
    assert got == want
    assert len(rpms) == truth["count"] == 129
    ca = next(c for c in rpms if c.name == "ca-certificates-base")
    assert ca.purl is not None and "epoch=1" in ca.purl
    bash = next(c for c in rpms if c.name == "bash")
    assert (bash.source_name, bash.source_version) == ("bash", "5.1.8-1.cm2")
    assert any(f.path == "bin/bash" and f.digest and f.digest.startswith("sha256:") for f in bash.files)


def python_records(components: list[Component]) -> set[tuple[str, str, str]]:
    """Python components as (name, version, metadata directory)."""
    return {(c.name, c.version, c.evidence.rpartition("/")[0] if "/" in c.evidence else c.evidence) for c in components}


def test_app_layer_python_inventory() -> None:
    truth = expected("app-layer/app-layer.packages.json")
    result = report(f"rootfs:{APP_LAYER}")
    pythons = of_type(result, ComponentType.PYPI)
    assert python_records(pythons) == {(p["name"], p["version"], p["metadata_dir"]) for p in truth["python"]}
    assert len(pythons) == len(truth["python"]) == 5
    yaml = next(c for c in pythons if c.name == "PyYAML")
    assert yaml.purl == "pkg:pypi/pyyaml@5.3"
    assert any(f.path.endswith("yaml/__init__.py") and f.digest for f in yaml.files)


def test_app_layer_npm_inventory() -> None:
    truth = expected("app-layer/app-layer.packages.json")["npm"]
    npm = of_type(report(f"rootfs:{APP_LAYER}"), ComponentType.NPM)
    assert {(c.name, c.version, c.licenses, c.evidence) for c in npm} == {
        (p["name"], p["version"], (p["license"],), p["path"]) for p in truth
    }
    assert len(npm) == len(truth) == 6


def test_app_layer_java_inventory() -> None:
    [truth] = expected("app-layer/app-layer.packages.json")["java"]
    [jar] = of_type(report(f"rootfs:{APP_LAYER}"), ComponentType.MAVEN)
    [pom] = truth["pom_properties"]
    coordinates = f"{pom['groupId']}:{pom['artifactId']}"
    assert (jar.name, jar.version, jar.evidence) == (coordinates, pom["version"], truth["path"])
    assert jar.purl == "pkg:maven/org.apache.commons/commons-text@1.10.0"
    assert extra(jar, "sha1") is not None


def test_app_layer_go_inventory() -> None:
    [truth] = expected("app-layer/app-layer.packages.json")["go"]
    go = of_type(report(f"rootfs:{APP_LAYER}"), ComponentType.GOLANG)
    assert {c.evidence for c in go} == {truth["path"]}
    want = {("stdlib", truth["go_version"]), (truth["main_module"]["path"], truth["main_module"]["version"])}
    want |= {(d["path"], d["version"]) for d in truth["deps"]}
    assert {(c.name, c.version) for c in go} == want
    assert len(go) == len(want) == 3


def test_oci_alpine_app_final_inventory_loses_what_the_whiteout_layer_deletes() -> None:
    truth = expected("oci-alpine-app.expected.json")
    result = report(f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}")
    digests = [Digest.parse(layer["digest"]) for layer in truth["layers"]]
    assert str(result.manifest_digest) == truth["manifest_digest"]
    final = truth["final"]
    apks = of_type(result, ComponentType.APK)
    assert apk_records(apks) == expected_apk(final["apk"])
    assert len(apks) == len(final["apk"]) == 14
    assert {c.layer for c in apks} == {digests[0]}
    pythons = of_type(result, ComponentType.PYPI)
    assert len(pythons) == len(final["python"]) == 4
    assert python_records(pythons) == {(p["name"], p["version"], p["metadata_dir"]) for p in final["python"]}
    assert not {c.name for c in pythons} & set(final["absent"]["python"])
    assert {c.layer for c in pythons} == {digests[1]}
    paths = {f.path for f in result.files}
    assert not paths & set(final["absent"]["files"])
    assert not any("itsdangerous" in p for p in paths)
    files = expected("oci-alpine-app.files.json")
    assert {f.path: f.entry.sha256 for f in result.files} == {f["path"]: f["sha256"] for f in files["files"]}
    assert len(result.files) == files["count"] == 1349


def test_oci_alpine_app_per_layer_inventory() -> None:
    truth = expected("oci-alpine-app.expected.json")
    result = report(f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}")
    per_layer = [Counter(c.type.value for c in layer.components) for layer in result.layers]
    assert per_layer == [
        Counter({"apk": 14, "operating-system": 1}),
        Counter({"pypi": 5, "npm": 6, "golang": 3, "maven": 1}),
        Counter({"npm": 1}),  # minimist 1.2.6, which replaces 1.2.0
    ]
    first = {(c.name, c.version) for c in result.layers[1].components if c.type is ComponentType.PYPI}
    assert first == {(p["name"], p["version"]) for p in truth["layers"][1]["python"]}


def test_oci_alpine_app_minimist_is_replaced_by_the_opaque_directory() -> None:
    result = report(f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}")
    assert {c.version for c in result.components if c.name == "minimist"} == {"1.2.6"}
