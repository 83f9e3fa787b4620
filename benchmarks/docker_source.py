"""docker:// benchmark: indexing an image read from a registry, against the same image read from its OCI layout.

The Debian fixture image of ``benchmarks/sbom.py`` (one gzip layer, about 50 MB) is pushed with skopeo to
Debian's docker-registry (anonymous) and to ``trustyard serve`` (token auth, as shipped). Then, in the same run,
each the best of ``--runs``, with no layer cache:

1. reference: ``Indexer().index(oci:LAYOUT)``, the same analysis with the bytes on local disk;
2. download only: the layer blob streamed from each registry and hashed (what any docker:// read must do);
3. ``Indexer().index(docker://HOST/bench/debian:1)`` from each registry: ping, token, manifest, config, and the
   layer streamed through the digest check into the same walker.

The runs are interleaved (1, 2, 3, 1, 2, 3, ...) so that a busy spell of a shared machine slows every kind
alike. Reported: seconds and the ratio of 3 to 1. Every docker:// report is checked equal to the layout's before any
figure is kept. Speed is reported, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/docker_source.py`: make `benchmarks` importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.registry import (  # noqa: E402
    Server,
    Skopeo,
    default_trustyard_command,
    start_reference,
    start_trustyard,
    write_section,
)
from benchmarks.sbom import best, build_layout  # noqa: E402
from trustyard.scan.indexer import Indexer, IndexReport  # noqa: E402
from trustyard.scan.sources import Credentials, SourceOptions, open_source  # noqa: E402

SECTION = "## Image analysis over a registry: docker:// against the OCI layout"
REPO = "bench/debian"


def index(name: str, options: SourceOptions | None = None) -> IndexReport:
    """One cold analysis of ``name`` (no layer cache)."""
    source = open_source(name, options)
    try:
        return Indexer().index(source)
    finally:
        source.close()


def download(server: Server, digest: str) -> None:
    """Stream one blob from ``server`` and hash it, as the docker:// source must at least do."""
    headers = server.bearer(REPO)
    sha = hashlib.sha256()
    with httpx.stream("GET", f"http://{server.host}/v2/{REPO}/blobs/{digest}", headers=headers, timeout=600) as r:
        r.raise_for_status()
        for chunk in r.iter_raw(1 << 20):
            sha.update(chunk)
    if f"sha256:{sha.hexdigest()}" != digest:
        sys.exit(f"{server.label} served a blob that does not match {digest}")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the table, and write it into docs/benchmarks.md with ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, help="Markdown file whose docker:// section is (re)written")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="trustyard-bench-docker-"))
    servers: list[Server] = []
    try:
        blob = build_layout(scratch / "layout")
        layout = f"oci:{scratch / 'layout'}:debian:bench"
        servers = [start_reference(scratch), start_trustyard(scratch, default_trustyard_command())]
        skopeo = Skopeo(scratch)
        for server in servers:
            server.start()
            skopeo.copy(layout, f"docker://{server.host}/{REPO}:1", server.credentials)
        expected = index(layout)
        actions: dict[str, Callable[[], object]] = {"OCI layout on local disk": partial(index, layout)}
        for server in servers:
            name = f"docker://{server.host}/{REPO}:1"
            options = SourceOptions(credentials=Credentials(*server.credentials) if server.credentials else None)
            found = index(name, options)
            if (found.components, found.files, found.manifest_digest) != (
                expected.components,
                expected.files,
                expected.manifest_digest,
            ):
                sys.exit(f"the docker:// report from {server.label} differs from the layout's")
            actions[f"download + SHA-256 of the layer from {server.label}"] = partial(
                download, server, f"sha256:{blob.name}"
            )
            actions[f"docker:// from {server.label}"] = partial(index, name, options)
        timings: dict[str, list[float]] = {what: [] for what in actions}
        for _ in range(args.runs):  # interleaved, so that a busy spell of the machine hits every kind alike
            for what, action in actions.items():
                timings[what].append(best(1, action))
        reference = min(timings["OCI layout on local disk"])
        rows = [
            (what, min(t), min(t) / reference if what.startswith("docker://") else None) for what, t in timings.items()
        ]
        size = blob.stat().st_size
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    lines = [
        SECTION,
        "",
        f"Generated by `benchmarks/docker_source.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; run the command "
        "again, do not edit by hand.",
        "",
        f"Command: `python benchmarks/docker_source.py --runs {args.runs} --out docs/benchmarks.md`",
        "",
        f"Image: the Debian 12 minbase fixture as one gzip layer ({size / 1e6:.1f} MB), {len(expected.components)} "
        f"components, {len(expected.files)} files; registries on 127.0.0.1 (docker-registry anonymous, trustyard "
        "with its token auth).",
        "",
        "| cold analysis (no layer cache) | seconds | ratio to the layout |",
        "|---|---:|---:|",
        *(f"| {what} | {secs:.2f} | {'' if ratio is None else f'{ratio:.2f}×'} |" for what, secs, ratio in rows),
        "",
        f"Best of {args.runs} runs each, on {platform.machine()}, {os.cpu_count()} logical cores (1-minute load "
        f"average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after), Python {platform.python_version()}. "
        "The registry's share is the serving of the blob (the download row) and the extra hashing of the "
        "verified stream; the analysis itself is the same code as for the layout.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        write_section(args.out, text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
