"""CIS Docker Benchmark checks (the numbering docker-bench-security uses) and Dockle's image checkpoints.

``CHECKS`` lists every check, in report order, module by module (one module per benchmark section); an ID
defined twice is an error at import. ``select`` picks checks by ID or section for ``--check``/``--exclude``;
``run_checks`` runs them against a ``BenchContext``; ``report`` writes the result in the four formats.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from trustyard.bench import community, daemon, enterprise, files, host, images, operations, runtime, swarm
from trustyard.bench.base import BenchError, Check, CheckResult, FunctionCheck, InputUnavailable, Result
from trustyard.bench.context import BenchContext
from trustyard.bench.runner import BenchReport, CheckOutcome, run_checks

SECTIONS: Final = MappingProxyType(
    {
        "1": "Host Configuration",
        "2": "Docker daemon configuration",
        "3": "Docker daemon configuration files",
        "4": "Container Images and Build File",
        "5": "Container Runtime",
        "6": "Docker Security Operations",
        "7": "Docker Swarm Configuration",
        "8": "Docker Enterprise Configuration",
        "C": "Community contributed checks",
        "dockle": "Dockle image checkpoints",
    }
)

CHECKS: Final[tuple[Check, ...]] = (
    *host.CHECKS,
    *daemon.CHECKS,
    *files.CHECKS,
    *images.CHECKS[:12],
    *(c for c in runtime.CHECKS if c.section == "5"),
    *operations.CHECKS,
    *swarm.CHECKS,
    *enterprise.CHECKS,
    *community.CHECKS,
    *(c for c in runtime.CHECKS if c.section == "C"),
    *images.CHECKS[12:],
)


def _index(checks: Sequence[Check]) -> Mapping[str, Check]:
    by_id: dict[str, Check] = {}
    for check in checks:
        if check.id in by_id:
            raise BenchError(f"bench check {check.id} is defined twice")
        if check.section not in SECTIONS:
            raise BenchError(f"bench check {check.id} has an unknown section {check.section!r}")
        by_id[check.id] = check
    return MappingProxyType(by_id)


CHECKS_BY_ID: Final = _index(CHECKS)


def _matches(check: Check, selector: str) -> bool:
    """A selector names a check (``2.2``), a section (``2``, ``dockle``) or a group of checks (``1.1``)."""
    return check.id == selector or check.section == selector or check.id.startswith(selector + ".")


def select(include: Iterable[str] = (), exclude: Iterable[str] = ()) -> tuple[Check, ...]:
    """The checks named by ``include`` (all when empty) minus those named by ``exclude``; unknown names are errors."""
    include, exclude = list(include), list(exclude)
    for selector in [*include, *exclude]:
        if not any(_matches(c, selector) for c in CHECKS):
            raise BenchError(f"{selector!r} names no check or section (sections: {', '.join(SECTIONS)})")
    chosen = [c for c in CHECKS if not include or any(_matches(c, s) for s in include)]
    return tuple(c for c in chosen if not any(_matches(c, s) for s in exclude))


__all__ = [
    "CHECKS",
    "CHECKS_BY_ID",
    "SECTIONS",
    "BenchContext",
    "BenchError",
    "BenchReport",
    "Check",
    "CheckOutcome",
    "CheckResult",
    "FunctionCheck",
    "InputUnavailable",
    "Result",
    "run_checks",
    "select",
]
