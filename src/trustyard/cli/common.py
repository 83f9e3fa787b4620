"""Options shared by commands that open the registry's data, and the error-to-exit-code bridge."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from trustyard.errors import TrustyardError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FINDINGS = 3

err_console = Console(stderr=True)


def data_options(f: Callable[P, R]) -> Callable[P, R]:
    """``--config``, ``--data-dir`` and ``--database-url``, which every data-touching command takes."""
    f = click.option(
        "--database-url",
        metavar="URL",
        help="Metadata database (SQLAlchemy URL, e.g. postgresql://user@host/db). [env: TRUSTYARD_DATABASE_URL; "
        "default: SQLite file in the data dir]",
    )(f)
    f = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder holding blobs and the SQLite database. [env: TRUSTYARD_DATA_DIR; default: per-user data folder]",
    )(f)
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML file of settings (keys as in the README). [env: TRUSTYARD_CONFIG]",
    )(f)


def handle_errors(f: Callable[P, R]) -> Callable[P, R]:
    """Turn a ``TrustyardError`` into its message on stderr and exit code 1, never a traceback."""

    @functools.wraps(f)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return f(*args, **kwargs)
        except TrustyardError as e:
            # the message is text, not markup ("[::1]" in a URL); soft_wrap: one line stays one line
            err_console.print(f"[bold red]error:[/] {escape(e.diagnostics())}", highlight=False, soft_wrap=True)
            sys.exit(EXIT_ERROR)

    return wrapper


def drop_none(**kwargs: Any) -> dict[str, Any]:
    """Keep only the options the user actually gave."""
    return {k: v for k, v in kwargs.items() if v is not None}
