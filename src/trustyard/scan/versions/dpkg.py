"""Debian package versions, ordered as ``dpkg --compare-versions`` orders them.

Grammar (deb-version(7)): ``[epoch:]upstream_version[-debian_revision]``. The epoch is a decimal number; the
revision is what follows the last hyphen; the upstream part may hold ``.+~-:`` (``-`` only with a revision,
``:`` only with an epoch). Comparison (deb-version(7), "Sorting algorithm"): epochs numerically, then the
upstream part and the revision each by alternating runs of non-digits (compared character by character,
where ``~`` sorts before everything, even the end of the string, and letters sort before other symbols) and
digits (compared numerically). An absent revision compares like ``""`` (which equals ``"0"``).

dpkg only warns about an upstream version that does not start with a digit; so do we (accept it). Used for
Debian and Ubuntu packages.
"""

from __future__ import annotations

import re
from typing import Self

from trustyard.scan.versions.base import OrderedVersion, VersionError, split_evr

SCHEME = "dpkg"

_UPSTREAM = re.compile(r"[A-Za-z0-9.+~:-]+")
_REVISION = re.compile(r"[A-Za-z0-9.+~]+")


def _order(c: str) -> int:
    """The weight of one non-digit character: ``~`` below the end of the string, letters below symbols."""
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _segments(part: str) -> tuple[tuple[str, int], ...]:
    """``part`` as (non-digit run, number) pairs: the units the sorting algorithm compares in turn."""
    pairs: list[tuple[str, int]] = []
    i, n = 0, len(part)
    while i < n:
        j = i
        while j < n and not part[j].isdigit():
            j += 1
        k = j
        while k < n and part[k].isdigit():
            k += 1
        pairs.append((part[i:j], int(part[j:k]) if k > j else 0))
        i = k
    return tuple(pairs)


def _cmp_text(a: str, b: str) -> int:
    """Non-digit runs: character weights in turn, the end of a run weighing 0 (so ``~`` < end < anything)."""
    for i in range(max(len(a), len(b))):
        wa = _order(a[i]) if i < len(a) else 0
        wb = _order(b[i]) if i < len(b) else 0
        if wa != wb:
            return -1 if wa < wb else 1
    return 0


def verrevcmp(a: str, b: str) -> int:
    """Compare two upstream versions (or two revisions) by deb-version(7)'s algorithm; -1, 0 or 1."""
    sa, sb = _segments(a), _segments(b)
    for i in range(max(len(sa), len(sb))):
        ta, na = sa[i] if i < len(sa) else ("", 0)
        tb, nb = sb[i] if i < len(sb) else ("", 0)
        c = _cmp_text(ta, tb)
        if c:
            return c
        if na != nb:
            return -1 if na < nb else 1
    return 0


def _normal(part: str) -> tuple[tuple[str, int], ...]:
    """``_segments`` without trailing ("", 0) pairs, which compare like the end: equal iff ``verrevcmp`` is 0."""
    segs = list(_segments(part))
    while segs and segs[-1] == ("", 0):
        segs.pop()
    return tuple(segs)


class DpkgVersion(OrderedVersion):
    """A parsed Debian version: epoch, upstream version and revision, ordered as dpkg orders them."""

    __slots__ = ("epoch", "revision", "text", "upstream")

    def __init__(self, text: str) -> None:
        epoch, upstream, revision = split_evr(SCHEME, text, release="revision")
        if not _UPSTREAM.fullmatch(upstream):
            raise VersionError(SCHEME, text, "invalid character in the upstream version")
        if revision and not _REVISION.fullmatch(revision):
            raise VersionError(SCHEME, text, "invalid character in the revision")
        self.text = text
        self.epoch = epoch
        self.upstream = upstream
        self.revision = revision

    def _cmp(self, other: Self) -> int:
        if self.epoch != other.epoch:
            return -1 if self.epoch < other.epoch else 1
        return verrevcmp(self.upstream, other.upstream) or verrevcmp(self.revision, other.revision)

    def _hash_key(self) -> object:
        return (self.epoch, _normal(self.upstream), _normal(self.revision))


def parse(version: str) -> DpkgVersion:
    """Parse a Debian version; ``VersionError`` if it breaks deb-version(7)'s grammar."""
    return DpkgVersion(version)


def compare(a: str, b: str) -> int:
    """``dpkg --compare-versions`` as -1, 0 or 1."""
    return parse(a)._cmp(parse(b))
