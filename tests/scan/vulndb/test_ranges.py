"""OSV range evaluation: the schema's examples as a table, refinements and skips, and the real data's verdicts.

The real-data test is the strongest: for every known-vulnerable package in ``fixtures/expectations.json``
(PyPI, npm, Go, crates.io), evaluating every advisory of that ecosystem's ``all.zip`` (withdrawn ones aside)
must give exactly the advisory ids the fixture lists: no more (a wrong ordering would add some), no fewer.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from scan.vulndb.shared import OSV, expectations, needs_shared
from trustyard.scan.vulndb.inputs import Input
from trustyard.scan.vulndb.model import Affected, Event, EventKind, Range
from trustyard.scan.vulndb.ranges import evaluate
from trustyard.scan.vulndb.sources.base import read_advisories
from trustyard.scan.vulndb.sources.osv import OsvSource

INTRO, F, L, X = EventKind.INTRODUCED, EventKind.FIXED, EventKind.LAST_AFFECTED, EventKind.LIMIT


def _affected(
    ecosystem: str, *events: tuple[EventKind, str], type_: str = "ECOSYSTEM", versions: tuple[str, ...] = ()
) -> Affected:
    return Affected(
        ecosystem,
        "pkg",
        ranges=(Range(type_, tuple(Event(k, v) for k, v in events)),) if events else (),
        versions=versions,
    )


# (name, affected, version, expected)
CASES: list[tuple[str, Affected, str, bool]] = [
    ("introduced 0, below fix", _affected("PyPI", (INTRO, "0"), (F, "1.0")), "0.9", True),
    ("introduced 0, at fix", _affected("PyPI", (INTRO, "0"), (F, "1.0")), "1.0", False),
    ("introduced 0, above fix", _affected("PyPI", (INTRO, "0"), (F, "1.0")), "1.0.1", False),
    ("pre-release of the fix is affected", _affected("PyPI", (INTRO, "0"), (F, "1.0")), "1.0rc1", True),
    ("below introduced", _affected("PyPI", (INTRO, "1.0"), (F, "2.0")), "0.9", False),
    ("at introduced", _affected("PyPI", (INTRO, "1.0"), (F, "2.0")), "1.0", True),
    (
        "two ranges, in the first",
        _affected("PyPI", (INTRO, "1.0"), (F, "1.2"), (INTRO, "2.0"), (F, "2.1")),
        "1.1",
        True,
    ),
    ("two ranges, between", _affected("PyPI", (INTRO, "1.0"), (F, "1.2"), (INTRO, "2.0"), (F, "2.1")), "1.5", False),
    (
        "two ranges, in the second",
        _affected("PyPI", (INTRO, "1.0"), (F, "1.2"), (INTRO, "2.0"), (F, "2.1")),
        "2.0.5",
        True,
    ),
    (
        "two ranges, events unsorted",
        _affected("PyPI", (F, "2.1"), (INTRO, "2.0"), (F, "1.2"), (INTRO, "1.0")),
        "2.0.5",
        True,
    ),
    (
        "two ranges unsorted, between",
        _affected("PyPI", (F, "2.1"), (INTRO, "2.0"), (F, "1.2"), (INTRO, "1.0")),
        "1.5",
        False,
    ),
    ("last_affected: at it", _affected("Maven", (INTRO, "1.2"), (L, "1.2.17")), "1.2.17", True),
    ("last_affected: above it", _affected("Maven", (INTRO, "1.2"), (L, "1.2.17")), "1.2.17.1", False),
    ("introduced only: everything above", _affected("npm", (INTRO, "1.0.0")), "99.0.0", True),
    ("introduced == fixed: empty", _affected("npm", (INTRO, "1.0.0"), (F, "1.0.0")), "1.0.0", False),
    ("limit bounds a version range", _affected("npm", (INTRO, "0"), (X, "2.0.0")), "2.0.0", False),
    ("limit bounds a version range, below", _affected("npm", (INTRO, "0"), (X, "2.0.0")), "1.9.9", True),
    ("limit * is no limit", _affected("npm", (INTRO, "0"), (X, "*")), "9.0.0", True),
    (
        "SEMVER for Go with v and pseudo-version",
        _affected("Go", (INTRO, "0"), (F, "0.1.0"), type_="SEMVER"),
        "v0.0.0-20200622213623-75b288015ac9",
        True,
    ),
    (
        "SEMVER Go pre-release bound 1.20.0-0",
        _affected("Go", (INTRO, "1.20.0-0"), (F, "1.20.4"), type_="SEMVER"),
        "go1.20.3",
        True,
    ),
    (
        "SEMVER Go below 1.20.0-0",
        _affected("Go", (INTRO, "1.20.0-0"), (F, "1.20.4"), type_="SEMVER"),
        "go1.19.8",
        False,
    ),
    ("Debian epoch", _affected("Debian:12", (INTRO, "0"), (F, "1:1.0-1")), "2.0-1", True),
    ("Debian tilde backport", _affected("Debian:12", (INTRO, "0"), (F, "3.0.22-1~deb12u2")), "3.0.20-1~deb12u2", True),
    ("Alpine revision", _affected("Alpine:v3.10", (INTRO, "0"), (F, "1.1.22-r3")), "1.1.22-r2", True),
    ("Alpine revision fixed", _affected("Alpine:v3.10", (INTRO, "0"), (F, "1.1.22-r3")), "1.1.22-r10", False),
    ("versions list, exact", _affected("PyPI", versions=("1.0", "1.1")), "1.1", True),
    ("versions list, equal under PEP 440", _affected("PyPI", versions=("2.2",)), "2.2.0", True),
    ("versions list, absent", _affected("PyPI", versions=("1.0", "1.1")), "1.2", False),
]


@pytest.mark.parametrize(("name", "affected", "version", "expected"), CASES, ids=[c[0] for c in CASES])
def test_evaluation(name: str, affected: Affected, version: str, expected: bool) -> None:
    verdict = evaluate(affected, version)
    assert verdict.affected is expected
    assert verdict.skipped == ()


def test_git_ranges_are_skipped_with_a_reason() -> None:
    git = Affected(
        "PyPI", "pkg", ranges=(Range("GIT", (Event(INTRO, "0"), Event(F, "abc1234")), "https://example/repo"),)
    )
    verdict = evaluate(git, "1.0")
    assert not verdict.affected
    assert verdict.skipped and "GIT range" in verdict.skipped[0]


def test_unparsable_versions_skip_the_range_with_a_reason() -> None:
    bad_event = _affected("Debian:12", (INTRO, "0"), (F, "not a version"))
    assert "invalid dpkg version" in evaluate(bad_event, "1.0-1").skipped[0]
    bad_package_version = _affected("PyPI", (INTRO, "0"), (F, "2.0"))
    verdict = evaluate(bad_package_version, "definitely-not-pep440!")
    assert not verdict.affected and "not a PEP 440 version" in verdict.skipped[0]
    unknown = _affected("Hackage", (INTRO, "0"), (F, "2.0"))
    assert "no version rules" in evaluate(unknown, "1.0").skipped[0]
    future = Affected("npm", "pkg", ranges=(Range("CALVER", (Event(INTRO, "0"),)),))
    assert "not one of" in evaluate(future, "1.0.0").skipped[0]


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _index(zip_path: Path) -> dict[str, list[tuple[str, Affected]]]:
    index: dict[str, list[tuple[str, Affected]]] = defaultdict(list)
    for document in Input(zip_path).documents():
        for advisory in read_advisories(OsvSource(), document):
            if advisory.withdrawn:  # a withdrawn advisory reports nothing (GO-2025-3543, PYSEC-2022-43059)
                continue
            for entry in advisory.affected:
                index[_pep503(entry.name)].append((advisory.id, entry))
    return index


@needs_shared
@pytest.mark.parametrize(
    ("group", "zip_name"), [("pypi", "PyPI"), ("npm", "npm"), ("go", "Go"), ("crates", "crates.io")]
)
def test_real_data_finds_exactly_the_expected_advisories(group: str, zip_name: str) -> None:
    index = _index(OSV / zip_name / "all.zip")
    for case in expectations()[group]:
        if "advisories" not in case or not case.get("advisory_source", "osv/").startswith("osv/"):
            continue  # handlebars' advisory is in the legacy NSP format, not OSV
        found = {aid for aid, entry in index[_pep503(case["name"])] if evaluate(entry, case["version"]).affected}
        expected = {a["id"] for a in case["advisories"]}
        assert found == expected, f"{case['name']} {case['version']}"
