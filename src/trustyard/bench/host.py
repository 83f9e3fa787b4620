"""Section 1 of the CIS Docker Benchmark: the host — a partition for Docker's data, who may drive the daemon,
and audit rules for every Docker file and binary.

Everything is read from files under ``--root`` (so a host can be audited from a mounted image or a rescue
system): ``/proc/mounts`` and ``/etc/fstab`` for the partition, ``/etc/group`` for the ``docker`` group, and the
audit rules in ``/etc/audit/audit.rules`` and ``/etc/audit/rules.d/*.rules`` — the rules the host loads at
boot, which is what survives a reboot (``auditctl -l`` would show only what is loaded now). A watch on a
directory covers the files under it, as ``auditctl -w`` does.

The paths are those of a rootful dockerd; for a rootless daemon or podman each is looked for where that engine
keeps it (``layout.py``: ``~/.local/share/docker`` for ``/var/lib/docker``, the user unit for docker.service ...).

Not here: the kernel's live audit state; host hardening (1.2.1) and version currency (1.2.2), which are
judgements for a person and are reported as NOTE/INFO.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Final

from trustyard.bench.base import CheckResult, FunctionCheck, InputUnavailable, info, manual, note, passed, warned
from trustyard.bench.context import BenchContext
from trustyard.bench.daemonconfig import DEFAULT_DATA_ROOT
from trustyard.bench.layout import binary_candidates, unit_candidates


def audit_rules(context: BenchContext) -> set[str]:
    """Every path watched (``-w PATH``) or filtered on (``-F path=``/``-F dir=``) by the host's audit rules."""
    files = [context.path("/etc/audit/audit.rules")]
    rules_d = context.path("/etc/audit/rules.d")
    if rules_d.is_dir():
        files += sorted(rules_d.glob("*.rules"))
    present = [f for f in files if f.is_file()]
    if not present:
        raise InputUnavailable(f"no audit rules at {files[0]} or in {rules_d}")
    watched: set[str] = set()
    for f in present:
        for line in f.read_text(errors="replace").splitlines():
            words = line.split("#", 1)[0].split()
            for i, word in enumerate(words):
                if word == "-w" and i + 1 < len(words):
                    watched.add(posixpath.normpath(words[i + 1]))
                elif word == "-F" and i + 1 < len(words):
                    key, _, value = words[i + 1].partition("=")
                    if key in ("path", "dir") and value:
                        watched.add(posixpath.normpath(value))
    return watched


def _is_watched(path: str, watched: set[str]) -> bool:
    return any(path == w or path.startswith(w.rstrip("/") + "/") for w in watched)


def locate(context: BenchContext, candidates: Sequence[str]) -> str | None:
    """The first of ``candidates`` (host paths) that exists under the root."""
    return next((c for c in candidates if context.path(c).exists() or context.path(c).is_symlink()), None)


def _audit_check(check_id: str, title: str, rootful: Sequence[str]) -> FunctionCheck:
    def decide(context: BenchContext) -> CheckResult:
        candidates = context.layout().resolve(rootful)
        found = locate(context, candidates)
        if found is None:
            return info(f"{candidates[0]} is not on this host", list(candidates))
        if _is_watched(found, audit_rules(context)):
            return passed(f"{found} is audited")
        return warned(f"no audit rule for {found}", [found])

    return FunctionCheck(
        check_id,
        title,
        "1",
        f"Add an audit watch for the path in /etc/audit/rules.d (for example `-w {rootful[0]} -p wa -k docker`) "
        "and load it with augenrules --load.",
        decide,
    )


def _mount_points(context: BenchContext) -> list[str]:
    points: list[str] = []
    for host_path, column in (("/proc/mounts", 1), ("/etc/fstab", 1)):
        f = context.path(host_path)
        if not f.is_file():
            continue
        for line in f.read_text(errors="replace").splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) > column:
                points.append(posixpath.normpath(fields[column].replace("\\040", " ")))
    return points


def separate_partition(context: BenchContext) -> CheckResult:
    """1.1.1: Docker's data on the root file system can fill it and take the host down with it."""
    try:
        data_root = context.daemon().data_root
    except InputUnavailable:
        data_root = DEFAULT_DATA_ROOT
    if data_root == DEFAULT_DATA_ROOT:  # not configured: the engine's own default (rootless, podman)
        data_root = context.layout().path(DEFAULT_DATA_ROOT)
    points = _mount_points(context)
    if not points:
        raise InputUnavailable(f"neither {context.path('/proc/mounts')} nor {context.path('/etc/fstab')} is readable")
    data_root = posixpath.normpath(data_root)
    holding = [p for p in points if p != "/" and (data_root == p or data_root.startswith(p.rstrip("/") + "/"))]
    if holding:
        return passed(f"{data_root} is on its own file system ({max(holding, key=len)})")
    return warned(f"{data_root} is not on a separate partition", [data_root])


def docker_group(context: BenchContext) -> CheckResult:
    """1.1.2: members of the docker group are root on the host in all but name; list them for review."""
    group = context.path("/etc/group")
    if not group.is_file():
        raise InputUnavailable(f"no {group}")
    for line in group.read_text(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == "docker":
            members = [m for m in fields[3].split(",") if m]
            if not members:
                return passed("the docker group has no members")
            return info("users in the docker group (each can control the daemon)", members)
    return passed("there is no docker group")


def _version(context: BenchContext) -> CheckResult:
    try:
        version = context.engine().server_version
    except InputUnavailable as e:
        return note(f"compare the Docker version with the latest release ({e.message})")
    return info(f"Docker server version {version}: compare with the latest release", [version])


AUDITED: Final = (
    ("1.1.3", "Ensure auditing is configured for the Docker daemon", binary_candidates("dockerd")),
    ("1.1.4", "Ensure auditing is configured for Docker files and directories - /run/containerd", ("/run/containerd",)),
    ("1.1.5", "Ensure auditing is configured for Docker files and directories - /var/lib/docker", ("/var/lib/docker",)),
    ("1.1.6", "Ensure auditing is configured for Docker files and directories - /etc/docker", ("/etc/docker",)),
    (
        "1.1.7",
        "Ensure auditing is configured for Docker files and directories - docker.service",
        unit_candidates("docker.service"),
    ),
    (
        "1.1.8",
        "Ensure auditing is configured for Docker files and directories - containerd.sock",
        ("/run/containerd/containerd.sock",),
    ),
    (
        "1.1.9",
        "Ensure auditing is configured for Docker files and directories - docker.socket",
        unit_candidates("docker.socket"),
    ),
    (
        "1.1.10",
        "Ensure auditing is configured for Docker files and directories - /etc/default/docker",
        ("/etc/default/docker",),
    ),
    (
        "1.1.11",
        "Ensure auditing is configured for Docker files and directories - /etc/docker/daemon.json",
        ("/etc/docker/daemon.json",),
    ),
    (
        "1.1.12",
        "Ensure auditing is configured for Docker files and directories - /etc/containerd/config.toml",
        ("/etc/containerd/config.toml",),
    ),
    (
        "1.1.13",
        "Ensure auditing is configured for Docker files and directories - /etc/sysconfig/docker",
        ("/etc/sysconfig/docker",),
    ),
    (
        "1.1.14",
        "Ensure auditing is configured for Docker files and directories - /usr/bin/containerd",
        binary_candidates("containerd"),
    ),
    (
        "1.1.15",
        "Ensure auditing is configured for Docker files and directories - /usr/bin/containerd-shim",
        binary_candidates("containerd-shim"),
    ),
    (
        "1.1.16",
        "Ensure auditing is configured for Docker files and directories - /usr/bin/containerd-shim-runc-v1",
        binary_candidates("containerd-shim-runc-v1"),
    ),
    (
        "1.1.17",
        "Ensure auditing is configured for Docker files and directories - /usr/bin/containerd-shim-runc-v2",
        binary_candidates("containerd-shim-runc-v2"),
    ),
    (
        "1.1.18",
        "Ensure auditing is configured for Docker files and directories - /usr/bin/runc",
        binary_candidates("runc"),
    ),
)

CHECKS: Final = (
    FunctionCheck(
        "1.1.1",
        "Ensure a separate partition for containers has been created",
        "1",
        "Put Docker's data root on its own file system (a dedicated partition or logical volume mounted there), "
        "so that images and containers filling it cannot fill the host's root file system.",
        separate_partition,
        level=2,
    ),
    FunctionCheck(
        "1.1.2",
        "Ensure only trusted users are allowed to control Docker daemon",
        "1",
        "Remove from the docker group every user who should not have root-equivalent control of the host "
        "(gpasswd -d USER docker).",
        docker_group,
    ),
    *(_audit_check(i, t, c) for i, t, c in AUDITED),
    FunctionCheck(
        "1.2.1",
        "Ensure the container host has been Hardened",
        "1",
        "Harden the host operating system following its own benchmark (for example CIS for the distribution): "
        "minimal packages, patched kernel, restricted logins.",
        manual("host hardening is judged against the distribution's own benchmark"),
        scored=False,
    ),
    FunctionCheck(
        "1.2.2",
        "Ensure that the version of Docker is up to date",
        "1",
        "Keep the engine on a supported release with its security fixes applied.",
        _version,
        scored=False,
    ),
)

__all__ = ["CHECKS", "audit_rules", "binary_candidates", "unit_candidates"]
