"""``trustyard scan`` through click's runner on the shared app layer, with the golden store of the matcher tests.

The app layer's worst finding is critical (minimist 1.2.0, GHSA-xvch-5gv4-984h), then high (lodash, urllib3):
that is what the ``--fail-on``, VEX and allowlist cases turn on.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from scan.shared import APP_LAYER
from scan.test_matcher import golden_store
from scan.vulndb.shared import needs_shared
from trustyard.cli import main
from trustyard.scan.sbom.cyclonedx import validate
from trustyard.scan.vex import VexError, parse_openvex
from trustyard.scan.vulndb.store import VulnerabilityStore

pytestmark = needs_shared
IMAGE = f"rootfs:{APP_LAYER}"
MINIMIST = "pkg:npm/minimist@1.2.0"
__all__ = ["golden_store"]


def run(store: Path, tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["scan", "--db", str(store), "--data-dir", str(tmp_path / "data"), *args])


def vex(tmp_path: Path, status: str, purl: str = MINIMIST, **more: Any) -> Path:
    doc = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.org/vex/1",
        "author": "tests",
        "timestamp": "2026-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2021-44906"},  # an alias of GHSA-xvch-5gv4-984h
                "products": [{"@id": purl}],
                "status": status,
                **more,
            }
        ],
    }
    path = tmp_path / f"{status}.openvex.json"
    path.write_text(json.dumps(doc))
    return path


def test_fail_on_exit_codes(golden_store: Path, tmp_path: Path) -> None:
    assert run(golden_store, tmp_path, IMAGE, "--fail-on", "critical").exit_code == 3
    assert run(golden_store, tmp_path, IMAGE, "--fail-on", "high").exit_code == 3
    assert run(golden_store, tmp_path, IMAGE).exit_code == 0
    # the display filter does not narrow the gate
    assert run(golden_store, tmp_path, IMAGE, "--severity", "low", "--fail-on", "critical").exit_code == 3


def test_vex_not_affected_keeps_the_finding_marked_and_lowers_the_gate(golden_store: Path, tmp_path: Path) -> None:
    doc = vex(tmp_path, "not_affected", justification="vulnerable_code_not_in_execute_path")
    result = run(golden_store, tmp_path, IMAGE, "--vex", str(doc), "--format", "json", "--fail-on", "critical")
    assert result.exit_code == 0, result.output
    findings = {f["id"]: f for f in json.loads(result.stdout)["findings"]}
    marked = findings["GHSA-xvch-5gv4-984h"]["suppressed"]
    assert marked["state"] == "not_affected"
    assert marked["justification"] == "vulnerable_code_not_in_execute_path"
    # a statement about another version of the package does not apply
    other = vex(tmp_path, "fixed", purl="pkg:npm/minimist@1.2.6")
    assert run(golden_store, tmp_path, IMAGE, "--vex", str(other), "--fail-on", "critical").exit_code == 3


def test_later_affected_statement_clears_an_earlier_mark() -> None:
    doc: dict[str, Any] = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "statements": [
            {"vulnerability": "CVE-1", "products": [MINIMIST], "status": "fixed", "timestamp": "2026-01-01T00:00:00Z"},
            {"vulnerability": {"name": "CVE-1"}, "products": [MINIMIST], "status": "affected"},
        ],
    }
    statements = parse_openvex(json.dumps(doc).encode(), "doc")
    assert [s.status for s in sorted(statements, key=lambda s: s.time)] == ["affected", "fixed"]
    with pytest.raises(VexError, match="justification"):
        parse_openvex(
            json.dumps({**doc, "statements": [{**doc["statements"][0], "status": "not_affected"}]}).encode(), "d"
        )
    with pytest.raises(VexError, match="not an OpenVEX document"):
        parse_openvex(b'{"statements": []}', "d")


def test_allowlist_and_its_expiry(golden_store: Path, tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    live = tmp_path / "live.toml"
    live.write_text(
        f'[[accept]]\nid = "CVE-2021-44906"\npackage = "minimist"\nexpires = {today + timedelta(days=30)}\n'
        'reason = "test fixture"\n'
    )
    result = run(golden_store, tmp_path, IMAGE, "--allowlist", str(live), "--format", "json", "--fail-on", "critical")
    assert result.exit_code == 0, result.output
    marked = {f["id"]: f["suppressed"] for f in json.loads(result.stdout)["findings"]}["GHSA-xvch-5gv4-984h"]
    assert marked["state"] == "accepted" and marked["expires"] == str(today + timedelta(days=30))
    expired = tmp_path / "expired.toml"
    expired.write_text(f'[[accept]]\nid = "CVE-2021-44906"\nexpires = {date(2020, 1, 1)}\n')
    result = run(golden_store, tmp_path, IMAGE, "--allowlist", str(expired), "--fail-on", "critical")
    assert result.exit_code == 3
    assert "expired on 2020-01-01" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[[accept]]\nidentifier = "x"\n')
    result = run(golden_store, tmp_path, IMAGE, "--allowlist", str(bad))
    assert result.exit_code == 1 and "not an allowlist" in result.stderr


def test_sarif_structure(golden_store: Path, tmp_path: Path) -> None:
    result = run(golden_store, tmp_path, IMAGE, "--format", "sarif")
    assert result.exit_code == 0
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run0 = sarif["runs"][0]
    rules = run0["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules)
    assert {r["ruleId"] for r in run0["results"]} == {r["id"] for r in rules}
    for r in run0["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        assert r["level"] in ("error", "warning", "note")
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    critical = next(r for r in rules if r["id"] == "GHSA-xvch-5gv4-984h")
    assert float(critical["properties"]["security-severity"]) >= 9.0


def test_cyclonedx_vulnerabilities_affect_component_bom_refs(golden_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "bom.json"
    result = run(golden_store, tmp_path, IMAGE, "--format", "cyclonedx", "--output", str(out))
    assert result.exit_code == 0
    text = out.read_text()
    validate(text)
    bom = json.loads(text)
    refs = {c["bom-ref"]: c for c in bom["components"]}
    vulns = bom["vulnerabilities"]
    assert vulns and all(v["affects"][0]["ref"] in refs for v in vulns)
    lodash = next(v for v in vulns if v["id"] == "GHSA-35jh-r3h4-6jhm")
    assert refs[lodash["affects"][0]["ref"]]["name"] == "lodash"


def test_table_severity_filter_and_staleness_warning(golden_store: Path, tmp_path: Path) -> None:
    result = run(golden_store, tmp_path, IMAGE, "--severity", "critical")
    assert result.exit_code == 0
    assert "GHSA-xvch-5gv4-984h" in result.stdout and "GHSA-35jh-r3h4-6jhm" not in result.stdout
    assert "days old" in result.stderr  # the shared data is from 2024-2026, older than the default 7 days


def test_empty_store_warns(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    VulnerabilityStore(empty).close()
    result = run(empty, tmp_path, IMAGE)
    assert result.exit_code == 0
    assert "holds no advisories" in result.stderr


def test_bad_image_reference_is_a_one_line_error(golden_store: Path, tmp_path: Path) -> None:
    for image in ("nonsense", f"oci:{tmp_path / 'missing'}"):
        result = run(golden_store, tmp_path, image)
        assert result.exit_code == 1
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.output
    missing = run(tmp_path / "no-store.sqlite", tmp_path, IMAGE)
    assert missing.exit_code == 1 and "trustyard db import" in missing.stderr
    assert run(golden_store, tmp_path, IMAGE, "--max-age", "soon").exit_code == 2
