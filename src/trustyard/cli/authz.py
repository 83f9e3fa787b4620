"""``trustyard authz``: run the Docker authorization plugin, check a policy, replay a recorded request.

``serve`` listens on a unix socket (or the one systemd passes), writes the discovery spec file dockerd looks
for and removes it on exit; every decision is a JSON line on stderr (journald) and, with ``--audit-log``, in a
file. ``check`` validates a policy file without starting anything; ``test`` decides one recorded
``AuthZReq`` message offline, for policy authors and CI (exit 3 when it would be refused).
"""

from __future__ import annotations

import dataclasses
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


_REGISTRY_URL = click.option(
    "--registry-url",
    envvar="TRUSTYARD_AUTHZ_REGISTRY_URL",
    help="trustyard's URL for the image rules (overrides the policy's [trustyard] url).",
)
_CREDENTIALS = click.option(
    "--credentials-file",
    envvar="TRUSTYARD_AUTHZ_CREDENTIALS_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File with one line NAME:SECRET (a robot account with pull access) for trustyard's API "
    "(overrides the policy's [trustyard] credentials_file).",
)


def _policy(path: Path | None, registry_url: str | None = None, credentials: Path | None = None) -> Policy:
    """The policy, with trustyard's URL and credentials from the command line or environment when given."""
    policy = Policy.load(path) if path is not None else Policy()
    link = policy.trustyard
    if registry_url is not None:
        if not registry_url.startswith(("http://", "https://")):
            raise AuthzError(f"--registry-url {registry_url!r}: expected http(s)://HOST[:PORT]")
        link = dataclasses.replace(link, url=registry_url.rstrip("/"))
    if credentials is not None:
        link = dataclasses.replace(link, credentials_file=credentials)
    if policy.images.needs_trustyard and not link.url:
        raise AuthzError(
            "the policy's image rules ask trustyard: set [trustyard] url, --registry-url "
            "or TRUSTYARD_AUTHZ_REGISTRY_URL"
        )
    return dataclasses.replace(policy, trustyard=link)


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
@click.option(
    "--record",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also save every AuthZReq message to this folder (replay with `authz test`; bodies may hold secrets).",
)
@_REGISTRY_URL
@_CREDENTIALS
@handle_errors
def serve_command(
    policy_file: Path | None,
    socket_path: Path,
    name: str,
    plugin_dir: Path,
    audit_log: Path | None,
    record: Path | None,
    registry_url: str | None,
    credentials_file: Path | None,
) -> None:
    """Answer dockerd's authorization requests until SIGTERM."""
    if record is not None:
        try:
            record.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise AuthzError(f"cannot create {record}: {e.strerror or e}") from e
    policy = _policy(policy_file, registry_url, credentials_file)
    authorizer = Authorizer(policy, audit=logging.getLogger(AUDIT_LOGGER))  # reads the credentials: fail early
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
            serve(authorizer, sock, record=record)
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
    images = policy.images
    if images.allowed_registries is not None:
        click.echo(f"images from: {', '.join(sorted(images.allowed_registries)) or '(no registry)'}")
    if images.require_signed:
        click.echo("images must be signed in trustyard")
    if images.max_severity is not None:
        click.echo(f"images with findings of {images.max_severity} or worse are refused; unscanned: {images.unscanned}")
    if images.require_pull_allowed:
        click.echo("images the registry's pull gates refuse are refused")
    if images.needs_trustyard:
        choices = ", ".join(f"{rule} {choice}" for rule, choice in sorted(images.on_unavailable.items()))
        click.echo(f"trustyard: {policy.trustyard.url or '(from --registry-url)'}; unavailable: {choices}")
    click.echo(f"policy {policy_file} is valid")


@authz.command("test")
@_POLICY
@_REGISTRY_URL
@_CREDENTIALS
@click.argument("request_file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def test_command(
    policy_file: Path | None, registry_url: str | None, credentials_file: Path | None, request_file: Path
) -> None:
    """Decide a recorded AuthZReq message (the JSON dockerd sends) offline; exit 3 if it would be refused."""
    try:
        message = request_file.read_bytes()
    except OSError as e:
        raise AuthzError(f"cannot read {request_file}: {e.strerror or e}") from e
    quiet = logging.getLogger(f"{AUDIT_LOGGER}.offline")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    decision = Authorizer(_policy(policy_file, registry_url, credentials_file), audit=quiet).request(message)
    result = {**decision.to_wire(), "Rules": list(decision.rules), "Warnings": list(decision.warnings)}
    click.echo(json.dumps(result, indent=2))
    if not decision.allow:
        sys.exit(EXIT_FINDINGS)
