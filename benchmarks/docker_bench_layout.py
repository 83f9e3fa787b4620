"""Compare ``trustyard bench --format json`` with a log docker-bench-security itself writes, on one dockerd.

Not a timing: a check against the reference tool, run by hand where a checkout of docker-bench-security
exists (``git clone --bare https://github.com/docker/docker-bench-security DIR``; never part of this project).
It cannot be part of the test suite: the machines that run CI reach PyPI, Debian and npm only, and
docker-bench-security is published on none of them. ``tests/bench/test_log_consumers.py`` keeps the key and
type layout this comparison established, and docs/bench.md records its last result.

It starts the tests' private dockerd with a container that breaks 5.10/5.11 and one that keeps them, runs
docker-bench-security's script (``-l``, sections 1, 2, 5 and community) and ``trustyard bench`` (sections 1,
2, 5, C) against it, and reports: keys and value types at every level of the log, the check IDs it ran that
we did not, and whether the results and items of the unambiguous checks 5.5, 5.10, 5.11 and 5.16 agree.
Exit code 0 when all of that holds, 1 otherwise.

    python benchmarks/docker_bench_layout.py --docker-bench-git /path/to/docker-bench-security.git
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "tests"):  # the tests' dockerd fixture
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from bench.engines import alpine_dockerd, bench_json, run_good_and_bad  # noqa: E402
from fixtures.dockerd import Dockerd  # noqa: E402

AGREE = ("5.5", "5.10", "5.11", "5.16")
"""Checks whose outcome does not depend on how a tool words or scores them: both must say the same."""


def theirs(daemon: Dockerd, git_dir: Path, workdir: Path) -> dict[str, Any]:
    """docker-bench-security's JSON log of the same sections, from a tree exported from ``git_dir``."""
    tree = workdir / "docker-bench-security"
    tree.mkdir()
    archive = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "HEAD"], capture_output=True,
                             check=True, timeout=60)  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=60)
    checks = "host_configuration,docker_daemon_configuration,container_runtime,community_checks"
    proc = subprocess.run(["bash", "docker-bench-security.sh", "-l", str(workdir / "dbs.log"), "-p", "-c", checks],
                          cwd=tree, env={**daemon.env, "PATH": os.environ["PATH"]}, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"docker-bench-security failed: {proc.stderr[-2000:]}")
    found: dict[str, Any] = json.loads((workdir / "dbs.log.json").read_text())
    return found


def _types(entries: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for entry in entries:
        for key, value in entry.items():
            found.setdefault(key, set()).add(type(value).__name__)
    return found


def differences(our_log: dict[str, Any], their_log: dict[str, Any]) -> list[str]:
    """Everything in which our log differs from docker-bench-security's where a consumer would notice."""
    problems: list[str] = []
    top_ours = {k: type(v).__name__ for k, v in our_log.items() if k != "trustyard"}
    top_theirs = {k: type(v).__name__ for k, v in their_log.items()}
    if top_ours != top_theirs:
        problems.append(f"top level: ours {top_ours}, theirs {top_theirs}")
    if _types(our_log["tests"]) != _types(their_log["tests"]):
        problems.append(f"sections: ours {_types(our_log['tests'])}, theirs {_types(their_log['tests'])}")
    our_results = [r for s in our_log["tests"] for r in s["results"]]
    their_results = [r for s in their_log["tests"] for r in s["results"]]
    mine, other = _types(our_results), _types(their_results)
    problems += [f"result key {k!r}: ours {t}, theirs {other.get(k)}" for k, t in mine.items() if other.get(k) != t]
    ours_by_id = {r["id"]: r for r in our_results}
    theirs_by_id = {r["id"]: r for r in their_results}
    missing = set(theirs_by_id) - {"C.1", "C.1.1"} - set(ours_by_id)  # C.1: its own version check
    if missing:
        problems.append(f"checks it ran that we did not: {sorted(missing)}")
    for check in AGREE:
        a, b = ours_by_id.get(check, {}), theirs_by_id.get(check, {})
        if (a.get("result"), a.get("items", [])) != (b.get("result"), b.get("items", [])):
            problems.append(
                f"{check}: ours {a.get('result')} {a.get('items')}, theirs {b.get('result')} {b.get('items')}"
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Run both tools on one private dockerd and print the differences (none: exit 0)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--docker-bench-git", type=Path, required=True, help="a git dir of docker-bench-security")
    args = parser.parse_args(argv)
    if not (args.docker_bench_git / "HEAD").is_file():
        parser.error(f"{args.docker_bench_git} is not a git directory")
    with tempfile.TemporaryDirectory() as tmp, alpine_dockerd(Path(tmp) / "dockerd") as daemon:
        run_good_and_bad(daemon)
        root = Path(tmp) / "root"
        root.mkdir()
        ours = bench_json(daemon, root, "1", "2", "5", "C")
        problems = differences(ours, theirs(daemon, args.docker_bench_git, Path(tmp)))
    for problem in problems:
        print(problem)
    print("same layout, same checks, same outcomes" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
