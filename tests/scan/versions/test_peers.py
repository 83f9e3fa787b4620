"""Our version orderings against the ecosystems' own tools, on versions drawn from each grammar:
``dpkg --compare-versions``, rpm's ``rpm.vercmp`` (through ``rpm --eval`` and its Lua interpreter), and Maven's
``ComparableVersion`` (the class Maven resolves with, run from the installed Maven's ``maven-artifact`` jar).

Differential tests find what tables cannot: every disagreement is a case where we would report a finding the
ecosystem's package manager would not, or miss one. Versions come from seeded random generators (not
hypothesis: one subprocess per comparison is too slow for shrinking to be useful), so runs are reproducible.
"""

from __future__ import annotations

import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from trustyard.scan.versions import SCHEMES

_MAVEN_JARS = sorted(Path("/usr/share/maven/lib").glob("maven-artifact-*.jar"))
# dpkg, rpm and maven are Debian packages scripts/test installs: these tests run everywhere CI runs, never skip


def _generator(
    first: Callable[[random.Random], str], chunks: list[str], max_chunks: int
) -> Callable[[random.Random], str]:
    def gen(rng: random.Random) -> str:
        return first(rng) + "".join(rng.choice(chunks) for _ in range(rng.randint(0, max_chunks)))

    return gen


def _number(rng: random.Random) -> str:
    return str(rng.choice([0, 1, 2, 9, 10]))


_dpkg_upstream = _generator(
    _number, ["0", "1", "10", "00", ".", "~", "+", "a", "z", "~rc", "+dfsg", ".0", "~deb12u"], 5
)
_rpm_part = _generator(_number, ["0", "1", "10", "01", ".", "~", "^", "_", "a", "b", "git", "rc", "p", ".fc"], 5)


def _dpkg_version(rng: random.Random) -> str:
    epoch = rng.choice(["", "", "1:", "2:"])
    revision = rng.choice(["", "", "-" + _dpkg_upstream(rng).replace(":", "")])
    return epoch + _dpkg_upstream(rng) + revision


def _rpm_version(rng: random.Random) -> str:
    return _rpm_part(rng) + rng.choice(["", "-" + _rpm_part(rng)])


def _maven_jar() -> Path:
    assert _MAVEN_JARS, "maven-artifact jar missing: install the Debian package maven (scripts/test does)"
    return _MAVEN_JARS[-1]


def _pairs(gen: Callable[[random.Random], str], seed: int, count: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        a = gen(rng)
        b = gen(rng) if rng.random() < 0.7 else a + rng.choice(["~", "a", ".0", "0", "-1", "^1", ".1"])
        pairs.append((a, b))
    return pairs


def test_dpkg_agrees_with_dpkg_compare_versions() -> None:
    scheme = SCHEMES["dpkg"]
    checked = 0
    for a, b in _pairs(_dpkg_version, 2024, 300):
        if not (scheme.is_valid(a) and scheme.is_valid(b)):
            continue
        ours = scheme.compare(a, b)
        for op, expected in (("lt", ours < 0), ("eq", ours == 0)):
            real = subprocess.run(["dpkg", "--compare-versions", a, op, b], capture_output=True, check=False)
            assert (real.returncode == 0) == expected, f"dpkg says {a} {op} {b} is {real.returncode == 0}"
        checked += 1
    assert checked > 200


def test_rpm_agrees_with_rpm_vercmp() -> None:
    scheme = SCHEMES["rpm"]
    pairs = [
        (a, b)
        for a, b in _pairs(_rpm_version, 2025, 400)
        if scheme.is_valid(a) and scheme.is_valid(b) and "'" not in a + b
    ]
    # rpm.vercmp compares whole EVR strings as rpm does: epoch, version, release
    lua = "".join(f"print(rpm.vercmp('{a}', '{b}') .. ' ')\n" for a, b in pairs)  # rpm's print adds no newline
    out = subprocess.run(["rpm", "--eval", f"%{{lua:\n{lua}}}"], capture_output=True, text=True, check=True).stdout
    results = [int(line) for line in out.split()]
    assert len(results) == len(pairs)
    disagreements = [(a, b, real) for (a, b), real in zip(pairs, results, strict=True) if scheme.compare(a, b) != real]
    assert disagreements == []


def test_maven_agrees_with_comparable_version() -> None:
    rng = random.Random(2026)
    chunks = [
        ".",
        "-",
        "alpha",
        "a",
        "beta",
        "b",
        "m",
        "rc",
        "cr",
        "snapshot",
        "ga",
        "final",
        "sp",
        "foo",
        "0",
        "1",
        "10",
        "release",
        "x",
    ]
    versions = [
        str(rng.randint(0, 3)) + "".join(rng.choice(chunks) for _ in range(rng.randint(0, 5))) for _ in range(800)
    ]
    out = subprocess.run(
        ["java", "-cp", str(_maven_jar()), "org.apache.maven.artifact.versioning.ComparableVersion", *versions],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    verdicts = re.findall(r"^   (\S+) (<|>|==) (\S+)$", out, re.MULTILINE)
    assert len(verdicts) == len(versions) - 1
    scheme = SCHEMES["maven"]
    sign = {"<": -1, "==": 0, ">": 1}
    disagreements = [(a, op, b) for a, op, b in verdicts if scheme.compare(a, b) != sign[op]]
    assert disagreements == []
