"""The NVD source (CVE JSON 2.0) on the shared NVD API samples, and the matcher's CPE side.

``../shared/vulndb/nvd-sample`` holds only **samples**: four real NVD API 2.0 responses of one CVE each
(CVE-2017-6507 apparmor, CVE-2022-25761 open62541, CVE-2023-4863 libwebp, CVE-2024-3094 xz), no full feed.
None of them has a ``versionStartExcluding`` bound or a rejected CVE, so ``_written_page`` writes two records
**in the NVD API 2.0 format** for those cases and says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from scan.vulndb.shared import DEBIAN_EXCERPT, SHARED_VULNDB, needs_shared
from trustyard.cli import main
from trustyard.scan.findings import FindingStatus, Level
from trustyard.scan.matcher import Matcher
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.vulndb.errors import SourceFormatError
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.sources.nvd import parse_version, product_key, split_cpe
from trustyard.scan.vulndb.store import VulnerabilityStore

pytestmark = needs_shared

NVD = SHARED_VULNDB / "nvd-sample"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VulnerabilityStore]:
    with VulnerabilityStore(tmp_path / "vulndb.sqlite") as s:
        import_path(s, NVD)
        yield s


def component(cpe: str, *, name: str = "thing", version: str = "1") -> Component:
    """A component known by CPE (as ``scan/cpe.py`` derives it, or as an analyzer reports it)."""
    return Component(ComponentType.GOLANG, name, version, cpe=cpe)


def cpe(vendor: str, product: str, version: str) -> str:
    return f"cpe:2.3:a:{vendor}:{product}:{version}:*:*:*:*:*:*:*"


def test_samples_import_and_cve5_files_are_not_nvd(tmp_path: Path) -> None:
    with VulnerabilityStore(tmp_path / "v.sqlite") as s:
        report = import_path(s, NVD)
        assert sorted(report.feeds["nvd"].added) == [
            "CVE-2017-6507",
            "CVE-2022-25761",
            "CVE-2023-4863",
            "CVE-2024-3094",
        ]
        assert sorted(Path(p).name for p in report.skipped) == [
            "CVE-2023-45803.cve5.json",
            "CVE-2024-3094.cve5.json",
            "CVE-2024-7264.cve5.json",
        ]
        assert report.feeds["nvd"].data_time == "2026-06-17T07:43:17.830000Z"  # CVE-2024-3094's lastModified
        again = import_path(s, NVD)
        assert again.feeds["nvd"].unchanged == 4 and not again.added and not again.changed


def test_exact_versions_and_cvss_severity(store: VulnerabilityStore) -> None:
    result = Matcher(store).match([component(cpe("tukaani", "xz", "5.6.1"), name="xz", version="5.6.1")])
    (finding,) = result.findings
    assert finding.id == "CVE-2024-3094" and finding.package == "xz"
    assert finding.severity is Level.CRITICAL
    assert any(r.vector == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H" for r in finding.ratings)
    assert finding.references[0] == "https://nvd.nist.gov/vuln/detail/CVE-2024-3094"
    assert not Matcher(store).match([component(cpe("tukaani", "xz", "5.6.2"))]).findings
    assert not Matcher(store).match([component(cpe("tukaani", "xz", "5.4.1"))]).findings


@pytest.mark.parametrize(
    ("cpe_name", "version", "expected", "fixed"),
    [
        (("webmproject", "libwebp"), "1.3.1", True, ("1.3.2",)),  # versionEndExcluding 1.3.2
        (("webmproject", "libwebp"), "1.3.2", False, ()),
        (("webmproject", "libwebp"), "0.6.0", True, ("1.3.2",)),
        (("apparmor", "apparmor"), "2.11", True, ()),  # versionEndIncluding 2.11
        (("apparmor", "apparmor"), "2.11.1", False, ()),
        (("mozilla", "firefox_esr"), "115.2.0", True, ("102.15.1", "115.2.1")),  # in the 115.0-115.2.1 range only
        (("mozilla", "firefox_esr"), "115.2.1", False, ()),
        (("mozilla", "firefox_esr"), "110.0", False, ()),  # between the 102 range and the 115.0 start
        (("open62541", "open62541"), "1.3-rc1", True, ()),  # listed with the CPE's update field
        (("open62541", "open62541"), "1.2.4", True, ("1.2.5",)),
        (("open62541", "open62541"), "1.3", False, ()),
    ],
)
def test_ranges_of_the_samples(
    store: VulnerabilityStore, cpe_name: tuple[str, str], version: str, expected: bool, fixed: tuple[str, ...]
) -> None:
    findings = Matcher(store).match([component(cpe(*cpe_name, version), version=version)]).findings
    assert bool(findings) is expected
    if expected:
        # fixed versions are those of the ranges holding the version (firefox_esr 115.2.0: only 115.2.1)
        assert findings[0].fixed_versions == tuple(v for v in fixed if parse_version(v) > parse_version(version))
        assert findings[0].status is (FindingStatus.FIXED if findings[0].fixed_versions else FindingStatus.AFFECTED)


def _written_page() -> dict[str, Any]:
    """WRITTEN DATA in the NVD API 2.0 format: a ``versionStartExcluding`` bound and a rejected CVE."""

    def cve(cve_id: str, status: str, match: dict[str, Any]) -> dict[str, Any]:
        return {
            "cve": {
                "id": cve_id,
                "sourceIdentifier": "cve@mitre.org",
                "published": "2025-01-02T03:04:05.000",
                "lastModified": "2025-02-03T04:05:06.789",
                "vulnStatus": status,
                "descriptions": [{"lang": "en", "value": f"{cve_id} written for a test"}],
                "metrics": {
                    "cvssMetricV40": [
                        {
                            "source": "nvd@nist.gov",
                            "type": "Primary",
                            "cvssData": {
                                "version": "4.0",
                                "vectorString": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:N/SC:N/SI:N/SA:N",
                            },
                        }
                    ],
                    "cvssMetricV31": [
                        {"source": "x", "type": "Secondary", "cvssData": {"version": "3.1", "vectorString": "bogus"}}
                    ],
                },
                "configurations": [
                    {"operator": "AND", "nodes": [{"operator": "OR", "negate": False, "cpeMatch": [match]}]}
                ],
                "references": [{"url": "https://example.org/advisory", "source": "cve@mitre.org"}],
            }
        }

    start_excluding = {
        "vulnerable": True,
        "criteria": "cpe:2.3:a:example:widget:*:*:*:*:*:*:*:*",
        "versionStartExcluding": "2.0",
        "versionEndExcluding": "2.5",
        "matchCriteriaId": "00000000-0000-0000-0000-000000000001",
    }
    rejected = {"vulnerable": True, "criteria": "cpe:2.3:a:example:gadget:1.0:*:*:*:*:*:*:*"}
    return {
        "resultsPerPage": 2,
        "startIndex": 0,
        "totalResults": 2,
        "format": "NVD_CVE",
        "version": "2.0",
        "timestamp": "2025-02-04T00:00:00.000",
        "vulnerabilities": [
            cve("CVE-2025-0001", "Analyzed", start_excluding),
            cve("CVE-2025-0002", "Rejected", rejected),
        ],
    }


def test_start_excluding_rejected_and_cvss4(tmp_path: Path) -> None:
    page = tmp_path / "page.json"
    page.write_text(json.dumps(_written_page()))
    with VulnerabilityStore(tmp_path / "v.sqlite") as s:
        import_path(s, page)
        matcher = Matcher(s)
        hit = {
            v: bool(matcher.match([component(cpe("example", "widget", v))]).findings)
            for v in ("2.0", "2.0.1", "2.4.9", "2.5")
        }
        assert hit == {"2.0": False, "2.0.1": True, "2.4.9": True, "2.5": False}
        (finding,) = matcher.match([component(cpe("example", "widget", "2.1"))]).findings
        assert finding.severity is Level.MEDIUM and [r.method for r in finding.ratings] == ["CVSS_V4"]  # bogus dropped
        assert "https://example.org/advisory" in finding.references
        assert not matcher.match([component(cpe("example", "gadget", "1.0"))]).findings  # rejected = withdrawn
        advisory = s.advisory("nvd", "CVE-2025-0002")
        assert advisory is not None and advisory.withdrawn == "2025-02-03T04:05:06.789000Z"


def test_distribution_data_wins_over_the_nvd(tmp_path: Path) -> None:
    """A deb whose distribution has data in the store is not matched by CPE; without that data it is."""
    os_release = Component(ComponentType.OS, "debian", "12", extra=(("codename", "bookworm"),))
    apparmor = Component(
        ComponentType.DEB,
        "libapparmor1",
        "2.11-1",
        source_name="apparmor",
        source_version="2.11-1",
        cpe=cpe("apparmor", "apparmor", "2.11"),
    )
    with VulnerabilityStore(tmp_path / "v.sqlite") as s:
        import_path(s, NVD)
        result = Matcher(s).match([os_release, apparmor])
        assert [f.id for f in result.findings] == ["CVE-2017-6507"]
        assert "the store has no advisories for Debian:12: its packages were not checked" in result.notes
        import_path(s, DEBIAN_EXCERPT)  # the excerpt has apparmor entries for bookworm
        findings = Matcher(s).match([os_release, apparmor]).findings
        assert findings and all(source == "debian" for f in findings for source, _ in f.sources)


def test_malformed_page_changes_nothing(store: VulnerabilityStore, tmp_path: Path) -> None:
    page = _written_page()
    page["vulnerabilities"][1]["cve"]["configurations"][0]["nodes"][0]["cpeMatch"][0]["criteria"] = "cpe:/a:old"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(page))
    before = store.counts()
    with pytest.raises(SourceFormatError, match="not a valid nvd record"):
        import_path(store, bad, source="nvd")
    assert store.counts() == before


def test_db_import_recognises_nvd_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("TRUSTYARD_CONFIG", "TRUSTYARD_DATA_DIR", "TRUSTYARD_VULNDB_PATH"):
        monkeypatch.delenv(key, raising=False)
    args = ["db", "import", str(NVD / "CVE-2023-4863.nvd-api-2.0.json"), "--data-dir", str(tmp_path), "--json"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (feed,) = json.loads(result.stdout)["feeds"]
    assert feed["source"] == "nvd" and feed["added"] == ["CVE-2023-4863"]


def test_cpe_fields() -> None:
    assert split_cpe(r"cpe:2.3:a:nodejs:node\:js:1.0:*:*:*:*:*:*:*")[4] == r"node\:js"
    assert product_key("cpe:2.3:a:Open62541:open62541:1.3:rc2:*:*:*:*:*:*") == ("a:open62541:open62541", "1.3-rc2")
    with pytest.raises(ValueError, match=r"not a CPE 2\.3"):
        split_cpe("cpe:/a:openssl:openssl:1.0")


def test_version_edges() -> None:
    ordered = ["1.0rc1", "1.0-rc2", "1.0", "1.0.0.1", "1.0.1", "1.0.10", "1.1a", "1.1", "2"]
    assert sorted(ordered, key=parse_version) == ordered
    assert parse_version("1.0-rc1") == parse_version("1.0.rc1")


@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=5), st.lists(st.integers(0, 10_000), min_size=1, max_size=5)
)
def test_numeric_versions_order_as_tuples(a: list[int], b: list[int]) -> None:
    va, vb = parse_version(".".join(map(str, a))), parse_version(".".join(map(str, b)))
    assert (va < vb) == (a < b) and (va == vb) == (a == b)
