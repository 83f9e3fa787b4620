"""The analyzers, listed explicitly: adding an ecosystem is one module here and one parser.

``ANALYZERS`` is the default set, in the order they run; ``registry`` checks a set for duplicate names
(two analyzers with one name would share cache entries and reports).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from trustyard.scan.analyzers.apk import ApkAnalyzer
from trustyard.scan.analyzers.base import Analyzer
from trustyard.scan.analyzers.binary import BinaryAnalyzer
from trustyard.scan.analyzers.dpkg import DpkgAnalyzer
from trustyard.scan.analyzers.go import GoBinaryAnalyzer
from trustyard.scan.analyzers.java import JavaArchiveAnalyzer
from trustyard.scan.analyzers.npm import NpmAnalyzer
from trustyard.scan.analyzers.osrelease import OsReleaseAnalyzer
from trustyard.scan.analyzers.python import PythonAnalyzer
from trustyard.scan.analyzers.rpm import RpmAnalyzer
from trustyard.scan.analyzers.rust import RustAnalyzer
from trustyard.scan.errors import ScanError


def registry(analyzers: Iterable[Analyzer]) -> Mapping[str, Analyzer]:
    """Analyzers by name; ``ScanError`` when two share a name."""
    by_name: dict[str, Analyzer] = {}
    for analyzer in analyzers:
        if analyzer.name in by_name:
            raise ScanError(f"two analyzers are named {analyzer.name!r}")
        by_name[analyzer.name] = analyzer
    return MappingProxyType(by_name)


ANALYZERS: Final[tuple[Analyzer, ...]] = (
    OsReleaseAnalyzer(),
    DpkgAnalyzer(),
    ApkAnalyzer(),
    RpmAnalyzer(),
    PythonAnalyzer(),
    GoBinaryAnalyzer(),
    NpmAnalyzer(),
    JavaArchiveAnalyzer(),
    RustAnalyzer(),
    BinaryAnalyzer(),
)
registry(ANALYZERS)

__all__ = [
    "ANALYZERS",
    "Analyzer",
    "ApkAnalyzer",
    "BinaryAnalyzer",
    "DpkgAnalyzer",
    "GoBinaryAnalyzer",
    "JavaArchiveAnalyzer",
    "NpmAnalyzer",
    "OsReleaseAnalyzer",
    "PythonAnalyzer",
    "RpmAnalyzer",
    "RustAnalyzer",
    "registry",
]
