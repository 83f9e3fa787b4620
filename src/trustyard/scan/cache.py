"""The layer-analysis cache: what one pass over a layer learnt, kept by layer digest and analyzer set.

What is cached is a layer's ``Layer`` as the walker produced it for a given set of analyzers: every entry
with its SHA-256, mode and owner (the layer's file bill of materials), its whiteouts and opaque
directories, and the contents the analyzers asked for (already reduced by those that reduce, e.g. a Go
binary to its build info). Components are *not* cached: an analyzer reads the merged image (dpkg's status
file may be rewritten by an upper layer, purls need the os-release of a lower one), so they are computed
again from the cached layers, which costs milliseconds; reading a layer again costs seconds. A base layer
shared by a thousand images is therefore streamed once.

The key is the layer digest (the blob digest the manifest names, checked when the layer was read, or the
diff_id when a source names only that) together with a fingerprint of every analyzer's name and version,
the capture limit and this module's format version: bump an analyzer's version and its old entries are
simply never found again.

Storage: a directory of JSON files, one per layer, at ``<root>/<fingerprint>/<algorithm>/<hex>.json``.
Chosen over a SQLite file because entries are write-once and content-addressed, like the blob store: a
file written to a temporary name, fsynced and renamed is atomic without a database lock, so any number of
indexing processes (CLI runs, registry workers) share one cache without waiting on each other; a stale
analyzer set is removed with ``rm -r`` of its fingerprint directory; and a reader never sees a partial
entry. An entry that cannot be read or does not have the expected shape (a disk error, a hand edit, a file
from a newer format) is a cache miss with a warning, never an error: the layer is simply read again.

The same cache also keeps each image's finished bill of materials (``get_report``/``put_report``), keyed by
the manifest digest (or, for a source without a manifest, the chain of its layer digests) under the same
fingerprint plus ``REPORT_FORMAT``, at ``<root>/reports/<fingerprint>/<algorithm>/<hex>.json``: a second
analysis of an image then neither replays its layers into a merged view nor runs dpkg again (DESIGN.md rule
3). The entry records the layer list it was computed from; a source that names other layers under the same
key (a layout edited in place) misses. Bump any analyzer's version and its reports, like its layers, are
never found again.

Not here: deciding when to use the cache (``indexer.py``) or evicting old entries (a later ``gc`` step).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

from trustyard.oci.digest import Digest, DigestError
from trustyard.scan.image import ImageFile
from trustyard.scan.layers import Compression, EntryType, Layer, LayerEntry, LayerLimits
from trustyard.scan.model import Component, ComponentType, PackageFile

if TYPE_CHECKING:  # the indexer imports this module; its types are needed here only for annotations
    from trustyard.scan.indexer import IndexReport

_log = logging.getLogger(__name__)

FORMAT_VERSION: Final = 2
"""Bumped whenever what ``Layer`` holds, or how it is written here, changes (2: extractors' summaries packed)."""

REPORT_FORMAT: Final = 2
"""Bumped whenever what a cached report holds, or how the indexer derives it from the layers, changes."""

UNREADABLE: Final = (ValueError, TypeError, KeyError, IndexError, binascii.Error, DigestError)


def fingerprint(analyzers: Iterable[tuple[str, int]], limits: LayerLimits) -> str:
    """The part of the cache key that depends on the analyzer set: names, versions and the capture limit."""
    described = {
        "format": FORMAT_VERSION,
        "analyzers": sorted([name, version] for name, version in analyzers),
        "max_capture_size": limits.max_capture_size,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


class LayerCache(Protocol):
    """Where analysed layers are kept; ``get`` never raises for a bad entry, it misses."""

    def get(self, digest: Digest, analyzers: str) -> Layer | None:
        """The layer stored for ``digest`` under the analyzer ``fingerprint``, or ``None``."""
        ...

    def put(self, digest: Digest, analyzers: str, layer: Layer) -> None:
        """Store ``layer``; an entry already there is replaced (it has the same content)."""
        ...


@runtime_checkable
class ReportCache(LayerCache, Protocol):
    """A cache that also keeps finished reports (``encode_report`` documents); ``get_report`` misses, never raises."""

    def get_report(self, key: Digest, analyzers: str) -> Any | None:
        """The report document stored for image ``key`` under the analyzer fingerprint, or ``None``."""
        ...

    def put_report(self, key: Digest, analyzers: str, document: Any) -> None:
        """Store a report document (JSON-ready data); a failure to write is only logged."""
        ...


class MemoryLayerCache:
    """A dictionary: for tests and for one process that indexes many images."""

    def __init__(self) -> None:
        self._layers: dict[tuple[Digest, str], Layer] = {}
        self._reports: dict[tuple[Digest, str], str] = {}

    def get_report(self, key: Digest, analyzers: str) -> Any | None:
        """The report kept for the key, if any (a fresh copy: callers cannot change what is kept)."""
        kept = self._reports.get((key, analyzers))
        return None if kept is None else json.loads(kept)

    def put_report(self, key: Digest, analyzers: str, document: Any) -> None:
        """Keep the report, serialised as the directory cache would write it."""
        self._reports[(key, analyzers)] = json.dumps(document)

    def get(self, digest: Digest, analyzers: str) -> Layer | None:
        """The layer kept for the key, if any."""
        return self._layers.get((digest, analyzers))

    def put(self, digest: Digest, analyzers: str, layer: Layer) -> None:
        """Keep the layer."""
        self._layers[(digest, analyzers)] = layer

    def __len__(self) -> int:
        return len(self._layers)


class DirectoryLayerCache:
    """One JSON file per layer under ``root`` (created on first write, mode 0700)."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self._root = root
        self._fsync = fsync

    @property
    def root(self) -> Path:
        """The cache's folder (the file-hash index lives beside the entries)."""
        return self._root

    def _path(self, digest: Digest, analyzers: str) -> Path:
        return self._root / analyzers / digest.algorithm / f"{digest.hex}.json"

    def _report_path(self, key: Digest, analyzers: str) -> Path:
        return self._root / "reports" / f"{analyzers}-{REPORT_FORMAT}" / key.algorithm / f"{key.hex}.json"

    def get(self, digest: Digest, analyzers: str) -> Layer | None:
        """The stored layer, or ``None`` when there is none or it cannot be used (logged)."""
        raw = self._read(self._path(digest, analyzers))
        try:
            return None if raw is None else decode_layer(raw)
        except UNREADABLE as e:
            _log.warning(
                "layer cache: %s is unusable (%s); reading the layer instead", self._path(digest, analyzers), e
            )
            return None

    def get_report(self, key: Digest, analyzers: str) -> Any | None:
        """The stored report document (checked by the indexer when it decodes it), or ``None``."""
        return self._read(self._report_path(key, analyzers))

    def put_report(self, key: Digest, analyzers: str, document: Any) -> None:
        """Write the report atomically, as ``put`` writes a layer."""
        self._write(self._report_path(key, analyzers), json.dumps(document, separators=(",", ":")).encode())

    def _read(self, path: Path) -> Any | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            _log.warning("layer cache: cannot read %s (%s); reading the layer instead", path, e.strerror)
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            _log.warning("layer cache: %s is unusable (%s); reading the layer instead", path, e)
            return None

    def put(self, digest: Digest, analyzers: str, layer: Layer) -> None:
        """Write the entry atomically: temporary file, fsync, rename. A failure to write is only logged."""
        self._write(self._path(digest, analyzers), json.dumps(encode_layer(layer), separators=(",", ":")).encode())

    def _write(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    if self._fsync:
                        f.flush()
                        os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as e:
            _log.warning("layer cache: cannot write %s (%s); the next analysis reads the layer again", path, e)


_ENTRY_TYPES: Final = {t.value: t for t in EntryType}


def encode_layer(layer: Layer) -> dict[str, Any]:
    """A ``Layer`` as JSON-ready data: entries as arrays (compact, quick to load), contents base64."""
    return {
        "format": FORMAT_VERSION,
        "digest": str(layer.digest) if layer.digest is not None else None,
        "compression": layer.compression.value,
        "compressed_size": layer.compressed_size,
        "size": layer.size,
        "entries": [
            [e.path, e.type.value, e.size, e.mode, e.uid, e.gid, e.link_target, e.sha256]
            for e in layer.entries.values()
        ],
        "whiteouts": sorted(layer.whiteouts),
        "opaque_dirs": sorted(layer.opaque_dirs),
        "contents": {path: base64.b64encode(data).decode("ascii") for path, data in layer.contents.items()},
        "warnings": list(layer.warnings),
    }


def decode_layer(data: Any) -> Layer:
    """The ``Layer`` that ``encode_layer`` wrote; ``ValueError``/``TypeError``/``KeyError`` for anything else."""
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise ValueError("not a layer cache entry of this format")
    entries: dict[str, LayerEntry] = {}
    types, make = _ENTRY_TYPES, LayerEntry
    for path, kind, size, mode, uid, gid, link_target, sha256 in data["entries"]:
        # exact type checks, inline: this loop runs once per file of every cached layer
        if type(path) is not str or type(size) is not int or type(mode) is not int:
            raise TypeError("malformed entry")
        entries[path] = make(path, types[kind], size, mode, uid, gid, link_target, sha256)
    digest = data["digest"]
    return Layer(
        digest=Digest.parse(digest) if digest is not None else None,
        compression=Compression(data["compression"]),
        compressed_size=int(data["compressed_size"]),
        size=int(data["size"]),
        entries=entries,
        whiteouts=frozenset(str(p) for p in data["whiteouts"]),
        opaque_dirs=frozenset(str(p) for p in data["opaque_dirs"]),
        contents={str(p): base64.b64decode(v, validate=True) for p, v in data["contents"].items()},
        warnings=tuple(str(w) for w in data["warnings"]),
    )


def encode_component(c: Component) -> dict[str, Any]:
    """A component as JSON-ready data: the registry's stored inventories and the report cache share this form."""
    return {
        "type": c.type.value,
        "name": c.name,
        "version": c.version,
        "purl": c.purl,
        "cpe": c.cpe,
        "arch": c.arch,
        "source_name": c.source_name,
        "source_version": c.source_version,
        "licenses": list(c.licenses),
        "evidence": c.evidence,
        "files": [[f.path, f.digest] for f in c.files],
        "layer": str(c.layer) if c.layer is not None else None,
        "found_by": c.found_by,
        "extra": [list(pair) for pair in c.extra],
    }


_package_file: Final = PackageFile._make  # from a [path, digest] pair, refusing any other length


def decode_component(c: Any, layers: dict[str, Digest] | None = None) -> Component:
    """The component ``encode_component`` wrote; ``layers`` memoises parsed layer digests across components."""
    layer_text = c["layer"]
    layer: Digest | None = None
    if layer_text:
        layer = layers.get(layer_text) if layers is not None else None
        if layer is None:
            layer = Digest.parse(layer_text)
            if layers is not None:
                layers[layer_text] = layer
    return Component(
        type=ComponentType(c["type"]),
        name=c["name"],
        version=c["version"],
        purl=c["purl"],
        cpe=c["cpe"],
        arch=c["arch"],
        source_name=c["source_name"],
        source_version=c["source_version"],
        licenses=tuple(c["licenses"]),
        evidence=c["evidence"],
        files=tuple(map(_package_file, c["files"])),
        layer=layer,
        found_by=c["found_by"],
        extra=tuple((k, v) for k, v in c["extra"]),
    )


def encode_report(report: IndexReport, layer_keys: list[str], unowned: tuple[int, ...]) -> dict[str, Any]:
    """A finished report as JSON-ready data, with the layer list it came from and its unowned files' indexes.

    Layer digests are written once in a table that files refer to by position; a layer's components that
    equal one of the image's (the usual case) are written as that component's position.
    """
    ids = sorted({str(f.layer) for f in report.files if f.layer is not None})
    position = {text: i for i, text in enumerate(ids)}
    components = [encode_component(c) for c in report.components]
    where = {c: i for i, c in enumerate(report.components)}
    return {
        "format": REPORT_FORMAT,
        "layer_keys": layer_keys,
        "manifest_digest": str(report.manifest_digest) if report.manifest_digest is not None else None,
        "layer_ids": ids,
        "layers": [
            [
                s.index,
                str(s.digest) if s.digest is not None else None,
                s.compressed_size,
                s.size,
                s.entries,
                s.whiteouts,
                [where[c] if c in where else encode_component(c) for c in s.components],
            ]
            for s in report.layers
        ],
        "components": components,
        # by column: one JSON array per field rather than one per file, far fewer objects to parse and collect
        "files": [list(column) for column in zip(*_file_rows(report, position), strict=True)] or [[]] * 9,
        "warnings": list(report.warnings),
        "unowned": list(unowned),
    }


def _file_rows(report: IndexReport, position: dict[str, int]) -> list[tuple[Any, ...]]:
    return [(*f.entry, position[str(f.layer)] if f.layer is not None else None) for f in report.files]


def decode_report(data: Any, source: str, layer_keys: list[str]) -> tuple[IndexReport, tuple[int, ...]] | None:
    """The report ``encode_report`` wrote (every layer marked cached), or ``None`` when it is for other layers.

    Raises ``ValueError``/``TypeError``/``KeyError``/``IndexError``/``DigestError`` for a malformed entry.
    """
    from trustyard.scan.indexer import IndexReport, LayerSummary  # here: the indexer imports this module

    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise ValueError("not a report cache entry of this format")
    if data["layer_keys"] != layer_keys:
        return None
    parsed: dict[str, Digest] = {}
    components = tuple(decode_component(c, parsed) for c in data["components"])
    ids = [Digest.parse(text) for text in data["layer_ids"]]
    types = _ENTRY_TYPES
    columns = data["files"]
    if len(columns) != 9 or len({len(c) for c in columns}) != 1:
        raise TypeError("malformed file columns")
    paths, kinds, sizes, modes, uids, gids, link_targets, digests, layer_positions = columns
    if not all(type(p) is str for p in paths) or not all(type(n) is int for n in sizes):
        raise TypeError("malformed file")
    entries = map(
        LayerEntry._make,
        zip(paths, [types[k] for k in kinds], sizes, modes, uids, gids, link_targets, digests, strict=True),
    )
    layer_of = [ids[i] if i is not None else None for i in layer_positions]
    files = list(map(ImageFile, entries, layer_of))
    layers = tuple(
        LayerSummary(
            index=int(index),
            digest=Digest.parse(digest) if digest is not None else None,
            compressed_size=int(compressed),
            size=int(size),
            entries=int(entries),
            whiteouts=int(whiteouts),
            components=tuple(components[c] if type(c) is int else decode_component(c, parsed) for c in added),
            cached=True,
        )
        for index, digest, compressed, size, entries, whiteouts, added in data["layers"]
    )
    manifest = data["manifest_digest"]
    report = IndexReport(
        source=source,
        manifest_digest=Digest.parse(manifest) if manifest is not None else None,
        layers=layers,
        components=components,
        files=tuple(files),
        warnings=tuple(str(w) for w in data["warnings"]),
    )
    unowned = tuple(int(i) for i in data["unowned"])
    if any(not 0 <= i < len(files) for i in unowned):
        raise IndexError("unowned file index out of range")
    return report, unowned
