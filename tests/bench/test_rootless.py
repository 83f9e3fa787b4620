"""Sections 1, 2 and 3 for rootless Docker and for podman (rootful and rootless), on a host laid out under a
temporary root with real owners and modes (the tests run as root and chown to the rootless user, uid 1000).

The engine is recognised from its process under ``ROOT/proc`` (a dockerd or ``podman system service``, and the
uid in its status) or from ``--engine``/``--rootless``; its files are then looked for where that engine keeps
them (bench/layout.py), and those in the user's home and runtime directory must belong to the user.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustyard.bench import BenchContext, Result, run_checks, select
from trustyard.bench.layout import Engine

UID = GID = 1000
HOME = "/home/alice"
RUN = f"/run/user/{UID}"
DOCKER_FILES = {  # host path -> mode; owned by alice
    f"{HOME}/.config/systemd/user/docker.service": 0o644,
    f"{HOME}/.config/docker": 0o755,
    f"{HOME}/.config/docker/daemon.json": 0o644,
    f"{HOME}/.config/docker/certs.d/registry.example:5000/ca.crt": 0o444,
    f"{RUN}/docker.sock": 0o660,
    f"{RUN}/docker/containerd/containerd.sock": 0o660,
    f"{HOME}/.local/share/docker": 0o710,
}
PODMAN_FILES = {
    f"{HOME}/.config/systemd/user/podman.service": 0o644,
    f"{HOME}/.config/systemd/user/podman.socket": 0o644,
    f"{HOME}/.config/containers": 0o755,
    f"{HOME}/.config/containers/containers.conf": 0o644,
    f"{RUN}/podman/podman.sock": 0o660,
    f"{HOME}/.local/share/containers/storage": 0o700,
}


def _place(root: Path, path: str, mode: int, uid: int, gid: int, sockets: list[socket.socket]) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.endswith(".sock"):
        s = socket.socket(socket.AF_UNIX)
        sockets.append(s)
        s.bind(str(target))
    elif path.endswith((".service", ".socket", ".json", ".crt", ".conf")):
        target.write_text(json.dumps({"icc": False}) if path.endswith("daemon.json") else "x\n")
    else:
        target.mkdir(exist_ok=True)
    os.chown(target, uid, gid)
    target.chmod(mode)


def _process(root: Path, pid: int, argv: list[str], uid: int, environ: tuple[str, ...] = ()) -> None:
    proc = root / f"proc/{pid}"
    proc.mkdir(parents=True)
    (proc / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (proc / "environ").write_bytes(b"".join(e.encode() + b"\0" for e in environ))
    (proc / "status").write_text(f"Name:\t{Path(argv[0]).name}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")


@pytest.fixture
def host() -> Iterator[Path]:
    """A host with user alice, a /home partition and audit rules for alice's Docker and podman files.

    The root is short (in /tmp): a Unix socket's path must fit in 108 bytes, and containerd's is deep.
    """
    tmp_path = Path(tempfile.mkdtemp(prefix="tyrl-", dir="/tmp"))
    sockets: list[socket.socket] = []
    (tmp_path / "etc/audit/rules.d").mkdir(parents=True)
    (tmp_path / "etc/passwd").write_text(f"root:x:0:0:root:/root:/bin/sh\nalice:x:{UID}:{GID}::{HOME}:/bin/sh\n")
    (tmp_path / "etc/group").write_text(f"root:x:0:\ndocker:x:998:\nalice:x:{GID}:\n")
    (tmp_path / "etc/audit/rules.d/docker.rules").write_text(
        f"-w {HOME}/.local/share/docker -k docker\n-w {HOME}/.config/docker -p wa -k docker\n"
        f"-w {HOME}/.config/systemd/user/docker.service -k docker\n-w {HOME}/.local/share/containers -k docker\n"
    )
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/mounts").write_text("/dev/sda1 / ext4 rw 0 0\n/dev/sda2 /home ext4 rw 0 0\n")
    for path, mode in {**DOCKER_FILES, **PODMAN_FILES}.items():
        _place(tmp_path, path, mode, UID, GID, sockets)
    try:
        yield tmp_path
    finally:
        for s in sockets:
            s.close()
        shutil.rmtree(tmp_path)


def _results(
    root: Path, *selectors: str, engine_kind: Engine | None = None, rootless_user: str | None = None
) -> dict[str, tuple[Result, str, tuple[str, ...]]]:
    context = BenchContext(root=root, environ={}, engine_kind=engine_kind, rootless_user=rootless_user)
    report = run_checks(select(selectors), context)
    return {o.check.id: (o.result.result, o.result.details, o.result.items) for o in report.outcomes}


ROOTLESS_DOCKER_PASSES = {
    "3.1": f"{HOME}/.config/systemd/user/docker.service",
    "3.2": f"{HOME}/.config/systemd/user/docker.service",
    "3.5": f"{HOME}/.config/docker",
    "3.6": f"{HOME}/.config/docker",
    "3.7": f"{HOME}/.config/docker/certs.d/registry.example:5000/ca.crt",
    "3.8": f"{HOME}/.config/docker/certs.d/registry.example:5000/ca.crt",
    "3.15": f"{RUN}/docker.sock",
    "3.16": f"{RUN}/docker.sock",
    "3.17": f"{HOME}/.config/docker/daemon.json",
    "3.18": f"{HOME}/.config/docker/daemon.json",
    "3.23": f"{RUN}/docker/containerd/containerd.sock",
    "3.24": f"{RUN}/docker/containerd/containerd.sock",
}


def test_rootless_dockerd_recognised_from_its_process(host: Path) -> None:
    _process(host, 4242, ["dockerd", "--rootless"], UID)
    found = _results(host, "1", "2.1", "2.2", "3")
    for check_id, path in ROOTLESS_DOCKER_PASSES.items():
        assert found[check_id][0] is Result.PASS, (check_id, found[check_id])
        assert found[check_id][2] == (path,), (check_id, found[check_id])
    assert found["3.15"][1] == f"owned by {UID}:{GID}"
    # section 1: alice's data root is on /home; her files are audited
    assert found["1.1.1"][:2] == (Result.PASS, f"{HOME}/.local/share/docker is on its own file system (/home)")
    for check_id in ("1.1.5", "1.1.6", "1.1.7", "1.1.11"):
        assert found[check_id][0] is Result.PASS, (check_id, found[check_id])
    assert found["1.1.8"] == (Result.WARN, f"no audit rule for {RUN}/docker/containerd/containerd.sock",
                              (f"{RUN}/docker/containerd/containerd.sock",))  # fmt: skip
    # section 2 reads alice's daemon.json (icc false) and knows the daemon is rootless
    assert found["2.1"][0] is Result.PASS and found["2.2"][0] is Result.PASS


def test_rootless_docker_files_with_wrong_owner_or_mode_warn(host: Path) -> None:
    os.chown(host / f"{HOME.lstrip('/')}/.config/docker/daemon.json", 0, 0)  # root-owned: the daemon's user can't edit
    (host / f"{RUN.lstrip('/')}/docker.sock").chmod(0o666)
    (host / f"{HOME.lstrip('/')}/.config/systemd/user/docker.service").chmod(0o664)
    found = _results(host, "3", rootless_user="alice")
    assert found["3.17"] == (Result.WARN, f"not owned by {UID}:{GID}", (f"{HOME}/.config/docker/daemon.json (0:0)",))
    assert found["3.16"] == (Result.WARN, "more permissive than 660", (f"{RUN}/docker.sock (666)",))
    assert found["3.2"][0] is Result.WARN
    assert found["3.19"][0] is Result.INFO  # /etc/default/docker: a system file, not on this host


def test_rootless_podman(host: Path) -> None:
    found = _results(host, "1.1.5", "1.1.6", "3", engine_kind=Engine.PODMAN, rootless_user="alice")
    expect = {
        "3.1": f"{HOME}/.config/systemd/user/podman.service",
        "3.3": f"{HOME}/.config/systemd/user/podman.socket",
        "3.5": f"{HOME}/.config/containers",
        "3.15": f"{RUN}/podman/podman.sock",
        "3.16": f"{RUN}/podman/podman.sock",
        "3.17": f"{HOME}/.config/containers/containers.conf",
    }
    for check_id, path in expect.items():
        assert found[check_id][0] is Result.PASS and found[check_id][2] == (path,), (check_id, found[check_id])
    assert found["1.1.5"][:2] == (Result.PASS, f"{HOME}/.local/share/containers/storage is audited")
    assert found["1.1.6"] == (
        Result.WARN,
        f"no audit rule for {HOME}/.config/containers",
        (f"{HOME}/.config/containers",),
    )
    assert found["3.23"][0] is Result.INFO  # podman has no containerd


def test_rootful_podman_recognised_from_its_process(host: Path) -> None:
    sockets: list[socket.socket] = []
    _process(host, 77, ["/usr/bin/podman", "system", "service", "--time=0"], 0)
    _place(host, "/etc/containers", 0o755, 0, 0, sockets)
    _place(host, "/etc/containers/containers.conf", 0o644, 0, 0, sockets)
    _place(host, "/run/podman/podman.sock", 0o660, 0, 0, sockets)
    _place(host, "/lib/systemd/system/podman.socket", 0o644, 0, 0, sockets)
    try:
        found = _results(host, "3")
        for check_id in ("3.3", "3.4", "3.5", "3.6", "3.15", "3.16", "3.17", "3.18"):
            assert found[check_id][0] is Result.PASS, (check_id, found[check_id])
        assert found["3.15"][1:] == ("owned by root:root", ("/run/podman/podman.sock",))
        os.chown(host / "run/podman/podman.sock", UID, GID)
        found = _results(host, "3.15")
        assert found["3.15"] == (Result.WARN, "not owned by root:root", (f"/run/podman/podman.sock ({UID}:{GID})",))
    finally:
        for s in sockets:
            s.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "trustyard", "bench", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_cli_rootless_option(host: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    proc = _cli("--root", str(host), "--rootless", "alice", "--check", "3.15", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["tests"][0]["results"]
    assert (result["result"], result["items"]) == ("PASS", [f"{RUN}/docker.sock"])

    out = tmp_path_factory.mktemp("out") / "bench.json"
    proc = _cli("--root", str(host), "--rootless", "bob", "--check", "3", "--output", str(out))
    assert proc.returncode == 1 and "no user 'bob'" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_rootless_uid_without_passwd_entry_is_info(host: Path) -> None:
    _process(host, 4242, ["dockerd"], 2000)
    found = _results(host, "3.15")
    assert found["3.15"][0] is Result.INFO and "uid 2000" in found["3.15"][1]


def test_runtime_dir_from_the_engine_process(host: Path) -> None:
    """rootlesskit hands dockerd the user's XDG_RUNTIME_DIR; where it is not /run/user/UID, the socket is there."""
    sockets: list[socket.socket] = []
    runtime = "/var/run/alice-runtime"
    _process(host, 4242, ["dockerd"], UID, ("HOME=/home/alice", f"XDG_RUNTIME_DIR={runtime}", "PATH=/usr/bin"))
    _place(host, f"{runtime}/docker.sock", 0o660, UID, GID, sockets)
    try:
        found = _results(host, "3.15", "3.16")
        assert found["3.15"] == (Result.PASS, f"owned by {UID}:{GID}", (f"{runtime}/docker.sock",))
        assert found["3.16"][0] is Result.PASS
    finally:
        for s in sockets:
            s.close()
