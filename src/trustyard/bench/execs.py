"""Who ran ``docker exec`` with ``--privileged`` or ``--user root`` (CIS 5.23, 5.24), from two witnesses.

An exec's options are not part of any container's configuration, so they are read where they were recorded:

- the host's **audit log** (``ROOT/var/log/audit/audit.log`` and its rotations), when auditd watches the docker
  client with the key ``docker`` (``-w /usr/bin/docker -p x -k docker``, as the benchmark's audit rules and
  ``ausearch -k docker`` assume). Each event's SYSCALL record carries the key and the caller's login uid; its
  EXECVE record carries the command line (arguments auditd hex-encoded when they hold spaces or quotes, and
  long ones split into ``aN[i]`` pieces). A ``docker exec``/``podman exec`` command line is parsed for its
  options and container.
- the **engine**: ``/events`` (``type=container``, ``exec_create``) lists recent execs with their container and
  command (the engine keeps only its last few hundred events), and ``/exec/ID/json`` gives ``Privileged`` and
  ``User`` for the execs it still knows — the running ones; a finished exec's options are gone.

An engine exec that the audit log also recorded (same container, same command) is decided by the log; one
neither witness describes has unknown options, which the checks report as INFO, never as PASS.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors

from trustyard.bench.base import InputUnavailable
from trustyard.bench.engine import ask

AUDIT_LOG: Final = "/var/log/audit/audit.log"
AUDIT_KEY: Final = "docker"
_RECORD: Final = re.compile(r"^type=(?P<type>\w+) msg=audit\((?P<id>[\d.]+:\d+)\): ?(?P<body>.*)$")
_FIELD: Final = re.compile(r'(?P<key>[\w\[\]]+)=(?P<value>"[^"]*"|\S+)')
_CLIENTS: Final = frozenset({"docker", "podman"})
_VALUE_FLAGS: Final = frozenset({"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--detach-keys"})
_GLOBAL_VALUE_FLAGS: Final = frozenset(
    {"-H", "--host", "-c", "--context", "--config", "-l", "--log-level", "--tlscacert", "--tlscert", "--tlskey",
     "--url", "--connection", "--identity", "--root", "--runroot", "--storage-driver", "--cgroup-manager"}
)  # fmt: skip
_ROOT_USERS: Final = frozenset({"root", "0"})


@dataclass(frozen=True, slots=True)
class ExecRecord:
    """One exec: its container, command, options (``None``: not known) and which witness saw it."""

    container: str
    command: str
    privileged: bool | None
    user: str | None
    source: str

    @property
    def as_root(self) -> bool | None:
        """Whether ``--user`` named root (``root``, ``0``, ``root:GROUP``, ``0:GID``); ``None`` when unknown."""
        if self.user is None:
            return None
        return self.user.split(":", 1)[0] in _ROOT_USERS

    def describe(self) -> str:
        """The result item: ``web: sleep 60 (audit log, auid 1000)``."""
        return f"{self.container}: {self.command} ({self.source})"


@dataclass(frozen=True, slots=True)
class ExecFacts:
    """Every exec found and which witnesses were read."""

    records: tuple[ExecRecord, ...]
    sources: tuple[str, ...]


def parse_exec_argv(argv: Sequence[str]) -> tuple[str, str, bool, str] | None:
    """``(container, command, privileged, user)`` of a ``docker [container] exec`` command line, else ``None``.

    ``user`` is ``""`` when no ``--user`` was given (the container's own user applies).
    """
    if not argv or Path(argv[0]).name not in _CLIENTS or "exec" not in argv:
        return None
    at = list(argv).index("exec")
    before = list(argv[1:at])
    while before:  # global options (docker -H HOST exec ...), then at most `container`
        word = before.pop(0)
        if word in _GLOBAL_VALUE_FLAGS:
            before = before[1:]
        elif not word.startswith("-") and (word != "container" or before):
            return None  # `exec` is an argument of another command (docker run IMAGE exec ...)
    privileged, user = False, ""
    rest = list(argv[at + 1 :])
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        name, eq, value = flag.partition("=")
        if name == "--privileged":
            privileged = value.lower() not in ("false", "0") if eq else True
        elif name in _VALUE_FLAGS:
            value = value if eq else (rest.pop(0) if rest else "")
            user = value if name in ("-u", "--user") else user
        elif not name.startswith("--") and len(name) > 2:  # combined short flags: -it, -du root, -uroot, -eA=1
            letters = flag[1:]
            for i, letter in enumerate(letters):
                if f"-{letter}" in _VALUE_FLAGS:  # the rest of the word, or the next word, is its value
                    value = letters[i + 1 :] or (rest.pop(0) if rest else "")
                    user = value if letter == "u" else user
                    break
    if not rest:
        return None
    return rest[0], " ".join(rest[1:]), privileged, user


def _decode(value: str) -> str:
    """An audit field value: ``"quoted"`` as is, else hex (auditd's encoding of awkward strings) when it is."""
    if value.startswith('"') and value.endswith('"'):
        return value[1:-1]
    if value != "(null)" and len(value) % 2 == 0 and re.fullmatch(r"[0-9A-F]+", value):
        return bytes.fromhex(value).decode(errors="replace")
    return value


def _audit_events(lines: Iterator[str]) -> Iterator[dict[str, dict[str, str]]]:
    """Records grouped by event (``msg=audit(TIME:SERIAL)``), each record's fields by its type."""
    events: dict[str, dict[str, dict[str, str]]] = {}
    for line in lines:
        match = _RECORD.match(line.strip())
        if match is None:
            continue
        fields = {m["key"]: m["value"] for m in _FIELD.finditer(match["body"])}
        events.setdefault(match["id"], {})[match["type"]] = fields
    yield from events.values()


def _execve_argv(fields: dict[str, str]) -> list[str]:
    argc = int(fields.get("argc", "0")) if fields.get("argc", "0").isdigit() else 0
    argv = []
    for i in range(argc):
        if f"a{i}" in fields:
            argv.append(_decode(fields[f"a{i}"]))
        else:  # a long argument, split as aN[0], aN[1] ...
            pieces = sorted(
                (int(k[len(f"a{i}[") : -1]), v) for k, v in fields.items() if k.startswith(f"a{i}[") and k.endswith("]")
            )
            argv.append("".join(_decode(v) for _, v in pieces))
    return argv


def audit_execs(root: Path) -> list[ExecRecord] | None:
    """The execs in the host's audit log under the key ``docker``; ``None`` when there is no log."""
    log = root / AUDIT_LOG.lstrip("/")
    files = [*sorted(log.parent.glob(log.name + ".*")), log]
    present = [f for f in files if f.is_file()]
    if not present:
        return None
    lines = (line for f in present for line in f.read_text(errors="replace").splitlines())
    found = []
    for event in _audit_events(lines):
        syscall, execve = event.get("SYSCALL"), event.get("EXECVE")
        if syscall is None or execve is None:
            continue
        if AUDIT_KEY not in _decode(syscall.get("key", "(null)")).split("\x01"):
            continue
        parsed = parse_exec_argv(_execve_argv(execve))
        if parsed is not None:
            container, command, privileged, user = parsed
            who = f"audit log, auid {syscall.get('auid', '?')}"
            found.append(ExecRecord(container, command, privileged, user, who))
    return found


def engine_execs(client: docker.DockerClient) -> list[ExecRecord]:
    """Recent execs the engine reports: options from ``/exec/ID/json`` while it knows them, else unknown."""
    api = client.api
    known: dict[str, ExecRecord] = {}
    for summary in api.containers(all=True):
        data: dict[str, Any] = api.inspect_container(summary["Id"])
        name = str(data.get("Name", "")).lstrip("/") or summary["Id"][:12]
        for exec_id in data.get("ExecIDs") or []:
            try:
                info: dict[str, Any] = api.exec_inspect(exec_id)
            except docker.errors.NotFound:
                continue  # finished between the two calls
            process = info.get("ProcessConfig") or {}
            command = " ".join([str(process.get("entrypoint", "")), *map(str, process.get("arguments") or [])])
            privileged = bool(info.get("Privileged") or process.get("privileged"))
            known[exec_id] = ExecRecord(name, command.strip(), privileged, str(process.get("user") or ""), "engine")
    found = list(known.values())
    filters = {"type": ["container"], "event": ["exec_create"]}
    for event in api.events(since=0, until=int(time.time()) + 1, filters=filters, decode=True):
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if attributes.get("execID") in known:
            continue
        command = str(event.get("Action", "")).partition(":")[2].strip()
        name = str(attributes.get("name") or str(event.get("id", ""))[:12])
        found.append(ExecRecord(name, command, None, None, "engine event, options no longer known"))
    return found


def gather_execs(root: Path, host: str) -> ExecFacts:
    """Both witnesses, merged; ``InputUnavailable`` when neither can be read."""
    audit = audit_execs(root)
    reasons = [] if audit is not None else [f"no audit log at {root / AUDIT_LOG.lstrip('/')}"]

    def from_engine(client: docker.DockerClient) -> tuple[list[ExecRecord], dict[str, str]]:
        ids = {str(c.get("Names", ["/"])[0]).lstrip("/"): str(c["Id"]) for c in client.api.containers(all=True)}
        return engine_execs(client), ids

    try:
        engine, ids = ask(host, from_engine)
    except InputUnavailable as e:
        if audit is None:
            raise InputUnavailable(f"{reasons[0]}; {e.message}") from e
        return ExecFacts(tuple(audit), ("audit log",))
    sources = ("audit log", "engine") if audit is not None else ("engine",)
    return ExecFacts(tuple(merge(audit or [], engine, ids)), sources)


def merge(audit: Sequence[ExecRecord], engine: Sequence[ExecRecord], ids: dict[str, str]) -> list[ExecRecord]:
    """Audit and engine records; an engine exec that the audit log recorded, with the same options or with
    options the engine no longer knows, is the log's record and not repeated.

    ``ids``: container name -> ID, so an audit record that named the container by an ID prefix matches.
    """

    def same(a: ExecRecord, e: ExecRecord) -> bool:
        named = a.container == e.container or ids.get(e.container, "").startswith(a.container)
        return named and a.command == e.command

    def told(a: ExecRecord, e: ExecRecord) -> bool:  # the log tells all the engine does about this exec
        return same(a, e) and (e.privileged is None or (e.privileged, e.as_root) == (a.privileged, a.as_root))

    return [*audit, *(e for e in engine if not any(told(a, e) for a in audit))]


__all__ = [
    "AUDIT_LOG",
    "ExecFacts",
    "ExecRecord",
    "audit_execs",
    "engine_execs",
    "gather_execs",
    "merge",
    "parse_exec_argv",
]
