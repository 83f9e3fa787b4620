"""Java archives: Maven packages from pom.properties (else MANIFEST.MF, else the file name), nested jars included.

An ``Extractor``: the walker keeps, of each archive, only the JSON of ``parse_archive`` (coordinates,
manifest, SHA-1 of every archive level), so a 200 MB war costs its own pass and a few kilobytes after.

Naming: ``group:artifact`` (as Maven and the GitHub advisory database write it), purl
``pkg:maven/group/artifact@version``. An archive's SHA-1 goes on the package whose artifactId its file name
starts with (a fat jar carries many pom.properties, only one of them its own), or on its only package.
Without pom.properties, ``Implementation-Title``/``Bundle-SymbolicName`` and their versions from the
manifest name the package, with ``Implementation-Vendor-Id`` as the group; failing that, ``name-1.2.jar``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, Final

from packageurl import PackageURL

from trustyard.scan.errors import PackageDatabaseError
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.parsers.java import ARCHIVE_SUFFIXES, parse_archive

_FILE_NAME: Final = re.compile(r"(?P<name>.+?)-(?P<version>\d[^/]*?)\.(?:jar|war|ear|jpi|hpi)$")


def _coordinates(archive: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    """(group, artifact, version) of an archive's packages, from the best source it has."""
    poms = [(p["group_id"], p["artifact_id"], p["version"]) for p in archive["poms"]]
    if poms:
        return poms
    manifest = dict(archive["manifest"])
    name = manifest.get("Implementation-Title") or manifest.get("Bundle-SymbolicName", "").split(";")[0]
    version = manifest.get("Implementation-Version") or manifest.get("Bundle-Version")
    if name and version:
        return [(manifest.get("Implementation-Vendor-Id"), name, version)]
    match = _FILE_NAME.search(archive["path"].rpartition("/")[2])
    return [(None, match["name"], match["version"])] if match else []


class JavaArchiveAnalyzer:
    """Maven packages in jar, war and ear files."""

    name: Final = "java"
    version: Final = 1

    def wants(self, path: str) -> bool:
        """Java archives by suffix."""
        return path.lower().endswith(ARCHIVE_SUFFIXES)

    def extract(self, path: str, data: bytes) -> bytes | None:
        """The metadata of the archive and of every archive nested in it, as JSON."""
        return json.dumps([asdict(a) for a in parse_archive(data, path)]).encode()

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """One component per Maven package found, evidence = the (nested) archive path."""
        components: list[Component] = []
        for path in sorted(files):
            try:
                archives: Any = json.loads(files[path])
                for archive in archives:
                    components += self._archive(archive)
            except (ValueError, KeyError, TypeError) as e:
                raise PackageDatabaseError(f"{path}: unreadable Java archive summary: {e}") from e
        return components

    def _archive(self, archive: dict[str, Any]) -> list[Component]:
        coordinates = _coordinates(archive)
        base = archive["path"].rpartition("/")[2]
        own = next((c for c in coordinates if base.startswith(c[1])), coordinates[0] if len(coordinates) == 1 else None)
        found = []
        for group, artifact, version in coordinates:
            extra = (("sha1", archive["sha1"]),) if (group, artifact, version) == own else ()
            found.append(
                Component(
                    type=ComponentType.MAVEN,
                    name=f"{group}:{artifact}" if group else artifact,
                    version=version,
                    purl=PackageURL(type="maven", namespace=group, name=artifact, version=version).to_string(),
                    evidence=archive["path"],
                    found_by=self.name,
                    extra=extra,
                )
            )
        return found
