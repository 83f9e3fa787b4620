"""End to end: a real private dockerd with ``--authorization-plugin=trustyard`` and the real docker CLI.

The daemon and the plugin (``trustyard authz serve`` as its own process, so the last test can stop it and
show dockerd refusing when its plugin is down) come from ``fixtures.dockerd``: dockerd discovers the plugin
through its own ``/etc/docker/plugins`` inside a private mount namespace. Everything started here is stopped
and removed whatever the outcome.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from fixtures.dockerd import Dockerd

pytestmark = pytest.mark.interop
IMAGE = "authz/alpine:3.20"
DENIED = "authorization denied by plugin trustyard"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    daemon = Dockerd(tmp_path_factory.mktemp("authz-dockerd"), with_plugin=True)
    try:
        daemon.start()
        daemon.import_alpine(IMAGE)
        yield daemon
    finally:
        daemon.stop()


def _audit(engine: Dockerd) -> list[dict[str, object]]:
    assert engine.plugin is not None
    return engine.plugin.audit()


def test_plain_create_is_allowed(engine: Dockerd) -> None:
    created = engine.docker("create", "--name", "plain", IMAGE, "true")
    assert created.returncode == 0, created.stderr
    record = next(r for r in _audit(engine) if r["endpoint"] == "POST /containers/create" and r["allow"])
    assert "5.11" in record["warnings"]  # type: ignore[operator]  # hygiene rules warn, they do not refuse


def test_privileged_create_is_refused_with_the_plugins_message(engine: Dockerd) -> None:
    refused = engine.docker("create", "--privileged", IMAGE, "true")
    assert refused.returncode != 0
    assert DENIED in refused.stderr and "[5.5] runs privileged" in refused.stderr, refused.stderr
    assert engine.docker("ps", "-aq", "--filter", "status=created").stdout.split().__len__() == 1  # only "plain"


def test_run_with_host_network_is_refused(engine: Dockerd) -> None:
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
def test_unsafe_creates_are_refused(engine: Dockerd, options: list[str], rule: str) -> None:
    refused = engine.docker("create", *options, IMAGE, "true")
    assert refused.returncode != 0
    assert DENIED in refused.stderr and f"[{rule}]" in refused.stderr, refused.stderr


def test_exec_privileged_or_as_root_is_refused(engine: Dockerd) -> None:
    started = engine.docker("run", "-d", "--network", "none", "--name", "sleeper", IMAGE, "sleep", "60")
    assert started.returncode == 0, started.stderr
    assert engine.docker("exec", "sleeper", "true").returncode == 0
    privileged = engine.docker("exec", "--privileged", "sleeper", "true")
    assert privileged.returncode != 0 and DENIED in privileged.stderr and "[5.23]" in privileged.stderr
    root = engine.docker("exec", "-u", "root", "sleeper", "true")
    assert root.returncode != 0 and DENIED in root.stderr and "[5.24]" in root.stderr
    assert engine.docker("rm", "-f", "sleeper").returncode == 0


def test_bodyless_create_is_refused(engine: Dockerd) -> None:
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


def test_every_decision_is_audited(engine: Dockerd) -> None:
    refused = [r for r in _audit(engine) if not r["allow"]]
    assert {"5.5", "5.10", "5.23", "5.24"} <= {rule for r in refused for rule in r["rules"]}  # type: ignore[attr-defined]
    assert all(r["user"] == "" and r["endpoint"] for r in refused)  # a unix socket carries no user


def test_plugin_down_means_refused(engine: Dockerd) -> None:
    assert engine.plugin is not None
    assert engine.plugin.stop() == 0
    assert not (
        engine.plugin.etc_docker / "plugins/trustyard.spec"
    ).exists()  # removed on exit; dockerd keeps its handle
    started = time.monotonic()
    status, text = engine.raw(
        "POST", "/v1.41/containers/create", json.dumps({"Image": IMAGE}).encode(), {"Content-Type": "application/json"}
    )
    assert status >= 400 and "plugin trustyard failed" in text, (status, text)
    assert time.monotonic() - started < 60
