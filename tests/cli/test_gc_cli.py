"""``trustyard gc`` as a command: JSON and table reports, dry run, and what it deletes on real data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from trustyard.config import load_settings
from trustyard.oci.digest import Digest
from trustyard.registry.app import create_registry


def _gc(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["trustyard", "gc", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _stray_blob(data_dir: Path, data: bytes) -> Digest:
    """A blob linked to a repository by a committed row, referenced by no manifest."""
    registry = create_registry(load_settings(data_dir=data_dir, fsync=False))
    digest = Digest.of(data)
    registry.store.put(digest, data)
    with registry.db.write() as conn:
        registry.meta.record_blob(conn, "cli/test", str(digest), len(data))
    registry.db.dispose()
    return digest


def test_json_report_dry_run_then_real_run(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    digest = _stray_blob(data_dir, b"nobody needs me")
    dry = _gc(data_dir, "--grace-period", "0", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["dry_run"] is True
    assert report["blobs_deleted"] == [str(digest)]
    assert report["bytes_freed"] == len(b"nobody needs me")
    blob_file = data_dir / "blobs" / "sha256" / digest.hex[:2] / digest.hex
    assert blob_file.is_file()  # a dry run deletes nothing
    real = _gc(data_dir, "--grace-period", "0", "--json")
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["blobs_deleted"] == [str(digest)]
    assert not blob_file.exists()
    again = _gc(data_dir, "--grace-period", "0", "--json")
    assert json.loads(again.stdout)["blobs_deleted"] == []


def test_default_grace_period_spares_fresh_content_and_prints_a_table(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    _stray_blob(data_dir, b"fresh")
    out = _gc(data_dir)
    assert out.returncode == 0, out.stderr
    assert "garbage collection" in out.stdout and "blobs" in out.stdout
    assert len(list((data_dir / "blobs" / "sha256").rglob("*"))) == 2  # its shard folder and the file: kept
