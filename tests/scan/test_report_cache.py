"""The report cache: a second analysis of an image is its stored bill of materials, equal to a fresh one.

Equality is checked field by field against an analysis without any cache; "no analyzer ran" is observed by
an analyzer that counts its calls, and "no layer read" by the counting source of ``test_cache``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from scan.shared import APP_LAYER, OCI_ALPINE_APP, OCI_ALPINE_APP_TAG
from scan.test_cache import CountingSource
from trustyard.scan.analyzers import ANALYZERS, Analyzer, ApkAnalyzer
from trustyard.scan.cache import DirectoryLayerCache, MemoryLayerCache, ReportCache
from trustyard.scan.indexer import Indexer, IndexReport
from trustyard.scan.model import Component
from trustyard.scan.sources import open_source

IMAGE = f"oci:{OCI_ALPINE_APP}:{OCI_ALPINE_APP_TAG}"


class CountingApk:
    """The apk analyzer, counting ``analyze`` calls; ``version`` settable to stand for a new release of it."""

    name = "apk"

    def __init__(self, version: int = ApkAnalyzer.version) -> None:
        self.calls = 0
        self.version = version
        self._inner = ApkAnalyzer()

    def wants(self, path: str) -> bool:
        """What the apk analyzer wants."""
        return self._inner.wants(path)

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """Count, then analyze."""
        self.calls += 1
        return self._inner.analyze(files)


def analysers(apk: CountingApk) -> list[Analyzer]:
    """The default set with ``apk`` in place of the apk analyzer."""
    return [apk if a.name == "apk" else a for a in ANALYZERS]


def run(indexer: Indexer) -> tuple[IndexReport, int]:
    """Index the shared OCI image; the report and how many layers were read."""
    source = CountingSource(open_source(IMAGE))
    try:
        return indexer.index(source), source.reads
    finally:
        source.close()


def same(a: IndexReport, b: IndexReport) -> None:
    """Two reports describe the same image identically (the ``cached`` flags aside)."""
    assert a.source == b.source
    assert a.manifest_digest == b.manifest_digest
    assert a.components == b.components
    assert a.files == b.files
    assert a.warnings == b.warnings
    assert [(s.index, s.digest, s.compressed_size, s.size, s.entries, s.whiteouts, s.components) for s in a.layers] == [
        (s.index, s.digest, s.compressed_size, s.size, s.entries, s.whiteouts, s.components) for s in b.layers
    ]


def test_a_cached_report_equals_a_fresh_analysis(tmp_path: Path) -> None:
    fresh, _ = run(Indexer())
    apk = CountingApk()
    cold, cold_reads = run(Indexer(analyzers=analysers(apk), cache=DirectoryLayerCache(tmp_path)))
    assert cold_reads == 3
    assert apk.calls > 0
    assert len(list((tmp_path / "reports").rglob("*.json"))) == 1
    apk.calls = 0
    warm, warm_reads = run(Indexer(analyzers=analysers(apk), cache=DirectoryLayerCache(tmp_path)))
    assert (warm_reads, apk.calls) == (0, 0)
    assert all(s.cached for s in warm.layers)
    assert len(fresh.components) > 20
    assert any(c.files for c in warm.components)
    same(warm, fresh)
    same(cold, fresh)


def test_a_new_analyzer_version_misses(tmp_path: Path) -> None:
    run(Indexer(analyzers=analysers(CountingApk()), cache=DirectoryLayerCache(tmp_path)))
    newer = CountingApk(version=ApkAnalyzer.version + 1)
    report, reads = run(Indexer(analyzers=analysers(newer), cache=DirectoryLayerCache(tmp_path)))
    assert reads == 3
    assert newer.calls > 0
    assert len(list((tmp_path / "reports").rglob("*.json"))) == 2
    same(report, run(Indexer())[0])


def test_a_damaged_report_is_a_miss(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fresh, _ = run(Indexer(cache=DirectoryLayerCache(tmp_path)))
    (entry,) = (tmp_path / "reports").rglob("*.json")
    document = json.loads(entry.read_text())
    document["files"][1][0] = "no such entry type"  # the first file's type
    entry.write_text(json.dumps(document))
    apk = CountingApk()
    again, reads = run(Indexer(analyzers=analysers(apk), cache=DirectoryLayerCache(tmp_path)))
    assert "unusable" in caplog.text
    assert reads == 0  # the layers were still cached
    assert apk.calls > 0
    same(again, fresh)


def test_a_report_for_other_layers_is_not_used() -> None:
    cache = MemoryLayerCache()
    fresh, _ = run(Indexer(cache=cache))
    assert isinstance(cache, ReportCache)
    ((key, fp),) = cache._reports  # the only entry: the test edits it in place
    document = cache.get_report(key, fp)
    assert document is not None
    document["layer_keys"] = document["layer_keys"][:1]
    document["components"] = []
    cache.put_report(key, fp, document)
    apk = CountingApk()
    again, _ = run(Indexer(analyzers=analysers(apk), cache=cache))
    assert apk.calls > 0
    same(again, fresh)


def test_a_root_file_system_is_not_kept(tmp_path: Path) -> None:
    source = open_source(f"rootfs:{APP_LAYER}")
    try:
        Indexer(cache=DirectoryLayerCache(tmp_path)).index(source)
    finally:
        source.close()
    assert not (tmp_path / "reports").exists()
