"""What the matcher reports: one ``Finding`` per vulnerability per component, and how severe it is.

A finding joins a component of the bill of materials (``scan/model.py``) to one vulnerability, known by one
id and all its aliases (a PYSEC id, its CVE and GHSA are one finding, not three). Severity is rated once here,
from what the advisories publish: CVSS v3.x and v4.0 vectors (scored by the ``cvss`` library, never by hand),
and the distribution's own word (Debian's urgency) where it gives one. VEX statements and the allowlist mark
a finding after matching (``scan/vex.py``); they never remove it, so a report can show what was accepted and why.

Not here: deciding whether a version is affected (``vulndb/ranges.py``) or which advisories to ask about
(``scan/matcher.py``); writing reports (``scan/vulnreport.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cvss import CVSS3, CVSS4
from cvss.exceptions import CVSSError

from trustyard.scan.model import Component


class Level(StrEnum):
    """The five severities every report uses, ordered by ``rank`` (CVSS's qualitative scale, plus unknown)."""

    UNKNOWN = "unknown"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 (unknown) to 4 (critical): for thresholds like ``--fail-on high``."""
        return _RANK[self]

    def at_least(self, other: Level) -> bool:
        """Whether this level is ``other`` or worse."""
        return self.rank >= other.rank


_RANK = {Level.UNKNOWN: 0, Level.LOW: 1, Level.MEDIUM: 2, Level.HIGH: 3, Level.CRITICAL: 4}


class FindingStatus(StrEnum):
    """Where the fix stands: a fixed version exists, none is known, or the distribution's reason for none.

    The Debian tracker's states are kept as they are (``no-dsa``: minor, fixed in a point release if at all;
    ``ignored``/``postponed``; ``end-of-life``; ``undetermined``), because they change what a user should do.
    """

    FIXED = "fixed"
    AFFECTED = "affected"
    UNFIXED = "unfixed"
    NO_DSA = "no-dsa"
    IGNORED = "ignored"
    POSTPONED = "postponed"
    END_OF_LIFE = "end-of-life"
    UNDETERMINED = "undetermined"


class Mark(StrEnum):
    """Why a finding no longer counts against the image (it is still reported)."""

    NOT_AFFECTED = "not_affected"
    FIXED = "fixed"
    ACCEPTED = "accepted"


@dataclass(frozen=True, slots=True)
class Rating:
    """One published severity: a CVSS vector with its base score, or a distribution's own rating."""

    method: str  # "CVSS_V3", "CVSS_V4", "DEBIAN_URGENCY", "GHSA"
    level: Level
    score: float | None = None
    vector: str | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Suppression:
    """A VEX statement or allowlist entry applied to a finding: what it says, and where it came from."""

    mark: Mark
    origin: str
    justification: str = ""
    detail: str = ""
    expires: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability in one component.

    ``id`` is the preferred id (the distribution's or the ecosystem database's own), ``aliases`` every other
    id the merged advisories gave, ``sources`` the (source, id) pairs in the store that matched. ``version`` is
    the version compared (a deb's *source* version when the advisory names the source package).
    """

    id: str
    aliases: tuple[str, ...]
    component: Component
    package: str
    version: str
    fixed_versions: tuple[str, ...]
    status: FindingStatus
    severity: Level
    ratings: tuple[Rating, ...]
    summary: str
    references: tuple[str, ...]
    sources: tuple[tuple[str, str], ...]
    suppression: Suppression | None = None

    @property
    def ids(self) -> frozenset[str]:
        """The id and every alias: what a VEX statement or an allowlist entry may name."""
        return frozenset((self.id, *self.aliases))

    @property
    def is_suppressed(self) -> bool:
        """Whether a VEX statement or an unexpired allowlist entry took this finding out of the count."""
        return self.suppression is not None


def level_of_score(score: float) -> Level:
    """CVSS v3/v4 qualitative rating of a base score; ``None`` (0.0) counts as low, not unknown: it was rated."""
    if score >= 9.0:
        return Level.CRITICAL
    if score >= 7.0:
        return Level.HIGH
    if score >= 4.0:
        return Level.MEDIUM
    return Level.LOW


def rate_vector(method: str, vector: str, source: str = "") -> Rating | None:
    """A CVSS v3.x or v4.0 vector scored by the ``cvss`` library; ``None`` for other types or a malformed one.

    A malformed vector is data we cannot use, not a reason to fail a scan: the finding keeps its other ratings.
    """
    try:
        if method == "CVSS_V3" or vector.startswith("CVSS:3."):
            score = float(CVSS3(vector).base_score)
            return Rating("CVSS_V3", level_of_score(score), score, vector, source)
        if method == "CVSS_V4" or vector.startswith("CVSS:4."):
            score = float(CVSS4(vector).base_score)
            return Rating("CVSS_V4", level_of_score(score), score, vector, source)
    except (CVSSError, ValueError, KeyError, IndexError):
        return None
    return None


_WORDS = {
    "critical": Level.CRITICAL,
    "high": Level.HIGH,
    "important": Level.HIGH,
    "moderate": Level.MEDIUM,
    "medium": Level.MEDIUM,
    "low": Level.LOW,
    "unimportant": Level.LOW,
    "negligible": Level.LOW,
}


def level_of_word(word: str) -> Level:
    """A distribution's or database's own word (Debian ``unimportant``, GHSA ``MODERATE``) on our scale.

    Debian marks urgencies it inferred with ``*``/``**``; the word is what counts. Anything unrecognised
    (``not yet assigned``, ``end-of-life``) is unknown, not guessed.
    """
    return _WORDS.get(word.strip().rstrip("*").strip().lower(), Level.UNKNOWN)


_PREFERENCE = ("DEBIAN_URGENCY", "ALPINE", "CVSS_V4", "CVSS_V3", "GHSA")


def overall(ratings: tuple[Rating, ...]) -> Level:
    """The finding's severity: the distribution's own rating first (it knows how the package is built and
    used), then the newest CVSS version, then a database's word; the worst within the first kind present."""
    for method in _PREFERENCE:
        levels = [r.level for r in ratings if r.method == method and r.level is not Level.UNKNOWN]
        if levels:
            return max(levels, key=lambda lv: lv.rank)
    return Level.UNKNOWN


__all__ = [
    "Finding",
    "FindingStatus",
    "Level",
    "Mark",
    "Rating",
    "Suppression",
    "level_of_score",
    "level_of_word",
    "overall",
    "rate_vector",
]
