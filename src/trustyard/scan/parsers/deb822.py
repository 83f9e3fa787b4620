"""Debian control-file paragraphs (deb822(5)), as dpkg's ``status`` and ``status.d`` files hold them.

A paragraph is ``Field: value`` lines, continuation lines starting with a space or a tab, paragraphs
separated by blank lines; field names are case-insensitive (kept as first written, looked up folded).
python-debian's ``Deb822`` reads the same format but accepts malformed lines silently; a scanner must
report a corrupt database, so the few lines it takes are written here with a strict error.
"""

from __future__ import annotations

from collections.abc import Iterator

from trustyard.scan.errors import PackageDatabaseError


class Deb822Error(PackageDatabaseError):
    """A control file that is not deb822."""


class Paragraph:
    """One paragraph: field lookup by case-insensitive name; multi-line values keep their newlines."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of field ``name`` (first line and continuations), or ``default``."""
        return self._fields.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields


def iter_paragraphs(data: bytes, where: str) -> Iterator[Paragraph]:
    """Every paragraph of ``data``; ``Deb822Error`` names ``where`` and the line that is not deb822."""
    fields: dict[str, str] = {}
    last: str | None = None
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if fields:
                yield Paragraph(fields)
            fields, last = {}, None
            continue
        if line.startswith("#") and last is None:
            continue
        if line[0] in " \t":
            if last is None:
                raise Deb822Error(f"{where}:{number}: continuation line outside a field")
            fields[last] += "\n" + line[1:]
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or " " in name:
            raise Deb822Error(f"{where}:{number}: not a 'Field: value' line: {line[:80]!r}")
        last = name.lower()
        fields[last] = value.strip()
    if fields:
        yield Paragraph(fields)
