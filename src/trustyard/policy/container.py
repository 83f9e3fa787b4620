"""One typed view of a container's configuration, parsed once from either of the two shapes the Engine API uses.

The Docker Engine API describes a container in two different JSON shapes: what ``GET /containers/{id}/json``
(``docker inspect``) returns — ``Config``, ``HostConfig``, ``Mounts``, ``NetworkSettings``, ``AppArmorProfile``
— and what a client sends to ``POST /containers/create`` — the ``Config`` fields at the top level, binds as
``src:dst:opts`` strings and ``--mount`` specs under ``HostConfig``, networks under ``NetworkingConfig``. The
runtime rules (``rules.py``) must judge both the same way (the bench reads the first, the authorization plugin
the second), so both are normalised here into one frozen ``ContainerSpec`` and nothing past this module digs
in the JSON.

Not here: judging the configuration (``rules.py``), or fetching it from an engine (``bench/runtime.py``).
Parsing follows the Engine API v1.41 reference (the API of Docker 20.10, which this machine's dockerd speaks);
unknown fields are ignored because both shapes grow with every API version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trustyard.errors import TrustyardError

_PROPAGATIONS: Final = frozenset({"shared", "rshared", "slave", "rslave", "private", "rprivate"})


class PolicyError(TrustyardError):
    """A container configuration that cannot be read (not JSON of either Engine API shape)."""


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount: ``source`` is a host path for a bind, a volume name for a volume, empty for tmpfs."""

    type: str
    source: str
    destination: str
    read_only: bool = False
    propagation: str = ""


@dataclass(frozen=True, slots=True)
class PortBinding:
    """A container port published on the host; ``host_port`` 0 means an ephemeral port chosen by the engine."""

    container_port: str
    host_ip: str
    host_port: int


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """What the runtime rules need to know about one container, whichever API shape it came from.

    ``processes`` is ``None`` unless the caller asked a running container for its process list: the
    configuration alone cannot say whether sshd runs inside. ``has_healthcheck`` is ``None`` when the
    configuration leaves it to the image (a create request without ``Healthcheck``), which only the engine
    resolves. ``apparmor_profile`` is ``None`` in a create request that names none (the daemon's default
    then applies) and the engine's answer in an inspect, where ``""`` means no profile.
    """

    name: str
    image: str
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    apparmor_profile: str | None = None
    process_label: str = ""
    network_mode: str = "default"
    networks: tuple[str, ...] = ()
    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    userns_mode: str = ""
    memory: int = 0
    cpu_shares: int = 0
    nano_cpus: int = 0
    cpu_quota: int = 0
    read_only_rootfs: bool = False
    ports: tuple[PortBinding, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    restart_policy: str = ""
    restart_max_retries: int = 0
    devices: tuple[str, ...] = ()
    ulimits: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    cgroup_parent: str = ""
    pids_limit: int | None = None
    has_healthcheck: bool | None = None
    user: str = ""
    processes: tuple[str, ...] | None = None

    @property
    def security_options(self) -> dict[str, str]:
        """``--security-opt`` values as ``{key: value}``; both ``key=value`` and the old ``key:value`` are read."""
        found: dict[str, str] = {}
        for key, value in _split_opts(self.security_opt):
            found.setdefault(key, value)
        return found

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any], *, processes: Sequence[str] | None = None) -> ContainerSpec:
        """Parse one element of ``docker inspect`` (``GET /containers/{id}/json``)."""
        try:
            raw = _Inspect.model_validate(data)
        except ValidationError as e:
            raise PolicyError(f"not a container inspect document: {_first_error(e)}") from e
        host = raw.host_config
        health = raw.config.healthcheck
        return cls(
            name=raw.name.lstrip("/") or raw.id[:12],
            image=raw.config.image or raw.image,
            apparmor_profile=raw.apparmor_profile,
            process_label=raw.process_label,
            networks=tuple(raw.network_settings.networks),
            mounts=tuple(
                Mount(m.type, m.source, m.destination, read_only=not m.rw, propagation=m.propagation)
                for m in raw.mounts
            ),
            has_healthcheck=(health is not None and _healthcheck_enabled(health.test)) or raw.state.health is not None,
            user=raw.config.user,
            exposed_ports=tuple(raw.config.exposed_ports or {}),
            processes=tuple(processes) if processes is not None else None,
            **host.common(),
        )

    @classmethod
    def from_create(cls, data: Mapping[str, Any], *, name: str = "") -> ContainerSpec:
        """Parse the body of ``POST /containers/create``; ``name`` is its ``?name=`` query parameter."""
        try:
            raw = _Create.model_validate(data)
        except ValidationError as e:
            raise PolicyError(f"not a container create request: {_first_error(e)}") from e
        host = raw.host_config
        mounts = [_parse_bind(b) for b in host.binds or ()]
        mounts += [
            Mount(
                m.type,
                m.source,
                m.target,
                read_only=m.read_only,
                propagation=m.bind_options.propagation if m.bind_options else "",
            )
            for m in host.mounts or ()
        ]
        common = host.common()
        apparmor = next((v for k, v in _split_opts(common["security_opt"]) if k == "apparmor"), None)
        networks = tuple(raw.networking_config.endpoints_config or {}) if raw.networking_config else ()
        if not networks and common["network_mode"] in ("", "default", "bridge"):
            networks = ("bridge",)
        return cls(
            name=name,
            image=raw.image,
            apparmor_profile=apparmor,
            networks=networks,
            mounts=tuple(mounts),
            has_healthcheck=_healthcheck_enabled(raw.healthcheck.test) if raw.healthcheck else None,
            user=raw.user,
            exposed_ports=tuple(raw.exposed_ports or {}),
            **common,
        )


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


def _healthcheck_enabled(test: Sequence[str] | None) -> bool:
    """``["NONE"]`` disables the image's health check; an empty test inherits it (unknown here: false)."""
    return test is not None and len(test) > 0 and test[0] != "NONE"


def _split_opts(opts: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for opt in opts:
        sep = "=" if "=" in opt else ":"
        key, _, value = opt.partition(sep)
        out.append((key, value))
    return out


def _parse_bind(bind: str) -> Mount:
    """``SRC:DST[:OPTS]`` (``-v``); a SRC that is not an absolute path names a volume."""
    parts = bind.split(":")
    if len(parts) == 1:
        return Mount("volume", "", parts[0])
    source, destination = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) > 2 else []
    kind = "bind" if source.startswith("/") else "volume"
    propagation = next((o for o in opts if o in _PROPAGATIONS), "")
    return Mount(kind, source, destination, read_only="ro" in opts, propagation=propagation)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        """The Engine API and its clients write ``null`` for an unset field; read it as the field's default."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class _RestartPolicy(_Wire):
    name: str = Field(default="", alias="Name")
    maximum_retry_count: int = Field(default=0, alias="MaximumRetryCount")


class _PortHost(_Wire):
    host_ip: str = Field(default="", alias="HostIp")
    host_port: str = Field(default="", alias="HostPort")


class _Device(_Wire):
    path_on_host: str = Field(default="", alias="PathOnHost")
    path_in_container: str = Field(default="", alias="PathInContainer")


class _Ulimit(_Wire):
    name: str = Field(alias="Name")
    soft: int = Field(default=0, alias="Soft")
    hard: int = Field(default=0, alias="Hard")


class _BindOptions(_Wire):
    propagation: str = Field(default="", alias="Propagation")


class _MountSpec(_Wire):
    type: str = Field(default="volume", alias="Type")
    source: str = Field(default="", alias="Source")
    target: str = Field(default="", alias="Target")
    read_only: bool = Field(default=False, alias="ReadOnly")
    bind_options: _BindOptions | None = Field(default=None, alias="BindOptions")


class _HostConfig(_Wire):
    binds: list[str] | None = Field(default=None, alias="Binds")
    mounts: list[_MountSpec] | None = Field(default=None, alias="Mounts")
    privileged: bool = Field(default=False, alias="Privileged")
    cap_add: list[str] | None = Field(default=None, alias="CapAdd")
    cap_drop: list[str] | None = Field(default=None, alias="CapDrop")
    security_opt: list[str] | None = Field(default=None, alias="SecurityOpt")
    network_mode: str = Field(default="", alias="NetworkMode")
    pid_mode: str = Field(default="", alias="PidMode")
    ipc_mode: str = Field(default="", alias="IpcMode")
    uts_mode: str = Field(default="", alias="UTSMode")
    userns_mode: str = Field(default="", alias="UsernsMode")
    memory: int = Field(default=0, alias="Memory")
    cpu_shares: int = Field(default=0, alias="CpuShares")
    nano_cpus: int = Field(default=0, alias="NanoCpus")
    cpu_quota: int = Field(default=0, alias="CpuQuota")
    readonly_rootfs: bool = Field(default=False, alias="ReadonlyRootfs")
    port_bindings: dict[str, list[_PortHost] | None] | None = Field(default=None, alias="PortBindings")
    restart_policy: _RestartPolicy | None = Field(default=None, alias="RestartPolicy")
    devices: list[_Device] | None = Field(default=None, alias="Devices")
    ulimits: list[_Ulimit] | None = Field(default=None, alias="Ulimits")
    cgroup_parent: str = Field(default="", alias="CgroupParent")
    pids_limit: int | None = Field(default=None, alias="PidsLimit")

    def common(self) -> dict[str, Any]:
        """The ``ContainerSpec`` fields that both API shapes carry in ``HostConfig`` under the same names."""
        ports = []
        # the engine discards port bindings in the host's network namespace (5.10 judges that), so they publish nothing
        bindings = {} if self.network_mode == "host" else self.port_bindings or {}
        for container_port, hosts in bindings.items():
            for h in hosts or ():
                port = int(h.host_port) if h.host_port.isdigit() else 0
                ports.append(PortBinding(container_port, h.host_ip, port))
        restart = self.restart_policy or _RestartPolicy()
        return {
            "privileged": self.privileged,
            "cap_add": tuple(_capability(c) for c in self.cap_add or ()),
            "cap_drop": tuple(_capability(c) for c in self.cap_drop or ()),
            "security_opt": tuple(self.security_opt or ()),
            "network_mode": self.network_mode or "default",
            "pid_mode": self.pid_mode,
            "ipc_mode": self.ipc_mode,
            "uts_mode": self.uts_mode,
            "userns_mode": self.userns_mode,
            "memory": self.memory,
            "cpu_shares": self.cpu_shares,
            "nano_cpus": self.nano_cpus,
            "cpu_quota": self.cpu_quota,
            "read_only_rootfs": self.readonly_rootfs,
            "ports": tuple(ports),
            "restart_policy": restart.name,
            "restart_max_retries": restart.maximum_retry_count,
            "devices": tuple(f"{d.path_on_host}:{d.path_in_container}" for d in self.devices or ()),
            "ulimits": tuple(f"{u.name}={u.soft}:{u.hard}" for u in self.ulimits or ()),
            "cgroup_parent": self.cgroup_parent,
            "pids_limit": self.pids_limit,
        }


def _capability(name: str) -> str:
    """``CAP_NET_ADMIN``, ``net_admin`` and ``NET_ADMIN`` are one capability; the engine accepts all three."""
    upper = name.upper()
    return upper[4:] if upper.startswith("CAP_") else upper


class _Healthcheck(_Wire):
    test: list[str] | None = Field(default=None, alias="Test")


class _ContainerConfig(_Wire):
    image: str = Field(default="", alias="Image")
    user: str = Field(default="", alias="User")
    healthcheck: _Healthcheck | None = Field(default=None, alias="Healthcheck")
    exposed_ports: dict[str, Any] | None = Field(default=None, alias="ExposedPorts")


class _InspectMount(_Wire):
    type: str = Field(default="", alias="Type")
    source: str = Field(default="", alias="Source")
    destination: str = Field(default="", alias="Destination")
    rw: bool = Field(default=True, alias="RW")
    propagation: str = Field(default="", alias="Propagation")


class _NetworkSettings(_Wire):
    networks: dict[str, Any] = Field(default_factory=dict, alias="Networks")


class _State(_Wire):
    health: dict[str, Any] | None = Field(default=None, alias="Health")


class _Inspect(_Wire):
    id: str = Field(alias="Id", min_length=1)
    name: str = Field(default="", alias="Name")
    image: str = Field(default="", alias="Image")
    config: _ContainerConfig = Field(default_factory=_ContainerConfig, alias="Config")
    host_config: _HostConfig = Field(alias="HostConfig")
    mounts: list[_InspectMount] = Field(default_factory=list, alias="Mounts")
    network_settings: _NetworkSettings = Field(default_factory=_NetworkSettings, alias="NetworkSettings")
    apparmor_profile: str = Field(default="", alias="AppArmorProfile")
    process_label: str = Field(default="", alias="ProcessLabel")
    state: _State = Field(default_factory=_State, alias="State")


class _EndpointsHolder(_Wire):
    endpoints_config: dict[str, Any] | None = Field(default=None, alias="EndpointsConfig")


class _Create(_Wire):
    image: str = Field(default="", alias="Image")
    user: str = Field(default="", alias="User")
    healthcheck: _Healthcheck | None = Field(default=None, alias="Healthcheck")
    exposed_ports: dict[str, Any] | None = Field(default=None, alias="ExposedPorts")
    host_config: _HostConfig = Field(default_factory=_HostConfig, alias="HostConfig")
    networking_config: _EndpointsHolder | None = Field(default=None, alias="NetworkingConfig")
