"""``trustyard trust``: sign images, inspect and verify their signatures, manage signing keys and signers.

Docker Content Trust's workflow against any Notary v1 trust service (trustyard's own by default, on the
registry's host): ``sign`` publishes a tag's manifest digest, ``inspect`` and ``verify`` check it client-side
against the root pinned on first use, ``key`` and ``signer`` manage who may sign. Each command parses its
options, calls ``TrustClient`` and maps the trust family to exit codes; the rules live in ``trust/``.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn, ParamSpec, TypeVar

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trustyard.cli.common import err_console
from trustyard.errors import TrustyardError
from trustyard.oci.reference import InvalidReferenceError, validate_name, validate_tag
from trustyard.trust.client import KeyChoice, NoTrustDataError, TrustClient, default_trust_dir, lookup
from trustyard.trust.client_chain import ChainError, TrustClientError
from trustyard.trust.client_http import HttpSession, manifest_descriptor
from trustyard.trust.client_inspect import inspect_report
from trustyard.trust.keyfiles import KeyStore
from trustyard.trust.signers import KeyFileError, notary_key

__all__ = ["trust"]

P = ParamSpec("P")
R = TypeVar("R")

PASSPHRASE_ENV: Final = "TRUSTYARD_TRUST_PASSPHRASE"  # noqa: S105  # the variable's name, not a secret
PIN_ENV: Final = "TRUSTYARD_PKCS11_PIN"
EXIT_NOT_VERIFIED: Final = 1
EXIT_ERROR: Final = 2


class _UsageError(TrustyardError):
    """An image reference or option the command cannot use."""


class _NotVerifiedError(TrustClientError):
    """``verify``: the tag is not signed, or the registry serves another digest than the signed one."""


_NOT_VERIFIED: Final = (ChainError, NoTrustDataError, _NotVerifiedError)


# ---- secrets --------------------------------------------------------------------------------------------------
class PromptSecrets:
    """Passphrase from TRUSTYARD_TRUST_PASSPHRASE and PIN from TRUSTYARD_PKCS11_PIN, else asked on the terminal
    (once per run)."""

    def __init__(self) -> None:
        self._passphrase: str | None = os.environ.get(PASSPHRASE_ENV)
        self._pins: dict[str, str] = {}

    def passphrase(self, what: str, *, confirm: bool) -> str:
        """The one passphrase of this run's key files."""
        if self._passphrase is None:
            self._passphrase = _ask(f"Passphrase for {what}", PASSPHRASE_ENV, confirm=confirm)
        return self._passphrase

    def pin(self, token: str) -> str:
        """The user PIN of ``token``."""
        if token not in self._pins:
            self._pins[token] = os.environ.get(PIN_ENV) or _ask(f"PIN of PKCS#11 token {token!r}", PIN_ENV)
        return self._pins[token]


def _ask(prompt: str, env: str, *, confirm: bool = False) -> str:
    if not sys.stdin.isatty():
        raise KeyFileError(f"{prompt.lower()} is needed: set {env} (no terminal to ask on)")
    answer: str = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True)
    return answer


# ---- options and the context they build ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ImageRef:
    """``HOST[:PORT]/REPOSITORY[:TAG]``: the GUN is ``HOST[:PORT]/REPOSITORY``, as Docker names trust data."""

    host: str
    repository: str
    tag: str | None

    @property
    def gun(self) -> str:
        """The Notary GUN of the repository."""
        return f"{self.host}/{self.repository}"

    @classmethod
    def parse(cls, text: str, *, need_tag: bool) -> ImageRef:
        """Parse and validate; a reference without a registry host is refused (trust data lives per registry)."""
        if "@" in text:
            raise _UsageError(f"{text}: name a tag, not a digest (trust signs tags)")
        host, sep, rest = text.partition("/")
        if not sep or not ("." in host or ":" in host or host == "localhost"):
            raise _UsageError(f"{text}: name the registry too, e.g. registry.example:5000/{text}")
        name, tag = rest, None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            name, tag = rest.rsplit(":", 1)
        try:
            validate_name(name)
            if tag is not None:
                validate_tag(tag)
        except InvalidReferenceError as e:
            raise _UsageError(f"{text}: {e.message}") from e
        if need_tag and tag is None:
            raise _UsageError(f"{text}: name a tag (IMAGE:TAG)")
        return cls(host, name, tag)

    @property
    def tagged(self) -> str:
        """The tag of a reference parsed with ``need_tag``."""
        if self.tag is None:
            raise _UsageError(f"{self.gun}: name a tag (IMAGE:TAG)")
        return self.tag


@dataclass
class Remote:
    """Where the registry and trust server are and how to reach them."""

    trust_dir: Path
    server: str | None
    ca_file: Path | None
    username: str | None
    password_stdin: bool
    insecure_http: bool

    def _verify(self) -> ssl.SSLContext | bool:
        if self.ca_file is None:
            return True
        try:
            return ssl.create_default_context(cafile=str(self.ca_file))
        except (OSError, ssl.SSLError) as e:
            raise _UsageError(f"cannot read the CA file {self.ca_file}: {e}") from e

    def _credentials(self) -> tuple[str, str] | None:
        if self.username is None:
            return None
        if self.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = os.environ.get("TRUSTYARD_PASSWORD") or _ask(
                f"Password of {self.username}", "TRUSTYARD_PASSWORD"
            )
        return self.username, password

    @contextmanager
    def open(self, image: ImageRef) -> Iterator[tuple[TrustClient, HttpSession]]:
        """A trust client for ``image``'s trust server and a session to its registry."""
        scheme = "http" if self.insecure_http else "https"
        if self.insecure_http:
            err_console.print("[yellow]warning:[/] --insecure-http: registry and trust data travel unencrypted")
        registry_url = f"{scheme}://{image.host}"
        verify, credentials = self._verify(), self._credentials()
        with HttpSession(registry_url, credentials=credentials, verify=verify) as registry:
            server = (self.server or "").rstrip("/")
            if server and server != registry_url:
                trust_session = HttpSession(server, credentials=credentials, verify=verify)
            else:
                trust_session = registry
            try:
                keys = KeyStore(self.trust_dir, PromptSecrets())
                yield TrustClient(trust_dir=self.trust_dir, session=trust_session, keys=keys), registry
            finally:
                if trust_session is not registry:
                    trust_session.close()


def _trust_dir_option(f: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--trust-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=default_trust_dir,
        show_default="~/.trustyard/trust",
        envvar="TRUSTYARD_TRUST_DIR",
        help="Keys and pinned trust data. [env: TRUSTYARD_TRUST_DIR]",
    )(f)


def remote_options(f: Callable[..., R]) -> Callable[..., R]:
    """The options of commands that talk to a registry: they become one ``remote: Remote`` argument."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        names = ("trust_dir", "server", "ca_file", "username", "password_stdin", "insecure_http")
        remote = Remote(**{n: kwargs.pop(n) for n in names})
        return f(*args, remote=remote, **kwargs)

    options: list[Callable[[Any], Any]] = [
        _trust_dir_option,
        click.option(
            "--server",
            metavar="URL",
            envvar="TRUSTYARD_TRUST_SERVER",
            help="Trust server. [env: TRUSTYARD_TRUST_SERVER; default: the registry itself, https://HOST]",
        ),
        click.option(
            "--tlscacert",
            "ca_file",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar="TRUSTYARD_TRUST_CA",
            help="CA certificate(s) to trust for the registry and trust server. [env: TRUSTYARD_TRUST_CA]",
        ),
        click.option(
            "--username",
            "-u",
            envvar="TRUSTYARD_USERNAME",
            help="Registry user (password from TRUSTYARD_PASSWORD, --password-stdin or a prompt). "
            "[env: TRUSTYARD_USERNAME; default: anonymous]",
        ),
        click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin."),
        click.option(
            "--insecure-http", is_flag=True, help="Plain HTTP to registry and trust server (unsafe; tests only)."
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _key_choice(pkcs11_token: str | None, pkcs11_module: str | None) -> KeyChoice:
    if pkcs11_token is None:
        if pkcs11_module is not None:
            raise _UsageError("--pkcs11-module needs --pkcs11-token")
        return KeyChoice()
    options = [("token", pkcs11_token)] + ([("module", pkcs11_module)] if pkcs11_module else [])
    return KeyChoice("pkcs11", tuple(options))


def pkcs11_options(f: Callable[P, R]) -> Callable[P, R]:
    """``--pkcs11-token`` and ``--pkcs11-module``: generate new keys on a hardware token."""
    f = click.option(
        "--pkcs11-module",
        metavar="PATH",
        help="PKCS#11 module. [env: TRUSTYARD_PKCS11_MODULE; default: libykcs11, SoftHSM2 or OpenSC if installed]",
    )(f)
    return click.option(
        "--pkcs11-token",
        metavar="LABEL",
        help="Generate new keys on this PKCS#11 token (PIN from TRUSTYARD_PKCS11_PIN or a prompt).",
    )(f)


def handle_trust_errors(not_verified: int = 1, error: int = 1) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Map the trust family to a one-line message and an exit code, never a traceback."""

    def decorate(f: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(f)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return f(*args, **kwargs)
            except _NOT_VERIFIED as e:
                _fail(f"not verified: {e.message}", not_verified)
            except TrustyardError as e:
                _fail(e.diagnostics(), error)

        return wrapper

    return decorate


def _fail(message: str, code: int) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _done(message: str) -> None:
    err_console.print(escape(message), highlight=False, soft_wrap=True)


# ---- commands ---------------------------------------------------------------------------------------------------
@click.group()
def trust() -> None:
    """Sign images and verify signatures (Docker Content Trust / Notary v1).

    Trust data lives on the trust server (trustyard serves it on the registry's own host) under the GUN
    HOST[:PORT]/REPOSITORY, exactly where `docker trust` and `notary` look. Keys and the root pinned on first
    contact live in the trust dir (~/.trustyard/trust). Key passphrases come from TRUSTYARD_TRUST_PASSPHRASE
    or a prompt; PKCS#11 PINs from TRUSTYARD_PKCS11_PIN or a prompt.

    Exit codes: 0 success; 1 failure (verify: not signed, not matching, or trust data that does not verify);
    2 usage error (verify: also any other error, e.g. the registry cannot be reached).
    """


@trust.command()
@click.argument("image")
@click.option("--server-snapshot", is_flag=True, help="On first sign, let the trust server hold the snapshot key too.")
@pkcs11_options
@remote_options
@handle_trust_errors()
def sign(
    image: str, server_snapshot: bool, pkcs11_token: str | None, pkcs11_module: str | None, remote: Remote
) -> None:
    """Sign IMAGE:TAG: publish the digest and size of the manifest the tag points at now.

    The tag is signed into targets/releases and every targets/<signer> role you hold a key for, or into
    targets when the repository has no signers (as `docker trust sign` does). The first sign of a repository
    creates its root key (reused for later repositories), targets and snapshot keys; the trust server holds
    the timestamp key. --pkcs11-token puts new keys on a hardware token.
    """
    ref = ImageRef.parse(image, need_tag=True)
    tag = ref.tagged
    choice = _key_choice(pkcs11_token, pkcs11_module)
    with remote.open(ref) as (client, registry):
        manifest = manifest_descriptor(registry, ref.repository, tag)
        roles = client.sign(
            ref.gun,
            tag,
            manifest.size,
            manifest.digest.removeprefix("sha256:"),
            server_snapshot=server_snapshot,
            choice=choice,
        )
    _done(f"Signed {ref.gun}:{tag} = {manifest.digest} ({manifest.size} bytes) into {', '.join(roles)}")


@trust.command()
@click.argument("image")
@remote_options
@handle_trust_errors()
def revoke(image: str, remote: Remote) -> None:
    """Remove the signature of IMAGE:TAG from every role you can sign."""
    ref = ImageRef.parse(image, need_tag=True)
    tag = ref.tagged
    with remote.open(ref) as (client, _):
        roles = client.unsign(ref.gun, tag)
    _done(f"Revoked {ref.gun}:{tag} from {', '.join(roles)}")


@trust.command()
@click.argument("image")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="json", show_default=True)
@remote_options
@handle_trust_errors()
def inspect(image: str, fmt: str, remote: Remote) -> None:
    """Show the signed tags, signers and keys of IMAGE[:TAG] (JSON as `docker trust inspect` prints it)."""
    ref = ImageRef.parse(image, need_tag=False)
    with remote.open(ref) as (client, _):
        chain = client.update(ref.gun)
    name = image
    report = inspect_report(chain, name, ref.tag)
    if ref.tag is not None and not report["SignedTags"]:
        raise TrustClientError(f"no signatures for {image}")
    if fmt == "json":
        click.echo(json.dumps([report], indent=4))
        return
    console = Console()
    tags = Table(title=f"Signatures for {escape(name)}", title_justify="left")
    for column in ("SIGNED TAG", "DIGEST", "SIGNERS"):
        tags.add_column(column)
    for t in report["SignedTags"]:
        tags.add_row(escape(t["SignedTag"]), t["Digest"], escape(", ".join(t["Signers"])))
    console.print(tags)
    signers = Table(title="Signers and their keys", title_justify="left")
    signers.add_column("SIGNER")
    signers.add_column("KEYS")
    for s in report["Signers"]:
        signers.add_row(escape(s["Name"]), ", ".join(k["ID"][:12] for k in s["Keys"]))
    console.print(signers)
    admin = Table(title="Administrative keys", title_justify="left")
    admin.add_column("ROLE")
    admin.add_column("KEYS")
    for a in report["AdministrativeKeys"]:
        admin.add_row(a["Name"], ", ".join(k["ID"] for k in a["Keys"]))
    console.print(admin)


@trust.command()
@click.argument("image")
@remote_options
@handle_trust_errors(not_verified=EXIT_NOT_VERIFIED, error=EXIT_ERROR)
def verify(image: str, remote: Remote) -> None:
    """Exit 0 when IMAGE:TAG is signed and the registry's tag points at the signed digest.

    The signature is looked up as `docker pull` with content trust does (targets/releases, then targets),
    after verifying the whole chain against the pinned root. Exit 1: not signed, a different digest, or
    trust data that does not verify; exit 2: any other error.
    """
    ref = ImageRef.parse(image, need_tag=True)
    tag = ref.tagged
    with remote.open(ref) as (client, registry):
        chain = client.update(ref.gun)
        signed = lookup(chain, tag)
        if signed is None:
            raise _NotVerifiedError(f"{ref.gun}:{tag} is not signed (no valid trust data for {tag})")
        manifest = manifest_descriptor(registry, ref.repository, tag)
    want = f"sha256:{signed.sha256}"
    if want != manifest.digest or signed.meta.length != manifest.size:
        raise _NotVerifiedError(
            f"{ref.gun}:{tag} points at {manifest.digest} ({manifest.size} bytes) but the signed digest is "
            f"{want} ({signed.meta.length} bytes)"
        )
    click.echo(f"{ref.gun}:{tag} {manifest.digest} signed by {signed.role}")


# ---- keys -------------------------------------------------------------------------------------------------------
@trust.group()
def key() -> None:
    """Manage signing keys (encrypted files in the trust dir, or on a PKCS#11 token)."""


@key.command("generate")
@click.argument("name")
@click.option(
    "--dir",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Where to write NAME.pub. [default: the current folder]",
)
@pkcs11_options
@_trust_dir_option
@handle_trust_errors()
def key_generate(
    name: str, out_dir: Path, pkcs11_token: str | None, pkcs11_module: str | None, trust_dir: Path
) -> None:
    """Generate a signer key NAME (ECDSA P-256) and write its public key to NAME.pub for `signer add`."""
    if not name or "/" in name or name.startswith("."):
        raise _UsageError(f"invalid key name {name!r}")
    pub_path = out_dir / f"{name}.pub"
    if pub_path.exists():
        raise _UsageError(f"{pub_path} already exists")
    choice = _key_choice(pkcs11_token, pkcs11_module)
    store = KeyStore(trust_dir, PromptSecrets())
    record = store.generate(name=name, role="signer", backend=choice.backend, options=dict(choice.options))
    pem = record.public.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    out_dir.mkdir(parents=True, exist_ok=True)
    pub_path.write_bytes(pem)
    _done(f"Generated key {record.key_id} ({choice.backend}); public key in {pub_path}")


@key.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--name", help="The key's name. [default: the file name without extension]")
@click.option(
    "--role",
    type=click.Choice(["signer", "root"]),
    default="signer",
    show_default=True,
    help="signer: a delegation key; root: the root key for new repositories.",
)
@_trust_dir_option
@handle_trust_errors()
def key_import(file: Path, name: str | None, role: str, trust_dir: Path) -> None:
    """Import a PEM private key (ECDSA P-256; PKCS#8 or SEC1, encrypted or not), stored encrypted."""
    store = KeyStore(trust_dir, PromptSecrets())
    record = store.import_file(file, name=name or file.stem, role=role)
    _done(f"Imported key {record.key_id} as {record.role} {record.name!r}")


@key.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_trust_dir_option
@handle_trust_errors()
def key_list(fmt: str, trust_dir: Path) -> None:
    """List the keys in the trust dir (IDs as `notary key list` prints them)."""
    records = KeyStore(trust_dir, PromptSecrets()).records()
    rows = [
        {"ID": r.key_id, "Name": r.name, "Role": r.role, "GUN": r.gun, "Backend": r.backend, "Created": r.created}
        for r in records
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table()
    for column in ("ID", "NAME", "ROLE", "GUN", "BACKEND"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["ID"], escape(row["Name"]), row["Role"], escape(row["GUN"]), row["Backend"])
    Console().print(table)


@key.command("rotate")
@click.argument("role", type=click.Choice(["root", "targets", "snapshot", "timestamp"]))
@click.argument("image")
@click.option("--server-managed", is_flag=True, help="Let the trust server hold the new key (snapshot, timestamp).")
@pkcs11_options
@remote_options
@handle_trust_errors()
def key_rotate(
    role: str,
    image: str,
    server_managed: bool,
    pkcs11_token: str | None,
    pkcs11_module: str | None,
    remote: Remote,
) -> None:
    """Replace the ROLE key of IMAGE's repository and publish a new root.

    timestamp is always held by the server; snapshot may be (--server-managed); root and targets stay
    with you. Signing needs the current root key; a new root is signed by the old and the new root keys.
    """
    ref = ImageRef.parse(image, need_tag=False)
    choice = _key_choice(pkcs11_token, pkcs11_module)
    with remote.open(ref) as (client, _):
        new = client.rotate(ref.gun, role, server=server_managed or role == "timestamp", choice=choice)
    _done(f"Rotated the {role} key of {ref.gun}: new key {new.key_id}")


# ---- signers ----------------------------------------------------------------------------------------------------
@trust.group()
def signer() -> None:
    """Manage who may sign a repository (delegations targets/<NAME>, also added to targets/releases)."""


def _public_key(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _UsageError(f"cannot read {path}: {e.strerror}") from e
    try:
        if b"CERTIFICATE" in data:
            public: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            public = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise _UsageError(f"{path} is not a PEM public key or certificate") from e
    if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(public.curve, ec.SECP256R1):
        raise _UsageError(f"{path} is not an ECDSA P-256 key (the key type notary and Docker use)")
    return notary_key(public)


@signer.command("add")
@click.argument("name")
@click.argument("image")
@click.option(
    "--key",
    "key_files",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The signer's public key (PEM, e.g. NAME.pub from `trust key generate`); repeatable.",
)
@click.option("--server-snapshot", is_flag=True, help="If the repository is new, let the server hold snapshot.")
@remote_options
@handle_trust_errors()
def signer_add(name: str, image: str, key_files: tuple[Path, ...], server_snapshot: bool, remote: Remote) -> None:
    """Let NAME sign IMAGE's repository with the given keys (creates the repository's trust data if needed)."""
    if not name or "/" in name or name == "releases" or len(name) > 100:
        raise _UsageError(f"invalid signer name {name!r}")
    ref = ImageRef.parse(image, need_tag=False)
    keys = [_public_key(p) for p in key_files]
    with remote.open(ref) as (client, _):
        client.add_signer(ref.gun, name, keys, server_snapshot=server_snapshot)
    _done(f"Added signer {name} to {ref.gun} (keys {', '.join(k.key_id[:12] for k in keys)})")


@signer.command("remove")
@click.argument("name")
@click.argument("image")
@remote_options
@handle_trust_errors()
def signer_remove(name: str, image: str, remote: Remote) -> None:
    """Remove signer NAME from IMAGE's repository (its signatures stop counting)."""
    ref = ImageRef.parse(image, need_tag=False)
    with remote.open(ref) as (client, _):
        client.remove_signer(ref.gun, name)
    _done(f"Removed signer {name} from {ref.gun}")
