"""Index an image: stream each layer once, keep the merged view, run each analyzer when its files change.

After a layer is applied, every analyzer one of whose wanted paths the layer added, replaced or deleted is
run again over the files it wants as they now are in the image; the components of its last run are the
image's. A component keeps the layer of the run that first reported it (same ecosystem, name, version
and arch, reported without interruption since), so a package installed in the base layer names the base
layer even when an upper layer rewrites the database to add others. Running analyzers per layer is also
what gives a per-layer inventory.

A package database an analyzer cannot read is a warning in the report, not the end of the scan: the other
analyzers' results still stand. Layer and source errors end the scan (``ScanError``).

Not yet here: the cache of layer analyses by digest and analyzer versions, and analyzers that need to read
large files as they stream (binaries, archives) rather than from captured contents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from trustyard.oci.digest import Digest
from trustyard.scan.analyzers import ANALYZERS, Analyzer, registry
from trustyard.scan.errors import ScanError
from trustyard.scan.image import ImageFile, ImageView
from trustyard.scan.layers import LayerLimits
from trustyard.scan.model import Component
from trustyard.scan.sources.base import ImageSource


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


@dataclass(frozen=True, slots=True)
class IndexReport:
    """Everything known about an image after indexing: components and the file bill of materials."""

    source: str
    manifest_digest: Digest | None
    layers: tuple[LayerSummary, ...]
    components: tuple[Component, ...]
    files: tuple[ImageFile, ...]
    warnings: tuple[str, ...]


class Indexer:
    """Runs a set of analyzers over an image source within the given layer limits."""

    def __init__(self, *, analyzers: Iterable[Analyzer] = ANALYZERS, limits: LayerLimits | None = None) -> None:
        self._analyzers = tuple(registry(analyzers).values())
        self._limits = limits or LayerLimits()

    def wants(self, path: str) -> bool:
        """Whether any analyzer wants the file at ``path``."""
        return any(a.wants(path) for a in self._analyzers)

    def index(self, source: ImageSource) -> IndexReport:
        """Index every layer of ``source`` in order; the caller still owns (and closes) the source."""
        view = ImageView()
        current: dict[str, tuple[Component, ...]] = {a.name: () for a in self._analyzers}
        summaries: list[LayerSummary] = []
        warnings: list[str] = []
        for ref in source.layers():
            layer = source.read_layer(ref, wants=self.wants, limits=self._limits)
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
            summaries.append(
                LayerSummary(
                    index=ref.index,
                    digest=layer_id,
                    compressed_size=layer.compressed_size,
                    size=layer.size,
                    entries=len(layer.entries),
                    whiteouts=len(layer.whiteouts) + len(layer.opaque_dirs),
                    components=tuple(added),
                )
            )
        return IndexReport(
            source=source.name,
            manifest_digest=source.manifest_digest,
            layers=tuple(summaries),
            components=tuple(c for a in self._analyzers for c in current[a.name]),
            files=tuple(view.regular_files()),
            warnings=tuple(warnings),
        )

    @staticmethod
    def _run(analyzer: Analyzer, view: ImageView, warnings: list[str], index: int) -> Sequence[Component] | None:
        files: Mapping[str, bytes] = {f.path: data for f, data in view.captured() if analyzer.wants(f.path)}
        try:
            return analyzer.analyze(files)
        except ScanError as e:
            warnings.append(f"layer {index}: {analyzer.name}: {e.message}; its previous result is kept")
            return None
