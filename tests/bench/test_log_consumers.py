"""Our ``--format json`` read by tools written for docker-bench-security's log, and compared with a real one.

Two consumers are written here the way public tools read ``docker-bench-security.log.json``: a findings
importer (DefectDojo's "docker-bench-security Scan" parser walks ``tests[]`` → ``results[]``, builds the title
from ``id + ' - ' + desc``, keys severity on ``result`` and ``'(Manual)' in desc``, appends ``details`` to a
string, and reads ``remediation`` / ``remediation-impact``) and a CSV converter (cloudforge-co/CIS-benchmark
prints ``tests[].id/desc`` and ``results[].id/desc/result`` with ``details`` when present). Both do what those
tools do with the values — string concatenation and formatting — so a wrong type fails as it would there.

The key and type layout asserted here (``TOP``, ``SECTION``, ``RESULT``) is the one a log written by
docker-bench-security itself has: ``benchmarks/docker_bench_layout.py`` runs its script against the same kind of
dockerd and compares (by hand: docker-bench-security is not published where CI machines can fetch it, so it
cannot be part of this suite); docs/bench.md records its last result.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.engines import alpine_dockerd, bench_json, run_good_and_bad
from fixtures.dockerd import Dockerd

pytestmark = pytest.mark.interop

TOP = {"dockerbenchsecurity": str, "start": int, "tests": list, "checks": int, "score": int, "end": int}
SECTION = {"id": str, "desc": str, "results": list}
RESULT = {"id": str, "desc": str, "result": str, "details": str, "items": list, "remediation": str,
          "remediation-impact": str}  # fmt: skip


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    with alpine_dockerd(tmp_path_factory.mktemp("dockerd")) as daemon:
        run_good_and_bad(daemon)
        yield daemon


def findings_importer(log: dict[str, Any]) -> list[dict[str, str]]:
    """Read the log as a findings importer does: every non-manual WARN/INFO/NOTE becomes a finding."""
    header = (log["id"] + " " if "id" in log else "") + "\n"
    findings = []
    for section in log["tests"]:
        context = header + (section["section"] + " " if "section" in section else "") + section.get("desc", "") + "\n"
        for result in section["results"]:
            status, desc = result.get("result"), result.get("desc")
            if status is None:
                continue
            severities = {"FAIL": "Critical", "WARN": "High", "INFO": "Low", "NOTE": "Info"}
            if status.upper() not in severities or (status.upper() != "FAIL" and "(Manual)" in desc):
                continue
            number = result.get("id", "Test number not found")
            text = context + number + " " + f"\ndesc: {desc}\n" + result.get("details", "")
            mitigation = result.get("remediation", "")
            if result.get("remediation-impact", ""):
                mitigation += "\nmitigation impact: {}\n".format(result["remediation-impact"])
            findings.append({"title": number + " - " + result.get("desc", "Description not found"),
                             "severity": severities[status.upper()], "description": text, "mitigation": mitigation,
                             "vuln_id_from_tool": number})  # fmt: skip
    return findings


def csv_converter(log: dict[str, Any]) -> list[str]:
    """Read the log as a CSV converter does: a row per section, a row per result."""
    rows = ["ID-ctrl-Description-ctrl-Result-ctrl-Details-ctrl-Comments"]
    for section in log["tests"]:
        rows.append(f"{section['id']}-ctrl-{section['desc']}-ctrl--ctrl--ctrl-")
        for result in section["results"]:
            details = result.get("details", "")
            rows.append(f"{result['id']}-ctrl-{result['desc']}-ctrl-{result['result']}-ctrl-{details}-ctrl-")
    return rows


def test_consumers_read_our_log(engine: Dockerd, tmp_path: Path) -> None:
    log = bench_json(engine, tmp_path)  # the whole bench: sections 1-7, C and dockle (no image: INFO)
    assert {k: type(log[k]) for k in TOP} == TOP
    results = [r for s in log["tests"] for r in s["results"]]
    assert all({k: type(s[k]) for k in SECTION} == SECTION for s in log["tests"])
    assert {r["result"] for r in results} == {"PASS", "WARN", "INFO", "NOTE"}
    for r in results:
        assert set(r) <= set(RESULT) and {"id", "desc", "result"} <= set(r), r
        assert all(isinstance(r[k], RESULT[k]) for k in r), r
        assert all(isinstance(i, str) for i in r.get("items", [])), r
    assert log["checks"] == len(results)

    findings = findings_importer(log)
    expected = [r for r in results if r["result"] != "PASS" and "(Manual)" not in r["desc"]]
    assert [f["vuln_id_from_tool"] for f in findings] == [r["id"] for r in expected]
    by_id = {f["vuln_id_from_tool"]: f for f in findings}
    assert by_id["5.10"]["severity"] == "High" and by_id["5.10"]["title"].startswith("5.10 - Ensure that the host's")
    assert by_id["5.10"]["description"].endswith("\nnot met by 1 of 2 containers: bad")
    assert by_id["5.10"]["mitigation"] == "Do not use --network host."

    rows = csv_converter(log)
    assert len(rows) == 1 + len(log["tests"]) + len(results)
    assert any(row.startswith("5.11-ctrl-Ensure that the memory usage") and "-ctrl-WARN-ctrl-" in row for row in rows)
