"""Sections 5, 6 and 7 against ``podman system service`` (podman 4.3), through ``trustyard bench --docker-host``.

The same good and bad containers as the dockerd test, created with the podman CLI on the service's storage,
and judged by the CLI (``--format json``) over podman's Docker-compatible API. podman answers two things
differently from dockerd (bench/engine.py): every IPC mode reads ``shareable`` and every container has an
empty ``State.Health``; without the corrections ``--ipc host`` and a missing health check would pass.
A container created through the compatible API (so podman recorded no command line) and never started has no
OCI configuration yet, so its IPC mode is unknown: 5.17 says so (INFO) instead of passing it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from bench.podman_service import PodmanService
from fixtures.dockerd import ALPINE

pytestmark = pytest.mark.interop
IMAGE = "localhost/bench/alpine:3.20"


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanService]:
    service = PodmanService(tmp_path_factory.mktemp("podman"))
    try:
        service.start()
        service.podman("import", str(ALPINE), IMAGE)
        yield service
    finally:
        service.stop()


def _bench(service: PodmanService, *sections: str) -> dict[str, tuple[str, list[str]]]:
    """``trustyard bench --docker-host SOCKET --check ... --format json``: {id: (result, items)}."""
    argv = [sys.executable, "-m", "trustyard", "bench", "--docker-host", service.docker_host, "--format", "json"]
    for section in sections:
        argv += ["--check", section]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    log: dict[str, Any] = json.loads(proc.stdout)
    return {r["id"]: (r["result"], r.get("items", [])) for t in log["tests"] for r in t["results"]}


GOOD_PASSES = ["5.4", "5.5", "5.6", "5.7", "5.10", "5.11", "5.12", "5.13", "5.15", "5.16", "5.17", "5.21", "5.22",
               "5.25", "5.26", "5.27", "5.29", "5.31", "5.32", "C.5.3.3"]  # fmt: skip
BAD_WARNS = {
    "5.6": ["bad: /etc:/host-etc:ro"],
    "5.10": ["bad"],
    "5.11": ["bad"],
    "5.13": ["bad"],
    "5.15": ["bad"],
    "5.16": ["bad"],
    "5.17": ["bad"],
    "5.21": ["bad"],
    "5.22": ["bad"],
    "5.26": ["bad"],
    "5.27": ["bad"],
}


def test_runtime_checks_on_podman_containers(podman: PodmanService) -> None:
    # no containers yet: INFO, never PASS
    assert _bench(podman, "5.11")["5.11"][0] == "INFO"

    podman.podman(
        "run", "-d", "--name", "good", "--network", "none", "--read-only", "--memory", "64m", "--cpu-shares", "512",
        "--pids-limit", "50", "--security-opt", "no-new-privileges", "--restart", "on-failure:5",
        "--health-cmd", "true", "--cap-drop", "ALL", IMAGE, "sleep", "300",
    )  # fmt: skip
    good = _bench(podman, "5", "C")
    for check_id in GOOD_PASSES:
        assert good[check_id][0] == "PASS", (check_id, good[check_id])

    # through the compatible API: podman records no command line, and a created container has no OCI config yet
    client = docker.DockerClient(base_url=podman.docker_host, version="auto")
    try:
        client.containers.create(IMAGE, ["sleep", "300"], name="api-ipc", ipc_mode="host")
    finally:
        client.close()
    unknown = _bench(podman, "5.17")["5.17"]
    assert unknown == ("INFO", ["api-ipc (not running)"]), unknown
    podman.podman("rm", "api-ipc")

    podman.podman(
        "run", "-d", "--name", "bad", "--network", "host", "--pid", "host", "--ipc", "host", "--uts", "host",
        "-v", "/etc:/host-etc:ro", "-v", f"{podman.socket}:/var/run/docker.sock",
        "--security-opt", "seccomp=unconfined", "--restart", "always", IMAGE, "sleep", "300",
    )  # fmt: skip
    podman.podman("create", "--name", "priv", "--privileged", IMAGE, "sleep", "300")
    bad = _bench(podman, "5", "C")
    for check_id, items in BAD_WARNS.items():
        result, found = bad[check_id]
        assert result == "WARN", (check_id, bad[check_id])
        assert [i for i in found if i.startswith("bad")] == items, (check_id, found)
        assert not any(i.startswith("good") for i in found), (check_id, found)
    assert bad["5.5"] == ("WARN", ["priv (not running)"])
    assert bad["5.4"] == ("WARN", ["priv (not running): ALL (privileged)"])
    assert bad["5.32"] == ("WARN", [f"bad: {podman.socket}:/var/run/docker.sock"])
    assert bad["C.5.3.3"] == ("WARN", ["priv (not running)"])
    assert bad["5.7"][0] == "PASS"  # podman's `top` of the running ones shows no sshd


def test_operations_and_swarm_on_podman(podman: PodmanService) -> None:
    podman.podman("create", "--name", "stopped", IMAGE, "true")
    found = _bench(podman, "5.1", "6", "7", "8", "C.2")
    assert found["5.1"][0] == "PASS"  # podman has no swarm: Swarm.LocalNodeState is inactive
    assert found["8.2.1"][0] == "INFO"  # podman is not Docker Enterprise
    assert found["C.2"][0] == "PASS"  # podman never spoke registry v1
    assert found["6.2"][0] == "INFO" and "stopped" in found["6.2"][1]
    assert found["6.1"][0] == "PASS"
    assert all(found[f"7.{i}"][0] == "PASS" for i in range(1, 10))


def test_unreadable_podman_socket_is_info(tmp_path: Path) -> None:
    missing = tmp_path / "podman.sock"
    argv = [sys.executable, "-m", "trustyard", "bench", "--docker-host", f"unix://{missing}", "--check", "5.5",
            "--format", "json"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["tests"][0]["results"]
    assert result["result"] == "INFO" and str(missing) in result["details"]


def test_exec_as_root_on_podman(podman: PodmanService) -> None:
    """5.24 from podman's exec records: a running ``podman exec -u root`` is named (podman keeps it in ExecIDs)."""
    podman.podman("run", "-d", "--name", "execd", IMAGE, "sleep", "300")
    podman.podman("exec", "-d", "-u", "root", "execd", "sleep", "120")
    found = _bench(podman, "5.23", "5.24")
    assert found["5.24"] == ("WARN", ["execd: sleep 120 (engine)"])
    assert found["5.23"][0] == "PASS"
