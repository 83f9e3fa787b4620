"""Digests (OCI image-spec descriptor.md "Digests"): parsing, the wire form, and the streaming hasher.

Case tables for what is accepted and refused, and hypothesis properties: every well-formed digest round
trips through ``str``; anything that is not exactly ``<sha256|sha512>:<lower hex of the right length>`` is
refused with ``DigestError``; hashing in any split equals hashing at once.
"""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from trustyard.oci.digest import Digest, DigestError, Hasher

HEX_LENGTH = {"sha256": 64, "sha512": 128}
EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize(
    ("text", "algorithm"),
    [
        (EMPTY_SHA256, "sha256"),
        ("sha256:" + "0" * 64, "sha256"),
        ("sha512:" + "f" * 128, "sha512"),
        ("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "sha256"),
    ],
)
def test_valid_digests_parse(text: str, algorithm: str) -> None:
    d = Digest.parse(text)
    assert d.algorithm == algorithm
    assert str(d) == text
    assert d.hex == text.partition(":")[2]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid digest"),
        ("sha256", "invalid digest"),
        ("sha256:", "invalid digest"),
        (":" + "a" * 64, "invalid digest"),
        ("SHA256:" + "a" * 64, "invalid digest"),
        ("sha256:" + "A" * 64, "invalid sha256 digest"),
        ("sha256:" + "a" * 63, "invalid sha256 digest"),
        ("sha256:" + "a" * 65, "invalid sha256 digest"),
        ("sha256:" + "g" * 64, "invalid sha256 digest"),
        ("sha512:" + "a" * 64, "invalid sha512 digest"),
        ("sha256:" + "a" * 63 + "\n", "invalid"),
        ("sha256:" + "a" * 64 + "\n", "invalid"),
        ("sha256:" + "a" * 62 + "\n\n", "invalid"),
        (" sha256:" + "a" * 64, "invalid digest"),
        ("sha256 :" + "a" * 64, "invalid digest"),
        ("sha256::" + "a" * 64, "invalid digest"),
        ("sha256:" + "a" * 32 + "/" + "a" * 31, "invalid digest"),
        ("sha256:../../../../etc/passwd", "invalid digest"),
        ("md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
        ("blake3:" + "a" * 64, "unsupported digest algorithm 'blake3'"),
        ("sha384:" + "a" * 96, "unsupported digest algorithm 'sha384'"),
        ("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", "unsupported digest algorithm"),
        ("sha256:" + "a" * 300, "invalid digest"),
    ],
)
def test_malformed_or_unsupported_digests_are_refused(text: str, reason: str) -> None:
    with pytest.raises(DigestError) as info:
        Digest.parse(text)
    assert reason in info.value.message


def test_of_hashes_bytes() -> None:
    assert str(Digest.of(b"")) == EMPTY_SHA256
    assert Digest.of(b"abc", "sha512") == Digest("sha512", hashlib.sha512(b"abc").hexdigest())


def test_digests_compare_and_hash_by_value() -> None:
    assert Digest.parse(EMPTY_SHA256) == Digest.of(b"")
    assert len({Digest.parse(EMPTY_SHA256), Digest.of(b"")}) == 1


def test_hasher_counts_and_hashes_incrementally() -> None:
    h = Hasher()
    assert h.size == 0
    assert h.digest() == Digest.of(b"")
    h.update(b"ab")
    h.update(bytearray(b"c"))
    h.update(memoryview(b"def"))
    assert h.size == 6
    assert h.digest() == Digest.of(b"abcdef")
    h.update(b"g")  # digest() does not finish the hasher
    assert h.digest() == Digest.of(b"abcdefg")


def test_hasher_sha512() -> None:
    h = Hasher("sha512")
    h.update(b"xyz")
    assert h.algorithm == "sha512"
    assert h.digest() == Digest.of(b"xyz", "sha512")


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "blake3", ""])
def test_hasher_refuses_unsupported_algorithms(algorithm: str) -> None:
    with pytest.raises(DigestError):
        Hasher(algorithm)


# -- properties -------------------------------------------------------------------------------------------------

algorithms = st.sampled_from(sorted(HEX_LENGTH))


@st.composite
def wire_digests(draw: st.DrawFn) -> str:
    algorithm = draw(algorithms)
    encoded = draw(st.text(alphabet="0123456789abcdef", min_size=HEX_LENGTH[algorithm], max_size=HEX_LENGTH[algorithm]))
    return f"{algorithm}:{encoded}"


def well_formed(text: str) -> bool:
    algorithm, sep, encoded = text.partition(":")
    return (
        sep == ":"
        and algorithm in HEX_LENGTH
        and len(encoded) == HEX_LENGTH[algorithm]
        and all(c in "0123456789abcdef" for c in encoded)
    )


@given(wire_digests())
def test_round_trip(text: str) -> None:
    d = Digest.parse(text)
    assert str(d) == text
    assert Digest.parse(str(d)) == d


@given(st.binary(max_size=512), algorithms)
def test_of_round_trips_through_the_wire_form(data: bytes, algorithm: str) -> None:
    d = Digest.of(data, algorithm)
    assert Digest.parse(str(d)) == d
    assert d.hex == hashlib.new(algorithm, data).hexdigest()


@given(st.text(max_size=200))
def test_arbitrary_text_parses_only_when_well_formed(text: str) -> None:
    if well_formed(text):
        assert str(Digest.parse(text)) == text
    else:
        with pytest.raises(DigestError):
            Digest.parse(text)


@given(wire_digests(), st.data())
def test_any_single_character_change_is_caught_or_stays_well_formed(text: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.sampled_from(string.printable + "Ä\x00"))
    mutated = text[:position] + replacement + text[position + 1 :]
    assume(mutated != text)
    if well_formed(mutated):
        assert str(Digest.parse(mutated)) == mutated
    else:
        with pytest.raises(DigestError):
            Digest.parse(mutated)


@given(wire_digests(), st.sampled_from(["\n", "\r", " ", "\t", "\x00", "/", ":"]), st.booleans())
def test_surrounding_junk_is_refused(text: str, junk: str, before: bool) -> None:
    with pytest.raises(DigestError):
        Digest.parse(junk + text if before else text + junk)


@given(st.lists(st.binary(max_size=64), max_size=20), algorithms)
def test_hasher_in_pieces_equals_hashing_at_once(pieces: list[bytes], algorithm: str) -> None:
    h = Hasher(algorithm)
    for piece in pieces:
        h.update(piece)
    whole = b"".join(pieces)
    assert h.digest() == Digest.of(whole, algorithm)
    assert h.size == len(whole)
