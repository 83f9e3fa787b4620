"""End to end: what a real dockerd does when its authorization plugin dies mid-request or answers nonsense.

Two daemons from ``fixtures.dockerd``. The first runs the real ``trustyard authz serve`` with an image rule that
asks "trustyard" at a TCP listener of the test that accepts the connection and never answers (timeout 60 s):
a ``docker run`` of an image named on that host keeps the plugin busy in the middle of its ``AuthZReq``, and
the test SIGKILLs the plugin then. dockerd 20.10 treats the broken call as a connection failure and sends it
again with backoff (1, 2, 4, 8 s, about 15 s in all), but with the message already consumed: an empty body.
So the command fails with "plugin trustyard failed" once the retries are spent, or — when the plugin is back
in time — with the restarted plugin's refusal of the empty message. The second daemon runs
``broken_plugin.py`` in the plugin's place, which closes the connection without an answer, answers a body
that is not JSON, or answers HTTP 500, chosen by container name. In every case the docker CLI fails and no
container exists.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.dockerd import Dockerd

pytestmark = pytest.mark.interop
IMAGE = "crash/alpine:3.20"
FAILED = "Error response from daemon: plugin trustyard failed with error: "
BROKEN_PLUGIN = (sys.executable, str(Path(__file__).with_name("broken_plugin.py")))
POLICY = """\
version = 1

[images]
require_signed = true

[trustyard]
url = "http://127.0.0.1:{port}"
timeout = 60
cache_ttl = 0
"""


class Crashing:
    """A dockerd with the real plugin, whose image rule waits on a "trustyard" that never answers."""

    def __init__(self, engine: Dockerd, silent: socket.socket) -> None:
        self.engine = engine
        self.silent = silent
        self.image = f"127.0.0.1:{silent.getsockname()[1]}/library/alpine:1"  # the plugin must ask "trustyard"

    def run_and_kill(self, *, restart: bool) -> subprocess.CompletedProcess[str]:
        """``docker run`` the image; SIGKILL the plugin while it waits on trustyard; optionally restart it at once."""
        plugin = self.engine.plugin
        assert plugin is not None and plugin.proc is not None
        argv = ["docker", "run", "--rm", "--network", "none", self.image, "true"]
        run = subprocess.Popen(argv, env=self.engine.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        held, _ = self.silent.accept()  # the plugin is now inside dockerd's AuthZReq, waiting for trustyard
        try:
            plugin.proc.send_signal(signal.SIGKILL)
            assert plugin.stop() == -signal.SIGKILL
            if restart:
                self.restart_plugin()
            stdout, stderr = run.communicate(timeout=120)
        finally:
            held.close()
            if run.poll() is None:
                run.kill()
                run.wait()
        return subprocess.CompletedProcess(argv, run.returncode, stdout, stderr)

    def restart_plugin(self) -> None:
        """Start the plugin again as systemd would after a crash (the killed one left its socket and spec)."""
        assert self.engine.plugin is not None
        (self.engine.plugin.etc_docker / "plugins/trustyard.spec").unlink()  # so start() waits for the new one
        self.engine.plugin.start()

    def containers(self) -> list[str]:
        """The containers dockerd holds, from its own data root (the API is closed while the plugin is down)."""
        return [p.name for p in (self.engine.workdir / "data/containers").iterdir()]


@pytest.fixture(scope="module")
def crashing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crashing]:
    workdir = tmp_path_factory.mktemp("authz-crash")
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # the kernel accepts; nobody ever answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    silent.settimeout(60)
    policy = workdir / "policy.toml"
    policy.write_text(POLICY.format(port=silent.getsockname()[1]))
    (workdir / "engine").mkdir()
    engine = Dockerd(workdir / "engine", with_plugin=True, policy=policy)
    try:
        engine.start()
        site = Crashing(engine, silent)
        engine.import_alpine(site.image)
        yield site
    finally:
        engine.stop()
        silent.close()


def test_plugin_killed_mid_request_means_refused(crashing: Crashing) -> None:
    started = time.monotonic()
    refused = crashing.run_and_kill(restart=False)
    waited = time.monotonic() - started
    assert refused.returncode == 125, refused.stderr
    socket_path = crashing.engine.run_dir / "authz.sock"
    assert refused.stderr.startswith(f"docker: {FAILED}Post "), refused.stderr
    assert f'/AuthZPlugin.AuthZReq": dial unix {socket_path}: connect: connection refused' in refused.stderr
    assert 10 < waited < 60, waited  # dockerd's retries: 1 + 2 + 4 + 8 s
    log = crashing.engine.log_path.read_text()
    assert "Unable to connect to plugin" in log and 'AuthZPlugin.AuthZReq\\": EOF, retrying in 1s' in log
    assert crashing.containers() == []
    ps = crashing.engine.docker("ps", "-a")  # every API call fails until the plugin is back
    assert ps.returncode == 1 and ps.stderr.startswith(FAILED) and "connection refused" in ps.stderr, ps.stderr
    crashing.restart_plugin()
    ps = crashing.engine.docker("ps", "-aq")
    assert ps.returncode == 0 and ps.stdout.split() == [], ps.stderr  # back, and nothing was created


def test_plugin_restarted_mid_request_refuses_the_resent_empty_request(crashing: Crashing) -> None:
    refused = crashing.run_and_kill(restart=True)
    assert refused.returncode == 125, refused.stderr
    assert "authorization denied by plugin trustyard: trustyard: the engine sent an empty plugin message" in (
        refused.stderr
    )
    assert crashing.engine.plugin is not None
    record = crashing.engine.plugin.audit()[-1]
    assert record["allow"] is False and record["endpoint"] is None and record["rules"] == ["request"]
    ps = crashing.engine.docker("ps", "-aq")
    assert ps.returncode == 0 and ps.stdout.split() == [], ps.stderr


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    workdir = tmp_path_factory.mktemp("authz-broken")
    engine = Dockerd(workdir, with_plugin=True, plugin_program=BROKEN_PLUGIN)
    try:
        engine.start()
        engine.import_alpine(IMAGE)
        yield engine
    finally:
        engine.stop()


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("close", '/AuthZPlugin.AuthZReq": EOF'),  # after dockerd's retries, which this plugin closes too
        ("garbage", "invalid character '<' looking for beginning of value"),
        ("error", "AuthZPlugin.AuthZReq: plugin exploded"),  # the body of the plugin's 500
    ],
)
def test_broken_plugin_answer_means_refused(broken: Dockerd, how: str, error: str) -> None:
    refused = broken.docker("create", "--network", "none", "--name", f"{how}-1", IMAGE, "true")
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.startswith(FAILED) and refused.stderr.rstrip().endswith(error), refused.stderr
    assert broken.plugin is not None
    assert any(f"name={how}-1" in str(r["uri"]) for r in broken.plugin.audit())  # it was asked, and failed
    ps = broken.docker("ps", "-aq")
    assert ps.returncode == 0 and ps.stdout.split() == [], ps.stderr
