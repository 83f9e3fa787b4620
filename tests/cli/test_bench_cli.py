"""``trustyard bench`` as a command: every format, selection, --output and the --fail-on exit code.

The host is a temporary root with a daemon.json (so sections 2 and 3 have input) and the engine socket
points nowhere (sections 5-7 report INFO): no engine is needed here; tests/bench drives a real one.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from trustyard.bench import CHECKS
from trustyard.cli import main

ALPINE_APP = "oci:/work/shared/images/oci-alpine-app:fixture-alpine-app:1"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc/docker").mkdir(parents=True)
    (tmp_path / "etc/docker/daemon.json").write_text('{"icc": false, "log-level": "debug"}')
    return tmp_path


def run(root: Path, *args: str) -> Result:
    argv = ["bench", "--root", str(root), "--docker-host", f"unix://{root}/none.sock", *args]
    return CliRunner().invoke(main, argv, catch_exceptions=False)


def test_text_output_as_docker_bench_prints_it(root: Path) -> None:
    result = run(root, "--check", "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "[INFO] 2 - Docker daemon configuration" in lines
    assert (
        "[PASS] 2.2 - Ensure network traffic is restricted between containers on the default bridge (Automated)"
        in lines
    )
    assert "[WARN] 2.3 - Ensure the logging level is set to 'info' (Automated)" in lines
    assert "[INFO] Checks: 18" in lines
    # scored PASS: 2.2 2.4 2.5 2.6 2.10 2.11 2.18; scored WARN: 2.3 2.9 2.12 2.13 2.14 2.15 2.16
    assert "[INFO] Score: 0" in lines
    assert "[INFO] PASS: 7, WARN: 7, INFO: 4, NOTE: 0" in lines


def test_json_log_layout(root: Path) -> None:
    result = run(root, "--format", "json", "--check", "2", "--check", "3.17", "--image", ALPINE_APP, "--check", "4.1")
    log = json.loads(result.output)
    assert set(log) >= {"dockerbenchsecurity", "start", "tests", "checks", "score", "end"}
    assert [t["id"] for t in log["tests"]] == ["2", "3", "4"]
    results = {r["id"]: r for t in log["tests"] for r in t["results"]}
    assert log["checks"] == len(results) == 20
    assert results["2.3"]["result"] == "WARN" and results["2.3"]["items"] == ["debug"]
    assert results["2.3"]["remediation"]
    assert results["3.17"]["result"] == "PASS" and "remediation" not in results["3.17"]
    assert results["4.1"]["items"] == [f"{ALPINE_APP}: user not set (root)"]
    for r in results.values():
        assert set(r) <= {"id", "desc", "result", "details", "items", "remediation"}
        assert r["result"] in {"PASS", "WARN", "INFO", "NOTE"}
    score = sum(
        1 if r["result"] == "PASS" else -1
        for r in results.values()
        if r["result"] in ("PASS", "WARN") and "(Automated)" in r["desc"]
    )
    assert log["score"] == score


def test_sarif_is_structurally_valid(root: Path) -> None:
    log = json.loads(run(root, "--format", "sarif").output)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (sarif_run,) = log["runs"]
    rules = sarif_run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [c.id for c in CHECKS]
    assert all(r["shortDescription"]["text"] and r["help"]["text"] for r in rules)
    assert sarif_run["results"]
    for res in sarif_run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in {"warning", "note"} and res["message"]["text"]
    levels = {r["ruleId"]: r["level"] for r in sarif_run["results"]}
    assert levels["2.3"] == "warning" and "2.2" not in levels


def test_junit_parses_and_counts(root: Path) -> None:
    output = run(root, "--format", "junit", "--check", "2", "--check", "5").output
    suites = ET.fromstring(output.split("\n", 1)[1])  # noqa: S314 - our own output, parsed as a CI server would
    assert suites.tag == "testsuites"
    names = [s.get("name") for s in suites]
    assert names == ["2 - Docker daemon configuration", "5 - Container Runtime"]
    cases = suites.findall(".//testcase")
    assert len(cases) == int(suites.get("tests", "0")) == 18 + 32
    failures = suites.findall(".//failure")
    assert len(failures) == int(suites.get("failures", "0")) == 7
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(skipped) == 4 + 32  # 2.1, 2.7, 2.8, 2.17 are INFO; section 5 has no engine here
    assert any("2.3" in (c.get("name") or "") and c.find("failure") is not None for c in cases)


def test_exclude_and_output_file(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = run(root, "--check", "2", "--exclude", "2.3", "--format", "json", "--output", str(out))
    assert result.output == ""
    ids = [r["id"] for t in json.loads(out.read_text())["tests"] for r in t["results"]]
    assert "2.3" not in ids and len(ids) == 17


def test_fail_on_warn_exits_3(root: Path) -> None:
    assert run(root, "--check", "2.3", "--fail-on", "warn").exit_code == 3
    assert run(root, "--check", "2.2", "--fail-on", "warn").exit_code == 0
    assert run(root, "--check", "2.3").exit_code == 0


def test_unknown_check_is_an_error(root: Path) -> None:
    result = run(root, "--check", "9.9")
    assert result.exit_code == 1
    assert "names no check" in result.output
