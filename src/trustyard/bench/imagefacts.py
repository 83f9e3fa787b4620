"""What the image checks read from an image: its configuration, history and merged file system — no engine.

An image is named as the scanner names it (``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``,
``docker-archive:FILE[:REF]``, ``rootfs:DIR``) and read through ``scan.sources`` and ``scan.image``: layers are
streamed once each, whiteouts applied, and only the few files the checks look inside (``/etc/passwd``,
``/etc/shadow``, ``/etc/group``) are kept in memory. The image configuration (user, health check, environment,
volumes) and history (the Dockerfile's instructions, as ``created_by``) are read next to it, because the scan
sources expose layers only. A root file system has no configuration: ``config`` is then ``None`` and the
checks that need one report INFO.

Not here: deciding anything (``images.py``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from trustyard.bench.base import InputUnavailable
from trustyard.oci.digest import Digest
from trustyard.scan.errors import ScanError
from trustyard.scan.image import ImageView
from trustyard.scan.layers import EntryType, LayerLimits
from trustyard.scan.sources import OciLayoutSource, open_source
from trustyard.scan.sources.base import TarContainer, container_for, read_small
from trustyard.scan.sources.docker import DockerReference, DockerRegistrySource

CAPTURED: Final = frozenset({"etc/passwd", "etc/shadow", "etc/group"})
CREDENTIAL_FILES: Final = frozenset(
    {
        ".git-credentials",
        ".netrc",
        ".pgpass",
        ".my.cnf",
        ".pypirc",
        ".htpasswd",
        "credentials.json",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
    }
)
"""Base names of files that hold credentials whatever their directory."""
CREDENTIAL_PATHS: Final = (".docker/config.json", ".aws/credentials", ".kube/config", ".config/gcloud/credentials.db")
"""Path endings of files that hold credentials in their tool's usual place."""
UNNECESSARY_NAMES: Final = frozenset({".DS_Store", "Thumbs.db", ".git", ".svn", ".hg", ".idea", ".vscode"})
"""Names that only ever get into an image by copying a developer's working tree."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Healthcheck(_Wire):
    test: list[str] | None = Field(default=None, alias="Test")


class _RunConfig(_Wire):
    user: str | None = Field(default=None, alias="User")
    env: list[str] | None = Field(default=None, alias="Env")
    healthcheck: _Healthcheck | None = Field(default=None, alias="Healthcheck")
    volumes: dict[str, object] | None = Field(default=None, alias="Volumes")


class _History(_Wire):
    created_by: str = ""
    empty_layer: bool = False


class _ImageConfig(_Wire):
    config: _RunConfig | None = None
    history: list[_History] | None = None


class _ArchiveImage(_Wire):
    config: str = Field(alias="Config")
    repo_tags: list[str] | None = Field(default=None, alias="RepoTags")


_ARCHIVE_MANIFEST: Final = TypeAdapter(list[_ArchiveImage])


@dataclass(frozen=True, slots=True)
class ImageConfigFacts:
    """The run configuration and history of an image."""

    user: str
    env: tuple[str, ...]
    healthcheck: bool
    volumes: tuple[str, ...]
    history: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """One image as the image checks see it."""

    name: str
    tag: str | None
    config: ImageConfigFacts | None
    setuid: tuple[str, ...]
    setgid: tuple[str, ...]
    credential_files: tuple[str, ...]
    unnecessary_files: tuple[str, ...]
    passwd: str | None
    shadow: str | None
    group: str | None


def _parse_config(raw: bytes, where: str) -> ImageConfigFacts:
    try:
        parsed = _ImageConfig.model_validate_json(raw)
    except ValidationError as e:
        raise InputUnavailable(f"{where}: unreadable image configuration: {e.errors()[0]['msg']}") from e
    run = parsed.config or _RunConfig()
    test = run.healthcheck.test if run.healthcheck else None
    return ImageConfigFacts(
        user=run.user or "",
        env=tuple(run.env or ()),
        healthcheck=bool(test) and test is not None and test[0] != "NONE",
        volumes=tuple(run.volumes or ()),
        history=tuple(h.created_by for h in parsed.history or ()),
    )


def _oci_config(name: str, rest: str) -> tuple[ImageConfigFacts, str | None]:
    path, _, tag = rest.partition(":")
    source = OciLayoutSource.open(name, rest)
    try:
        descriptor = source.manifest.config
    finally:
        source.close()
    container = container_for(Path(path))
    try:
        raw = read_small(container, f"blobs/{descriptor.digest.algorithm}/{descriptor.digest.hex}")
    finally:
        container.close()
    if Digest.of(raw, descriptor.digest.algorithm) != descriptor.digest:
        raise InputUnavailable(f"{name}: image configuration does not match its digest")
    return _parse_config(raw, name), tag.rpartition(":")[2] or None


def _archive_config(name: str, rest: str) -> tuple[ImageConfigFacts, str | None]:
    path, _, ref = rest.partition(":")
    container = TarContainer(Path(path))
    try:
        images = _ARCHIVE_MANIFEST.validate_json(read_small(container, "manifest.json"))
        chosen = images[0] if len(images) == 1 or not ref else None
        if ref.startswith("@") and ref[1:].isdigit() and int(ref[1:]) < len(images):
            chosen = images[int(ref[1:])]
        elif ref:
            chosen = next((i for i in images if any(t.endswith(ref) for t in i.repo_tags or ())), chosen)
        if chosen is None:
            raise InputUnavailable(f"{name}: no image {ref!r} in the archive")
        raw = read_small(container, chosen.config)
    except ValidationError as e:
        raise InputUnavailable(f"{name}: unreadable manifest.json") from e
    finally:
        container.close()
    tags = chosen.repo_tags or []
    tag = tags[0].rpartition(":")[2] if tags and ":" in tags[0].rpartition("/")[2] else None
    return _parse_config(raw, name), tag


def load_image(name: str) -> ImageFacts:
    """Read the image ``name``; ``InputUnavailable`` (with the scanner's reason) when it cannot be read."""
    transport, _, rest = name.partition(":")
    try:
        if transport in ("oci", "oci-archive"):
            config, tag = _oci_config(name, rest)
        elif transport == "docker-archive":
            config, tag = _archive_config(name, rest)
        else:
            config, tag = None, None
        source = open_source(name)
        if isinstance(source, DockerRegistrySource):  # docker://: the source verified the config it fetched
            config = _parse_config(source.config_blob, name)
            tag = DockerReference.parse(name.removeprefix("docker://")).tag
        view = ImageView()
        try:
            for ref in source.layers():
                layer = source.read_layer(ref, wants=CAPTURED.__contains__, limits=LayerLimits())
                view.apply(layer, layer.digest)
        finally:
            source.close()
    except ScanError as e:
        raise InputUnavailable(f"{name}: {e.message}") from e
    setuid, setgid, credentials, unnecessary = [], [], [], []
    for f in view.files():
        entry = f.entry
        path = "/" + entry.path
        if entry.type in (EntryType.FILE, EntryType.HARDLINK):
            if entry.is_setuid:
                setuid.append(path)
            if entry.is_setgid:
                setgid.append(path)
            base = posixpath.basename(entry.path)
            if base in CREDENTIAL_FILES or entry.path.endswith(CREDENTIAL_PATHS):
                credentials.append(path)
        if posixpath.basename(entry.path) in UNNECESSARY_NAMES:
            unnecessary.append(path)

    def text(path: str) -> str | None:
        content = view.read(path)
        return content.decode("utf-8", "replace") if content is not None else None

    return ImageFacts(
        name=name,
        tag=tag,
        config=config,
        setuid=tuple(sorted(setuid)),
        setgid=tuple(sorted(setgid)),
        credential_files=tuple(sorted(credentials)),
        unnecessary_files=tuple(sorted(unnecessary)),
        passwd=text("etc/passwd"),
        shadow=text("etc/shadow"),
        group=text("etc/group"),
    )
