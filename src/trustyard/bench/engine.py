"""What the container engine says about itself and its containers, asked once through the docker SDK.

Sections 5 (container runtime), 6 (operations) and 7 (swarm) judge facts only a running engine knows. They are
gathered here in one pass over the Engine API into a frozen ``EngineFacts`` — every container's configuration
as a ``policy.ContainerSpec``, the processes of running ones (``GET /containers/{id}/top``, so no ``exec`` into
the container is needed), swarm state, overlay networks, image and container counts — and the checks decide on
those facts alone. Any engine that speaks the Docker Engine API works: dockerd, rootless dockerd, and
``podman system service``.

Every failure to reach or read the engine becomes ``InputUnavailable`` (INFO with the reason), never a crash.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

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


def default_docker_host(environ: dict[str, str] | None = None) -> str:
    """``DOCKER_HOST``, else the rootless socket of this user if there is one, else the system socket."""
    env = dict(os.environ) if environ is None else environ
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.getuid() != 0 and Path(runtime_dir, "docker.sock").exists():
        return f"unix://{runtime_dir}/docker.sock"
    return "unix:///var/run/docker.sock"


def gather(host: str) -> EngineFacts:
    """Ask the engine at ``host``; ``InputUnavailable`` when it cannot be reached or answers nonsense."""
    if host.startswith("unix://") and not Path(host[len("unix://") :]).exists():
        raise InputUnavailable(f"no engine socket at {host[len('unix://') :]}")
    try:
        client = docker.DockerClient(base_url=host, version="auto", timeout=ENGINE_TIMEOUT)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise InputUnavailable(f"cannot reach the engine at {host}: {e}") from e
    try:
        return _gather(client, host)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise InputUnavailable(f"the engine at {host} failed: {e}") from e
    except PolicyError as e:
        raise InputUnavailable(f"the engine at {host} sent an unreadable container: {e.message}") from e
    finally:
        client.close()


def _gather(client: docker.DockerClient, host: str) -> EngineFacts:
    api = client.api
    info: dict[str, Any] = client.info()
    containers = []
    used_images: set[str] = set()
    for summary in api.containers(all=True):
        data = api.inspect_container(summary["Id"])
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
    )
