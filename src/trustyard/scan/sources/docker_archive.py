"""``docker-archive:FILE[:REF]`` (or ``:@N``): the tar that ``docker save`` writes, read without extracting.

The archive's ``manifest.json`` lists images as ``{Config, RepoTags, Layers}``; layers are tars named by
path inside the archive (``<id>/layer.tar`` before Docker 25, ``blobs/sha256/<hex>`` after, where the
archive is also an OCI layout). A layer named by digest is checked against it; an uncompressed layer is
checked against its config's ``diff_id``. ``REF`` picks an image by one of its tags, ``@N`` by position.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from trustyard.oci.digest import Digest
from trustyard.scan.errors import SourceError
from trustyard.scan.layers import Compression, Layer, LayerLimits, Reduce, Wants
from trustyard.scan.sources.base import (
    LayerRef,
    SourceBase,
    SourceOptions,
    TarContainer,
    parse_diff_ids,
    read_checked,
    read_small,
)

_BLOB_NAME: Final = re.compile(r"(?:\./)?blobs/(sha256|sha512)/([a-f0-9]+)")
_DEFAULT_PREFIXES: Final = ("docker.io/library/", "docker.io/", "index.docker.io/library/")


class _Image(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    config: str = Field(alias="Config", min_length=1)
    repo_tags: list[str] | None = Field(default=None, alias="RepoTags")
    layers: list[str] = Field(alias="Layers")


_MANIFEST: Final = TypeAdapter(list[_Image])


def _short(tag: str) -> str:
    for prefix in _DEFAULT_PREFIXES:
        if tag.startswith(prefix):
            return tag[len(prefix) :]
    return tag


class DockerArchiveSource(SourceBase):
    """One image of a ``docker save`` archive."""

    def __init__(self, path: Path, *, name: str, ref: str | None = None) -> None:
        super().__init__(name)
        self._container = TarContainer(path)
        try:
            image = self._select(ref)
            diff_ids = parse_diff_ids(read_small(self._container, image.config), image.config)
        except BaseException:
            self._container.close()
            raise
        refs = []
        for i, location in enumerate(image.layers):
            match = _BLOB_NAME.fullmatch(location)
            digest = Digest.parse(f"{match[1]}:{match[2]}") if match else None
            diff_id = diff_ids[i] if i < len(diff_ids) else None
            refs.append(LayerRef(index=i, location=location, digest=digest, diff_id=diff_id))
        self._layers = tuple(refs)

    @classmethod
    def open(cls, name: str, rest: str, options: SourceOptions) -> DockerArchiveSource:
        """``docker-archive:FILE[:REF|:@N]`` (``rest`` is what follows the transport)."""
        path, _, ref = rest.partition(":")
        if not path:
            raise SourceError(f"{name!r}: no archive path")
        if not Path(path).is_file():
            raise SourceError(f"{path} is not a file")
        return cls(Path(path), name=name, ref=ref or None)

    def read_layer(self, ref: LayerRef, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None) -> Layer:
        """Stream one layer tar out of the archive, checked against its digest or diff_id."""
        layer = read_checked(self._container, ref, wants=wants, limits=limits, reduce=reduce)
        unchecked = ref.digest is None and ref.diff_id is not None and layer.compression is Compression.NONE
        if unchecked and layer.digest != ref.diff_id:
            raise SourceError(f"layer {ref.index} ({ref.location}) does not match its diff_id {ref.diff_id}")
        return layer

    def close(self) -> None:
        """Close the archive."""
        self._container.close()

    def _select(self, ref: str | None) -> _Image:
        try:
            images = _MANIFEST.validate_json(read_small(self._container, "manifest.json"))
        except ValidationError as e:
            raise SourceError(f"{self._name}: malformed manifest.json: {e.errors()[0]['msg']}") from e
        if ref is not None and ref.startswith("@"):
            if not ref[1:].isdigit() or int(ref[1:]) >= len(images):
                raise SourceError(f"{self._name}: no image {ref} (the archive holds {len(images)})")
            return images[int(ref[1:])]
        if ref is not None:
            for image in images:
                if _short(ref) in {_short(t) for t in image.repo_tags or ()}:
                    return image
            raise SourceError(f"{self._name}: no image tagged {ref!r}")
        if len(images) != 1:
            raise SourceError(f"{self._name}: the archive holds {len(images)} images; name one with :REF or :@N")
        return images[0]
