"""Alpine package versions, ordered as apk-tools orders them (``apk version -t``).

Grammar: ``number{.number}[letter]{_suffix[number]}[-rN]`` where suffix is one of the pre-release suffixes
``alpha beta pre rc`` (sorting before the bare version) or the post-release ones ``cvs svn git hg p``
(sorting after it): ``1.2.3_rc1 < 1.2.3 < 1.2.3_p1 < 1.2.3-r1``, and ``-r10 > -r9``.

The comparison walks both versions token by token (apk-tools' tokenizer: numbers, a letter, suffixes, their
numbers, the revision). While the tokens are of the same kind their values decide. When one version runs out
of tokens or the kinds differ, the version whose next token is a pre-release suffix is older; otherwise the
one that continues with a "lower" kind of token (another dotted number before a letter, before a suffix,
before a revision, before the end) is newer. A dotted number with leading zeros compares as a fraction, as
apk-tools does (``1.01 < 1.1``, ``1.001 < 1.01``).

Not supported: apk-tools 3's ``~hash`` commit suffix (absent from Alpine's secdb and installed databases we
read); such versions raise ``VersionError``.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Self

from trustyard.scan.versions.base import OrderedVersion, VersionError, check_text

SCHEME = "apk"

_PRE = ("alpha", "beta", "pre", "rc")
_POST = ("cvs", "svn", "git", "hg", "p")
_SUFFIX = re.compile(r"_(" + "|".join((*_PRE, *_POST)) + r")([0-9]*)")


class Kind(IntEnum):
    """Token kinds in apk-tools' order: a lower kind continuing a version makes it newer."""

    DIGIT = 1
    LETTER = 2
    SUFFIX = 3
    SUFFIX_NO = 4
    REVISION_NO = 5
    END = 6


Token = tuple[Kind, int]


def _tokens(text: str) -> tuple[Token, ...]:
    """Split a version into (kind, value) tokens, ending with END; ``VersionError`` on anything else."""
    out: list[Token] = []
    i, n = 0, len(text)
    prev: Kind | None = None  # kind of the previous token, to enforce apk's order of kinds

    def number(at: int) -> tuple[str, int]:
        j = at
        while j < n and text[j].isdigit():
            j += 1
        return text[at:j], j

    digits, i = number(0)
    if not digits:
        raise VersionError(SCHEME, text, "does not start with a number")
    out.append((Kind.DIGIT, int(digits)))
    prev = Kind.DIGIT
    while i < n:
        c = text[i]
        if c == "." and prev == Kind.DIGIT:
            digits, j = number(i + 1)
            if not digits:
                raise VersionError(SCHEME, text, "'.' not followed by a number")
            if digits[0] == "0":
                # leading zeros: a fraction. apk-tools emits minus the count of zeros beyond the first, then
                # reads the rest (from the last zero) as a number: 1.001 < 1.01 < 1.1, and 1.0 as 0, 0
                extra = len(digits) - len(digits.lstrip("0")) - 1
                out.append((Kind.DIGIT, -extra))
                out.append((Kind.DIGIT, int(digits[extra:])))
            else:
                out.append((Kind.DIGIT, int(digits)))
            i, prev = j, Kind.DIGIT
        elif c.islower() and prev == Kind.DIGIT:
            out.append((Kind.LETTER, ord(c)))
            i, prev = i + 1, Kind.LETTER
        elif c.isdigit() and prev == Kind.LETTER:
            digits, i = number(i)
            out.append((Kind.DIGIT, int(digits)))
            prev = Kind.DIGIT
        elif c == "_" and prev in (Kind.DIGIT, Kind.LETTER, Kind.SUFFIX_NO, Kind.SUFFIX):
            m = _SUFFIX.match(text, i)
            if m is None:
                raise VersionError(SCHEME, text, f"unknown suffix at {text[i:]!r}")
            name = m.group(1)
            value = _PRE.index(name) - len(_PRE) if name in _PRE else _POST.index(name)
            out.append((Kind.SUFFIX, value))
            if m.group(2):
                out.append((Kind.SUFFIX_NO, int(m.group(2))))
                prev = Kind.SUFFIX_NO
            else:
                prev = Kind.SUFFIX
            i = m.end()
        elif c == "-" and text.startswith("-r", i) and prev != Kind.REVISION_NO:
            digits, j = number(i + 2)
            if not digits:
                raise VersionError(SCHEME, text, "'-r' not followed by a number")
            out.append((Kind.REVISION_NO, int(digits)))
            i, prev = j, Kind.REVISION_NO
        else:
            raise VersionError(SCHEME, text, f"unexpected {c!r} at position {i}")
    out.append((Kind.END, 0))
    return tuple(out)


def _cmp_tokens(a: tuple[Token, ...], b: tuple[Token, ...]) -> int:
    i = 0
    while True:
        (ka, va), (kb, vb) = a[i], b[i]
        if ka != kb:
            break
        if va != vb:
            return -1 if va < vb else 1
        if ka == Kind.END:
            return 0
        i += 1
    # same so far, then different kinds: a pre-release suffix makes a version older, else the longer is newer
    if ka == Kind.SUFFIX and va < 0:
        return -1
    if kb == Kind.SUFFIX and vb < 0:
        return 1
    return -1 if ka > kb else 1


class ApkVersion(OrderedVersion):
    """A parsed Alpine version, ordered as apk-tools orders it."""

    __slots__ = ("_tokens", "text")

    def __init__(self, text: str) -> None:
        check_text(SCHEME, text)
        self.text = text
        self._tokens = _tokens(text)

    def _cmp(self, other: Self) -> int:
        return _cmp_tokens(self._tokens, other._tokens)

    def _hash_key(self) -> object:
        return self._tokens


def parse(version: str) -> ApkVersion:
    """Parse an Alpine version; ``VersionError`` if apk-tools would call it invalid."""
    return ApkVersion(version)


def compare(a: str, b: str) -> int:
    """``apk version -t a b`` as -1, 0 or 1."""
    return parse(a)._cmp(parse(b))
