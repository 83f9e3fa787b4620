"""Re-check benchmark: stored inventories matched again after an import, against scanning one image cold.

In a scratch folder, in the same run:
1. reference: index the Alpine fixture image (``oci-alpine-app``, three layers, 27 components) with an empty
   layer cache and match it: what one image costs a scanner that keeps no inventories (trivy, grype);
2. ``--inventories`` N reports are stored in a fresh metadata database (SQLite): half are the fixture's
   inventory, half the same without its openssl packages, each under its own digest, all matched against
   the older slice of the data (written Alpine v3.20 secdb: musl and zlib);
3. the rest of the data (openssl) is imported, and ``Rechecker.run`` re-checks: only the N/2 inventories
   that hold openssl are matched again, from their stored components, and all of them gain a finding.

Reported: the re-check's seconds, per re-checked inventory, and that per-inventory cost as a fraction of
the cold scan of one image. Issue 5 aims at 10,000 inventories after 1,000 changed advisories under 10 s.
Speed is reported, never asserted. Not measured: webhook delivery and audit writes (asynchronous).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from trustyard.db.engine import Database
from trustyard.registry.jobs import ScanJobs, StoredReport
from trustyard.scan.cache import DirectoryLayerCache
from trustyard.scan.indexer import Indexer
from trustyard.scan.pipeline import InventoryMatcher, encode_inventory
from trustyard.scan.recheck import Rechecker
from trustyard.scan.sources import open_source
from trustyard.scan.vulndb.importer import import_path
from trustyard.scan.vulndb.store import VulnerabilityStore

SHARED = Path(os.environ.get("TRUSTYARD_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
LAYOUT = SHARED / "images" / "oci-alpine-app"
OLDER = {"musl": {"1.2.5-r1": ["CVE-2025-26519"]}, "zlib": {"1.2.12-r2": ["CVE-2022-37434"]}}
NEWER = {**OLDER, "openssl": {"3.3.2-r1": ["CVE-2024-9143"]}}


def import_secdb(store: Path, packages: dict[str, dict[str, list[str]]], folder: Path) -> None:
    """WRITTEN DATA in Alpine's secdb format (v3.20 main), imported as ``trustyard db import`` does."""
    folder.mkdir(parents=True)
    document: dict[str, Any] = {
        "apkurl": "{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk",
        "archs": ["x86_64"],
        "reponame": "main",
        "urlprefix": "https://dl-cdn.alpinelinux.org/alpine",
        "distroversion": "v3.20",
        "packages": [{"pkg": {"name": n, "secfixes": f}} for n, f in packages.items()],
    }
    (folder / "v3.20-main.json").write_text(json.dumps(document))
    with VulnerabilityStore(store) as s:
        import_path(s, folder / "v3.20-main.json")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--inventories", type=int, default=2000, help="stored inventories (half affected)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trustyard-recheck-") as scratch:
        root = Path(scratch)
        store = root / "vulndb.sqlite"
        import_secdb(store, OLDER, root / "older")
        start = time.perf_counter()
        source = open_source(f"oci:{LAYOUT}:fixture-alpine-app:1")
        try:
            report = Indexer(cache=DirectoryLayerCache(root / "cache", fsync=False)).index(source)
        finally:
            source.close()
        layers = [str(s.digest) for s in report.layers]
        with InventoryMatcher(store) as matcher:
            full = matcher.match(report.components, layers)
            cold = time.perf_counter() - start
            kept = [c for c in report.components if c.source_name != "openssl"]
            partial = matcher.match(kept, layers)
        jobs = ScanJobs(Database(f"sqlite:///{root / 'meta.db'}"))
        variants = [(report.components, full), (kept, partial)]
        for i in range(args.inventories):
            components, outcome = variants[i % 2]
            inventory = encode_inventory(components, [s.digest for s in report.layers])
            stored = StoredReport(
                f"sha256:{i:064x}", 0, 0, outcome.generation, None, inventory, "", "", outcome.findings,
                tuple(sorted(outcome.ids)), None,
            )  # fmt: skip
            jobs.store_report(stored, outcome.packages)
        rechecker = Rechecker(jobs=jobs, vulndb=store)
        rechecker.run()  # records the generation
        import_secdb(store, NEWER, root / "newer")
        result = rechecker.run()
        if result is None:
            sys.exit("the import was not seen")
        per = result.seconds / max(result.inventories, 1)
        print(f"cold scan of one image (index + match): {cold * 1000:.0f} ms")
        print(
            f"re-check: {result.inventories} of {args.inventories} inventories matched again,"
            f" {len(result.changes)} changed, in {result.seconds:.2f} s ({per * 1000:.2f} ms each,"
            f" {per / cold:.3f} of a cold scan)"
        )


if __name__ == "__main__":
    main()
