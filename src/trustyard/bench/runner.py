"""Running checks: each one once, its input problems turned into INFO, and the score kept as docker-bench does.

The score is docker-bench-security's: +1 for each scored PASS, -1 for each scored WARN, nothing for the rest.
A check that raises ``InputUnavailable`` is INFO with the reason; any other ``TrustyardError`` from a check is
INFO too, with the error, so one unreadable file never hides the other hundred results. Programming errors
are not caught: they are bugs, not findings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from trustyard.bench.base import Check, CheckResult, Result
from trustyard.bench.context import BenchContext
from trustyard.errors import TrustyardError


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """A check and what it found."""

    check: Check
    result: CheckResult


@dataclass(frozen=True, slots=True)
class BenchReport:
    """The outcomes of a run, in check order, with its timing."""

    outcomes: tuple[CheckOutcome, ...]
    start: float
    end: float

    @property
    def score(self) -> int:
        """+1 per scored PASS, -1 per scored WARN."""
        total = 0
        for o in self.outcomes:
            if o.check.scored and o.result.result is Result.PASS:
                total += 1
            elif o.check.scored and o.result.result is Result.WARN:
                total -= 1
        return total

    def count(self, result: Result) -> int:
        """How many checks ended with ``result``."""
        return sum(1 for o in self.outcomes if o.result.result is result)

    @property
    def has_warnings(self) -> bool:
        """Whether any check warned (what ``--fail-on warn`` gates on)."""
        return self.count(Result.WARN) > 0


def run_checks(checks: Sequence[Check], context: BenchContext) -> BenchReport:
    """Run ``checks`` in order against ``context``."""
    start = time.time()
    outcomes = []
    for check in checks:
        try:
            result = check.run(context)
        except TrustyardError as e:
            result = CheckResult(Result.INFO, e.message)
        outcomes.append(CheckOutcome(check, result))
    return BenchReport(tuple(outcomes), start, time.time())
