"""Section 6 of the CIS Docker Benchmark: security operations — image and container sprawl.

Both recommendations are manual: the benchmark asks the operator to keep only the images and containers in
use. The checks count what the engine holds, so the operator has the numbers to act on (INFO when there is
something to prune, PASS when nothing is unused).
"""

from __future__ import annotations

from typing import Final

from trustyard.bench.base import CheckResult, FunctionCheck, info, passed
from trustyard.bench.context import BenchContext


def image_sprawl(context: BenchContext) -> CheckResult:
    """6.1: unused images are unpatched software kept at hand; count them."""
    facts = context.engine()
    unused = facts.images_total - facts.images_in_use
    if unused > 0:
        return info(f"{facts.images_total} images, {unused} not used by any container", [str(unused)])
    return passed(f"{facts.images_total} images, all in use")


def container_sprawl(context: BenchContext) -> CheckResult:
    """6.2: stopped containers keep their data and configuration around; count them."""
    containers = context.engine().containers
    stopped = [c.spec.name for c in containers if not c.running]
    if stopped:
        return info(f"{len(containers)} containers, {len(stopped)} not running", stopped)
    return passed(f"{len(containers)} containers, all running")


CHECKS: Final = (
    FunctionCheck(
        "6.1",
        "Ensure that image sprawl is avoided",
        "6",
        "Remove images no container uses (docker image prune -a), after checking none is needed for a rollback.",
        image_sprawl,
        scored=False,
    ),
    FunctionCheck(
        "6.2",
        "Ensure that container sprawl is avoided",
        "6",
        "Remove stopped containers that are not needed (docker container prune).",
        container_sprawl,
        scored=False,
    ),
)

__all__ = ["CHECKS"]
