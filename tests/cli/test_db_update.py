"""``trustyard db update`` against a local HTTP server (127.0.0.1, never the internet) serving the shared data
in the layout of each source's public location, built in a tmp dir from symlinks:

    osv/ecosystems.txt, osv/<ECOSYSTEM>/all.zip       (osv.dev's bucket)
    debian/json                                       (security-tracker.debian.org/tracker/data/json)
    alpine/v3.10/main.json, community.json            (secdb.alpinelinux.org)
    nvd/cves                                          (the NVD API 2.0: answered per startIndex/resultsPerPage
                                                       from the four shared NVD API samples)

Python's file server answers ``If-Modified-Since`` with 304, so the second update is conditional for real.
The shared NVD data is four single-CVE samples; the test server pages them two at a time.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner, Result

from scan.shared import APP_LAYER
from scan.vulndb.shared import ALPINE, DEBIAN_EXCERPT, OSV, SHARED_VULNDB, needs_shared
from trustyard.cli import main

pytestmark = needs_shared
NVD_SAMPLES = sorted((SHARED_VULNDB / "nvd-sample").glob("*.nvd-api-2.0.json"))


@dataclass
class Behaviour:
    """What the test server does besides serving files: the NVD queries it saw, paths to fail or cut short."""

    nvd_queries: list[dict[str, list[str]]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    truncate: set[str] = field(default_factory=set)


class _Handler(http.server.SimpleHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in self.behaviour.fail:
            self.send_error(500, "broken for the test")
            return
        if path in self.behaviour.truncate:
            body = (Path(self.directory) / path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # then the connection closes: a cut download
            self.close_connection = True
            return
        if path == "/nvd/cves":
            self._nvd()
            return
        super().do_GET()

    def _nvd(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        self.behaviour.nvd_queries.append(query)
        start, size = int(query["startIndex"][0]), int(query["resultsPerPage"][0])
        items = [json.loads(p.read_bytes())["vulnerabilities"][0] for p in NVD_SAMPLES]
        if "lastModStartDate" in query:
            items = []  # nothing in the samples changed since the previous update
        page = {
            "resultsPerPage": len(items[start : start + size]),
            "startIndex": start,
            "totalResults": len(items),
            "format": "NVD_CVE",
            "version": "2.0",
            "timestamp": "2026-11-29T00:00:00.000",
            "vulnerabilities": items[start : start + size],
        }
        body = json.dumps(page).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _layout(root: Path) -> None:
    (root / "osv").mkdir(parents=True)
    (root / "osv" / "ecosystems.txt").write_text("npm\nMaven\nDebian:7\n")  # Debian:7 is in Debian's zip
    for ecosystem in ("npm", "Maven"):
        (root / "osv" / ecosystem).mkdir()
        (root / "osv" / ecosystem / "all.zip").symlink_to(OSV / ecosystem / "all.zip")
    (root / "debian" / "tracker" / "data").mkdir(parents=True)
    (root / "debian" / "tracker" / "data" / "json").symlink_to(DEBIAN_EXCERPT)
    (root / "alpine" / "v3.10").mkdir(parents=True)
    for repository in ("main", "community"):
        (root / "alpine" / "v3.10" / f"{repository}.json").symlink_to(ALPINE / f"v3.10-{repository}.json")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Behaviour]]:
    root = tmp_path / "www"
    _layout(root)
    behaviour = Behaviour()
    handler = type("Handler", (_Handler,), {"behaviour": behaviour})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", behaviour
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def env(server: tuple[str, Behaviour], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TRUSTYARD_* settings pointing every source at the test server; returns the data dir."""
    for key in [k for k in os.environ if k.startswith("TRUSTYARD_")]:
        monkeypatch.delenv(key)
    base = server[0]
    monkeypatch.setenv("TRUSTYARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TRUSTYARD_VULNDB_OSV_URL", f"{base}/osv")
    monkeypatch.setenv("TRUSTYARD_VULNDB_NVD_URL", f"{base}/nvd/cves")
    monkeypatch.setenv("TRUSTYARD_VULNDB_NVD_PAGE_SIZE", "2")
    monkeypatch.setenv("TRUSTYARD_VULNDB_NVD_DELAY", "0")
    monkeypatch.setenv("TRUSTYARD_VULNDB_DEBIAN_URL", f"{base}/debian/tracker/data/json")
    monkeypatch.setenv("TRUSTYARD_VULNDB_ALPINE_URL", f"{base}/alpine")
    monkeypatch.setenv("TRUSTYARD_VULNDB_ALPINE_RELEASES", '["v3.10"]')
    return tmp_path / "data"


def db(*args: str) -> Result:
    return CliRunner().invoke(main, ["db", *args], catch_exceptions=False)


def ok(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def snapshot(store: Path) -> str:
    """Everything in the store file, meta and provenance included."""
    con = sqlite3.connect(store)
    h = hashlib.sha256()
    for table in ("meta", "provenance", "advisories", "affected", "aliases"):
        for row in con.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):  # noqa: S608 (fixed names)
            h.update(repr(row).encode())
    con.close()
    return h.hexdigest()


def test_update_downloads_every_source_then_only_what_changed(env: Path, server: tuple[str, Behaviour]) -> None:
    base, behaviour = server
    first = ok(db("update", "--json"))
    downloads = first["downloads"]
    assert downloads["osv"]["downloaded"] == [f"{base}/osv/npm/all.zip", f"{base}/osv/Maven/all.zip"]
    assert downloads["nvd"]["downloaded"] == [f"{base}/nvd/cves"] * 2  # four CVEs, two per page
    assert [q["startIndex"] for q in behaviour.nvd_queries] == [["0"], ["2"]]
    assert downloads["alpine"]["downloaded"] == [
        f"{base}/alpine/v3.10/main.json",
        f"{base}/alpine/v3.10/community.json",
    ]
    feeds = {f["source"]: f for f in first["feeds"]}
    assert sorted(feeds) == ["alpine:v3.10-community", "alpine:v3.10-main", "debian", "nvd", "osv"]
    assert len(feeds["osv"]["added"]) == 5 and len(feeds["nvd"]["added"]) == 4
    assert feeds["nvd"]["location"] == f"{base}/nvd/cves"

    status = ok(db("status", "--json"))
    assert {s["source"]: s["location"] for s in status["sources"]}["debian"] == f"{base}/debian/tracker/data/json"
    assert all(s["data_time"] for s in status["sources"])
    updates = {u["source"]: u for u in status["updates"]}
    assert sorted(updates) == ["alpine", "debian", "nvd", "osv"] and all(u["checked_at"] for u in updates.values())

    behaviour.nvd_queries.clear()
    second = ok(db("update", "--json"))
    for feed in ("osv", "debian", "alpine"):  # 304 Not Modified: If-Modified-Since from the first update
        assert second["downloads"][feed]["downloaded"] == [], feed
    assert len(second["downloads"]["osv"]["not_modified"]) == 2
    (query,) = behaviour.nvd_queries  # incremental: CVEs modified since the first update started
    assert "lastModStartDate" in query and "lastModEndDate" in query
    assert {f["source"]: (f["added"], f["changed"]) for f in second["feeds"]} == {"nvd": ([], [])}
    text = db("status")
    assert text.exit_code == 0 and "last `trustyard db update`" in text.stdout


def test_only_named_sources(env: Path) -> None:
    report = ok(db("update", "--source", "alpine", "--json"))
    assert list(report["downloads"]) == ["alpine"]


@pytest.mark.parametrize("broken", ["fail", "truncate"])
def test_a_failed_or_cut_download_changes_nothing(env: Path, server: tuple[str, Behaviour], broken: str) -> None:
    _, behaviour = server
    ok(db("update", "--source", "alpine", "--json"))
    store = env / "vulndb.sqlite"
    before = snapshot(store)
    getattr(behaviour, broken).add("/debian/tracker/data/json")  # after osv and nvd downloaded fine
    result = db("update")
    assert result.exit_code == 1, result.output
    assert "/debian/tracker/data/json" in result.stderr and "Traceback" not in result.output
    assert ("HTTP 500" if broken == "fail" else "download failed") in result.stderr
    assert snapshot(store) == before
    assert not list((env / "downloads").iterdir())  # the staging folder is gone
    getattr(behaviour, broken).clear()
    assert ok(db("update", "--json"))["downloads"]["debian"]["downloaded"]


def test_bad_data_from_a_server_changes_nothing(env: Path, server: tuple[str, Behaviour], tmp_path: Path) -> None:
    ok(db("update", "--source", "osv", "--json"))
    store = env / "vulndb.sqlite"
    before = snapshot(store)
    target = tmp_path / "www" / "alpine" / "v3.10" / "main.json"
    target.unlink()
    target.write_text('{"distroversion": "v3.10", "reponame": "main", "packages": [{"pkg": {}}]}')
    result = db("update", "--source", "alpine")
    assert result.exit_code == 1 and "main.json" in result.stderr
    assert snapshot(store) == before


def test_scan_warns_when_data_is_older_than_vulndb_max_age(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(db("update", "--source", "osv", "--json"))  # npm records modified in 2022-2023

    def scan() -> Result:
        return CliRunner().invoke(main, ["scan", f"rootfs:{APP_LAYER}"])

    monkeypatch.setenv("TRUSTYARD_VULNDB_MAX_AGE", str(10 * 365 * 24 * 3600))
    quiet = scan()
    assert quiet.exit_code == 0, quiet.output
    assert "days old" not in quiet.stderr
    monkeypatch.setenv("TRUSTYARD_VULNDB_MAX_AGE", str(24 * 3600))
    warned = scan()
    assert warned.exit_code == 0 and "advisory data of osv is" in warned.stderr and "days old" in warned.stderr
