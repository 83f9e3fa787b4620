"""The bench tests' private dockerd with the Alpine image imported, stopped and cleaned whatever the outcome."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
