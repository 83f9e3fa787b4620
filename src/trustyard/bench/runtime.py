"""Section 5 of the CIS Docker Benchmark: every container the engine knows, judged by the ``policy`` rules.

The rules are the same pure functions the authorization plugin and the registry use (``policy.rules``); this
module only asks the engine (``engine.py``) and folds the per-container verdicts into one result per check:
WARN naming every container that breaks the rule, INFO when the configuration cannot decide for some
(``ok is None``), PASS only when every container passes. Stopped and created containers are judged too: their
configuration is what they will run with when started.

Three recommendations are not properties of a container's configuration: 5.1 (swarm mode, asked of the
engine), 5.23 and 5.24 (options given to ``docker exec``, read from the host's audit log and the engine's exec
records: ``execs.py``) and 5.28 (pulling the latest image, a procedure: NOTE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from trustyard.bench.base import CheckResult, FunctionCheck, info, manual, passed, warned
from trustyard.bench.context import BenchContext
from trustyard.bench.execs import ExecRecord
from trustyard.policy import RULES, ContainerRule

_REMEDIATION: Final = {
    "5.2": "Run containers with an AppArmor profile (--security-opt apparmor=PROFILE; docker-default is the engine's).",
    "5.3": "Run containers with SELinux labels (--security-opt label=...) on hosts that enforce SELinux.",
    "5.4": "Drop the capabilities the application does not need (--cap-drop ALL, then --cap-add only those it needs).",
    "5.5": "Do not use --privileged; grant the specific capabilities or devices the application needs.",
    "5.6": "Do not bind-mount host system directories (/, /boot, /dev, /etc, /lib, /proc, /sys, /usr) into containers.",
    "5.7": "Do not run an SSH server in a container; use docker exec for access.",
    "5.8": "Publish container ports on host ports above 1023.",
    "5.9": "Publish only the ports the service needs (no -P; list each -p deliberately).",
    "5.10": "Do not use --network host.",
    "5.11": "Set a memory limit on every container (--memory).",
    "5.12": "Set CPU shares (--cpu-shares) or a CPU limit (--cpus) on every container.",
    "5.13": "Run with --read-only and give the application tmpfs or volumes for what it must write.",
    "5.14": "Publish ports on a specific host address (-p 127.0.0.1:8080:80).",
    "5.15": "Use --restart on-failure:5 (or no restart policy) instead of always / unless-stopped.",
    "5.16": "Do not use --pid host.",
    "5.17": "Do not use --ipc host.",
    "5.18": "Pass host devices with --device only when the application needs them, read-only where possible.",
    "5.19": "Set ulimits that fit the application with --ulimit where the daemon's defaults do not.",
    "5.20": "Do not mount volumes with shared or rshared propagation.",
    "5.21": "Do not use --uts host.",
    "5.22": "Do not run with --security-opt seccomp=unconfined.",
    "5.25": "Do not use --cgroup-parent unless that cgroup is deliberately configured.",
    "5.26": "Run containers with --security-opt no-new-privileges (or set it daemon-wide).",
    "5.27": "Give the image a HEALTHCHECK or the container a --health-cmd.",
    "5.29": "Set --pids-limit on every container.",
    "5.30": "Connect containers to user-defined networks instead of the default bridge.",
    "5.31": "Do not use --userns host.",
    "5.32": "Do not mount the engine's socket into containers.",
}
_MANUAL: Final = frozenset({"5.9", "5.18", "5.19", "5.30"})
_LEVEL2: Final = frozenset({"5.3", "5.13", "5.25"})


def judge(rule: ContainerRule) -> Callable[[BenchContext], CheckResult]:
    """The decision of the check for ``rule``: fold its verdict on every container into one result."""

    def decide(context: BenchContext) -> CheckResult:
        containers = context.engine().containers
        if not containers:
            return info("no containers on the engine")
        failing: list[str] = []
        unknown: list[str] = []
        review: list[str] = []
        for c in containers:
            verdict = rule(c.spec)
            label = c.spec.name + ("" if c.running else " (not running)")
            detail = f"{label}: {', '.join(verdict.items)}" if verdict.items else label
            if verdict.ok is False:
                failing.append(detail)
            elif verdict.ok is None:
                if rule.needs_processes and not c.running:
                    continue
                (review if verdict.items else unknown).append(detail)
        if failing:
            if rule.id in _MANUAL:
                return info(f"review: {rule.title.lower()}", failing)
            return warned(f"not met by {len(failing)} of {len(containers)} containers", failing)
        if review or unknown:
            return info("cannot be decided from the configuration; review", review + unknown)
        return passed(f"{len(containers)} containers checked")

    return decide


def swarm_mode(context: BenchContext) -> CheckResult:
    """5.1: swarm mode opens management ports and keeps secrets on the host; off unless the host is in a swarm."""
    state = context.engine().swarm_state
    if state == "active":
        return warned("swarm mode is active")
    return passed(f"swarm mode is {state}")


def _rule_check(rule: ContainerRule) -> FunctionCheck:
    section = "C" if rule.id.startswith("C.") else "5"
    remediation = _REMEDIATION.get(rule.id, "Remove the capability (drop it, or do not --cap-add it).")
    level = 2 if rule.id in _LEVEL2 else 1
    return FunctionCheck(
        rule.id, rule.title, section, remediation, judge(rule), scored=rule.id not in _MANUAL, level=level
    )


def exec_option(option: str, flagged: Callable[[ExecRecord], bool | None]) -> Callable[[BenchContext], CheckResult]:
    """5.23/5.24: WARN naming the containers that had an exec with ``option``; INFO for execs whose options no
    witness recorded; PASS when every exec seen was without it (``execs.py``)."""

    def decide(context: BenchContext) -> CheckResult:
        facts = context.execs()
        read = " and ".join(facts.sources)
        bad = [r.describe() for r in facts.records if flagged(r) is True]
        unknown = [r.describe() for r in facts.records if flagged(r) is None]
        if bad:
            return warned(f"docker exec {option} was used", bad)
        if unknown:
            return info("execs whose options were not recorded; audit the docker client (-k docker)", unknown)
        seen = len(facts.records)
        return passed(f"no docker exec {option} among {seen} exec{'' if seen == 1 else 's'} seen ({read})")

    return decide


_RULE_CHECKS: Final = {r.id: _rule_check(r) for r in RULES}


def _ordered() -> tuple[FunctionCheck, ...]:
    extra = {
        "5.1": FunctionCheck(
            "5.1",
            "Ensure swarm mode is not Enabled, if not needed",
            "5",
            "Leave the swarm on hosts that are not meant to be in one (docker swarm leave).",
            swarm_mode,
        ),
        "5.23": FunctionCheck(
            "5.23",
            "Ensure that docker exec commands are not used with the privileged option",
            "5",
            "Do not run docker exec --privileged; audit the docker client (-w /usr/bin/docker -p x -k docker) "
            "to see who does.",
            exec_option("--privileged", lambda r: r.privileged),
            level=2,
        ),
        "5.24": FunctionCheck(
            "5.24",
            "Ensure that docker exec commands are not used with the user=root option",
            "5",
            "Do not run docker exec --user root; audit the docker client (-w /usr/bin/docker -p x -k docker) "
            "to see who does.",
            exec_option("--user root", lambda r: r.as_root),
            level=2,
        ),
        "5.28": FunctionCheck(
            "5.28",
            "Ensure that Docker commands always make use of the latest version of their image",
            "5",
            "Pull images by digest, or pull again before each run, so that a stale local copy is never used.",
            manual("the freshness of local images is a deployment procedure"),
            scored=False,
        ),
    }
    merged = {**_RULE_CHECKS, **extra}

    def key(check_id: str) -> tuple[int, ...]:
        parts = check_id.removeprefix("C.").split(".")
        return (1 if check_id.startswith("C.") else 0, *(int(p) for p in parts))

    return tuple(merged[k] for k in sorted(merged, key=key))


CHECKS: Final = _ordered()

__all__ = ["CHECKS", "judge"]
