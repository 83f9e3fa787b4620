"""dpkg's database: ``var/lib/dpkg/status`` (or distroless ``status.d/*``), ``info/*.list`` and ``*.md5sums``.

The records are what ``dpkg-query -W`` shows: package, version, architecture, and the source package with
its version (``Source: name (version)``, defaulting to the binary's name and version). A package counts as
installed when its ``Status`` says ``installed`` (``ii``, and ``hi`` for held packages); status.d paragraphs
carry no ``Status`` and are all installed. Reference: dpkg-query(1), deb-control(5), deb-md5sums(5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from trustyard.scan.parsers.deb822 import Deb822Error, Paragraph, iter_paragraphs

_SOURCE: Final = re.compile(r"(\S+)(?:\s+\(([^()\s]+)\))?")
_MD5: Final = re.compile(r"[0-9a-f]{32}")


class DpkgError(Deb822Error):
    """A dpkg status, list or md5sums file that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class DpkgPackage:
    """One installed binary package."""

    name: str
    version: str
    architecture: str | None
    source_name: str
    source_version: str


def _package(paragraph: Paragraph, where: str) -> DpkgPackage | None:
    name = paragraph.get("Package")
    if not name:
        raise DpkgError(f"{where}: a paragraph has no Package field")
    status = paragraph.get("Status")
    if status is not None and status.split()[-1:] != ["installed"]:
        return None
    version = paragraph.get("Version")
    if not version:
        raise DpkgError(f"{where}: installed package {name!r} has no Version")
    source_name, source_version = name, version
    source = paragraph.get("Source")
    if source:
        match = _SOURCE.fullmatch(source.strip())
        if match is None:
            raise DpkgError(f"{where}: {name}: malformed Source field {source[:80]!r}")
        source_name, source_version = match[1], match[2] or version
    return DpkgPackage(name, version, paragraph.get("Architecture") or None, source_name, source_version)


def parse_status(data: bytes, where: str = "status") -> list[DpkgPackage]:
    """The installed packages of a status file (or one status.d file), in file order."""
    try:
        paragraphs = list(iter_paragraphs(data, where))
    except Deb822Error as e:
        raise DpkgError(e.message) from e
    return [p for p in (_package(paragraph, where) for paragraph in paragraphs) if p is not None]


def parse_list(data: bytes) -> list[str]:
    """A ``.list`` file: one absolute path per line, returned relative to the root (``/.`` dropped)."""
    paths = []
    for line in data.decode("utf-8", errors="surrogateescape").splitlines():
        path = line.strip().lstrip("/")
        if path and path != ".":
            paths.append(path)
    return paths


def parse_md5sums(data: bytes, where: str = "md5sums") -> dict[str, str]:
    """A ``.md5sums`` file: ``<md5>  <path>`` lines, paths relative to the root."""
    sums: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", errors="surrogateescape").splitlines(), 1):
        if not line.strip():
            continue
        digest, _, path = line.partition(" ")
        path = path.lstrip(" *").lstrip("/")
        if len(digest) != 32 or not path or not _MD5.fullmatch(digest):
            raise DpkgError(f"{where}:{number}: not an '<md5>  <path>' line")
        sums[path] = digest
    return sums
