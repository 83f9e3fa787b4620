"""Python packages: installed distributions (``*.dist-info``, ``*.egg-info``) and application lock files.

Installed distributions are what an image runs, so they come first; a lock file (poetry.lock, Pipfile.lock,
uv.lock, requirements*.txt with pins) adds the packages it pins that are not installed anywhere in the
image at that version (an application whose dependencies are installed at start-up, or vendored). Lock
files inside site-packages/dist-packages are package data, not an application's, and are ignored. Names
are compared as PEP 503 normalises them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from packageurl import PackageURL

from trustyard.scan.model import Component, ComponentType, PackageFile
from trustyard.scan.parsers.pylock import (
    LockedPackage,
    parse_pipfile_lock,
    parse_poetry_lock,
    parse_requirements,
    parse_uv_lock,
)
from trustyard.scan.parsers.python import parse_installed_files, parse_metadata, parse_record

_DIST_INFO_FILES: Final = ("METADATA", "RECORD")
_EGG_INFO_FILES: Final = ("PKG-INFO", "installed-files.txt")
_LOCKS: Final[dict[str, Callable[[bytes, str], list[LockedPackage]]]] = {
    "poetry.lock": parse_poetry_lock,
    "Pipfile.lock": parse_pipfile_lock,
    "uv.lock": parse_uv_lock,
}
_PACKAGE_DIRS: Final = ("site-packages/", "dist-packages/")
_SEPARATORS: Final = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return _SEPARATORS.sub("-", name).lower()


def _lock_parser(path: str) -> Callable[[bytes, str], list[LockedPackage]] | None:
    """The parser of the lock file at ``path``, if it is one outside installed packages (asked of every path)."""
    base = path.rpartition("/")[2]
    parser = parse_requirements if base.startswith("requirements") and base.endswith(".txt") else _LOCKS.get(base)
    if parser is None or any(d in path for d in _PACKAGE_DIRS):
        return None
    return parser


class PythonAnalyzer:
    """One component per metadata file, wherever it lies (site-packages, dist-packages, an app folder)."""

    name: Final = "python"
    version: Final = 2

    def wants(self, path: str) -> bool:
        """METADATA/RECORD in a ``.dist-info``; PKG-INFO/installed-files.txt in, or a file named, ``.egg-info``;
        lock files outside site-packages."""
        if _lock_parser(path) is not None:
            return True
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
        installed = {(normalize(c.name), c.version) for c in components}
        for path in sorted(files):
            parse = _lock_parser(path)
            if parse is None:
                continue
            for locked in parse(files[path], path):
                if (normalize(locked.name), locked.version) in installed:
                    continue
                installed.add((normalize(locked.name), locked.version))
                components.append(self._locked(locked, path))
        return components

    def _locked(self, locked: LockedPackage, evidence: str) -> Component:
        return Component(
            type=ComponentType.PYPI,
            name=locked.name,
            version=locked.version,
            purl=PackageURL(type="pypi", name=locked.name, version=locked.version).to_string(),
            evidence=evidence,
            found_by=self.name,
            extra=(("dev", "true"),) if locked.dev else (),
        )

    def _record(self, files: Mapping[str, bytes], dist_info: str) -> tuple[PackageFile, ...]:
        record = files.get(f"{dist_info}/RECORD")
        if record is None:
            return ()
        site = posixpath.dirname(dist_info)
        return tuple(PackageFile(p, d) for p, d in parse_record(record, site, f"{dist_info}/RECORD"))
