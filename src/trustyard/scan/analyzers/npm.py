"""npm packages: installed ``node_modules/**/package.json``, and lock files of projects with nothing installed.

An image holds what was installed, so the installed ``package.json`` files are the inventory; a lock file
also lists what was not installed (optional packages for other platforms: esbuild's lock names twenty
``@esbuild/*`` binaries of which one is present). A project's lock file is therefore read only when no
package is installed under that project's ``node_modules/`` (a image that ships sources and a lock file
but installs at start-up), as Syft and Trivy do for images.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Final

from packageurl import PackageURL

from trustyard.scan.model import Component, ComponentType
from trustyard.scan.parsers.npm import (
    NpmPackage,
    parse_package_json,
    parse_package_lock,
    parse_pnpm_lock,
    parse_yarn_lock,
)

_LOCKS: Final = {
    "package-lock.json": parse_package_lock,
    "npm-shrinkwrap.json": parse_package_lock,
    "yarn.lock": parse_yarn_lock,
    "pnpm-lock.yaml": parse_pnpm_lock,
}


_NAMES: Final = ("package.json", *_LOCKS)


def _installed(path: str) -> bool:
    """``.../node_modules/NAME/package.json`` or ``.../node_modules/@SCOPE/NAME/package.json``."""
    parts = path.split("/")
    if len(parts) < 3 or parts[-1] != "package.json":
        return False
    if parts[-3] == "node_modules":
        return not parts[-2].startswith(".")
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def purl(name: str, version: str) -> str:
    """``pkg:npm/%40scope/name@version`` (the purl spec puts the scope in the namespace)."""
    scope, _, bare = name.rpartition("/")
    return PackageURL(type="npm", namespace=scope or None, name=bare, version=version).to_string()


class NpmAnalyzer:
    """Installed npm packages, and the packages of lock files where none are installed."""

    name: Final = "npm"
    version: Final = 1

    def wants(self, path: str) -> bool:
        """Installed package.json files and lock files outside node_modules."""
        if not path.endswith(_NAMES):  # asked of every path: the cheap test first
            return False
        if _installed(path):
            return True
        return path.rpartition("/")[2] in _LOCKS and "node_modules/" not in path

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """One component per installed package, then per lock entry of projects with nothing installed."""
        components: list[Component] = []
        installed_roots: set[str] = set()
        for path in sorted(p for p in files if _installed(p)):
            package = parse_package_json(files[path], path)
            installed_roots.add(path.partition("node_modules/")[0])
            if package is not None:
                components.append(self._component(package, path))
        for path in sorted(p for p in files if not _installed(p)):
            directory = posixpath.dirname(path)
            if (f"{directory}/" if directory else "") in installed_roots:
                continue
            parse = _LOCKS[path.rpartition("/")[2]]
            components += [self._component(p, path) for p in parse(files[path], path)]
        return components

    def _component(self, package: NpmPackage, evidence: str) -> Component:
        return Component(
            type=ComponentType.NPM,
            name=package.name,
            version=package.version,
            purl=purl(package.name, package.version),
            licenses=(package.license,) if package.license else (),
            evidence=evidence,
            found_by=self.name,
            extra=(("dev", "true"),) if package.dev else (),
        )
