"""Where the audited engine keeps its files: rootful or rootless Docker, rootful or rootless podman.

Sections 1 and 3 name the paths of a rootful dockerd (``/var/lib/docker``, ``/etc/docker/daemon.json``,
``/var/run/docker.sock``, ``/lib/systemd/system/docker.service`` ...). A rootless daemon keeps the same things
in its user's home and runtime directory, owned by that user, and podman in ``containers`` paths; auditing the
rootful paths on such a host would report "not on this host" for everything, or judge the wrong files.

A ``Layout`` maps each rootful path the checks name to where this engine keeps it, and says who should own
the files (root, or the rootless user). It is recognised from the engine process under ``ROOT/proc`` — a
``dockerd`` or a ``podman system service``, and the user it runs as — or from what the user said
(``--rootless USER``, ``--engine``). The user's home and primary group come from ``ROOT/etc/passwd``, the
runtime directory from the engine process's ``XDG_RUNTIME_DIR`` (``ROOT/proc/PID/environ``), else
``/run/user/UID``.

Rootless Docker (``dockerd-rootless-setuptool.sh``): data ``~/.local/share/docker``, configuration
``~/.config/docker`` (daemon.json, certs.d), socket ``$XDG_RUNTIME_DIR/docker.sock`` (``/run/user/UID``),
containerd in ``$XDG_RUNTIME_DIR/docker/containerd``, the systemd user unit ``~/.config/systemd/user/docker.service``.
podman: storage ``/var/lib/containers/storage`` (rootless ``~/.local/share/containers/storage``),
configuration ``/etc/containers`` (rootless ``~/.config/containers``) with ``containers.conf`` in daemon.json's
place, socket ``/run/podman/podman.sock`` (rootless ``/run/user/UID/podman/podman.sock``), units
``podman.service``/``podman.socket``; podman has no containerd.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Final

from trustyard.bench.base import BenchError, InputUnavailable

UNIT_DIRS: Final = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
BIN_DIRS: Final = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin")
DOCKER_SOCKETS: Final = ("/run/docker.sock", "/var/run/docker.sock")


class Engine(StrEnum):
    """Which engine's files: ``--engine``."""

    DOCKER = "docker"
    PODMAN = "podman"


def unit_candidates(name: str) -> tuple[str, ...]:
    """Where systemd finds the system unit ``name``."""
    return tuple(f"{d}/{name}" for d in UNIT_DIRS)


def binary_candidates(name: str) -> tuple[str, ...]:
    """Where a distribution installs the binary ``name`` (Debian ships dockerd in /usr/sbin)."""
    return tuple(f"{d}/{name}" for d in BIN_DIRS)


@dataclass(frozen=True, slots=True)
class User:
    """A user of the audited host, from its ``/etc/passwd``."""

    name: str
    uid: int
    gid: int
    home: str
    runtime_dir: str = ""
    """``$XDG_RUNTIME_DIR`` of the engine process when it could be read, else ``/run/user/UID`` (systemd's)."""

    @property
    def run(self) -> str:
        """The user's runtime directory, where a rootless engine keeps its sockets."""
        return (self.runtime_dir or f"/run/user/{self.uid}").rstrip("/")


@dataclass(frozen=True, slots=True)
class Layout:
    """The engine's paths and owner; ``user`` is ``None`` for a rootful engine (files owned by root)."""

    engine: Engine = Engine.DOCKER
    user: User | None = None
    _paths: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def rootless(self) -> bool:
        """Whether the engine runs as an unprivileged user."""
        return self.user is not None

    @property
    def owner(self) -> tuple[int, int]:
        """The uid and gid that should own the engine's files: root's, or the rootless user's."""
        return (0, 0) if self.user is None else (self.user.uid, self.user.gid)

    @property
    def owner_name(self) -> str:
        """``root:root``, or ``USER:GID`` for a rootless engine (for the result lines)."""
        return "root:root" if self.user is None else f"{self.user.name}:{self.user.gid}"

    @property
    def describe(self) -> str:
        """``rootless docker (alice)``, ``podman`` ...: what the result lines say was audited."""
        return f"rootless {self.engine} ({self.user.name})" if self.user else str(self.engine)

    def owner_of(self, path: str) -> tuple[int, int] | None:
        """Who should own ``path``: the rootless user for paths in their home or runtime directory, else
        ``None`` (root, as the benchmark says)."""
        if self.user is None:
            return None
        mine = (self.user.home.rstrip("/") + "/", self.user.run + "/")
        return self.owner if any(path.startswith(m) for m in mine) else None

    def resolve(self, candidates: Iterable[str]) -> tuple[str, ...]:
        """The engine's own paths for the rootful Docker paths ``candidates``, in order, without repeats."""
        found: list[str] = []
        for c in candidates:
            for p in self._paths.get(c, (c,)):
                if p not in found:
                    found.append(p)
        return tuple(found)

    def path(self, rootful: str) -> str:
        """The engine's path for one rootful Docker path."""
        return self.resolve((rootful,))[0]


def _docker_rootless(user: User) -> dict[str, tuple[str, ...]]:
    home, run = user.home.rstrip("/"), user.run
    paths: dict[str, tuple[str, ...]] = {
        "/var/lib/docker": (f"{home}/.local/share/docker",),
        "/etc/docker": (f"{home}/.config/docker",),
        "/etc/docker/daemon.json": (f"{home}/.config/docker/daemon.json",),
        "/etc/docker/certs.d": (f"{home}/.config/docker/certs.d",),
        "/run/containerd": (f"{run}/docker/containerd",),
        "/run/containerd/containerd.sock": (f"{run}/docker/containerd/containerd.sock",),
        **dict.fromkeys(DOCKER_SOCKETS, (f"{run}/docker.sock",)),
    }
    for unit in ("docker.service", "docker.socket"):
        paths.update(dict.fromkeys(unit_candidates(unit), (f"{home}/.config/systemd/user/{unit}",)))
    return paths


def _podman(user: User | None) -> dict[str, tuple[str, ...]]:
    if user is None:
        config, storage, sock = "/etc/containers", "/var/lib/containers/storage", "/run/podman/podman.sock"
        units = {unit: unit_candidates(unit) for unit in ("podman.service", "podman.socket")}
    else:
        home = user.home.rstrip("/")
        config, storage = f"{home}/.config/containers", f"{home}/.local/share/containers/storage"
        sock = f"{user.run}/podman/podman.sock"
        units = {unit: (f"{home}/.config/systemd/user/{unit}",) for unit in ("podman.service", "podman.socket")}
    paths: dict[str, tuple[str, ...]] = {
        "/var/lib/docker": (storage,),
        "/etc/docker": (config,),
        "/etc/docker/daemon.json": (f"{config}/containers.conf",),
        "/etc/docker/certs.d": (f"{config}/certs.d",),
        **dict.fromkeys(DOCKER_SOCKETS, (sock,)),
        **{b: binary_candidates("podman") for b in binary_candidates("dockerd")},
    }
    for docker_unit, podman_unit in (("docker.service", "podman.service"), ("docker.socket", "podman.socket")):
        paths.update(dict.fromkeys(unit_candidates(docker_unit), units[podman_unit]))
    return paths


def make_layout(engine: Engine, user: User | None) -> Layout:
    """The layout of ``engine`` run by ``user`` (``None``: root)."""
    paths: dict[str, tuple[str, ...]] = {}
    if engine is Engine.PODMAN:
        paths = _podman(user)
    elif user is not None:
        paths = _docker_rootless(user)
    return Layout(engine, user, MappingProxyType(paths))


def lookup_user(root: Path, name_or_uid: str) -> User:
    """A user of the audited host by name or uid, from ``ROOT/etc/passwd``; ``BenchError`` when it has none."""
    passwd = root / "etc/passwd"
    try:
        lines = passwd.read_text(errors="replace").splitlines()
    except OSError as e:
        raise BenchError(f"cannot read {passwd} to find user {name_or_uid!r}: {e.strerror}") from e
    for line in lines:
        fields = line.split(":")
        if len(fields) >= 6 and name_or_uid in (fields[0], fields[2]) and fields[2].isdigit() and fields[3].isdigit():
            return User(fields[0], int(fields[2]), int(fields[3]), fields[5])
    raise BenchError(f"no user {name_or_uid!r} in {passwd}")


@dataclass(frozen=True, slots=True)
class EngineProcess:
    """An engine running under ``ROOT/proc``: which, its argv, its uid and its ``XDG_RUNTIME_DIR`` if set."""

    engine: Engine
    argv: list[str]
    uid: int
    runtime_dir: str = ""


def engine_processes(root: Path) -> Iterator[EngineProcess]:
    """Each engine running under ``ROOT/proc`` (a dockerd, or a ``podman system service``)."""
    proc = root / "proc"
    if not proc.is_dir():
        return
    for entry in sorted(proc.iterdir()):
        if not entry.name.isdigit():
            continue
        try:
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            status = (entry / "status").read_text()
        except OSError:
            continue
        engine = _engine_of(argv)
        if engine is None:
            continue
        uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "0")
        try:  # rootlesskit starts dockerd with the user's XDG_RUNTIME_DIR; root may read it, others not
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            environ = []
        runtime = next((e[len(b"XDG_RUNTIME_DIR=") :] for e in environ if e.startswith(b"XDG_RUNTIME_DIR=")), b"")
        yield EngineProcess(engine, argv, int(uid) if uid.isdigit() else 0, runtime.decode(errors="replace"))


def find_engine_process(root: Path, engine: Engine | None = None) -> EngineProcess | None:
    """The engine running under ``ROOT/proc`` (of kind ``engine`` if given); a dockerd before a podman when
    both run (the benchmark is Docker's; ``--engine podman`` audits podman's files then)."""
    found = [p for p in engine_processes(root) if engine is None or p.engine is engine]
    found.sort(key=lambda p: p.engine is not Engine.DOCKER)
    return found[0] if found else None


def _engine_of(argv: Sequence[str]) -> Engine | None:
    if not argv:
        return None
    name = Path(argv[0]).name
    if name == "dockerd":
        return Engine.DOCKER
    if name == "podman" and "system" in argv and "service" in argv:
        return Engine.PODMAN
    return None


def detect(root: Path, *, engine: Engine | None = None, rootless_user: str | None = None) -> Layout:
    """The layout from what was said, else from the engine process under ``ROOT/proc``, else rootful Docker."""
    running = find_engine_process(root, engine)
    chosen = engine or (running.engine if running else Engine.DOCKER)
    if rootless_user is not None:
        user = lookup_user(root, rootless_user)
        if running is not None and running.uid == user.uid and running.runtime_dir:
            user = replace(user, runtime_dir=running.runtime_dir)
        return make_layout(chosen, user)
    if running is not None and running.uid != 0:
        try:
            user = replace(lookup_user(root, str(running.uid)), runtime_dir=running.runtime_dir)
        except BenchError as e:
            raise InputUnavailable(
                f"the {running.engine} process runs rootless as uid {running.uid}, but {e.message}"
            ) from e
        return make_layout(chosen, user)
    return make_layout(chosen, None)


__all__ = [
    "Engine",
    "EngineProcess",
    "Layout",
    "User",
    "binary_candidates",
    "detect",
    "engine_processes",
    "find_engine_process",
    "lookup_user",
    "make_layout",
    "unit_candidates",
]
