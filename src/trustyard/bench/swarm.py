"""Section 7 of the CIS Docker Benchmark: swarm configuration.

On an engine that is not in a swarm every section 7 recommendation holds trivially, and the checks say so
(PASS with "swarm mode is not active"). On a swarm manager the automated ones are decided from the engine's
facts (managers, overlay network encryption, auto-lock); the rest are procedures (key and certificate
rotation, secrets use, traffic separation) and are reported as NOTE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from trustyard.bench.base import CheckResult, FunctionCheck, info, note, passed, warned
from trustyard.bench.context import BenchContext
from trustyard.bench.engine import EngineFacts


def _in_swarm(decide: Callable[[EngineFacts], CheckResult]) -> Callable[[BenchContext], CheckResult]:
    def run(context: BenchContext) -> CheckResult:
        facts = context.engine()
        if facts.swarm_state != "active":
            return passed(f"swarm mode is not active ({facts.swarm_state})")
        return decide(facts)

    run.__doc__ = decide.__doc__
    return run


def managers(facts: EngineFacts) -> CheckResult:
    """7.1: every manager holds the swarm's keys; one more than fault tolerance needs is one more to protect."""
    if facts.swarm_managers > 1:
        return info(f"{facts.swarm_managers} managers; confirm each is needed", [str(facts.swarm_managers)])
    return passed(f"{facts.swarm_managers} manager")


def listen_interface(facts: EngineFacts) -> CheckResult:
    """7.2: the swarm management port should listen on one interface, not all."""
    addr = facts.swarm_listen_addr
    if not addr or addr.startswith(("0.0.0.0", "[::]")):
        return warned("swarm listens on all interfaces", [addr or "0.0.0.0:2377"])
    return passed(f"swarm listens on {addr}")


def overlay_encryption(facts: EngineFacts) -> CheckResult:
    """7.3: overlay traffic between nodes is in clear unless the network is created encrypted."""
    clear = [name for name, encrypted in facts.overlay_networks if not encrypted]
    return warned("unencrypted overlay networks", clear) if clear else passed("all overlay networks are encrypted")


def autolock(facts: EngineFacts) -> CheckResult:
    """7.5: without auto-lock a stolen manager's disk gives the raft keys, and with them every secret."""
    if facts.swarm_autolock is None:
        return info("auto-lock is only visible on a manager")
    return passed("managers auto-lock") if facts.swarm_autolock else warned("swarm managers do not auto-lock")


def _procedure(text: str) -> Callable[[EngineFacts], CheckResult]:
    def decide(facts: EngineFacts) -> CheckResult:
        return note(text)

    return decide


def _check(
    check_id: str, title: str, decide: Callable[[EngineFacts], CheckResult], remediation: str, *, scored: bool
) -> FunctionCheck:
    return FunctionCheck(check_id, title, "7", remediation, _in_swarm(decide), scored=scored)


CHECKS: Final = (
    _check(
        "7.1",
        "Ensure that the minimum number of manager nodes have been created in a swarm",
        managers,
        "Demote managers beyond what fault tolerance needs (docker node demote).",
        scored=True,
    ),
    _check(
        "7.2",
        "Ensure that swarm services are bound to a specific host interface",
        listen_interface,
        "Initialise or join the swarm with --listen-addr on a specific address.",
        scored=True,
    ),
    _check(
        "7.3",
        "Ensure that all Docker swarm overlay networks are encrypted",
        overlay_encryption,
        "Create overlay networks with --opt encrypted.",
        scored=True,
    ),
    _check(
        "7.4",
        "Ensure that Docker's secret management commands are used for managing secrets in a swarm cluster",
        _procedure("use docker secret for service secrets"),
        "Give services their secrets with docker secret, not environment variables or images.",
        scored=False,
    ),
    _check(
        "7.5",
        "Ensure that swarm manager is run in auto-lock mode",
        autolock,
        "Turn on auto-lock (docker swarm update --autolock=true) and keep the unlock key offline.",
        scored=True,
    ),
    _check(
        "7.6",
        "Ensure that the swarm manager auto-lock key is rotated periodically",
        _procedure("rotate the unlock key on a schedule"),
        "Rotate the unlock key on a schedule (docker swarm unlock-key --rotate).",
        scored=False,
    ),
    _check(
        "7.7",
        "Ensure that node certificates are rotated as appropriate",
        _procedure("set the node certificate expiry to fit the site"),
        "Set the node certificate expiry (docker swarm update --cert-expiry).",
        scored=False,
    ),
    _check(
        "7.8",
        "Ensure that CA certificates are rotated as appropriate",
        _procedure("rotate the swarm CA on a schedule"),
        "Rotate the root CA on a schedule (docker swarm ca --rotate).",
        scored=False,
    ),
    _check(
        "7.9",
        "Ensure that management plane traffic is separated from data plane traffic",
        _procedure("use --data-path-addr for data traffic"),
        "Join nodes with --advertise-addr for management and --data-path-addr on another interface for data.",
        scored=False,
    ),
)

__all__ = ["CHECKS"]
