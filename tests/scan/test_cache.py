"""The layer-analysis cache: a second analysis of cached layers reads no layer and reports the same.

Layer reads are counted by wrapping a real source (the shared OCI layout), so "reads no layer" is observed,
not inferred. Also: the key includes the analyzer set, entries survive a round trip through JSON exactly,
and a damaged entry is a miss (the layer is read again), never an error.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from scan.shared import OCI_ALPINE_APP, OCI_ALPINE_APP_TAG
from trustyard.oci.digest import Digest
from trustyard.scan.analyzers import ANALYZERS, DpkgAnalyzer
from trustyard.scan.cache import DirectoryLayerCache, MemoryLayerCache, decode_layer, encode_layer
from trustyard.scan.indexer import Indexer, IndexReport
from trustyard.scan.layers import Layer, LayerLimits, Reduce, Wants
from trustyard.scan.sources import ImageSource, LayerRef, open_source


class CountingSource:
    """Delegates to a real source and counts ``read_layer`` calls."""

    def __init__(self, inner: ImageSource) -> None:
        self.inner = inner
        self.reads = 0

    @property
    def name(self) -> str:
        """The inner source's name."""
        return self.inner.name

    @property
    def manifest_digest(self) -> Digest | None:
        """The inner source's manifest digest."""
        return self.inner.manifest_digest

    def layers(self) -> Sequence[LayerRef]:
        """The inner source's layers."""
        return self.inner.layers()

    def read_layer(self, ref: LayerRef, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None) -> Layer:
        """Count, then read."""
        self.reads += 1
        return self.inner.read_layer(ref, wants=wants, limits=limits, reduce=reduce)

    def close(self) -> None:
        """Close the inner source."""
        self.inner.close()


def index_counting(indexer: Indexer) -> tuple[IndexReport, int]:
    """Index the shared OCI image; return the report and how many layers were read."""
    source = CountingSource(open_source(f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}"))
    try:
        return indexer.index(source), source.reads
    finally:
        source.close()


def comparable(report: IndexReport) -> tuple[object, ...]:
    """What two analyses of one image must agree on."""
    return (report.components, report.files, [(s.digest, s.components) for s in report.layers], report.warnings)


def test_second_analysis_reads_no_layer_and_reports_the_same(tmp_path: Path) -> None:
    cold, cold_reads = index_counting(Indexer(cache=DirectoryLayerCache(tmp_path / "cache")))
    assert cold_reads == 3
    assert not any(s.cached for s in cold.layers)
    warm, warm_reads = index_counting(Indexer(cache=DirectoryLayerCache(tmp_path / "cache")))
    assert warm_reads == 0
    assert all(s.cached for s in warm.layers)
    assert comparable(warm) == comparable(cold)
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 3 + 1  # the layers and the image's report


def test_another_analyzer_set_does_not_share_entries() -> None:
    cache = MemoryLayerCache()
    index_counting(Indexer(cache=cache))
    _, reads = index_counting(Indexer(analyzers=[DpkgAnalyzer()], cache=cache))
    assert reads == 3
    assert len(cache) == 6
    _, reads = index_counting(Indexer(analyzers=ANALYZERS, cache=cache))
    assert reads == 0


def test_a_damaged_entry_is_a_miss_and_is_rewritten(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "cache"
    cold, _ = index_counting(Indexer(cache=DirectoryLayerCache(root)))
    shutil.rmtree(root / "reports")  # without the image's report, the layer entries are what is read
    entries = sorted(root.rglob("*.json"))
    entries[0].write_text('{"format": 1, "entries": [["x"]]}')
    entries[1].write_bytes(b"\xff not json")
    warm, reads = index_counting(Indexer(cache=DirectoryLayerCache(root)))
    assert reads == 2
    assert comparable(warm) == comparable(cold)
    assert "unusable" in caplog.text
    _, reads = index_counting(Indexer(cache=DirectoryLayerCache(root)))
    assert reads == 0


def test_entries_round_trip_through_json_exactly() -> None:
    cache = MemoryLayerCache()
    index_counting(Indexer(cache=cache))
    source = open_source(f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}")
    try:
        indexer = Indexer()
        for ref in source.layers():
            layer = source.read_layer(ref, wants=indexer.wants, limits=LayerLimits())
            assert decode_layer(json.loads(json.dumps(encode_layer(layer)))) == layer
    finally:
        source.close()
