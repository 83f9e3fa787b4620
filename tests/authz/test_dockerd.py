"""End to end: a real private dockerd with ``--authorization-plugin=trustyard`` and the real docker CLI.

The daemon is Debian's dockerd 20.10 configured as notes/real-peers.md §3 (vfs, no iptables, no bridge, its
own data and exec roots and socket). dockerd has no option for where it discovers plugins: it reads
``/etc/docker/plugins/NAME.spec`` (and sockets in ``/run/docker/plugins``). So it runs in a private mount
namespace (``unshare -m``) where a temporary folder is bind-mounted on ``/etc/docker`` and an empty one on
``/run/docker/plugins``: discovery is dockerd's own, the host's folders are never written, and every mount
(those two, and dockerd's network namespace) disappears with the namespace when dockerd exits.

The plugin is ``trustyard authz serve`` as a separate process, so the last test can stop it and show dockerd
refusing when its plugin is down. Everything started here is stopped and removed whatever the outcome.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

pytestmark = pytest.mark.interop
ALPINE = Path("/work/shared/images/alpine-3.20.3/alpine-minirootfs-3.20.3-x86_64.tar.gz")
IMAGE = "authz/alpine:3.20"
DENIED = "authorization denied by plugin trustyard"


def _wait(predicate: object, what: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if callable(predicate) and predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout}s: {log.read_text()[-2000:]}")


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s: the plugin and dockerd both shut down cleanly on SIGTERM."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(str(self.path))


class AuthzDockerd:
    """A private dockerd whose only authorization plugin is a ``trustyard authz serve`` of the test's own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.run_dir = Path(tempfile.mkdtemp(prefix="ty-authz-", dir="/tmp"))  # unix socket paths: keep them short
        self.socket = self.run_dir / "docker.sock"
        self.plugin_socket = self.run_dir / "authz.sock"
        self.etc_docker = workdir / "etc-docker"
        self.empty = workdir / "empty"
        self.audit_log = workdir / "audit.jsonl"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(workdir / "client")}
        self.plugin: subprocess.Popen[bytes] | None = None
        self.daemon: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []

    def start_plugin(self) -> None:
        log_path = self.workdir / "plugin.log"
        log = log_path.open("ab")
        self._logs.append(log)
        self.plugin = subprocess.Popen(
            [sys.executable, "-m", "trustyard", "authz", "serve", "--socket", str(self.plugin_socket),
             "--plugin-dir", str(self.etc_docker / "plugins"), "--audit-log", str(self.audit_log)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        spec = self.etc_docker / "plugins/trustyard.spec"
        _wait(lambda: spec.exists() and self.plugin_socket.exists(), "plugin", self.plugin, log_path)

    def stop_plugin(self) -> None:
        if self.plugin is not None:
            _terminate(self.plugin)

    def start_daemon(self) -> None:
        self.empty.mkdir()
        config = self.workdir / "daemon.json"
        config.write_text(
            json.dumps(
                {
                    "storage-driver": "vfs",
                    "iptables": False,
                    "ip6tables": False,
                    "bridge": "none",
                    "default-ulimits": {
                        "nofile": {"Name": "nofile", "Hard": 20000, "Soft": 20000},
                        "nproc": {"Name": "nproc", "Hard": 1000, "Soft": 1000},
                    },
                    "authorization-plugins": ["trustyard"],
                }
            )
        )
        shadow = " && ".join(
            f"{{ [ ! -d {target} ] || mount --bind {source} {target}; }}"
            for source, target in (
                (self.etc_docker, "/etc/docker"),
                (self.empty, "/run/docker/plugins"),
                (self.empty, "/usr/lib/docker/plugins"),
            )
        )
        dockerd = (
            f"exec dockerd --config-file {config} --data-root {self.workdir / 'data'} --exec-root {self.run_dir / 'x'}"
            f" --pidfile {self.run_dir / 'dockerd.pid'} -H unix://{self.socket}"
        )
        log_path = self.workdir / "dockerd.log"
        log = log_path.open("ab")
        self._logs.append(log)
        self.daemon = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-ec", f"{shadow} && {dockerd}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: self.socket.exists() and self.docker("version").returncode == 0, "dockerd", self.daemon, log_path)

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def raw(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """One Engine API call with exactly these bytes and headers, bypassing the CLI."""
        conn = _UnixConnection(self.socket)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def audit(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.startswith("{")]

    def stop(self) -> None:
        if self.daemon is not None:
            if self.plugin is not None and self.plugin.poll() is None:  # container removal needs the plugin up
                ids = self.docker("ps", "-aq", timeout=30).stdout.split()
                if ids:
                    self.docker("rm", "-f", *ids, timeout=60)
            _terminate(self.daemon)
        self.stop_plugin()
        for log in self._logs:
            log.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        shutil.rmtree(self.workdir / "data", ignore_errors=True)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthzDockerd]:
    daemon = AuthzDockerd(tmp_path_factory.mktemp("authz-dockerd"))
    try:
        daemon.start_plugin()
        daemon.start_daemon()
        imported = daemon.docker("import", str(ALPINE), IMAGE)
        assert imported.returncode == 0, imported.stderr
        yield daemon
    finally:
        daemon.stop()


def test_plain_create_is_allowed(engine: AuthzDockerd) -> None:
    created = engine.docker("create", "--name", "plain", IMAGE, "true")
    assert created.returncode == 0, created.stderr
    record = next(r for r in engine.audit() if r["endpoint"] == "POST /containers/create" and r["allow"])
    assert "5.11" in record["warnings"]  # type: ignore[operator]  # hygiene rules warn, they do not refuse


def test_privileged_create_is_refused_with_the_plugins_message(engine: AuthzDockerd) -> None:
    refused = engine.docker("create", "--privileged", IMAGE, "true")
    assert refused.returncode != 0
    assert DENIED in refused.stderr and "[5.5] runs privileged" in refused.stderr, refused.stderr
    assert engine.docker("ps", "-aq", "--filter", "status=created").stdout.split().__len__() == 1  # only "plain"


def test_run_with_host_network_is_refused(engine: AuthzDockerd) -> None:
    refused = engine.docker("run", "--rm", "--net=host", IMAGE, "true")
    assert refused.returncode == 125
    assert DENIED in refused.stderr and "[5.10]" in refused.stderr, refused.stderr


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        (["-v", "/:/host"], "5.6"),
        (["-v", "/var/run/docker.sock:/var/run/docker.sock"], "5.32"),
        (["--pid", "host"], "5.16"),
        (["--cap-add", "SYS_ADMIN"], "C.5.3.3"),
        (["--security-opt", "seccomp=unconfined"], "5.22"),
    ],
)
def test_unsafe_creates_are_refused(engine: AuthzDockerd, options: list[str], rule: str) -> None:
    refused = engine.docker("create", *options, IMAGE, "true")
    assert refused.returncode != 0
    assert DENIED in refused.stderr and f"[{rule}]" in refused.stderr, refused.stderr


def test_exec_privileged_or_as_root_is_refused(engine: AuthzDockerd) -> None:
    started = engine.docker("run", "-d", "--network", "none", "--name", "sleeper", IMAGE, "sleep", "60")
    assert started.returncode == 0, started.stderr
    assert engine.docker("exec", "sleeper", "true").returncode == 0
    privileged = engine.docker("exec", "--privileged", "sleeper", "true")
    assert privileged.returncode != 0 and DENIED in privileged.stderr and "[5.23]" in privileged.stderr
    root = engine.docker("exec", "-u", "root", "sleeper", "true")
    assert root.returncode != 0 and DENIED in root.stderr and "[5.24]" in root.stderr
    assert engine.docker("rm", "-f", "sleeper").returncode == 0


def test_bodyless_create_is_refused(engine: AuthzDockerd) -> None:
    """CVE-2024-41110's shape: the create arrives with Content-Length: 0; dockerd passes no body to the plugin."""
    status, text = engine.raw(
        "POST", "/v1.41/containers/create", b"", {"Content-Type": "application/json", "Content-Length": "0"}
    )
    assert status == 403 and "without its body" in text, (status, text)
    body = json.dumps({"Image": IMAGE, "HostConfig": {"Privileged": True}}).encode()
    # Debian's 20.10.24 carries the CVE fix: it reads a chunked body whole and passes it, so the rules judge it
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    status, text = engine.raw("POST", "/v1.41/containers/create", chunked, headers)
    assert status == 403 and "[5.5] runs privileged" in text, (status, text)
    # an uncleaned path never reaches a handler: dockerd's router redirects it (the plugin judges it anyway)
    status, _ = engine.raw("POST", "/v1.41//containers/create?", body, {"Content-Type": "application/json"})
    assert status == 301
    assert engine.docker("ps", "-aq", "--filter", "status=created").stdout.split().__len__() == 1  # only "plain"


def test_every_decision_is_audited(engine: AuthzDockerd) -> None:
    refused = [r for r in engine.audit() if not r["allow"]]
    assert {"5.5", "5.10", "5.23", "5.24"} <= {rule for r in refused for rule in r["rules"]}  # type: ignore[attr-defined]
    assert all(r["user"] == "" and r["endpoint"] for r in refused)  # a unix socket carries no user


def test_plugin_down_means_refused(engine: AuthzDockerd) -> None:
    engine.stop_plugin()
    assert engine.plugin is not None and engine.plugin.returncode == 0
    assert not (engine.etc_docker / "plugins/trustyard.spec").exists()  # removed on exit; dockerd keeps its handle
    started = time.monotonic()
    status, text = engine.raw(
        "POST", "/v1.41/containers/create", json.dumps({"Image": IMAGE}).encode(), {"Content-Type": "application/json"}
    )
    assert status >= 400 and "plugin trustyard failed" in text, (status, text)
    assert time.monotonic() - started < 60
