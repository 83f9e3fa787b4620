"""Section 3 checks on files laid out under a temporary root with real owners and modes (the tests run as root).

Sockets are real Unix sockets, bound in place; the docker group is the audited root's ``/etc/group`` entry.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustyard.bench import CHECKS_BY_ID, BenchContext, Result, run_checks

DOCKER_GID = 998
# check id -> (host path, good mode or None for an ownership check, expected group)
FILES: dict[str, tuple[str, int | None, int]] = {
    "3.1": ("/lib/systemd/system/docker.service", None, 0),
    "3.2": ("/lib/systemd/system/docker.service", 0o644, 0),
    "3.3": ("/lib/systemd/system/docker.socket", None, 0),
    "3.4": ("/lib/systemd/system/docker.socket", 0o644, 0),
    "3.5": ("/etc/docker", None, 0),
    "3.6": ("/etc/docker", 0o755, 0),
    "3.7": ("/etc/docker/certs.d/registry.example:5000/ca.crt", None, 0),
    "3.8": ("/etc/docker/certs.d/registry.example:5000/ca.crt", 0o444, 0),
    "3.9": ("/etc/docker/tls/ca.pem", None, 0),
    "3.10": ("/etc/docker/tls/ca.pem", 0o444, 0),
    "3.11": ("/etc/docker/tls/server.pem", None, 0),
    "3.12": ("/etc/docker/tls/server.pem", 0o444, 0),
    "3.13": ("/etc/docker/tls/server-key.pem", None, 0),
    "3.14": ("/etc/docker/tls/server-key.pem", 0o400, 0),
    "3.15": ("/run/docker.sock", None, DOCKER_GID),
    "3.16": ("/run/docker.sock", 0o660, DOCKER_GID),
    "3.17": ("/etc/docker/daemon.json", None, 0),
    "3.18": ("/etc/docker/daemon.json", 0o644, 0),
    "3.19": ("/etc/default/docker", None, 0),
    "3.20": ("/etc/default/docker", 0o644, 0),
    "3.21": ("/etc/sysconfig/docker", 0o644, 0),
    "3.22": ("/etc/sysconfig/docker", None, 0),
    "3.23": ("/run/containerd/containerd.sock", None, 0),
    "3.24": ("/run/containerd/containerd.sock", 0o660, 0),
}
SOCKETS = {"/run/docker.sock", "/run/containerd/containerd.sock"}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Path]:
    """A host root with every file of section 3 at its good owner and mode."""
    sockets = []
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/group").write_text(f"root:x:0:\ndocker:x:{DOCKER_GID}:\n")
    for path, mode, gid in FILES.values():
        target = tmp_path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if path in SOCKETS and not target.exists():
            s = socket.socket(socket.AF_UNIX)
            s.bind(str(target))
            sockets.append(s)
        elif path == "/etc/docker":
            target.mkdir(exist_ok=True)
        elif not target.exists():
            target.write_text("")
        os.chown(target, 0, gid)
        if mode is not None:
            os.chmod(target, mode)
    (tmp_path / "etc/docker/daemon.json").write_text(
        json.dumps(
            {
                "tlscacert": "/etc/docker/tls/ca.pem",
                "tlscert": "/etc/docker/tls/server.pem",
                "tlskey": "/etc/docker/tls/server-key.pem",
            }
        )
    )
    yield tmp_path
    for s in sockets:
        s.close()


def _run(check_id: str, root: Path) -> tuple[Result, tuple[str, ...]]:
    outcome = run_checks([CHECKS_BY_ID[check_id]], BenchContext(root=root, environ={})).outcomes[0]
    return outcome.result.result, outcome.result.items


def test_every_file_check_has_a_case() -> None:
    assert set(FILES) == {c.id for c in CHECKS_BY_ID.values() if c.section == "3"}


@pytest.mark.parametrize("check_id", list(FILES))
def test_file_check_passes(check_id: str, host: Path) -> None:
    result, items = _run(check_id, host)
    assert result is Result.PASS, items


@pytest.mark.parametrize("check_id", list(FILES))
def test_file_check_fails(check_id: str, host: Path) -> None:
    path, mode, _ = FILES[check_id]
    target = host / path.lstrip("/")
    if mode is None:
        os.chown(target, 1000, 1000)
    else:
        os.chmod(target, 0o777)  # noqa: S103 - the too-permissive mode under test
    result, items = _run(check_id, host)
    assert result is Result.WARN
    assert items[0].startswith(path)


def test_stricter_mode_passes(host: Path) -> None:
    os.chmod(host / "etc/docker/daemon.json", 0o600)
    assert _run("3.18", host)[0] is Result.PASS


@pytest.mark.parametrize("check_id", ["3.19", "3.23", "3.7"])
def test_absent_file_is_info(check_id: str, tmp_path: Path) -> None:
    assert _run(check_id, tmp_path)[0] is Result.INFO


def test_tls_files_without_tls_configuration_are_info(tmp_path: Path) -> None:
    (tmp_path / "etc/docker").mkdir(parents=True)
    (tmp_path / "etc/docker/daemon.json").write_text("{}")
    assert _run("3.9", tmp_path)[0] is Result.INFO
