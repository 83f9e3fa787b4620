"""Sections 5.1, 6 and 7 decided on engine facts that the private dockerd cannot show (an active swarm).

The facts are what ``engine.gather`` builds from a swarm manager's ``info``, ``swarm`` and ``networks``
answers; the real-engine path (inactive swarm) is in test_runtime_dockerd.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trustyard.bench import CHECKS_BY_ID, BenchContext, Result, run_checks
from trustyard.bench.engine import EngineContainer, EngineFacts
from trustyard.policy import ContainerSpec

MANAGER = EngineFacts(
    host="unix:///run/docker.sock",
    server_version="24.0.7",
    containers=(EngineContainer(ContainerSpec(name="web", image="nginx"), running=True),),
    images_total=1,
    images_in_use=1,
    swarm_state="active",
    swarm_managers=1,
    swarm_autolock=True,
    overlay_networks=(("backend", True),),
    swarm_listen_addr="10.0.0.5:2377",
)


class FactsContext(BenchContext):
    """A context whose engine answers with fixed facts."""

    def __init__(self, facts: EngineFacts) -> None:
        super().__init__(root=Path("/nonexistent"), environ={})
        self.facts = facts

    def engine(self) -> EngineFacts:
        return self.facts


def _result(check_id: str, facts: EngineFacts) -> Result:
    return run_checks([CHECKS_BY_ID[check_id]], FactsContext(facts)).outcomes[0].result.result


FAILING = {
    "7.1": {"swarm_managers": 4},
    "7.2": {"swarm_listen_addr": "0.0.0.0:2377"},
    "7.3": {"overlay_networks": (("backend", True), ("frontend", False))},
    "7.5": {"swarm_autolock": False},
    "6.1": {"images_total": 5},
    "6.2": {"containers": (EngineContainer(ContainerSpec(name="old", image="x"), running=False),)},
}


@pytest.mark.parametrize("check_id", list(FAILING))
def test_passes_on_a_well_kept_manager(check_id: str) -> None:
    assert _result(check_id, MANAGER) is Result.PASS


@pytest.mark.parametrize("check_id", list(FAILING))
def test_fails_or_asks_for_review(check_id: str) -> None:
    expected = Result.WARN if check_id in ("7.2", "7.3", "7.5") else Result.INFO
    assert _result(check_id, dataclasses.replace(MANAGER, **FAILING[check_id])) is expected  # type: ignore[arg-type]


def test_swarm_mode_warns_when_active_and_passes_when_not() -> None:
    assert _result("5.1", MANAGER) is Result.WARN
    assert _result("5.1", dataclasses.replace(MANAGER, swarm_state="inactive")) is Result.PASS


@pytest.mark.parametrize("check_id", ["7.4", "7.6", "7.7", "7.8", "7.9"])
def test_swarm_procedures_are_notes(check_id: str) -> None:
    assert _result(check_id, MANAGER) is Result.NOTE
    assert _result(check_id, dataclasses.replace(MANAGER, swarm_state="inactive")) is Result.PASS


def test_sshd_needs_running_containers_and_is_found_in_their_processes() -> None:
    with_sshd = ContainerSpec(name="legacy", image="x", processes=("/usr/sbin/sshd -D",))
    facts = dataclasses.replace(MANAGER, containers=(EngineContainer(with_sshd, running=True),))
    assert _result("5.7", facts) is Result.WARN
    assert _result("5.7", MANAGER) is Result.INFO  # a spec without a process list cannot be decided


@pytest.mark.parametrize(
    ("edition", "version", "podman", "expected", "says"),
    [
        ("Docker Engine - Enterprise", "19.03.14", False, Result.NOTE, ""),
        ("", "18.09.1-ee-3", False, Result.NOTE, ""),
        ("Docker Engine - Community", "24.0.7", False, Result.INFO, "is not Docker Enterprise"),
        ("", "20.10.24+dfsg1", False, Result.INFO, "(no edition named) is not Docker Enterprise"),
        ("", "4.3.1", True, Result.INFO, "podman"),
    ],
)
def test_section_8_applies_only_to_docker_enterprise(
    edition: str, version: str, podman: bool, expected: Result, says: str
) -> None:
    facts = dataclasses.replace(MANAGER, edition=edition, server_version=version, podman=podman)
    ids = [c.id for c in CHECKS_BY_ID.values() if c.section == "8"]
    assert ids == ["8.1.1", "8.1.2", "8.1.3", "8.1.4", "8.1.5", "8.1.6", "8.1.7", "8.2.1"]
    report = run_checks([CHECKS_BY_ID[i] for i in ids], FactsContext(facts))
    assert {o.result.result for o in report.outcomes} == {expected}
    assert all(says in o.result.details for o in report.outcomes if expected is Result.INFO)
    # on Docker Enterprise each is the procedure to follow in UCP/DTR, as docker-bench-security notes them
    assert all(o.result.details == o.check.remediation for o in report.outcomes if expected is Result.NOTE)
