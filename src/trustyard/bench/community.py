"""docker-bench-security's community check C.2: operations on legacy (v1) registries are disabled.

Registry API v1 had no content addressing: an image pulled over it could be swapped without the digest
changing. dockerd before 17.12 could still push to and pull from v1 registries unless started with
``--disable-legacy-registry`` (or ``"disable-legacy-registry": true``); Docker 17.12 removed v1 support, so any
newer engine passes on its version alone. podman never spoke v1. The engine's version is asked of the engine;
when it cannot be reached, the daemon's settings alone can still pass the check (the option is set) but
cannot fail it (an old engine is not known to be there): INFO.

docker-bench-security reports INFO "(Deprecated)" for engines from 17.12 on; trustyard reports PASS there, as
the recommendation is met by construction. Its other community checks are C.5.3.x (``runtime.py``).
"""

from __future__ import annotations

import re
from typing import Final

from trustyard.bench.base import CheckResult, FunctionCheck, InputUnavailable, info, passed, warned
from trustyard.bench.context import BenchContext

V1_REMOVED: Final = (17, 12)
"""The Docker release that removed registry v1 support (moby 17.12.0-ce, December 2017)."""


def engine_version(text: str) -> tuple[int, int] | None:
    """``(major, minor)`` of a Docker version string (``20.10.24+dfsg1``, ``17.09.1-ce``, ``1.13.1``)."""
    match = re.match(r"^v?(\d+)\.(\d+)", text.strip())
    return (int(match[1]), int(match[2])) if match else None


def legacy_registry(version: str | None, podman: bool, disabled: bool | None) -> CheckResult:
    """C.2 from the engine's version (``None``: unknown) and ``disable-legacy-registry`` (``None``: unknown)."""
    if podman:
        return passed(f"podman {version} has no registry v1 support")
    if disabled:
        return passed("disable-legacy-registry is set")
    parsed = engine_version(version) if version is not None else None
    if parsed is not None and parsed >= V1_REMOVED:
        return passed(f"Docker {version} has no registry v1 support (removed in 17.12)")
    if parsed is not None and disabled is False:
        return warned(f"Docker {version} can use v1 registries; set disable-legacy-registry", [version or ""])
    if parsed is not None:
        return info(
            f"Docker {version} can use v1 registries unless started with --disable-legacy-registry, and "
            "its configuration could not be read"
        )
    why = "the engine's version is unknown" if version is None else f"cannot read the engine version {version!r}"
    return info(f"{why}; disable-legacy-registry is {'not set' if disabled is False else 'unknown'}")


def _decide(context: BenchContext) -> CheckResult:
    try:
        facts = context.engine()
        version: str | None = facts.server_version
        podman = facts.podman
    except InputUnavailable:
        version, podman = None, False
    try:
        disabled: bool | None = context.daemon().disable_legacy_registry
    except InputUnavailable:
        disabled = None
    if version is None and disabled is None:
        raise InputUnavailable("neither the engine nor the daemon's configuration could be read")
    return legacy_registry(version, podman, disabled)


CHECKS: Final = (
    FunctionCheck(
        "C.2",
        "Ensure operations on legacy registry (v1) are Disabled",
        "C",
        "Upgrade the engine (17.12 and later have no v1 support), or start dockerd with --disable-legacy-registry.",
        _decide,
    ),
)

__all__ = ["CHECKS", "engine_version", "legacy_registry"]
