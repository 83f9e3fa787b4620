"""The vulnerability store on the real shared data: counts equal to what the files hold, incremental re-imports
that change nothing, newer records that replace older ones, and malformed input that leaves the store untouched.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from scan.vulndb.shared import ALPINE, DEBIAN_EXCERPT, OSV, expectations, needs_shared
from trustyard.scan.vulndb.errors import SourceFormatError, StoreError, UnrecognizedSourceError, VulnDbError
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.model import Status
from trustyard.scan.vulndb.ranges import affected_by
from trustyard.scan.vulndb.store import SCHEMA_VERSION, VulnerabilityStore

pytestmark = needs_shared


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VulnerabilityStore]:
    with VulnerabilityStore(tmp_path / "vulndb.sqlite") as s:
        yield s


def _snapshot(path: Path) -> str:
    """A digest of everything stored (provenance rows aside, which record each attempt's time)."""
    db = sqlite3.connect(path)
    h = hashlib.sha256()
    for table, order in (("advisories", "pk"), ("affected", "rowid"), ("aliases", "alias, advisory")):
        for row in db.execute(f"SELECT * FROM {table} ORDER BY {order}"):  # noqa: S608 (fixed names)
            h.update(repr(row).encode())
    db.close()
    return h.hexdigest()


def _osv_counts(zip_path: Path) -> tuple[int, int, int, int]:
    """(records, affected entries with a package, aliases, withdrawn) as the zip holds them."""
    records = affected = aliases = withdrawn = 0
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            record = json.loads(zf.read(name))
            records += 1
            affected += sum(1 for a in record.get("affected", []) if "package" in a)
            aliases += len(set(record.get("aliases", [])))
            withdrawn += "withdrawn" in record
    return records, affected, aliases, withdrawn


@pytest.mark.parametrize("ecosystem", ["PyPI", "Go", "crates.io", "npm", "Debian", "Ubuntu", "Maven"])
def test_osv_zip_counts_match_the_file_and_reimport_changes_nothing(store: VulnerabilityStore, ecosystem: str) -> None:
    zip_path = OSV / ecosystem / "all.zip"
    records, affected, aliases, withdrawn = _osv_counts(zip_path)
    report = import_path(store, zip_path)
    feed = report.feeds["osv"]
    assert (feed.records, len(feed.added), feed.changed, feed.unchanged) == (records, records, [], 0)
    counts = store.counts()
    assert (counts["advisories"], counts["affected"], counts["aliases"]) == (records, affected, aliases)
    [status] = store.sources()
    assert (status.advisories, status.withdrawn, status.affected) == (records, withdrawn, affected)
    before = _snapshot(store.path)

    again = import_path(store, zip_path).feeds["osv"]
    assert (again.records, again.added, again.changed, again.unchanged) == (records, [], [], records)
    assert _snapshot(store.path) == before


def test_pypi_data_time_is_the_newest_record(store: VulnerabilityStore) -> None:
    report = import_path(store, OSV / "PyPI" / "all.zip")
    assert report.feeds["osv"].data_time == "2024-10-10T17:22:00.587279Z"
    assert store.schema_version == SCHEMA_VERSION


def test_store_holds_the_raw_record_verbatim(store: VulnerabilityStore) -> None:
    import_path(store, OSV / "PyPI" / "all.zip")
    with zipfile.ZipFile(OSV / "PyPI" / "all.zip") as zf:
        assert store.raw("osv", "PYSEC-2019-132") == zf.read("PYSEC-2019-132.json")


def test_lookup_by_package_normalises_pypi_names(store: VulnerabilityStore) -> None:
    import_path(store, OSV / "PyPI" / "all.zip")
    entries = store.affected_by_package("PyPI", "URLLib3")
    found = {e.advisory_id for e in entries if not e.withdrawn and affected_by([e.affected], "1.24.1").affected}
    expected = next(c for c in expectations()["pypi"] if c["name"] == "urllib3")
    assert found == {a["id"] for a in expected["advisories"]}


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _record(modified: str, summary: str = "original", fixed: str = "2.0") -> bytes:
    record = {
        "id": "TEST-2024-1",
        "modified": modified,
        "aliases": ["CVE-2024-0001"],
        "summary": summary,
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
    }
    return json.dumps(record).encode()


def test_only_a_newer_modified_time_replaces_an_advisory(store: VulnerabilityStore, tmp_path: Path) -> None:
    first = _write_zip(tmp_path / "a.zip", {"TEST-2024-1.json": _record("2024-01-01T00:00:00Z")})
    assert import_path(store, first).feeds["osv"].added == ["TEST-2024-1"]

    same_time = _write_zip(tmp_path / "b.zip", {"TEST-2024-1.json": _record("2024-01-01T00:00:00Z", "edited")})
    before = _snapshot(store.path)
    feed = import_path(store, same_time).feeds["osv"]
    assert (feed.changed, feed.older) == ([], 1)
    assert _snapshot(store.path) == before

    older = _write_zip(tmp_path / "c.zip", {"TEST-2024-1.json": _record("2023-01-01T00:00:00Z", fixed="1.0")})
    assert import_path(store, older).feeds["osv"].older == 1
    assert _snapshot(store.path) == before

    newer = _write_zip(tmp_path / "d.zip", {"TEST-2024-1.json": _record("2024-02-01T00:00:00+00:00", fixed="3.0")})
    assert import_path(store, newer).feeds["osv"].changed == ["TEST-2024-1"]
    [entry] = store.affected_by_package("PyPI", "demo")
    assert entry.affected.ranges[0].events[1].version == "3.0"
    assert store.counts()["affected"] == 1


def test_records_without_times_are_compared_by_content(store: VulnerabilityStore, tmp_path: Path) -> None:
    go_like = _write_zip(tmp_path / "a.zip", {"x.json": _record("0001-01-01T00:00:00Z")})
    import_path(store, go_like)
    unchanged = import_path(store, go_like).feeds["osv"]
    assert (unchanged.changed, unchanged.unchanged) == ([], 1)
    edited = _write_zip(tmp_path / "b.zip", {"x.json": _record("0001-01-01T00:00:00Z", fixed="2.1")})
    assert import_path(store, edited).feeds["osv"].changed == ["TEST-2024-1"]


MALFORMED: dict[str, bytes] = {
    "not JSON": b"{not json",
    "no id": json.dumps({"modified": "2024-01-01T00:00:00Z"}).encode(),
    "two kinds in one event": _record("2024-01-01T00:00:00Z").replace(
        b'{"introduced": "0"}', b'{"introduced": "0", "fixed": "1"}'
    ),
    "bad time": _record("yesterday"),
    "ranges not a list": _record("2024-01-01T00:00:00Z")
    .replace(b'"ranges": [', b'"ranges": {"x": [')
    .replace(b"]}]}]", b"]}]}}]"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_member_fails_the_whole_import_and_changes_nothing(
    store: VulnerabilityStore, tmp_path: Path, case: str
) -> None:
    import_path(store, OSV / "npm" / "all.zip")
    before, counts = _snapshot(store.path), store.counts()
    good = {
        f"GOOD-{i}.json": _record("2024-01-01T00:00:00Z").replace(b"TEST-2024-1", f"GOOD-{i}".encode())
        for i in range(3)
    }
    bad = _write_zip(tmp_path / "bad.zip", {**good, "BAD.json": MALFORMED[case]})
    with pytest.raises(SourceFormatError, match=r"bad\.zip!BAD\.json"):
        import_path(store, bad, source="osv")
    assert _snapshot(store.path) == before
    assert store.counts() == counts


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"PK\x03\x04 truncated zip", SourceFormatError),
        (b"\x00\x01binary", SourceFormatError),
        (json.dumps({"hello": "world"}).encode(), UnrecognizedSourceError),
        (json.dumps([1, 2, 3]).encode(), UnrecognizedSourceError),
    ],
)
def test_files_that_are_no_advisory_data_are_a_clear_error(
    store: VulnerabilityStore, tmp_path: Path, content: bytes, error: type[Exception]
) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(content)
    with pytest.raises(error):
        import_path(store, path)
    assert store.counts()["advisories"] == 0


def test_unknown_files_in_a_directory_are_skipped_and_listed(store: VulnerabilityStore, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.json").write_text('{"hello": "world"}')
    (tmp_path / "data" / "TEST-2024-1.json").write_bytes(_record("2024-01-01T00:00:00Z"))
    report = import_path(store, tmp_path / "data")
    assert report.skipped == [str(tmp_path / "data" / "notes.json")]
    assert report.feeds["osv"].added == ["TEST-2024-1"]


def test_unknown_source_name_and_missing_path(store: VulnerabilityStore, tmp_path: Path) -> None:
    with pytest.raises(UnrecognizedSourceError, match="known: alpine, debian, nvd, osv"):
        import_path(store, OSV / "npm" / "all.zip", source="ghsa")
    with pytest.raises(VulnDbError, match="no such file"):
        import_path(store, tmp_path / "absent.zip")


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a trustyard vulnerability store"):
        VulnerabilityStore(junk)
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(StoreError, match="not a trustyard vulnerability store"):
        VulnerabilityStore(other)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vulndb.sqlite"
    VulnerabilityStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 99 is newer"):
        VulnerabilityStore(path)


# --- Alpine secdb -----------------------------------------------------------------------------------------


def _alpine_links(path: Path) -> set[tuple[str, str, str]]:
    """(package, fixed version, id) links of one secdb file, counted straight from the JSON."""
    data = json.loads(path.read_text())
    links = set()
    for package in data["packages"] or []:
        for version, entries in (package["pkg"].get("secfixes") or {}).items():
            for entry in entries or []:
                token = entry.strip().replace("CVE_", "CVE-").replace("CVE ", "CVE-").split()[0]
                if token[:1].isalpha() and "-" in token and token.split("-")[1][:1].isdigit():
                    links.add((package["pkg"]["name"], version, token))
    return links


def test_alpine_secdb_counts_match_the_files(store: VulnerabilityStore) -> None:
    report = import_path(store, ALPINE)
    for path in sorted(ALPINE.glob("*.json")):
        data = json.loads(path.read_text())
        feed = report.feeds.get(f"alpine:{data['distroversion']}-{data['reponame']}")
        links = _alpine_links(path)
        assert (feed.records if feed else 0) == len({i for _, _, i in links}), path.name
        stored = sum(s.affected for s in store.sources() if feed and s.source == feed.source)
        assert stored == len(links), path.name
    assert sum(len(_alpine_links(p)) for p in ALPINE.glob("*.json")) == store.counts()["affected"]
    again = import_path(store, ALPINE)
    assert again.added == [] and again.changed == []


def test_alpine_expectations_are_found_with_their_fixed_versions(store: VulnerabilityStore) -> None:
    import_path(store, ALPINE)
    for case in expectations()["alpine"]:
        entries = store.affected_by_package(case["ecosystem"], case["name"])
        vulnerable = {e.advisory_id for e in entries if affected_by([e.affected], case["version"]).affected}
        assert vulnerable >= set(case["advisories_cves"]), case["name"]
        fixed_at = {e.advisory_id for e in entries if not affected_by([e.affected], case["fixed_version"]).affected}
        assert fixed_at >= set(case["advisories_cves"]), case["name"]


# --- Debian Security Tracker ------------------------------------------------------------------------------


def test_debian_tracker_excerpt(store: VulnerabilityStore) -> None:
    report = import_path(store, DEBIAN_EXCERPT)
    data = json.loads(DEBIAN_EXCERPT.read_text())
    ids = {i for entries in data.values() for i in entries}
    assert sorted(report.feeds["debian"].added) == sorted(ids)
    assert store.counts()["affected"] == sum(len(e["releases"]) for es in data.values() for e in es.values())
    by_release = {
        (e.advisory_id, e.affected.ecosystem): e.affected for e in store.affected_by_package("Debian:12", "apparmor")
    }
    assert by_release["CVE-2014-1424", "Debian:12"].status == Status.NOT_AFFECTED
    assert by_release["CVE-2016-1585", "Debian:12"].status == Status.UNFIXED
    fixed = by_release["CVE-2017-6507", "Debian:12"]
    assert fixed.status == Status.FIXED and fixed.ranges[0].events[1].version == "2.11.0-3"
    assert not affected_by([fixed], "3.0.8-3").affected
    assert affected_by([by_release["CVE-2016-1585", "Debian:12"]], "3.0.8-3").affected


def test_debian_tracker_states(store: VulnerabilityStore, tmp_path: Path) -> None:
    """The shared excerpt has no no-dsa, ignored, postponed or end-of-life entries, and no bookworm fixes for
    the fixture packages; this document is written in the tracker's published JSON shape to cover them."""

    def release(status: str, **extra: str) -> dict[str, object]:
        return {"status": status, "repositories": {"bookworm": "1"}, "urgency": extra.pop("urgency", "low"), **extra}

    dump = {
        "expat": {
            "CVE-2024-28757": {
                "description": "XML entity expansion",
                "releases": {"bookworm": release("resolved", fixed_version="2.5.0-1+deb12u1")},
            }
        },
        "jq": {"CVE-2026-32316": {"releases": {"bookworm": release("open", nodsa="Minor issue", nodsa_reason="")}}},
        "patch": {
            "CVE-2026-115207": {"releases": {"bookworm": release("open", nodsa="Minor issue", nodsa_reason="ignored")}}
        },
        "libpng1.6": {
            "CVE-2026-46675": {"releases": {"bookworm": release("open", nodsa="x", nodsa_reason="postponed")}}
        },
        "pcre2": {"CVE-2026-103111": {"releases": {"buster": release("open", urgency="end-of-life")}}},
        "libzstd": {"CVE-2026-124851": {"releases": {"bookworm": release("undetermined")}}},
    }
    path = tmp_path / "tracker.json"
    path.write_text(json.dumps(dump))
    import_path(store, path)
    status = {
        (p, e.affected.ecosystem): e.affected.status
        for p in dump
        for e in store.affected_by_package("Debian:12", p) + store.affected_by_package("Debian:10", p)
    }
    assert status == {
        ("expat", "Debian:12"): Status.FIXED,
        ("jq", "Debian:12"): Status.NO_DSA,
        ("patch", "Debian:12"): Status.IGNORED,
        ("libpng1.6", "Debian:12"): Status.POSTPONED,
        ("pcre2", "Debian:10"): Status.END_OF_LIFE,
        ("libzstd", "Debian:12"): Status.UNDETERMINED,
    }
    [expat] = store.affected_by_package("Debian:12", "expat")
    assert affected_by([expat.affected], "2.5.0-1").affected
    assert not affected_by([expat.affected], "2.5.0-1+deb12u2").affected
