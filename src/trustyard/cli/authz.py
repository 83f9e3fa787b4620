"""``trustyard authz``: run the Docker authorization plugin, check a policy, replay a recorded request.

``serve`` listens on a unix socket (or the one systemd passes), writes the discovery spec file dockerd looks
for and removes it on exit; every decision is a JSON line on stderr (journald) and, with ``--audit-log``, in a
file. ``check`` validates a policy file without starting anything; ``test`` decides one recorded
``AuthZReq`` message offline, for policy authors and CI (exit 3 when it would be refused).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from trustyard.authz import AUDIT_LOGGER, Authorizer, Mode, Policy
from trustyard.authz.errors import AuthzError
from trustyard.authz.server import inherited_socket, listen_unix, serve, spec_file
from trustyard.cli.common import EXIT_FINDINGS, handle_errors

_POLICY = click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML policy file (see docs in trustyard.authz.policy). [default: the built-in CIS 5.x policy]",
)


@click.group()
def authz() -> None:
    """The Docker authorization plugin: refuse unsafe containers at the engine, fail closed."""


def _policy(path: Path | None) -> Policy:
    return Policy.load(path) if path is not None else Policy()


@authz.command("serve")
@_POLICY
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("/run/trustyard/authz.sock"),
    show_default=True,
    help="Unix socket to listen on (ignored when systemd passes a socket).",
)
@click.option("--name", default="trustyard", show_default=True, help="Plugin name, as in --authorization-plugin.")
@click.option(
    "--plugin-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/etc/docker/plugins"),
    show_default=True,
    help="Where dockerd discovers plugin spec files; NAME.spec is written there.",
)
@click.option(
    "--audit-log", type=click.Path(dir_okay=False, path_type=Path), help="Also append decisions here (JSON lines)."
)
@handle_errors
def serve_command(
    policy_file: Path | None, socket_path: Path, name: str, plugin_dir: Path, audit_log: Path | None
) -> None:
    """Answer dockerd's authorization requests until SIGTERM."""
    policy = _policy(policy_file)
    audit = logging.getLogger(AUDIT_LOGGER)
    audit.setLevel(logging.INFO)
    audit.propagate = False
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if audit_log is not None:
        try:
            handlers.append(logging.FileHandler(audit_log, encoding="utf-8"))
        except OSError as e:
            raise AuthzError(f"cannot open audit log {audit_log}: {e.strerror or e}") from e
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(message)s"))
        audit.addHandler(handler)
    sock = inherited_socket()
    if sock is None:
        sock = listen_unix(socket_path)
        listening = socket_path
    else:
        listening = Path(sock.getsockname())
    try:
        with spec_file(plugin_dir, name, listening) as spec:
            click.echo(
                f"trustyard authz: plugin {name} on {listening} (spec {spec}), policy: {policy.source}", err=True
            )
            serve(Authorizer(policy, audit=audit), sock)
    finally:
        sock.close()
        if listening == socket_path and socket_path.is_socket():
            socket_path.unlink()


@authz.command("check")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@handle_errors
def check_command(policy_file: Path) -> None:
    """Validate a policy file and summarise what it enforces."""
    policy = Policy.load(policy_file)
    for mode in Mode:
        rules = [rule for rule, m in policy.modes.items() if m is mode]
        click.echo(f"{mode.value:>5}: {', '.join(rules) or '-'}")
    for group, members in sorted(policy.groups.items()):
        click.echo(f"group {group}: {', '.join(sorted(members)) or '-'}")
    if policy.groups_from_ou:
        click.echo("groups also from the client certificate's OU")
    for exception in policy.exceptions:
        who = [*sorted(exception.users), *(f"group {g}" for g in sorted(exception.groups))]
        click.echo(f"exception: {', '.join(who)} may break {', '.join(sorted(exception.rules))}")
    for deny in policy.denies:
        methods = ",".join(sorted(deny.methods)) or "*"
        click.echo(f"deny: {methods} {deny.path}" + (f" ({deny.message})" if deny.message else ""))
    click.echo(f"policy {policy_file} is valid")


@authz.command("test")
@_POLICY
@click.argument("request_file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def test_command(policy_file: Path | None, request_file: Path) -> None:
    """Decide a recorded AuthZReq message (the JSON dockerd sends) offline; exit 3 if it would be refused."""
    try:
        message = request_file.read_bytes()
    except OSError as e:
        raise AuthzError(f"cannot read {request_file}: {e.strerror or e}") from e
    quiet = logging.getLogger(f"{AUDIT_LOGGER}.offline")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    decision = Authorizer(_policy(policy_file), audit=quiet).request(message)
    result = {**decision.to_wire(), "Rules": list(decision.rules), "Warnings": list(decision.warnings)}
    click.echo(json.dumps(result, indent=2))
    if not decision.allow:
        sys.exit(EXIT_FINDINGS)
