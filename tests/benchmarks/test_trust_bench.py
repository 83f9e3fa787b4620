"""The trust benchmark end to end with tiny sizes: real servers and the real client, figures never asserted.

`benchmarks/trust.py` starts trustyard and Debian's notary-server (with and without token auth) and drives the
real `notary` client; here it runs one trial of 1 and 2 targets and the test checks that every row of its
table has figures for both servers and that it rewrites only its own section of docs/benchmarks.md (DESIGN.md:
speed is measured in benchmarks/, never asserted in a test).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` without `python -m`: make the repository root importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import registry  # noqa: E402
from benchmarks import trust as bench  # noqa: E402

pytestmark = pytest.mark.interop


def test_trust_benchmark_runs_with_tiny_sizes(tmp_path: Path) -> None:
    for tool in ("notary", "notary-server", "openssl"):
        assert shutil.which(tool), f"{tool} is missing: install the Debian packages notary and openssl"
    out = tmp_path / "benchmarks.md"
    other = "## Registry: trustyard against the reference registry\n\nregistry figures\n"
    out.write_text(f"# Benchmarks\n\n{other}")

    assert bench.main(["--runs", "1", "--sizes", "1,2", "--out", str(out)]) == 0

    text = out.read_text()
    assert text.startswith(f"# Benchmarks\n\n{other}")  # the other section is kept as it was
    section = text[text.index(bench.SECTION) :]
    assert section.count(bench.SECTION) == 1
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in section.splitlines() if line.startswith("| ")}
    for metric in bench.metrics_for((1, 2)):
        row = rows[metric.label]
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] != "failed" and cells[2] != "failed", row  # a figure for trustyard and notary-server
        if metric.target:
            assert cells[3].endswith("×") and cells[5] in ("yes", "**no**"), row
    assert "| trustyard | 1 |" in section and "| notary-server | 1 |" in section
    assert "### Failures" not in section


def test_rerun_replaces_the_trust_section(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    tail = "## Image analysis: something else\n\nfigures\n"
    out.write_text(f"# Benchmarks\n\n{bench.SECTION}\n\nold figures\n\n### Machine\n\nold\n\n{tail}")
    registry.write_section(out, f"{bench.SECTION}\n\nnew figures\n", bench.SECTION)
    text = out.read_text()
    assert "new figures" in text and "old" not in text and text.endswith(tail)
