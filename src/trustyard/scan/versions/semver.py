"""Semantic versions (SemVer 2.0.0), for npm, crates.io, Go modules and OSV ``SEMVER`` ranges.

Precedence (semver.org, section 11): major, minor, patch numerically; a version with a pre-release is lower
than the same version without; pre-release identifiers compare numerically when numeric, as ASCII otherwise,
numeric below alphanumeric, and a longer list wins when all shared identifiers are equal. Build metadata
(``+...``) is ignored by precedence, so ``1.0.0+a == 1.0.0+b`` here.

Flavours, each its own parse function (the registry picks one per ecosystem):
- ``parse``: strict SemVer 2.0.0 (crates.io, OSV ``SEMVER`` ranges);
- ``parse_npm``: node-semver's accepted forms: a leading ``v`` or ``=``;
- ``parse_go``: Go modules (``v1.2.3``, pseudo-versions ``v0.0.0-20200622213623-75b288015ac9`` which are
  ordinary pre-releases by design, ``+incompatible``) and Go toolchains (``go1.21``, ``go1.21rc2``, named as
  Go's own advisories name them: ``1.21.0``, ``1.21.0-rc.2``).
Not here: npm range syntax (``^1.2``, ``>=1 <2``); advisories give events, not ranges.
"""

from __future__ import annotations

import re
from typing import Self

from trustyard.scan.versions.base import OrderedVersion, VersionError, check_text

SCHEME = "semver"

_NUM = r"0|[1-9][0-9]*"
_IDENT = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?(?:\+(?P<build>{_IDENT}(?:\.{_IDENT})*))?"
)
_GO_TOOLCHAIN = re.compile(
    r"(?P<major>[0-9]+)\.(?P<minor>[0-9]+)(?:\.(?P<patch>[0-9]+))?(?P<pre>(?:alpha|beta|rc)[0-9]+)?"
)

Ident = tuple[int, int | str]  # (0, number) or (1, text): numeric identifiers sort below alphanumeric ones


class SemVer(OrderedVersion):
    """A parsed semantic version; build metadata is kept in ``build`` but takes no part in ordering."""

    __slots__ = ("build", "major", "minor", "patch", "pre", "text")

    def __init__(self, text: str, scheme: str = SCHEME, normalized: str | None = None) -> None:
        m = _SEMVER.fullmatch(normalized if normalized is not None else text)
        if m is None:
            raise VersionError(scheme, text, "not MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] (SemVer 2.0.0)")
        pre: list[Ident] = []
        for ident in (m.group("pre") or "").split(".") if m.group("pre") else ():
            if ident.isdigit():
                if len(ident) > 1 and ident[0] == "0":
                    raise VersionError(scheme, text, f"numeric pre-release identifier {ident!r} has a leading zero")
                pre.append((0, int(ident)))
            else:
                pre.append((1, ident))
        self.text = text
        self.major = int(m.group("major"))
        self.minor = int(m.group("minor"))
        self.patch = int(m.group("patch"))
        self.pre: tuple[Ident, ...] = tuple(pre)
        self.build = m.group("build") or ""

    def _cmp(self, other: Self) -> int:
        a = (self.major, self.minor, self.patch)
        b = (other.major, other.minor, other.patch)
        if a != b:
            return -1 if a < b else 1
        if self.pre == other.pre:
            return 0
        if not self.pre or not other.pre:
            return 1 if not self.pre else -1
        return -1 if self.pre < other.pre else 1  # (kind, value) pairs: numbers first, longer list wins

    def _hash_key(self) -> object:
        return (self.major, self.minor, self.patch, self.pre)


def parse(version: str) -> SemVer:
    """Strict SemVer 2.0.0."""
    check_text(SCHEME, version)
    return SemVer(version)


def parse_npm(version: str) -> SemVer:
    """SemVer as node-semver reads a single version: a leading ``v`` or ``=`` is dropped."""
    check_text("npm", version)
    return SemVer(version, "npm", version.lstrip("=v"))


def parse_go(version: str) -> SemVer:
    """A Go module version (``v`` optional) or a Go toolchain version (``go1.21rc2``, ``1.21``)."""
    check_text("go", version)
    bare = version.removeprefix("go").removeprefix("v")
    if bare.count(".") < 2 or (version.startswith("go") and not _SEMVER.fullmatch(bare)):
        m = _GO_TOOLCHAIN.fullmatch(bare)
        if m is not None:
            pre = m.group("pre")
            if pre:
                label = pre.rstrip("0123456789")
                pre = f"-{label}.{pre[len(label) :]}"
            bare = f"{m.group('major')}.{m.group('minor')}.{m.group('patch') or 0}{pre or ''}"
    return SemVer(version, "go", bare)


def compare(a: str, b: str) -> int:
    """Strict SemVer precedence as -1, 0 or 1."""
    return parse(a)._cmp(parse(b))
