"""A store replaced by another one (what ``trustyard db pull`` does) has every stored inventory matched again.

Generation numbers are per store: a store built on another machine may have fewer imports than the one it
replaces, so "nothing newer than what was re-checked" would be wrong. The remembered state carries the store's
id, which copies keep and a store built elsewhere does not share. Data: WRITTEN Alpine v3.20 secdb entries for
the fixture image ``oci-alpine-app`` (the shared secdb stops at v3.11).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cli.test_db_recheck import DIGEST, LAYOUT, secdb
from trustyard.db.engine import Database
from trustyard.registry.jobs import ScanJobs, StoredReport
from trustyard.scan.indexer import Indexer
from trustyard.scan.pipeline import InventoryMatcher, encode_inventory
from trustyard.scan.recheck import GENERATION_KEY, Rechecker
from trustyard.scan.sources import open_source
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.store import VulnerabilityStore, store_identity

OLDER = {"musl": {"1.2.5-r1": ["CVE-2025-26519"]}}
NEWER = {**OLDER, "openssl": {"3.3.2-r1": ["CVE-2024-9143"]}}


def test_a_replaced_store_rechecks_everything_once_and_a_copy_does_not(tmp_path: Path) -> None:
    local = tmp_path / "data" / "vulndb.sqlite"
    with VulnerabilityStore(local) as store:
        for i in range(3):  # three imports here: generation 3
            import_path(store, secdb(tmp_path / f"older{i}" / "v3.20-main.json", OLDER))
        local_id = store.identity
    jobs = ScanJobs(Database(f"sqlite:///{tmp_path / 'meta.db'}"))
    source = open_source(f"oci:{LAYOUT / 'oci-alpine-app'}:fixture-alpine-app:1")
    try:
        report = Indexer().index(source)
    finally:
        source.close()
    with InventoryMatcher(local) as matcher:
        outcome = matcher.match(report.components, [str(s.digest) for s in report.layers])
    inventory = encode_inventory(report.components, [s.digest for s in report.layers])
    jobs.store_report(
        StoredReport(
            DIGEST, 0, 0, outcome.generation, None, inventory, "", "", outcome.findings, tuple(outcome.ids), None
        ),
        outcome.packages,
    )
    rechecker = Rechecker(jobs=jobs, vulndb=local)
    rechecker.run()
    assert jobs.get_state(GENERATION_KEY) == f"3@{local_id}"
    assert rechecker.run() is None

    built_elsewhere = tmp_path / "elsewhere" / "vulndb.sqlite"
    with VulnerabilityStore(built_elsewhere) as store:  # one import only: generation 1, below the local 3
        import_path(store, secdb(tmp_path / "newer" / "v3.20-main.json", NEWER))
        other_id = store.identity
    assert other_id != local_id
    os.replace(built_elsewhere, local)  # as db pull does
    assert store_identity(local) == other_id
    result = rechecker.run()
    assert result is not None and result.inventories == 1
    assert [(c.digest, c.added) for c in result.changes] == [(DIGEST, ("CVE-2024-9143",))]
    assert jobs.get_state(GENERATION_KEY) == f"1@{other_id}"
    assert rechecker.run() is None  # once

    copy = tmp_path / "copy.sqlite"
    shutil.copy(local, copy)
    with VulnerabilityStore(copy) as store:  # a later copy of the same store, one import further
        assert store.identity == other_id
        import_path(
            store, secdb(tmp_path / "newest" / "v3.20-main.json", {**NEWER, "zlib": {"1.3.1-r1": ["CVE-2099-1"]}})
        )
    os.replace(copy, local)
    again = rechecker.run()
    assert again is not None and again.since == 1 and again.generation == 2  # incremental, not everything
