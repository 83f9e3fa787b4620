"""The audit-log witness of 5.23/5.24 on auditd's raw format, checked against ``ausearch -k docker`` itself.

The log holds what auditd writes for docker CLI runs (SYSCALL with the key and login uid, EXECVE with the
arguments, CWD, PATH, PROCTITLE), including auditd's encodings: hex for arguments with spaces, ``aN[i]`` pieces
for a long argument, a hex key field for several keys. ``ausearch --input LOG -k docker --raw`` (Debian's
auditd) picks the events the bench must read; the bench reads the same execs from its output as from the
whole log.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from trustyard.bench import BenchContext, Result, run_checks, select
from trustyard.bench.execs import ExecRecord, audit_execs, parse_exec_argv


def _event(serial: int, argv_fields: str, argc: int, key: str = '"docker"', auid: int = 1000) -> str:
    stamp = f"audit(1764457{serial:03d}.101:{serial})"
    return (
        f"type=SYSCALL msg={stamp}: arch=c000003e syscall=59 success=yes exit=0 a0=55d1c3f0a2b0 a1=55d1c3f0a310 "
        f"a2=55d1c3f09c00 a3=8 items=2 ppid=2211 pid={2300 + serial} auid={auid} uid=0 gid=0 euid=0 suid=0 fsuid=0 "
        f'egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="docker" exe="/usr/bin/docker" subj=unconfined key={key}\n'
        f"type=EXECVE msg={stamp}: argc={argc} {argv_fields}\n"
        f'type=CWD msg={stamp}: cwd="/root"\n'
        f'type=PATH msg={stamp}: item=0 name="/usr/bin/docker" inode=341712 dev=fe:00 mode=0100755 ouid=0 ogid=0 '
        "rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0\n"
        f"type=PROCTITLE msg={stamp}: proctitle=646F636B6572\n"
    )


LOG = "".join(
    [
        _event(1, 'a0="docker" a1="exec" a2="-it" a3="--user=0" a4="web" a5="sh"', 6),
        _event(2, 'a0="docker" a1="container" a2="exec" a3="-uroot" a4="db" a5="psql"', 6),
        # `sh -c "echo hi"`: auditd hex-encodes the argument with a space
        _event(3, 'a0="docker" a1="exec" a2="--privileged" a3="web" a4="sh" a5="-c" a6=6563686F206869', 7),
        # a long argument in pieces
        _event(4, 'a0="/usr/bin/docker" a1="exec" a2="cache" a3_len=8 a3[0]="long" a3[1]="-arg"', 4),
        # several keys: auditd writes the key field in hex, keys separated by \x01
        _event(
            5,
            'a0="docker" a1="exec" a2="--privileged=false" a3="quiet" a4="ls"',
            5,
            key="646F636B6572016578656373",
        ),
        _event(6, 'a0="docker" a1="exec" a2="--privileged" a3="other-key" a4="ls"', 5, key='"sshd"'),
        _event(7, 'a0="docker" a1="run" a2="--user" a3="root" a4="alpine" a5="exec"', 6),
        _event(8, 'a0="podman" a1="exec" a2="-e" a3="A=1" a4="--privileged" a5="pod-ctr" a6="id"', 7, auid=1001),
    ]
)
EXPECTED = [
    ExecRecord("web", "sh", False, "0", "audit log, auid 1000"),
    ExecRecord("db", "psql", False, "root", "audit log, auid 1000"),
    ExecRecord("web", "sh -c echo hi", True, "", "audit log, auid 1000"),
    ExecRecord("cache", "long-arg", False, "", "audit log, auid 1000"),
    ExecRecord("quiet", "ls", False, "", "audit log, auid 1000"),
    ExecRecord("pod-ctr", "id", True, "", "audit log, auid 1001"),
]


def _root(base: Path, log: str) -> Path:
    (base / "var/log/audit").mkdir(parents=True)
    (base / "var/log/audit/audit.log").write_text(log)
    return base


def test_audit_log_execs(tmp_path: Path) -> None:
    assert audit_execs(_root(tmp_path, LOG)) == EXPECTED


def test_same_execs_as_ausearch_selects(tmp_path: Path) -> None:
    whole = _root(tmp_path / "whole", LOG)
    proc = subprocess.run(
        ["ausearch", "--input", str(whole / "var/log/audit/audit.log"), "-k", "docker", "--raw"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"ausearch failed (apt-get install auditd): {proc.stderr}"
    assert "sshd" not in proc.stdout and "other-key" not in proc.stdout
    assert audit_execs(_root(tmp_path / "selected", proc.stdout)) == EXPECTED


def test_checks_name_the_containers(tmp_path: Path) -> None:
    context = BenchContext(root=_root(tmp_path, LOG), docker_host=f"unix://{tmp_path}/none.sock", environ={})
    found = {o.check.id: o.result for o in run_checks(select(["5.23", "5.24"]), context).outcomes}
    assert found["5.23"].result is Result.WARN
    assert found["5.23"].items == ("web: sh -c echo hi (audit log, auid 1000)", "pod-ctr: id (audit log, auid 1001)")
    assert found["5.24"].items == ("web: sh (audit log, auid 1000)", "db: psql (audit log, auid 1000)")


def test_log_without_execs_passes(tmp_path: Path) -> None:
    log = _event(1, 'a0="docker" a1="ps"', 2) + _event(2, 'a0="docker" a1="exec" a2="web" a3="ls"', 4)
    context = BenchContext(root=_root(tmp_path, log), docker_host=f"unix://{tmp_path}/none.sock", environ={})
    (outcome,) = run_checks(select(["5.23"]), context).outcomes
    assert (outcome.result.result, outcome.result.details) == (
        Result.PASS, "no docker exec --privileged among 1 exec seen (audit log)"
    )  # fmt: skip


def test_exec_command_lines() -> None:
    assert parse_exec_argv(["docker", "exec", "-d", "-u", "root:root", "c", "sleep", "1"]) == (
        "c",
        "sleep 1",
        False,
        "root:root",
    )
    assert parse_exec_argv(["docker", "-H", "unix:///x.sock", "exec", "--privileged", "c", "id"]) == (
        "c", "id", True, ""
    )  # fmt: skip
    assert parse_exec_argv(["docker", "run", "alpine", "exec"]) is None
    assert parse_exec_argv(["docker", "exec", "-eauth=1", "-itu", "0", "c", "sh"]) == ("c", "sh", False, "0")
    assert parse_exec_argv(["docker", "exec", "-ite", "USER=x", "c", "sh"]) == ("c", "sh", False, "")
    assert parse_exec_argv(["docker", "container", "exec", "c", "ls"]) == ("c", "ls", False, "")
    assert parse_exec_argv(["docker", "--debug", "exec", "-w", "/tmp", "c"]) == ("c", "", False, "")
    assert parse_exec_argv(["docker", "exec", "--user"]) is None
    assert parse_exec_argv(["sh", "-c", "docker exec c id"]) is None
