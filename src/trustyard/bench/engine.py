"""What the container engine says about itself and its containers, asked once through the docker SDK.

Sections 5 (container runtime), 6 (operations) and 7 (swarm) judge facts only a running engine knows. They are
gathered here in one pass over the Engine API into a frozen ``EngineFacts`` — every container's configuration
as a ``policy.ContainerSpec``, the processes of running ones (``GET /containers/{id}/top``, so no ``exec`` into
the container is needed), swarm state, overlay networks, image and container counts — and the checks decide on
those facts alone. Any engine that speaks the Docker Engine API works: dockerd, rootless dockerd, and
``podman system service``.

Every failure to reach or read the engine becomes ``InputUnavailable`` (INFO with the reason), never a crash.

podman 4.3's compatible API answers two things differently from dockerd, and both would give false PASSes, so
``_podman_inspect`` corrects its inspect documents before the rules see them:

- ``HostConfig.IpcMode`` is ``shareable`` whatever ``--ipc`` said (``--ipc host`` too, in both the compatible
  and the libpod inspect). The truth is the OCI runtime configuration podman wrote for the container (the
  libpod inspect's ``OCIConfigPath``): without an ``ipc`` namespace the container is in the host's. That file
  is read only when the engine is on a local socket; otherwise podman's own record of the command line
  (``Config.CreateCommand`` of a ``podman run``/``create``) is used, and failing both the mode is ``unknown``, which
  5.17 reports as undecided rather than passed.
- ``State.Health`` is always present (``{"Status": ""}``) even without a health check, which reads as "has a
  health check"; an empty one is dropped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import docker
import docker.errors
import requests.exceptions

from trustyard.bench.base import InputUnavailable
from trustyard.policy import ContainerSpec, PolicyError

ENGINE_TIMEOUT: Final = 30
"""Seconds for one Engine API call; inspecting a container is quick, a hung engine should not hang the bench."""


@dataclass(frozen=True, slots=True)
class EngineContainer:
    """One container: its configuration and whether it is running (stopped ones are configured risks too)."""

    spec: ContainerSpec
    running: bool


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """Everything sections 5-7 read from the engine."""

    host: str
    server_version: str
    containers: tuple[EngineContainer, ...]
    images_total: int
    images_in_use: int
    swarm_state: str
    swarm_managers: int = 0
    swarm_autolock: bool | None = None
    overlay_networks: tuple[tuple[str, bool], ...] = ()
    swarm_listen_addr: str = ""
    rootless: bool = False
    podman: bool = False
    edition: str = ""
    """The engine's platform name (``Docker Engine - Community``, ``... - Enterprise``); empty when unnamed."""


def default_docker_host(environ: dict[str, str] | None = None) -> str:
    """``DOCKER_HOST``, else the rootless socket of this user if there is one, else the system socket."""
    env = dict(os.environ) if environ is None else environ
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.getuid() != 0 and Path(runtime_dir, "docker.sock").exists():
        return f"unix://{runtime_dir}/docker.sock"
    return "unix:///var/run/docker.sock"


T = TypeVar("T")


def ask(host: str, question: Callable[[docker.DockerClient], T]) -> T:
    """``question`` put to the engine at ``host``; ``InputUnavailable`` when it cannot be reached or fails."""
    if host.startswith("unix://") and not Path(host[len("unix://") :]).exists():
        raise InputUnavailable(f"no engine socket at {host[len('unix://') :]}")
    try:
        client = docker.DockerClient(base_url=host, version="auto", timeout=ENGINE_TIMEOUT)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise InputUnavailable(f"cannot reach the engine at {host}: {e}") from e
    try:
        return question(client)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise InputUnavailable(f"the engine at {host} failed: {e}") from e
    except PolicyError as e:
        raise InputUnavailable(f"the engine at {host} sent an unreadable container: {e.message}") from e
    finally:
        client.close()


def gather(host: str) -> EngineFacts:
    """Ask the engine at ``host`` for everything sections 5-7 read."""
    return ask(host, lambda client: _gather(client, host))


def _libpod_version(version: Mapping[str, Any]) -> str | None:
    """The libpod API version when the engine is podman (its ``Podman Engine`` component), else ``None``."""
    for component in version.get("Components") or []:
        if str(component.get("Name", "")).lower().startswith("podman"):
            return str((component.get("Details") or {}).get("APIVersion") or component.get("Version") or "4.0.0")
    return None


def _ipc_from_oci_config(path: str) -> str | None:
    """``host`` or ``private`` from the OCI runtime configuration at ``path``; ``None`` when it cannot be read."""
    try:
        config = json.loads(Path(path).read_text())
        namespaces = config["linux"]["namespaces"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return "private" if any(isinstance(n, dict) and n.get("type") == "ipc" for n in namespaces) else "host"


def _ipc_from_command(command: Sequence[str]) -> str | None:
    """The ``--ipc`` value of a ``podman run``/``create`` command line, ``private`` when it has none.

    ``None`` for any other command: a container created through the API records the service's own command
    line (``podman system service ...``), which says nothing about the container.
    """
    words = [w for w in command[1:3] if not w.startswith("-")]
    if words[:1] == ["container"]:
        words = words[1:]
    if words[:1] not in (["run"], ["create"]):
        return None
    for i, arg in enumerate(command):
        if arg == "--ipc" and i + 1 < len(command):
            return str(command[i + 1])
        if arg.startswith("--ipc="):
            return arg.removeprefix("--ipc=")
    return "private"


def _podman_inspect(api: docker.APIClient, data: dict[str, Any], libpod: str, local: bool) -> dict[str, Any]:
    """``data`` (podman's compatible inspect) with IpcMode and State.Health as dockerd would give them."""
    fixed = dict(data)
    state = dict(fixed.get("State") or {})
    health = state.get("Health")
    if isinstance(health, dict) and not health.get("Status") and not (fixed.get("Config") or {}).get("Healthcheck"):
        del state["Health"]
        fixed["State"] = state
    response = api.get(f"{api.base_url}/v{libpod}/libpod/containers/{data['Id']}/json", timeout=ENGINE_TIMEOUT)
    response.raise_for_status()
    native: dict[str, Any] = response.json()
    mode = _ipc_from_oci_config(str(native.get("OCIConfigPath") or "")) if local else None
    if mode is None:
        mode = _ipc_from_command([str(a) for a in (native.get("Config") or {}).get("CreateCommand") or []])
    fixed["HostConfig"] = {**(fixed.get("HostConfig") or {}), "IpcMode": mode or "unknown"}
    return fixed


def _gather(client: docker.DockerClient, host: str) -> EngineFacts:
    api = client.api
    info: dict[str, Any] = client.info()
    version = api.version()
    libpod = _libpod_version(version)
    containers = []
    used_images: set[str] = set()
    for summary in api.containers(all=True):
        data = api.inspect_container(summary["Id"])
        if libpod is not None:
            data = _podman_inspect(api, data, libpod, local=host.startswith("unix://"))
        running = bool(data.get("State", {}).get("Running"))
        processes = None
        if running:
            top = api.top(summary["Id"])
            titles = top.get("Titles") or []
            column = (
                titles.index("CMD") if "CMD" in titles else (titles.index("COMMAND") if "COMMAND" in titles else -1)
            )
            processes = [row[column] for row in top.get("Processes") or [] if column >= 0]
        containers.append(EngineContainer(ContainerSpec.from_inspect(data, processes=processes), running))
        used_images.add(str(data.get("Image", "")))
    images = api.images(all=False)
    swarm = info.get("Swarm") or {}
    state = str(swarm.get("LocalNodeState") or "inactive")
    autolock: bool | None = None
    overlays: list[tuple[str, bool]] = []
    if state == "active" and swarm.get("ControlAvailable"):
        spec = api.inspect_swarm().get("Spec", {})
        autolock = bool(spec.get("EncryptionConfig", {}).get("AutoLockManagers"))
    if state == "active":
        for net in api.networks(filters={"driver": "overlay"}):
            options = net.get("Options") or {}
            overlays.append((str(net.get("Name")), "encrypted" in options))
    security = [str(s) for s in info.get("SecurityOptions") or []]
    return EngineFacts(
        host=host,
        server_version=str(info.get("ServerVersion", "")),
        containers=tuple(containers),
        images_total=len(images),
        images_in_use=len({i["Id"] for i in images} & used_images),
        swarm_state=state,
        swarm_managers=int(swarm.get("Managers") or 0),
        swarm_autolock=autolock,
        overlay_networks=tuple(overlays),
        swarm_listen_addr=str(
            (swarm.get("RemoteManagers") or [{}])[0].get("Addr", "") if swarm.get("RemoteManagers") else ""
        ),
        rootless=any("rootless" in s for s in security),
        podman=libpod is not None,
        edition=str((version.get("Platform") or {}).get("Name") or ""),
    )
