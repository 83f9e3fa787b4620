"""Image sources by transport name, as skopeo names them: ``SOURCES`` maps a transport to its opener.

``open_source("oci:/path/layout:tag")`` splits the name at the first ``:`` and calls the transport's
opener with the rest and the ``SourceOptions`` (credentials, TLS, platform: each opener uses what applies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from trustyard.scan.errors import SourceError
from trustyard.scan.sources.base import DEFAULT_PLATFORM, ImageSource, LayerRef, PlatformSpec, SourceOptions
from trustyard.scan.sources.credentials import Credentials
from trustyard.scan.sources.distribution import RegistryAuthError
from trustyard.scan.sources.docker import DockerReference, DockerRegistrySource
from trustyard.scan.sources.docker_archive import DockerArchiveSource
from trustyard.scan.sources.oci import OciLayoutSource
from trustyard.scan.sources.rootfs import RootfsSource, read_directory

Opener = Callable[[str, str, SourceOptions], ImageSource]

SOURCES: Final[Mapping[str, Opener]] = MappingProxyType(
    {
        "oci": OciLayoutSource.open,
        "oci-archive": OciLayoutSource.open,
        "docker-archive": DockerArchiveSource.open,
        "rootfs": RootfsSource.open,
        "docker": DockerRegistrySource.open,
    }
)


def open_source(name: str, options: SourceOptions | None = None) -> ImageSource:
    """The source ``name`` designates (``TRANSPORT:DETAILS``); ``SourceError`` for an unknown transport."""
    transport, sep, rest = name.partition(":")
    opener = SOURCES.get(transport) if sep else None
    if opener is None:
        known = ", ".join(f"{t}://" if t == "docker" else f"{t}:" for t in SOURCES)
        raise SourceError(f"{name!r}: unknown image source; use one of {known}")
    return opener(name, rest, options or SourceOptions())


__all__ = [
    "DEFAULT_PLATFORM",
    "SOURCES",
    "Credentials",
    "DockerArchiveSource",
    "DockerReference",
    "DockerRegistrySource",
    "ImageSource",
    "LayerRef",
    "OciLayoutSource",
    "PlatformSpec",
    "RegistryAuthError",
    "RootfsSource",
    "SourceOptions",
    "open_source",
    "read_directory",
]
