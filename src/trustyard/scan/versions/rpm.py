"""RPM package versions, ordered as rpm's ``rpmvercmp`` and ``rpmVersionCompare`` order them.

Grammar: ``[epoch:]version[-release]``; the release is what follows the last hyphen (rpm's own EVR split).
Each of version and release is compared by rpmvercmp: separators (anything not a letter, digit, ``~`` or ``^``)
only split; runs of digits compare numerically and beat runs of letters; runs of letters compare as bytes;
``~`` sorts before everything, even the end (``1.0~rc1 < 1.0``); ``^`` sorts after the end but before any
further segment (``1.0 < 1.0^git1 < 1.0.1``). A missing epoch is 0; a missing release compares as ``""``
(below any release), which keeps the order total (rpm's dependency solver instead ignores it, which is not
an order). Used for Red Hat family, SUSE, Mariner/Azure Linux packages.
"""

from __future__ import annotations

import re
from typing import Self

from trustyard.scan.versions.base import OrderedVersion, VersionError, split_evr

SCHEME = "rpm"

_TOKEN = re.compile(r"[0-9]+|[A-Za-z]+|~|\^")
_ALLOWED = re.compile(r"[A-Za-z0-9._+~^]+")

Token = int | str


def _tokens(part: str) -> tuple[Token, ...]:
    """Digit runs as ints, letter runs as str, ``~`` and ``^`` as themselves; separators dropped."""
    return tuple(int(t) if t.isdigit() else t for t in _TOKEN.findall(part))


def rpmvercmp(a: str, b: str) -> int:
    """Compare two version (or release) strings as rpm does; -1, 0 or 1."""
    if a == b:
        return 0
    return _cmp_tokens(_tokens(a), _tokens(b))


def _cmp_tokens(ta: tuple[Token, ...], tb: tuple[Token, ...]) -> int:
    i = 0
    while True:
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        i += 1
        if x == "~" or y == "~":
            if x != "~":
                return 1
            if y != "~":
                return -1
            continue
        if x == "^" or y == "^":
            if x is None:
                return -1
            if y is None:
                return 1
            if x != "^":
                return 1
            if y != "^":
                return -1
            continue
        if x is None or y is None:
            if x is None and y is None:
                return 0
            return -1 if x is None else 1
        if isinstance(x, int) != isinstance(y, int):
            return 1 if isinstance(x, int) else -1
        if x != y:
            return -1 if x < y else 1  # type: ignore[operator]


class RpmVersion(OrderedVersion):
    """A parsed RPM EVR: epoch, version and release, ordered as rpm orders them."""

    __slots__ = ("_rt", "_vt", "epoch", "release", "text", "version")

    def __init__(self, text: str) -> None:
        epoch, version, release = split_evr(SCHEME, text, release="release")
        for label, part in (("version", version), ("release", release)):
            if part and not _ALLOWED.fullmatch(part):
                raise VersionError(SCHEME, text, f"invalid character in the {label}")
        self.text = text
        self.epoch = epoch
        self.version = version
        self.release = release
        self._vt = _tokens(version)
        self._rt = _tokens(release)

    def _cmp(self, other: Self) -> int:
        if self.epoch != other.epoch:
            return -1 if self.epoch < other.epoch else 1
        return _cmp_tokens(self._vt, other._vt) or _cmp_tokens(self._rt, other._rt)

    def _hash_key(self) -> object:
        return (self.epoch, self._vt, self._rt)


def parse(version: str) -> RpmVersion:
    """Parse an RPM ``[epoch:]version[-release]``; ``VersionError`` if it is not one."""
    return RpmVersion(version)


def compare(a: str, b: str) -> int:
    """``rpmdev-vercmp`` as -1, 0 or 1."""
    return parse(a)._cmp(parse(b))
