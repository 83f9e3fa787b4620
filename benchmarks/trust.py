"""Trust benchmark: the real `notary` client against trustyard and against Debian's notary-server, same run.

Both servers are started side by side on loopback ports with TLS (one CA made with openssl, as in
notes/notary-v1.md section 1) and with token authentication on both: trustyard is secure by default, and
notary-server is given ``auth.type=token`` with trustyard's token endpoint as its realm and a certificate of
trustyard's token signing key as its ``rootcertbundle``, so the client logs in, asks for and presents the
same tokens on both and the comparison is like for like. notary-server runs with its memory store and its
local (ed25519) signer, the notary-signer service is not needed for that.

Each trial, for each size N (1 and 100 targets) and each server (the order alternates), uses a new GUN and a
new trust directory: `notary init`, N × `notary add` (offline), a timed first `notary publish`, one more add
and a timed incremental publish, then a timed `notary list` (whose output must show the N+1 targets). Wall
time is for the whole CLI process, client crypto included, exactly what a user waits for; the server's own
CPU time (process tree, psutil) over the first publish is reported too. Figures are medians over ``--runs``
trials; memory is the peak resident set (VmHWM) of each server process at the end of the run.

Speed is never asserted in a test; tests/benchmarks/test_trust_bench.py runs this with tiny sizes.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/trust.py`: make the `benchmarks` package importable
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.registry import (  # noqa: E402
    BenchmarkError,
    Server,
    default_trustyard_command,
    free_port,
    tree_cpu_seconds,
    write_section,
)
from benchmarks.registry import (  # noqa: E402
    machine_info as registry_machine_info,
)

SECTION = "## Trust: the real notary client against trustyard and notary-server"
SERVERS = ("trustyard", "notary-server")
MODES = {"auth": "token auth", "open": "no auth"}
PASSWORD = "trust-benchmark-admin"  # noqa: S105 - a throwaway server's first administrator
PAYLOAD = b"a signed target\n"
ENV_PASSPHRASES = {
    "NOTARY_ROOT_PASSPHRASE": "bench-root",
    "NOTARY_TARGETS_PASSPHRASE": "bench-targets",
    "NOTARY_SNAPSHOT_PASSPHRASE": "bench-snapshot",
}


# ----------------------------------------------------------------------------------------------------------
# Certificates (openssl, the recipe of notes/notary-v1.md section 1)


@dataclasses.dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path
    token_key: Path
    token_cert: Path


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)


def make_tls(folder: Path) -> Tls:
    """A CA, a server certificate for 127.0.0.1 signed by it, and trustyard's token key with a certificate."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(folder, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    _openssl(
        folder, "req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "30", "-subj", "/CN=trust bench CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", "ca.crt",
    )  # fmt: skip
    _openssl(folder, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key")
    _openssl(folder, "req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr")
    (folder / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
    )
    _openssl(
        folder, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "30", "-sha256", "-extfile", "server.ext", "-out", "server.crt",
    )  # fmt: skip
    # trustyard signs its tokens with this key; notary-server trusts tokens signed by the certificate's key
    _openssl(folder, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "token.key")
    _openssl(folder, "req", "-x509", "-new", "-key", "token.key", "-sha256", "-days", "30", "-subj", "/CN=tokens",
             "-out", "token.crt")  # fmt: skip
    for key in ("ca.key", "server.key", "token.key"):
        (folder / key).chmod(0o600)
    return Tls(folder / "ca.crt", folder / "server.crt", folder / "server.key", folder / "token.key",
               folder / "token.crt")  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# Servers


@dataclasses.dataclass
class TrustServer(Server):
    """The registry benchmark's server process, served over TLS and checked at its own health path."""

    health: str = "/v2/"
    ca: Path | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def health_url(self) -> str:
        return self.url + self.health

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else None

    def peak_rss(self) -> int:
        """Peak resident set (VmHWM) of the server process and its descendants, in bytes."""
        total = 0
        try:
            root = psutil.Process(self.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        for process in processes:
            with contextlib.suppress(OSError, psutil.Error):
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
        return total


def trustyard_server(workdir: Path, tls: Tls, command: Sequence[str], *, auth: bool) -> TrustServer:
    """`trustyard serve` with TLS; secure by default (the client logs in as admin), or open to anyone."""
    port = free_port()
    mode = "auth" if auth else "open"
    data_dir = workdir / f"trustyard-{mode}-data"
    data_dir.mkdir(parents=True)
    argv = [*command, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir),
            "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTYARD_")}
    env.update(TRUSTYARD_ADMIN_PASSWORD=PASSWORD, TRUSTYARD_TOKEN_SIGNING_KEY=str(tls.token_key))
    if not auth:
        env["TRUSTYARD_INSECURE_ANONYMOUS_PUSH"] = "true"
    log = workdir / f"trustyard-{mode}.log"
    return TrustServer(f"trustyard ({MODES[mode]})", argv, port, log, credentials=("admin", PASSWORD), env=env)


def notary_server(workdir: Path, tls: Tls, token_realm: str | None) -> TrustServer:
    """Debian's notary-server: memory store, local signer; with ``token_realm``, tokens from trustyard's endpoint."""
    port = free_port()
    mode = "open" if token_realm is None else "auth"
    config: dict[str, object] = {
        "server": {"http_addr": f"127.0.0.1:{port}", "tls_cert_file": str(tls.cert), "tls_key_file": str(tls.key)},
        "trust_service": {"type": "local"},
        "storage": {"backend": "memory"},
        "logging": {"level": "info"},
    }
    if token_realm is not None:
        options = {"realm": token_realm, "service": "trustyard", "issuer": "trustyard",
                   "rootcertbundle": str(tls.token_cert)}  # fmt: skip
        config["auth"] = {"type": "token", "options": options}
    path = workdir / f"notary-server-{mode}.json"
    path.write_text(json.dumps(config, indent=1))
    argv = ["notary-server", "-config", str(path)]
    log = workdir / f"notary-server-{mode}.log"
    return TrustServer(f"notary-server ({MODES[mode]})", argv, port, log, health="/_notary_server/health")


# ----------------------------------------------------------------------------------------------------------
# The client


@dataclasses.dataclass
class NotaryClient:
    """The real `notary` CLI with its own trust directory, logging in as trustyard's admin."""

    server: str
    ca: Path
    trust_dir: Path
    login: bool = True

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTARY_", "DOCKER_"))}
        env.update(ENV_PASSPHRASES)
        env["HOME"] = str(self.trust_dir.parent)
        if self.login:
            env["NOTARY_AUTH"] = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        return env

    def run(self, *args: str) -> tuple[float, str]:
        """Run one command; its wall-clock seconds and stdout. A failure is a ``BenchmarkError``."""
        argv = ["notary", "-s", self.server, "--tlscacert", str(self.ca), "-d", str(self.trust_dir), *args]
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env(), timeout=300, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise BenchmarkError(f"notary {' '.join(args)} -> rc {done.returncode}: {done.stderr.strip()[-500:]}")
        return seconds, done.stdout


def trial(
    server: TrustServer, ca: Path, scratch: Path, gun: str, size: int, mode: str, token_server: TrustServer | None
) -> dict[str, float]:
    """One trial of ``size`` targets on a new GUN; figures in milliseconds, keys prefixed with ``mode``.

    The CPU figure is the trust server's plus, when another process issues its tokens, that token server's.
    """
    serving = [server.pid] + ([token_server.pid] if token_server is not None else [])
    client = NotaryClient(server.url, ca, scratch / "trust", login=mode == "auth")
    payload = scratch / "payload.txt"
    payload.write_bytes(PAYLOAD)
    client.run("init", gun)
    for i in range(size):
        client.run("add", gun, f"t{i}", str(payload))
    cpu = sum(tree_cpu_seconds(pid) for pid in serving)
    publish, _ = client.run("publish", gun)
    cpu = sum(tree_cpu_seconds(pid) for pid in serving) - cpu
    client.run("add", gun, f"t{size}", str(payload))
    more, _ = client.run("publish", gun)
    listed, out = client.run("list", gun)
    rows = [line for line in out.splitlines()[2:] if line.strip()]
    if len(rows) != size + 1:
        raise BenchmarkError(f"{server.label}: notary list shows {len(rows)} targets, expected {size + 1}")
    return {
        f"{mode}_publish_{size}": publish * 1000,
        f"{mode}_publish_more_{size}": more * 1000,
        f"{mode}_list_{size}": listed * 1000,
        f"{mode}_cpu_publish_{size}": cpu * 1000,
    }


# ----------------------------------------------------------------------------------------------------------
# Server-side time per request, from each server's own JSON request log


_GO_UNITS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}


def go_duration_ms(text: str) -> float:
    """A Go ``time.Duration`` string (``2.39ms``, ``850.1µs``, ``1.2s``) in milliseconds."""
    match = re.fullmatch(r"([0-9.]+)(ns|µs|us|ms|s)", text)
    if match is None:
        raise BenchmarkError(f"not a Go duration: {text!r}")
    return float(match.group(1)) * _GO_UNITS[match.group(2)]


def request_kind(method: str, path: str) -> str | None:
    """Which kind of trust request this is: ``update`` (the POST), ``metadata`` or ``key`` (GETs), else None."""
    if "/_trust/tuf/" not in path:
        return None
    if method == "POST" and path.endswith("/_trust/tuf/"):
        return "update"
    if method == "GET":
        return "key" if path.endswith(".key") else "metadata" if path.endswith(".json") else None
    return None


def server_times(log: Path) -> dict[str, list[float]]:
    """Milliseconds each request took inside the server, by kind, from trustyard's or notary-server's log."""
    out: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("msg") == "request" and "ms" in record:  # trustyard's access log
            kind, ms = request_kind(str(record.get("method")), str(record.get("path"))), float(record["ms"])
        elif "http.response.duration" in record:  # notary-server's "response completed"
            method, uri = str(record.get("http.request.method")), str(record.get("http.request.uri"))
            kind, ms = request_kind(method, uri), go_duration_ms(str(record["http.response.duration"]))
        else:
            continue
        if kind is not None:
            out.setdefault(kind, []).append(ms)
    return out


# ----------------------------------------------------------------------------------------------------------
# Report


@dataclasses.dataclass(frozen=True)
class Metric:
    key: str
    label: str
    decimals: int = 1
    target: str = ""

    def met(self, candidate: float, reference: float) -> bool | None:
        """Whether the issue's aim (at least as fast as notary-server) is met; None where there is no aim."""
        return candidate <= reference if self.target else None


def metrics_for(sizes: Sequence[int]) -> list[Metric]:
    out: list[Metric] = []
    for mode, label in MODES.items():
        for n in sizes:
            what = f"{n} target{'s' if n != 1 else ''}"
            out += [
                Metric(f"{mode}_publish_{n}", f"{label}: first publish, {what} (ms) ↓", target="≤ 1× ref"),
                Metric(f"{mode}_publish_more_{n}", f"{label}: publish +1 onto {what} (ms) ↓", target="≤ 1× ref"),
                Metric(f"{mode}_list_{n}", f"{label}: list {n + 1} targets (ms) ↓", target="≤ 1× ref"),
                Metric(f"{mode}_cpu_publish_{n}", f"{label}: server CPU, first publish of {what} (ms) ↓", 0),
            ]
        out += [
            Metric(f"{mode}_srv_update", f"{label}: in-server time per update POST, median (ms) ↓", 2),
            Metric(f"{mode}_srv_metadata", f"{label}: in-server time per metadata GET, median (ms) ↓", 2),
            Metric(f"{mode}_rss_mib", f"{label}: server peak RSS over the run (MiB) ↓"),
        ]
    return out


@dataclasses.dataclass
class Report:
    command: str
    date: str
    sizes: tuple[int, ...]
    runs: int
    values: dict[str, dict[str, float]]  # server -> metric key -> median (memory: the peak)
    trials: dict[str, list[dict[str, float]]]
    machine: dict[str, str]
    errors: list[str] = dataclasses.field(default_factory=list)

    def rows(self) -> list[list[str]]:
        out = []
        for metric in metrics_for(self.sizes):
            cand = self.values.get("trustyard", {}).get(metric.key)
            ref = self.values.get("notary-server", {}).get(metric.key)
            ratio = f"{cand / ref:.2f}×" if cand is not None and ref else ""
            met = metric.met(cand, ref) if cand is not None and ref is not None else None
            out.append([
                metric.label, _fmt(cand, metric.decimals), _fmt(ref, metric.decimals), ratio, metric.target,
                "" if met is None else "yes" if met else "**no**",
            ])  # fmt: skip
        return out


def _fmt(value: float | None, decimals: int) -> str:
    return "failed" if value is None else f"{value:,.{decimals}f}"


HEADER = ("metric", "trustyard", "notary-server", "ratio", "target", "met")


def render_markdown(report: Report) -> str:
    """The trust section of docs/benchmarks.md."""
    out = [
        SECTION, "",
        f"Generated by `benchmarks/trust.py` on {report.date}; do not edit by hand, run the command again.", "",
        f"Command: `{report.command}`", "",
        "| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * (len(HEADER) - 1),
    ]  # fmt: skip
    out += ["| " + " | ".join(row) + " |" for row in report.rows()]
    out += [
        "",
        f"ratio = trustyard / notary-server (↓: lower is better); median of {report.runs} trials per size and "
        "server, each on a new GUN with a new trust directory; memory: peak RSS (VmHWM) of the server process "
        "at the end of the run. Wall times are whole `notary` CLI processes (client crypto, TLS handshakes and "
        "token requests included). Two pairs of servers run side by side: with token auth, notary-server "
        "accepts the tokens trustyard issues (its realm is trustyard's /auth/token), so each client command "
        "logs in and fetches tokens the same way on both; without auth (trustyard with "
        "`insecure_anonymous_push`, notary-server without an `auth` section) the figures are the trust "
        "service alone. In-server times are the medians over the whole run of what each server's own "
        "request log records per request (trustyard's access log `ms`, notary-server's "
        "`http.response.duration`). Server CPU is user+system time of the server processes over the first "
        "publish (in 10 ms clock ticks), with token auth including the token server's (trustyard's "
        "/auth/token checks the password on every token request, which is most of it). notary-server keeps "
        "everything in memory (its `memory` store), trustyard commits every update to SQLite. The aim from "
        "the issue: at least as fast as notary-server.",
        "",
        "### Machine",
        "",
    ]
    out += [f"- {key}: {value}" for key, value in report.machine.items()]
    if report.errors:
        out += ["", "### Failures", ""] + [f"- `{e.splitlines()[0][:300]}`" for e in report.errors]
    keys = [m.key for m in metrics_for(report.sizes) if "_rss_" not in m.key and "_srv_" not in m.key]
    out += ["", "### Every trial", "", "| server | trial | " + " | ".join(keys) + " |"]
    out += ["|---|---:|" + "---:|" * len(keys)]
    for name in SERVERS:
        for i, values in enumerate(report.trials.get(name, [])):
            cells = [_fmt(values.get(k), 1) if k in values else "–" for k in keys]
            out.append(f"| {name} | {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def rich_table(report: Report) -> Table:
    table = Table(title="trust: real notary client")
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in report.rows():
        table.add_row(*(cell.replace("**", "") for cell in row))
    return table


def _version(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else "unavailable"


def machine_info(command: Sequence[str]) -> dict[str, str]:
    """The registry benchmark's machine description, with the notary version instead of the registry tools."""
    info = registry_machine_info(command)
    for key in ("reference", "skopeo", "wrk"):
        info.pop(key, None)
    info["notary (client and server)"] = _version(["dpkg-query", "-W", "-f=${Package} ${Version}", "notary"])
    return info


# ----------------------------------------------------------------------------------------------------------
# The benchmark


@contextlib.contextmanager
def servers(workdir: Path, tls: Tls, command: Sequence[str]) -> Iterator[dict[tuple[str, str], TrustServer]]:
    """trustyard and notary-server side by side, with token auth (notary-server takes trustyard's tokens)
    and without: (server, mode) -> running server."""
    started: list[TrustServer] = []

    def start(server: TrustServer) -> TrustServer:
        server.ca = tls.ca
        server.start()
        started.append(server)
        return server

    try:
        ours = start(trustyard_server(workdir, tls, command, auth=True))
        yield {
            ("trustyard", "auth"): ours,
            ("notary-server", "auth"): start(notary_server(workdir, tls, f"{ours.url}/auth/token")),
            ("trustyard", "open"): start(trustyard_server(workdir, tls, command, auth=False)),
            ("notary-server", "open"): start(notary_server(workdir, tls, None)),
        }
    finally:
        for server in started:
            server.stop()


def run_benchmark(
    sizes: Sequence[int], runs: int, command: Sequence[str], log: Callable[[str], None], report_command: str
) -> Report:
    scratch = Path(tempfile.mkdtemp(prefix="trustyard-bench-trust-"))
    trials: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    values: dict[str, dict[str, float]] = {name: {} for name in SERVERS}
    errors: list[str] = []
    machine = machine_info(command)
    tls = make_tls(scratch / "tls")
    with servers(scratch, tls, command) as running:
        for run in range(runs):
            order = SERVERS if run % 2 == 0 else SERVERS[::-1]
            for name in order:
                figures: dict[str, float] = {}
                for mode in MODES:
                    for size in sizes:
                        where = scratch / f"{name}-{mode}-{run}-{size}"
                        where.mkdir()
                        gun = f"bench/run{run}-n{size}"
                        try:
                            tokens = running["trustyard", mode] if (name, mode) == ("notary-server", "auth") else None
                            figures |= trial(running[name, mode], tls.ca, where, gun, size, mode, tokens)
                        except (BenchmarkError, subprocess.TimeoutExpired) as e:
                            errors.append(f"{name} ({MODES[mode]}) run {run + 1}, {size} targets: {e}")
                trials[name].append(figures)
                log(f"{name} run {run + 1}: " + ", ".join(f"{k}={v:.1f}" for k, v in figures.items()))
        for name in SERVERS:
            keys = {k for figures in trials[name] for k in figures}
            values[name] = {k: statistics.median(f[k] for f in trials[name] if k in f) for k in keys}
            for mode in MODES:
                values[name][f"{mode}_rss_mib"] = running[name, mode].peak_rss() / 2**20
    for name in SERVERS:  # the logs are complete once the servers have stopped
        for mode in MODES:
            times = server_times(running[name, mode].log_path)
            for kind in ("update", "metadata"):
                if times.get(kind):
                    values[name][f"{mode}_srv_{kind}"] = statistics.median(times[kind])
    machine["load average at the end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    if not errors:  # keep the logs of a failed run for a look
        shutil.rmtree(scratch, ignore_errors=True)
    date = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    return Report(report_command, date, tuple(sizes), runs, values, trials, machine, errors)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="trials per size and server (median)")
    parser.add_argument("--sizes", default="1,100", help="comma-separated target counts")
    parser.add_argument("--trustyard", default=None, help="command that runs trustyard (default: the installed one)")
    parser.add_argument("--out", type=Path, help="Markdown file whose trust section is (re)written")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    command = args.trustyard.split() if args.trustyard else default_trustyard_command()
    console = Console(stderr=True)
    shown = ["python benchmarks/trust.py", f"--runs {args.runs}", f"--sizes {args.sizes}"]
    if args.out is not None:
        shown.append(f"--out {args.out}")
    report = run_benchmark(sizes, args.runs, command, console.log, " ".join(shown))
    console.print(rich_table(report))
    for error in report.errors:
        console.print(f"[red]{error}[/red]")
    if args.out is not None:
        write_section(args.out, render_markdown(report), SECTION)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
