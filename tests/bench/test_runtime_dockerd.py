"""Section 5 (and 6, 7) against a real private dockerd with containers started with good and bad settings.

The daemon is Debian's dockerd 20.10 set up as notes/real-peers.md §3 and tests/interop/clients.py do (vfs,
no iptables, no bridge, its own data and exec roots, a socket of its own); the image is the real Alpine
minirootfs imported with ``docker import``. ``--privileged`` containers cannot start on this kind of machine
(no CAP_SYS_RESOURCE), so that one is created but not started: the bench judges created containers too.
Everything the test starts is removed, and the daemon stopped, whatever the outcome.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from trustyard.bench import BenchContext, BenchReport, Result, run_checks, select

pytestmark = pytest.mark.interop
ALPINE = Path("/work/shared/images/alpine-3.20.3/alpine-minirootfs-3.20.3-x86_64.tar.gz")


class PrivateDockerd:
    """A dockerd of the test's own: started in ``start``, every container and the daemon gone after ``stop``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.exec_root = Path(tempfile.mkdtemp(prefix="ty-bench-", dir="/tmp"))  # containerd sockets: short path
        self.socket = self.exec_root / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(workdir / "client")}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        config = self.workdir / "daemon.json"
        config.write_text(
            json.dumps(
                {
                    "storage-driver": "vfs",
                    "iptables": False,
                    "ip6tables": False,
                    "bridge": "none",
                    "default-ulimits": {"nofile": {"Name": "nofile", "Hard": 20000, "Soft": 20000}},
                }
            )
        )
        self._log = log = (self.workdir / "dockerd.log").open("ab")
        self._proc = subprocess.Popen(
            ["dockerd", "--config-file", str(config), "--data-root", str(self.workdir / "data"),
             "--exec-root", str(self.exec_root), "--pidfile", str(self.exec_root / "dockerd.pid"),
             "-H", f"unix://{self.socket}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self._proc.returncode}; see {self.workdir / 'dockerd.log'}")
            if self.socket.exists() and self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("dockerd did not become ready in 60 s")

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def stop(self) -> None:
        if self._proc is not None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()
        # dockerd leaves its network namespace bind-mounted in the exec root (netns/default): unmount, then remove
        prefix = str(self.exec_root) + "/"
        for line in Path("/proc/self/mounts").read_text().splitlines():
            point = line.split()[1]
            if point.startswith(prefix):
                subprocess.run(["umount", point], check=False, capture_output=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDockerd]:
    daemon = PrivateDockerd(tmp_path_factory.mktemp("dockerd"))
    try:
        daemon.start()
        daemon.docker("import", str(ALPINE), "bench/alpine:3.20")
        yield daemon
    finally:
        daemon.stop()


def _bench(daemon: PrivateDockerd, *sections: str) -> BenchReport:
    context = BenchContext(root=Path("/nonexistent"), docker_host=f"unix://{daemon.socket}", environ={})
    return run_checks(select(sections), context)


def _by_id(report: BenchReport) -> dict[str, tuple[Result, tuple[str, ...]]]:
    return {o.check.id: (o.result.result, o.result.items) for o in report.outcomes}


GOOD_PASSES = ["5.4", "5.5", "5.6", "5.7", "5.10", "5.11", "5.12", "5.13", "5.15", "5.16", "5.17", "5.21", "5.22",
               "5.25", "5.26", "5.27", "5.29", "5.30", "5.31", "5.32", "C.5.3.3"]  # fmt: skip
BAD_WARNS = ["5.5", "5.6", "5.10", "5.11", "5.13", "5.15", "5.16", "5.17", "5.21", "5.22", "5.26", "5.27", "5.29",
             "5.32", "C.5.3.3"]  # fmt: skip


def test_runtime_checks_on_real_containers(dockerd: PrivateDockerd) -> None:
    # no containers yet: INFO, never PASS
    assert _by_id(_bench(dockerd, "5"))["5.11"][0] is Result.INFO

    dockerd.docker(
        "run", "-d", "--name", "good", "--network", "none", "--read-only", "--memory", "64m", "--cpu-shares", "512",
        "--pids-limit", "50", "--security-opt", "no-new-privileges", "--restart", "on-failure:5",
        "--health-cmd", "true", "--cap-drop", "ALL", "bench/alpine:3.20", "sleep", "300",
    )  # fmt: skip
    good = _by_id(_bench(dockerd, "5", "C"))
    for check_id in GOOD_PASSES:
        assert good[check_id][0] is Result.PASS, (check_id, good[check_id])
    assert good["5.2"][0] is Result.WARN  # no AppArmor on this host: the engine reports no profile

    dockerd.docker(
        "run", "-d", "--name", "bad", "--network", "host", "--pid", "host", "--ipc", "host", "--uts", "host",
        "-v", "/etc:/host-etc:ro", "-v", f"{dockerd.socket}:/var/run/docker.sock",
        "--security-opt", "seccomp=unconfined", "--restart", "always", "bench/alpine:3.20", "sleep", "300",
    )  # fmt: skip
    dockerd.docker("create", "--name", "priv", "--privileged", "bench/alpine:3.20", "sleep", "300")
    bad = _by_id(_bench(dockerd, "5", "C"))
    for check_id in BAD_WARNS:
        result, items = bad[check_id]
        assert result is Result.WARN, (check_id, bad[check_id])
        assert not any(i.startswith("good") for i in items), (check_id, items)
    assert bad["5.6"][1] == ("bad: /etc:/host-etc:ro",)
    assert bad["5.5"][1] == ("priv (not running)",)
    assert bad["5.7"][0] is Result.PASS  # `docker top` of the running ones shows no sshd


def test_operations_and_swarm_on_real_engine(dockerd: PrivateDockerd) -> None:
    dockerd.docker("create", "--name", "stopped", "bench/alpine:3.20", "true")
    found = _by_id(_bench(dockerd, "5.1", "6", "7"))
    assert found["5.1"][0] is Result.PASS
    assert found["6.2"][0] is Result.INFO and "stopped (not running)" not in found["6.2"][1]
    assert "stopped" in found["6.2"][1]
    assert found["6.1"][0] is Result.PASS
    assert all(found[f"7.{i}"][0] is Result.PASS for i in range(1, 10))


def test_unreachable_engine_is_info(tmp_path: Path) -> None:
    context = BenchContext(root=tmp_path, docker_host=f"unix://{tmp_path}/missing.sock", environ={})
    report = run_checks(select(["5", "6", "7"]), context)
    assert {o.result.result for o in report.outcomes if o.check.id not in ("5.23", "5.24", "5.28")} == {Result.INFO}
