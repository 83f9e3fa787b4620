"""Repository names, tags and the digest shape of references (distribution-spec v1.1 "Pulling manifests").

Named case tables for the grammar, then hypothesis: names built from the grammar are accepted, and any
name containing a character outside ``[a-z0-9._/-]`` (or breaking the separator rules) is refused.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustyard.oci.reference import (
    MAX_NAME_LENGTH,
    InvalidReferenceError,
    is_digest,
    is_tag,
    validate_name,
    validate_tag,
)

# The spec's own regular expressions, written out independently of the module under test.
SPEC_NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
SPEC_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")

VALID_NAMES = {
    "single-char": "a",
    "digit": "0",
    "two-components": "library/ubuntu",
    "deep": "a/b/c/d/e/f",
    "dot": "a.b",
    "underscore": "a_b",
    "double-underscore": "a__b",
    "dash": "a-b",
    "many-dashes": "a---b",
    "mixed": "my.app_v2--x/sub__c.d",
    "max-length": "a" * MAX_NAME_LENGTH,
}

INVALID_NAMES = {
    "empty": "",
    "upper": "Ubuntu",
    "upper-second-component": "library/Ubuntu",
    "dot-dot": "..",
    "dot": ".",
    "dot-dot-component": "a/../b",
    "dot-component": "a/./b",
    "double-dot-inside": "a..b",
    "triple-underscore": "a___b",
    "leading-separator": "-a",
    "trailing-separator": "a_",
    "leading-slash": "/a",
    "trailing-slash": "a/",
    "double-slash": "a//b",
    "space": "a b",
    "tab": "a\tb",
    "trailing-newline": "a\n",
    "newline-component": "a/b\n",
    "leading-newline": "\na",
    "nul": "a\x00",
    "backslash": "a\\b",
    "colon": "a:b",
    "at": "a@b",
    "percent": "a%2e",
    "non-ascii": "café",
    "fullwidth-digit": "a１",
    "too-long": "a" * (MAX_NAME_LENGTH + 1),
}


@pytest.mark.parametrize("name", VALID_NAMES.values(), ids=VALID_NAMES.keys())
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", INVALID_NAMES.values(), ids=INVALID_NAMES.keys())
def test_invalid_names(name: str) -> None:
    with pytest.raises(InvalidReferenceError):
        validate_name(name)


VALID_TAGS = {
    "latest": "latest",
    "semver": "1.2.3",
    "upper": "Stable",
    "leading-underscore": "_internal",
    "leading-digit": "0",
    "dots-dashes": "v1.0-rc.1_build-2",
    "referrers-tag": "sha256-" + "a" * 64,
    "max-length": "a" * 128,
}

INVALID_TAGS = {
    "empty": "",
    "leading-dot": ".hidden",
    "leading-dash": "-x",
    "too-long": "a" * 129,
    "colon": "a:b",
    "slash": "a/b",
    "space": "a b",
    "trailing-newline": "latest\n",
    "plus": "1.0+build",
    "at": "a@b",
    "non-ascii": "tä",
}


@pytest.mark.parametrize("tag", VALID_TAGS.values(), ids=VALID_TAGS.keys())
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag
    assert is_tag(tag)
    assert not is_digest(tag)


@pytest.mark.parametrize("tag", INVALID_TAGS.values(), ids=INVALID_TAGS.keys())
def test_invalid_tags(tag: str) -> None:
    assert not is_tag(tag)
    with pytest.raises(InvalidReferenceError):
        validate_tag(tag)


@pytest.mark.parametrize(
    ("reference", "digest_shaped"),
    [
        ("sha256:" + "a" * 64, True),
        ("sha512:" + "a" * 128, True),
        ("sha256:short", True),  # the shape of a digest; Digest.parse decides validity
        ("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564=", True),
        ("latest", False),
        ("sha256", False),
        (":abc", False),
        ("sha256:", False),
        ("SHA256:abc", False),
        ("sha256:abc\n", False),
        ("sha256:ab/cd", False),
    ],
)
def test_is_digest_recognises_the_digest_shape(reference: str, digest_shaped: bool) -> None:
    assert is_digest(reference) is digest_shaped


def test_invalid_name_message_is_bounded() -> None:
    with pytest.raises(InvalidReferenceError) as info:
        validate_name("X" * 10_000)
    assert len(info.value.message) < 200


# -- properties -------------------------------------------------------------------------------------------------

alnum = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
separator = st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def components(draw: st.DrawFn) -> str:
    parts = [draw(alnum)]
    for _ in range(draw(st.integers(0, 3))):
        parts += [draw(separator), draw(alnum)]
    return "".join(parts)


@st.composite
def grammar_names(draw: st.DrawFn) -> str:
    return "/".join(draw(st.lists(components(), min_size=1, max_size=5)))


@given(grammar_names())
def test_names_from_the_grammar_are_accepted(name: str) -> None:
    assert validate_name(name) == name


@given(st.text(max_size=80))
def test_arbitrary_text_is_a_name_exactly_when_the_spec_regex_matches(text: str) -> None:
    expected = SPEC_NAME.fullmatch(text) is not None and len(text) <= MAX_NAME_LENGTH
    if expected:
        assert validate_name(text) == text
    else:
        with pytest.raises(InvalidReferenceError):
            validate_name(text)


@given(grammar_names(), st.sampled_from(["\n", "..", "/", "A", " ", "%", "\x00", "___"]), st.booleans())
def test_junk_around_a_valid_name_is_refused(name: str, junk: str, before: bool) -> None:
    candidate = junk + name if before else name + junk
    with pytest.raises(InvalidReferenceError):
        validate_name(candidate)


@given(st.text(max_size=140))
def test_arbitrary_text_is_a_tag_exactly_when_the_spec_regex_matches(text: str) -> None:
    assert is_tag(text) is (SPEC_TAG.fullmatch(text) is not None)
