"""Python lock files in application folders: poetry.lock, Pipfile.lock, uv.lock and pinned requirements*.txt.

- ``poetry.lock`` (TOML): ``[[package]]`` tables with ``name`` and ``version``; poetry before 1.2 marks
  development packages with ``category = "dev"``.
- ``Pipfile.lock`` (JSON): ``default`` and ``develop`` map names to ``{"version": "==X"}``; git and path
  entries have no version and are skipped.
- ``uv.lock`` (TOML): ``[[package]]`` tables; the project itself and workspace members have an
  ``editable`` or ``virtual`` source and are left out, as is a package without a static version.
- ``requirements*.txt`` (pip's requirements file format): only exact pins (``name==1.2``, ``name===1.2``,
  extras and environment markers allowed) say what is installed; ranges, ``==1.*`` wildcards, options
  (``-r``, ``-e``, ``--hash``), URLs and comments are skipped; ``\\`` continues a line.
Each returns ``(name, version, dev)`` records with names as written.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any, Final

from trustyard.scan.errors import PackageDatabaseError

_PIN: Final = re.compile(
    r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*(?:;.*)?"
)


class PythonLockError(PackageDatabaseError):
    """A Python lock file that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class LockedPackage:
    """One pinned package."""

    name: str
    version: str
    dev: bool = False


def _toml(data: bytes, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:  # tomllib recurses per nesting
        raise PythonLockError(f"{where}: not TOML: {e}") from e


def _packages(document: dict[str, Any], where: str) -> list[dict[str, Any]]:
    packages = document.get("package", [])
    if not isinstance(packages, list) or not all(isinstance(p, dict) for p in packages):
        raise PythonLockError(f"{where}: 'package' is not an array of tables")
    return packages


def parse_poetry_lock(data: bytes, where: str = "poetry.lock") -> list[LockedPackage]:
    """Every ``[[package]]`` of a poetry lock file."""
    return [
        LockedPackage(p["name"], p["version"], p.get("category") == "dev")
        for p in _packages(_toml(data, where), where)
        if isinstance(p.get("name"), str) and isinstance(p.get("version"), str)
    ]


def parse_uv_lock(data: bytes, where: str = "uv.lock") -> list[LockedPackage]:
    """Every ``[[package]]`` of a uv lock file except the project's own (editable or virtual) packages."""
    found = []
    for p in _packages(_toml(data, where), where):
        source = p.get("source")
        if isinstance(source, dict) and ("editable" in source or "virtual" in source):
            continue
        if isinstance(p.get("name"), str) and isinstance(p.get("version"), str):
            found.append(LockedPackage(p["name"], p["version"]))
    return found


def parse_pipfile_lock(data: bytes, where: str = "Pipfile.lock") -> list[LockedPackage]:
    """The pinned packages of ``default`` and ``develop``."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise PythonLockError(f"{where}: not JSON: {e}") from e
    if not isinstance(document, dict):
        raise PythonLockError(f"{where}: not a JSON object")
    found = []
    for section, dev in (("default", False), ("develop", True)):
        entries = document.get(section)
        if not isinstance(entries, dict):
            continue
        for name, entry in entries.items():
            version = entry.get("version") if isinstance(entry, dict) else None
            if isinstance(version, str) and version.startswith("==") and "*" not in version:
                found.append(LockedPackage(name, version.lstrip("="), dev))
    return found


def parse_requirements(data: bytes, where: str = "requirements.txt") -> list[LockedPackage]:
    """The exactly pinned requirements of a pip requirements file."""
    text = data.decode("utf-8", errors="replace").replace("\\\r\n", " ").replace("\\\n", " ")
    found = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        line = line.split(" --", 1)[0].strip()  # per-requirement options such as --hash
        match = _PIN.fullmatch(line)
        if match is not None and "*" not in match[2]:
            found.append(LockedPackage(match[1], match[2]))
    return found
