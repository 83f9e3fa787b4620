"""Registry servers that interop tests start as real processes.

`TrustyardServer` runs `trustyard serve` (the system under test); `DistributionServer` runs Debian's
`docker-registry` (CNCF distribution 2.8, the reference). Both share `RegistryServer`: start on a free
loopback port, wait until `GET /v2/` answers 200 (with the server's `credentials`, if it has any), stop with
SIGTERM, kill with SIGKILL, restart on the same data directory and port, and keep the process output in a
log file whose tail the conftest hook attaches to a failing test's report.

Not here: the protocol itself (see `registry_api.py`) and the clients (see `clients.py`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

from fixtures.processes import free_port, tail

READY_TIMEOUT = 30.0
INTEROP_ADMIN_PASSWORD = "interop-admin-password"  # a throwaway registry's first admin
_SERVER_ERROR = re.compile(r'"status": 5\d\d\b|http\.response\.status=5\d\d\b')
STOP_TIMEOUT = 20.0


class ServerError(RuntimeError):
    """A server process did not start, or did not stop, as expected."""


class RegistryServer:
    """One registry process bound to 127.0.0.1:port, its data in `data_dir`, its output in `log_path`."""

    name = "registry"
    credentials: tuple[str, str] | None = None
    """The user and password clients log in with; ``None``: the server takes anonymous requests."""
    # exit codes of a graceful stop (SIGTERM); anything else is a failure to stop gracefully. uvicorn
    # re-raises the signal after a clean shutdown, so -SIGTERM is graceful too.
    graceful_exit_codes: tuple[int, ...] = (0, -signal.SIGTERM)
    ca_file: Path | None = None
    """The CA the readiness check trusts for HTTPS (``TrustyardServer(tls=...)``); ``None``: the system's."""

    def __init__(self, *, workdir: Path, port: int | None = None, database_url: str | None = None) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.data_dir = workdir / "data"
        self.log_path = workdir / f"{self.name}.log"
        self.port = port if port is not None else free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.data_dir.mkdir(parents=True, exist_ok=True)

    # -- what subclasses define -------------------------------------------------------------------------
    def command(self) -> list[str]:
        """The argv that serves this registry."""
        raise NotImplementedError

    def gc_command(self, *, dry_run: bool, delete_untagged: bool, grace_period: int | None) -> list[str]:
        """The argv of one garbage collection over this registry's data."""
        raise NotImplementedError

    # -- addresses ---------------------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """host:port, as it appears in image references (`127.0.0.1:5000/repo:tag`)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL without a trailing slash."""
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        """PID of the running server process."""
        if self._proc is None:
            raise ServerError(f"{self.name} is not running")
        return self._proc.pid

    def is_running(self) -> bool:
        """Whether the process exists and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the process and wait until `GET /v2/` answers 200."""
        if self.is_running():
            raise ServerError(f"{self.name} already running (pid {self.pid})")
        self._log = self.log_path.open("ab")
        self._log.write(f"\n===== start {' '.join(self.command())}\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            env=self.environment(),
        )
        self._wait_ready()

    def environment(self) -> dict[str, str]:
        """The server process's environment."""
        return dict(os.environ)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = "no answer yet"
        verify = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True
        with httpx.Client(timeout=2.0, auth=self.credentials, verify=verify) as client:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise ServerError(
                        f"{self.name} exited with {self._proc.returncode} before it was ready; "
                        f"log tail:\n{tail(self.log_path)}"
                    )
                try:
                    response = client.get(f"{self.url}/v2/")
                except httpx.TransportError as e:
                    last = repr(e)
                else:
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}"
                time.sleep(0.05)
        self.kill()
        raise ServerError(f"{self.name} not ready after {READY_TIMEOUT}s ({last}); log tail:\n{tail(self.log_path)}")

    def stop(self) -> int:
        """Graceful stop: SIGTERM, wait; fails unless it exits in time with a graceful exit code."""
        self.begin_stop()
        return self.wait_stopped()

    def begin_stop(self) -> None:
        """Send SIGTERM and return at once: the server is to finish what is in flight, then exit."""
        self._signal(signal.SIGTERM)

    def wait_not_accepting(self, timeout: float = 10.0) -> None:
        """Poll until the port refuses new connections (a stopping server has closed its listener)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0).close()
            except ConnectionRefusedError:
                return
            if time.monotonic() > deadline:
                raise ServerError(f"{self.name} still accepts connections {timeout}s after SIGTERM")
            time.sleep(0.02)

    def wait_stopped(self) -> int:
        """Wait for the exit that `begin_stop` asked for; fails unless the exit code is a graceful one."""
        code = self._wait(signal.SIGTERM)
        if code not in self.graceful_exit_codes:
            raise ServerError(f"{self.name} exited with {code} after SIGTERM; log tail:\n{tail(self.log_path)}")
        return code

    def kill(self) -> int:
        """Hard stop: SIGKILL, wait; returns the exit code (-9)."""
        self._signal(signal.SIGKILL)
        return self._wait(signal.SIGKILL)

    def restart(self, *, hard: bool = False) -> None:
        """Stop (SIGKILL when `hard`, else SIGTERM) and start again on the same data dir and port."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is None:
            raise ServerError(f"{self.name} is not running")
        if self._proc.poll() is None:
            self._proc.send_signal(sig)

    def _wait(self, sig: signal.Signals) -> int:
        proc = self._proc
        if proc is None:
            raise ServerError(f"{self.name} is not running")
        try:
            code = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ServerError(f"{self.name} did not exit within {STOP_TIMEOUT}s of {sig.name}") from None
        finally:
            self._proc = None
            if self._log is not None:
                self._log.write(f"===== exit after {sig.name}: {proc.returncode}\n".encode())
                self._log.close()
                self._log = None
        return code

    def close(self) -> None:
        """Teardown: stop if still running (SIGTERM; SIGKILL and fail if it hangs)."""
        if self._proc is not None:
            self._signal(signal.SIGTERM)
            self._wait(signal.SIGTERM)

    def server_errors(self) -> list[str]:
        """Log lines of requests answered with a 5xx status (trustyard's JSON log, distribution's text log)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return [line for line in lines if _SERVER_ERROR.search(line)]

    # -- garbage collection ------------------------------------------------------------------------------
    def gc(
        self, *, dry_run: bool = False, delete_untagged: bool = False, grace_period: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one garbage collection over the data dir, while the server keeps running."""
        argv = self.gc_command(dry_run=dry_run, delete_untagged=delete_untagged, grace_period=grace_period)
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def _trustyard_argv() -> list[str]:
    script = Path(sys.executable).parent / "trustyard"
    if script.exists():
        return [str(script)]
    found = shutil.which("trustyard")
    if found is not None:
        return [found]
    return [sys.executable, "-m", "trustyard"]


class TrustyardServer(RegistryServer):
    """`trustyard serve --listen 127.0.0.1:PORT --data-dir DIR`, secure by default: clients log in as `admin`."""

    name = "trustyard"
    credentials = ("admin", INTEROP_ADMIN_PASSWORD)

    def __init__(
        self,
        *,
        workdir: Path,
        port: int | None = None,
        database_url: str | None = None,
        tls: tuple[Path, Path, Path] | None = None,
    ) -> None:
        """``tls``: (certificate chain, private key, CA file) to serve HTTPS, as the notary client requires."""
        super().__init__(workdir=workdir, port=port, database_url=database_url)
        self.tls = tls
        if tls is not None:
            self.ca_file = tls[2]

    @property
    def url(self) -> str:
        """Base URL without a trailing slash (https when serving TLS)."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def environment(self) -> dict[str, str]:
        """The first start creates `admin` with the interop password."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTYARD_")}
        env["TRUSTYARD_ADMIN_PASSWORD"] = INTEROP_ADMIN_PASSWORD
        return env

    def _storage_args(self) -> list[str]:
        db = ["--database-url", self.database_url] if self.database_url else []
        return ["--data-dir", str(self.data_dir), *db]

    def command(self) -> list[str]:
        tls = ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])] if self.tls else []
        return [*_trustyard_argv(), "serve", "--listen", self.host, *self._storage_args(), *tls]

    def gc_command(self, *, dry_run: bool, delete_untagged: bool, grace_period: int | None) -> list[str]:
        argv = [*_trustyard_argv(), "gc", *self._storage_args()]
        if dry_run:
            argv.append("--dry-run")
        if delete_untagged:
            argv.append("--delete-untagged")
        if grace_period is not None:
            argv += ["--grace-period", str(grace_period)]
        return argv


DISTRIBUTION_CONFIG = """\
version: 0.1
log: {{level: info, fields: {{service: registry}}}}
storage:
  filesystem: {{rootdirectory: {data}}}
  delete: {{enabled: true}}
  cache: {{blobdescriptor: inmemory}}
http:
  addr: {host}
  secret: trustyard-interop-tests  # fixed, so upload state tokens outlive a restart
  headers: {{X-Content-Type-Options: [nosniff]}}
"""


class DistributionServer(RegistryServer):
    """Debian's `docker-registry` (distribution 2.8.2), configured as in notes/real-peers.md §1."""

    name = "docker-registry"

    def __init__(self, *, workdir: Path, port: int | None = None, database_url: str | None = None) -> None:
        if database_url is not None:
            raise ServerError("docker-registry keeps its metadata in its storage; it takes no database URL")
        super().__init__(workdir=workdir, port=port)
        self.config_path = workdir / "config.yml"
        self.config_path.write_text(DISTRIBUTION_CONFIG.format(data=self.data_dir, host=self.host))

    def command(self) -> list[str]:
        return ["docker-registry", "serve", str(self.config_path)]

    def gc_command(self, *, dry_run: bool, delete_untagged: bool, grace_period: int | None) -> list[str]:
        # distribution's collector is offline-only and has no grace period; it is here so that the suite can
        # be pointed at the reference (TRUSTYARD_INTEROP_SUT=distribution) to check the tests themselves.
        argv = ["docker-registry", "garbage-collect"]
        if dry_run:
            argv.append("--dry-run")
        if delete_untagged:
            argv.append("--delete-untagged")
        return [*argv, str(self.config_path)]


# Marks a test to run against the registry under test on each metadata database: trustyard's default
# (SQLite in the data dir) and PostgreSQL (a fresh database on the session's server, tests/fixtures).
EACH_DATABASE = pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)

SERVERS: dict[str, type[RegistryServer]] = {
    "trustyard": TrustyardServer,
    "distribution": DistributionServer,
}


def server_under_test() -> type[RegistryServer]:
    """The registry the suite tests: trustyard, unless TRUSTYARD_INTEROP_SUT names another (debugging aid)."""
    name = os.environ.get("TRUSTYARD_INTEROP_SUT", "trustyard")
    try:
        return SERVERS[name]
    except KeyError:
        raise ServerError(f"TRUSTYARD_INTEROP_SUT={name!r}: expected one of {sorted(SERVERS)}") from None
