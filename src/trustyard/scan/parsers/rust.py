"""Rust dependency lists: the ``.dep-v0`` section cargo-auditable embeds in binaries, and ``Cargo.lock``.

cargo-auditable (rust-secure-code/cargo-auditable) links into each binary an ELF section ``.dep-v0`` holding
zlib-compressed JSON of the form its ``cargo-auditable.schema.json`` defines::

    {"packages": [{"name": "adler", "version": "0.2.3", "source": "crates.io",
                   "kind": "build", "dependencies": [3, 7], "root": true}, ...]}

``source`` is ``crates.io``, ``git``, ``local``, ``registry`` or another string; ``kind`` (``runtime`` when
omitted) says whether the crate is compiled into the binary or only ran at build time; ``dependencies`` are
indexes into ``packages``; exactly one package is the ``root``. The section is found through the ELF section
headers, inflated with a size limit (a zlib bomb is refused), and validated: indexes in range, one root.

``Cargo.lock`` (TOML, versions 1 to 4) lists ``[[package]]`` tables of ``name``, ``version``, ``source``
(``registry+https://...``, ``git+https://...#rev``; absent for workspace members and path dependencies) and
``checksum`` (v1 keeps checksums in ``[metadata]``).
"""

from __future__ import annotations

import json
import tomllib
import zlib
from dataclasses import dataclass
from typing import Any, Final

from trustyard.scan.errors import PackageDatabaseError
from trustyard.scan.parsers.gobinary import elf_sections

SECTION: Final = ".dep-v0"
MAX_AUDIT_DATA: Final = 8 << 20
"""Inflated size limit: real dependency lists are tens of kilobytes."""
_KINDS: Final = frozenset({"runtime", "build"})


class RustError(PackageDatabaseError):
    """A ``.dep-v0`` section or a ``Cargo.lock`` that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Crate:
    """One crate of a dependency list; ``source`` as the list says it (``crates.io``, ``registry+https://...``)."""

    name: str
    version: str
    source: str | None = None
    kind: str = "runtime"
    root: bool = False
    checksum: str | None = None

    @property
    def from_crates_io(self) -> bool:
        """Whether the crate came from the crates.io registry (what advisories for ``pkg:cargo`` name)."""
        return self.source in ("crates.io", "registry+https://github.com/rust-lang/crates.io-index") or bool(
            self.source and self.source.startswith("sparse+https://index.crates.io/")
        )


def read_audit_data(data: bytes) -> bytes | None:
    """The inflated JSON of an ELF file's ``.dep-v0`` section; ``None`` when the file has none."""
    section = next((s for s in elf_sections(data) if s.name == SECTION), None)
    if section is None:
        return None
    if section.offset + section.size > len(data) or section.size == 0:
        raise RustError(f"the {SECTION} section lies outside the file")
    inflate = zlib.decompressobj()
    try:
        text = inflate.decompress(data[section.offset : section.offset + section.size], MAX_AUDIT_DATA)
    except zlib.error as e:
        raise RustError(f"the {SECTION} section is not zlib data: {e}") from e
    if inflate.unconsumed_tail:
        raise RustError(f"the {SECTION} section inflates past {MAX_AUDIT_DATA} bytes")
    return text


def _string(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise RustError(f"{where}: {key!r} is missing or not a string")
    return value


def parse_audit_json(text: bytes) -> list[Crate]:
    """The crates of cargo-auditable's JSON, validated as its schema says."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise RustError(f"audit data is not JSON: {e}") from e
    packages = document.get("packages") if isinstance(document, dict) else None
    if not isinstance(packages, list):
        raise RustError("audit data has no 'packages' list")
    crates = []
    roots = 0
    for i, entry in enumerate(packages):
        where = f"packages[{i}]"
        if not isinstance(entry, dict):
            raise RustError(f"{where} is not an object")
        kind = entry.get("kind", "runtime")
        if kind not in _KINDS:
            raise RustError(f"{where}: kind {kind!r} is neither runtime nor build")
        dependencies = entry.get("dependencies", [])
        if not isinstance(dependencies, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < len(packages) for d in dependencies
        ):
            raise RustError(f"{where}: dependencies must be indexes into packages")
        root = entry.get("root", False) is True
        roots += root
        crates.append(
            Crate(
                name=_string(entry, "name", where),
                version=_string(entry, "version", where),
                source=_string(entry, "source", where),
                kind=str(kind),
                root=root,
            )
        )
    if crates and roots != 1:
        raise RustError(f"audit data has {roots} root packages, not one")
    return crates


def parse_cargo_lock(text: bytes) -> list[Crate]:
    """The ``[[package]]`` entries of a ``Cargo.lock``."""
    try:
        document = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:  # tomllib recurses per nesting
        raise RustError(f"Cargo.lock is not TOML: {e}") from e
    packages = document.get("package", [])
    metadata = document.get("metadata", {})
    if not isinstance(packages, list) or not isinstance(metadata, dict):
        raise RustError("Cargo.lock: 'package' must be an array of tables")
    crates = []
    for i, entry in enumerate(packages):
        where = f"Cargo.lock package[{i}]"
        if not isinstance(entry, dict):
            raise RustError(f"{where} is not a table")
        name, version = _string(entry, "name", where), _string(entry, "version", where)
        source = entry.get("source")
        checksum = entry.get("checksum")
        if checksum is None and isinstance(source, str):  # lock version 1: "checksum NAME VERSION (SOURCE)"
            checksum = metadata.get(f"checksum {name} {version} ({source})")
        crates.append(
            Crate(
                name=name,
                version=version,
                source=source if isinstance(source, str) else None,
                checksum=checksum if isinstance(checksum, str) and checksum != "<none>" else None,
            )
        )
    return crates
