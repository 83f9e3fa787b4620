"""The analyzer seam: one ``typing.Protocol`` every ecosystem implements, and its error.

An analyzer says which files it needs (``wants``: a predicate over image paths, evaluated while layers
stream, so it must be cheap), a ``name`` and a ``version`` (part of any cache key: bump it when the output
for the same files changes), and turns the contents of the files it wanted, as they are in the image at that
point, into components. It does no I/O: parsing is done by the pure parsers in ``scan/parsers``. The
indexer sets the layer that introduced each component and calls analyzers again only when a layer changes
one of their files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Protocol, runtime_checkable

from packageurl import PackageURL

from trustyard.scan.model import Component
from trustyard.scan.parsers.osrelease import OsRelease, parse_os_release

OS_RELEASE_PATHS: Final = ("etc/os-release", "usr/lib/os-release")


class Analyzer(Protocol):
    """One ecosystem's analyzer."""

    @property
    def name(self) -> str:
        """A unique, stable name (``dpkg``, ``apk``, ...)."""
        ...

    @property
    def version(self) -> int:
        """Bumped whenever the components produced for the same files change."""
        ...

    def wants(self, path: str) -> bool:
        """Whether the file at ``path`` (relative to the image root) is one this analyzer reads."""
        ...

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """The components in ``files`` (every wanted file present in the image, path -> content).

        Raises a ``ScanError`` subclass for a database it cannot read.
        """
        ...


@runtime_checkable
class Extractor(Analyzer, Protocol):
    """An analyzer of large files (binaries, archives) that keeps only a small summary of each.

    ``extract`` runs while the layer streams, one file at a time, and returns the bytes to keep (the build
    info of a Go binary, the Maven coordinates inside a jar) or ``None`` for a file that is not its kind;
    ``analyze`` then receives those summaries instead of the files. When another analyzer also wants a path,
    the whole file is kept and the indexer calls ``extract`` on it before ``analyze``: either way ``analyze``
    sees only summaries.
    """

    def extract(self, path: str, data: bytes) -> bytes | None:
        """The summary of the file at ``path``, or ``None``; raises a ``ScanError`` subclass for a corrupt one."""
        ...


def os_release(files: Mapping[str, bytes]) -> OsRelease | None:
    """The image's os-release, ``etc/`` before ``usr/lib/`` as os-release(5) says, if either was given."""
    for path in OS_RELEASE_PATHS:
        data = files.get(path)
        if data is not None:
            return parse_os_release(data)
    return None


def distro_qualifier(release: OsRelease | None) -> str | None:
    """The purl ``distro`` qualifier for OS packages: ``debian-12``, ``alpine-3.20.3``."""
    if release is None:
        return None
    return f"{release.id}-{release.version_id}" if release.version_id else release.id


def os_purl(kind: str, namespace: str | None, name: str, version: str, **qualifiers: str | None) -> str:
    """The purl of an OS package; qualifiers that are ``None`` or empty are left out (purl spec, "qualifiers")."""
    present = {k: v for k, v in qualifiers.items() if v}
    return PackageURL(type=kind, namespace=namespace, name=name, version=version, qualifiers=present).to_string()
