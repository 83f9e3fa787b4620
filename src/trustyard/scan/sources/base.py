"""The image source seam: one ``typing.Protocol`` for everything an image can be read from.

A source knows which layers make the image (bottom to top) and how to read each one into a ``Layer``; it
hides whether the bytes come from a directory, an archive or, later, a registry (``docker://`` will stream
blobs over HTTP into the same ``read_layer``). Sources are named as skopeo names them (``oci:DIR:TAG``,
``oci-archive:FILE``, ``docker-archive:FILE``) plus ``rootfs:PATH``.

Also here: ``Container``, the read-only file access the archive formats share (a directory or a tar file,
read without extracting), so that ``oci:`` and ``oci-archive:`` are one reader over two containers.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from trustyard.oci.digest import Digest, DigestError
from trustyard.oci.manifest import Descriptor, ImageIndex
from trustyard.scan.errors import SourceError
from trustyard.scan.layers import Layer, LayerLimits, Reduce, Wants, normalize_path, read_layer

MAX_METADATA_SIZE: Final = 4 << 20
"""Index, manifest and config documents are small; a larger one is refused rather than read into memory."""


@dataclass(frozen=True, slots=True)
class LayerRef:
    """One layer of an image as its source names it; ``digest`` is the blob's, when the source states it."""

    index: int
    location: str
    digest: Digest | None = None
    media_type: str | None = None
    size: int | None = None
    diff_id: Digest | None = None


class ImageSource(Protocol):
    """Where an image's layers come from. Implementations raise ``SourceError`` (or a ``LayerError``)."""

    @property
    def name(self) -> str:
        """The name the source was opened with, for reports."""
        ...

    @property
    def manifest_digest(self) -> Digest | None:
        """The digest of the image manifest, when the image has one (a root file system has none)."""
        ...

    def layers(self) -> Sequence[LayerRef]:
        """The image's layers, bottom to top."""
        ...

    def read_layer(self, ref: LayerRef, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None) -> Layer:
        """Read one layer in a single pass, checking its digest when the source stated one; ``reduce`` as in
        ``layers.read_layer``."""
        ...

    def close(self) -> None:
        """Release open files."""
        ...


class SourceBase:
    """What every source shares: its name and its layer list; ``manifest_digest`` is ``None`` unless overridden."""

    def __init__(self, name: str, layers: Sequence[LayerRef] = ()) -> None:
        self._name = name
        self._layers = tuple(layers)

    @property
    def name(self) -> str:
        """The name the source was opened with."""
        return self._name

    @property
    def manifest_digest(self) -> Digest | None:
        """No manifest unless the source has one."""
        return None

    def layers(self) -> Sequence[LayerRef]:
        """The image's layers, bottom to top."""
        return self._layers


class Container(Protocol):
    """Read-only access to named files of a directory or an archive, never outside it."""

    def open(self, name: str) -> IO[bytes]:
        """A stream of the file ``name`` (relative, ``/``-separated); ``SourceError`` when there is none."""
        ...

    def close(self) -> None:
        """Release the archive, if any."""
        ...


def read_small(container: Container, name: str, limit: int = MAX_METADATA_SIZE) -> bytes:
    """The whole of a metadata file, refused when it is larger than ``limit``."""
    with container.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SourceError(f"{name} is larger than {limit} bytes; not an image metadata file")
    return data


def read_checked(
    container: Container, ref: LayerRef, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None
) -> Layer:
    """Read the layer stored at ``ref.location`` and check it against ``ref.digest`` when one is stated."""
    with container.open(ref.location) as f:
        layer = read_layer(f, wants=wants, limits=limits, reduce=reduce)
    if ref.digest is not None and layer.digest != ref.digest:
        raise SourceError(f"layer {ref.index} ({ref.location}) has digest {layer.digest}, the image says {ref.digest}")
    return layer


class DirectoryContainer:
    """Files under a directory; names that resolve outside it (``..``, symlinks) are refused."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise SourceError(f"{root} is not a directory")
        self._root = root.resolve()

    def open(self, name: str) -> IO[bytes]:
        relative, escaped = normalize_path(name)
        path = (self._root / relative).resolve()
        if escaped or not path.is_relative_to(self._root):
            raise SourceError(f"{name!r} points outside {self._root}")
        try:
            return path.open("rb")
        except OSError as e:
            raise SourceError(f"cannot open {name} in {self._root}: {e.strerror}") from e

    def close(self) -> None:
        """Nothing to release: each open file is closed by its reader."""


class TarContainer:
    """Members of a tar archive (plain, as skopeo writes them), read in place without extracting.

    Only regular-file members are served; a name that appears twice resolves to its last member, as an
    extraction would leave it.
    """

    def __init__(self, path: Path) -> None:
        try:
            self._tar = tarfile.open(path, mode="r:")  # noqa: SIM115 - held open until close()
        except (OSError, tarfile.TarError, EOFError) as e:
            raise SourceError(f"cannot read the archive {path}: {e}") from e
        try:
            members = self._tar.getmembers()
        except (OSError, tarfile.TarError, EOFError) as e:
            self._tar.close()
            raise SourceError(f"cannot read the archive {path}: {e}") from e
        self._path = path
        self._members: dict[str, tarfile.TarInfo] = {}
        for member in members:
            name, _ = normalize_path(member.name)
            self._members[name] = member

    def open(self, name: str) -> IO[bytes]:
        relative, _ = normalize_path(name)
        member = self._members.get(relative)
        if member is None or not member.isreg():
            raise SourceError(f"{self._path} has no file {name!r}")
        data = self._tar.extractfile(member)
        if data is None:  # pragma: no cover - regular members always have data
            raise SourceError(f"{self._path}: {name!r} has no data")
        return data

    def close(self) -> None:
        self._tar.close()


def container_for(path: Path) -> Container:
    """A directory as itself, a file as a tar archive."""
    if not os.path.exists(path):
        raise SourceError(f"{path} does not exist")
    return DirectoryContainer(path) if path.is_dir() else TarContainer(path)


class _RootFs(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    type: str = "layers"
    diff_ids: list[str] = []


class _Config(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    rootfs: _RootFs | None = None


def parse_diff_ids(raw: bytes, where: str) -> tuple[Digest, ...]:
    """The ``rootfs.diff_ids`` of an image config (OCI image-spec config.md): the uncompressed layer digests."""
    try:
        config = _Config.model_validate_json(raw)
        return tuple(Digest.parse(d) for d in (config.rootfs.diff_ids if config.rootfs else ()))
    except (ValidationError, DigestError) as e:
        raise SourceError(f"{where}: malformed image config: {e}") from e


DEFAULT_PLATFORM: Final = ("linux", "amd64")
"""The platform chosen from an index when an image source is given an index (skopeo's default on amd64)."""


def platform_choice(index: ImageIndex, name: str) -> Descriptor:
    """The linux/amd64 image of an index, or its only image; attestation manifests never count."""
    images = [d for d in index.manifests if d.platform is None or d.platform.os != "unknown"]
    for d in images:
        if d.platform is not None and (d.platform.os, d.platform.architecture) == DEFAULT_PLATFORM:
            return d
    if len(images) == 1:
        return images[0]
    raise SourceError(f"{name}: the index has no {'/'.join(DEFAULT_PLATFORM)} image and more than one other")
