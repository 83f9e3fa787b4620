"""Where the shared image fixtures are: ``$TRUSTYARD_SHARED_DIR/images``, by default ``../shared/images``.

The fixtures are read in place and never copied into the project; tests that need a variant (an archive of
a layout, an extracted root file system) build it under pytest's ``tmp_path``.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from trustyard.scan.indexer import Indexer, IndexReport
from trustyard.scan.sources import open_source

SHARED_IMAGES = Path(os.environ.get("TRUSTYARD_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared")) / "images"

DEBIAN_ROOTFS = SHARED_IMAGES / "debian-bookworm-minbase" / "rootfs.tar.xz"
ALPINE_ROOTFS = SHARED_IMAGES / "alpine-3.20.3" / "alpine-minirootfs-3.20.3-x86_64.tar.gz"
MARINER_ROOTFS = SHARED_IMAGES / "rpm-cbl-mariner-2.0-partial" / "rootfs-partial.tar.xz"
APP_LAYER = SHARED_IMAGES / "app-layer" / "app-layer.tar.gz"
OCI_ALPINE_APP = SHARED_IMAGES / "oci-alpine-app"
OCI_ALPINE_APP_TAG = "fixture-alpine-app:1"


def expected(relative: str) -> Any:
    """A fixture's JSON expectation file, parsed."""
    return json.loads((SHARED_IMAGES / relative).read_text())


@cache
def report(name: str) -> IndexReport:
    """The index of the source ``name`` with the default analyzers, computed once per test session."""
    source = open_source(name)
    try:
        return Indexer().index(source)
    finally:
        source.close()
