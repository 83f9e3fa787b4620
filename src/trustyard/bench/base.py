"""The bench check seam: one ``Check`` Protocol, the result types, and the exception that turns into INFO.

A check is a small unit with its benchmark ID, title, CIS level, whether it counts towards the score, its
section and a remediation in our words; ``run(context)`` looks at one kind of input and returns a
``CheckResult``. A check whose input is unavailable (no engine socket, no such file, no image given) raises
``InputUnavailable``; the runner reports that as INFO with the reason, so a missing input is never a crash
and never a false PASS.

Results are docker-bench-security's four: PASS, WARN (the recommendation is not met), INFO (something to know
or review; also every manual check that found something) and NOTE (a manual check with nothing to look at).
Not here: which checks exist (``__init__``), running them (``runner.py``), printing them (``report.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from trustyard.errors import TrustyardError

if TYPE_CHECKING:
    from trustyard.bench.context import BenchContext


class BenchError(TrustyardError):
    """A bench run that cannot proceed (an unknown check ID, an unreadable option)."""


class InputUnavailable(BenchError):  # noqa: N818 - a condition the runner reports, not a failure
    """What a check needs is not there; the message says what and why (it becomes the INFO line's details)."""


class Result(StrEnum):
    """The outcome of one check, spelled as docker-bench-security spells it in its log."""

    PASS = "PASS"  # noqa: S105 - a result name, not a password
    WARN = "WARN"
    INFO = "INFO"
    NOTE = "NOTE"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check found: the outcome, a line of explanation, and the things (files, containers) it names."""

    result: Result
    details: str = ""
    items: tuple[str, ...] = ()


class Check(Protocol):
    """One benchmark recommendation, checked."""

    @property
    def id(self) -> str:
        """Benchmark ID (``2.2``, ``5.32``, ``CIS-DI-0001``)."""
        ...

    @property
    def title(self) -> str:
        """The recommendation, as the benchmark states it."""
        ...

    @property
    def section(self) -> str:
        """The section (``1`` ... ``7``, ``C`` for community checks, ``dockle``) that ``--check`` can name."""
        ...

    @property
    def level(self) -> int:
        """CIS profile level (1: practical everywhere, 2: defence in depth that may cost something)."""
        ...

    @property
    def scored(self) -> bool:
        """Whether the result counts in the score (the benchmark's automated checks do, manual ones do not)."""
        ...

    @property
    def remediation(self) -> str:
        """What to change to pass, in a sentence or two."""
        ...

    def run(self, context: BenchContext) -> CheckResult:
        """Look at the input and decide; raise ``InputUnavailable`` when the input is missing."""
        ...


@dataclass(frozen=True, slots=True)
class FunctionCheck:
    """A ``Check`` whose decision is one function of the context: how every built-in check is written."""

    id: str
    title: str
    section: str
    remediation: str
    decide: Callable[[BenchContext], CheckResult]
    scored: bool = True
    level: int = 1

    def run(self, context: BenchContext) -> CheckResult:
        """Call the decision function."""
        return self.decide(context)


def passed(details: str = "", items: tuple[str, ...] | list[str] = ()) -> CheckResult:
    """A PASS."""
    return CheckResult(Result.PASS, details, tuple(items))


def warned(details: str, items: tuple[str, ...] | list[str] = ()) -> CheckResult:
    """A WARN: the recommendation is not met."""
    return CheckResult(Result.WARN, details, tuple(items))


def info(details: str, items: tuple[str, ...] | list[str] = ()) -> CheckResult:
    """An INFO: something to review, or an input that was not there."""
    return CheckResult(Result.INFO, details, tuple(items))


def note(details: str) -> CheckResult:
    """A NOTE: a manual recommendation that no input can decide."""
    return CheckResult(Result.NOTE, details)


def manual(details: str) -> Callable[[BenchContext], CheckResult]:
    """The decision of a check that is a procedure for a person, not a property of any input we read."""

    def decide(context: BenchContext) -> CheckResult:
        return note(details)

    return decide
