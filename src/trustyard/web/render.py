"""Jinja2 templates with autoescaping, and the few filters the pages share (sizes, times, digests, severities).

Autoescaping is on for every template: nothing a user or an image supplies (repository names, labels, history
commands, advisory summaries) is ever rendered as markup. Every page answer carries a strict Content Security
Policy (scripts and styles from this origin only, no inline script), is never cached (a robot's secret is in
one of them) and may not be framed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

__all__ = ["HEADERS", "Renderer", "age", "human_size", "short_digest", "when"]

TEMPLATES: Final = Path(__file__).parent / "templates"
HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
        " form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def human_size(size: int | float | None) -> str:
    """Bytes as people read them: 1 decimal, powers of 1000 as docker and podman print them."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _moment(value: float | str | dt.datetime | None) -> dt.datetime | None:
    """Epoch seconds, RFC 3339 text or a datetime as an aware datetime; ``None`` for nothing or unreadable text."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def when(value: float | str | dt.datetime | None) -> str:
    """A time in UTC to the minute; epoch seconds, RFC 3339 text or a datetime (unreadable text as it is)."""
    moment = _moment(value)
    if moment is None:
        return value if isinstance(value, str) else ""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(value: float | str | dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long ago, in the largest whole unit (``3 days``, ``5 hours``); what an operator reads first."""
    moment = _moment(value)
    if moment is None:
        return ""
    seconds = max(0.0, ((now or dt.datetime.now(dt.UTC)) - moment).total_seconds())
    for unit, size in (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return "less than a minute"


def short_digest(digest: str | None) -> str:
    """``sha256:`` and the first 12 hex digits: enough to tell images apart on a page."""
    if not digest:
        return ""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}" if hexpart else digest[:19]


class Renderer:
    """The template environment and the one way pages become HTML answers."""

    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=select_autoescape(["html", "svg"], default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(size=human_size, when=when, age=age, short=short_digest)

    def page(self, template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
        """The rendered template as an HTML answer with the interface's security headers."""
        html = self.env.get_template(template).render(context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)
