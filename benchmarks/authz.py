"""Engine guard benchmark: what the authorization plugin costs per decision and per ``docker run``.

Three measurements in one run, each next to a reference taken in the same run:

1. In process: ``Authorizer.request`` on every message of tests/assets/authz/dockerd-20.10 (a real dockerd
   session, recorded with ``trustyard authz serve --record``), ``--iterations`` times each, under the built-in
   policy. Latency percentiles (p50, p99) over all decisions, and separately over the container creates
   (a JSON body parsed and every CIS 5.x rule applied) and the rest (endpoint only). The reference is parsing
   the same messages alone (``parse_message``): what any plugin must spend to read what dockerd sends.
2. Over the unix socket: ``trustyard authz serve`` as its own process, the same messages POSTed to
   ``/AuthZPlugin.AuthZReq`` on one kept-alive connection as dockerd does; the reference is the same round trip
   to ``/Plugin.Activate``, which decides nothing (transport and HTTP only).
3. ``docker run --rm --network none alpine true`` on one private dockerd (tests/fixtures/dockerd.py), with the
   plugin enabled and disabled by reloading the daemon's configuration (SIGHUP), alternating, ``--runs`` times
   each after one untimed run each: the wall time the plugin adds to a container's whole life (dockerd calls
   it for ping, create, attach, wait, start, and each response).

Figures are latencies, not assertions: tests/benchmarks/test_authz_bench.py runs this with tiny counts and
checks the table's rows exist. Needs root (dockerd) and Debian's docker.io.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
for path in (REPO_ROOT, REPO_ROOT / "tests"):  # `python benchmarks/authz.py`: benchmarks and tests' fixtures
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchmarks.registry import write_section  # noqa: E402
from fixtures.dockerd import Dockerd, UnixConnection  # noqa: E402
from trustyard.authz import Authorizer, parse_message  # noqa: E402

SECTION = "## Engine guard: trustyard authz decision latency and docker run overhead"
RECORDED = REPO_ROOT / "tests/assets/authz/dockerd-20.10"
IMAGE = "bench/alpine:3.20"
LABELS = (
    "in process: parse only (reference), all messages",
    "in process: decision, all messages",
    "in process: decision, container create",
    "in process: decision, other endpoints",
    "unix socket: Plugin.Activate round trip (reference)",
    "unix socket: AuthZReq round trip, all messages",
    "docker run --rm without the plugin (reference)",
    "docker run --rm with the plugin",
)


@dataclass(frozen=True, slots=True)
class Row:
    """One table row: p50 and p99 in microseconds (runs: milliseconds), and the p50 ratio to its reference."""

    label: str
    p50: float
    p99: float
    unit: str
    samples: int
    ratio: float | None = None

    def cells(self) -> list[str]:
        ratio = f"{self.ratio:.2f}×" if self.ratio is not None else ""
        return [self.label, f"{self.p50:,.1f}", f"{self.p99:,.1f}", self.unit, ratio, str(self.samples)]


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``samples`` by linear interpolation (``statistics.quantiles``' inclusive)."""
    if len(samples) == 1:
        return samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[min(98, max(0, round(q * 100) - 1))]


def _row(label: str, seconds: Sequence[float], *, scale: float, unit: str, reference: Row | None = None) -> Row:
    values = [s * scale for s in seconds]
    p50 = percentile(values, 0.5)
    return Row(label, p50, percentile(values, 0.99), unit, len(values), p50 / reference.p50 if reference else None)


def load_messages(folder: Path = RECORDED) -> list[bytes]:
    """Every recorded ``AuthZReq`` message, in order."""
    messages = [path.read_bytes() for path in sorted(folder.glob("0*.json"))]
    if not messages:
        raise SystemExit(f"no recorded messages in {folder}")
    return messages


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def in_process(messages: list[bytes], iterations: int) -> list[Row]:
    """Rows 1-4: parse only, then whole decisions, per message kind."""
    quiet = logging.getLogger("benchmarks.authz.quiet")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    authz = Authorizer(audit=quiet)
    creates = {i for i, m in enumerate(messages) if parse_message(m).endpoint.path == "/containers/create"}
    parsed: list[float] = []
    decided: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(iterations):
        for i, message in enumerate(messages):
            parsed.append(timed(partial(parse_message, message)))
            decided[i in creates].append(timed(partial(authz.request, message)))
    reference = _row(LABELS[0], parsed, scale=1e6, unit="µs")
    return [
        reference,
        _row(LABELS[1], decided[True] + decided[False], scale=1e6, unit="µs", reference=reference),
        _row(LABELS[2], decided[True], scale=1e6, unit="µs", reference=reference),
        _row(LABELS[3], decided[False], scale=1e6, unit="µs", reference=reference),
    ]


def _post(conn: http.client.HTTPConnection, route: str, body: bytes) -> None:
    conn.request("POST", route, body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    answer = response.read()
    if response.status != 200 or (b"Allow" not in answer and route != "/Plugin.Activate"):
        raise SystemExit(f"{route}: {response.status} {answer[:200]!r}")


def over_socket(messages: list[bytes], iterations: int, scratch: Path) -> list[Row]:
    """Rows 5-6: one ``trustyard authz serve`` process, one kept-alive connection."""
    sock = scratch / "authz.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trustyard", "authz", "serve", "--socket", str(sock),
         "--plugin-dir", str(scratch / "plugins"), "--name", "bench"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("trustyard authz serve did not start")
            time.sleep(0.05)
        conn = UnixConnection(sock, timeout=30)
        for message in messages:  # warm up: first requests import and compile
            _post(conn, "/AuthZPlugin.AuthZReq", message)
        activate = [timed(lambda: _post(conn, "/Plugin.Activate", b"{}")) for _ in range(iterations * len(messages))]
        requests = [
            timed(partial(_post, conn, "/AuthZPlugin.AuthZReq", message))
            for _ in range(iterations)
            for message in messages
        ]
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    reference = _row(LABELS[4], activate, scale=1e6, unit="µs")
    return [reference, _row(LABELS[5], requests, scale=1e6, unit="µs", reference=reference)]


def docker_runs(runs: int, scratch: Path) -> list[Row]:
    """Rows 7-8: the same dockerd, plugin off and on alternately (a configuration reload between)."""
    engine = Dockerd(scratch / "engine", with_plugin=True)
    (scratch / "engine").mkdir()
    samples: dict[bool, list[float]] = {False: [], True: []}
    argv = ("run", "--rm", "--network", "none", IMAGE, "true")
    try:
        engine.start()
        engine.import_alpine(IMAGE)
        for enabled in (False, True):  # untimed: the first container start (or decision) warms caches
            engine.enable_plugin(enabled)
            engine.docker(*argv, check=True)
        for _ in range(runs):
            for enabled in (False, True):
                engine.enable_plugin(enabled)
                samples[enabled].append(timed(lambda: engine.docker(*argv, check=True)))
    finally:
        engine.stop()
    reference = _row(LABELS[6], samples[False], scale=1e3, unit="ms")
    return [reference, _row(LABELS[7], samples[True], scale=1e3, unit="ms", reference=reference)]


def render(rows: list[Row], command: str, messages: int, iterations: int, runs: int) -> str:
    """The markdown section: table, added time per docker run, how it was measured."""
    added = rows[7].p50 - rows[6].p50
    spread = max(rows[6].p99 - rows[6].p50, rows[7].p99 - rows[7].p50)
    verdict = (
        f"The plugin adds {added:,.1f} ms (p50) to a `docker run --rm` on this machine"
        if added > spread
        else f"The plugin's addition to a `docker run --rm` is within the run-to-run spread on this machine "
        f"(p50 difference {added:,.1f} ms, p99 - p50 up to {spread:,.1f} ms)"
    )
    lines = [
        SECTION,
        "",
        f"Generated by `benchmarks/authz.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; run the command again, "
        "do not edit by hand.",
        "",
        f"Command: `{command}`",
        "",
        "| measurement | p50 | p99 | unit | p50 / reference | samples |",
        "|---|---:|---:|---|---:|---:|",
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
        "",
        f"{verdict}. {messages} recorded "
        f"messages of a real dockerd 20.10 session (tests/assets/authz/dockerd-20.10), {iterations} passes in "
        f"process and over the socket; {runs} `docker run` each with and without the plugin, alternating on one "
        f"dockerd (vfs, no network). {platform.machine()}, {os.cpu_count()} logical cores, Python "
        f"{platform.python_version()}. See the module docstring of benchmarks/authz.py for the method.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print the section, and write it into ``--out`` (only this section is replaced)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200, help="passes over the recorded messages")
    parser.add_argument("--runs", type=int, default=15, help="docker runs with and without the plugin, each")
    parser.add_argument("--out", type=Path, help="Markdown file whose engine-guard section is (re)written")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.runs < 1:
        parser.error("--iterations and --runs must be at least 1")
    messages = load_messages()
    with tempfile.TemporaryDirectory(prefix="ty-bench-authz-", dir="/tmp") as tmp:
        scratch = Path(tmp)
        rows = in_process(messages, args.iterations)
        rows += over_socket(messages, args.iterations, scratch)
        rows += docker_runs(args.runs, scratch)
    command = f"python benchmarks/authz.py --iterations {args.iterations} --runs {args.runs} --out docs/benchmarks.md"
    text = render(rows, command, len(messages), args.iterations, args.runs)
    print(text)
    if args.out is not None:
        write_section(args.out, text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
