"""Section 8 of the CIS Docker Benchmark: Docker Enterprise (Universal Control Plane and Trusted Registry).

Every recommendation of this section is a setting of UCP or DTR, products Mirantis took over and that no API of
the engine describes; the benchmark marks them all for a person to check in those products' settings. So, as
docker-bench-security does, each check is a NOTE on a Docker Enterprise engine and otherwise says why the
section does not apply. docker-bench-security decides "Enterprise" from ``docker version`` not mentioning
Community; trustyard asks the engine's platform name and treats only a name saying Enterprise (or a ``-ee``
version) as such, so a distribution's build (Debian's names no edition) is not mistaken for one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from trustyard.bench.base import CheckResult, FunctionCheck, info, note
from trustyard.bench.context import BenchContext


def is_enterprise(edition: str, version: str) -> bool:
    """Whether an engine's platform name or version says Docker Enterprise."""
    return "enterprise" in edition.lower() or version.lower().endswith("-ee") or "-ee-" in version.lower()


def _applies(procedure: str) -> Callable[[BenchContext], CheckResult]:
    """The decision of a section 8 check: a NOTE with ``procedure`` on Docker Enterprise, else why not."""

    def decide(context: BenchContext) -> CheckResult:
        facts = context.engine()  # InputUnavailable: the runner reports INFO with the reason
        if facts.podman:
            return info("the engine is podman, not Docker Enterprise: section 8 does not apply")
        if not is_enterprise(facts.edition, facts.server_version):
            named = facts.edition or "no edition named"
            return info(f"Docker {facts.server_version} ({named}) is not Docker Enterprise: section 8 does not apply")
        return note(procedure)

    return decide


def _check(check_id: str, title: str, procedure: str) -> FunctionCheck:
    return FunctionCheck(check_id, title, "8", procedure, _applies(procedure), scored=False)


CHECKS: Final = (
    _check(
        "8.1.1",
        "Configure the LDAP authentication service",
        "In UCP's admin settings, connect authentication to the organisation's directory (LDAP) so accounts are "
        "managed and revoked in one place.",
    ),
    _check(
        "8.1.2",
        "Use external certificates",
        "Install certificates issued by the organisation's CA for UCP, in its admin settings or at installation.",
    ),
    _check(
        "8.1.3",
        "Enforce the use of client certificate bundles for unprivileged users",
        "Give unprivileged users client certificate bundles and restrict them from running privileged containers "
        "in UCP's admin settings.",
    ),
    _check(
        "8.1.4",
        "Configure applicable cluster role-based access control policies",
        "Define UCP roles and grants so each team reaches only its own collections and namespaces.",
    ),
    _check(
        "8.1.5",
        "Enable signed image enforcement",
        "In UCP's admin settings, run only images signed by the chosen teams (content trust).",
    ),
    _check(
        "8.1.6",
        "Set the Per-User Session Limit to a value of '3' or lower",
        "Set the per-user session limit to 3 or lower in UCP's authentication settings.",
    ),
    _check(
        "8.1.7",
        "Set the 'Lifetime Minutes' and 'Renewal Threshold Minutes' values to '15' or lower and '0' respectively",
        "Set the session lifetime to 15 minutes or lower and the renewal threshold to 0 in UCP's settings.",
    ),
    _check(
        "8.2.1",
        "Enable image vulnerability scanning",
        "Turn on image scanning in DTR's security settings so every pushed image is scanned.",
    ),
)

__all__ = ["CHECKS", "is_enterprise"]
