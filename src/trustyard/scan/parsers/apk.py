"""apk's installed database, ``lib/apk/db/installed``: one stanza of ``X:value`` lines per package.

Fields used (apk-tools, "Alpine package database format"): ``P`` name, ``V`` version, ``A`` arch, ``o``
origin (the source package), ``L`` license, ``C`` package checksum, ``F`` a directory, ``R`` a file in
the last ``F`` directory, ``Z`` the checksum of the last ``R`` file (``Q1`` + base64 SHA-1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trustyard.scan.errors import PackageDatabaseError


class ApkError(PackageDatabaseError):
    """An installed database that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class ApkFile:
    """A file of a package and its recorded checksum."""

    path: str
    checksum: str | None = None


@dataclass(frozen=True, slots=True)
class ApkPackage:
    """One installed package."""

    name: str
    version: str
    architecture: str | None = None
    origin: str | None = None
    license: str | None = None
    checksum: str | None = None
    files: tuple[ApkFile, ...] = field(default=())


class _Stanza:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.files: list[ApkFile] = []
        self.directory = ""

    def add(self, key: str, value: str, where: str) -> None:
        if key == "F":
            self.directory = value.strip("/")
        elif key == "R":
            self.files.append(ApkFile(f"{self.directory}/{value}" if self.directory else value))
        elif key == "Z":
            if not self.files:
                raise ApkError(f"{where}: a Z: line before any R: line")
            self.files[-1] = ApkFile(self.files[-1].path, value)
        else:
            self.values.setdefault(key, value)

    def package(self, where: str) -> ApkPackage:
        name, version = self.values.get("P"), self.values.get("V")
        if not name or not version:
            raise ApkError(f"{where}: a package stanza without P: or V:")
        get = self.values.get
        return ApkPackage(name, version, get("A"), get("o"), get("L"), get("C"), tuple(self.files))


def parse_installed(data: bytes, where: str = "lib/apk/db/installed") -> list[ApkPackage]:
    """Every package of the database, in file order."""
    packages: list[ApkPackage] = []
    stanza: _Stanza | None = None
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line:
            if stanza is not None:
                packages.append(stanza.package(where))
            stanza = None
            continue
        if len(line) < 2 or line[1] != ":":
            raise ApkError(f"{where}:{number}: not an 'X:value' line: {line[:80]!r}")
        stanza = stanza or _Stanza()
        stanza.add(line[0], line[2:], f"{where}:{number}")
    if stanza is not None:
        packages.append(stanza.package(where))
    return packages
