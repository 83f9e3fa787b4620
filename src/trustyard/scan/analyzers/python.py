"""Installed Python distributions: ``NAME-VERSION.dist-info/`` and ``NAME-VERSION[-pyX.Y].egg-info`` (dir or file)."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Final

from packageurl import PackageURL

from trustyard.scan.model import Component, ComponentType, PackageFile
from trustyard.scan.parsers.python import parse_installed_files, parse_metadata, parse_record

_DIST_INFO_FILES: Final = ("METADATA", "RECORD")
_EGG_INFO_FILES: Final = ("PKG-INFO", "installed-files.txt")


class PythonAnalyzer:
    """One component per metadata file, wherever it lies (site-packages, dist-packages, an app folder)."""

    name: Final = "python"
    version: Final = 1

    def wants(self, path: str) -> bool:
        """METADATA/RECORD in a ``.dist-info``; PKG-INFO/installed-files.txt in, or a file named, ``.egg-info``."""
        directory, _, base = path.rpartition("/")
        if directory.endswith(".dist-info"):
            return base in _DIST_INFO_FILES
        if directory.endswith(".egg-info"):
            return base in _EGG_INFO_FILES
        return base.endswith(".egg-info")

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """Every distribution whose metadata file is present, sorted by path."""
        components = []
        for path in sorted(files):
            directory, _, base = path.rpartition("/")
            if directory.endswith(".dist-info") and base == "METADATA":
                owned = self._record(files, directory)
            elif directory.endswith(".egg-info") and base == "PKG-INFO":
                listing = files.get(f"{directory}/installed-files.txt")
                owned = tuple(PackageFile(p) for p in parse_installed_files(listing, directory)) if listing else ()
            elif base.endswith(".egg-info") and not directory.endswith(".egg-info"):
                owned = ()
            else:
                continue
            dist = parse_metadata(files[path], path)
            purl = PackageURL(type="pypi", name=dist.name, version=dist.version)
            components.append(
                Component(
                    type=ComponentType.PYPI,
                    name=dist.name,
                    version=dist.version,
                    purl=purl.to_string(),
                    licenses=dist.licenses,
                    evidence=path,
                    files=owned,
                    found_by=self.name,
                )
            )
        return components

    def _record(self, files: Mapping[str, bytes], dist_info: str) -> tuple[PackageFile, ...]:
        record = files.get(f"{dist_info}/RECORD")
        if record is None:
            return ()
        site = posixpath.dirname(dist_info)
        return tuple(PackageFile(p, d) for p, d in parse_record(record, site, f"{dist_info}/RECORD"))
