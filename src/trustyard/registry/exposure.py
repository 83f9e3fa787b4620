"""The registry's exposure at a glance: how many tagged images by their worst finding, which vulnerable packages
are the most widespread, and how fresh the vulnerability data is.

The dashboard of the web interface draws these; ``/api/v1/exposure`` and ``/api/v1/vulnerability-data`` serve the
same answers. Only tagged images count (an untagged manifest is on its way to garbage collection), an index
counts as its images, and an image in two repositories is one image: exposure is of content, not of names.
The counts come from the stored findings of each image (``overview.counted_reports``, parsed once per re-check).

Not here: who may see which repositories (the callers pass the names they may list), scanning itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Final

from pydantic import Field
from sqlalchemy import and_, select

from trustyard.config import Settings
from trustyard.db.models import manifest_references, manifests, repositories, tags
from trustyard.oci.mediatypes import INDEX_TYPES
from trustyard.registry.scan_summary import SEVERITIES, Answer, counted_reports
from trustyard.registry.service import RegistryService
from trustyard.scan.vulndb.errors import StoreError
from trustyard.scan.vulndb.store import VulnerabilityStore, configured_path

__all__ = ["Exposure", "PackageExposure", "VulnerabilityData", "VulnerabilitySource", "exposure", "vulnerability_data"]

_TOP: Final = 10


class PackageExposure(Answer):
    """A vulnerable package version and how many images carry it."""

    type: str
    name: str
    version: str
    images: int
    repositories: list[str] = Field(description="up to 5 repositories holding such an image")


class Exposure(Answer):
    """Tagged images by worst severity (``none``: scanned, nothing found; ``unscanned``: no findings yet)."""

    images: int
    by_worst: dict[str, int]
    packages: list[PackageExposure] = Field(description="the most widespread vulnerable packages, most first")


class VulnerabilitySource(Answer):
    """One source of the vulnerability store: what it holds and how old it is."""

    source: str
    advisories: int
    withdrawn: int
    affected: int
    location: str
    data_time: str | None = Field(description="the newest modification time in the data")
    imported_at: str = Field(description="when it was last imported")


class VulnerabilityData(Answer):
    """The vulnerability store the registry matches against (no sources: nothing imported yet)."""

    path: str
    sources: list[VulnerabilitySource]


def _tagged_images(registry: RegistryService, names: Iterable[str]) -> dict[str, set[str]]:
    """Image digest -> repositories holding it under a tag (an index's images in its place)."""
    wanted = sorted(set(names))
    found: dict[str, set[str]] = defaultdict(set)
    if not wanted:
        return found
    with registry.db.read() as conn:
        rows = conn.execute(
            select(repositories.c.id, repositories.c.name, tags.c.manifest_digest, manifests.c.media_type)
            .join(tags, tags.c.repository_id == repositories.c.id)
            .join(
                manifests,
                and_(manifests.c.repository_id == tags.c.repository_id, manifests.c.digest == tags.c.manifest_digest),
            )
            .where(repositories.c.name.in_(wanted))
        ).all()
        indexes: dict[tuple[int, str], str] = {}
        for rid, name, digest, media_type in rows:
            if media_type in INDEX_TYPES:
                indexes[(rid, digest)] = name
            else:
                found[digest].add(name)
        for (rid, digest), name in indexes.items():
            children = conn.execute(
                select(manifest_references.c.child_digest).where(
                    manifest_references.c.repository_id == rid,
                    manifest_references.c.manifest_digest == digest,
                    manifest_references.c.is_manifest == 1,
                )
            )
            for (child,) in children:
                found[child].add(name)
    return found


def exposure(registry: RegistryService, names: Iterable[str], *, top: int = _TOP) -> Exposure:
    """The exposure of the tagged images in the repositories ``names``."""
    images = _tagged_images(registry, names)
    reports = counted_reports(registry, sorted(images))
    by_worst = dict.fromkeys((*SEVERITIES, "none", "unscanned"), 0)
    carriers: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for digest in images:
        report = reports.get(digest)
        counted = report[2] if report else None
        if counted is None:
            by_worst["unscanned"] += 1
            continue
        worst = next((s for s in SEVERITIES if counted.counts.get(s)), "none")
        by_worst[worst] += 1
        for package in counted.packages:
            carriers[package].add(digest)
    ranked = sorted(carriers.items(), key=lambda item: (-len(item[1]), item[0]))[:top]
    packages = [
        PackageExposure(
            type=kind,
            name=name,
            version=version,
            images=len(digests),
            repositories=sorted({r for d in digests for r in images[d]})[:5],
        )
        for (kind, name, version), digests in ranked
    ]
    return Exposure(images=len(images), by_worst=by_worst, packages=packages)


def vulnerability_data(settings: Settings) -> VulnerabilityData:
    """The sources of the vulnerability store the registry matches against, with counts and times."""
    path = configured_path(settings)
    try:
        with VulnerabilityStore(path, create=False) as store:
            sources = store.sources()
    except StoreError:
        return VulnerabilityData(path=str(path), sources=[])
    return VulnerabilityData(
        path=str(path),
        sources=[
            VulnerabilitySource(
                source=s.source,
                advisories=s.advisories,
                withdrawn=s.withdrawn,
                affected=s.affected,
                location=s.location,
                data_time=s.data_time,
                imported_at=s.imported_at,
            )
            for s in sources
        ],
    )
