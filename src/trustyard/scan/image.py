"""The final file system of an image, computed from its layers in order, as a container runtime would see it.

Applying a layer (OCI image-spec layer.md "Applying Changesets"): its opaque markers hide what lower layers
put in those directories, its whiteouts delete paths (and everything under them) from lower layers, then its
entries are written in the order the layer last wrote them; a non-directory replacing a directory takes the
directory's contents with it. Each path remembers the layer that last wrote it, so a component found in a
file can name the layer that put it there.

Paths inside a layer are placed after following the symlinks already in the view for their parent directory
(``lib/x`` over ``lib -> usr/lib`` lands at ``usr/lib/x``), as containerd and Docker do when they unpack.
Symlinks are resolved component by component and never leave the image root: ``..`` at the root stays at
the root and absolute targets start at the image root; a loop or more than 40 hops resolves to nothing.
A hard link holds the content and digest its target had when the link was written.

Not here: reading layers (``layers.py``) or deciding what files mean (``analyzers/``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from trustyard.oci.digest import Digest
from trustyard.scan.layers import EntryType, Layer, LayerEntry

MAX_SYMLINK_HOPS: Final = 40
_REGULAR: Final = frozenset({EntryType.FILE, EntryType.HARDLINK})


@dataclass(frozen=True, slots=True)
class ImageFile:
    """A path of the merged image: its entry as last written and the layer that wrote it."""

    entry: LayerEntry
    layer: Digest | None

    @property
    def path(self) -> str:
        """The path, relative to the image root."""
        return self.entry.path

    @property
    def is_regular(self) -> bool:
        """A regular file (hard links included: they are the same kind of inode)."""
        return self.entry.type in _REGULAR


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


class ImageView:
    """The merged file system; start empty and ``apply`` each layer bottom to top."""

    def __init__(self) -> None:
        self._files: dict[str, ImageFile] = {}
        self._children: dict[str, set[str]] = {}
        self._contents: dict[str, bytes] = {}

    def apply(self, layer: Layer, layer_id: Digest | None = None) -> set[str]:
        """Apply one layer over the current view; returns every path it added, replaced or removed."""
        changed: set[str] = set()
        for directory in sorted(layer.opaque_dirs):
            place = self._place(directory)
            for child in list(self._children.get(place, ())):
                self._remove(child, changed)
        for path in sorted(layer.whiteouts):
            self._remove(self._place(path), changed)
        # Parents resolved once per layer: thousands of entries share a few hundred directories. A resolution
        # stays valid until a symlink is written or replaced, or a directory (with its symlinks) is replaced.
        parents: dict[str, str | None] = {}
        for path, entry in layer.entries.items():
            parent, _, base = path.rpartition("/")
            place = path
            if parent:
                if parent not in parents:
                    parents[parent] = self.resolve(parent)
                where = parents[parent]
                if where is not None:
                    place = f"{where}/{base}" if where else base
            previous = self._files.get(place)
            if entry.type is EntryType.SYMLINK or (
                previous is not None
                and (
                    previous.entry.type is EntryType.SYMLINK
                    or (entry.type is not EntryType.DIR and place in self._children)
                )
            ):
                parents.clear()
            self._write(place, entry, layer.contents.get(path), layer_id, changed)
        return changed

    def _place(self, path: str) -> str:
        """Where a layer's ``path`` lands: its parent directory resolved through the view's symlinks."""
        parent, _, base = path.rpartition("/")
        if not parent:
            return path
        where = self.resolve(parent)
        if where is None:
            return path
        return f"{where}/{base}" if where else base

    def _write(
        self, path: str, entry: LayerEntry, content: bytes | None, layer_id: Digest | None, changed: set[str]
    ) -> None:
        if entry.type is not EntryType.DIR:
            for child in list(self._children.get(path, ())):
                self._remove(child, changed)
        if entry.path != path:
            entry = entry._replace(path=path)
        if entry.type is EntryType.HARDLINK and entry.link_target is not None:
            target_path = self.resolve(entry.link_target)
            target = self._files.get(target_path) if target_path is not None else None
            if target is not None and target.is_regular:
                if entry.sha256 is None:
                    entry = entry._replace(sha256=target.entry.sha256, size=target.entry.size)
                if content is None and target_path is not None:
                    content = self._contents.get(target_path)
        self._files[path] = ImageFile(entry, layer_id)
        self._link(path)
        if content is not None:
            self._contents[path] = content
        else:
            self._contents.pop(path, None)
        changed.add(path)

    def _link(self, path: str) -> None:
        """Record ``path`` under its parent, and the parent under its own, up to the first one known."""
        while path:
            parent = _parent(path)
            siblings = self._children.setdefault(parent, set())
            if path in siblings:
                return
            siblings.add(path)
            path = parent

    def _remove(self, path: str, changed: set[str]) -> None:
        stack = [path]
        while stack:
            current = stack.pop()
            stack.extend(self._children.pop(current, ()))
            if self._files.pop(current, None) is not None:
                changed.add(current)
            self._contents.pop(current, None)
        if path:
            self._children.get(_parent(path), set()).discard(path)

    def resolve(self, path: str, *, follow_last: bool = True) -> str | None:
        """``path`` with every symlink followed, inside the image; ``None`` for a loop or too many hops."""
        pending = path.split("/")[::-1]
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/".join((*resolved, part))
            found = self._files.get(candidate)
            if found is not None and found.entry.type is EntryType.SYMLINK and (pending or follow_last):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = found.entry.link_target or ""
                if target.startswith("/"):
                    resolved = []
                pending.extend(reversed(target.split("/")))
                continue
            resolved.append(part)
        return "/".join(resolved)

    def get(self, path: str) -> ImageFile | None:
        """The entry at ``path`` exactly as written (symlinks not followed)."""
        return self._files.get(path)

    def lookup(self, path: str) -> ImageFile | None:
        """The entry ``path`` leads to once symlinks are followed."""
        where = self.resolve(path)
        return None if where is None else self._files.get(where)

    def read(self, path: str) -> bytes | None:
        """The captured content of the regular file ``path`` leads to; ``None`` when not captured."""
        where = self.resolve(path)
        return None if where is None else self._contents.get(where)

    def __contains__(self, path: object) -> bool:
        return path in self._files

    def __len__(self) -> int:
        return len(self._files)

    def files(self) -> Iterator[ImageFile]:
        """Every path of the image, in no particular order."""
        return iter(self._files.values())

    def regular_files(self) -> Iterator[ImageFile]:
        """Every regular file (hard links included), sorted by path: the file bill of materials."""
        for path in sorted(self._files):
            found = self._files[path]
            if found.is_regular:
                yield found

    def captured(self) -> Iterator[tuple[ImageFile, bytes]]:
        """Every file whose content was captured for an analyzer, with that content."""
        for path, content in self._contents.items():
            yield self._files[path], content
