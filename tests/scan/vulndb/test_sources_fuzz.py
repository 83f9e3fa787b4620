"""Fuzzing the advisory sources: real records with parts replaced by arbitrary JSON either parse or raise
``SourceFormatError``, never another exception (advisory data is untrusted input, whoever published it).
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scan.vulndb.shared import ALPINE, DEBIAN_EXCERPT, OSV, needs_shared
from trustyard.scan.vulndb.errors import SourceFormatError
from trustyard.scan.vulndb.ranges import evaluate
from trustyard.scan.vulndb.sources import Document, Source, read_advisories
from trustyard.scan.vulndb.sources.alpine import AlpineSecdbSource
from trustyard.scan.vulndb.sources.debian import DebianTrackerSource
from trustyard.scan.vulndb.sources.osv import OsvSource

pytestmark = needs_shared

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a node of a JSON value."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _sample(source: str) -> Any:
    if source == "osv":
        with zipfile.ZipFile(OSV / "Go" / "all.zip") as zf:
            return json.loads(zf.read("GO-2023-1751.json"))
    if source == "alpine":
        data = json.loads((ALPINE / "v3.10-main.json").read_text())
        return {**data, "packages": data["packages"][:3]}
    return json.loads(DEBIAN_EXCERPT.read_text())


SOURCES: dict[str, Source] = {"osv": OsvSource(), "alpine": AlpineSecdbSource(), "debian": DebianTrackerSource()}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_mutated_records_parse_or_raise_source_format_error(name: str) -> None:
    sample = _sample(name)
    paths = _paths(sample)
    source = SOURCES[name]

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sampled_from(paths), _json)
    def check(path: tuple[Any, ...], new: Any) -> None:
        data = _replace(sample, path, new)
        raw = json.dumps(data).encode()
        with contextlib.suppress(SourceFormatError):
            for advisory in read_advisories(source, Document(origin="fuzz.json", raw=raw, data=data)):
                for affected in advisory.affected:
                    evaluate(affected, "1.0.0")  # whatever parsed must also be evaluable without surprises

    check()
