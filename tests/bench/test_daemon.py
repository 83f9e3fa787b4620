"""Section 2 checks on daemon.json files and dockerd command lines, passing and failing for each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from trustyard.bench import CHECKS_BY_ID, BenchContext, BenchError, Result, run_checks
from trustyard.bench.daemonconfig import load_settings, parse_cmdline

# check id -> (passing daemon.json, failing daemon.json); {} is dockerd's defaults
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "2.2": ({"icc": False}, {}),
    "2.3": ({"log-level": "info"}, {"log-level": "debug"}),
    "2.4": ({}, {"iptables": False}),
    "2.5": ({}, {"insecure-registries": ["registry.example:5000"]}),
    "2.6": ({"storage-driver": "overlay2"}, {"storage-driver": "aufs"}),
    "2.7": (
        {"hosts": ["tcp://0.0.0.0:2376"], "tlsverify": True, "tlscacert": "/c", "tlscert": "/s", "tlskey": "/k"},
        {"hosts": ["tcp://0.0.0.0:2375", "unix:///var/run/docker.sock"]},
    ),
    "2.9": ({"userns-remap": "default"}, {}),
    "2.10": ({}, {"cgroup-parent": "/docker-special"}),
    "2.11": ({"storage-opts": ["dm.thinpooldev=/dev/mapper/thin"]}, {"storage-opts": ["dm.basesize=50G"]}),
    "2.12": ({"authorization-plugins": ["trustyard-authz"]}, {}),
    "2.13": ({"log-driver": "syslog", "log-opts": {"syslog-address": "udp://logs:514"}}, {"log-driver": "json-file"}),
    "2.14": ({"no-new-privileges": True}, {}),
    "2.15": ({"live-restore": True}, {}),
    "2.16": ({"userland-proxy": False}, {}),
    "2.18": ({}, {"experimental": True}),
    # manual checks: INFO rather than WARN when not met
    "2.1": ({"rootless": True}, {}),
    "2.8": ({"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}}}, {}),
    "2.17": ({"seccomp-profile": "/etc/docker/seccomp.json"}, {}),
}
MANUAL = {"2.1", "2.8", "2.10", "2.17"}


def _run(check_id: str, tmp_path: Path, config: dict[str, Any] | None = None, cmdline: str | None = None) -> Result:
    daemon_json = None
    if config is not None:
        daemon_json = tmp_path / "daemon.json"
        daemon_json.write_text(json.dumps(config))
    context = BenchContext(root=tmp_path, daemon_json=daemon_json, dockerd_cmdline=cmdline, environ={})
    return run_checks([CHECKS_BY_ID[check_id]], context).outcomes[0].result.result


def test_every_daemon_check_has_cases() -> None:
    assert set(CASES) == {c.id for c in CHECKS_BY_ID.values() if c.section == "2"}


@pytest.mark.parametrize("check_id", list(CASES))
def test_daemon_check_passes(check_id: str, tmp_path: Path) -> None:
    assert _run(check_id, tmp_path, CASES[check_id][0]) is Result.PASS


@pytest.mark.parametrize("check_id", list(CASES))
def test_daemon_check_fails(check_id: str, tmp_path: Path) -> None:
    expected = Result.INFO if check_id in MANUAL else Result.WARN
    assert _run(check_id, tmp_path, CASES[check_id][1]) is expected


def test_tls_without_tcp_is_info(tmp_path: Path) -> None:
    assert _run("2.7", tmp_path, {"hosts": ["unix:///var/run/docker.sock"]}) is Result.INFO


COMMAND_LINES = {
    "2.2": ("dockerd --icc=false", "dockerd --icc"),
    "2.3": ("dockerd -l info", "dockerd --log-level=debug"),
    "2.4": ("dockerd", "dockerd --iptables=false"),
    "2.5": ("dockerd -H fd://", "dockerd --insecure-registry 10.0.0.5:5000 -H fd://"),
    "2.7": (
        "dockerd -H tcp://0.0.0.0:2376 --tlsverify --tlscacert=/c --tlscert=/s --tlskey /k",
        "dockerd -H tcp://0.0.0.0:2375",
    ),
    "2.12": ("dockerd --authorization-plugin=authz", "dockerd"),
    "2.16": ("/usr/bin/dockerd --userland-proxy=false", "/usr/bin/dockerd --userland-proxy=true"),
}


@pytest.mark.parametrize("check_id", list(COMMAND_LINES))
def test_daemon_check_from_command_line(check_id: str, tmp_path: Path) -> None:
    good, bad = COMMAND_LINES[check_id]
    assert _run(check_id, tmp_path, cmdline=good) is Result.PASS
    assert _run(check_id, tmp_path, cmdline=bad) is Result.WARN


def test_command_line_and_daemon_json_merge(tmp_path: Path) -> None:
    """The Debian unit's ``dockerd -H fd:// --containerd=...`` plus a daemon.json: both are read."""
    (tmp_path / "etc/docker").mkdir(parents=True)
    (tmp_path / "etc/docker/daemon.json").write_text('{"icc": false, "insecure-registries": ["a:5000"]}')
    settings = load_settings(
        tmp_path,
        cmdline="/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock --insecure-registry b:5000",
    )
    assert settings is not None
    assert not settings.icc
    assert settings.hosts == ("fd://",)
    assert settings.insecure_registries == ("a:5000", "b:5000")


def test_running_dockerd_is_found_under_proc(tmp_path: Path) -> None:
    proc = tmp_path / "proc/4242"
    proc.mkdir(parents=True)
    (proc / "cmdline").write_bytes(b"/usr/sbin/dockerd\0--icc=false\0-H\0fd://\0")
    (proc / "status").write_text("Name:\tdockerd\nUid:\t1000\t1000\t1000\t1000\n")
    settings = load_settings(tmp_path)
    assert settings is not None and not settings.icc and settings.rootless
    assert _run("2.1", tmp_path) is Result.PASS


def test_no_daemon_input_is_info(tmp_path: Path) -> None:
    outcome = run_checks([CHECKS_BY_ID["2.2"]], BenchContext(root=tmp_path, environ={})).outcomes[0]
    assert outcome.result.result is Result.INFO
    assert "--daemon-json" in outcome.result.details


def test_bad_daemon_json_is_info_with_reason(tmp_path: Path) -> None:
    (tmp_path / "daemon.json").write_text("{not json")
    context = BenchContext(root=tmp_path, daemon_json=tmp_path / "daemon.json", environ={})
    outcome = run_checks([CHECKS_BY_ID["2.2"]], context).outcomes[0]
    assert outcome.result.result is Result.INFO and "cannot read" in outcome.result.details


def test_flag_without_value_is_an_error() -> None:
    with pytest.raises(BenchError):
        parse_cmdline(["--log-level"])
