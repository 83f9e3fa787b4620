"""Golden tests of the matcher on the shared images and the shared advisory data (``../shared``).

The store holds the real OSV data of PyPI, npm, Go and crates.io and Alpine's real v3.10 secdb. Two
distributions have no current data in the shared folder, so this test writes advisories for the fixture
packages **in the source's real published format** and says so where it does:
- Debian bookworm (the tracker mirror predates bookworm): a Debian Security Tracker JSON dump whose
  entries are the CVEs and fixed versions of ``fixtures/expectations.json`` (read from the bookworm-security
  changelogs), plus a few entries of every tracker state for packages of the minbase image;
- Alpine 3.20 (the secdb mirror stops at v3.11): a secdb ``v3.20-main.json`` with secfixes for the
  minirootfs' packages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scan.shared import ALPINE_ROOTFS, APP_LAYER, DEBIAN_ROOTFS, OCI_ALPINE_APP, OCI_ALPINE_APP_TAG, report
from scan.vulndb.shared import ALPINE, OSV, expectations, needs_shared
from trustyard.scan.findings import Finding, FindingStatus, Level, level_of_word, overall, rate_vector
from trustyard.scan.matcher import Matcher, MatchResult
from trustyard.scan.model import Component, ComponentType, PackageFile
from trustyard.scan.versions import scheme_for
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.store import VulnerabilityStore

pytestmark = needs_shared

# the rows with bookworm-security changelogs (the python-urllib3 row is the backport case, tested elsewhere)
DEBIAN_ROWS = [r for r in expectations()["debian"] if "changelog_entries" in r]


def debian_bookworm_tracker() -> dict[str, Any]:
    """WRITTEN DATA, Debian tracker JSON format: the bookworm fixes of expectations.json, and one entry per state."""
    dump: dict[str, Any] = {}
    dpkg = scheme_for("Debian").parse
    for row in DEBIAN_ROWS:
        first_fix: dict[str, str] = {}
        for entry in sorted(row["changelog_entries"], key=lambda e: dpkg(e["version"])):
            for cve in entry["cves"]:
                first_fix.setdefault(cve, entry["version"])
        for cve, fixed in first_fix.items():
            dump.setdefault(row["source"], {})[cve] = {
                "description": f"{row['source']}: fixed in {fixed} (bookworm-security changelog)",
                "scope": "remote",
                "releases": {
                    "bookworm": {
                        "status": "resolved",
                        "repositories": {"bookworm": row["vulnerable_version"]},
                        "fixed_version": fixed,
                        "urgency": "not yet assigned",
                    }
                },
            }

    def release(status: str, urgency: str, **more: str) -> dict[str, Any]:
        return {"releases": {"bookworm": {"status": status, "repositories": {}, "urgency": urgency, **more}}}

    dump["tar"] = {"CVE-2005-2541": {"description": "tar setuid on extract", **release("open", "unimportant")}}
    dump["perl"] = {"CVE-2023-31486": release("open", "low", nodsa="Minor issue", nodsa_reason="")}
    dump["systemd"] = {"CVE-2023-31437": release("open", "low", nodsa="Disputed", nodsa_reason="ignored")}
    dump["gnutls28"] = {"CVE-2024-0553": release("resolved", "high", fixed_version="3.7.9-2+deb12u2")}
    dump["bash"] = {"CVE-2014-6271": release("resolved", "high", fixed_version="4.3-7")}
    dump["util-linux"] = {"CVE-2016-2779": release("resolved", "unimportant", fixed_version="0")}
    return dump


def alpine_v320_secdb() -> dict[str, Any]:
    """WRITTEN DATA, Alpine secdb format: secfixes for the 3.20.3 minirootfs' packages."""
    return {
        "apkurl": "{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk",
        "archs": ["aarch64", "x86_64"],
        "reponame": "main",
        "urlprefix": "https://dl-cdn.alpinelinux.org/alpine",
        "distroversion": "v3.20",
        "packages": [
            {"pkg": {"name": "openssl", "secfixes": {"3.3.2-r1": ["CVE-2024-9143"], "3.3.1-r1": ["CVE-2024-5535"]}}},
            {"pkg": {"name": "musl", "secfixes": {"1.2.5-r1": ["CVE-2025-26519"], "1.1.24-r2": ["CVE-2020-28928"]}}},
            {
                "pkg": {
                    "name": "busybox",
                    "secfixes": {"1.36.1-r29": ["CVE-2023-42366"], "1.36.1-r19": ["CVE-2023-42363"]},
                }
            },
            {"pkg": {"name": "zlib", "secfixes": {"1.2.12-r2": ["CVE-2022-37434"]}}},
        ],
    }


def build_store(directory: Path) -> Path:
    """A store with the real OSV and Alpine v3.10 data and the written Debian bookworm and Alpine v3.20 data."""
    path = directory / "vulndb.sqlite"
    written = directory / "written"
    written.mkdir()
    (written / "debian-bookworm.json").write_text(json.dumps(debian_bookworm_tracker()))
    (written / "v3.20-main.json").write_text(json.dumps(alpine_v320_secdb()))
    with VulnerabilityStore(path) as store:
        for ecosystem in ("PyPI", "npm", "Go", "crates.io"):
            import_path(store, OSV / ecosystem / "all.zip")
        import_path(store, ALPINE / "v3.10-main.json")
        import_path(store, written)
    return path


@pytest.fixture(scope="session")
def golden_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session; the CLI tests use the same file."""
    return build_store(tmp_path_factory.mktemp("golden-store"))


@pytest.fixture
def matcher(golden_store: Path) -> Iterator[Matcher]:
    with VulnerabilityStore(golden_store, create=False) as store:
        yield Matcher(store)


def by_package(result: MatchResult) -> dict[str, dict[str, Finding]]:
    out: dict[str, dict[str, Finding]] = {}
    for f in result.findings:
        out.setdefault(f.component.name.lower(), {})[f.id] = f
    return out


def os_component(name: str, version: str, codename: str = "") -> Component:
    extra = (("codename", codename),) if codename else ()
    return Component(ComponentType.OS, name, version, extra=extra)


# --- golden: images ---------------------------------------------------------------------------------------


def test_app_layer_pypi_and_npm_packages_have_their_expected_advisories(matcher: Matcher) -> None:
    found = by_package(matcher.match(report(f"rootfs:{APP_LAYER}").components))
    for row in expectations()["pypi"]:
        if row["name"] in ("urllib3", "requests", "jinja2", "pyyaml"):
            assert set(found[row["name"]]) == {a["id"] for a in row["advisories"]}, row["name"]
    for row in expectations()["npm"]:
        if row["name"] in ("lodash", "minimist"):
            assert set(found[row["name"]]) == {a["id"] for a in row["advisories"]}, row["name"]
    assert found["urllib3"]["PYSEC-2019-133"].fixed_versions == ("1.24.2",)
    assert found["requests"]["PYSEC-2018-28"].fixed_versions == ("2.20.0",)
    assert found["jinja2"]["PYSEC-2019-217"].fixed_versions == ("2.10.1",)
    assert found["pyyaml"]["PYSEC-2020-96"].fixed_versions == ("5.3.1",)
    assert found["lodash"]["GHSA-35jh-r3h4-6jhm"].fixed_versions == ("4.17.21",)
    assert found["minimist"]["GHSA-xvch-5gv4-984h"].fixed_versions == ("1.2.6",)
    assert found["minimist"]["GHSA-xvch-5gv4-984h"].severity is Level.CRITICAL
    # every finding names its layer and evidence file
    assert all(f.component.evidence for fs in found.values() for f in fs.values())


def test_app_layer_go_binary_stdlib_fixed_versions_are_the_upgrades_that_help(matcher: Matcher) -> None:
    found = by_package(matcher.match(report(f"rootfs:{APP_LAYER}").components))
    stdlib = found["stdlib"]
    assert stdlib["GO-2023-1840"].fixed_versions == ("1.20.5",)  # not 1.19.10: that fixes an older branch
    assert stdlib["GO-2023-1840"].version == "go1.20.4"
    assert "GO-2023-1751" not in stdlib  # fixed in 1.20.4 itself
    # golang.org/x/sys at a 2022-07 pseudo-version is past GO-2022-0493's fix (2022-04)
    assert "GO-2022-0493" not in found.get("golang.org/x/sys", {})


def test_oci_image_minimist_at_fixed_version_is_not_reported(matcher: Matcher) -> None:
    result = matcher.match(report(f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}").components)
    found = by_package(result)
    assert "minimist" not in found  # 1.2.6 is the fixed version of both advisories
    assert set(found["lodash"]) == {"GHSA-p6mc-m468-83gw", "GHSA-35jh-r3h4-6jhm"}
    assert "itsdangerous" not in found
    # the Alpine base is matched by origin against the written v3.20 secdb
    assert set(found["libssl3"]) == set(found["libcrypto3"]) == {"CVE-2024-9143"}


def test_alpine_320_image_against_written_secdb(matcher: Matcher) -> None:
    result = matcher.match(report(f"rootfs:{ALPINE_ROOTFS}").components)
    found = by_package(result)
    assert found["libssl3"]["CVE-2024-9143"].fixed_versions == ("3.3.2-r1",)
    assert found["libssl3"]["CVE-2024-9143"].package == "openssl"
    assert set(found["musl"]) == set(found["musl-utils"]) == {"CVE-2025-26519"}
    assert found["musl"]["CVE-2025-26519"].fixed_versions == ("1.2.5-r1",)
    # at or past the fix: not reported
    assert "busybox" not in found and "zlib" not in found
    assert all(f.id != "CVE-2024-5535" for f in result.findings)
    assert result.distro is not None and result.distro.version == "3.20.3"


def test_debian_bookworm_image_against_written_tracker_data(matcher: Matcher) -> None:
    result = matcher.match(report(f"rootfs:{DEBIAN_ROOTFS}").components)
    found = by_package(result)
    pcre2 = found["libpcre2-8-0"]["CVE-2026-103111"]
    assert (pcre2.package, pcre2.version, pcre2.fixed_versions) == ("pcre2", "10.42-1", ("10.42-1+deb12u2",))
    assert pcre2.status is FindingStatus.FIXED
    assert found["libzstd1"]["CVE-2026-124851"].fixed_versions == ("1.5.4+dfsg2-5+deb12u1",)
    tar = found["tar"]["CVE-2005-2541"]
    assert (tar.status, tar.severity, tar.fixed_versions) == (FindingStatus.UNFIXED, Level.LOW, ())
    assert found["perl-base"]["CVE-2023-31486"].status is FindingStatus.NO_DSA
    assert found["libsystemd0"]["CVE-2023-31437"].status is FindingStatus.IGNORED
    # fixed before the installed version, or never affected: not reported
    assert "libgnutls30" not in found and "bash" not in found
    assert all(f.id != "CVE-2016-2779" for f in result.findings)
    assert tar.references == ("https://security-tracker.debian.org/tracker/CVE-2005-2541",)


# --- golden: data-only expectations ----------------------------------------------------------------------


@pytest.mark.parametrize("row", expectations()["pypi"], ids=lambda r: f"{r['name']}-{r['version']}")
def test_every_known_vulnerable_pypi_package(matcher: Matcher, row: dict[str, Any]) -> None:
    found = matcher.match([Component(ComponentType.PYPI, row["name"], row["version"])]).findings
    assert {f.id for f in found} == {a["id"] for a in row["advisories"]}
    for f in found:
        expected_aliases = next(a["aliases"] for a in row["advisories"] if a["id"] == f.id)
        assert set(expected_aliases) <= set(f.aliases)


@pytest.mark.parametrize("row", expectations()["go"], ids=lambda r: r["name"])
def test_every_known_vulnerable_go_module(matcher: Matcher, row: dict[str, Any]) -> None:
    version = f"go{row['version']}" if row["name"] == "stdlib" else f"v{row['version']}"
    found = matcher.match([Component(ComponentType.GOLANG, row["name"], version)]).findings
    assert {f.id for f in found} == {a["id"] for a in row["advisories"]}


def test_alpine_310_real_secdb(matcher: Matcher) -> None:
    rows = expectations()["alpine"]
    components = [os_component("alpine", "3.10.2")] + [
        Component(ComponentType.APK, r["name"], r["version"], source_name=r["name"]) for r in rows
    ]
    fixed_components = [os_component("alpine", "3.10.2")] + [
        Component(ComponentType.APK, r["name"], r["fixed_version"], source_name=r["name"]) for r in rows
    ]
    found = by_package(matcher.match(components))
    clean = matcher.match(fixed_components).findings
    for r in rows:
        for cve in r["advisories_cves"]:
            assert found[r["name"]][cve].fixed_versions == (r["fixed_version"],)
    assert not {f.id for f in clean} & {c for r in rows for c in r["advisories_cves"]}


@pytest.mark.parametrize("row", DEBIAN_ROWS, ids=lambda r: r["source"])
def test_every_known_vulnerable_debian_package_and_its_fixed_version(matcher: Matcher, row: dict[str, Any]) -> None:
    bookworm = os_component("debian", "12", "bookworm")

    def deb(version: str) -> Component:
        return Component(ComponentType.DEB, row["binary"], version, source_name=row["source"], source_version=version)

    found = {f.id: f for f in matcher.match([bookworm, deb(row["vulnerable_version"])]).findings}
    assert set(found) == set(row["cves_fixed_since_vulnerable"])
    assert all(f.status is FindingStatus.FIXED and f.fixed_versions for f in found.values())
    assert not matcher.match([bookworm, deb(row["fixed_version"])]).findings


# --- rules ------------------------------------------------------------------------------------------------


def _osv(advisory_id: str, aliases: list[str], fixed: str, **more: Any) -> dict[str, Any]:
    return {
        "id": advisory_id,
        "modified": "2024-01-01T00:00:00Z",
        "aliases": aliases,
        "summary": f"summary of {advisory_id}",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo-pkg"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
        **more,
    }


@pytest.fixture
def small_store(tmp_path: Path) -> Iterator[VulnerabilityStore]:
    records = tmp_path / "records"
    records.mkdir()
    for record in (
        _osv("PYSEC-2099-1", ["CVE-2099-0001"], "2.0"),
        _osv(
            "GHSA-aaaa-bbbb-cccc",
            ["CVE-2099-0001"],
            "2.0.1",
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            references=[{"type": "ADVISORY", "url": "https://example.org/advisory"}],
        ),
        _osv("PYSEC-2099-2", ["CVE-2099-0002"], "3.0", withdrawn="2024-02-01T00:00:00Z"),
        _osv("PYSEC-2099-3", [], "1.0"),
    ):
        (records / f"{record['id']}.json").write_text(json.dumps(record))
    with VulnerabilityStore(tmp_path / "vulndb.sqlite") as store:
        import_path(store, records)
        yield store


def test_aliases_merge_into_one_finding_and_withdrawn_never_match(small_store: VulnerabilityStore) -> None:
    findings = Matcher(small_store).match([Component(ComponentType.PYPI, "Demo_Pkg", "1.5")]).findings
    assert len(findings) == 1
    f = findings[0]
    assert f.id == "PYSEC-2099-1"
    assert f.aliases == ("CVE-2099-0001", "GHSA-aaaa-bbbb-cccc")
    assert f.fixed_versions == ("2.0", "2.0.1")
    assert f.severity is Level.CRITICAL  # from the GHSA record's CVSS 3.1 vector
    assert "https://example.org/advisory" in f.references
    assert f.sources == (("osv", "GHSA-aaaa-bbbb-cccc"), ("osv", "PYSEC-2099-1"))


def test_language_package_owned_by_an_os_package_is_left_to_the_distribution(small_store: VulnerabilityStore) -> None:
    owner = Component(
        ComponentType.DEB,
        "python3-demo",
        "1.5-1+deb12u1",
        files=(PackageFile("/usr/lib/python3/dist-packages/demo_pkg-1.5.egg-info/PKG-INFO"),),
    )
    owned = Component(
        ComponentType.PYPI,
        "demo-pkg",
        "1.5",
        evidence="usr/lib/python3/dist-packages/demo_pkg-1.5.egg-info/PKG-INFO",
    )
    result = Matcher(small_store).match([os_component("debian", "12"), owner, owned])
    assert result.findings == ()
    assert any("installed by an OS package" in n for n in result.notes)
    assert any("no advisories for Debian:12" in n for n in result.notes)


def test_severity_ratings() -> None:
    v3 = rate_vector("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H")
    v4 = rate_vector("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
    assert v3 is not None and (v3.score, v3.level) == (7.2, Level.HIGH)
    assert v4 is not None and (v4.score, v4.level) == (9.3, Level.CRITICAL)
    assert rate_vector("CVSS_V3", "CVSS:3.1/AV:bogus") is None
    assert level_of_word("unimportant") is Level.LOW
    assert level_of_word("medium**") is Level.MEDIUM
    assert level_of_word("not yet assigned") is Level.UNKNOWN
    assert level_of_word("MODERATE") is Level.MEDIUM
    # the newest CVSS version decides over an older one
    assert overall((v3, v4)) is Level.CRITICAL
