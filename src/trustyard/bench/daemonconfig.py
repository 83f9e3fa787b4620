"""The Docker daemon's effective settings, from ``daemon.json`` and the ``dockerd`` command line, parsed once.

dockerd takes each setting either as a key of ``daemon.json`` or as a command-line flag (and refuses the same
setting in both); section 2 of the benchmark judges the result, whichever way it was given. This module reads
both into one frozen ``DaemonSettings`` with dockerd's defaults filled in, so the checks never see raw JSON or
argv. Flag and key names follow ``dockerd --help`` and the daemon.json reference of Docker 20.10+.

When no command line is given, the running dockerd's is read from ``<root>/proc/*/cmdline`` (a rootless daemon
runs as its user, which is how ``rootless`` is recognised). Not here: deciding what is compliant (``daemon.py``).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from trustyard.bench.base import BenchError
from trustyard.bench.layout import Engine, find_engine_process

DEFAULT_DAEMON_JSON: Final = "etc/docker/daemon.json"
DEFAULT_DATA_ROOT: Final = "/var/lib/docker"

# daemon.json key -> kind; flags are the same names with -- (plus the short and plural forms below)
_BOOL_KEYS: Final = frozenset(
    {
        "icc",
        "iptables",
        "tls",
        "tlsverify",
        "live-restore",
        "userland-proxy",
        "experimental",
        "no-new-privileges",
        "disable-legacy-registry",
    }
)
_STRING_KEYS: Final = frozenset(
    {
        "log-level",
        "storage-driver",
        "tlscacert",
        "tlscert",
        "tlskey",
        "userns-remap",
        "cgroup-parent",
        "log-driver",
        "seccomp-profile",
        "data-root",
        "config-file",
    }
)
_LIST_FLAGS: Final = {
    "insecure-registry": "insecure-registries",
    "host": "hosts",
    "default-ulimit": "default-ulimits",
    "authorization-plugin": "authorization-plugins",
    "storage-opt": "storage-opts",
}
_SHORT: Final = {"-H": "host", "-l": "log-level", "-s": "storage-driver", "-g": "data-root", "-D": "debug"}
_ALIASES: Final = {"graph": "data-root"}


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """dockerd's effective settings; ``sources`` says what was read (for the INFO lines and reports)."""

    icc: bool = True
    log_level: str = "info"
    iptables: bool = True
    insecure_registries: tuple[str, ...] = ()
    storage_driver: str = ""
    tls: bool = False
    tlsverify: bool = False
    tlscacert: str = ""
    tlscert: str = ""
    tlskey: str = ""
    hosts: tuple[str, ...] = ()
    default_ulimits: tuple[str, ...] = ()
    userns_remap: str = ""
    cgroup_parent: str = ""
    authorization_plugins: tuple[str, ...] = ()
    log_driver: str = "json-file"
    live_restore: bool = False
    userland_proxy: bool = True
    seccomp_profile: str = ""
    experimental: bool = False
    no_new_privileges: bool = False
    storage_opts: tuple[str, ...] = ()
    data_root: str = DEFAULT_DATA_ROOT
    disable_legacy_registry: bool = False
    rootless: bool = False
    sources: tuple[str, ...] = field(default=())

    @property
    def tcp_hosts(self) -> tuple[str, ...]:
        """The listen addresses reachable over the network (``tcp://``; ``fd://`` and ``unix://`` are local)."""
        return tuple(h for h in self.hosts if h.startswith("tcp://") or (":" in h and "://" not in h))


def parse_cmdline(argv: Sequence[str]) -> dict[str, Any]:
    """dockerd's argv (from ``argv[1]`` on) as daemon.json keys; unknown flags are skipped, as are their values."""
    found: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            continue
        name, eq, value = arg.partition("=")
        name = _SHORT.get(name, name.lstrip("-"))
        name = _ALIASES.get(name, name)
        if name in _BOOL_KEYS:
            found[name] = value.lower() not in ("false", "0") if eq else True
            continue
        if name not in _STRING_KEYS and name not in _LIST_FLAGS:
            continue
        if not eq:
            if i >= len(argv):
                raise BenchError(f"dockerd flag --{name} has no value")
            value = argv[i]
            i += 1
        if name in _LIST_FLAGS:
            found.setdefault(_LIST_FLAGS[name], []).append(value)
        else:
            found[name] = value
    return found


def find_dockerd(root: Path) -> tuple[list[str], bool] | None:
    """The argv of a running dockerd under ``<root>/proc`` and whether it runs as a user other than root."""
    found = find_engine_process(root, Engine.DOCKER)
    return None if found is None else (found.argv, found.uid != 0)


def load_daemon_json(path: Path) -> dict[str, Any]:
    """``daemon.json`` as a dict; ``BenchError`` when it is not a JSON object."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise BenchError(f"{path}: cannot read daemon configuration: {e}") from e
    if not isinstance(data, dict):
        raise BenchError(f"{path}: daemon configuration is not a JSON object")
    return data


def _ulimits(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        return tuple(
            f"{k}={v.get('Soft')}:{v.get('Hard')}" if isinstance(v, Mapping) else f"{k}={v}" for k, v in value.items()
        )
    return tuple(str(v) for v in value or ())


def settings_from(config: Mapping[str, Any], *, rootless: bool = False, sources: Sequence[str] = ()) -> DaemonSettings:
    """``DaemonSettings`` from daemon.json keys (the command line already merged in), defaults for the rest."""

    def text(key: str, default: str = "") -> str:
        return str(config.get(key, default) or default)

    def flag(key: str, default: bool) -> bool:
        value = config.get(key, default)
        return value if isinstance(value, bool) else str(value).lower() == "true"

    def strings(key: str) -> tuple[str, ...]:
        value = config.get(key) or ()
        return (value,) if isinstance(value, str) else tuple(str(v) for v in value)

    return DaemonSettings(
        icc=flag("icc", True),
        log_level=text("log-level", "info"),
        iptables=flag("iptables", True),
        insecure_registries=strings("insecure-registries"),
        storage_driver=text("storage-driver"),
        tls=flag("tls", False),
        tlsverify=flag("tlsverify", False),
        tlscacert=text("tlscacert"),
        tlscert=text("tlscert"),
        tlskey=text("tlskey"),
        hosts=strings("hosts"),
        default_ulimits=_ulimits(config.get("default-ulimits")),
        userns_remap=text("userns-remap"),
        cgroup_parent=text("cgroup-parent"),
        authorization_plugins=strings("authorization-plugins"),
        log_driver=text("log-driver", "json-file"),
        live_restore=flag("live-restore", False),
        userland_proxy=flag("userland-proxy", True),
        seccomp_profile=text("seccomp-profile"),
        experimental=flag("experimental", False),
        no_new_privileges=flag("no-new-privileges", False),
        storage_opts=strings("storage-opts"),
        data_root=text("data-root", DEFAULT_DATA_ROOT),
        disable_legacy_registry=flag("disable-legacy-registry", False),
        rootless=rootless,
        sources=tuple(sources),
    )


def load_settings(
    root: Path,
    *,
    daemon_json: Path | None = None,
    cmdline: str | None = None,
    rootless: bool = False,
    default_json: str = "/" + DEFAULT_DAEMON_JSON,
) -> DaemonSettings | None:
    """The daemon's settings from what is there; ``None`` when neither a daemon.json nor a command line is found.

    ``rootless``: the daemon is known to run rootless (``bench/layout.py``) whatever its process shows.
    ``default_json``: the host path dockerd reads when neither ``daemon_json`` nor its ``--config-file`` says
    (a rootless dockerd reads ``~/.config/docker/daemon.json``).
    """
    argv: list[str] | None = None
    sources: list[str] = []
    if cmdline is not None:
        argv = shlex.split(cmdline)
        sources.append("command line given")
    else:
        running = find_dockerd(root)
        if running is not None:
            argv, running_rootless = running
            rootless = rootless or running_rootless
            sources.append("running dockerd")
    flags = parse_cmdline(argv[1:] if argv and not argv[0].startswith("-") else argv or [])
    path = daemon_json
    if path is None:
        named = flags.get("config-file")
        path = root / (str(named) if named else default_json).lstrip("/")
    config: dict[str, Any] = {}
    if path.is_file():
        config = load_daemon_json(path)
        sources.append(str(path))
    elif daemon_json is not None:
        raise BenchError(f"{daemon_json}: no such daemon configuration file")
    if not sources:
        return None
    for key, value in flags.items():
        if key in _LIST_FLAGS.values() and key in config:
            config[key] = [*config[key], *value] if isinstance(config[key], list) else value
        else:
            config[key] = value
    return settings_from(config, rootless=rootless or bool(config.get("rootless")), sources=sources)
