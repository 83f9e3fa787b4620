"""The bench tests' private dockerd with the Alpine image imported, stopped and cleaned whatever the outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fixtures.dockerd import Dockerd

IMAGE = "bench/alpine:3.20"


@contextmanager
def alpine_dockerd(workdir: Path) -> Iterator[Dockerd]:
    """A started fixtures.dockerd daemon in ``workdir`` with the real Alpine minirootfs imported as ``IMAGE``."""
    daemon = Dockerd(workdir)
    try:
        daemon.start()
        daemon.import_alpine(IMAGE)
        yield daemon
    finally:
        daemon.stop()


def run_good_and_bad(daemon: Dockerd) -> None:
    """Start ``bad`` (host network, /etc mounted) and ``good`` (no network, memory limit, read-only root)."""
    daemon.docker("run", "-d", "--name", "bad", "--network", "host", "-v", "/etc:/host-etc:ro",
                  IMAGE, "sleep", "300", check=True)  # fmt: skip
    daemon.docker("run", "-d", "--name", "good", "--network", "none", "--memory", "64m", "--read-only",
                  IMAGE, "sleep", "300", check=True)  # fmt: skip


def bench_json(daemon: Dockerd, root: Path, *checks: str) -> dict[str, Any]:
    """``trustyard bench --format json`` of ``checks`` (all when none) against ``daemon``, as a user runs it."""
    argv = [sys.executable, "-m", "trustyard", "bench", "--root", str(root), "--docker-host", f"unix://{daemon.socket}",
            "--format", "json", *(a for c in checks for a in ("--check", c))]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"trustyard bench failed: {proc.stderr[-2000:]}")
    log: dict[str, Any] = json.loads(proc.stdout)
    return log
