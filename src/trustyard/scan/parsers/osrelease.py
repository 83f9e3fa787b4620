"""``os-release`` (freedesktop.org os-release(5)): ``KEY=VALUE`` lines with shell-style quoting.

As the specification asks, lines that are not assignments are ignored rather than refused, so this parser
cannot fail on any input; it only decodes, unquotes and keeps the last value of each key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_LINE: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")
_ESCAPED: Final = re.compile(r'\\([\\$"`])')


@dataclass(frozen=True, slots=True)
class OsRelease:
    """The fields a scanner uses; ``fields`` keeps every assignment."""

    id: str
    version_id: str | None
    version_codename: str | None
    pretty_name: str | None
    id_like: tuple[str, ...]
    fields: dict[str, str]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _ESCAPED.sub(r"\1", value[1:-1])
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value


def parse_os_release(data: bytes) -> OsRelease:
    """Parse an os-release file; ``ID`` defaults to ``linux`` as the specification says."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        match = _LINE.fullmatch(line.strip())
        if match:
            fields[match[1]] = _unquote(match[2])
    return OsRelease(
        id=fields.get("ID") or "linux",
        version_id=fields.get("VERSION_ID") or None,
        version_codename=fields.get("VERSION_CODENAME") or None,
        pretty_name=fields.get("PRETTY_NAME") or None,
        id_like=tuple(fields.get("ID_LIKE", "").split()),
        fields=fields,
    )
