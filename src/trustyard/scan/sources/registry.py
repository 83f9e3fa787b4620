"""An image stored in this registry, read straight from its blob store: the background scanner's source.

The worker names an image by manifest digest; the manifest, the config and every layer are read from the
``BlobStore`` the registry serves them from (no HTTP, no credentials, no copy). Each document is checked
against the digest that names it, and layers are checked by the walker as they stream, so a blob corrupted
on disk is an error, not a wrong bill of materials. An index is followed to its linux/amd64 image (or its
only image), as the ``oci:`` source does.

Not here: deciding which manifests to scan (``registry/jobs.py``), artifacts that are not images (the caller
skips them: ``RegistryImageSource`` refuses a manifest without layers of a known layer type).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from trustyard.oci.digest import Digest
from trustyard.oci.manifest import ImageManifest, ManifestError, parse_manifest
from trustyard.oci.mediatypes import MediaType
from trustyard.scan.errors import SourceError
from trustyard.scan.layers import Layer, LayerLimits, Reduce, Wants, read_layer
from trustyard.scan.sources.base import (
    MAX_METADATA_SIZE,
    LayerRef,
    ManifestSource,
    manifest_layers,
    parse_diff_ids,
    platform_choice,
)
from trustyard.storage.base import BlobStore, StorageError

IMAGE_CONFIG_TYPES: Final = frozenset({MediaType.OCI_CONFIG.value, MediaType.DOCKER_CONFIG.value})
_MAX_NESTING: Final = 4
_CHUNK: Final = 1 << 20


class NotAnImageError(SourceError):
    """The manifest is an artifact (an SBOM, a signature, ...), not a container image: nothing to index."""


class _BlobReader:
    """A blob as a ``read(size)`` stream over the store's chunk iterator (constant memory)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


class RegistryImageSource(ManifestSource):
    """The image a manifest digest names in ``store``; ``SourceError`` when it is not an image we can read."""

    def __init__(
        self, store: BlobStore, digest: Digest, *, media_type: str | None = None, name: str | None = None
    ) -> None:
        super().__init__(name or f"registry:{digest}")
        self._store = store
        self._manifest = self._select(digest, media_type)
        if self._manifest.config.media_type not in IMAGE_CONFIG_TYPES:
            raise NotAnImageError(
                f"{digest} is not an image (config {self._manifest.config.media_type},"
                f" artifactType {self._manifest.effective_artifact_type})"
            )
        diff_ids = parse_diff_ids(self._small(self._manifest.config.digest), "config")
        self._layers = manifest_layers(self._manifest, diff_ids)

    def read_layer(self, ref: LayerRef, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None) -> Layer:
        """Stream the layer blob from the store and check that it hashes to its descriptor's digest."""
        if ref.digest is None:  # pragma: no cover - every layer of a manifest has a digest
            raise SourceError(f"layer {ref.index} has no digest")
        size = self._stat(ref.digest)
        try:
            chunks = self._store.iter_range(ref.digest, 0, size, _CHUNK)
            layer = read_layer(_BlobReader(chunks), wants=wants, limits=limits, reduce=reduce)
        except StorageError as e:
            raise SourceError(f"layer {ref.index} ({ref.digest}): {e.message}") from e
        if layer.digest != ref.digest:
            raise SourceError(f"layer {ref.index} has digest {layer.digest}, the manifest says {ref.digest}")
        return layer

    def close(self) -> None:
        """Nothing is held open between reads."""

    def _stat(self, digest: Digest) -> int:
        try:
            size = self._store.stat(digest)
        except StorageError as e:
            raise SourceError(f"blob {digest}: {e.message}") from e
        if size is None:
            raise SourceError(f"blob {digest} is not in the store")
        return size

    def _small(self, digest: Digest) -> bytes:
        """A manifest or config blob, refused when implausibly large, checked against its digest."""
        size = self._stat(digest)
        if size > MAX_METADATA_SIZE:
            raise SourceError(f"blob {digest} has {size} bytes; not an image manifest or config")
        try:
            raw = self._store.read(digest)
        except StorageError as e:
            raise SourceError(f"blob {digest}: {e.message}") from e
        if Digest.of(raw, digest.algorithm) != digest:
            raise SourceError(f"blob {digest} does not match its digest")
        return raw

    def _select(self, digest: Digest, media_type: str | None) -> ImageManifest:
        for _ in range(_MAX_NESTING):
            raw = self._small(digest)
            try:
                found = parse_manifest(raw, media_type, algorithm=digest.algorithm)
            except ManifestError as e:
                raise SourceError(f"{digest}: {e.message}") from e
            if isinstance(found, ImageManifest):
                return found
            child = platform_choice(found, str(digest))
            digest, media_type = child.digest, child.media_type
        raise SourceError(f"{self.name}: indexes nested more than {_MAX_NESTING} deep")
