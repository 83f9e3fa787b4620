"""Python package versions (PEP 440), ordered by ``packaging.version``: the reference implementation pip uses.

We write nothing of the ordering ourselves; this module only maps ``packaging``'s ``InvalidVersion`` to our
``VersionError`` and gives the parsed version the same shape as every other scheme. Versions that are not
PEP 440 (legacy ``LooseVersion`` strings some old releases carry) are refused, as pip refuses them.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from trustyard.scan.versions.base import VersionError, check_text

SCHEME = "pep440"


def parse(version: str) -> Version:
    """Parse a PEP 440 version (normalising as PEP 440 says: ``1.0RC1`` is ``1.0rc1``)."""
    check_text(SCHEME, version)
    try:
        return Version(version)
    except InvalidVersion as e:
        raise VersionError(SCHEME, version, "not a PEP 440 version") from e


def compare(a: str, b: str) -> int:
    """PEP 440 ordering as -1, 0 or 1."""
    pa, pb = parse(a), parse(b)
    return -1 if pa < pb else (1 if pa > pb else 0)
