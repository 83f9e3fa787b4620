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
from typing import Any, Final, Protocol

from trustyard.oci.digest import Digest, DigestError
from trustyard.scan.layers import Compression, EntryType, Layer, LayerEntry, LayerLimits

_log = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
"""Bumped whenever what ``Layer`` holds, or how it is written here, changes."""


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


class MemoryLayerCache:
    """A dictionary: for tests and for one process that indexes many images."""

    def __init__(self) -> None:
        self._layers: dict[tuple[Digest, str], Layer] = {}

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

    def _path(self, digest: Digest, analyzers: str) -> Path:
        return self._root / analyzers / digest.algorithm / f"{digest.hex}.json"

    def get(self, digest: Digest, analyzers: str) -> Layer | None:
        """The stored layer, or ``None`` when there is none or it cannot be used (logged)."""
        path = self._path(digest, analyzers)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            _log.warning("layer cache: cannot read %s (%s); reading the layer instead", path, e.strerror)
            return None
        try:
            return decode_layer(json.loads(raw))
        except (ValueError, TypeError, KeyError, IndexError, binascii.Error, DigestError) as e:
            _log.warning("layer cache: %s is unusable (%s); reading the layer instead", path, e)
            return None

    def put(self, digest: Digest, analyzers: str, layer: Layer) -> None:
        """Write the entry atomically: temporary file, fsync, rename. A failure to write is only logged."""
        path = self._path(digest, analyzers)
        data = json.dumps(encode_layer(layer), separators=(",", ":")).encode()
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
