"""The docker:// benchmark end to end with one run: real docker-registry, real trustyard, real skopeo.

`benchmarks/docker_source.py` pushes the Debian fixture image to both registries and times the analysis over
docker:// against the analysis of the OCI layout; here it runs once and the test checks that every row has a
figure and that it writes only its own section of the benchmarks file (speed is never asserted in a test).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` without `python -m`: make the repository root importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import docker_source as bench  # noqa: E402

pytestmark = pytest.mark.interop


def test_docker_source_benchmark_runs_once(tmp_path: Path) -> None:
    for tool in ("skopeo", "docker-registry"):
        assert shutil.which(tool), f"{tool} is missing: install the Debian package {tool} (scripts/test does)"
    out = tmp_path / "benchmarks.md"
    other = "## Registry: trustyard against the reference registry\n\nregistry figures\n"
    out.write_text(f"# Benchmarks\n\n{other}")

    assert bench.main(["--runs", "1", "--out", str(out)]) == 0

    text = out.read_text()
    assert text.startswith(f"# Benchmarks\n\n{other}")  # the other section is kept as it was
    section = text[text.index(bench.SECTION) :]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| cold")]
    labels = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert labels == [
        "OCI layout on local disk",
        "download + SHA-256 of the layer from reference",
        "docker:// from reference",
        "download + SHA-256 of the layer from trustyard",
        "docker:// from trustyard",
    ]
    for row in rows:
        assert float(row.split(" | ")[1]) > 0, row
    assert all(row.rstrip(" |").endswith("×") for row in rows if row.startswith("| docker://"))
