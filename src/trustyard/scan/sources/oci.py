"""``oci:DIR[:TAG]`` and ``oci-archive:FILE[:TAG]``: an OCI image layout, as a directory or as a tar of one.

Follows OCI image-spec image-layout.md: ``index.json`` names the images, ``org.opencontainers.image.ref.name``
is the tag skopeo's ``:TAG`` selects, blobs live at ``blobs/<algorithm>/<encoded>``. Every document read is
checked against the digest that named it; a nested index is followed to its linux/amd64 image (or its only
image). Manifests are parsed by ``trustyard.oci.manifest``: the scanner has no manifest parser of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from trustyard.oci.digest import Digest
from trustyard.oci.manifest import Descriptor, ImageIndex, ImageManifest, ManifestError, parse_manifest
from trustyard.oci.mediatypes import MediaType
from trustyard.scan.errors import SourceError
from trustyard.scan.layers import Layer, LayerLimits, Reduce, Wants
from trustyard.scan.sources.base import (
    DEFAULT_PLATFORM,
    Container,
    LayerRef,
    ManifestSource,
    PlatformSpec,
    SourceOptions,
    container_for,
    manifest_layers,
    parse_diff_ids,
    platform_choice,
    read_checked,
    read_small,
)

REF_NAME: Final = "org.opencontainers.image.ref.name"
_MAX_NESTING: Final = 4


def _blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


class OciLayoutSource(ManifestSource):
    """An image in an OCI layout; ``tag`` selects by ref name, else the layout must hold exactly one image."""

    def __init__(
        self, container: Container, *, name: str, tag: str | None = None, platform: PlatformSpec = DEFAULT_PLATFORM
    ) -> None:
        super().__init__(name)
        self._container = container
        self._platform = platform
        try:
            self._manifest = self._select(tag)
            diff_ids = parse_diff_ids(self._blob(self._manifest.config), "config")
        except BaseException:
            container.close()
            raise
        self._layers = manifest_layers(self._manifest, diff_ids, _blob_path)

    @classmethod
    def open(cls, name: str, rest: str, options: SourceOptions | None = None) -> OciLayoutSource:
        """``oci:DIR[:TAG]`` or ``oci-archive:FILE[:TAG]`` (``rest`` is what follows the transport)."""
        path, _, tag = rest.partition(":")
        if not path:
            raise SourceError(f"{name!r}: no layout path")
        return cls(
            container_for(Path(path)), name=name, tag=tag or None, platform=(options or SourceOptions()).platform
        )

    def read_layer(self, ref: LayerRef, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None) -> Layer:
        """Stream the layer blob and check it hashes to its descriptor's digest."""
        return read_checked(self._container, ref, wants=wants, limits=limits, reduce=reduce)

    def close(self) -> None:
        """Close the archive, if the layout is one."""
        self._container.close()

    def _blob(self, descriptor: Descriptor) -> bytes:
        raw = read_small(self._container, _blob_path(descriptor.digest))
        if Digest.of(raw, descriptor.digest.algorithm) != descriptor.digest:
            raise SourceError(f"blob {descriptor.digest} does not match its digest")
        return raw

    def _parse(self, raw: bytes, media_type: str, where: str) -> ImageManifest | ImageIndex:
        try:
            return parse_manifest(raw, media_type)
        except ManifestError as e:
            raise SourceError(f"{self._name}: {where}: {e.message}") from e

    def _select(self, tag: str | None) -> ImageManifest:
        index = self._parse(read_small(self._container, "index.json"), MediaType.OCI_INDEX, "index.json")
        if not isinstance(index, ImageIndex):
            raise SourceError(f"{self._name}: index.json is not an image index")
        if tag is not None:
            chosen = [d for d in index.manifests if d.annotations.get(REF_NAME) == tag]
            if not chosen:
                names = sorted({d.annotations[REF_NAME] for d in index.manifests if REF_NAME in d.annotations})
                raise SourceError(f"{self._name}: no image tagged {tag!r} (tags: {', '.join(names) or 'none'})")
        else:
            chosen = list(index.manifests)
            if len(chosen) != 1:
                raise SourceError(f"{self._name}: the layout holds {len(chosen)} images; name one with :TAG")
        descriptor = chosen[-1]
        for _ in range(_MAX_NESTING):
            found = self._parse(self._blob(descriptor), descriptor.media_type, str(descriptor.digest))
            if isinstance(found, ImageManifest):
                return found
            descriptor = platform_choice(found, self._name, self._platform)
        raise SourceError(f"{self._name}: indexes nested more than {_MAX_NESTING} deep")
