"""Garbage-collection runs are recorded and shown: a real ``trustyard gc`` and a scheduled run inside a real
``trustyard serve --gc-interval`` each leave a ``gc_runs`` row with what they deleted, which
``GET /api/v1/gc/runs`` and the ``/gc`` page show administrators and refuse everyone else.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.test_gc_cli import _stray_blob
from interop.servers import TrustyardServer
from trustyard.oci.digest import Digest

from .conftest import PASSWORD, open_site

STRAY = b"a layer nobody references any more"


def _trustyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["trustyard", *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.anyio
async def test_a_cli_run_is_recorded_and_only_administrators_see_it(
    tmp_path: Path, password_hash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("TRUSTYARD_")]:
        monkeypatch.delenv(key)
    data_dir = tmp_path / "data"
    _stray_blob(data_dir, STRAY)
    dry = _trustyard("gc", "--data-dir", str(data_dir), "--grace-period", "0", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    real = _trustyard("gc", "--data-dir", str(data_dir), "--grace-period", "0", "--json")
    assert real.returncode == 0, real.stderr
    async with open_site(tmp_path, password_hash) as site:
        api = await site.client()
        found = await api.get("/api/v1/gc/runs", auth=("root", PASSWORD))
        assert found.status_code == 200, found.text
        runs = found.json()["runs"]
        assert [(r["trigger"], r["dry_run"], r["status"]) for r in runs] == [
            ("cli", False, "done"),
            ("cli", True, "done"),
        ]
        for run in runs:  # the dry run counts what the real run then deleted
            assert (run["blobs_deleted"], run["bytes_freed"], run["manifests_deleted"]) == (1, len(STRAY), 0)
            assert run["error"] is None and run["finished_at"] >= run["started_at"]
        one = await api.get("/api/v1/gc/runs", params={"limit": "1"}, auth=("root", PASSWORD))
        assert [r["id"] for r in one.json()["runs"]] == [runs[0]["id"]]
        bad = await api.get("/api/v1/gc/runs", params={"limit": "0"}, auth=("root", PASSWORD))
        assert bad.status_code == 400 and "limit" in bad.text

        refused = await api.get("/api/v1/gc/runs", auth=("alice", PASSWORD))
        assert refused.status_code == 403
        assert "administrator" in refused.json()["errors"][0]["message"]

        root = await site.client()
        await site.sign_in(root, "root")
        page = await root.get("/gc")
        assert page.status_code == 200
        rows = re.findall(r"<tr><td>.*?</tr>", page.text, re.S)
        assert len(rows) == 2
        assert "trustyard gc" in rows[0] and "dry run" not in rows[0] and "dry run" in rows[1]
        assert f'title="{len(STRAY)} bytes"' in rows[0] and '<td class="num">1</td>' in rows[0]
        assert 'href="/gc"' in page.text  # administrators get the link in the menu

        alice = await site.client()
        await site.sign_in(alice, "alice")
        denied = await alice.get("/gc")
        assert denied.status_code == 403 and "Not allowed" in denied.text
        assert 'href="/gc"' not in (await alice.get("/projects")).text


@pytest.mark.anyio
async def test_a_failed_run_is_recorded_with_its_error(
    tmp_path: Path, password_hash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob whose file cannot be unlinked (a directory stands in its place) stops the run: the command fails
    with the reason and no traceback, and the run's row says ``failed`` and why; the blob's row stays."""
    for key in [k for k in os.environ if k.startswith("TRUSTYARD_")]:
        monkeypatch.delenv(key)
    data_dir = tmp_path / "data"
    digest = _stray_blob(data_dir, STRAY)
    blob_file = data_dir / "blobs" / "sha256" / digest.hex[:2] / digest.hex
    blob_file.unlink()
    blob_file.mkdir()
    (blob_file / "in-the-way").write_text("x")
    failed = _trustyard("gc", "--data-dir", str(data_dir), "--grace-period", "0", "--json")
    assert failed.returncode != 0
    assert f"cannot delete blob {digest}" in failed.stderr and "Traceback" not in failed.stderr
    async with open_site(tmp_path, password_hash) as site:
        api = await site.client()
        runs = (await api.get("/api/v1/gc/runs", auth=("root", PASSWORD))).json()["runs"]
        assert [(r["trigger"], r["status"], r["blobs_deleted"]) for r in runs] == [("cli", "failed", 0)]
        assert f"cannot delete blob {digest}" in runs[0]["error"] and runs[0]["finished_at"] is not None
        root = await site.client()
        await site.sign_in(root, "root")
        page = await root.get("/gc")
        assert "failed" in page.text and f"cannot delete blob {digest}" in page.text
        with site.app.state.registry.db.read() as conn:
            kept = conn.exec_driver_sql("SELECT count(*) FROM blobs WHERE digest = ?", (str(digest),)).scalar()
        assert kept == 1


class ScheduledGcServer(TrustyardServer):
    """``trustyard serve`` collecting every half second, with no grace period (nothing else writes here)."""

    def command(self) -> list[str]:
        return [*super().command(), "--gc-interval", "0.5"]

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "TRUSTYARD_GC_GRACE_PERIOD": "0"}


def _finished_runs(http: httpx.Client, at_least: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        answer = http.get("/api/v1/gc/runs", params={"limit": "1000"})
        assert answer.status_code == 200, answer.text
        done = [r for r in answer.json()["runs"] if r["status"] != "running"]
        if len(done) >= at_least:
            return done
        assert time.monotonic() < deadline, f"only {len(done)} scheduled runs finished in 60 s"
        time.sleep(0.2)


def test_scheduled_runs_in_serve_are_recorded_and_shown(tmp_path: Path) -> None:
    server = ScheduledGcServer(workdir=tmp_path)
    _stray_blob(server.data_dir, STRAY)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10, auth=server.credentials) as http:
            done = _finished_runs(http, at_least=3)
            assert {(r["trigger"], r["dry_run"], r["status"]) for r in done} == {("schedule", False, "done")}
            first, *later = reversed(done)  # newest first on the wire: the oldest run found the stray blob
            assert (first["blobs_deleted"], first["bytes_freed"]) == (1, len(STRAY))
            assert all((r["blobs_deleted"], r["bytes_freed"]) == (0, 0) for r in later)
            assert http.head(f"/v2/cli/test/blobs/{Digest.of(STRAY)}").status_code == 404

        with httpx.Client(base_url=server.url, timeout=10) as browser:
            form = browser.get("/login").text
            token = re.search(r'name="csrf" value="([^"]+)"', form)
            assert token is not None
            user, password = server.credentials
            fields = {"csrf": token.group(1), "username": user, "password": password, "next": "/gc"}
            signed_in = browser.post("/login", data=fields)
            assert signed_in.status_code == 303, signed_in.text
            page = browser.get("/gc")
            assert page.status_code == 200
            assert page.text.count(">schedule<") >= 3 and f'title="{len(STRAY)} bytes"' in page.text
    finally:
        server.stop()
