"""Index an image: stream each layer once, keep the merged view, run each analyzer when its files change.

After a layer is applied, every analyzer one of whose wanted paths the layer added, replaced or deleted is
run again over the files it wants as they now are in the image; the components of its last run are the
image's. A component keeps the layer of the run that first reported it (same ecosystem, name, version
and arch, reported without interruption since), so a package installed in the base layer names the base
layer even when an upper layer rewrites the database to add others. Running analyzers per layer is also
what gives a per-layer inventory.

Analyzers of large files (Go binaries, Java archives, ELF files for the binary classifiers) are
``Extractor``s: the walker keeps their summaries of a file, not the file, when only extractors want the path
(``reduce``; several summaries are packed into one value); otherwise the whole file is kept and each
extractor's ``extract`` runs on it just before ``analyze`` (``_inputs``).

A package database an analyzer cannot read is a warning in the report, not the end of the scan: the other
analyzers' results still stand. Layer and source errors end the scan (``ScanError``).

With a ``LayerCache``, a layer whose digest is known before it is read (every manifest-based source) is
looked up by that digest and the analyzer set's fingerprint first; a hit replays the cached ``Layer``
without touching the blob, a miss reads it and stores the result. A root file system has no digest until it
is read, so it is never cached. An ``IndexObserver`` hears when each layer starts and ends (the CLI's
progress bar).

A cache that also keeps reports (``ReportCache``) is asked first for the finished report of the whole image,
by manifest digest (or the chain of layer digests) and the same fingerprint: a hit skips the merged view and
every analyzer, which is what makes a second analysis of an image take milliseconds.

With a ``FileIndex`` (by default the SQLite file beside a directory cache), the files the image's package
databases list and whose bytes match their recorded digests are learnt as those packages' files, and the
files no package of the image owns are looked up in it (``scan/identify.py``): a copied or renamed file of
a package analysed before is reported as that package, on every analysis, cached or not.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Protocol

from trustyard.oci.digest import Digest
from trustyard.scan.analyzers import ANALYZERS, Analyzer, registry
from trustyard.scan.analyzers.base import Extractor
from trustyard.scan.analyzers.binary import summary_of
from trustyard.scan.cache import (
    UNREADABLE,
    DirectoryLayerCache,
    LayerCache,
    ReportCache,
    decode_report,
    encode_report,
    fingerprint,
)
from trustyard.scan.errors import PackageDatabaseError, ScanError
from trustyard.scan.identify import BINARY, identified, owned_paths, unowned_files, verified_files, without_owned
from trustyard.scan.identify_index import FILE_NAME as INDEX_FILE
from trustyard.scan.identify_index import FileIndex, SqliteFileIndex
from trustyard.scan.image import ImageFile, ImageView
from trustyard.scan.layers import Layer, LayerLimits
from trustyard.scan.model import Component
from trustyard.scan.sources.base import ImageSource, LayerRef

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LayerSummary:
    """One layer as indexed: its identity, sizes and what it contributed."""

    index: int
    digest: Digest | None
    compressed_size: int
    size: int
    entries: int
    whiteouts: int
    components: tuple[Component, ...]
    cached: bool = False


@dataclass(frozen=True, slots=True)
class IndexReport:
    """Everything known about an image after indexing: components and the file bill of materials."""

    source: str
    manifest_digest: Digest | None
    layers: tuple[LayerSummary, ...]
    components: tuple[Component, ...]
    files: tuple[ImageFile, ...]
    warnings: tuple[str, ...]


class IndexObserver(Protocol):
    """Told about each layer as the indexer works through them (a progress display)."""

    def layer_started(self, ref: LayerRef, total: int) -> None:
        """Layer ``ref`` (of ``total``) is about to be looked up or read."""
        ...

    def layer_done(self, summary: LayerSummary) -> None:
        """The layer has been applied and analysed."""
        ...


class _Quiet:
    def layer_started(self, ref: LayerRef, total: int) -> None:
        pass

    def layer_done(self, summary: LayerSummary) -> None:
        pass


_PACKED: Final = b"\0trustyard-summaries\0"


def pack(summaries: Mapping[str, bytes]) -> bytes:
    """Extractors' summaries of one file as one value: a marker, then ``NAME NUL LENGTH NUL BYTES`` repeated.

    The marker tells a pack from a whole file kept because a non-extractor wanted it too (a file that merely
    starts with the marker is not a valid pack and is then treated as a file: ``_inputs``).
    """
    return _PACKED + b"".join(b"%s\0%d\0%s" % (name.encode(), len(data), data) for name, data in summaries.items())


def is_packed(data: bytes) -> bool:
    """Whether ``data`` is what ``pack`` wrote (or a file pretending to be)."""
    return data.startswith(_PACKED)


def unpack(packed: bytes) -> dict[str, bytes]:
    """The summaries ``pack`` joined; ``PackageDatabaseError`` for bytes it did not write."""
    found: dict[str, bytes] = {}
    at = len(_PACKED)
    try:
        if not packed.startswith(_PACKED):
            raise ValueError("no marker")
        while at < len(packed):
            name_end = packed.index(b"\0", at)
            size_end = packed.index(b"\0", name_end + 1)
            size = int(packed[name_end + 1 : size_end])
            if size < 0 or size_end + 1 + size > len(packed):
                raise ValueError("summary runs past the end")
            found[packed[at:name_end].decode()] = packed[size_end + 1 : size_end + 1 + size]
            at = size_end + 1 + size
    except ValueError as e:
        raise PackageDatabaseError(f"unreadable packed summaries: {e}") from e
    return found


def _own_summary(extractor: Extractor, path: str, data: bytes) -> bytes | None:
    """``extractor``'s summary in a pack, or of a whole file (also one that merely starts like a pack)."""
    if is_packed(data):
        try:
            return unpack(data).get(extractor.name)
        except PackageDatabaseError:
            pass
    return extractor.extract(path, data)


class Indexer:
    """Runs a set of analyzers over an image source within the given layer limits, with an optional cache."""

    def __init__(
        self,
        *,
        analyzers: Iterable[Analyzer] = ANALYZERS,
        limits: LayerLimits | None = None,
        cache: LayerCache | None = None,
        file_index: FileIndex | None = None,
    ) -> None:
        self._analyzers = tuple(registry(analyzers).values())
        self._limits = limits or LayerLimits()
        self._cache = cache
        if file_index is None and isinstance(cache, DirectoryLayerCache):
            file_index = SqliteFileIndex(cache.root / INDEX_FILE)
        self._file_index = file_index
        # isinstance against a runtime-checkable Protocol inspects the class each time: asked once here, not
        # for every wanted file of every layer
        self._extractors = {a.name: a for a in self._analyzers if isinstance(a, Extractor)}
        self._fingerprint = fingerprint(((a.name, a.version) for a in self._analyzers), self._limits)

    def wants(self, path: str) -> bool:
        """Whether any analyzer wants the file at ``path``."""
        return any(a.wants(path) for a in self._analyzers)

    def _extractors_of(self, path: str) -> tuple[Extractor, ...] | None:
        """The extractors whose summaries are kept for ``path``: all that want it, if every one that does extracts."""
        wanting = [a for a in self._analyzers if a.wants(path)]
        extractors = tuple(self._extractors[a.name] for a in wanting if a.name in self._extractors)
        return extractors if wanting and len(extractors) == len(wanting) else None

    def reduce(self, path: str, data: bytes) -> bytes | None:
        """What the walker keeps of a wanted file: the summaries of the extractors when only extractors want it.

        The summaries are packed together under their extractors' names (a binary is wanted by the Go and the
        binary analyzers), so that whoever reads the value later, at this path or at a hard link to it, takes
        its own. A sole extractor's error on the file propagates (the walker makes it a warning of the layer);
        with several, the one that fails is left out of the pack with a logged warning, so that it does not
        cost the others their summaries.
        """
        extractors = self._extractors_of(path)
        if extractors is None:
            return data
        if len(extractors) == 1:
            summary = extractors[0].extract(path, data)
            return None if summary is None else pack({extractors[0].name: summary})
        kept: dict[str, bytes] = {}
        for extractor in extractors:
            try:
                summary = extractor.extract(path, data)
            except ScanError as e:
                _log.warning("%s: %s: %s", path, extractor.name, e.message)
                continue
            if summary is not None:
                kept[extractor.name] = summary
        return pack(kept) if kept else None

    def _layer(self, source: ImageSource, ref: LayerRef) -> tuple[Layer, bool]:
        """The layer from the cache when its digest is known and cached, else read (and then cached)."""
        key = ref.digest or ref.diff_id
        if self._cache is not None and key is not None:
            hit = self._cache.get(key, self._fingerprint)
            if hit is not None:
                return hit, True
        layer = source.read_layer(ref, wants=self.wants, limits=self._limits, reduce=self.reduce)
        if self._cache is not None and key is not None:
            self._cache.put(key, self._fingerprint, layer)
        return layer, False

    def index(self, source: ImageSource, observer: IndexObserver | None = None) -> IndexReport:
        """Index every layer of ``source`` in order; the caller still owns (and closes) the source."""
        observer = observer or _Quiet()
        refs = source.layers()
        keys = [str(k) for r in refs if (k := r.digest or r.diff_id) is not None]
        reports = self._cache if isinstance(self._cache, ReportCache) and len(keys) == len(refs) else None
        key = source.manifest_digest or Digest.of("\n".join(keys).encode())
        if reports is not None:
            hit = self._cached_report(reports, key, source.name, keys)
            if hit is not None:
                for ref, summary in zip(refs, hit[0].layers, strict=True):
                    observer.layer_started(ref, len(refs))
                    observer.layer_done(summary)
                return self._identify(*hit)
        report, unowned = self._index_layers(source, refs, observer)
        if reports is not None:
            reports.put_report(key, self._fingerprint, encode_report(report, keys, unowned))
        return self._identify(report, unowned)

    def _identify(self, report: IndexReport, unowned: tuple[int, ...]) -> IndexReport:
        """``report`` with the files no package owns that the file-hash index knows reported as their packages.

        Done after the report cache, on every analysis: the index learns from every image analysed, so the
        same image can be identified further tomorrow. A package the image's own databases report already is
        not reported twice (its copy is that component's business); either way a signature finding for a file
        identified by hash gives way to the package.
        """
        if self._file_index is None or not unowned:
            return report
        everything = identified([report.files[i] for i in unowned], self._file_index)
        if not everything:
            return report
        reported = {c.key for c in report.components}
        found = [c for c in everything if c.key not in reported]
        by_hash = {p for c in everything for p in c.paths}
        components = (*without_owned(report.components, by_hash), *found)
        layers = tuple(
            replace(s, components=(*without_owned(s.components, by_hash), *(c for c in found if c.layer == s.digest)))
            for s in report.layers
        )
        return replace(report, components=components, layers=layers)

    def _cached_report(
        self, reports: ReportCache, key: Digest, name: str, keys: list[str]
    ) -> tuple[IndexReport, tuple[int, ...]] | None:
        """The stored report of the image when there is a usable one for exactly these layers."""
        # Tens of thousands of small objects are made here and none of them is garbage: a collection pass in
        # the middle (several are triggered) only costs time, so collection waits until they are all made.
        collecting = gc.isenabled()
        gc.disable()
        try:
            document = reports.get_report(key, self._fingerprint)
            decoded = None if document is None else decode_report(document, name, keys)
        except UNREADABLE as e:
            _log.warning("report cache: the entry for %s is unusable (%s); indexing the layers instead", key, e)
            return None
        finally:
            if collecting:
                gc.enable()
        return decoded

    def _index_layers(
        self, source: ImageSource, refs: Sequence[LayerRef], observer: IndexObserver
    ) -> tuple[IndexReport, tuple[int, ...]]:
        """The report from the layers themselves, and the positions of its files that no package owns."""
        view = ImageView()
        current: dict[str, tuple[Component, ...]] = {a.name: () for a in self._analyzers}
        summaries: list[LayerSummary] = []
        warnings: list[str] = []
        for ref in refs:
            observer.layer_started(ref, len(refs))
            layer, cached = self._layer(source, ref)
            layer_id = ref.digest or layer.digest
            changed = view.apply(layer, layer_id)
            warnings.extend(f"layer {ref.index}: {w}" for w in layer.warnings)
            added: list[Component] = []
            for analyzer in self._analyzers:
                if not any(analyzer.wants(p) for p in changed):
                    continue
                found = self._run(analyzer, view, warnings, ref.index)
                if found is None:
                    continue
                previous = {c.key: c.layer for c in current[analyzer.name]}
                components = tuple(replace(c, layer=previous.get(c.key, layer_id)) for c in found)
                added += [c for c in components if c.key not in previous]
                current[analyzer.name] = components
            summary = LayerSummary(
                index=ref.index,
                digest=layer_id,
                compressed_size=layer.compressed_size,
                size=layer.size,
                entries=len(layer.entries),
                whiteouts=len(layer.whiteouts) + len(layer.opaque_dirs),
                components=tuple(added),
                cached=cached,
            )
            summaries.append(summary)
            observer.layer_done(summary)
        components = tuple(c for a in self._analyzers for c in current[a.name])
        if self._file_index is not None:
            self._file_index.learn(verified_files(components, view, self._binary_digests(view)))
        owned = owned_paths(components, view)
        files = tuple(view.regular_files())
        report = IndexReport(
            source=source.name,
            manifest_digest=source.manifest_digest,
            layers=tuple(replace(s, components=without_owned(s.components, owned)) for s in summaries),
            components=without_owned(components, owned),
            files=files,
            warnings=tuple(warnings),
        )
        return report, unowned_files(files, owned)

    def _binary_digests(self, view: ImageView) -> dict[str, dict[str, str]]:
        """The MD5 and SHA-1 the binary analyzer kept of each ELF file (what dpkg and apk records are checked by)."""
        binary = next((a for a in self._analyzers if a.name == BINARY), None)
        if binary is None:
            return {}
        digests: dict[str, dict[str, str]] = {}
        for path, summary in self._inputs(binary, view).items():
            try:
                data = summary_of(path, summary)
            except ScanError:
                continue  # reported when the analyzer ran; an unreadable summary only verifies nothing
            digests[path] = {"md5": data["md5"], "sha1": data["sha1"]}
        return digests

    def _inputs(self, analyzer: Analyzer, view: ImageView) -> Mapping[str, bytes]:
        """The files ``analyzer`` wants as they are now; for an extractor, their summaries."""
        files = {f.path: data for f, data in view.captured() if analyzer.wants(f.path)}
        extractor = self._extractors.get(analyzer.name)
        if extractor is None:
            return files
        summaries: dict[str, bytes] = {}
        for path, data in files.items():
            summary = _own_summary(extractor, path, data)
            if summary is not None:
                summaries[path] = summary
        return summaries

    def _run(self, analyzer: Analyzer, view: ImageView, warnings: list[str], index: int) -> Sequence[Component] | None:
        try:
            return analyzer.analyze(self._inputs(analyzer, view))
        except ScanError as e:
            warnings.append(f"layer {index}: {analyzer.name}: {e.message}; its previous result is kept")
            return None
