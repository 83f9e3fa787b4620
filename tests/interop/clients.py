"""Real container clients, each isolated in a per-test (or per-session) scratch directory.

- `Skopeo`: every call uses a fresh policy, an empty `--registries.d`, its own `--tmpdir`, registries.conf and
  auth file, `--tls-verify=false`, and a private blob-info cache. containers/image keeps that cache for root
  at the fixed path /var/lib/containers/cache (it honours no flag or variable for it) and substitutes
  previously seen compressed variants of a layer (notes/real-peers.md §3), which breaks digest expectations.
  So skopeo runs in its own mount namespace (`unshare --mount`) with the test's cache directory bind-mounted
  over that path: the host's cache is never read or written.
- `Podman`: containers.conf (runc, ulimits that this machine allows), vfs storage under the test's directory,
  registries.conf marking the test registries insecure, and the same private blob-info cache as skopeo
  (podman 4.3 uses the system path too). Mounts it makes stay in its namespace, never on the host.
- dockerd is `fixtures.dockerd.Dockerd` (Debian's dockerd 20.10 with vfs, no bridge, no iptables,
  `insecure-registries: ["127.0.0.0/8"]`, the docker CLI with its own DOCKER_CONFIG), shared with the
  authorization plugin's tests.

Not here: which registry they talk to (servers.py) or what the tests check.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SYSTEM_CACHE_DIR = "/var/lib/containers/cache"
# Inside a private mount namespace: cover the system blob-info cache with the test's own directory.
_PRIVATE_CACHE = 'mkdir -p "$1" && mount --bind "$0" "$1" && shift && exec "$@"'
INSECURE_POLICY = {"default": [{"type": "insecureAcceptAnything"}]}


def with_private_cache(cache_dir: Path, argv: Sequence[str]) -> list[str]:
    """`argv` run in its own mount namespace, with `cache_dir` bind-mounted over the system blob-info cache."""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        _PRIVATE_CACHE,
        str(cache_dir),
        SYSTEM_CACHE_DIR,
        *argv,
    ]


class ClientError(AssertionError):
    """A client command failed; the message carries the command and its output."""


def _check(proc: subprocess.CompletedProcess[str], argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    if proc.returncode != 0:
        raise ClientError(
            f"exit {proc.returncode}: {' '.join(argv)}\n--- stdout\n{proc.stdout[-4000:]}\n"
            f"--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def add_login(auth_file: Path, host: str, credentials: tuple[str, str]) -> None:
    """Record a login for `host` in an auth file, the format containers/image and the docker CLI share."""
    try:
        data = json.loads(auth_file.read_text())
    except FileNotFoundError:
        data = {}
    user, password = credentials
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    data.setdefault("auths", {})[host] = {"auth": token}
    auth_file.write_text(json.dumps(data, indent=1))


def registries_conf(insecure_hosts: Iterable[str]) -> str:
    """A registries.conf (v2) with no search registries and each host marked insecure (plain HTTP)."""
    entries = "".join(f'\n[[registry]]\nlocation = "{host}"\ninsecure = true\n' for host in insecure_hosts)
    return f"unqualified-search-registries = []\n{entries}"


class Skopeo:
    """skopeo with per-instance configuration and blob-info cache (see the module docstring)."""

    def __init__(self, workdir: Path, *, auth_file: Path | None = None) -> None:
        self.workdir = workdir
        self.auth_file = auth_file or workdir / "auth.json"
        self.cache_dir = workdir / "blob-info-cache"
        self.tmp_dir = workdir / "tmp"
        self.registries_d = workdir / "registries.d"
        for d in (self.cache_dir, self.tmp_dir, self.registries_d):
            d.mkdir(parents=True, exist_ok=True)
        self.policy = workdir / "policy.json"
        self.policy.write_text(json.dumps(INSECURE_POLICY))
        self.registries_conf = workdir / "registries.conf"
        self.registries_conf.write_text(registries_conf(()))
        self.env = {
            **os.environ,
            "CONTAINERS_REGISTRIES_CONF": str(self.registries_conf),
            "REGISTRY_AUTH_FILE": str(self.auth_file),
            "TMPDIR": str(self.tmp_dir),
        }

    def argv(self, *args: str) -> list[str]:
        """The full command line for `skopeo ARGS` in a private mount namespace."""
        return with_private_cache(
            self.cache_dir,
            [
                "skopeo",
                "--policy",
                str(self.policy),
                "--registries.d",
                str(self.registries_d),
                "--tmpdir",
                str(self.tmp_dir),
                *args,
            ],
        )

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `skopeo ARGS`; raises `ClientError` on a non-zero exit when `check`."""
        argv = self.argv(*args)
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        return _check(proc, argv) if check else proc

    def start_copy(self, src: str, dst: str, *, log: Path, debug: bool = False) -> BackgroundCopy:
        """Start `skopeo copy SRC DST` in the background, its output into the file `log`."""
        with log.open("wb") as output:
            proc = subprocess.Popen(
                self.argv(*self.copy_args(src, dst, debug=debug)),
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return BackgroundCopy(src=src, dst=dst, log=log, proc=proc)

    @staticmethod
    def copy_args(src: str, dst: str, *extra: str, debug: bool = False) -> list[str]:
        """Arguments of `skopeo copy` between any transports, TLS verification off, digests preserved."""
        return [
            *(["--debug"] if debug else []),
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--preserve-digests",
            "--retry-times=0",
            *extra,
            src,
            dst,
        ]

    def copy(self, src: str, dst: str, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`skopeo copy SRC DST` (fails on error)."""
        return self.run(*self.copy_args(src, dst, *extra), timeout=timeout)

    def inspect_raw(self, ref: str) -> bytes:
        """`skopeo inspect --raw` of a docker:// reference: the manifest bytes exactly as served."""
        argv = self.argv("inspect", "--raw", "--tls-verify=false", ref)
        proc = subprocess.run(argv, env=self.env, capture_output=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise ClientError(f"exit {proc.returncode}: {' '.join(argv)}\n{proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def list_tags(self, ref: str) -> list[str]:
        """`skopeo list-tags` of a docker:// repository."""
        out = self.run("list-tags", "--tls-verify=false", ref).stdout
        tags: list[str] = json.loads(out)["Tags"]
        return tags


@dataclass
class BackgroundCopy:
    """A `skopeo copy` running in the background."""

    src: str
    dst: str
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def returncode(self) -> int | None:
        """Exit code, or None while it runs."""
        return self.proc.poll()

    def wait(self, timeout: float = 120) -> int:
        """Wait for the exit code."""
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        """Everything it printed so far."""
        return self.log.read_text(errors="replace")


def wait_all(copies: Sequence[BackgroundCopy], timeout: float = 120) -> list[int]:
    """Wait for every copy (shared deadline); kills the stragglers and fails if the deadline passes."""
    deadline = time.monotonic() + timeout
    codes = []
    for copy in copies:
        try:
            codes.append(copy.proc.wait(timeout=max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            for c in copies:
                c.proc.kill()
            raise ClientError(f"skopeo copy {copy.src} -> {copy.dst} still running after {timeout}s") from None
    return codes


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first."""
    prefix = str(root.resolve())
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def remove_tree(root: Path) -> None:
    """Unmount whatever a container engine left mounted under `root`, then delete it."""
    for point in _mounts_under(root):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


class Podman:
    """Rootful podman (and buildah, sharing its storage) with its own configuration and vfs storage."""

    def __init__(self, workdir: Path, *, insecure_hosts: Iterable[str], auth_file: Path | None = None) -> None:
        self.workdir = workdir
        # runroot and tmp_dir hold sockets (conmon attach, libpod): keep their paths short.
        self.run_dir = Path(tempfile.mkdtemp(prefix="ty-podman-", dir="/tmp"))
        conf = workdir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        self.storage_root = workdir / "storage"
        self.cache_dir = workdir / "blob-info-cache"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        (conf / "containers.conf").write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'events_logger = "none"\n'
            f'tmp_dir = "{self.run_dir}/libpod"\n'
        )
        (conf / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\nrunroot = "{self.run_dir}/storage"\ngraphroot = "{self.storage_root}"\n'
        )
        (conf / "registries.conf").write_text(registries_conf(insecure_hosts))
        if auth_file is None:
            auth_file = conf / "auth.json"
            auth_file.write_text("{}")  # podman insists that REGISTRY_AUTH_FILE exists
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(conf / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(conf / "registries.conf"),
            "REGISTRY_AUTH_FILE": str(auth_file),
            "TMPDIR": str(workdir),
        }

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGS` (private blob-info cache); raises `ClientError` on a non-zero exit when `check`."""
        return self._tool("podman", args, check=check, timeout=timeout)

    def buildah(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run `buildah ARGS` on the same storage and configuration as podman."""
        return self._tool("buildah", args, check=check, timeout=timeout)

    def _tool(self, name: str, args: Sequence[str], *, check: bool, timeout: float) -> subprocess.CompletedProcess[str]:
        argv = with_private_cache(self.cache_dir, [name, *args])
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        return _check(proc, argv) if check else proc

    def close(self) -> None:
        """Remove containers, storage and run directories."""
        self.run("rm", "--all", "--force", check=False, timeout=60)
        remove_tree(self.storage_root)
        remove_tree(self.run_dir)
