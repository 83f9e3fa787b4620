"""RPM packages from rpm's database, whichever backend wrote it: SQLite ``rpmdb.sqlite`` (rpm 4.16+ default),
ndb ``Packages.db`` (SUSE) or Berkeley DB ``Packages`` (before rpm 4.16), under ``var/lib/rpm`` or
``usr/lib/sysimage/rpm``. The format is told by the file's magic, not its name; each holds the same header
blobs, parsed by one header parser. When an image holds several (a converted database next to its old
file), the first of ``DATABASES`` wins, newest format first, as rpm opens only its configured backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from trustyard.scan.analyzers.base import OS_RELEASE_PATHS, distro_qualifier, os_purl, os_release
from trustyard.scan.cpe import os_package_cpe
from trustyard.scan.model import Component, ComponentType, PackageFile
from trustyard.scan.parsers.rpm import RpmPackage
from trustyard.scan.parsers.rpmdb import parse_rpmdb

DATABASES: Final = tuple(
    f"{folder}/{name}"
    for name in ("rpmdb.sqlite", "Packages.db", "Packages")
    for folder in ("var/lib/rpm", "usr/lib/sysimage/rpm")
)


def _source(source_rpm: str | None) -> tuple[str | None, str | None]:
    """``bash-5.1.8-1.cm2.src.rpm`` -> (``bash``, ``5.1.8-1.cm2``): name-version-release split from the right."""
    if not source_rpm or not source_rpm.endswith(".rpm"):
        return None, None
    stem = source_rpm.removesuffix(".rpm").rpartition(".")[0]  # drop the arch (src, nosrc)
    name_version, _, release = stem.rpartition("-")
    name, _, version = name_version.rpartition("-")
    if not name or not version or not release:
        return None, None
    return name, f"{version}-{release}"


class RpmAnalyzer:
    """Installed rpm packages; the version is rpm's ``[epoch:]version-release``."""

    name: Final = "rpm"
    version: Final = 3

    def wants(self, path: str) -> bool:
        """The package databases and os-release (for the purl)."""
        return path in DATABASES or path in OS_RELEASE_PATHS

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """One component per header in the first database found."""
        path = next((p for p in DATABASES if p in files), None)
        if path is None:
            return []
        release = os_release(files)
        return [
            self._component(p, path, release.id if release else None, distro_qualifier(release))
            for p in parse_rpmdb(files[path])
        ]

    def _component(self, package: RpmPackage, evidence: str, namespace: str | None, distro: str | None) -> Component:
        epoch = str(package.epoch) if package.epoch is not None else None
        version = f"{package.version}-{package.release}"
        purl = os_purl(
            "rpm",
            namespace,
            package.name,
            version,
            arch=package.arch,
            epoch=epoch,
            distro=distro,
            upstream=package.source_rpm,
        )
        source_name, source_version = _source(package.source_rpm)
        extra = tuple((k, v) for k, v in (("source_rpm", package.source_rpm), ("vendor", package.vendor)) if v)
        return Component(
            type=ComponentType.RPM,
            name=package.name,
            version=package.evr,
            purl=purl,
            cpe=os_package_cpe(source_name, source_version, "rpm"),
            arch=package.arch,
            source_name=source_name,
            source_version=source_version,
            licenses=(package.license,) if package.license else (),
            evidence=evidence,
            files=tuple(PackageFile(f.path, f.digest) for f in package.files),
            found_by=self.name,
            extra=extra,
        )
