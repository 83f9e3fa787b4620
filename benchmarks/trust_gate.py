"""Content-trust gate benchmark: manifest GETs of a project that requires signatures, against ungated GETs.

In a scratch folder, in one process, in the same run: the real registry app (``create_app``, SQLite, a
filesystem store, access control on, requests as the administrator with a Bearer token as docker sends them)
holds ``lab/app:v1``, signed through the trust service (``--targets`` signed targets in all, under Docker's
GUN ``127.0.0.1:5000/lab/app``). Measured, interleaved in rounds so that drift hits both alike:

1. reference: ``GET /v2/lab/app/manifests/v1`` with the project demanding nothing (no gate asked);
2. gated: the same GET with ``content_trust`` on, so every GET asks the trust gate, which checks the newest
   timestamp of each candidate GUN and judges the tag from the verified, cached result;
3. the first, verifying lookup (root, timestamp, snapshot, targets signatures and hashes) of a fresh cache.

Reported: requests per second of each and their ratio, and the verifying lookup's milliseconds. Speed is
reported, never asserted. Not measured: network and TLS (in-process ASGI), other gates. On SQLite the
registry asks its gates inline, as it does its own reads (``registry.api.routes``); with a network database
they run in a worker thread, and that hop would cost more than the check.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/trust_gate.py`: make `benchmarks`, `tests` importable
    sys.path.insert(0, str(REPO_ROOT))
if str(REPO_ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tests"))

from benchmarks.registry import write_section  # noqa: E402
from trust.simulator import SimKey, SimRepo  # noqa: E402  (the tests' Notary publisher)
from trustyard.auth.model import ProjectPolicy  # noqa: E402
from trustyard.config import load_settings  # noqa: E402
from trustyard.registry.app import create_app  # noqa: E402
from trustyard.trust.service import TrustService  # noqa: E402
from trustyard.trust.signed import SignedLookup  # noqa: E402

SECTION = "## Content-trust gate: signature-checked manifest GETs against unchecked ones"
GUN = "127.0.0.1:5000/lab/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
LABELS = (
    "reference: manifest GET, project demands nothing (req/s)",
    "manifest GET with content trust required (req/s)",
    "first lookup of a repository: verify the chain (ms)",
)


async def push(client: httpx.AsyncClient) -> bytes:
    """Push a one-layer image as ``lab/app:v1``; its manifest bytes."""
    descriptors = []
    for data, media_type in ((b"{}", "application/vnd.oci.empty.v1+json"), (os.urandom(4096), LAYER)):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = await client.post("/v2/lab/app/blobs/uploads/")
        done = await client.put(started.headers["location"], params={"digest": digest}, content=data)
        if done.status_code != 201:
            sys.exit(f"blob upload failed: {done.status_code} {done.text}")
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(data)})
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptors[0], "layers": descriptors[1:]}
    ).encode()
    done = await client.put("/v2/lab/app/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    if done.status_code != 201:
        sys.exit(f"manifest push failed: {done.status_code} {done.text}")
    return manifest


def sign(service: TrustService, manifest: bytes, targets: int) -> None:
    """Publish ``v1`` (the manifest) and ``targets - 1`` other targets under Docker's GUN, as a publisher does."""
    repo = SimRepo(GUN, SimKey.ed25519())
    repo.timestamp_key = SimKey(repo.timestamp_key.private, service.public_key(GUN, "timestamp"))
    repo.add_target("targets", "v1", manifest)
    for i in range(1, targets):
        repo.add_target("targets", f"other-{i}", f"other {i}".encode())
    service.update(GUN, repo.first_publish())


async def rate(client: httpx.AsyncClient, seconds: float) -> float:
    """GETs per second of the tagged manifest for about ``seconds``."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        response = await client.get("/v2/lab/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        if response.status_code != 200:
            sys.exit(f"GET refused: {response.status_code} {response.text}")
        count += 1
    return count / (time.perf_counter() - start)


async def measure(root: Path, args: argparse.Namespace) -> dict[str, float]:
    """Reference and gated GET rates (medians of interleaved rounds) and the verifying lookup's seconds."""
    settings = load_settings(
        data_dir=root, fsync=False, scan_workers=0, insecure_anonymous_push=True, listen="127.0.0.1:5000"
    )
    app = create_app(settings)
    registry, access = app.state.registry, app.state.access
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:5000") as client:
        manifest = await push(client)
        trust = TrustService.from_settings(settings, registry.db)
        sign(trust, manifest, args.targets)
        if access.store.get_project("lab") is None:
            access.store.create_project("lab")
        lookup = SignedLookup.shared(registry.db, settings)
        firsts = []
        for _ in range(args.rounds):
            fresh = SignedLookup(db=registry.db, trust=lambda: trust, hosts=lookup.hosts)
            start = time.perf_counter()
            if not fresh.judge_tag("lab/app", "v1", "sha256:" + hashlib.sha256(manifest).hexdigest()).signed:
                sys.exit("the signed tag does not verify")
            firsts.append(time.perf_counter() - start)
        reference, gated = [], []
        for _ in range(args.rounds):
            access.store.set_project_policy("lab", ProjectPolicy())
            reference.append(await rate(client, args.seconds))
            access.store.set_project_policy("lab", ProjectPolicy(content_trust=True))
            gated.append(await rate(client, args.seconds))
        if lookup.verifications != 1:
            sys.exit(f"the gate verified {lookup.verifications} times: its cache did not work")
    registry.db.dispose()
    return {
        "reference": statistics.median(reference),
        "gated": statistics.median(gated),
        "verify": statistics.median(firsts),
    }


def render(figures: dict[str, float], args: argparse.Namespace) -> str:
    """The Markdown section."""
    ratio = figures["gated"] / figures["reference"]
    lines = [
        SECTION,
        "",
        f"Generated by `benchmarks/trust_gate.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; run the command again, "
        "do not edit by hand.",
        "",
        f"Command: `python benchmarks/trust_gate.py --targets {args.targets} --rounds {args.rounds}"
        f" --seconds {args.seconds} --out docs/benchmarks.md`",
        "",
        f"In-process app (no network, SQLite, anonymous access), `lab/app:v1` signed among {args.targets} targets;"
        f" medians of {args.rounds} interleaved rounds of {args.seconds} s.",
        "",
        "| metric | value | ratio to reference |",
        "|---|---:|---:|",
        f"| {LABELS[0]} | {figures['reference']:,.0f} | 1.00 |",
        f"| {LABELS[1]} | {figures['gated']:,.0f} | {ratio:.2f} |",
        f"| {LABELS[2]} | {figures['verify'] * 1000:.1f} | |",
        "",
        "While nothing changed, the check is one indexed query (the newest change-feed id of the repository's"
        " GUNs) and a cached verdict, asked inline on SQLite as the registry's own reads are"
        " (`registry/api/routes.py`).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Measure, print, and write the section into docs/benchmarks.md with ``--out``; the exit code."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", type=int, default=100, help="signed targets in the repository")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of each kind")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one round")
    parser.add_argument("--out", type=Path, help="Markdown file whose content-trust-gate section is (re)written")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="trustyard-bench-gate-") as scratch:
        figures = asyncio.run(measure(Path(scratch), args))
    document = render(figures, args)
    print(document)
    if args.out is not None:
        write_section(args.out, document, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
