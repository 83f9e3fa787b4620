"""Bills of materials of the shared fixtures: valid by each format's own tools, and holding the true inventories.

CycloneDX documents are checked with cyclonedx-python-lib's strict JSON-schema validator (1.6); SPDX
documents are read back from the JSON we wrote by spdx-tools' parser and validated by its validator, so
what is tested is the text a consumer gets. The inventories are the fixtures' ``*.packages.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from scan.shared import (
    ALPINE_ROOTFS,
    DEBIAN_ROOTFS,
    MARINER_ROOTFS,
    OCI_ALPINE_APP,
    OCI_ALPINE_APP_TAG,
    expected,
    report,
)
from trustyard.scan.cpe import cpe23, os_package_cpe, upstream_version
from trustyard.scan.sbom import SbomFormat, render
from trustyard.scan.sbom.cyclonedx import validate

DEBIAN = f"rootfs:{DEBIAN_ROOTFS}"
ALPINE = f"rootfs:{ALPINE_ROOTFS}"
MARINER = f"rootfs:{MARINER_ROOTFS}"
OCI = f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}"


def truth(image: str) -> set[tuple[str, str, str]]:
    """The fixture's true inventory as (purl type, name, version)."""
    if image == DEBIAN:
        packages = expected("debian-bookworm-minbase/debian-bookworm.packages.json")["packages"]
        return {("deb", p["name"], p["version"]) for p in packages}
    if image == ALPINE:
        packages = expected("alpine-3.20.3/alpine-3.20.3.packages.json")["packages"]
        return {("apk", p["name"], p["version"]) for p in packages}
    if image == MARINER:
        packages = expected("rpm-cbl-mariner-2.0-partial/cbl-mariner-2.0.packages.json")["packages"]
        return {
            ("rpm", p["name"], (f"{p['epoch']}:" if p["epoch"] is not None else "") + f"{p['version']}-{p['release']}")
            for p in packages
        }
    final = expected("oci-alpine-app.expected.json")["final"]
    return {("apk", p["name"], p["version"]) for p in final["apk"]} | {
        ("pypi", p["name"], p["version"]) for p in final["python"]
    }


def purl_type(purl: str) -> str:
    """``pkg:TYPE/...`` -> TYPE."""
    return purl.removeprefix("pkg:").partition("/")[0]


@pytest.mark.parametrize("image", [DEBIAN, ALPINE, MARINER, OCI])
def test_cyclonedx_document_validates_and_holds_the_inventory(image: str) -> None:
    text = render(report(image), SbomFormat.CYCLONEDX_JSON)
    validate(text)
    document = json.loads(text)
    assert document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["type"] == "container"
    packages = {
        (purl_type(c["purl"]), c["name"], c["version"])
        for c in document["components"]
        if c["type"] == "library" and purl_type(c["purl"]) in ("deb", "apk", "rpm", "pypi")
    }
    assert packages == truth(image)
    [dependency] = [d for d in document["dependencies"] if d["ref"] == "image"]
    assert len(dependency["dependsOn"]) == len(document["components"])


@pytest.mark.parametrize("image", [DEBIAN, ALPINE, MARINER, OCI])
def test_spdx_document_reads_back_valid_and_holds_the_inventory(image: str, tmp_path: Path) -> None:
    path = tmp_path / "sbom.spdx.json"
    path.write_text(render(report(image), SbomFormat.SPDX_JSON))
    document = parse_file(str(path))
    assert validate_full_spdx_document(document, "SPDX-2.3") == []
    purls = {
        p.name: ref.locator for p in document.packages for ref in p.external_references if ref.reference_type == "purl"
    }
    packages = {
        (purl_type(purls[p.name]), p.name, p.version)
        for p in document.packages
        if p.name in purls and purl_type(purls[p.name]) in ("deb", "apk", "rpm", "pypi")
    }
    assert packages == truth(image)
    contained = [r for r in document.relationships if r.relationship_type.name == "CONTAINS"]
    assert len(contained) == len(document.packages) - 1


def component(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The CycloneDX component called ``name``."""
    return next(c for c in document["components"] if c["name"] == name)


def test_cyclonedx_component_carries_cpe_licenses_layer_paths_and_source() -> None:
    result = report(OCI)
    document = json.loads(render(result, SbomFormat.CYCLONEDX_JSON))
    ssl = component(document, "libssl3")
    properties = {p["name"]: p["value"] for p in ssl["properties"]}
    assert properties["trustyard:source-name"] == "openssl"
    assert properties["trustyard:layer"] == str(result.layers[0].digest)
    assert ssl["cpe"] == "cpe:2.3:a:openssl:openssl:3.3.2:*:*:*:*:*:*:*"
    assert ssl["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    assert {"location": "lib/apk/db/installed"} in ssl["evidence"]["occurrences"]
    requests = component(document, "requests")
    assert requests["purl"] == "pkg:pypi/requests@2.19.1"
    assert "cpe" not in requests
    assert {p["name"]: p["value"] for p in requests["properties"]}["trustyard:layer"] == str(result.layers[1].digest)


def test_spdx_package_keeps_a_non_spdx_license_as_a_comment() -> None:
    document = json.loads(render(report(MARINER), SbomFormat.SPDX_JSON))
    bash = next(p for p in document["packages"] if p["name"] == "bash")
    assert bash["licenseDeclared"] == "NOASSERTION"
    assert bash["licenseComments"] == "declared license, not an SPDX expression: GPLv3"
    assert bash["sourceInfo"] == "built from source package bash 5.1.8-1.cm2"
    refs = {r["referenceType"]: r["referenceLocator"] for r in bash["externalRefs"]}
    assert refs["cpe23Type"] == "cpe:2.3:a:bash:bash:5.1.8:*:*:*:*:*:*:*"


def test_native_json_has_every_component_and_file() -> None:
    result = report(OCI)
    document = json.loads(render(result, SbomFormat.JSON))
    assert len(document["components"]) == len(result.components)
    assert len(document["files"]) == 1349
    busybox = next(f for f in document["files"] if f["path"] == "bin/busybox")
    assert busybox["mode"] == "0755" and len(busybox["sha256"]) == 64 and busybox["setuid"] is False
    assert [layer["cached"] for layer in document["layers"]] == [False, False, False]


@pytest.mark.parametrize(
    ("version", "scheme", "upstream"),
    [
        ("5.2.15-2+b13", "deb", "5.2.15"),
        ("1:2.38.1-5+deb12u1", "deb", "2.38.1"),
        ("1.0", "deb", "1.0"),
        ("1.36.1-r29", "apk", "1.36.1"),
        ("5.1.8-1.cm2", "rpm", "5.1.8"),
    ],
)
def test_upstream_version(version: str, scheme: str, upstream: str) -> None:
    assert upstream_version(version, scheme) == upstream


def test_cpe_escapes_and_refuses_empty_parts() -> None:
    assert cpe23("GNU", "gcc", "12.2.0+x") == "cpe:2.3:a:gnu:gcc:12.2.0\\+x:*:*:*:*:*:*:*"
    assert cpe23("", "x", "1") is None
    assert os_package_cpe(None, "1", "deb") is None
