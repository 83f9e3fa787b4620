"""Debian packages from dpkg's database: ``var/lib/dpkg/status``, distroless ``status.d/``, file lists, md5sums."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Final

from trustyard.scan.analyzers.base import OS_RELEASE_PATHS, distro_qualifier, os_purl, os_release
from trustyard.scan.cpe import os_package_cpe
from trustyard.scan.model import Component, ComponentType, PackageFile
from trustyard.scan.parsers.dpkg import DpkgPackage, parse_list, parse_md5sums, parse_status

STATUS: Final = "var/lib/dpkg/status"
STATUS_D: Final = "var/lib/dpkg/status.d/"
INFO: Final = "var/lib/dpkg/info/"


class DpkgAnalyzer:
    """Installed ``.deb`` packages with their source package and the files dpkg says they own."""

    name: Final = "dpkg"
    version: Final = 2

    def wants(self, path: str) -> bool:
        """The status file(s), each package's ``.list`` and ``.md5sums``, and os-release (for the purl)."""
        if path == STATUS or path in OS_RELEASE_PATHS:
            return True
        if path.startswith(STATUS_D):
            return "/" not in path[len(STATUS_D) :]
        return path.startswith(INFO) and path.endswith((".list", ".md5sums")) and "/" not in path[len(INFO) :]

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """One component per installed package."""
        release = os_release(files)
        namespace = release.id if release is not None else "debian"
        distro = distro_qualifier(release)
        found: list[tuple[DpkgPackage, str]] = []
        if STATUS in files:
            found += [(p, STATUS) for p in parse_status(files[STATUS], STATUS)]
        for path in sorted(p for p in files if p.startswith(STATUS_D) and not p.endswith(".md5sums")):
            found += [(p, path) for p in parse_status(files[path], path)]
        return [self._component(p, where, files, namespace, distro) for p, where in found]

    def _component(
        self, package: DpkgPackage, evidence: str, files: Mapping[str, bytes], namespace: str, distro: str | None
    ) -> Component:
        purl = os_purl("deb", namespace, package.name, package.version, arch=package.architecture, distro=distro)
        return Component(
            type=ComponentType.DEB,
            name=package.name,
            version=package.version,
            purl=purl,
            cpe=os_package_cpe(package.source_name, package.source_version, "deb"),
            arch=package.architecture,
            source_name=package.source_name,
            source_version=package.source_version,
            evidence=evidence,
            files=_owned_files(package, evidence, files),
            found_by=self.name,
        )


def _owned_files(package: DpkgPackage, evidence: str, files: Mapping[str, bytes]) -> tuple[PackageFile, ...]:
    """The package's ``.list`` paths with the md5 of each from ``.md5sums`` (either file may be missing).

    dpkg names the files ``NAME.list`` or, for a Multi-Arch: same package, ``NAME:ARCH.list``; distroless
    keeps ``status.d/NAME.md5sums`` beside the paragraph.
    """
    names = [f"{package.name}:{package.architecture}", package.name] if package.architecture else [package.name]
    listed: list[str] = []
    sums: dict[str, str] = {}
    for name in names:
        if not listed and f"{INFO}{name}.list" in files:
            listed = parse_list(files[f"{INFO}{name}.list"])
        if not sums and f"{INFO}{name}.md5sums" in files:
            sums = parse_md5sums(files[f"{INFO}{name}.md5sums"], f"{INFO}{name}.md5sums")
    if not sums and evidence.startswith(STATUS_D):
        beside = posixpath.join(posixpath.dirname(evidence), f"{package.name}.md5sums")
        if beside in files:
            sums = parse_md5sums(files[beside], beside)
    paths = listed or sorted(sums)
    return tuple(PackageFile(p, f"md5:{sums[p]}" if p in sums else None) for p in paths)
