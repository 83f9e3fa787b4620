"""The seam of version rules: one ``VersionScheme`` per ecosystem's ordering, and the one error they raise.

Advisories say "fixed in 1.2.3"; whether an installed ``1.2.3~rc1`` is below that is a question only the
ecosystem's own rules answer (dpkg, rpm, apk, PEP 440, SemVer, Maven all disagree on ``~``, letters and
suffixes). Each scheme module parses a version string into an immutable, totally ordered object, so that
``<``, ``==`` and ``hash`` agree with the ecosystem's comparison, and offers ``compare(a, b)`` on strings.

Not here: which scheme an ecosystem uses (``trustyard.scan.versions`` registry) and what a range of versions
means (``trustyard.scan.vulndb.ranges``, the OSV rules).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

from trustyard.scan.errors import ScanError


class VersionError(ScanError):
    """A version string that its scheme's grammar refuses; the only exception a scheme raises on bad input."""

    def __init__(self, scheme: str, version: object, reason: str) -> None:
        shown = repr(version) if len(repr(version)) <= 80 else repr(version)[:77] + "..."
        super().__init__(f"invalid {scheme} version {shown}: {reason}")
        self.scheme = scheme
        self.version = version
        self.reason = reason


class OrderedVersion(ABC):
    """A parsed version whose comparisons are the scheme's ``_cmp``; equal versions hash alike.

    Subclasses implement ``_cmp`` (the ecosystem's algorithm, on parsed parts) and ``_hash_key`` (a
    normal form that is equal exactly when ``_cmp`` says 0: "1.0" and "1.00" may be equal in one scheme
    and different in another).
    """

    __slots__ = ()

    text: str

    @abstractmethod
    def _cmp(self, other: Self) -> int:
        """Negative, zero or positive as ``self`` sorts before, with or after ``other``."""

    @abstractmethod
    def _hash_key(self) -> object:
        """A value equal for exactly the versions ``_cmp`` calls equal."""

    def _check(self, other: object) -> Self:
        if type(other) is not type(self):
            raise TypeError(f"cannot compare {type(self).__name__} with {type(other).__name__}")
        return other

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._cmp(other) == 0

    def __hash__(self) -> int:
        return hash(self._hash_key())

    def __lt__(self, other: Self) -> bool:
        return self._cmp(self._check(other)) < 0

    def __le__(self, other: Self) -> bool:
        return self._cmp(self._check(other)) <= 0

    def __gt__(self, other: Self) -> bool:
        return self._cmp(self._check(other)) > 0

    def __ge__(self, other: Self) -> bool:
        return self._cmp(self._check(other)) >= 0

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


def sign(n: int) -> int:
    """-1, 0 or 1: comparisons return only these, whatever the difference was."""
    return (n > 0) - (n < 0)


def check_text(scheme: str, version: object) -> str:
    """The checks every scheme shares: a non-empty ``str`` without whitespace or control characters."""
    if not isinstance(version, str):
        raise VersionError(scheme, version, "not a string")
    if not version:
        raise VersionError(scheme, version, "empty")
    if any(c.isspace() or not c.isprintable() for c in version):
        raise VersionError(scheme, version, "contains whitespace or control characters")
    if not version.isascii():
        raise VersionError(scheme, version, "contains non-ASCII characters")
    return version


def split_evr(scheme: str, text: str, *, release: str) -> tuple[int, str, str]:
    """Split ``[epoch:]version[-release]`` as dpkg and rpm both do: epoch before the first ``:``, release after
    the last ``-``; a missing epoch is 0 and a missing release is ``""``. Checks only the shape, not characters.
    """
    check_text(scheme, text)
    epoch_text, colon, rest = text.partition(":")
    if not colon:
        epoch_text, rest = "0", text
    elif not epoch_text.isdigit():
        raise VersionError(scheme, text, "the epoch (before ':') is not a number")
    version, hyphen, tail = rest.rpartition("-")
    if not hyphen:
        version, tail = rest, ""
    elif not tail:
        raise VersionError(scheme, text, f"empty {release} after '-'")
    if not version:
        raise VersionError(scheme, text, "empty version")
    return int(epoch_text), version, tail


@dataclass(frozen=True, slots=True)
class VersionScheme:
    """One ecosystem's version rules: its name, a parser to an ordered object, and a comparison of strings."""

    name: str
    parse: Callable[[str], Any]

    def compare(self, a: str, b: str) -> int:
        """-1, 0 or 1 as version ``a`` sorts before, equal to, or after ``b``; ``VersionError`` if either is bad."""
        pa, pb = self.parse(a), self.parse(b)
        return -1 if pa < pb else (1 if pa > pb else 0)

    def key(self, version: str) -> Any:
        """A sort key: ``sorted(versions, key=scheme.key)`` orders by the ecosystem's rules."""
        return self.parse(version)

    def is_valid(self, version: str) -> bool:
        """Whether the scheme can parse ``version`` (for filtering data; code that compares should catch)."""
        try:
            self.parse(version)
        except VersionError:
            return False
        return True
