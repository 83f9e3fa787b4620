"""Section 5 (and 6, 7) against a real private dockerd with containers started with good and bad settings.

The daemon is Debian's dockerd 20.10 from fixtures/dockerd.py, set up as notes/real-peers.md §3 says (vfs,
no iptables, no bridge, its own data and exec roots, a socket of its own); the image is the real Alpine
minirootfs imported with ``docker import``. ``--privileged`` containers cannot start on this kind of machine
(no CAP_SYS_RESOURCE), so that one is created but not started: the bench judges created containers too.
Everything the test starts is removed, and the daemon stopped, whatever the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.engines import alpine_dockerd
from fixtures.dockerd import Dockerd
from trustyard.bench import BenchContext, BenchReport, Result, run_checks, select

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    with alpine_dockerd(tmp_path_factory.mktemp("dockerd")) as daemon:
        yield daemon


def _bench(daemon: Dockerd, *sections: str) -> BenchReport:
    context = BenchContext(root=Path("/nonexistent"), docker_host=f"unix://{daemon.socket}", environ={})
    return run_checks(select(sections), context)


def _by_id(report: BenchReport) -> dict[str, tuple[Result, tuple[str, ...]]]:
    return {o.check.id: (o.result.result, o.result.items) for o in report.outcomes}


GOOD_PASSES = ["5.4", "5.5", "5.6", "5.7", "5.10", "5.11", "5.12", "5.13", "5.15", "5.16", "5.17", "5.21", "5.22",
               "5.25", "5.26", "5.27", "5.29", "5.30", "5.31", "5.32", "C.5.3.3"]  # fmt: skip
BAD_WARNS = ["5.5", "5.6", "5.10", "5.11", "5.13", "5.15", "5.16", "5.17", "5.21", "5.22", "5.26", "5.27", "5.29",
             "5.32", "C.5.3.3"]  # fmt: skip


def test_runtime_checks_on_real_containers(dockerd: Dockerd) -> None:
    # no containers yet: INFO, never PASS
    assert _by_id(_bench(dockerd, "5"))["5.11"][0] is Result.INFO

    dockerd.docker(
        "run", "-d", "--name", "good", "--network", "none", "--read-only", "--memory", "64m", "--cpu-shares", "512",
        "--pids-limit", "50", "--security-opt", "no-new-privileges", "--restart", "on-failure:5",
        "--health-cmd", "true", "--cap-drop", "ALL", "bench/alpine:3.20", "sleep", "300",
        check=True,
    )  # fmt: skip
    good = _by_id(_bench(dockerd, "5", "C"))
    for check_id in GOOD_PASSES:
        assert good[check_id][0] is Result.PASS, (check_id, good[check_id])
    assert good["5.2"][0] is Result.WARN  # no AppArmor on this host: the engine reports no profile

    dockerd.docker(
        "run", "-d", "--name", "bad", "--network", "host", "--pid", "host", "--ipc", "host", "--uts", "host",
        "-v", "/etc:/host-etc:ro", "-v", f"{dockerd.socket}:/var/run/docker.sock",
        "--security-opt", "seccomp=unconfined", "--restart", "always", "bench/alpine:3.20", "sleep", "300",
        check=True,
    )  # fmt: skip
    dockerd.docker("create", "--name", "priv", "--privileged", "bench/alpine:3.20", "sleep", "300", check=True)
    bad = _by_id(_bench(dockerd, "5", "C"))
    for check_id in BAD_WARNS:
        result, items = bad[check_id]
        assert result is Result.WARN, (check_id, bad[check_id])
        assert not any(i.startswith("good") for i in items), (check_id, items)
    assert bad["5.6"][1] == ("bad: /etc:/host-etc:ro",)
    assert bad["5.5"][1] == ("priv (not running)",)
    assert bad["5.7"][0] is Result.PASS  # `docker top` of the running ones shows no sshd


def test_operations_and_swarm_on_real_engine(dockerd: Dockerd) -> None:
    dockerd.docker("create", "--name", "stopped", "bench/alpine:3.20", "true", check=True)
    found = _by_id(_bench(dockerd, "5.1", "6", "7", "8", "C.2"))
    assert found["5.1"][0] is Result.PASS
    assert found["C.2"][0] is Result.PASS  # dockerd 20.10: no registry v1 support since 17.12
    assert found["8.1.5"][0] is Result.INFO  # Debian's dockerd names no edition: not Docker Enterprise
    assert found["6.2"][0] is Result.INFO and "stopped (not running)" not in found["6.2"][1]
    assert "stopped" in found["6.2"][1]
    assert found["6.1"][0] is Result.PASS
    assert all(found[f"7.{i}"][0] is Result.PASS for i in range(1, 10))


def test_unreachable_engine_is_info(tmp_path: Path) -> None:
    context = BenchContext(root=tmp_path, docker_host=f"unix://{tmp_path}/missing.sock", environ={})
    report = run_checks(select(["5", "6", "7"]), context)
    assert {o.result.result for o in report.outcomes if o.check.id not in ("5.23", "5.24", "5.28")} == {Result.INFO}
