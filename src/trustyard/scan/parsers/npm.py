"""npm packages: an installed ``package.json`` and the lock files of npm (v1-v3), yarn (v1 and berry) and pnpm.

- ``package.json``: ``name``, ``version`` and ``license`` (a string, or the deprecated ``{"type": ...}`` and
  ``licenses: [...]`` forms).
- ``package-lock.json``/``npm-shrinkwrap.json``: v1 nests ``dependencies`` (name -> {version, dependencies});
  v2 and v3 list ``packages`` by install path (``node_modules/a/node_modules/b``), ``""`` being the project
  itself; ``link`` entries point at workspaces and are not packages.
- ``yarn.lock``: entries are headed by their comma-separated specifiers (``"a@^1", a@^1.1:``) with an
  indented ``version "1.2.3"`` (v1) or ``version: 1.2.3`` (berry, whose specifiers carry ``npm:`` and whose
  ``workspace:`` entries are the project's own).
- ``pnpm-lock.yaml``: the keys under ``packages:`` (and ``snapshots:`` in v9) name each package: ``/a/1.0.0``
  (v5), ``/a@1.0.0`` (v6), ``a@1.0.0`` (v9), with a peer suffix ``(b@2)`` or ``_b@2`` to drop. Read line by
  line, as the keys are all that is needed: no YAML library, no YAML parser's attack surface.
Each returns ``(name, version)`` records (plus the license for package.json).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from trustyard.scan.errors import PackageDatabaseError

_PNPM_KEY: Final = re.compile(r"^  ['\"]?(/?(?:@[^/@\s]+/)?[^/@\s(]+)[@/]([^(_'\":\s]+)")


class NpmError(PackageDatabaseError):
    """A package.json or lock file that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class NpmPackage:
    """One package: name, version, declared license, and whether a lock file marks it for development only."""

    name: str
    version: str
    license: str | None = None
    dev: bool = False


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise NpmError(f"{where}: not JSON: {e}") from e


def _license(document: dict[str, Any]) -> str | None:
    value = document.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    if isinstance(value, str) and value.strip():
        return value.strip()
    many = document.get("licenses")
    if isinstance(many, list):
        kinds = [x.get("type") if isinstance(x, dict) else x for x in many]
        names = [k for k in kinds if isinstance(k, str) and k.strip()]
        if names:
            return " OR ".join(names) if len(names) > 1 else names[0]
    return None


def parse_package_json(data: bytes, where: str = "package.json") -> NpmPackage | None:
    """The package an installed ``package.json`` describes; ``None`` when it has no name or version."""
    document = _json(data, where)
    if not isinstance(document, dict):
        raise NpmError(f"{where}: not a JSON object")
    name, version = document.get("name"), document.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    return NpmPackage(name, version, _license(document))


def parse_package_lock(data: bytes, where: str = "package-lock.json") -> list[NpmPackage]:
    """Every package of an npm lock file (v1, v2 or v3), the project itself left out."""
    document = _json(data, where)
    if not isinstance(document, dict):
        raise NpmError(f"{where}: not a JSON object")
    found: list[NpmPackage] = []
    packages = document.get("packages")
    if isinstance(packages, dict):
        for path, entry in packages.items():
            if not path or not isinstance(entry, dict) or entry.get("link") or "node_modules/" not in path:
                continue
            name = entry.get("name") or path.rpartition("node_modules/")[2]
            version = entry.get("version")
            if isinstance(name, str) and isinstance(version, str):
                found.append(NpmPackage(name, version, _license(entry), bool(entry.get("dev"))))
        return found
    stack: list[Any] = [document.get("dependencies")]
    while stack:
        level = stack.pop()
        if not isinstance(level, dict):
            continue
        for name, entry in level.items():
            if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                found.append(NpmPackage(name, entry["version"], None, bool(entry.get("dev"))))
                stack.append(entry.get("dependencies"))
    return found


def _yarn_name(specifier: str) -> str:
    specifier = specifier.strip().strip('"')
    at = specifier.find("@", 1)  # a scoped name starts with @
    return specifier[:at] if at > 0 else specifier


def parse_yarn_lock(data: bytes, where: str = "yarn.lock") -> list[NpmPackage]:
    """Every package of a yarn lock file, v1 or berry; workspace entries (the project's own) left out."""
    found: list[NpmPackage] = []
    header: str | None = None
    for line in data.decode("utf-8", errors="replace").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            header = line.rstrip(":") if line.endswith(":") else None
            continue
        stripped = line.strip()
        if header is None or not stripped.startswith("version") or line.startswith("    "):
            continue
        version = stripped[len("version") :].lstrip(": ").strip().strip('"')
        first = header.split(",")[0]
        if "@workspace:" in header or header.startswith("__metadata") or not version:
            header = None
            continue
        found.append(NpmPackage(_yarn_name(first), version))
        header = None
    return found


def parse_pnpm_lock(data: bytes, where: str = "pnpm-lock.yaml") -> list[NpmPackage]:
    """Every package key under ``packages:`` (and ``snapshots:``) of a pnpm lock file, each once."""
    found: dict[tuple[str, str], NpmPackage] = {}
    section: str | None = None
    for line in data.decode("utf-8", errors="replace").splitlines():
        if line and not line[0].isspace():
            section = line.rstrip().rstrip(":")
            continue
        if section not in ("packages", "snapshots"):
            continue
        match = _PNPM_KEY.match(line)
        if match is None or line.startswith("   "):
            continue
        name, version = match[1].lstrip("/"), match[2]
        found.setdefault((name, version), NpmPackage(name, version))
    return list(found.values())
