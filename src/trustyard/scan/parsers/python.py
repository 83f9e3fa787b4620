"""Installed Python distributions: ``*.dist-info`` (METADATA, RECORD) and ``*.egg-info`` (PKG-INFO, file lists).

METADATA and PKG-INFO are RFC 822 headers (Core metadata specifications, PyPA); only ``Name`` and ``Version``
are required. Licenses come from ``License-Expression`` (PEP 639), else a short ``License`` field, else the
``License ::`` classifiers. RECORD is CSV (``path,hash,size``; PEP 376 / 627); an egg-info lists its files
in ``installed-files.txt`` relative to the egg-info directory. Names are kept as the metadata writes them
(``PyYAML``, not the ``pyyaml`` of the directory name), as ``importlib.metadata`` reports them.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import posixpath
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Final

from trustyard.scan.errors import PackageDatabaseError
from trustyard.scan.layers import normalize_path

_MAX_LICENSE_FIELD: Final = 120
_LICENSE_CLASSIFIER: Final = "License :: "


class PythonMetadataError(PackageDatabaseError):
    """Distribution metadata that cannot be parsed or lacks a name or version."""


@dataclass(frozen=True, slots=True)
class PythonDistribution:
    """One distribution's core metadata."""

    name: str
    version: str
    licenses: tuple[str, ...]


def _licenses(expression: str | None, license_field: str | None, classifiers: list[str]) -> tuple[str, ...]:
    if expression and expression.strip():
        return (expression.strip(),)
    if license_field and license_field.strip() and license_field.strip().upper() != "UNKNOWN":
        text = license_field.strip()
        if len(text) <= _MAX_LICENSE_FIELD and "\n" not in text:
            return (text,)
    found = [c.rpartition(" :: ")[2].strip() for c in classifiers if c.startswith(_LICENSE_CLASSIFIER)]
    return tuple(dict.fromkeys(f for f in found if f and f != "OSI Approved"))


def parse_metadata(data: bytes, where: str = "METADATA") -> PythonDistribution:
    """A METADATA or PKG-INFO file."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(data)

    def field(name: str) -> str | None:
        value = headers.get(name)
        return str(value) if value is not None else None

    name, version = field("Name"), field("Version")
    if not name or not name.strip() or not version or not version.strip():
        raise PythonMetadataError(f"{where}: no Name or no Version")
    classifiers = [str(c) for c in headers.get_all("Classifier") or ()]
    licenses = _licenses(field("License-Expression"), field("License"), classifiers)
    return PythonDistribution(name.strip(), version.strip(), licenses)


def _hex_digest(value: str) -> str | None:
    """RECORD's ``sha256=<urlsafe base64, unpadded>`` as ``sha256:<hex>``; ``None`` when absent or malformed."""
    algorithm, sep, encoded = value.partition("=")
    if not sep or not algorithm.isalnum():
        return None
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    return f"{algorithm}:{raw.hex()}" if raw else None


def parse_record(data: bytes, site_dir: str, where: str = "RECORD") -> list[tuple[str, str | None]]:
    """RECORD rows as (path inside the image, ``algorithm:hex`` or ``None``); ``..`` stays inside the image."""
    text = data.decode("utf-8", errors="replace")
    rows: list[tuple[str, str | None]] = []
    try:
        for row in csv.reader(io.StringIO(text)):
            if not row or not row[0]:
                continue
            path, _ = normalize_path(posixpath.join(site_dir, row[0]))
            rows.append((path, _hex_digest(row[1]) if len(row) > 1 else None))
    except csv.Error as e:
        raise PythonMetadataError(f"{where}: malformed RECORD: {e}") from e
    return rows


def parse_installed_files(data: bytes, egg_dir: str) -> list[str]:
    """``installed-files.txt`` of an egg-info: paths relative to the egg-info directory, made image paths."""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [normalize_path(posixpath.join(egg_dir, line.strip()))[0] for line in lines if line.strip()]
