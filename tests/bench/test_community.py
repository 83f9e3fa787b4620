"""C.2 (legacy v1 registry operations disabled) from the engine's version and the daemon's configuration.

The real engines (dockerd 20.10, podman 4.3) are in test_runtime_dockerd.py / test_runtime_podman.py; here the
versions no engine on this machine has (before 17.12) are given to the decision, and daemon.json files and
dockerd command lines go through the bench with no engine reachable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustyard.bench import BenchContext, Result, run_checks, select
from trustyard.bench.community import engine_version, legacy_registry


@pytest.mark.parametrize(
    ("version", "disabled", "expected"),
    [
        ("20.10.24+dfsg1", False, Result.PASS),
        ("17.12.0-ce", False, Result.PASS),
        ("17.09.1-ce", False, Result.WARN),
        ("1.13.1", False, Result.WARN),
        ("17.09.1-ce", True, Result.PASS),
        ("17.09.1-ce", None, Result.INFO),  # an old engine, configuration unreadable: cannot say
        ("master-dockerproject-2017", False, Result.INFO),
        (None, False, Result.INFO),
        (None, True, Result.PASS),
    ],
)
def test_decision(version: str | None, disabled: bool | None, expected: Result) -> None:
    assert legacy_registry(version, False, disabled).result is expected


def test_podman_passes_on_any_version() -> None:
    assert legacy_registry("4.3.1", True, None).result is Result.PASS


def test_versions() -> None:
    assert engine_version("20.10.24+dfsg1") == (20, 10)
    assert engine_version("v1.13.1") == (1, 13)
    assert engine_version("dev") is None


def _c2(
    tmp_path: Path, *, daemon_json: dict[str, object] | None = None, cmdline: str | None = None
) -> tuple[Result, str]:
    path = None
    if daemon_json is not None:
        path = tmp_path / "daemon.json"
        path.write_text(json.dumps(daemon_json))
    context = BenchContext(
        root=tmp_path, daemon_json=path, dockerd_cmdline=cmdline, docker_host=f"unix://{tmp_path}/no.sock", environ={}
    )
    (outcome,) = run_checks(select(["C.2"]), context).outcomes
    return outcome.result.result, outcome.result.details


def test_daemon_json_and_cmdline_without_engine(tmp_path: Path) -> None:
    assert _c2(tmp_path, daemon_json={"disable-legacy-registry": True}) == (
        Result.PASS, "disable-legacy-registry is set"
    )  # fmt: skip
    assert _c2(tmp_path, cmdline="dockerd --disable-legacy-registry -H fd://")[0] is Result.PASS
    assert _c2(tmp_path, daemon_json={}) == (
        Result.INFO, "the engine's version is unknown; disable-legacy-registry is not set"
    )  # fmt: skip
    empty = tmp_path / "empty-host"
    empty.mkdir()
    result, details = _c2(empty)
    assert result is Result.INFO and "neither the engine nor the daemon's configuration" in details
