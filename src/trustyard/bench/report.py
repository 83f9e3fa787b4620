"""Writing a ``BenchReport``: docker-bench-security's text and JSON log, SARIF 2.1.0 and JUnit XML.

The text and JSON layouts are docker-bench-security's, so its users' eyes and tools keep working: text lines
``[PASS] 2.2 - <title>`` under ``[INFO] 2 - <section>`` headers with ``* details`` lines beneath, a summary with
the number of checks and the score; the JSON log ``{"dockerbenchsecurity", "start", "tests": [{"id", "desc",
"results": [{"id", "desc", "result", "details", "items", "remediation"}]}], "checks", "score", "end"}``.
SARIF (for code-scanning dashboards) gives one rule per check and one result per WARN or INFO; JUnit (for CI
test reports) one test case per check, WARN as a failure and NOTE/INFO as skipped with the reason.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from enum import StrEnum
from itertools import groupby
from typing import Any, Final, assert_never

from trustyard import __version__
from trustyard.bench.base import Result
from trustyard.bench.runner import BenchReport, CheckOutcome

BENCHMARK_VERSION: Final = "1.6.0"
SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL: Final = {Result.WARN: "warning", Result.INFO: "note", Result.NOTE: "note", Result.PASS: "none"}


class Format(StrEnum):
    """The output formats of ``trustyard bench``."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"


def render(report: BenchReport, fmt: Format) -> str:
    """``report`` in ``fmt``."""
    if fmt is Format.TEXT:
        return to_text(report)
    if fmt is Format.JSON:
        return json.dumps(to_json(report), indent=2) + "\n"
    if fmt is Format.SARIF:
        return json.dumps(to_sarif(report), indent=2) + "\n"
    if fmt is Format.JUNIT:
        return to_junit(report)
    assert_never(fmt)


def _sections(report: BenchReport) -> Iterator[tuple[str, list[CheckOutcome]]]:
    for section, outcomes in groupby(report.outcomes, key=lambda o: o.check.section):
        yield section, list(outcomes)


def _section_title(section: str) -> str:
    from trustyard.bench import SECTIONS

    return SECTIONS.get(section, section)


def _desc(outcome: CheckOutcome) -> str:
    check = outcome.check
    if check.section in ("dockle",):
        return check.title
    return f"{check.title} ({'Automated' if check.scored else 'Manual'})"


def to_text(report: BenchReport) -> str:
    """docker-bench-security's console layout, without colours."""
    lines = [f"# trustyard bench {__version__}: CIS Docker Benchmark v{BENCHMARK_VERSION} and Dockle checkpoints", ""]
    for section, outcomes in _sections(report):
        lines.append(f"[INFO] {section} - {_section_title(section)}")
        for o in outcomes:
            lines.append(f"[{o.result.result}] {o.check.id} - {_desc(o)}")
            if o.result.details:
                lines.append(f"      * {o.result.details}")
            lines.extend(f"      * {item}" for item in o.result.items)
        lines.append("")
    lines += [
        "",
        "Section C - Score",
        "",
        "[INFO] Checks: " + str(len(report.outcomes)),
        "[INFO] Score: " + str(report.score),
        "[INFO] "
        + ", ".join(f"{r.value}: {report.count(r)}" for r in (Result.PASS, Result.WARN, Result.INFO, Result.NOTE)),
    ]
    return "\n".join(lines) + "\n"


def _json_details(outcome: CheckOutcome) -> str:
    """``details: item, item``: docker-bench-security repeats the items in ``details``, and tools that read only
    ``details`` (findings importers, CSV converters) would otherwise lose the names of what failed."""
    items = ", ".join(outcome.result.items)
    return f"{outcome.result.details}: {items}" if items and outcome.result.details else outcome.result.details or items


def to_json(report: BenchReport) -> dict[str, Any]:
    """docker-bench-security's JSON log."""
    tests = []
    for section, outcomes in _sections(report):
        results = []
        for o in outcomes:
            entry: dict[str, Any] = {"id": o.check.id, "desc": _desc(o), "result": o.result.result.value}
            if o.result.details or o.result.items:
                entry["details"] = _json_details(o)
            if o.result.items:
                entry["items"] = list(o.result.items)
            if o.result.result is not Result.PASS:
                entry["remediation"] = o.check.remediation
            results.append(entry)
        tests.append({"id": section, "desc": _section_title(section), "results": results})
    return {
        "dockerbenchsecurity": BENCHMARK_VERSION,
        "trustyard": __version__,
        "start": int(report.start),
        "tests": tests,
        "checks": len(report.outcomes),
        "score": report.score,
        "end": int(report.end),
    }


def to_sarif(report: BenchReport) -> dict[str, Any]:
    """A SARIF 2.1.0 log: every check a rule, every WARN/INFO/NOTE a result."""
    rules = [
        {
            "id": o.check.id,
            "name": o.check.id.replace(".", "_").replace("-", "_"),
            "shortDescription": {"text": o.check.title},
            "help": {"text": o.check.remediation},
            "properties": {"section": o.check.section, "level": o.check.level, "scored": o.check.scored},
        }
        for o in report.outcomes
    ]
    results = []
    for index, o in enumerate(report.outcomes):
        if o.result.result is Result.PASS:
            continue
        message = o.result.details or o.check.title
        if o.result.items:
            message += ": " + "; ".join(o.result.items)
        results.append(
            {
                "ruleId": o.check.id,
                "ruleIndex": index,
                "level": _SARIF_LEVEL[o.result.result],
                "kind": "fail" if o.result.result is Result.WARN else "review",
                "message": {"text": message},
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "trustyard bench",
                        "version": __version__,
                        "informationUri": "https://www.cisecurity.org/benchmark/docker",
                        "rules": rules,
                    }
                },
                "results": results,
                "properties": {"score": report.score},
            }
        ],
    }


def to_junit(report: BenchReport) -> str:
    """JUnit XML: a test suite per section, a test case per check; WARN fails, INFO and NOTE are skipped."""
    suites = ET.Element(
        "testsuites",
        name="trustyard bench",
        tests=str(len(report.outcomes)),
        failures=str(report.count(Result.WARN)),
        time=f"{report.end - report.start:.3f}",
    )
    for section, outcomes in _sections(report):
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{section} - {_section_title(section)}",
            tests=str(len(outcomes)),
            failures=str(sum(1 for o in outcomes if o.result.result is Result.WARN)),
            skipped=str(sum(1 for o in outcomes if o.result.result in (Result.INFO, Result.NOTE))),
        )
        for o in outcomes:
            case = ET.SubElement(suite, "testcase", classname=f"bench.{section}", name=f"{o.check.id} {o.check.title}")
            text = "\n".join([o.result.details, *o.result.items]).strip()
            if o.result.result is Result.WARN:
                failure = ET.SubElement(case, "failure", message=o.result.details or o.check.title, type="WARN")
                failure.text = f"{text}\nremediation: {o.check.remediation}"
            elif o.result.result in (Result.INFO, Result.NOTE):
                ET.SubElement(case, "skipped", message=f"{o.result.result.value}: {o.result.details}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
