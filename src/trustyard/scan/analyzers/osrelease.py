"""The operating system, from ``etc/os-release`` or ``usr/lib/os-release`` (distroless images included)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from trustyard.scan.analyzers.base import OS_RELEASE_PATHS, os_release
from trustyard.scan.model import Component, ComponentType


class OsReleaseAnalyzer:
    """Reports the distribution as one ``operating-system`` component (name = ``ID``, version = ``VERSION_ID``)."""

    name: Final = "os-release"
    version: Final = 1

    def wants(self, path: str) -> bool:
        """The two os-release locations."""
        return path in OS_RELEASE_PATHS

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """One component, or none when there is no os-release."""
        release = os_release(files)
        if release is None:
            return []
        evidence = next(p for p in OS_RELEASE_PATHS if p in files)
        extra = tuple(
            (k, v) for k, v in (("codename", release.version_codename), ("pretty_name", release.pretty_name)) if v
        )
        return [
            Component(
                type=ComponentType.OS,
                name=release.id,
                version=release.version_id or "",
                evidence=evidence,
                found_by=self.name,
                extra=extra,
            )
        ]
