"""``trustyard db import`` into the store of a registry on this machine re-checks the registry's stored images.

The registry's metadata database is made as the registry makes it (``Database`` migrates it) and holds one
stored inventory: the fixture image ``oci-alpine-app``, matched against an older slice of WRITTEN Alpine v3.20
secdb data; ``trustyard db import`` then brings the rest, through click's runner.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustyard.cli import main
from trustyard.db.engine import Database
from trustyard.registry.jobs import ScanJobs, StoredReport
from trustyard.scan.indexer import Indexer
from trustyard.scan.pipeline import InventoryMatcher, encode_inventory
from trustyard.scan.sources import open_source

LAYOUT = Path(os.environ.get("TRUSTYARD_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared")) / "images"
DIGEST = "sha256:7a85cc560cb0b9dc6056dfd26f706fd409c24072947cc7857e7ecfe4a7cf610d"


def secdb(path: Path, packages: dict[str, dict[str, list[str]]]) -> Path:
    """WRITTEN DATA in Alpine's secdb format (v3.20 main) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    packages_list = [{"pkg": {"name": n, "secfixes": f}} for n, f in packages.items()]
    path.write_text(json.dumps({"distroversion": "v3.20", "reponame": "main", "packages": packages_list}))
    return path


def test_db_import_rechecks_the_registry_images_it_affects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("TRUSTYARD_"):
            monkeypatch.delenv(key)
    data = tmp_path / "data"
    older = {"musl": {"1.2.5-r1": ["CVE-2025-26519"]}}
    runner = CliRunner()
    first = runner.invoke(
        main, ["db", "import", str(secdb(tmp_path / "a" / "v3.20-main.json", older)), "--data-dir", str(data)]
    )
    assert first.exit_code == 0, first.output
    # the registry's database, with the image indexed and matched against the older data
    db = Database(f"sqlite:///{data / 'trustyard.db'}")
    jobs = ScanJobs(db)
    source = open_source(f"oci:{LAYOUT / 'oci-alpine-app'}:fixture-alpine-app:1")
    try:
        report = Indexer().index(source)
    finally:
        source.close()
    layers = [s.digest for s in report.layers]
    with InventoryMatcher(data / "vulndb.sqlite") as matcher:
        outcome = matcher.match(report.components, [str(d) for d in layers])
    inventory = encode_inventory(report.components, layers)
    stored = StoredReport(
        DIGEST, 0, 0, outcome.generation, None, inventory, "", "", outcome.findings, tuple(outcome.ids), None
    )
    jobs.store_report(stored, outcome.packages)
    jobs.set_state("vulndb.generation", str(outcome.generation))

    newer = {**older, "openssl": {"3.3.2-r1": ["CVE-2024-9143"]}}
    second = runner.invoke(
        main, ["db", "import", str(secdb(tmp_path / "b" / "v3.20-main.json", newer)), "--data-dir", str(data)]
    )
    assert second.exit_code == 0, second.output
    assert "re-checked 1 stored images: 1 with changed findings" in second.stderr
    after = jobs.report(DIGEST)
    assert after is not None and set(after.finding_ids) == {"CVE-2025-26519", "CVE-2024-9143"}
    # importing the same data again changes nothing, and re-checks nothing
    third = runner.invoke(main, ["db", "import", str(tmp_path / "b" / "v3.20-main.json"), "--data-dir", str(data)])
    assert third.exit_code == 0 and "re-checked" not in third.stderr
    db.dispose()
