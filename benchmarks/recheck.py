"""Re-check benchmark: stored inventories matched again after an import, against scanning one image cold.

In a scratch folder, in the same run:
1. reference: index the Alpine fixture image (``oci-alpine-app``, three layers, 27 components) with an empty
   layer cache and match it: what one image costs a scanner that keeps no inventories (trivy, grype);
2. ``--inventories`` N reports are stored in a fresh metadata database (SQLite): half are the fixture's
   inventory, half the same without its openssl packages, each under its own digest, all matched against
   the older slice of the data (written Alpine v3.20 secdb: musl and zlib);
3. the rest of the data is imported: ``--changed`` C advisories, of which one is new for openssl (the N/2
   inventories holding it gain a finding) and C-1 name packages none of the images holds (most of a day's
   changes in a real feed); with ``--every`` one of those is instead musl's advisory, changed (every
   inventory holds musl, so all N are matched again, and none changes); then ``Rechecker.run`` re-checks.

Reported: the re-check's seconds, per re-checked inventory, and that per-inventory cost as a fraction of
the cold scan of one image. Issue 5 aims at 10,000 inventories after 1,000 changed advisories under 10 s.
Speed is reported, never asserted. Not measured: webhook delivery and audit writes (asynchronous).
``measure`` is what ``benchmarks/scan.py`` calls for its table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
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


def newer(changed: int, every: bool) -> dict[str, dict[str, list[str]]]:
    """The newer data: ``changed`` advisories added or changed relative to ``OLDER`` (see the module docstring)."""
    data: dict[str, dict[str, list[str]]] = {**OLDER, "openssl": {"3.3.2-r1": ["CVE-2024-9143"]}}
    others = changed - 1
    if every:
        # the same id with a note after it: the advisory's record changes, its meaning does not
        data["musl"] = {"1.2.5-r1": ["CVE-2025-26519 (re-issued)"]}
        others -= 1
    for i in range(max(others, 0)):
        data[f"absent-{i:05d}"] = {"1.0-r0": [f"CVE-2099-{10000 + i}"]}
    return data


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


@dataclass(frozen=True)
class Figures:
    """One re-check measured: stored and matched-again inventories, changes, seconds, the cold-scan reference."""

    stored: int
    changed_advisories: int
    rechecked: int
    changed_images: int
    seconds: float
    cold: float
    cpu: float
    """CPU seconds of this process during the re-check: steadier than wall time on a loaded machine."""

    @property
    def per_inventory(self) -> float:
        """Seconds per inventory matched again."""
        return self.seconds / max(self.rechecked, 1)


def measure(root: Path, inventories: int, changed: int, every: bool) -> Figures:
    """Store ``inventories`` reports in a scratch database under ``root``, import the change, time the re-check."""
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
    for i in range(inventories):
        components, outcome = variants[i % 2]
        inventory = encode_inventory(components, [s.digest for s in report.layers])
        stored = StoredReport(
            f"sha256:{i:064x}", 0, 0, outcome.generation, None, inventory, "", "", outcome.findings,
            tuple(sorted(outcome.ids)), None,
        )  # fmt: skip
        jobs.store_report(stored, outcome.packages)
    rechecker = Rechecker(jobs=jobs, vulndb=store)
    rechecker.run()  # records the generation
    import_secdb(store, newer(changed, every), root / "newer")
    cpu = time.process_time()
    result = rechecker.run()
    cpu = time.process_time() - cpu
    if result is None:
        sys.exit("the import was not seen")
    return Figures(inventories, changed, result.inventories, len(result.changes), result.seconds, cold, cpu)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--inventories", type=int, default=2000, help="stored inventories (half hold openssl)")
    parser.add_argument("--changed", type=int, default=1, help="advisories the second import adds or changes")
    parser.add_argument("--every", action="store_true", help="one changed advisory names a package all images hold")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trustyard-recheck-") as scratch:
        f = measure(Path(scratch), args.inventories, args.changed, args.every)
    print(f"cold scan of one image (index + match): {f.cold * 1000:.0f} ms")
    print(
        f"re-check after {f.changed_advisories} changed advisories: {f.rechecked} of {f.stored} inventories"
        f" matched again, {f.changed_images} changed, in {f.seconds:.2f} s ({f.cpu:.2f} s CPU;"
        f" {f.per_inventory * 1000:.2f} ms each,"
        f" {f.per_inventory / f.cold:.3f} of a cold scan)"
    )


if __name__ == "__main__":
    main()
