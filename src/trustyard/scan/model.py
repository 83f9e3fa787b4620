"""What the indexer reports: components (packages of every ecosystem, the operating system) and their files.

Frozen dataclasses, built by analyzers from parsed package databases; the wire formats (CycloneDX, SPDX,
JSON) are produced from these at the edge, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from trustyard.oci.digest import Digest


class ComponentType(StrEnum):
    """The ecosystem a component belongs to; the values are purl types where one exists."""

    OS = "operating-system"
    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYPI = "pypi"
    NPM = "npm"
    GOLANG = "golang"
    MAVEN = "maven"
    CARGO = "cargo"
    GENERIC = "generic"
    """Software found by its bytes (a binary signature) rather than a package manager's record."""


class PackageFile(NamedTuple):
    """A file a package database says belongs to a package, with the digest it records (``md5:...``).

    A named tuple (immutable like the dataclasses here) because an OS image lists tens of thousands of
    them, and a frozen dataclass costs five times as much to build.
    """

    path: str
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Component:
    """One identified piece of software.

    ``version`` is the ecosystem's full version string (dpkg ``[epoch:]upstream-revision``, rpm
    ``[epoch:]version-release``), the one its version rules compare. ``evidence`` is the file it was read
    from; ``layer`` the layer that introduced it (``None`` for a root file system read from a directory).
    ``source_name``/``source_version`` are the source package of an OS package, which advisories name.
    ``cpe`` is a CPE 2.3 name where one can be derived (``scan/cpe.py`` says how, and how far to trust it).
    """

    type: ComponentType
    name: str
    version: str
    purl: str | None = None
    cpe: str | None = None
    arch: str | None = None
    source_name: str | None = None
    source_version: str | None = None
    licenses: tuple[str, ...] = ()
    evidence: str = ""
    files: tuple[PackageFile, ...] = ()
    layer: Digest | None = None
    found_by: str = ""
    extra: tuple[tuple[str, str], ...] = field(default=())

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two reports of a component the same component: ecosystem, name, version, arch."""
        return (self.type.value, self.name, self.version, self.arch or "")

    @property
    def paths(self) -> tuple[str, ...]:
        """The paths that hold the component: its evidence file and the files its database lists."""
        listed = tuple(f.path for f in self.files)
        return (self.evidence, *listed) if self.evidence else listed
