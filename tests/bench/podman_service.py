"""``podman system service`` for the bench tests: the Docker Engine API on a socket of the test's own.

Rootful podman 4.3 configured as notes/real-peers.md says (runc, ulimits this machine allows, vfs storage in
the test's folder, a private blob-info cache; ``interop.clients.Podman``), serving the compatible API with
``--time=0`` (never exits on idle). The podman CLI with the same configuration creates the containers, so
the service and the CLI see the same ones. ``stop`` removes every container, stops the service and deletes
its storage whatever the outcome.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

from fixtures.dockerd import UnixConnection, terminate, wait_for
from interop.clients import Podman, with_private_cache


class PodmanService:
    """A running ``podman system service`` and the podman CLI on the same storage."""

    def __init__(self, workdir: Path) -> None:
        self.cli = Podman(workdir, insecure_hosts=())
        self.socket = self.cli.run_dir / "podman.sock"
        self.log_path = workdir / "podman-service.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def docker_host(self) -> str:
        """The ``--docker-host`` value that reaches this service."""
        return f"unix://{self.socket}"

    def _ping(self) -> bool:
        conn = UnixConnection(self.socket, timeout=10)
        try:
            conn.request("GET", "/_ping")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def start(self) -> None:
        """Start the service and wait until ``/_ping`` answers."""
        argv = ["podman", "system", "service", "--time=0", self.docker_host]
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            with_private_cache(self.cli.cache_dir, argv),
            env=self.cli.env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        proc = self._proc
        wait_for(lambda: self.socket.exists() and self._ping(), "podman system service", proc, self.log_path)

    def podman(self, *args: str) -> str:
        """``podman ARGS`` on the service's storage; its stdout (a failure raises with stderr)."""
        return self.cli.run(*args).stdout

    def stop(self) -> None:
        """Remove the containers (no grace period: ``sleep`` ignores SIGTERM), stop the service, delete storage."""
        self.cli.run("rm", "--all", "--force", "--time", "0", check=False, timeout=60)
        if self._proc is not None:
            terminate(self._proc)
        if self._log is not None:
            self._log.close()
        self.cli.close()
