"""Java archives (jar, war, ear, and the jars nested in them): Maven coordinates, manifest, SHA-1 of each.

Read from the archive's bytes with ``zipfile`` (never extracted): every
``META-INF/maven/<group>/<artifact>/pom.properties`` (``groupId``, ``artifactId``, ``version``; Java
properties syntax, ``=`` or ``:`` separators, ``#``/``!`` comments), the main section of
``META-INF/MANIFEST.MF`` (``Name: value`` lines, continuation lines starting with one space; JAR File
Specification), and each nested ``*.jar``/``*.war`` entry, recursively up to ``MAX_DEPTH`` and within size
limits (a nested archive is read into memory; a zip bomb must not be). The SHA-1 of each archive is what
Maven Central indexes, so a jar can be identified by it even when its metadata was stripped.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Final

from trustyard.scan.errors import PackageDatabaseError

MAX_DEPTH: Final = 3
MAX_NESTED_SIZE: Final = 128 << 20
MAX_METADATA_SIZE: Final = 1 << 20
ARCHIVE_SUFFIXES: Final = (".jar", ".war", ".ear", ".jpi", ".hpi")
_POM: Final = "pom.properties"
_MANIFEST: Final = "META-INF/MANIFEST.MF"


class JavaArchiveError(PackageDatabaseError):
    """A Java archive that is not a readable zip, or whose metadata is too large."""


@dataclass(frozen=True, slots=True)
class PomProperties:
    """Maven coordinates from one pom.properties."""

    group_id: str
    artifact_id: str
    version: str


@dataclass(frozen=True, slots=True)
class JavaArchive:
    """One archive: its path (``outer.war!/WEB-INF/lib/inner.jar`` when nested), SHA-1 and metadata."""

    path: str
    sha1: str
    poms: tuple[PomProperties, ...]
    manifest: tuple[tuple[str, str], ...]


def parse_properties(data: bytes) -> dict[str, str]:
    """A Java properties file's simple ``key=value`` / ``key: value`` lines."""
    values: dict[str, str] = {}
    for raw in data.decode("latin-1").splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut > 0:
            values[line[:cut].strip()] = line[cut + 1 :].strip()
    return values


def parse_manifest(data: bytes) -> tuple[tuple[str, str], ...]:
    """The main section of a MANIFEST.MF, continuation lines joined."""
    entries: list[list[str]] = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            break  # the main section ends at the first blank line
        if line.startswith(" ") and entries:
            entries[-1][1] += line[1:]
        elif ":" in line:
            key, _, value = line.partition(":")
            entries.append([key.strip(), value.strip()])
    return tuple((k, v) for k, v in entries)


def _small(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> bytes:
    if info.file_size > MAX_METADATA_SIZE:
        raise JavaArchiveError(f"{path}!/{info.filename}: {info.file_size} bytes is too large for metadata")
    return archive.read(info)


def parse_archive(data: bytes, path: str, depth: int = 0) -> list[JavaArchive]:
    """The archive at ``path`` and every archive nested in it, outermost first."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
        poms: list[PomProperties] = []
        manifest: tuple[tuple[str, str], ...] = ()
        nested: list[JavaArchive] = []
        for info in infos:
            name = info.filename
            if name.startswith("META-INF/maven/") and name.endswith("/" + _POM):
                values = parse_properties(_small(archive, info, path))
                if all(values.get(k) for k in ("groupId", "artifactId", "version")):
                    poms.append(PomProperties(values["groupId"], values["artifactId"], values["version"]))
            elif name == _MANIFEST:
                manifest = parse_manifest(_small(archive, info, path))
            elif name.lower().endswith(ARCHIVE_SUFFIXES) and depth < MAX_DEPTH and not info.is_dir():
                if info.file_size > MAX_NESTED_SIZE:
                    raise JavaArchiveError(f"{path}!/{name}: nested archive of {info.file_size} bytes")
                nested += parse_archive(archive.read(info), f"{path}!/{name}", depth + 1)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        OSError,
        NotImplementedError,
        ValueError,  # a corrupt directory: negative offsets, names that are not the UTF-8 they claim (fuzz-found)
        RuntimeError,  # an encrypted member: zipfile wants a password
    ) as e:
        raise JavaArchiveError(f"{path}: not a readable Java archive: {e}") from e
    own = JavaArchive(path, hashlib.sha1(data, usedforsecurity=False).hexdigest(), tuple(poms), manifest)
    return [own, *nested]
