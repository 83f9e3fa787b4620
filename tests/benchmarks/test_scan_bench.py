"""The vulnerability scanning benchmark end to end with tiny sizes: real commands and real data, figures never
asserted (DESIGN.md: speed is measured in benchmarks/, never asserted in a test). The test checks that every
row has its figures and that only the benchmark's own section of docs/benchmarks.md is written.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` without `python -m`: make the repository root importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import scan as bench  # noqa: E402


def test_scan_benchmark_runs_with_tiny_sizes(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    other = "## Registry: trustyard against the reference registry\n\nregistry figures\n"
    out.write_text(f"# Benchmarks\n\n{other}")

    assert bench.main(["--runs", "1", "--inventories", "20", "--changed", "5", "--out", str(out)]) == 0

    text = out.read_text()
    assert text.startswith(f"# Benchmarks\n\n{other}")  # the other section is kept as it was
    section = text[text.index(bench.SECTION) :]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| measurement")]
    assert len(rows) == 6, rows
    assert "528 findings" in rows[0]  # the written bookworm entries: six findings per source package
    assert "20 stored inventories after 5 changed advisories (10 matched again, 10 changed)" in rows[4]
    assert "(20 matched again, 10 changed)" in rows[5]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] and cells[1][0].isdigit(), row  # a figure in every row
