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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Final

from trustyard.scan.identify_index import FileIndex, identity
from trustyard.scan.image import ImageFile, ImageView
from trustyard.scan.layers import EntryType
from trustyard.scan.model import Component, PackageFile

BINARY: Final = "binary"
"""``found_by`` of components named by a binary signature."""
FILE_HASH: Final = "file-hash"
"""``found_by`` of components named by a file's SHA-256."""
HASH_EVIDENCE: Final = "identified by file hash"
_SECONDARY: Final = frozenset({BINARY, FILE_HASH})


class Placer:
    """Places package-listed paths in the merged image: the parent through the image's symlinks, as the
    runtime would (parents resolved once each: thousands of files share a few hundred directories)."""

    def __init__(self, view: ImageView) -> None:
        self._view = view
        self._parents: dict[str, str | None] = {}

    def place(self, path: str) -> str:
        """Where ``path`` (leading ``/`` or not) is in the image, its last component not followed."""
        path = path.strip("/")
        parent, _, base = path.rpartition("/")
        if parent not in self._parents:
            self._parents[parent] = self._view.resolve(parent) if parent else ""
        where = self._parents[parent]
        return path if where is None else (f"{where}/{base}" if where else base)


def owned_paths(components: Iterable[Component], view: ImageView) -> set[str]:
    """The image paths that some component other than a signature or hash identification claims."""
    owned: set[str] = set()
    placer = Placer(view)
    for component in components:
        if component.found_by in _SECONDARY:
            continue
        for path in component.paths:
            placed = placer.place(path)
            owned.add(placed)
            found = view.get(placed)
            if found is not None and found.entry.type is EntryType.SYMLINK:
                target = view.resolve(placed)
                if target is not None:
                    owned.add(target)
    return owned


def verified_files(
    components: Iterable[Component], view: ImageView, digests: Mapping[str, Mapping[str, str]]
) -> Iterator[tuple[str, Component, str]]:
    """``(sha256, package, path)`` for each file a package lists whose bytes match the digest it records.

    ``digests`` are the other digests computed from the bytes (path -> ``{"md5": ..., "sha1": ...}``, the
    binary analyzer's); a file whose recorded digest is of a kind not computed for it is not indexed.
    """
    placer = Placer(view)
    for component in components:
        if component.found_by in _SECONDARY or not any(f.digest for f in component.files):
            continue
        package = _bare(component)
        for listed in component.files:
            if not listed.digest:
                continue
            algorithm, _, recorded = listed.digest.partition(":")
            placed = placer.place(listed.path)
            found = view.get(placed)
            if found is None or not found.is_regular or not found.entry.sha256 or found.entry.size == 0:
                continue
            sha256 = found.entry.sha256
            actual = sha256 if algorithm == "sha256" else digests.get(placed, {}).get(algorithm)
            if actual is not None and actual == recorded.lower():
                yield sha256, package, placed


def _bare(component: Component) -> Component:
    """The package itself: what names it, without where or how this image's analysis found it."""
    return replace(component, evidence="", files=(), layer=None, found_by="", extra=())


def identified(files: Sequence[ImageFile], index: FileIndex) -> list[Component]:
    """The packages the index knows ``files`` (unowned regular files) to be, one component per package.

    Each names every file of the image found to be that package's (evidence: the first, by path), the layer
    of that first file, and the path the package installs it at (``installed_as``).
    """
    candidates = [f for f in files if f.entry.sha256 and f.entry.size > 0]
    known = index.lookup({f.entry.sha256 for f in candidates if f.entry.sha256})
    by_package: dict[str, tuple[Component, list[tuple[ImageFile, str]]]] = {}
    for file in sorted(candidates, key=lambda f: f.path):
        for fact in known.get(file.entry.sha256 or "", ()):
            key = identity(fact.package)
            by_package.setdefault(key, (fact.package, []))[1].append((file, fact.path))
    components = []
    for package, hits in by_package.values():
        (first, installed_as), rest = hits[0], hits[1:]
        components.append(
            replace(
                package,
                evidence=first.path,
                files=tuple(PackageFile(f.path, f"sha256:{f.entry.sha256}") for f, _ in rest),
                layer=first.layer,
                found_by=FILE_HASH,
                extra=(("evidence", HASH_EVIDENCE), ("installed_as", installed_as)),
            )
        )
    return components


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
