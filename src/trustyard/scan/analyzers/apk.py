"""Alpine packages from ``lib/apk/db/installed``: origin (the source package), license, file checksums."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Final

from trustyard.scan.analyzers.base import OS_RELEASE_PATHS, distro_qualifier, os_purl, os_release
from trustyard.scan.cpe import os_package_cpe
from trustyard.scan.model import Component, ComponentType, PackageFile
from trustyard.scan.parsers.apk import parse_installed

INSTALLED: Final = "lib/apk/db/installed"


class ApkAnalyzer:
    """Installed apk packages."""

    name: Final = "apk"
    version: Final = 2

    def wants(self, path: str) -> bool:
        """The installed database and os-release (for the purl)."""
        return path == INSTALLED or path in OS_RELEASE_PATHS

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """One component per package stanza."""
        data = files.get(INSTALLED)
        if data is None:
            return []
        release = os_release(files)
        namespace = release.id if release is not None else "alpine"
        distro = distro_qualifier(release)
        components = []
        for package in parse_installed(data, INSTALLED):
            purl = os_purl("apk", namespace, package.name, package.version, arch=package.architecture, distro=distro)
            extra = (("checksum", package.checksum),) if package.checksum else ()
            components.append(
                Component(
                    type=ComponentType.APK,
                    name=package.name,
                    version=package.version,
                    purl=purl,
                    cpe=os_package_cpe(package.origin or package.name, package.version, "apk"),
                    arch=package.architecture,
                    source_name=package.origin or package.name,
                    source_version=package.version,
                    licenses=(package.license,) if package.license else (),
                    evidence=INSTALLED,
                    files=tuple(PackageFile(f.path, _sha1(f.checksum)) for f in package.files),
                    found_by=self.name,
                    extra=extra,
                )
            )
        return components


def _sha1(checksum: str | None) -> str | None:
    """apk's ``Q1<base64>`` file checksum as ``sha1:<hex>``; ``None`` for none or another kind."""
    if not checksum or not checksum.startswith("Q1"):
        return None
    try:
        raw = base64.b64decode(checksum[2:], validate=True)
    except (binascii.Error, ValueError):
        return None
    return f"sha1:{raw.hex()}" if len(raw) == 20 else None
