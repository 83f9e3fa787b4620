"""5.23 / 5.24 (``docker exec --privileged`` / ``--user root``) on a real dockerd, witnessed by a real auditd.

auditd watches the docker CLI binary with the key ``docker`` (tests/bench/auditd.py) and writes its raw log
under the bench's root; the docker CLI runs execs in containers of the private dockerd. The bench reads the
audit log and the engine (``/events`` exec_create, ``/exec/ID/json`` for execs still running), and warns naming
the container that had the exec; a container with only plain execs is not named, and with no such execs at
all the checks pass. Without the audit log, the engine alone still knows the running execs' options, but not
those of finished ones: INFO, never PASS.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.auditd import Auditd
from bench.engines import alpine_dockerd
from fixtures.dockerd import Dockerd
from trustyard.bench import BenchContext, Result, run_checks, select

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dockerd, Auditd, Path]]:
    root = tmp_path_factory.mktemp("host")
    auditd = Auditd(tmp_path_factory.mktemp("auditd"), root)
    docker_cli = shutil.which("docker")
    assert docker_cli is not None, "the docker CLI is missing (apt-get install docker.io)"
    with alpine_dockerd(tmp_path_factory.mktemp("dockerd")) as daemon:
        try:
            auditd.start()
            auditd.watch(os.path.realpath(docker_cli), "x", "docker")
            yield daemon, auditd, root
        finally:
            auditd.stop()


def _bench(daemon: Dockerd, root: Path) -> dict[str, tuple[Result, str, tuple[str, ...]]]:
    context = BenchContext(root=root, docker_host=f"unix://{daemon.socket}", environ={})
    report = run_checks(select(["5.23", "5.24"]), context)
    return {o.check.id: (o.result.result, o.result.details, o.result.items) for o in report.outcomes}


def test_exec_options_from_audit_log_and_engine(engine: tuple[Dockerd, Auditd, Path], tmp_path: Path) -> None:
    daemon, auditd, root = engine
    for name in ("web", "quiet"):
        daemon.docker("run", "-d", "--name", name, "bench/alpine:3.20", "sleep", "300", check=True)
    auditd.flushed('a4="quiet"')
    found = _bench(daemon, root)
    assert found["5.23"] == (Result.PASS, "no docker exec --privileged among 0 execs seen (audit log and engine)", ())
    assert found["5.24"][0] is Result.PASS

    # a privileged exec needs every capability, and this kind of machine withholds CAP_SYS_RESOURCE from
    # dockerd (notes/real-peers.md): runc refuses it. It is the attempt that 5.23 is about, so either way it counts.
    privileged = daemon.docker("exec", "-d", "--privileged", "web", "sleep", "120")
    assert privileged.returncode == 0 or "apply caps" in privileged.stderr, privileged.stderr
    daemon.docker("exec", "-d", "-u", "root", "web", "sleep", "121", check=True)
    daemon.docker("exec", "quiet", "true", check=True)  # a plain exec, finished: only the log knows its options
    auditd.flushed('a2="quiet"')
    found = _bench(daemon, root)
    result, details, items = found["5.23"]
    assert (result, details) == (Result.WARN, "docker exec --privileged was used")
    assert len(items) == 1 and items[0].startswith("web: sleep 120 (audit log, auid "), items
    result, details, items = found["5.24"]
    assert (result, details) == (Result.WARN, "docker exec --user root was used")
    assert len(items) == 1 and items[0].startswith("web: sleep 121 (audit log, auid "), items

    # the engine alone: a running exec's options are known; a finished or failed one's are not (INFO, not PASS)
    no_log = tmp_path / "host-without-audit-log"
    no_log.mkdir()
    found = _bench(daemon, no_log)
    assert found["5.24"] == (Result.WARN, "docker exec --user root was used", ("web: sleep 121 (engine)",))
    if privileged.returncode == 0:
        assert found["5.23"] == (Result.WARN, "docker exec --privileged was used", ("web: sleep 120 (engine)",))
    else:
        result, _, items = found["5.23"]
        assert result is Result.INFO and "web: sleep 120 (engine event, options no longer known)" in items, items


def test_finished_execs_without_audit_log_are_info(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    with alpine_dockerd(tmp_path_factory.mktemp("dockerd-plain")) as daemon:
        daemon.docker("run", "-d", "--name", "box", "bench/alpine:3.20", "sleep", "300", check=True)
        assert _bench(daemon, tmp_path)["5.23"] == (
            Result.PASS, "no docker exec --privileged among 0 execs seen (engine)", ()
        )  # fmt: skip
        daemon.docker("exec", "box", "true", check=True)
        found = _bench(daemon, tmp_path)
        for check_id in ("5.23", "5.24"):
            result, _, items = found[check_id]
            assert (result, items) == (Result.INFO, ("box: true (engine event, options no longer known)",))


def test_no_audit_log_and_no_engine_is_info(tmp_path: Path) -> None:
    context = BenchContext(root=tmp_path, docker_host=f"unix://{tmp_path}/none.sock", environ={})
    (outcome,) = run_checks(select(["5.23"]), context).outcomes
    assert outcome.result.result is Result.INFO
    assert "no audit log at" in outcome.result.details and "no engine socket" in outcome.result.details
