"""What a person browsing the registry needs to see, in one read each: repositories with their sizes, tags with
their digests, platforms, pushers and scan summaries, and one image's layers, history and referrers.

The registry protocol answers none of this (``/v2/<name>/tags/list`` gives bare names); Harbor and Quay give it
through their own APIs, and so does this module, through ``/api/v1`` (``auth/api.py``) and the web pages, which
call the same functions. Reads only: nothing here changes the registry. Sizes are what the registry stores:
the compressed blobs a manifest names (an index: the sum of its platforms), a repository's "storage used" is its
distinct blobs and its manifests.

Not here: authorization (the API handlers decide who may read what), scan summaries (``scan_summary.py``), the
scan results themselves (``registry/jobs.py``), HTML.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import and_, case, func, select

from trustyard.db.models import (
    audit_events,
    blobs,
    manifests,
    repositories,
    repository_blobs,
    tags,
)
from trustyard.errors import TrustyardError
from trustyard.oci.manifest import ImageIndex, ImageManifest, ManifestError, parse_manifest
from trustyard.oci.mediatypes import INDEX_TYPES
from trustyard.registry.errors import RegistryError
from trustyard.registry.scan_summary import Answer, ScanSummary, scan_summaries
from trustyard.registry.service import RegistryService

__all__ = [
    "ImageDetail",
    "LayerOut",
    "PlatformOut",
    "ReferrerOut",
    "RepositoryFilters",
    "RepositoryList",
    "RepositoryOut",
    "TagList",
    "TagOut",
    "TagPage",
    "image_detail",
    "list_repositories",
    "list_tags",
]

_PUSHERS_SCANNED: Final = 2000
"""How many of a repository's newest push events are read to name each tag's pusher."""


class RepositoryOut(Answer):
    """A repository with what it holds and how much storage it uses."""

    name: str
    project: str
    tags: int
    images: int = Field(description="manifests that are not referrers (signatures, SBOMs) of another")
    size: int = Field(description="bytes of the distinct blobs and the manifests the repository holds")
    created_at: float
    pushed_at: float | None = Field(description="the newest tag change, epoch seconds")


class RepositoryFilters(BaseModel):
    """Query parameters of ``GET /api/v1/repositories``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    project: str | None = Field(default=None, max_length=255, description="only this project's repositories")


class RepositoryList(Answer):
    """Repositories, by name."""

    repositories: list[RepositoryOut]


class PlatformOut(Answer):
    """One image of an index (or the only image of an image manifest)."""

    os: str | None
    architecture: str | None
    variant: str | None = None
    digest: str
    size: int
    scan: ScanSummary | None = None


class TagOut(Answer):
    """A tag: where it points, what that is, when and by whom it was pushed, and how it scanned."""

    name: str
    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    pushed_at: float
    pushed_by: str | None = Field(description="from the audit log; null when no push of this tag is recorded")
    platforms: list[PlatformOut]


class TagList(Answer):
    """One page of a repository's tags, newest push first; ``total`` counts them all."""

    repository: str
    total: int
    offset: int
    tags: list[TagOut]


class TagPage(BaseModel):
    """Query parameters of ``GET /api/v1/repositories/{name}/tags``: which page of tags, newest push first."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class LayerOut(Answer):
    """A layer as stored, and the history step that made it (when the config records one)."""

    digest: str
    media_type: str
    size: int
    created_by: str | None
    created: str | None
    comment: str | None


class HistoryOut(Answer):
    """One step of the image's history; ``empty_layer`` steps changed only the config."""

    created_by: str | None
    created: str | None
    empty_layer: bool
    layer: str | None = Field(description="digest of the layer this step made")


class ReferrerOut(Answer):
    """A manifest whose subject is this image: a signature, an SBOM, an attestation."""

    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    annotations: dict[str, str]


class ImageDetail(Answer):
    """One manifest in a repository: its platform, config summary, layers with history, and referrers."""

    repository: str
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    tags: list[str]
    platforms: list[PlatformOut] = Field(description="an index's images; empty for an image manifest")
    os: str | None = None
    architecture: str | None = None
    created: str | None = None
    config_digest: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    layers: list[LayerOut] = Field(default_factory=list)
    history: list[HistoryOut] = Field(default_factory=list)
    referrers: list[ReferrerOut] = Field(default_factory=list)


class _History(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    created: str | None = None
    created_by: str | None = None
    comment: str | None = None
    empty_layer: bool = False


class _RunConfig(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    Entrypoint: list[str] | None = None
    Cmd: list[str] | None = None
    Labels: dict[str, str] | None = None


class _Config(BaseModel):
    """The parts of an image config (OCI image-spec config.md) the pages show; the rest is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    created: str | None = None
    architecture: str | None = None
    os: str | None = None
    variant: str | None = None
    config: _RunConfig | None = None
    history: list[_History] = Field(default_factory=list)


# -- repositories ----------------------------------------------------------------------------------------------


def list_repositories(registry: RegistryService, names: Iterable[str] | None = None) -> RepositoryList:
    """Every repository (or those among ``names``) with tag and image counts, storage used and last push."""
    db = registry.db
    tag_stats = (
        select(tags.c.repository_id, func.count().label("n"), func.max(tags.c.updated_at).label("pushed"))
        .group_by(tags.c.repository_id)
        .subquery()
    )
    image_stats = (
        select(
            manifests.c.repository_id,
            func.sum(case((manifests.c.subject.is_(None), 1), else_=0)).label("n"),
            func.sum(manifests.c.size).label("bytes"),
        )
        .group_by(manifests.c.repository_id)
        .subquery()
    )
    size_stats = (
        select(repository_blobs.c.repository_id, func.sum(blobs.c.size).label("n"))
        .join(blobs, blobs.c.digest == repository_blobs.c.digest)
        .group_by(repository_blobs.c.repository_id)
        .subquery()
    )
    query = (
        select(
            repositories.c.name,
            repositories.c.created_at,
            tag_stats.c.n,
            tag_stats.c.pushed,
            image_stats.c.n,
            image_stats.c.bytes,
            size_stats.c.n,
        )
        .outerjoin(tag_stats, tag_stats.c.repository_id == repositories.c.id)
        .outerjoin(image_stats, image_stats.c.repository_id == repositories.c.id)
        .outerjoin(size_stats, size_stats.c.repository_id == repositories.c.id)
        .order_by(repositories.c.name)
    )
    wanted = None if names is None else set(names)
    if wanted is not None:
        query = query.where(repositories.c.name.in_(sorted(wanted)))
    with db.read() as conn:
        rows = conn.execute(query).all()
    return RepositoryList(
        repositories=[
            RepositoryOut(
                name=name,
                project=name.split("/", 1)[0],
                tags=int(ntags or 0),
                images=int(nimages or 0),
                size=int(size or 0) + int(manifest_bytes or 0),
                created_at=float(created),
                pushed_at=None if pushed is None else float(pushed),
            )
            for name, created, ntags, pushed, nimages, manifest_bytes, size in rows
        ]
    )


def repository_names(registry: RegistryService) -> list[str]:
    """Every repository name (what the callers filter by permission before asking for details)."""
    with registry.db.read() as conn:
        return [r[0] for r in conn.execute(select(repositories.c.name).order_by(repositories.c.name))]


# -- tags ------------------------------------------------------------------------------------------------------


def _parsed(registry: RegistryService, name: str, digest: str) -> ImageManifest | ImageIndex | None:
    """The manifest, parsed; ``None`` when it cannot be read (shown as unknown, never an error page)."""
    try:
        stored = registry.get_manifest(name, digest)
        return parse_manifest(stored.body, stored.media_type)
    except (RegistryError, ManifestError, TrustyardError):
        return None


def _image_size(manifest: ImageManifest) -> int:
    return len(manifest.raw) + sum(b.size for b in manifest.blobs)


def _config(registry: RegistryService, name: str, manifest: ImageManifest) -> _Config | None:
    """The image config, when the manifest's config is one (an artifact's is not parsed)."""
    if manifest.config.size > 4 * 1024 * 1024 or "json" not in manifest.config.media_type:
        return None
    try:
        raw = b"".join(registry.read_blob(name, str(manifest.config.digest), 0, manifest.config.size))
        return _Config.model_validate_json(raw)
    except (RegistryError, TrustyardError, ValidationError, ValueError):
        return None


def _platforms(
    registry: RegistryService, name: str, digest: str, manifest: ImageManifest | ImageIndex | None
) -> list[PlatformOut]:
    """An index's images (each sized from its own manifest), or the image itself with its config's platform."""
    if manifest is None:
        return []
    if isinstance(manifest, ImageIndex):
        found = []
        for child in manifest.manifests:
            if child.artifact_type is not None:
                continue  # an attestation or other artifact listed in the index: not a platform
            parsed = _parsed(registry, name, str(child.digest))
            size = _image_size(parsed) if isinstance(parsed, ImageManifest) else child.size
            platform = child.platform
            found.append(
                PlatformOut(
                    os=platform.os if platform else None,
                    architecture=platform.architecture if platform else None,
                    variant=platform.variant if platform else None,
                    digest=str(child.digest),
                    size=size,
                )
            )
        return found
    config = _config(registry, name, manifest)
    return [
        PlatformOut(
            os=config.os if config else None,
            architecture=config.architecture if config else None,
            variant=config.variant if config else None,
            digest=digest,
            size=_image_size(manifest),
        )
    ]


def _pushers(registry: RegistryService, name: str) -> dict[str, str]:
    """Who last pushed each reference of ``name``, from the newest successful push events in the audit log."""
    project = name.split("/", 1)[0]
    query = (
        select(audit_events.c.target, audit_events.c.actor)
        .where(
            and_(
                audit_events.c.project == project,
                audit_events.c.repository == name,
                audit_events.c.action == "push",
                audit_events.c.result == "success",
            )
        )
        .order_by(audit_events.c.at.desc())
        .limit(_PUSHERS_SCANNED)
    )
    found: dict[str, str] = {}
    with registry.db.read() as conn:
        for target, actor in conn.execute(query):
            found.setdefault(target or "", actor)
    return found


def list_tags(registry: RegistryService, name: str, page: TagPage | None = None) -> TagList | None:
    """A page of the repository's tags with everything the tag table shows (each one costs manifest reads, so
    callers page); ``None`` if the repository does not exist."""
    page = page or TagPage()
    with registry.db.read() as conn:
        rid = conn.execute(select(repositories.c.id).where(repositories.c.name == name)).scalar_one_or_none()
        if rid is None:
            return None
        total = conn.execute(select(func.count()).select_from(tags).where(tags.c.repository_id == rid)).scalar_one()
        rows = conn.execute(
            select(
                tags.c.name,
                tags.c.manifest_digest,
                tags.c.updated_at,
                manifests.c.media_type,
                manifests.c.artifact_type,
            )
            .join(
                manifests,
                and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.manifest_digest),
            )
            .where(tags.c.repository_id == rid)
            .order_by(tags.c.updated_at.desc(), tags.c.name)
            .limit(page.limit)
            .offset(page.offset)
        ).all()
    pushers = _pushers(registry, name) if rows else {}
    found: list[TagOut] = []
    for tag, digest, updated, media_type, artifact_type in rows:
        manifest = _parsed(registry, name, digest)
        platforms = _platforms(registry, name, digest, manifest)
        size = sum(p.size for p in platforms) if platforms else 0
        if isinstance(manifest, ImageIndex):
            size += len(manifest.raw)
        found.append(
            TagOut(
                name=tag,
                digest=digest,
                media_type=media_type,
                artifact_type=artifact_type,
                size=size,
                pushed_at=float(updated),
                pushed_by=pushers.get(tag, pushers.get(digest)),
                platforms=platforms,
            )
        )
    summaries = scan_summaries(registry, [p.digest for t in found for p in t.platforms])
    tagged = [
        t.model_copy(
            update={"platforms": [p.model_copy(update={"scan": summaries.get(p.digest)}) for p in t.platforms]}
        )
        for t in found
    ]
    return TagList(repository=name, total=int(total), offset=page.offset, tags=tagged)


# -- one image -------------------------------------------------------------------------------------------------


def _history(config: _Config | None, manifest: ImageManifest) -> tuple[list[LayerOut], list[HistoryOut]]:
    """Layers joined to the history steps that made them: the n-th non-empty step made the n-th layer."""
    steps = config.history if config else []
    made = [s for s in steps if not s.empty_layer]
    aligned = len(made) == len(manifest.layers)
    layers = []
    for i, layer in enumerate(manifest.layers):
        step = made[i] if aligned else None
        layers.append(
            LayerOut(
                digest=str(layer.digest),
                media_type=layer.media_type,
                size=layer.size,
                created_by=step.created_by if step else None,
                created=step.created if step else None,
                comment=step.comment if step else None,
            )
        )
    history = []
    index = 0
    for step in steps:
        made_by: str | None = None
        if not step.empty_layer:
            made_by = str(manifest.layers[index].digest) if aligned and index < len(manifest.layers) else None
            index += 1
        history.append(
            HistoryOut(created_by=step.created_by, created=step.created, empty_layer=step.empty_layer, layer=made_by)
        )
    return layers, history


def image_detail(registry: RegistryService, name: str, digest: str) -> ImageDetail | None:
    """One manifest of ``name``; ``None`` if the repository does not hold it."""
    with registry.db.read() as conn:
        row = conn.execute(
            select(manifests.c.media_type, manifests.c.size, manifests.c.artifact_type)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(repositories.c.name == name, manifests.c.digest == digest)
        ).first()
        if row is None:
            return None
        tag_names = [
            r[0]
            for r in conn.execute(
                select(tags.c.name)
                .join(repositories, repositories.c.id == tags.c.repository_id)
                .where(repositories.c.name == name, tags.c.manifest_digest == digest)
                .order_by(tags.c.name)
            )
        ]
    manifest = _parsed(registry, name, digest)
    referrers = [
        ReferrerOut(
            digest=r.digest,
            media_type=r.media_type,
            artifact_type=r.artifact_type,
            size=r.size,
            annotations=r.annotations,
        )
        for r in registry.meta.referrers(name, digest)
    ]
    platforms = _platforms(registry, name, digest, manifest)
    summaries = scan_summaries(registry, [p.digest for p in platforms])
    platforms = [p.model_copy(update={"scan": summaries.get(p.digest)}) for p in platforms]
    base: dict[str, Any] = {
        "repository": name,
        "digest": digest,
        "media_type": row.media_type,
        "size": sum(p.size for p in platforms) if platforms else int(row.size),
        "artifact_type": row.artifact_type,
        "tags": tag_names,
        "referrers": referrers,
    }
    if not isinstance(manifest, ImageManifest) or row.media_type in INDEX_TYPES:
        return ImageDetail(**base, platforms=platforms)
    config = _config(registry, name, manifest)
    layers, history = _history(config, manifest)
    run = config.config if config else None
    return ImageDetail(
        **base,
        platforms=[],
        os=config.os if config else None,
        architecture=config.architecture if config else None,
        created=config.created if config else None,
        config_digest=str(manifest.config.digest),
        entrypoint=run.Entrypoint if run else None,
        cmd=run.Cmd if run else None,
        labels=(run.Labels or {}) if run else {},
        layers=layers,
        history=history,
    )
