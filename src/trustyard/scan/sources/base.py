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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from trustyard.oci.digest import Digest, DigestError
from trustyard.oci.manifest import Descriptor, ImageIndex, ImageManifest, Platform
from trustyard.scan.errors import SourceError
from trustyard.scan.layers import Layer, LayerLimits, Reduce, Wants, normalize_path, read_layer
from trustyard.scan.sources.credentials import Credentials

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


class ManifestSource(SourceBase):
    """A source backed by an image manifest (a layout, a registry): the manifest it selected and its digest.

    Subclasses set ``self._manifest`` in ``__init__`` before anyone asks.
    """

    _manifest: ImageManifest

    @property
    def manifest_digest(self) -> Digest:
        """The digest of the selected image manifest (the platform's child of an index)."""
        return self._manifest.digest

    @property
    def manifest(self) -> ImageManifest:
        """The selected image manifest."""
        return self._manifest


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


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """Which image of an index to read: ``os/architecture[/variant]``, as ``--platform`` takes it."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> PlatformSpec:
        """``linux/arm64``, ``linux/arm/v7``; ``SourceError`` for anything else."""
        parts = text.strip().split("/")
        if not 2 <= len(parts) <= 3 or not all(parts):
            raise SourceError(f"{text!r}: a platform is OS/ARCH or OS/ARCH/VARIANT, e.g. linux/amd64")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, platform: Platform) -> bool:
        """Same OS and architecture, and the same variant when this spec names one."""
        same = (platform.os, platform.architecture) == (self.os, self.architecture)
        return same and (self.variant is None or platform.variant == self.variant)


def manifest_layers(
    manifest: ImageManifest, diff_ids: Sequence[Digest], location: Callable[[Digest], str] = str
) -> tuple[LayerRef, ...]:
    """The ``LayerRef`` of each layer of ``manifest``, with its diff_id from the config, where the source
    keeps it at ``location(digest)``."""
    return tuple(
        LayerRef(
            index=i,
            location=location(d.digest),
            digest=d.digest,
            media_type=d.media_type,
            size=d.size,
            diff_id=diff_ids[i] if i < len(diff_ids) else None,
        )
        for i, d in enumerate(manifest.layers)
    )


DEFAULT_PLATFORM: Final = PlatformSpec()
"""The platform chosen from an index when none is asked for (skopeo's default on amd64)."""


def platform_choice(index: ImageIndex, name: str, platform: PlatformSpec = DEFAULT_PLATFORM) -> Descriptor:
    """The image of an index for ``platform``, or its only image; attestation manifests never count."""
    images = [d for d in index.manifests if d.platform is None or d.platform.os != "unknown"]
    for d in images:
        if d.platform is not None and platform.matches(d.platform):
            return d
    if len(images) == 1 and platform == DEFAULT_PLATFORM:
        return images[0]
    offered = ", ".join(
        str(PlatformSpec(d.platform.os, d.platform.architecture, d.platform.variant)) for d in images if d.platform
    )
    raise SourceError(f"{name}: the index has no {platform} image (it offers: {offered or 'no platforms'})")


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """What a user can say about how to reach an image, as skopeo's options say it; each source uses its part.

    ``tls_verify``: ``None`` verifies certificates except for a registry on the loopback interface, which may
    also be reached over plain HTTP (as dockerd treats 127.0.0.0/8); ``False`` is skopeo's
    ``--tls-verify=false`` (any certificate, and plain HTTP when HTTPS is not served).
    """

    credentials: Credentials | None = None
    authfile: Path | None = None
    tls_verify: bool | None = None
    platform: PlatformSpec = DEFAULT_PLATFORM
