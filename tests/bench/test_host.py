"""Section 1 checks on host files laid out under a temporary root, as a Debian host has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustyard.bench import CHECKS_BY_ID, BenchContext, Result, run_checks
from trustyard.bench.host import AUDITED

DEBIAN_FILES = [
    "usr/sbin/dockerd",
    "run/containerd/",
    "var/lib/docker/",
    "etc/docker/",
    "lib/systemd/system/docker.service",
    "run/containerd/containerd.sock",
    "lib/systemd/system/docker.socket",
    "etc/default/docker",
    "etc/docker/daemon.json",
    "etc/containerd/config.toml",
    "etc/sysconfig/docker",
    "usr/bin/containerd",
    "usr/bin/containerd-shim",
    "usr/bin/containerd-shim-runc-v1",
    "usr/bin/containerd-shim-runc-v2",
    "usr/sbin/runc",
]


def _host(root: Path) -> Path:
    for path in DEBIAN_FILES:
        target = root / path
        if path.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("{}\n" if path.endswith(".json") else "")
    return root


def _run(check_id: str, root: Path) -> tuple[Result, str, tuple[str, ...]]:
    outcome = run_checks([CHECKS_BY_ID[check_id]], BenchContext(root=root, environ={})).outcomes[0]
    return outcome.result.result, outcome.result.details, outcome.result.items


def _audit(root: Path, text: str, name: str = "docker.rules") -> None:
    (root / "etc/audit/rules.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/audit/rules.d" / name).write_text(text)


@pytest.mark.parametrize("check_id", [a[0] for a in AUDITED])
def test_audited_file_passes(check_id: str, tmp_path: Path) -> None:
    root = _host(tmp_path)
    rules = [f"-w /{p.rstrip('/')} -p wa -k docker" for p in DEBIAN_FILES]
    # one rule in syscall form, as auditctl -l prints a watch it converted
    rules[0] = "-a always,exit -F arch=b64 -F path=/usr/sbin/dockerd -F perm=wa -F key=docker"
    _audit(root, "## Docker\n" + "\n".join(rules) + "\n")
    assert _run(check_id, root)[0] is Result.PASS


@pytest.mark.parametrize("check_id", [a[0] for a in AUDITED])
def test_unaudited_file_warns(check_id: str, tmp_path: Path) -> None:
    root = _host(tmp_path)
    (root / "etc/audit").mkdir(parents=True)
    (root / "etc/audit/audit.rules").write_text("-D\n-b 8192\n-w /etc/passwd -p wa -k identity\n")
    result, _, items = _run(check_id, root)
    assert result is Result.WARN
    assert items and items[0].startswith("/")


def test_watch_on_a_directory_covers_its_files(tmp_path: Path) -> None:
    root = _host(tmp_path)
    _audit(root, "-w /etc/docker -p wa -k docker\n")
    assert _run("1.1.11", root)[0] is Result.PASS


def test_missing_file_is_info_and_missing_rules_are_info(tmp_path: Path) -> None:
    assert _run("1.1.13", tmp_path)[0] is Result.INFO
    root = _host(tmp_path)
    result, details, _ = _run("1.1.3", root)
    assert result is Result.INFO and "no audit rules" in details


def test_separate_partition(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    mounts = tmp_path / "proc/mounts"
    mounts.write_text("/dev/sda1 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n")
    assert _run("1.1.1", tmp_path)[0] is Result.WARN
    mounts.write_text(mounts.read_text() + "/dev/mapper/vg-docker /var/lib/docker xfs rw,relatime 0 0\n")
    assert _run("1.1.1", tmp_path)[0] is Result.PASS


def test_separate_partition_follows_the_configured_data_root(tmp_path: Path) -> None:
    (tmp_path / "etc/docker").mkdir(parents=True)
    (tmp_path / "etc/docker/daemon.json").write_text('{"data-root": "/srv/docker"}')
    (tmp_path / "etc/fstab").write_text("UUID=1 / ext4 defaults 0 1\nUUID=2 /srv ext4 defaults 0 2\n")
    assert _run("1.1.1", tmp_path)[0] is Result.PASS


def test_docker_group_members(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    group = tmp_path / "etc/group"
    group.write_text("root:x:0:\ndocker:x:998:\n")
    assert _run("1.1.2", tmp_path)[0] is Result.PASS
    group.write_text("root:x:0:\ndocker:x:998:alice,bob\n")
    assert _run("1.1.2", tmp_path)[1:] == ("users in the docker group (each can control the daemon)", ("alice", "bob"))


def test_manual_host_checks(tmp_path: Path) -> None:
    assert _run("1.2.1", tmp_path)[0] is Result.NOTE
    context = BenchContext(root=tmp_path, docker_host=f"unix://{tmp_path}/none.sock", environ={})
    assert run_checks([CHECKS_BY_ID["1.2.2"]], context).outcomes[0].result.result is Result.NOTE
