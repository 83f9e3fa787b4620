"""Every container rule passes on a well-configured container and fails on a badly configured one.

The inspect documents in ``assets/`` are real ``docker inspect`` output from Debian's dockerd 20.10.24 on this
kind of machine: ``good`` (read-only, limits, no-new-privileges, health check, network none), ``bad`` (host
namespaces, /etc and the engine socket mounted, seccomp unconfined, restart always, port 80), ``bad2``
(NET_ADMIN, a device, a cgroup parent, default bridge) and ``bad3`` (privileged). Where no real container
on this host can show a setting (no AppArmor or SELinux here, no sshd in the image), one field of a real
document is changed, and the case says which.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from trustyard.policy import RULES, RULES_BY_ID, ContainerSpec, PolicyError, evaluate

ASSETS = Path(__file__).parent / "assets"
Patch = Callable[[dict[str, Any]], None]


def inspect(name: str, patch: Patch | None = None, processes: list[str] | None = None) -> ContainerSpec:
    data: dict[str, Any] = json.loads((ASSETS / f"inspect-{name}.json").read_text())
    if patch is not None:
        data = copy.deepcopy(data)
        patch(data)
    return ContainerSpec.from_inspect(data, processes=processes)


def _set(path: str, value: object) -> Patch:
    def patch(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[last] = value

    return patch


# rule id -> (a passing spec, a failing spec)
CASES: dict[str, tuple[Callable[[], ContainerSpec], Callable[[], ContainerSpec]]] = {
    "5.2": (lambda: inspect("good", _set("AppArmorProfile", "docker-default")), lambda: inspect("good")),
    "5.3": (
        lambda: inspect("good", _set("HostConfig.SecurityOpt", ["label=type:svirt_apache_t"])),
        lambda: inspect("bad"),
    ),
    "5.4": (lambda: inspect("good"), lambda: inspect("bad2")),
    "5.5": (lambda: inspect("good"), lambda: inspect("bad3")),
    "5.6": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.7": (
        lambda: inspect("good", processes=["sleep 300"]),
        lambda: inspect("good", processes=["/usr/sbin/sshd -D", "sleep 300"]),
    ),
    "5.8": (lambda: inspect("good"), lambda: inspect("bad2")),
    "5.9": (lambda: inspect("good"), lambda: inspect("bad2")),
    "5.10": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.11": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.12": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.13": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.14": (
        lambda: inspect(
            "bad2", _set("HostConfig.PortBindings", {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]})
        ),
        lambda: inspect("bad2"),
    ),
    "5.15": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.16": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.17": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.18": (lambda: inspect("good"), lambda: inspect("bad2")),
    "5.19": (lambda: inspect("good"), lambda: inspect("good", _set("HostConfig.Ulimits", None))),
    "5.20": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.21": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.22": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.25": (lambda: inspect("good"), lambda: inspect("bad2")),
    "5.26": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.27": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.29": (lambda: inspect("good"), lambda: inspect("bad")),
    "5.30": (lambda: inspect("good"), lambda: inspect("bad2")),
    "5.31": (lambda: inspect("good"), lambda: inspect("good", _set("HostConfig.UsernsMode", "host"))),
    "5.32": (lambda: inspect("good"), lambda: inspect("bad")),
    "C.5.3.1": (lambda: inspect("bad2"), lambda: inspect("bad3")),
    "C.5.3.2": (lambda: inspect("bad2"), lambda: inspect("bad3")),
    "C.5.3.3": (lambda: inspect("bad2"), lambda: inspect("bad2", _set("HostConfig.CapAdd", ["CAP_SYS_ADMIN"]))),
    "C.5.3.4": (lambda: inspect("good"), lambda: inspect("good", _set("HostConfig.CapAdd", ["sys_ptrace"]))),
}


def test_every_rule_has_cases() -> None:
    assert set(CASES) == set(RULES_BY_ID)


@pytest.mark.parametrize("rule_id", list(CASES))
def test_rule_passes(rule_id: str) -> None:
    verdict = RULES_BY_ID[rule_id](CASES[rule_id][0]())
    assert verdict.ok is True, verdict
    assert verdict.rule == rule_id


@pytest.mark.parametrize("rule_id", list(CASES))
def test_rule_fails(rule_id: str) -> None:
    verdict = RULES_BY_ID[rule_id](CASES[rule_id][1]())
    assert verdict.ok is not True, verdict
    if rule_id != "5.9":
        assert verdict.ok is False, verdict


def test_failing_items_name_what_is_wrong() -> None:
    bad = inspect("bad")
    assert RULES_BY_ID["5.6"](bad).items == ("/etc:/host-etc",)
    assert RULES_BY_ID["5.32"](bad).items == ("/tmp/tybx/d.sock:/var/run/docker.sock",)
    assert RULES_BY_ID["5.20"](bad).items == ("/etc:/host-etc (rshared)",)
    assert RULES_BY_ID["5.4"](inspect("bad2")).items == ("NET_ADMIN",)
    assert RULES_BY_ID["5.8"](inspect("bad2")).items == ("80->8080/tcp",)


def test_undecidable_rules_say_so_rather_than_pass() -> None:
    """Without a process list sshd is unknown; a create request without a health check leaves it to the image."""
    assert RULES_BY_ID["5.7"](inspect("good")).ok is None
    assert RULES_BY_ID["5.27"](ContainerSpec.from_create({"Image": "alpine"})).ok is None
    assert RULES_BY_ID["5.2"](ContainerSpec.from_create({"Image": "alpine"})).ok is None


def _create_body(**host: Any) -> dict[str, Any]:
    """A create body built by the docker SDK exactly as ``client.containers.create`` sends it."""
    client = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.41")
    host_config = client.create_host_config(**host)
    config: dict[str, Any] = client.create_container_config("alpine:3.20", ["sleep", "1"], host_config=host_config)
    return config


def test_create_request_shape_matches_inspect_shape() -> None:
    """The same settings given to the create endpoint and read back by inspect give the same verdicts."""
    body = _create_body(
        binds=["/etc:/host-etc:rshared", "/tmp/tybx/d.sock:/var/run/docker.sock"],
        network_mode="host",
        pid_mode="host",
        ipc_mode="host",
        uts_mode="host",
        security_opt=["seccomp=unconfined", "label=disable"],
        restart_policy={"Name": "always"},
    )
    created = ContainerSpec.from_create(body, name="bad")
    inspected = inspect("bad")
    skip = {"5.2", "5.7", "5.9", "5.14", "5.19", "5.27"}  # engine-filled defaults differ by design
    for a, b in zip(evaluate(created), evaluate(inspected), strict=True):
        if a.rule not in skip:
            assert a.ok == b.ok, (a, b)
    assert RULES_BY_ID["5.6"](created).items == ("/etc:/host-etc",)


def test_create_request_mount_specs() -> None:
    """``--mount`` specs arrive under ``HostConfig.Mounts`` with ``Target`` and ``BindOptions``."""
    mount = docker.types.Mount("/mnt", "/var/run/docker.sock", type="bind", propagation="rshared", read_only=True)
    spec = ContainerSpec.from_create(_create_body(mounts=[mount], privileged=True, cap_add=["SYS_PTRACE"]))
    assert spec.mounts[0].read_only and spec.mounts[0].propagation == "rshared"
    assert RULES_BY_ID["5.32"](spec).ok is False
    assert RULES_BY_ID["5.20"](spec).ok is False
    assert RULES_BY_ID["5.5"](spec).ok is False
    assert spec.cap_add == ("SYS_PTRACE",)


def test_not_a_container_document_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="HostConfig"):
        ContainerSpec.from_inspect({"Id": "abc"})
    with pytest.raises(PolicyError):
        ContainerSpec.from_create({"HostConfig": {"Privileged": "very"}})


def test_rule_ids_are_unique_and_ordered() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
