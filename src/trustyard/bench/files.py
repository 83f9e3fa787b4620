"""Section 3 of the CIS Docker Benchmark: the owner and mode of every file and socket the daemon relies on.

Each recommendation names a file, its expected owner and the most permissive mode allowed; a mode passes
when it grants nothing beyond that mode ("644 or more restrictive"). Files are found under ``--root``;
paths that depend on configuration (TLS files, daemon.json, the data root's socket) come from the daemon's
settings when they are known. The docker socket belongs to ``root:docker``: the docker group's ID is read
from the audited host's ``/etc/group``, not from the machine running the bench.

For a rootless daemon or podman the files are looked for where that engine keeps them (``layout.py``), and
those in the user's home or runtime directory should belong to that user, not root: "root:root" in the
benchmark means "the daemon's owner", and a rootless daemon cannot even read files only root may.

A file that is not on the host is INFO (nothing to protect), never PASS.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from trustyard.bench.base import CheckResult, FunctionCheck, InputUnavailable, info, passed, warned
from trustyard.bench.context import BenchContext
from trustyard.bench.layout import DOCKER_SOCKETS, Engine, unit_candidates

Paths = Callable[[BenchContext], Sequence[str]]


def group_id(context: BenchContext, name: str) -> int | None:
    """The ID of group ``name`` on the audited host."""
    group = context.path("/etc/group")
    if not group.is_file():
        return None
    for line in group.read_text(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            return int(fields[2])
    return None


def _existing(context: BenchContext, candidates: Sequence[str]) -> list[tuple[str, os.stat_result]]:
    found = []
    for c in candidates:
        try:
            found.append((c, context.path(c).stat()))
        except OSError:
            continue
    return found


def _fixed(*paths: str) -> Paths:
    return lambda context: context.layout().resolve(paths)


def _first(*rootful: str) -> Paths:
    def pick(context: BenchContext) -> Sequence[str]:
        paths = context.layout().resolve(rootful)
        return [p for p, _ in _existing(context, paths)][:1] or paths[:1]

    return pick


def _tls(attribute: str) -> Paths:
    def pick(context: BenchContext) -> Sequence[str]:
        value = getattr(context.daemon(), attribute)
        if not value:
            raise InputUnavailable(f"the daemon has no {attribute} configured")
        return (str(value),)

    return pick


def _daemon_json(context: BenchContext) -> Sequence[str]:
    if context.daemon_json is not None:
        return (str(context.daemon_json),)
    return (context.layout().path("/etc/docker/daemon.json"),)


def _registry_certs(context: BenchContext) -> Sequence[str]:
    where = context.layout().path("/etc/docker/certs.d")
    certs = context.path(where)
    if not certs.is_dir():
        return (where,)
    return sorted("/" + str(p.relative_to(context.root)) for p in certs.rglob("*") if p.is_file())


def _resolve(context: BenchContext, path: str) -> Path:
    given = Path(path)
    return given if context.daemon_json is not None and path == str(context.daemon_json) else context.path(path)


def _root_group(context: BenchContext, group: str) -> int:
    """The gid of ``group`` for a file root owns; podman's socket belongs to root's group (there is no docker)."""
    if group == "root" or context.layout().engine is Engine.PODMAN:
        return 0
    gid = group_id(context, group)
    if gid is None:
        raise InputUnavailable(f"no {group} group in {context.path('/etc/group')}")
    return gid


def ownership(check_id: str, title: str, paths: Paths, group: str = "root") -> FunctionCheck:
    """A check that every file ``paths`` names is owned by root and by ``group``."""

    def decide(context: BenchContext) -> CheckResult:
        layout = context.layout()
        targets = list(paths(context))
        checked, wrong, owners = 0, [], set()
        for p in targets:
            try:
                st = _resolve(context, p).stat()
            except OSError:
                continue
            checked += 1
            uid, gid = layout.owner_of(p) or (0, _root_group(context, group))
            owners.add(f"{uid}:{gid}" if (uid, gid) != (0, 0) else "root:root")
            if st.st_uid != uid or st.st_gid != gid:
                wrong.append(f"{p} ({st.st_uid}:{st.st_gid})")
        if not checked:
            return info(f"{targets[0] if targets else 'the file'} is not on this host")
        owner = ", ".join(sorted(owners))
        if wrong:
            return warned(f"not owned by {owner}", wrong)
        return passed(f"owned by {owner}", targets)

    return FunctionCheck(check_id, title, "3", f"chown root:{group} on the file.", decide)


def permissions(check_id: str, title: str, paths: Paths, mode: int) -> FunctionCheck:
    """A check that no file ``paths`` names grants more than ``mode``."""

    def decide(context: BenchContext) -> CheckResult:
        targets = list(paths(context))
        checked, wrong = 0, []
        for p in targets:
            try:
                st = _resolve(context, p).stat()
            except OSError:
                continue
            checked += 1
            actual = stat.S_IMODE(st.st_mode)
            if actual & ~mode:
                wrong.append(f"{p} ({actual:o})")
        if not checked:
            return info(f"{targets[0] if targets else 'the file'} is not on this host")
        if wrong:
            return warned(f"more permissive than {mode:o}", wrong)
        return passed(f"{mode:o} or more restrictive", targets)

    return FunctionCheck(check_id, title, "3", f"chmod {mode:o} on the file (or a stricter mode).", decide)


_SERVICE: Final = _first(*unit_candidates("docker.service"))
_SOCKET_UNIT: Final = _first(*unit_candidates("docker.socket"))
_DOCKER_SOCK: Final = _first(*DOCKER_SOCKETS)
_CONTAINERD_SOCK: Final = _first("/run/containerd/containerd.sock")

CHECKS: Final = (
    ownership("3.1", "Ensure that the docker.service file ownership is set to root:root", _SERVICE),
    permissions("3.2", "Ensure that docker.service file permissions are appropriately set", _SERVICE, 0o644),
    ownership("3.3", "Ensure that docker.socket file ownership is set to root:root", _SOCKET_UNIT),
    permissions(
        "3.4", "Ensure that docker.socket file permissions are set to 644 or more restrictive", _SOCKET_UNIT, 0o644
    ),
    ownership("3.5", "Ensure that the /etc/docker directory ownership is set to root:root", _fixed("/etc/docker")),
    permissions(
        "3.6",
        "Ensure that /etc/docker directory permissions are set to 755 or more restrictively",
        _fixed("/etc/docker"),
        0o755,
    ),
    ownership("3.7", "Ensure that registry certificate file ownership is set to root:root", _registry_certs),
    permissions(
        "3.8",
        "Ensure that registry certificate file permissions are set to 444 or more restrictively",
        _registry_certs,
        0o444,
    ),
    ownership("3.9", "Ensure that TLS CA certificate file ownership is set to root:root", _tls("tlscacert")),
    permissions(
        "3.10",
        "Ensure that TLS CA certificate file permissions are set to 444 or more restrictively",
        _tls("tlscacert"),
        0o444,
    ),
    ownership("3.11", "Ensure that Docker server certificate file ownership is set to root:root", _tls("tlscert")),
    permissions(
        "3.12",
        "Ensure that the Docker server certificate file permissions are set to 444 or more restrictively",
        _tls("tlscert"),
        0o444,
    ),
    ownership(
        "3.13", "Ensure that the Docker server certificate key file ownership is set to root:root", _tls("tlskey")
    ),
    permissions(
        "3.14", "Ensure that the Docker server certificate key file permissions are set to 400", _tls("tlskey"), 0o400
    ),
    ownership(
        "3.15", "Ensure that the Docker socket file ownership is set to root:docker", _DOCKER_SOCK, group="docker"
    ),
    permissions(
        "3.16",
        "Ensure that the Docker socket file permissions are set to 660 or more restrictively",
        _DOCKER_SOCK,
        0o660,
    ),
    ownership("3.17", "Ensure that the daemon.json file ownership is set to root:root", _daemon_json),
    permissions(
        "3.18", "Ensure that daemon.json file permissions are set to 644 or more restrictive", _daemon_json, 0o644
    ),
    ownership(
        "3.19", "Ensure that the /etc/default/docker file ownership is set to root:root", _fixed("/etc/default/docker")
    ),
    permissions(
        "3.20",
        "Ensure that the /etc/default/docker file permissions are set to 644 or more restrictively",
        _fixed("/etc/default/docker"),
        0o644,
    ),
    permissions(
        "3.21",
        "Ensure that the /etc/sysconfig/docker file permissions are set to 644 or more restrictively",
        _fixed("/etc/sysconfig/docker"),
        0o644,
    ),
    ownership(
        "3.22",
        "Ensure that the /etc/sysconfig/docker file ownership is set to root:root",
        _fixed("/etc/sysconfig/docker"),
    ),
    ownership("3.23", "Ensure that the Containerd socket file ownership is set to root:root", _CONTAINERD_SOCK),
    permissions(
        "3.24",
        "Ensure that the Containerd socket file permissions are set to 660 or more restrictively",
        _CONTAINERD_SOCK,
        0o660,
    ),
)

__all__ = ["CHECKS", "group_id"]
