"""Vulnerability scanning benchmark: a scan against the analysis alone, the store's import rate, the re-check.

Three measurements, each against a reference taken in the same run (speed is reported, never asserted):
1. **Scan of the Debian fixture with a warm store** (``debian-bookworm-minbase/rootfs.tar.xz``, 88 debs): the
   real command lines, ``trustyard scan rootfs:TAR --no-cache --format json`` against ``trustyard sbom rootfs:TAR
   --no-cache --format json`` (the analysis alone: grype and trivy are not installed here). The store was filled
   by step 2 (OSV PyPI, the Debian tracker excerpt, OSV npm, and written tracker entries for bookworm: ten per
   source package, six of them findings) and read once before, so it is in the page cache.
   Also the match alone, in process (``Matcher.match`` of the indexed components).
2. **Import rate of the full OSV PyPI data** (``osv/PyPI/all.zip``, 2,661 records) into a fresh store, against
   reading and JSON-decoding every member of the same zip (``inputs.Input``: the floor of any importer); and
   the same import again (every record unchanged).
3. **Re-check of stored inventories after changed advisories**: ``benchmarks/recheck.py``'s ``measure`` (N stored
   inventories of the Alpine fixture, half of them holding openssl; an import of C changed advisories: one new
   for openssl, the others for packages no image holds, so N/2 are matched again; then the same with one of
   them musl's advisory re-issued, which every image holds, so all N are), against one cold scan of that image.

``--out docs/benchmarks.md`` writes the section ``## Vulnerability scanning`` and keeps the others.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/scan.py`: make `benchmarks` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.recheck import Figures, measure  # noqa: E402
from benchmarks.registry import write_section  # noqa: E402
from benchmarks.sbom import best  # noqa: E402
from trustyard.scan.indexer import Indexer  # noqa: E402
from trustyard.scan.matcher import Matcher  # noqa: E402
from trustyard.scan.sources import open_source  # noqa: E402
from trustyard.scan.vulndb.importer import import_path  # noqa: E402
from trustyard.scan.vulndb.inputs import Input  # noqa: E402
from trustyard.scan.vulndb.store import VulnerabilityStore  # noqa: E402

SECTION = "## Vulnerability scanning: trustyard scan, db import, re-check"
SHARED = Path(os.environ.get("TRUSTYARD_SHARED_DIR", REPO_ROOT.parent / "shared"))
DEBIAN = SHARED / "images" / "debian-bookworm-minbase" / "rootfs.tar.xz"
OSV = SHARED / "vulndb" / "osv"
DEBIAN_TRACKER = SHARED / "vulndb" / "debian-security-tracker" / "tracker-json-excerpt.json"
PACKAGES = SHARED / "images" / "debian-bookworm-minbase" / "debian-bookworm.packages.json"


def bookworm_tracker(folder: Path) -> Path:
    """WRITTEN DATA in the Debian tracker's JSON format for the fixture's source packages (the shared tracker
    data predates bookworm): per source package ten CVEs, the shape of a real release's entries: four fixed
    before the installed version, three fixed after it (findings), two open and one no-dsa (findings)."""
    packages = json.loads(PACKAGES.read_text())["packages"]
    dump: dict[str, dict[str, Any]] = {}
    n = 0
    for source, version in sorted({(p["source_name"], p["source_version"]) for p in packages}):
        entries: dict[str, Any] = {}
        releases: list[dict[str, Any]] = [{"status": "resolved", "fixed_version": "0.0.1", "urgency": "low"}] * 4
        releases += [{"status": "resolved", "fixed_version": f"{version}+deb12u99", "urgency": "medium"}] * 3
        releases += [{"status": "open", "urgency": "high"}] * 2
        releases += [{"status": "open", "urgency": "low", "nodsa": "Minor issue"}]
        for release in releases:
            n += 1
            entries[f"CVE-2099-{n:05d}"] = {"description": f"{source}: written", "releases": {"bookworm": release}}
        dump[source] = entries
    path = folder / "bookworm-tracker.json"
    path.write_text(json.dumps(dump))
    return path


def trustyard(*args: str) -> None:
    """One ``trustyard`` command line, its output discarded; fails the benchmark if it fails."""
    argv = [sys.executable, "-m", "trustyard", *args]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def imports(root: Path, runs: int) -> dict[str, float]:
    """Seconds to decode PyPI's zip, to import it fresh, to import it again; the store is then warmed."""
    zip_path = OSV / "PyPI" / "all.zip"
    records = Input(zip_path).count()

    def decode() -> None:
        for _ in Input(zip_path).documents():
            pass

    def fresh() -> None:
        store = root / "fresh.sqlite"
        for leftover in root.glob("fresh.sqlite*"):
            leftover.unlink()
        with VulnerabilityStore(store) as s:
            import_path(s, zip_path)

    reference = best(runs, decode)
    imported = best(runs, fresh)
    with VulnerabilityStore(root / "fresh.sqlite") as s:
        start = time.perf_counter()
        import_path(s, zip_path)
        again = time.perf_counter() - start
        import_path(s, DEBIAN_TRACKER)
        import_path(s, bookworm_tracker(root))
        import_path(s, OSV / "npm" / "all.zip")
    return {"records": records, "decode": reference, "import": imported, "again": again}


def scans(store: Path, data_dir: Path, runs: int) -> dict[str, float]:
    """Seconds of ``trustyard sbom`` and ``trustyard scan`` of the Debian fixture, and of the match alone."""
    image = f"rootfs:{DEBIAN}"
    common = ["--no-cache", "--data-dir", str(data_dir), "--format", "json", "--output", os.devnull]
    sbom = best(runs, lambda: trustyard("sbom", image, *common))
    scan = best(runs, lambda: trustyard("scan", image, *common, "--db", str(store), "--max-age", "100000d"))
    source = open_source(image)
    try:
        report = Indexer(cache=None).index(source)
    finally:
        source.close()
    with VulnerabilityStore(store, create=False) as s:
        match = best(runs, lambda: Matcher(s).match(report.components))
        found = len(Matcher(s).match(report.components).findings)
    return {"sbom": sbom, "scan": scan, "match": match, "components": len(report.components), "findings": found}


def render(
    imported: dict[str, float], scanned: dict[str, float], rechecks: list[Figures], command: str, runs: int
) -> str:
    """The markdown section."""
    rate = imported["records"] / imported["import"]
    floor = imported["records"] / imported["decode"]
    lines = [
        SECTION,
        "",
        f"Generated by `benchmarks/scan.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; run the command again, do not"
        " edit by hand.",
        "",
        f"Command: `{command}`",
        "",
        "| measurement | value | reference (same run) | ratio | target |",
        "|---|---:|---:|---:|---:|",
        f"| `trustyard scan` of the Debian fixture ({scanned['components']:.0f} components,"
        f" {scanned['findings']:.0f} findings), warm store, no layer cache | {scanned['scan']:.2f} s"
        f" | `trustyard sbom`: {scanned['sbom']:.2f} s | {scanned['scan'] / scanned['sbom']:.2f}× | |",
        f"| match alone (in process) | {scanned['match'] * 1000:.0f} ms | | {scanned['match'] / scanned['sbom']:.3f}"
        " of the sbom | |",
        f"| import of OSV PyPI ({imported['records']:.0f} records) into a fresh store | {imported['import']:.2f} s"
        f" = {rate:,.0f} records/s | reading and decoding the zip: {imported['decode']:.2f} s = {floor:,.0f}"
        f" records/s | {imported['import'] / imported['decode']:.1f}× | |",
        f"| the same import again (all unchanged) | {imported['again']:.2f} s | | "
        f"{imported['again'] / imported['decode']:.1f}× | |",
    ]
    for f in rechecks:
        lines.append(
            f"| re-check: {f.stored:,} stored inventories after {f.changed_advisories:,} changed advisories"
            f" ({f.rechecked:,} matched again, {f.changed_images:,} changed) | {f.seconds:.2f} s, {f.cpu:.2f} s CPU"
            f" ({f.per_inventory * 1000:.2f} ms each) | one cold scan (index + match): {f.cold * 1000:.0f} ms"
            f" | {f.per_inventory / f.cold:.4f} per inventory | < 10 s: **{'yes' if f.seconds < 10 else 'no'}**"
            f" (CPU: {'yes' if f.cpu < 10 else 'no'}) |"
        )
    lines += [
        "",
        f"Best of {runs} runs for the scan, sbom, match and import rows (one run for the re-import and the"
        f" re-check), on {platform.machine()}, {os.cpu_count()} logical cores, Python {platform.python_version()},"
        " SQLite, a machine shared with other work (its load moves single figures; the ratios are steadier).",
        "",
        "The scan and the sbom commands both read the xz-compressed root file system whole (no layer cache) and"
        " analyse it the same way; the scan then opens the store, matches every component (deb by source package"
        " against `Debian:12`, the NVD by CPE where no distribution data exists) and writes its JSON report. The"
        " store holds OSV PyPI and npm, the Debian tracker excerpt and, because the shared tracker data predates"
        " bookworm, WRITTEN tracker entries in its JSON format: ten per source package of the fixture, six of"
        " them findings (about the size of a real release's entries). The re-check reads no layer: each"
        " inventory's components come from the metadata database and are matched again. Half of the stored"
        " inventories hold openssl, whose new advisory gives each of them a finding; in the second re-check row"
        " musl's advisory was also re-issued, and every inventory holds musl, so all are matched again.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the section, and write it into ``--out`` when given."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timings per measurement (the best is kept)")
    parser.add_argument(
        "--inventories", default="10000", help="stored inventories for the re-check, comma-separated for several"
    )
    parser.add_argument("--changed", type=int, default=1000, help="advisories the re-check's import changes")
    parser.add_argument("--out", type=Path, help="docs/benchmarks.md to write the section into")
    args = parser.parse_args(argv)
    for needed in (DEBIAN, OSV / "PyPI" / "all.zip", DEBIAN_TRACKER):
        if not needed.exists():
            sys.exit(f"{needed} is missing: set TRUSTYARD_SHARED_DIR to the shared fixtures")
    scratch = Path(tempfile.mkdtemp(prefix="trustyard-scan-bench-"))
    try:
        imported = imports(scratch, args.runs)
        scanned = scans(scratch / "fresh.sqlite", scratch / "data", args.runs)
        rechecks = []
        for i, n in enumerate(int(x) for x in args.inventories.split(",")):
            for every in (False, True):
                rechecks.append(measure(scratch / f"recheck-{i}-{every}", n, args.changed, every=every))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    command = "python benchmarks/scan.py " + " ".join(argv if argv is not None else sys.argv[1:])
    section = render(imported, scanned, rechecks, command.strip(), args.runs)
    print(section)
    if args.out:
        write_section(args.out, "# Benchmarks\n\n" + section, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
