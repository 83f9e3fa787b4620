"""``trustyard serve``: run the registry (HTTP or HTTPS) until SIGINT/SIGTERM, then stop gracefully."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click
import uvicorn
from starlette.types import ASGIApp

from trustyard.auth.service import AccessControl
from trustyard.cli.common import data_options, err_console, handle_errors
from trustyard.config import ConfigError, Settings, load_settings
from trustyard.db.engine import Database
from trustyard.logs import configure
from trustyard.registry.app import SETTINGS_ENV, asgi_app

log = logging.getLogger("trustyard.auth")


@click.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Address to listen on. [env: TRUSTYARD_LISTEN; default: 127.0.0.1:5000]",
)
@data_options
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM certificate chain (enables HTTPS).",
)
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="PEM private key of --tls-cert.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="[default: info]")
@click.option("--log-format", type=click.Choice(["json", "text"]), help="Log lines as JSON or text. [default: json]")
@click.option("--workers", type=int, help="Worker processes sharing the port. [default: 1]")
@click.option(
    "--gc-interval",
    type=float,
    metavar="SECONDS",
    help="Run garbage collection online every SECONDS (0 = never).",
)
@click.option(
    "--insecure-anonymous-push",
    is_flag=True,
    default=None,
    help="INSECURE: let anyone push, pull and delete without credentials, like the bare registry."
    " [env: TRUSTYARD_INSECURE_ANONYMOUS_PUSH]",
)
@handle_errors
def serve(
    listen: str | None,
    config_file: Path | None,
    data_dir: Path | None,
    database_url: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    log_level: str | None,
    log_format: str | None,
    workers: int | None,
    gc_interval: float | None,
    insecure_anonymous_push: bool | None,
) -> None:
    """Serve the OCI distribution API (docker, podman, skopeo, buildah, oras, crane push and pull here).

    Blobs and the SQLite metadata live under --data-dir unless --database-url names another database.
    Uploads in progress survive a restart; SIGTERM finishes the requests in flight, then exits.

    Authentication is required out of the box. On first start the administrator 'admin' is created with the
    password in TRUSTYARD_ADMIN_PASSWORD, or with a generated one printed here once; the token signing key is
    created under the data dir (mode 0600).
    """
    settings = load_settings(
        config_file,
        listen=listen,
        data_dir=data_dir,
        database_url=database_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
        log_level=log_level,
        log_format=log_format,
        workers=workers,
        gc_interval=gc_interval,
        insecure_anonymous_push=insecure_anonymous_push,
    )
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    configure(settings.log_level, settings.log_format)
    _first_start(settings)
    target: ASGIApp | str
    if settings.workers > 1:
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        target = "trustyard.registry.app:worker_app"
    else:
        target = asgi_app(settings)
    uvicorn.run(
        target,
        factory=settings.workers > 1,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        timeout_graceful_shutdown=30,
        server_header=False,
        h11_max_incomplete_event_size=64 * 1024,
    )


def _first_start(settings: Settings) -> None:
    """Migrate once (not racing in every worker), create ``admin`` and the token key if they are missing."""
    db = Database(settings.metadata_url)
    try:
        access = AccessControl.from_settings(settings, db)
        generated = access.bootstrap()
        access.tokens.key_id  # noqa: B018 - loads the signing key, or creates it (0600) on first start
    finally:
        db.dispose()
    if generated is not None:
        log.warning("created the administrator 'admin' with a generated password, printed once on stderr")
        err_console.print(
            "[bold]trustyard: created the administrator 'admin'.[/] Its password, shown this once:\n\n"
            f"    {generated}\n\nLog in with: skopeo login -u admin {settings.listen}  (or docker/podman login)",
            highlight=False,
            soft_wrap=True,
        )
