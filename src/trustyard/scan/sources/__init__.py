"""Image sources by transport name, as skopeo names them: ``SOURCES`` maps a transport to its opener.

``open_source("oci:/path/layout:tag")`` splits the name at the first ``:`` and calls the transport's
opener with the rest. ``docker://`` (a registry) is not implemented yet; it will be one more entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from trustyard.scan.errors import SourceError
from trustyard.scan.sources.base import ImageSource, LayerRef
from trustyard.scan.sources.docker_archive import DockerArchiveSource
from trustyard.scan.sources.oci import OciLayoutSource
from trustyard.scan.sources.rootfs import RootfsSource, read_directory

Opener = Callable[[str, str], ImageSource]

SOURCES: Final[Mapping[str, Opener]] = MappingProxyType(
    {
        "oci": OciLayoutSource.open,
        "oci-archive": OciLayoutSource.open,
        "docker-archive": DockerArchiveSource.open,
        "rootfs": RootfsSource.open,
    }
)


def open_source(name: str) -> ImageSource:
    """The source ``name`` designates (``TRANSPORT:DETAILS``); ``SourceError`` for an unknown transport."""
    transport, sep, rest = name.partition(":")
    opener = SOURCES.get(transport) if sep else None
    if opener is None:
        known = ", ".join(f"{t}:" for t in SOURCES)
        raise SourceError(f"{name!r}: unknown image source; use one of {known}")
    return opener(name, rest)


__all__ = [
    "SOURCES",
    "DockerArchiveSource",
    "ImageSource",
    "LayerRef",
    "OciLayoutSource",
    "RootfsSource",
    "open_source",
    "read_directory",
]
