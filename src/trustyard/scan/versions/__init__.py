"""Version rules of every ecosystem, one module per scheme, chosen by ecosystem name.

``scheme_for("Debian:12")`` gives the dpkg rules, ``scheme_for("PyPI")`` PEP 440, and so on; names are OSV's
ecosystem names (the part before ``:``), with our component types (purl types) as aliases. An ecosystem
with no known scheme raises ``VersionError`` rather than guessing: comparing by the wrong rules reports
wrong findings silently.
"""

from __future__ import annotations

from trustyard.scan.versions import apk, dpkg, maven, pep440, rpm, semver
from trustyard.scan.versions.base import OrderedVersion, VersionError, VersionScheme

SCHEMES: dict[str, VersionScheme] = {
    s.name: s
    for s in (
        VersionScheme("dpkg", dpkg.parse),
        VersionScheme("rpm", rpm.parse),
        VersionScheme("apk", apk.parse),
        VersionScheme("pep440", pep440.parse),
        VersionScheme("semver", semver.parse),
        VersionScheme("npm", semver.parse_npm),
        VersionScheme("go", semver.parse_go),
        VersionScheme("maven", maven.parse),
    )
}

_BY_ECOSYSTEM: dict[str, str] = {
    # OSV ecosystem names (https://ossf.github.io/osv-schema/#affectedpackage-field)
    "Debian": "dpkg",
    "Ubuntu": "dpkg",
    "Alpine": "apk",
    "Wolfi": "apk",
    "Chainguard": "apk",
    "Red Hat": "rpm",
    "Rocky Linux": "rpm",
    "AlmaLinux": "rpm",
    "openEuler": "rpm",
    "openSUSE": "rpm",
    "SUSE": "rpm",
    "Mageia": "rpm",
    "Photon OS": "rpm",
    "Azure Linux": "rpm",
    "CBL-Mariner": "rpm",
    "PyPI": "pep440",
    "npm": "npm",
    "crates.io": "semver",
    "Go": "go",
    "Maven": "maven",
    # our component types (purl types)
    "deb": "dpkg",
    "apk": "apk",
    "rpm": "rpm",
    "pypi": "pep440",
    "cargo": "semver",
    "golang": "go",
    "maven": "maven",
}


def scheme_for(ecosystem: str) -> VersionScheme:
    """The version rules of an OSV ecosystem (``Debian:12`` -> dpkg) or component type (``deb``)."""
    base = ecosystem.split(":", 1)[0]
    name = _BY_ECOSYSTEM.get(base)
    if name is None:
        raise VersionError("ecosystem", ecosystem, "no version rules known for this ecosystem")
    return SCHEMES[name]


__all__ = ["SCHEMES", "OrderedVersion", "VersionError", "VersionScheme", "scheme_for"]
