"""Maven artifact versions, ordered as Maven's ``ComparableVersion`` orders them.

The rules (Maven's "Version Order Specification", pom reference):
- the version is lower-cased and split into items at ``.`` and ``-`` and at every change between digits and
  letters; a ``-`` (and a digit/letter change) opens a nested list, so ``1-1`` is ``[1, [1]]``; a qualifier
  that ends the version or runs into digits opens one too, even after ``.`` (``1.foo`` = ``1-foo``; Maven 3.8's
  "treat .X as -X"), while one followed by ``.`` or ``-`` does not (``1.foo.2`` = ``[1, foo, 2]``);
- an empty item is ``0``; a one-letter item directly followed by digits is an alias (``a1`` = ``alpha-1``,
  ``b`` beta, ``m`` milestone); ``ga``, ``final`` and ``release`` are the empty qualifier; ``cr`` is ``rc``;
- trailing "null" items (``0``, the empty qualifier, empty lists) are dropped from every list;
- numbers compare numerically and are newer than qualifiers and lists; known qualifiers rank
  ``alpha < beta < milestone < rc < snapshot < "" < sp``, unknown ones rank after them, alphabetically;
  a list is newer than a qualifier and older than a number;
- a shorter list is padded with nulls, and a list compares with null item by item (Maven 3.9, MNG-6964;
  older Maven compared only the first item, which is not a total order).
Maven accepts any string; we refuse only what ``check_text`` refuses (empty, whitespace, non-ASCII).
Checked against Maven 3.8.7's own ``ComparableVersion`` (``tests/scan/versions/test_peers.py``).
"""

from __future__ import annotations

from typing import Self

from trustyard.scan.versions.base import OrderedVersion, check_text

SCHEME = "maven"

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_RELEASE = _QUALIFIERS.index("")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}

# An item is an int (a number), a str (a qualifier) or a tuple (a nested list).
Item = int | str | tuple["Item", ...]


def _qualifier_rank(q: str) -> tuple[int, str]:
    return (_QUALIFIERS.index(q), "") if q in _QUALIFIERS else (len(_QUALIFIERS), q)


def _is_null(item: Item) -> bool:
    return item == 0 or item == "" or item == ()


def _cmp_null(item: Item) -> int:
    """Compare an item with the padding of a shorter list."""
    if isinstance(item, int):
        return 0 if item == 0 else 1
    if isinstance(item, str):
        r = _qualifier_rank(item)
        return 0 if r == (_RELEASE, "") else (-1 if r < (_RELEASE, "") else 1)
    for sub in item:
        c = _cmp_null(sub)
        if c:
            return c
    return 0


def _cmp(a: Item | None, b: Item | None) -> int:
    if a is None:
        return 0 if b is None else -_cmp_null(b)
    if b is None:
        return _cmp_null(a)
    if isinstance(a, int):
        if isinstance(b, int):
            return (a > b) - (a < b)
        return 1
    if isinstance(a, str):
        if isinstance(b, int | tuple):
            return -1
        ra, rb = _qualifier_rank(a), _qualifier_rank(b)
        return (ra > rb) - (ra < rb)
    if isinstance(b, int):
        return -1
    if isinstance(b, str):
        return 1
    for i in range(max(len(a), len(b))):
        c = _cmp(a[i] if i < len(a) else None, b[i] if i < len(b) else None)
        if c:
            return c
    return 0


def _item(text: str, is_digit: bool, followed_by_digit: bool = False) -> Item:
    if is_digit:
        return int(text)
    if followed_by_digit and text in _SHORT:
        return _SHORT[text]
    return _ALIASES.get(text, text)


class _Builder:
    """The nested lists under construction; ``close`` drops trailing nulls as Maven's ``normalize`` does."""

    def __init__(self) -> None:
        self.stack: list[list[Item]] = [[]]

    def add(self, item: Item) -> None:
        self.stack[-1].append(item)

    def open(self) -> None:
        self.stack.append([])

    def open_if_nonempty(self) -> None:
        """A qualifier after ``.`` that ends the version or runs into digits nests like ``-``: ``1.foo`` = ``1-foo``."""
        if self.stack[-1]:
            self.open()

    def close(self) -> tuple[Item, ...]:
        while len(self.stack) > 1:
            inner = _normalize(self.stack.pop())
            self.stack[-1].append(inner)
        return _normalize(self.stack[0])


def _normalize(items: list[Item]) -> tuple[Item, ...]:
    out = list(items)
    i = len(out) - 1
    while i >= 0:
        if _is_null(out[i]):
            del out[i]
        elif not isinstance(out[i], tuple):
            break
        i -= 1
    return tuple(out)


def _parse_items(version: str) -> tuple[Item, ...]:
    v = version.lower()
    b = _Builder()
    is_digit = False
    start = 0
    for i, c in enumerate(v):
        if c in ".-":
            b.add(0 if i == start else _item(v[start:i], is_digit))
            start = i + 1
            if c == "-":
                b.open()
        elif c.isdigit():
            if not is_digit and i > start:
                b.open_if_nonempty()
                b.add(_item(v[start:i], False, followed_by_digit=True))
                start = i
                b.open()
            is_digit = True
        else:
            if is_digit and i > start:
                b.add(_item(v[start:i], True))
                start = i
                b.open()
            is_digit = False
    if len(v) > start:
        if not is_digit:
            b.open_if_nonempty()
        b.add(_item(v[start:], is_digit))
    return b.close()


class MavenVersion(OrderedVersion):
    """A parsed Maven version: the normalised item tree Maven compares."""

    __slots__ = ("items", "text")

    def __init__(self, text: str) -> None:
        check_text(SCHEME, text)
        self.text = text
        self.items = _parse_items(text)

    def _cmp(self, other: Self) -> int:
        return _cmp(self.items, other.items)

    def _hash_key(self) -> object:
        return self.items


def parse(version: str) -> MavenVersion:
    """Parse a Maven version (any non-empty printable ASCII string)."""
    return MavenVersion(version)


def compare(a: str, b: str) -> int:
    """``ComparableVersion`` ordering as -1, 0 or 1."""
    return parse(a)._cmp(parse(b))
