"""Which files of an image no package database claims, and what the image's other evidence says they are.

Two kinds of evidence name software that no package database in the image lists:

- a version signature in the bytes (``analyzers/binary.py``): reported only for files no package owns, so
  that ``usr/lib/x86_64-linux-gnu/libssl.so.3`` in a Debian image is the ``libssl3`` package and not, a
  second time, ``openssl`` found by its signature;
- the file's SHA-256 (``scan/identify_index.py``): a file whose bytes are those of a file some package installed,
  in any image analysed before, is that package, with ``identified by file hash`` as its evidence.

"Owned" is decided on the merged image: every path a component lists (a package's files, a Go binary or a
jar that is itself the evidence) is placed through the image's symlinks, as the runtime would place it, so
the ``lib/x86_64-linux-gnu/libc.so.6`` dpkg lists on a merged-``/usr`` system owns
``usr/lib/x86_64-linux-gnu/libc.so.6``; a listed symlink owns its target too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Final

from trustyard.scan.image import ImageFile, ImageView
from trustyard.scan.layers import EntryType
from trustyard.scan.model import Component, PackageFile

BINARY: Final = "binary"
"""``found_by`` of components named by a binary signature."""
FILE_HASH: Final = "file-hash"
"""``found_by`` of components named by a file's SHA-256."""
_SECONDARY: Final = frozenset({BINARY, FILE_HASH})


def owned_paths(components: Iterable[Component], view: ImageView) -> set[str]:
    """The image paths that some component other than a signature or hash identification claims."""
    owned: set[str] = set()
    parents: dict[str, str | None] = {}
    for component in components:
        if component.found_by in _SECONDARY:
            continue
        for path in component.paths:
            path = path.strip("/")
            parent, _, base = path.rpartition("/")
            if parent not in parents:
                parents[parent] = view.resolve(parent) if parent else ""
            where = parents[parent]
            placed = path if where is None else (f"{where}/{base}" if where else base)
            owned.add(placed)
            found = view.get(placed)
            if found is not None and found.entry.type is EntryType.SYMLINK:
                target = view.resolve(placed)
                if target is not None:
                    owned.add(target)
    return owned


def without_owned(components: Sequence[Component], owned: set[str]) -> tuple[Component, ...]:
    """``components`` with each signature finding reduced to the files nobody owns (dropped if none is left)."""
    kept: list[Component] = []
    for component in components:
        if component.found_by != BINARY:
            kept.append(component)
            continue
        free = [p for p in component.paths if p not in owned]
        if len(free) == len(component.paths):
            kept.append(component)
        elif free:
            kept.append(replace(component, evidence=free[0], files=tuple(PackageFile(p) for p in free[1:])))
    return tuple(kept)


def unowned_files(files: Sequence[ImageFile], owned: set[str]) -> tuple[int, ...]:
    """The positions in ``files`` of the regular files nobody owns: the candidates for hash identification."""
    return tuple(i for i, f in enumerate(files) if f.path not in owned)
