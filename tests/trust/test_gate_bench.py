"""The content-trust gate benchmark end to end with tiny counts; its figures are never asserted.

`benchmarks/trust_gate.py` times manifest GETs of an in-process registry with and without content trust
required; here it runs one short round, and the test checks that every row of its table has a figure and
that it rewrites only its own section of docs/benchmarks.md (DESIGN.md: speed is measured in benchmarks/).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `pytest` without `python -m`: make the repository root importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import trust_gate as bench  # noqa: E402


def test_gate_benchmark_writes_every_row_of_its_section(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    other = "## Registry: trustyard against the reference registry\n\nregistry figures\n"
    tail = "## Image analysis: something else\n\nfigures\n"
    out.write_text(f"# Benchmarks\n\n{other}\n{bench.SECTION}\n\nold figures\n\n{tail}")

    assert bench.main(["--targets", "3", "--rounds", "1", "--seconds", "0.2", "--out", str(out)]) == 0

    text = out.read_text()
    assert text.startswith(f"# Benchmarks\n\n{other}") and text.endswith(tail)  # the others kept as they were
    section = text[text.index(bench.SECTION) : text.index(tail)]
    assert "old figures" not in section and section.count(bench.SECTION) == 1
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in section.splitlines() if line.startswith("| ")}
    for label in bench.LABELS:
        value = rows[label].split(" | ")[1]
        assert float(value.replace(",", "")) > 0, rows[label]
