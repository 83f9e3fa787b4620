"""The container-runtime rules of the CIS Docker Benchmark (section 5), each a pure function of a ``ContainerSpec``.

Every rule here is decided by a container's configuration alone, so the same function can audit a running
container (``trustyard bench``), refuse a create request (the authorization plugin) and judge a deployment
before it happens. A rule returns a ``Verdict``: ``ok`` is ``True`` or ``False`` when the configuration decides,
``None`` when it cannot (sshd without a process list, a health check left to the image); callers must not
read ``None`` as a pass.

IDs follow docker-bench-security's numbering of CIS Docker Benchmark v1.6.0 (5.2 AppArmor ... 5.32 Docker
socket), plus its community checks C.5.3.1-4 for single dangerous capabilities. Not here: 5.1 (swarm mode, a
daemon fact), 5.23/5.24 (``docker exec`` options, visible only in an audit log) and 5.28 (image freshness):
they are not properties of a container's configuration (``bench/runtime.py`` handles them).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from trustyard.policy.container import ContainerSpec

SENSITIVE_HOST_DIRS: Final = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")
"""Host directories whose bind mount gives a container the host (CIS 5.6); subdirectories count too, except of ``/``."""

ENGINE_SOCKETS: Final = ("docker.sock", "podman.sock", "containerd.sock", "dockershim.sock", "crio.sock")
"""File names of engine API sockets: whoever holds one controls every container on the host (CIS 5.32). A bind
counts when either end has such a name: a socket renamed on the host is still the engine's inside."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A rule's judgement of one container: ``ok`` (``None``: undecidable from the configuration), why, and what."""

    rule: str
    ok: bool | None
    details: str = ""
    items: tuple[str, ...] = ()


RuleFunction = Callable[[ContainerSpec], Verdict]


@dataclass(frozen=True, slots=True)
class ContainerRule:
    """A rule: its benchmark ID and title and the function that decides it.

    ``needs_processes`` marks a rule that only a running container's process list decides; give
    ``ContainerSpec.processes`` to get an answer from it.
    """

    id: str
    title: str
    evaluate: RuleFunction
    needs_processes: bool = False

    def __call__(self, spec: ContainerSpec) -> Verdict:
        """Judge ``spec``."""
        return self.evaluate(spec)


def _verdict(rule: str, bad: list[str] | tuple[str, ...], failing: str, passing: str) -> Verdict:
    return Verdict(rule, not bad, failing if bad else passing, tuple(bad))


def _flag(rule: str, failed: bool, failing: str, passing: str) -> Verdict:
    return Verdict(rule, not failed, failing if failed else passing)


def apparmor(spec: ContainerSpec) -> Verdict:
    """5.2: a container without an AppArmor profile is confined only by the other layers."""
    profile = spec.apparmor_profile
    if profile is None:
        return Verdict("5.2", None, "no profile named; the daemon's default applies if the host runs AppArmor")
    if profile in ("", "unconfined"):
        return Verdict("5.2", False, f"AppArmor profile: {profile or 'none'}")
    return Verdict("5.2", True, f"AppArmor profile: {profile}")


def selinux(spec: ContainerSpec) -> Verdict:
    """5.3: SELinux labels separate containers from each other and from the host where SELinux is in use."""
    label = spec.security_options.get("label")
    if label == "disable" or (label is None and not spec.process_label):
        return Verdict("5.3", False, "no SELinux label options" if label is None else "SELinux labelling disabled")
    return Verdict("5.3", True, f"SELinux label: {label or spec.process_label}")


def capabilities(spec: ContainerSpec) -> Verdict:
    """5.4: every capability added beyond the engine's default set widens what a root process can do."""
    added = [c for c in spec.cap_add if c not in spec.cap_drop or c == "ALL"]
    if spec.privileged:
        added = ["ALL (privileged)", *added]
    return _verdict("5.4", added, "capabilities added: " + ", ".join(added), "no capabilities added")


def privileged(spec: ContainerSpec) -> Verdict:
    """5.5: a privileged container has every capability and every device: it is root on the host."""
    return _flag("5.5", spec.privileged, "runs privileged", "not privileged")


def _under(path: str, directory: str) -> bool:
    path = posixpath.normpath(path)
    return path == directory or (directory != "/" and path.startswith(directory + "/"))


def sensitive_mounts(spec: ContainerSpec) -> Verdict:
    """5.6: a bind mount of a host system directory lets the container read or change the host itself."""
    bad = [
        f"{m.source}:{m.destination}{':ro' if m.read_only else ''}"
        for m in spec.mounts
        if m.type == "bind" and any(_under(m.source, d) for d in SENSITIVE_HOST_DIRS)
    ]
    return _verdict("5.6", bad, "sensitive host directories mounted", "no sensitive host directory mounted")


def sshd(spec: ContainerSpec) -> Verdict:
    """5.7: an SSH daemon inside a container is a second way in, with its own keys to manage."""
    if spec.processes is None:
        return Verdict("5.7", None, "needs the process list of a running container")
    bad = [p for p in spec.processes if posixpath.basename(p.split()[0] if p.split() else "") == "sshd"]
    return _verdict("5.7", bad, "sshd runs in the container", "no sshd process")


def privileged_ports(spec: ContainerSpec) -> Verdict:
    """5.8: host ports below 1024 are the ones the host's own services (and their clients) trust."""
    bad = [f"{p.host_port}->{p.container_port}" for p in spec.ports if 0 < p.host_port < 1024]
    return _verdict("5.8", bad, "privileged host ports mapped", "no privileged host port mapped")


def open_ports(spec: ContainerSpec) -> Verdict:
    """5.9: which ports are needed only the operator knows; this lists what is published for review."""
    published = [f"{p.host_ip or '*'}:{p.host_port or 'ephemeral'}->{p.container_port}" for p in spec.ports]
    if not published:
        return Verdict("5.9", True, "no ports published")
    return Verdict("5.9", None, "review the published ports", tuple(published))


def host_network(spec: ContainerSpec) -> Verdict:
    """5.10: in the host's network namespace a container sees and binds every host interface."""
    return _flag("5.10", spec.network_mode == "host", "uses the host network namespace", "own network namespace")


def memory_limit(spec: ContainerSpec) -> Verdict:
    """5.11: without a memory limit one container can exhaust the host's memory."""
    if spec.memory <= 0:
        return Verdict("5.11", False, "no memory limit")
    return Verdict("5.11", True, f"memory limit {spec.memory} bytes")


def cpu_priority(spec: ContainerSpec) -> Verdict:
    """5.12: CPU shares (or a CPU limit) keep one container from starving the others."""
    limited = spec.cpu_shares not in (0, 1024) or spec.nano_cpus > 0 or spec.cpu_quota > 0
    return _flag("5.12", not limited, "no CPU shares or CPU limit set", "CPU shares or a CPU limit set")


def read_only_rootfs(spec: ContainerSpec) -> Verdict:
    """5.13: a read-only root file system stops an intruder from changing the container's own programs."""
    return _flag("5.13", not spec.read_only_rootfs, "root file system is writable", "root file system is read-only")


def bound_interface(spec: ContainerSpec) -> Verdict:
    """5.14: a port published on every interface is reachable from every network the host is on."""
    bad = [
        f"{p.host_port or 'ephemeral'}->{p.container_port}" for p in spec.ports if p.host_ip in ("", "0.0.0.0", "::")
    ]
    return _verdict("5.14", bad, "ports published on all host interfaces", "ports bound to specific interfaces")


def restart_policy(spec: ContainerSpec) -> Verdict:
    """5.15: restarting for ever hides a crash loop (and an attack on it); on-failure with at most 5 tries does not."""
    name, retries = spec.restart_policy, spec.restart_max_retries
    if name in ("", "no") or (name == "on-failure" and 0 < retries <= 5):
        return Verdict("5.15", True, f"restart policy {name or 'no'}" + (f":{retries}" if retries else ""))
    return Verdict("5.15", False, f"restart policy {name}" + (f":{retries}" if name == "on-failure" else ""))


def host_pid(spec: ContainerSpec) -> Verdict:
    """5.16: in the host's PID namespace a container sees, and may signal, every host process."""
    return _flag("5.16", spec.pid_mode == "host", "shares the host PID namespace", "own PID namespace")


def host_ipc(spec: ContainerSpec) -> Verdict:
    """5.17: the host's IPC namespace exposes its shared memory and semaphores to the container.

    ``unknown``: the engine could not say (podman 4.3 reports every IPC mode as ``shareable``; bench/engine.py).
    """
    if spec.ipc_mode == "unknown":
        return Verdict("5.17", None, "the engine does not report the IPC mode")
    return _flag("5.17", spec.ipc_mode == "host", "shares the host IPC namespace", "own IPC namespace")


def host_devices(spec: ContainerSpec) -> Verdict:
    """5.18: a host device passed through lets the container bypass the file system's permissions."""
    return _verdict("5.18", list(spec.devices), "host devices exposed", "no host devices exposed")


def ulimits(spec: ContainerSpec) -> Verdict:
    """5.19: an explicit ulimit shows someone decided the container's resource bounds (the check is manual)."""
    if spec.ulimits:
        return Verdict("5.19", True, "ulimits set", spec.ulimits)
    return Verdict("5.19", False, "default ulimits are not overridden")


def mount_propagation(spec: ContainerSpec) -> Verdict:
    """5.20: a shared mount propagates the container's mounts back to the host, and the host's into it."""
    bad = [
        f"{m.source}:{m.destination} ({m.propagation})" for m in spec.mounts if m.propagation in ("shared", "rshared")
    ]
    return _verdict("5.20", bad, "mounts with shared propagation", "no shared mount propagation")


def host_uts(spec: ContainerSpec) -> Verdict:
    """5.21: in the host's UTS namespace a container can change the host's name."""
    return _flag("5.21", spec.uts_mode == "host", "shares the host UTS namespace", "own UTS namespace")


def seccomp(spec: ContainerSpec) -> Verdict:
    """5.22: without the seccomp filter every system call of the kernel is reachable from the container."""
    profile = spec.security_options.get("seccomp")
    if profile == "unconfined":
        return Verdict("5.22", False, "seccomp disabled (unconfined)")
    if spec.privileged:
        return Verdict("5.22", False, "privileged containers run without seccomp")
    return Verdict("5.22", True, f"seccomp profile: {profile or 'default'}")


def cgroup_parent(spec: ContainerSpec) -> Verdict:
    """5.25: a custom cgroup parent takes the container out of the limits the daemon puts on its containers."""
    if spec.cgroup_parent:
        return Verdict("5.25", False, "custom cgroup parent", (spec.cgroup_parent,))
    return Verdict("5.25", True, "default cgroup parent")


def no_new_privileges(spec: ContainerSpec) -> Verdict:
    """5.26: no-new-privileges stops setuid programs raising a process's privileges inside the container."""
    value = spec.security_options.get("no-new-privileges")
    enabled = value is not None and value in ("", "true")
    return _flag("5.26", not enabled, "no-new-privileges not set", "no-new-privileges set")


def healthcheck(spec: ContainerSpec) -> Verdict:
    """5.27: a health check lets the engine (and the operator) see a container that runs but no longer works."""
    if spec.has_healthcheck is None:
        return Verdict("5.27", None, "no health check in the request; the image's, if any, applies")
    return _flag("5.27", not spec.has_healthcheck, "no health check", "health check configured")


def pids_limit(spec: ContainerSpec) -> Verdict:
    """5.29: a PIDs limit stops a fork bomb inside one container from taking down the host."""
    if spec.pids_limit is None or spec.pids_limit <= 0:
        return Verdict("5.29", False, "no PIDs limit")
    return Verdict("5.29", True, f"PIDs limit {spec.pids_limit}")


def default_bridge(spec: ContainerSpec) -> Verdict:
    """5.30: on docker0 every container can reach every other; user-defined networks isolate them."""
    on_bridge = spec.network_mode in ("default", "bridge") and (not spec.networks or "bridge" in spec.networks)
    on_bridge = on_bridge or "bridge" in spec.networks
    return _flag("5.30", on_bridge, "on the default bridge network", "not on the default bridge network")


def host_userns(spec: ContainerSpec) -> Verdict:
    """5.31: ``--userns=host`` undoes the daemon's user-namespace remapping for this container."""
    return _flag("5.31", spec.userns_mode == "host", "shares the host user namespace", "user namespace not shared")


def engine_socket(spec: ContainerSpec) -> Verdict:
    """5.32: the engine's socket inside a container gives it control of the engine, hence of the host."""
    bad = [
        f"{m.source}:{m.destination}"
        for m in spec.mounts
        if m.type == "bind" and {posixpath.basename(m.source), posixpath.basename(m.destination)} & set(ENGINE_SOCKETS)
    ]
    return _verdict("5.32", bad, "engine socket mounted", "no engine socket mounted")


def _capability_rule(rule_id: str, capability: str) -> RuleFunction:
    def evaluate(spec: ContainerSpec) -> Verdict:
        has = spec.privileged or capability in spec.cap_add or "ALL" in spec.cap_add
        return _flag(rule_id, has, f"{capability} granted", f"{capability} not granted")

    evaluate.__doc__ = f"{rule_id}: {capability} is one of the capabilities that on its own lead out of a container."
    return evaluate


RULES: Final[tuple[ContainerRule, ...]] = (
    ContainerRule("5.2", "Ensure that, if applicable, an AppArmor Profile is enabled", apparmor),
    ContainerRule("5.3", "Ensure that, if applicable, SELinux security options are set", selinux),
    ContainerRule("5.4", "Ensure that Linux kernel capabilities are restricted within containers", capabilities),
    ContainerRule("5.5", "Ensure that privileged containers are not used", privileged),
    ContainerRule("5.6", "Ensure sensitive host system directories are not mounted on containers", sensitive_mounts),
    ContainerRule("5.7", "Ensure sshd is not run within containers", sshd, needs_processes=True),
    ContainerRule("5.8", "Ensure privileged ports are not mapped within containers", privileged_ports),
    ContainerRule("5.9", "Ensure that only needed ports are open on the container", open_ports),
    ContainerRule("5.10", "Ensure that the host's network namespace is not shared", host_network),
    ContainerRule("5.11", "Ensure that the memory usage for containers is limited", memory_limit),
    ContainerRule("5.12", "Ensure that CPU priority is set appropriately on containers", cpu_priority),
    ContainerRule("5.13", "Ensure that the container's root filesystem is mounted as read only", read_only_rootfs),
    ContainerRule(
        "5.14", "Ensure that incoming container traffic is bound to a specific host interface", bound_interface
    ),
    ContainerRule("5.15", "Ensure that the 'on-failure' container restart policy is set to '5'", restart_policy),
    ContainerRule("5.16", "Ensure that the host's process namespace is not shared", host_pid),
    ContainerRule("5.17", "Ensure that the host's IPC namespace is not shared", host_ipc),
    ContainerRule("5.18", "Ensure that host devices are not directly exposed to containers", host_devices),
    ContainerRule("5.19", "Ensure that the default ulimit is overwritten at runtime if needed", ulimits),
    ContainerRule("5.20", "Ensure mount propagation mode is not set to shared", mount_propagation),
    ContainerRule("5.21", "Ensure that the host's UTS namespace is not shared", host_uts),
    ContainerRule("5.22", "Ensure the default seccomp profile is not Disabled", seccomp),
    ContainerRule("5.25", "Ensure that cgroup usage is confirmed", cgroup_parent),
    ContainerRule(
        "5.26", "Ensure that the container is restricted from acquiring additional privileges", no_new_privileges
    ),
    ContainerRule("5.27", "Ensure that container health is checked at runtime", healthcheck),
    ContainerRule("5.29", "Ensure that the PIDs cgroup limit is used", pids_limit),
    ContainerRule("5.30", "Ensure that Docker's default bridge 'docker0' is not used", default_bridge),
    ContainerRule("5.31", "Ensure that the host's user namespaces are not shared", host_userns),
    ContainerRule("5.32", "Ensure that the Docker socket is not mounted inside any containers", engine_socket),
    ContainerRule(
        "C.5.3.1",
        "Ensure that CAP_DAC_READ_SEARCH Linux kernel capability is disabled",
        _capability_rule("C.5.3.1", "DAC_READ_SEARCH"),
    ),
    ContainerRule(
        "C.5.3.2",
        "Ensure that CAP_SYS_MODULE Linux kernel capability is disabled",
        _capability_rule("C.5.3.2", "SYS_MODULE"),
    ),
    ContainerRule(
        "C.5.3.3",
        "Ensure that CAP_SYS_ADMIN Linux kernel capability is disabled",
        _capability_rule("C.5.3.3", "SYS_ADMIN"),
    ),
    ContainerRule(
        "C.5.3.4",
        "Ensure that CAP_SYS_PTRACE Linux kernel capability is disabled",
        _capability_rule("C.5.3.4", "SYS_PTRACE"),
    ),
)


def _index(rules: tuple[ContainerRule, ...]) -> Mapping[str, ContainerRule]:
    by_id: dict[str, ContainerRule] = {}
    for rule in rules:
        if rule.id in by_id:
            raise ValueError(f"container rule {rule.id} is defined twice")
        by_id[rule.id] = rule
    return MappingProxyType(by_id)


RULES_BY_ID: Final = _index(RULES)


def evaluate(spec: ContainerSpec, rules: tuple[ContainerRule, ...] = RULES) -> list[Verdict]:
    """Every rule's verdict on ``spec``, in benchmark order."""
    return [rule(spec) for rule in rules]
