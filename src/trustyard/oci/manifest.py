"""Image manifests and indexes (OCI image-spec v1.1, Docker schema 2), parsed once from their bytes.

A parsed manifest keeps the exact bytes it was parsed from (``raw``): the digest is over those bytes and
they are what the registry serves, so nothing is ever re-serialised. Parsing validates the structure the
registry relies on (schema version, media type agreement, descriptor digests and sizes); it deliberately
ignores unknown fields, as the spec requires. Docker schema 1 is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trustyard.errors import TrustyardError
from trustyard.oci.digest import Digest, DigestError
from trustyard.oci.mediatypes import FOREIGN_LAYER_TYPES, IMAGE_MANIFEST_TYPES, INDEX_TYPES, SCHEMA1_TYPES, MediaType


class ManifestError(TrustyardError):
    """The bytes are not a manifest the registry accepts; the message says why."""


class _Platform(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    architecture: str
    os: str
    variant: str | None = None


class _Descriptor(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    media_type: str = Field(alias="mediaType", min_length=1)
    digest: str
    size: int = Field(ge=0)
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    artifact_type: str | None = Field(default=None, alias="artifactType")
    platform: _Platform | None = None


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)
    schema_version: int = Field(alias="schemaVersion")
    media_type: str | None = Field(default=None, alias="mediaType")
    artifact_type: str | None = Field(default=None, alias="artifactType")
    config: _Descriptor | None = None
    layers: list[_Descriptor] | None = None
    manifests: list[_Descriptor] | None = None
    subject: _Descriptor | None = None
    annotations: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Platform:
    """The platform an index entry is for."""

    architecture: str
    os: str
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A typed content descriptor."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None

    @property
    def is_foreign(self) -> bool:
        """A non-distributable layer with URLs: its content lives elsewhere, not in the registry."""
        return bool(self.urls) and self.media_type in FOREIGN_LAYER_TYPES


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """An image (or artifact) manifest: one config and its layers."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes
    digest: Digest
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Every blob the manifest names (config first), the ones a registry must hold."""
        return (self.config, *self.layers)

    @property
    def children(self) -> tuple[Descriptor, ...]:
        """Manifests this one names (none for an image manifest)."""
        return ()

    @property
    def effective_artifact_type(self) -> str:
        """What the referrers API reports: ``artifactType``, else the config's media type."""
        return self.artifact_type or self.config.media_type


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """An image index or Docker manifest list: manifests for several platforms or artifacts."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes
    digest: Digest
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """An index names no blobs directly."""
        return ()

    @property
    def children(self) -> tuple[Descriptor, ...]:
        """The manifests the index names."""
        return self.manifests

    @property
    def effective_artifact_type(self) -> str | None:
        """What the referrers API reports for an index: its ``artifactType``, if any."""
        return self.artifact_type


Manifest = ImageManifest | ImageIndex


def _descriptor(d: _Descriptor, where: str) -> Descriptor:
    try:
        digest = Digest.parse(d.digest)
    except DigestError as e:
        raise ManifestError(f"{where}: {e.message}") from e
    platform = Platform(d.platform.architecture, d.platform.os, d.platform.variant) if d.platform else None
    return Descriptor(
        media_type=d.media_type,
        digest=digest,
        size=d.size,
        urls=tuple(d.urls or ()),
        artifact_type=d.artifact_type,
        annotations=dict(d.annotations or {}),
        platform=platform,
    )


def _schema1(raw: bytes) -> bool:
    head = raw[:4096]
    return b'"schemaVersion"' in head and (b'"fsLayers"' in raw or b'"signatures"' in raw)


def parse_manifest(raw: bytes, content_type: str | None, *, algorithm: str = "sha256") -> Manifest:
    """Parse manifest bytes sent with ``content_type`` (the HTTP header, may be absent).

    The media type is taken from the document's ``mediaType`` field, else from ``content_type``; when both
    are present they must agree (distribution-spec "Pushing manifests").
    """
    ctype = (content_type or "").split(";", 1)[0].strip() or None
    if ctype in SCHEMA1_TYPES:
        raise ManifestError("Docker schema 1 manifests are not supported; push schema 2 or OCI")
    try:
        model = _Manifest.model_validate_json(raw)
    except ValidationError as e:
        if _schema1(raw):
            raise ManifestError("Docker schema 1 manifests are not supported; push schema 2 or OCI") from e
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "document"
        raise ManifestError(f"malformed manifest: {loc}: {first['msg']}") from e
    if model.schema_version != 2:
        raise ManifestError(f"unsupported schemaVersion {model.schema_version}; only 2 is accepted")
    media_type = model.media_type or ctype
    if model.media_type and ctype and ctype != model.media_type and ctype not in {"application/json"}:
        raise ManifestError(f"Content-Type {ctype!r} does not match the manifest's mediaType {model.media_type!r}")
    if media_type is None:
        media_type = _guess(model)
    digest = Digest(algorithm, Digest.of(raw, algorithm).hex)
    subject = _descriptor(model.subject, "subject") if model.subject else None
    annotations = dict(model.annotations or {})
    if media_type in IMAGE_MANIFEST_TYPES:
        if model.config is None:
            raise ManifestError("an image manifest needs a config descriptor")
        if model.manifests is not None:
            raise ManifestError("an image manifest cannot list manifests")
        layers = tuple(_descriptor(d, f"layers[{i}]") for i, d in enumerate(model.layers or ()))
        if media_type == MediaType.DOCKER_MANIFEST and model.layers is None:
            raise ManifestError("a Docker schema 2 manifest needs a layers list")
        return ImageManifest(
            media_type=media_type,
            config=_descriptor(model.config, "config"),
            layers=layers,
            raw=raw,
            digest=digest,
            subject=subject,
            artifact_type=model.artifact_type,
            annotations=annotations,
        )
    if media_type in INDEX_TYPES:
        if model.manifests is None:
            raise ManifestError("an index needs a manifests list")
        if model.config is not None or model.layers is not None:
            raise ManifestError("an index cannot have a config or layers")
        children = tuple(_descriptor(d, f"manifests[{i}]") for i, d in enumerate(model.manifests))
        return ImageIndex(
            media_type=media_type,
            manifests=children,
            raw=raw,
            digest=digest,
            subject=subject,
            artifact_type=model.artifact_type,
            annotations=annotations,
        )
    raise ManifestError(f"unsupported manifest media type {media_type!r}")


def _guess(model: _Manifest) -> str:
    """OCI allows ``mediaType`` to be omitted; infer it from the shape when no header says it either."""
    if model.config is not None:
        return MediaType.OCI_MANIFEST
    if model.manifests is not None:
        return MediaType.OCI_INDEX
    raise ManifestError("manifest has no mediaType and no Content-Type says what it is")
