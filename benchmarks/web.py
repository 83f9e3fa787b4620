"""Web interface benchmark: the server time of each page on the Debian fixture's data, next to the API calls
the page is built from (its reference, measured in the same run).

In a scratch folder: a registry app (``create_app``, the background scanner running) with the vulnerability
store holding OSV's npm advisories, the Debian Security Tracker excerpt (``../shared/vulndb``) and the written
bookworm tracker entries of ``benchmarks/scan.py`` (the shared tracker data predates bookworm; ten CVEs per
source package, six of them findings: the largest findings list the data here can give); the Debian 12 fixture
image (``debian-bookworm-minbase``, 88 packages, tagged twice) and the Alpine fixture application image (29
components, findings) pushed over ``/v2`` and scanned. The image page shows its findings and components a page
at a time (``FINDINGS_PER_PAGE``, ``COMPONENTS_PER_PAGE``), so it is measured on its first page and on a later
page of each. Then each page is requested ``--runs`` times
by a signed-in browser session, and its reference (the ``/api/v1`` endpoints that give the same data, called
with a Bearer token, one after the other) as often, alternating. Both are ASGI calls in this process (no
network): the figure is the server's own time, rendering included. Issue 9 aims at every page under 200 ms.

Reported: median and 90th percentile milliseconds of each page and of its reference, and their ratio (what
the HTML costs over the JSON). Speed is reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "tests"):  # `python benchmarks/web.py`: benchmarks and tests' helpers
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from benchmarks.registry import write_section  # noqa: E402
from benchmarks.scan import bookworm_tracker  # noqa: E402
from interop.images import debian_image  # noqa: E402
from scan.shared import OCI_ALPINE_APP  # noqa: E402
from scan.vulndb.shared import DEBIAN_EXCERPT, OSV  # noqa: E402
from trustyard.config import load_settings  # noqa: E402
from trustyard.registry.app import create_app  # noqa: E402
from trustyard.scan.vulndb.importer import import_path  # noqa: E402
from trustyard.scan.vulndb.store import VulnerabilityStore, configured_path  # noqa: E402
from trustyard.web.images import COMPONENTS_PER_PAGE, FINDINGS_PER_PAGE  # noqa: E402

SECTION = "## Web interface: server time per page"
PASSWORD = "bench-admin-password"  # noqa: S105 (the throwaway registry of this run)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Row:
    """One page and its reference: medians and 90th percentiles in milliseconds."""

    page: str
    path: str
    page_ms: tuple[float, float]
    reference_ms: tuple[float, float]
    reference: str

    def cells(self) -> list[str]:
        """The table row."""
        ratio = self.page_ms[0] / self.reference_ms[0] if self.reference_ms[0] else float("nan")
        return [
            self.page,
            f"`{self.path}`",
            f"{self.page_ms[0]:.1f}",
            f"{self.page_ms[1]:.1f}",
            f"{self.reference_ms[0]:.1f}",
            f"{ratio:.2f}x",
            self.reference,
        ]


async def _push_layout(http: httpx.AsyncClient, layout: Path, ref: str, repository: str, tags: Sequence[str]) -> str:
    """Push the image ``ref`` of an OCI layout under ``tags``; its manifest digest."""
    index = json.loads((layout / "index.json").read_text())
    entry = next(
        m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref
    )
    digest = entry["digest"]

    def blob(d: str) -> bytes:
        return (layout / "blobs" / "sha256" / d.removeprefix("sha256:")).read_bytes()

    manifest = json.loads(blob(digest))
    for descriptor in (manifest["config"], *manifest["layers"]):
        started = await http.post(f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202, started.text
        done = await http.put(
            started.headers["location"], params={"digest": descriptor["digest"]}, content=blob(descriptor["digest"])
        )
        assert done.status_code == 201, done.text
    for tag in tags:
        put = await http.put(
            f"/v2/{repository}/manifests/{tag}", content=blob(digest), headers={"Content-Type": entry["mediaType"]}
        )
        assert put.status_code == 201, put.text
    return str(digest)


async def _timed(http: httpx.AsyncClient, paths: Sequence[str], headers: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    for path in paths:
        answer = await http.get(path, headers=headers)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return (time.perf_counter() - start) * 1000


def _summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


async def measure(runs: int, scratch: Path) -> tuple[list[Row], str]:
    """Build the registry, push and scan the fixtures, time every page against its reference; the rows, and
    how many findings and components the Debian image has."""
    settings = load_settings(data_dir=scratch / "data", fsync=False, scan_workers=1, admin_password=PASSWORD)
    with VulnerabilityStore(configured_path(settings)) as store:
        import_path(store, OSV / "npm" / "all.zip")
        import_path(store, DEBIAN_EXCERPT)
        import_path(store, bookworm_tracker(scratch))
    app: Starlette = create_app(settings)
    access = app.state.access
    access.bootstrap()
    debian_layout = scratch / "debian-layout"
    debian_image(debian_layout)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://bench.test", auth=("admin", PASSWORD)) as pusher,
            httpx.AsyncClient(transport=transport, base_url="http://bench.test") as browser,
            httpx.AsyncClient(transport=transport, base_url="http://bench.test") as api,
        ):
            debian = await _push_layout(
                pusher, debian_layout, "debian-bookworm:1", "library/debian", ["bookworm", "12"]
            )
            await _push_layout(pusher, OCI_ALPINE_APP, "fixture-alpine-app:1", "library/alpine-app", ["1"])
            idle = await asyncio.to_thread(app.state.scanner.workers.wait_idle, 600)
            assert idle, "the scanner did not finish"
            token = _CSRF.search((await browser.get("/login")).text)
            assert token is not None
            signed = await browser.post(
                "/login", data={"csrf": token.group(1), "username": "admin", "password": PASSWORD}
            )
            assert signed.status_code == 303, signed.text
            bearer = {"Authorization": f"Bearer {access.tokens.issue('admin', [])}"}
            repo = "/api/v1/repositories/library/debian"
            image = f"{repo}/manifests/{debian}"
            found = (await api.get(f"{image}/findings", params={"limit": "1"}, headers=bearer)).json()
            parts = (await api.get(f"{image}/sbom/components", params={"limit": "1"}, headers=bearer)).json()
            sizes = f"{found['total']} findings, {parts['total']} components"
            last_findings = max(1, -(-found["total"] // FINDINGS_PER_PAGE))
            last_components = max(1, -(-parts["total"] // COMPONENTS_PER_PAGE))
            findings_at = f"{image}/findings?limit={FINDINGS_PER_PAGE}&offset={(last_findings - 1) * FINDINGS_PER_PAGE}"
            components_at = (
                f"{image}/sbom/components?q=&limit={COMPONENTS_PER_PAGE}"
                f"&offset={(last_components - 1) * COMPONENTS_PER_PAGE}"
            )
            first_findings = f"{image}/findings?limit={FINDINGS_PER_PAGE}&offset=0"
            first_components = f"{image}/sbom/components?q=&limit={COMPONENTS_PER_PAGE}&offset=0"
            cases = [
                ("projects", "/projects", ["/api/v1/projects", "/api/v1/repositories"]),
                ("project", "/projects/library", ["/api/v1/projects/library", "/api/v1/repositories?project=library"]),
                (
                    "repository",
                    "/repositories/library/debian",
                    [f"{repo}/tags", f"{repo}/verdict/bookworm", f"{repo}/verdict/12"],
                ),
                (
                    "image, first pages",
                    f"/repositories/library/debian/-/manifests/{debian}",
                    [image, f"{image}/scan", first_findings, first_components],
                ),
                (
                    "image, last pages",
                    f"/repositories/library/debian/-/manifests/{debian}"
                    f"?findings_page={last_findings}&components_page={last_components}",
                    [image, f"{image}/scan", findings_at, components_at],
                ),
                ("all findings at once (API)", f"{image}/findings", [first_findings]),
                ("dashboard", "/dashboard", ["/api/v1/exposure", "/api/v1/vulnerability-data"]),
                ("vulnerability data", "/vulnerability-data", ["/api/v1/vulnerability-data"]),
                ("audit log", "/audit?project=library", ["/api/v1/audit?project=library&limit=50"]),
            ]
            rows = []
            for name, path, reference in cases:
                pages: list[float] = []
                references: list[float] = []
                client, headers = (api, bearer) if path.startswith("/api/") else (browser, None)
                for i in range(runs + 2):  # two untimed warm-up rounds
                    page_ms = await _timed(client, [path], headers)
                    reference_ms = await _timed(api, reference, bearer)
                    if i >= 2:
                        pages.append(page_ms)
                        references.append(reference_ms)
                described = " + ".join(f"`{p.removeprefix('/api/v1')}`" for p in reference)
                rows.append(
                    Row(
                        name,
                        path.replace(debian, "<digest>"),
                        _summary(pages),
                        _summary(references),
                        described.replace(debian, "<digest>"),
                    )
                )
    app.state.registry.db.dispose()
    return rows, sizes


def render(rows: Sequence[Row], runs: int, command: str, sizes: str) -> str:
    """The ``SECTION`` of docs/benchmarks.md."""
    out = [
        SECTION,
        "",
        f"Generated by `benchmarks/web.py` on {datetime.now(UTC):%Y-%m-%d}; do not edit by hand, run the command"
        " again.",
        "",
        f"Command: `{command}` ({runs} timed requests of each page and of its reference, alternating, after two",
        "untimed rounds; in-process ASGI calls, no network). Data: the Debian 12 fixture image (88 packages, two tags)",
        "and the Alpine application fixture (29 components) pushed and scanned; OSV npm, the Debian tracker excerpt",
        "and WRITTEN bookworm tracker entries (`benchmarks/scan.py`'s: the shared tracker data predates bookworm)",
        f"imported, so the Debian image has {sizes}. The image page shows {FINDINGS_PER_PAGE} findings and",
        f"{COMPONENTS_PER_PAGE} components a page (`?findings_page=`, `?components_page=`; API `limit`/`offset`).",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, SQLite.",
        "",
        "| page | path | median ms | p90 ms | reference median ms | page / reference"
        " | reference: the API calls with the same data |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    out += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    out += ["", "Issue 9 aims at every page under 200 ms of server time."]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print the table, and write it into docs/benchmarks.md unless ``--no-write``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed requests of each page (default 30)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="trustyard-web-bench-") as scratch:
        rows, sizes = asyncio.run(measure(args.runs, Path(scratch)))
    command = "python benchmarks/web.py" + (f" --runs {args.runs}" if args.runs != 30 else "")
    text = render(rows, args.runs, command, sizes)
    print(text)
    if not args.no_write:
        write_section(args.out, text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
