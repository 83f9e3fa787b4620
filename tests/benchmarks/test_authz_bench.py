"""The engine-guard benchmark end to end with tiny counts: a real dockerd and plugin, figures never asserted.

`benchmarks/authz.py` times decisions in process and over the plugin's unix socket and `docker run --rm` with
and without the plugin on one dockerd; here it runs 1 pass and 1 run each, and the test checks that every row
of its table has figures and that it rewrites only its own section of docs/benchmarks.md (DESIGN.md: speed is
measured in benchmarks/, never asserted in a test).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` without `python -m`: make the repository root importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import authz as bench  # noqa: E402

pytestmark = pytest.mark.interop


def test_authz_benchmark_writes_every_row_of_its_section(tmp_path: Path) -> None:
    assert shutil.which("dockerd"), "dockerd is missing: install the Debian package docker.io"
    out = tmp_path / "benchmarks.md"
    other = "## Registry: trustyard against the reference registry\n\nregistry figures\n"
    tail = "## Image analysis: something else\n\nfigures\n"
    out.write_text(f"# Benchmarks\n\n{other}\n{bench.SECTION}\n\nold figures\n\n{tail}")

    assert bench.main(["--iterations", "1", "--runs", "1", "--out", str(out)]) == 0

    text = out.read_text()
    assert text.startswith(f"# Benchmarks\n\n{other}") and text.endswith(tail)  # the others kept as they were
    section = text[text.index(bench.SECTION) : text.index(tail)]
    assert "old figures" not in section and section.count(bench.SECTION) == 1
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in section.splitlines() if line.startswith("| ")}
    for label in bench.LABELS:
        cells = [c.strip() for c in rows[label].strip("|").split("|")]
        assert cells[1] and cells[2] and cells[3] in ("µs", "ms") and int(cells[5]) >= 1, rows[label]
        assert cells[4].endswith("×") != ("reference" in label), rows[label]  # ratios for all but references
    assert "The plugin adds " in section or "within the run-to-run spread" in section
