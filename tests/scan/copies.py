"""Images made from the Debian fixture for the identification tests: its base layer plus a layer of copies.

Built once per test module in an OCI layout under pytest's tmp: the fixture's root file system (recompressed
by ``interop.images.debian_image``), then images that add one small layer holding a file of that root file
system under another name, as an application image built ``FROM`` it would, and images of that layer alone,
as a ``FROM scratch`` image with a copied binary would be.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from interop.images import Layer, LayoutBuilder, debian_image
from scan.shared import DEBIAN_ROOTFS

COPY: str = "opt/app/bin/tool"
"""Where the copies are put: a path no Debian package lists, with a name that says nothing."""


def fixture_file(member: str) -> bytes:
    """One file of the Debian fixture's root file system tar (``./usr/bin/bash``)."""
    with tarfile.open(DEBIAN_ROOTFS, "r:xz") as tar:
        extracted = tar.extractfile(member)
        if extracted is None:
            raise FileNotFoundError(member)
        return extracted.read()


@dataclass(frozen=True)
class Copies:
    """The layout and its images, by what the copied layer holds: ``on_debian[x]`` and ``alone[x]``."""

    layout: Path
    on_debian: dict[str, str]
    alone: dict[str, str]


def build(layout: Path, layers: dict[str, dict[str, bytes]]) -> Copies:
    """For each name -> {path: bytes} in ``layers``: an image of the Debian fixture plus a layer holding those
    files, and an image of that layer alone; returned as ``oci:LAYOUT:REF`` names."""
    base = debian_image(layout)
    config = json.loads(base.blob_path(base.config.digest).read_bytes())
    base_layer = (base.layers[0], str(config["rootfs"]["diff_ids"][0]))
    builder = LayoutBuilder(layout)
    on_debian, alone = {}, {}
    for name, files in layers.items():
        layer = Layer.from_files(files, mode=0o755)
        builder.put_blob(layer.blob)
        on_debian[name] = builder.add_image(
            f"debian-{name}:1", [base_layer, (layer.descriptor, layer.diff_id)]
        ).transport
        alone[name] = builder.add_image(f"only-{name}:1", [(layer.descriptor, layer.diff_id)]).transport
    return Copies(layout, on_debian, alone)
