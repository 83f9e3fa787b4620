"""``trustyard db`` through click's runner on real advisory data: import from paths and from a local HTTP
server (127.0.0.1 serving the shared vulndb folder, never the internet), status, export, and failures that are
one line on stderr with exit code 1 (2 for usage errors) and change nothing.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from scan.vulndb.shared import ALPINE, OSV, SHARED_VULNDB, needs_shared
from trustyard.cli import main

pytestmark = needs_shared


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fresh data dir, and no TRUSTYARD_* settings from the caller's environment."""
    for key in ("TRUSTYARD_CONFIG", "TRUSTYARD_DATA_DIR", "TRUSTYARD_VULNDB_PATH"):
        monkeypatch.delenv(key, raising=False)
    return ["--data-dir", str(tmp_path / "data")]


def run(*args: str) -> Result:
    """``trustyard db <args>``."""
    return CliRunner().invoke(main, ["db", *args], catch_exceptions=False)


def ok_json(result: Result) -> Any:
    """The JSON a successful command printed."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def failed(result: Result, code: int, message: str) -> None:
    """Failed with ``code`` and ``message`` on stderr, no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the shared vulndb folder; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(SHARED_VULNDB))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("command", [[], ["import"], ["status"], ["export"]])
def test_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_import_status_reimport(data: list[str]) -> None:
    zip_path = OSV / "PyPI" / "all.zip"
    with zipfile.ZipFile(zip_path) as zf:
        records = len(zf.namelist())
    report = ok_json(run("import", str(zip_path), *data, "--json"))
    [feed] = report["feeds"]
    assert (feed["source"], feed["records"], len(feed["added"]), feed["changed"]) == ("osv", records, records, [])
    assert report["store"].endswith("vulndb.sqlite")

    status = ok_json(run("status", *data, "--json"))
    assert status["schema_version"] == 1
    assert status["counts"]["advisories"] == records
    [source] = status["sources"]
    assert (source["source"], source["advisories"], source["location"]) == ("osv", records, str(zip_path.resolve()))
    assert source["data_time"] == "2024-10-10T17:22:00.587279Z"

    again = ok_json(run("import", str(zip_path), *data, "--json"))["feeds"][0]
    assert (again["added"], again["changed"], again["unchanged"]) == ([], [], records)

    table = run("import", str(zip_path), *data)
    assert table.exit_code == 0 and "osv" in table.stdout and "2,661" in table.stdout
    assert "2,661" in run("status", *data).stdout


def test_db_option_names_the_store_file(data: list[str], tmp_path: Path) -> None:
    store = tmp_path / "elsewhere" / "advisories.sqlite"
    ok_json(run("import", str(ALPINE / "v3.10-main.json"), "--db", str(store), "--json"))
    assert store.is_file()
    status = ok_json(run("status", "--db", str(store), "--json"))
    assert [s["source"] for s in status["sources"]] == ["alpine:v3.10-main"]
    failed(run("status", *data), 1, "no vulnerability store here")


def test_directory_import_recognises_each_source(data: list[str]) -> None:
    ok_json(run("import", str(ALPINE), *data, "--json"))
    status = ok_json(run("status", *data, "--json"))
    # one source per secdb file, v3.3-community included: its "packages" is empty, and it is recorded as read
    by_source = {s["source"]: s for s in status["sources"]}
    assert len(by_source) == len(list(ALPINE.glob("*.json"))) == 18
    assert by_source["alpine:v3.3-community"]["advisories"] == 0
    assert by_source["alpine:v3.3-community"]["data_time"] is not None


def test_malformed_input_changes_nothing(data: list[str], tmp_path: Path) -> None:
    ok_json(run("import", str(OSV / "npm" / "all.zip"), *data, "--json"))
    before = ok_json(run("status", *data, "--json"))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("GOOD.json", json.dumps({"id": "GOOD-1", "modified": "2024-01-01T00:00:00Z"}))
        zf.writestr("BAD.json", "{broken")
    failed(run("import", str(bad), *data), 1, "bad.zip!BAD.json: not JSON")
    after = ok_json(run("status", *data, "--json"))
    assert after == before
    not_data = tmp_path / "x.json"
    not_data.write_text('{"hello": 1}')
    failed(run("import", str(not_data), *data), 1, "not in a known advisory format")
    failed(run("import", str(tmp_path / "absent"), *data), 1, "no such file or directory")
    assert ok_json(run("status", *data, "--json")) == before


def test_usage_errors_exit_2(data: list[str]) -> None:
    failed(run("import", str(OSV), "--source", "ghsa", *data), 2, "Invalid value for '--source'")
    failed(run("import", *data), 2, "Missing argument")


def test_import_over_http(data: list[str], server: str, tmp_path: Path) -> None:
    url = f"{server}/osv/crates.io/all.zip"
    with zipfile.ZipFile(OSV / "crates.io" / "all.zip") as zf:
        records = len(zf.namelist())
    report = ok_json(run("import", url, *data, "--json"))
    assert report["feeds"][0]["records"] == records
    assert report["feeds"][0]["location"] == url
    alpine = ok_json(run("import", f"{server}/alpine-secdb/v3.10-main.json", *data, "--json"))
    feed = alpine["feeds"][0]
    assert feed["source"] == "alpine:v3.10-main"
    # no times in secdb records: the data time is the server's Last-Modified (the file's modification time)
    mtime = int((ALPINE / "v3.10-main.json").stat().st_mtime)
    assert feed["data_time"] == datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    status = ok_json(run("status", *data, "--json"))
    assert {s["source"]: s["location"] for s in status["sources"]}["osv"] == url
    assert not any((tmp_path / "data" / "downloads").iterdir())


def test_http_errors_are_one_line_and_change_nothing(data: list[str], server: str) -> None:
    failed(run("import", f"{server}/osv/nothing-here.zip", *data), 1, "HTTP 404")
    failed(run("import", "http://127.0.0.1:9/all.zip", *data), 1, "download failed")
    failed(run("status", *data), 1, "no vulnerability store here")


def test_export_writes_every_record(data: list[str], tmp_path: Path) -> None:
    ok_json(run("import", str(OSV / "npm" / "all.zip"), *data, "--json"))
    ok_json(run("import", str(ALPINE / "v3.11-main.json"), *data, "--json"))
    result = run("export", *data)
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    status = ok_json(run("status", *data, "--json"))
    assert len(lines) == status["counts"]["advisories"]
    with zipfile.ZipFile(OSV / "npm" / "all.zip") as zf:
        published = {json.loads(zf.read(n))["id"]: json.loads(zf.read(n)) for n in zf.namelist()}
    assert {r["id"]: r["record"] for r in lines if r["source"] == "osv"} == published

    out = tmp_path / "osv.jsonl"
    assert run("export", *data, "--source", "osv", "--output", str(out)).exit_code == 0
    assert len(out.read_text().splitlines()) == len(published)


def test_the_vulndb_path_setting_names_the_store_the_registry_uses(
    data: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``TRUSTYARD_VULNDB_PATH`` moves the store for ``db`` as it does for the registry; ``--db`` still wins."""
    configured = tmp_path / "elsewhere" / "advisories.sqlite"
    configured.parent.mkdir()
    monkeypatch.setenv("TRUSTYARD_VULNDB_PATH", str(configured))
    ok_json(run("import", str(ALPINE / "v3.10-main.json"), *data, "--json"))
    assert configured.is_file()
    assert not (tmp_path / "data" / "vulndb.sqlite").exists()
    explicit = tmp_path / "explicit.sqlite"
    ok_json(run("import", str(ALPINE / "v3.10-main.json"), *data, "--db", str(explicit), "--json"))
    assert explicit.is_file()
