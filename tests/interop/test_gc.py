"""`trustyard gc` runs in a loop, online, while skopeo pushes images that share a base layer.

The base layer is, when the pushes start, referenced only by an untagged manifest: exactly what
`--delete-untagged --grace-period 0` collects. So the collector and the pushes race for that blob (skopeo
finds it present with HEAD, or mounts it from the repository it last saw it in, then pushes a manifest that
names it). Whatever the interleaving: a manifest the registry accepted must never lose a blob; a push may
fail only with a clean client error (then it is repeated once the loop stops); the collector never fails.
Afterwards every tagged image pulls back intact, and an idle collection removes what is really garbage.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from .clients import Skopeo, wait_all
from .images import Layer, LayoutBuilder, OciImage, random_image, read_dir_copy
from .registry_api import RegistryClient, oci_error_codes
from .servers import EACH_DATABASE, RegistryServer

pytestmark = pytest.mark.interop

MiB = 1024 * 1024
PUSHES = 6
MIN_OVERLAPPING_RUNS = 4
MAX_WAVES = 15
# (dry_run, delete_untagged, grace_period): the default grace period, and none at all
GC_VARIANTS = [
    (False, True, 0),
    (False, False, 0),
    (True, True, 0),
    (False, True, None),
]


class GcLoop(threading.Thread):
    """Runs `gc` over and over, cycling GC_VARIANTS from `phase`, until stopped; records every run."""

    def __init__(self, registry: RegistryServer, phase: int) -> None:
        super().__init__(name=f"gc-loop-{phase}", daemon=True)
        self.registry = registry
        self.phase = phase
        self.stopping = threading.Event()
        self.intervals: list[tuple[float, float]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            dry_run, delete_untagged, grace = GC_VARIANTS[(self.phase + len(self.intervals)) % len(GC_VARIANTS)]
            started = time.monotonic()
            proc = self.registry.gc(dry_run=dry_run, delete_untagged=delete_untagged, grace_period=grace)
            self.intervals.append((started, time.monotonic()))
            if proc.returncode != 0:
                self.failures.append(f"{' '.join(proc.args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")

    def overlapping(self, start: float, end: float) -> int:
        """How many runs were under way at some moment between `start` and `end`."""
        return sum(1 for a, b in self.intervals if a < end and b > start)

    def stop(self) -> None:
        """Ask the loop to end after the current run and wait for it."""
        self.stopping.set()
        self.join(timeout=120)
        assert not self.is_alive(), "gc run still going 120 s after the loop was stopped"


def push_retrying(skopeo: Skopeo, src: str, dst: str, attempts: int = 5) -> None:
    """Push; a collector with no grace period may delete a blob between its upload and the manifest PUT,
    which the registry must refuse cleanly (MANIFEST_BLOB_UNKNOWN): then push again."""
    for _ in range(attempts - 1):
        proc = skopeo.run(*skopeo.copy_args(src, dst), check=False)
        if proc.returncode == 0:
            return
        assert "manifest blob unknown" in proc.stderr, proc.stderr
    skopeo.copy(src, dst)


def assert_pulls_back(skopeo: Skopeo, ref: str, image: OciImage, out: Path) -> None:
    """skopeo pulls `ref` into dir:`out`: same manifest bytes, every blob hashes to its digest."""
    skopeo.copy(ref, f"dir:{out}")
    pulled = read_dir_copy(out)
    assert pulled.manifest == image.manifest
    assert pulled.mismatched_blobs() == []


@EACH_DATABASE
def test_online_gc_during_pushes(registry: RegistryServer, api: RegistryClient, skopeo: Skopeo, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    host = registry.host
    newer = random_image(layout, "newer:1", seed="gc-newer", layer_sizes=[MiB])
    keep = random_image(layout, "keep:1", seed="gc-keep", layer_sizes=[MiB, 300_000])
    skopeo.copy(keep.transport, f"docker://{host}/gc/keep:1")

    def make_garbage(wave: int) -> tuple[OciImage, Layer]:
        """Push an image with a new base layer, then move its tag away: its manifest is left untagged."""
        base = Layer.random(f"gc-base-{wave}", MiB)
        old = random_image(layout, f"old-{wave}:1", seed=f"gc-old-{wave}", layer_sizes=[100_000], shared=[base])
        for image in (old, newer):
            push_retrying(skopeo, image.transport, f"docker://{host}/gc/app:v1")
        return old, base

    first_old, _ = make_garbage(0)
    assert api.manifest_digest("gc/app", "v1") == newer.manifest_digest
    dry = registry.gc(dry_run=True, delete_untagged=True, grace_period=0)
    assert dry.returncode == 0, dry.stderr
    assert api.manifest_digest("gc/app", first_old.manifest_digest) == first_old.manifest_digest, "dry run deleted"

    # waves of six concurrent pushes sharing the base layer of the newest garbage, while two collectors
    # (each cycling through the variants) run, until enough collections overlapped the pushes
    pushed: dict[str, OciImage] = {}
    failed: list[tuple[str, OciImage, str]] = []
    loops = [GcLoop(registry, phase) for phase in (0, 2)]
    for loop in loops:
        loop.start()
    overlapping, wave = 0, 0
    try:
        while overlapping < MIN_OVERLAPPING_RUNS and wave < MAX_WAVES:
            _, base = make_garbage(wave) if wave else (first_old, Layer.random("gc-base-0", MiB))
            images = {
                f"gc/p{i}:w{wave}": random_image(
                    layout, f"p{i}-w{wave}:1", seed=f"gc-p{i}-w{wave}", layer_sizes=[2 * MiB], shared=[base]
                )
                for i in range(PUSHES)
            }
            started = time.monotonic()
            copies = [
                skopeo.start_copy(image.transport, f"docker://{host}/{ref}", log=tmp_path / f"push-{wave}-{n}.log")
                for n, (ref, image) in enumerate(images.items())
            ]
            codes = wait_all(copies, timeout=90)
            ended = time.monotonic()
            overlapping += sum(loop.overlapping(started, ended) for loop in loops)
            for (ref, image), copy, code in zip(images.items(), copies, codes, strict=True):
                (failed.append((ref, image, copy.output())) if code else pushed.__setitem__(ref, image))
            wave += 1
    finally:
        for loop in loops:
            loop.stop()
    assert [f for loop in loops for f in loop.failures] == []
    assert overlapping >= MIN_OVERLAPPING_RUNS, f"only {overlapping} gc runs overlapped {wave} waves of pushes"

    for ref, image, output in failed:
        assert "500 Internal Server Error" not in output, output[-3000:]
        print(f"push of {ref} failed while gc ran (allowed, pushed again):", output.strip().splitlines()[-1])
        skopeo.copy(image.transport, f"docker://{host}/{ref}")
        pushed[ref] = image

    def check_all_tagged() -> None:
        for ref, image in pushed.items():
            repo, tag = ref.split(":")
            assert api.manifest_digest(repo, tag) == image.manifest_digest
        report = api.check_integrity()
        assert report.problems == []
        assert report.tags == len(pushed) + 2

    check_all_tagged()
    last_wave = [ref for ref in pushed if ref.endswith(f":w{wave - 1}")]
    for ref in last_wave:
        assert_pulls_back(skopeo, f"docker://{host}/{ref}", pushed[ref], tmp_path / f"pulled-{ref.replace('/', '_')}")
    assert_pulls_back(skopeo, f"docker://{host}/gc/keep:1", keep, tmp_path / "pulled-keep")
    assert_pulls_back(skopeo, f"docker://{host}/gc/app:v1", newer, tmp_path / "pulled-app")

    # idle: untagged manifests and the blobs only they used are collected; shared bases survive
    final = registry.gc(delete_untagged=True, grace_period=0)
    assert final.returncode == 0, final.stderr
    gone = api.http.get(f"/v2/gc/app/manifests/{first_old.manifest_digest}")
    assert gone.status_code == 404
    assert oci_error_codes(gone) == ["MANIFEST_UNKNOWN"]
    old_only = first_old.layers[-1].digest
    blob_gone = api.http.get(f"/v2/gc/app/blobs/{old_only}")
    assert blob_gone.status_code == 404
    assert oci_error_codes(blob_gone) == ["BLOB_UNKNOWN"]
    check_all_tagged()


@EACH_DATABASE
def test_gc_keeps_fresh_uploads(registry: RegistryServer, api: RegistryClient, tmp_path: Path) -> None:
    """A blob uploaded but not yet named by any manifest survives gc within the default grace period."""
    layer = Layer.random("gc-fresh", 100_000)
    opened = api.start_upload("gc/fresh")
    assert opened.status_code == 202, opened.text
    closed = api.finish_upload(opened.headers["location"], layer.descriptor.digest, layer.blob)
    assert closed.status_code == 201, closed.text

    for delete_untagged in (False, True):
        proc = registry.gc(delete_untagged=delete_untagged)
        assert proc.returncode == 0, proc.stderr
        assert api.blob_digest("gc/fresh", layer.descriptor.digest) == (200, layer.descriptor.digest, len(layer.blob))

    # and once a manifest names it, even a zero grace period keeps it
    builder = LayoutBuilder(tmp_path / "layout")
    image = builder.add_layers_image("fresh:1", [layer])
    config = image.blob_path(image.config.digest).read_bytes()
    put_config = api.http.post(
        f"/v2/gc/fresh/blobs/uploads/?digest={image.config.digest}",
        content=config,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert put_config.status_code == 201, put_config.text
    put = api.http.put(
        "/v2/gc/fresh/manifests/1",
        content=image.manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert put.status_code == 201, put.text
    proc = registry.gc(delete_untagged=True, grace_period=0)
    assert proc.returncode == 0, proc.stderr
    assert api.check_integrity().problems == []
    assert api.blob_digest("gc/fresh", layer.descriptor.digest) == (200, layer.descriptor.digest, len(layer.blob))
