"""Property tests of the untrusted-input edge: metadata parsing and validation only ever raise ``TrustError``.

Random bytes, and valid uploads with one value anywhere in them replaced by arbitrary JSON, must produce either
an accepted update or one of the protocol's errors, never another exception (which the HTTP edge would turn
into a 500 and the client into "server unavailable"). Canonical JSON round-trips and is key-order independent.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustyard.trust.api import parse_upload
from trustyard.trust.errors import TrustError
from trustyard.trust.keys import canonical
from trustyard.trust.metadata import Root, Snapshot, Targets, Timestamp, parse_metadata
from trustyard.trust.validation import RepositoryState, validate_update

from .simulator import SimKey, SimRepo, now

GUN = "example.com/app"
_TIMESTAMP_KEY = SimKey.ed25519()
_REPO = SimRepo(GUN, _TIMESTAMP_KEY)
_REPO.add_target("targets", "v1", b"hello\n")
_FILES = _REPO.first_publish()
_HELD = {"timestamp": frozenset({_TIMESTAMP_KEY.key_id}), "snapshot": frozenset()}

# no control characters: OLPC canonical JSON (what notary signs) escapes only '"' and '\\', so a string
# with a raw control character is canonical-encodable but not JSON any more
_text = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=20)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)


@given(st.binary(max_size=300), st.sampled_from([Root, Targets, Snapshot, Timestamp]))
def test_random_bytes_are_malformed_never_a_crash(data: bytes, kind: Any) -> None:
    role = {Root: "root", Targets: "targets", Snapshot: "snapshot", Timestamp: "timestamp"}[kind]
    with contextlib.suppress(TrustError):
        parse_metadata(role, data, kind)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


def _replace(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy: Any = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[head] = _replace(doc[head], rest, new)
    return copy


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(sorted(_FILES)), st.data(), json_values)
def test_mutated_uploads_are_refused_with_protocol_errors(role: str, data: st.DataObject, value: Any) -> None:
    doc = json.loads(_FILES[role])
    path = data.draw(st.sampled_from(_paths(doc)))
    files = dict(_FILES)
    files[role] = json.dumps(_replace(doc, path, value), separators=(",", ":")).encode()
    with contextlib.suppress(TrustError):
        validate_update(GUN, files, RepositoryState(), held_keys=_HELD, now=now())


@given(json_values)
def test_canonical_json_round_trips_and_ignores_key_order(value: Any) -> None:
    encoded = canonical(value)
    assert json.loads(encoded) == value
    if isinstance(value, dict):
        assert canonical(dict(reversed(list(value.items())))) == encoded


@given(st.binary(max_size=400), st.text(max_size=30))
def test_random_multipart_bodies_are_refused_with_protocol_errors(body: bytes, boundary: str) -> None:
    content_type = f"multipart/form-data; boundary={boundary or 'b'}"
    for data in (body, b"--b\r\n" + body, b'--b\r\nContent-Disposition: form-data; name="files"; filename=' + body):
        with contextlib.suppress(TrustError):
            parse_upload(content_type, data)
