"""The bytes signatures are checked over: the fast canonical path of ``parse_metadata`` must give exactly the
OLPC canonical JSON securesystemslib gives (notary's canonical encoder), for any JSON document, including
strings with quotes, backslashes and control characters, non-ASCII text and numbers that are not integers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustyard.trust.errors import MalformedJSONError
from trustyard.trust.keys import canonical
from trustyard.trust.metadata import Timestamp, parse_metadata

_any_text = st.text(max_size=12)  # control characters, quotes, backslashes and surrogates included
_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _any_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_any_text, children, max_size=3),
    max_leaves=10,
)
_SIGNED = {
    "_type": "Timestamp",
    "expires": "2030-01-01T00:00:00Z",
    "meta": {"snapshot": {"hashes": {"sha256": "A" * 43 + "="}, "length": 1}},
    "version": 1,
}


def _raw(signed: dict[str, Any]) -> bytes:
    return json.dumps({"signed": signed, "signatures": []}).encode()


@settings(max_examples=300, deadline=None)
@given(extra=_values)
def test_signed_bytes_are_the_canonical_form(extra: Any) -> None:
    signed = {**_SIGNED, "custom": extra}
    try:
        expected = canonical(signed)
    except (UnicodeEncodeError, ValueError):  # a lone surrogate has no UTF-8 form: malformed either way
        with pytest.raises(MalformedJSONError):
            parse_metadata("timestamp", _raw(signed), Timestamp)
        return
    assert parse_metadata("timestamp", _raw(signed), Timestamp).signed_bytes == expected


@pytest.mark.parametrize("number", ["1.5", "1e3", "NaN", "-Infinity"])
def test_a_signed_float_is_malformed_as_before(number: str) -> None:
    raw = _raw(_SIGNED).replace(b'"version": 1', b'"version": 1, "x": ' + number.encode())
    with pytest.raises(MalformedJSONError, match="cannot be canonicalised"):
        parse_metadata("timestamp", raw, Timestamp)


def test_escapes_are_left_to_the_canonical_encoder() -> None:
    signed = {**_SIGNED, "custom": 'quote " backslash \\ newline \n tab \t bell \x07 é'}
    assert parse_metadata("timestamp", _raw(signed), Timestamp).signed_bytes == canonical(signed)
