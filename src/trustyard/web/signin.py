"""Signing in and out of the web interface.

Sign-in checks the password through ``Authenticator.login``, the one place secrets are checked: the login
throttle applies (too many failures from one address answer 429 with the wait), and every attempt is in the
audit log (``via: web``). Success issues a new session; the old anonymous one, and its CSRF token, are dead.
Only local paths are followed after sign-in (``next=/...``), never another site.
"""

from __future__ import annotations

import math
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from trustyard.auth.errors import AuthenticationError, ThrottledError
from trustyard.web.interface import Visit, WebInterface

__all__ = ["ROUTES"]


def _local(target: str | None) -> str:
    """``target`` if it is a path on this site, else the start page (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/projects"
    return target


async def home(web: WebInterface, visit: Visit) -> Response:
    """The start page is the project list."""
    return RedirectResponse("/projects" if visit.principal else "/login", status_code=303)


async def login_form(web: WebInterface, visit: Visit) -> Response:
    """The sign-in form (signed-in visitors go straight on)."""
    target = _local(visit.request.query_params.get("next"))
    if visit.principal is not None:
        return RedirectResponse(target, status_code=303)
    return web.page(visit, "login.html", next=target, username="", message=None)


async def login(web: WebInterface, visit: Visit) -> Response:
    """Check the credentials; on success a new session and on to ``next``."""
    fields = await web.form(visit)
    username, password = fields.get("username", "").strip(), fields.get("password", "")
    target = _local(fields.get("next"))
    try:
        principal = await run_in_threadpool(
            web.access.authenticator.login, username, password, visit.address, via="web"
        )
    except ThrottledError as e:
        wait = max(1, math.ceil(e.retry_after))
        message = f"Too many failed sign-ins. Try again in {wait} seconds."
        response = web.page(visit, "login.html", 429, next=target, username=username, message=message)
        response.headers["Retry-After"] = str(wait)
        return response
    except AuthenticationError:
        message = "Invalid username or password."
        return web.page(visit, "login.html", 401, next=target, username=username, message=message)
    if principal.robot is not None:
        message = "Robot accounts cannot sign in to the web interface."
        return web.page(visit, "login.html", 403, next=target, username=username, message=message)
    session = web.sessions.signed_in(principal.subject, principal.account)
    response = RedirectResponse(target, status_code=303)
    web.set_cookie(visit.request, response, session)
    return response


async def logout(web: WebInterface, visit: Visit) -> Response:
    """Forget the session (its cookie is refused from now on) and start an anonymous one."""
    await web.form(visit)
    web.sessions.revoke(visit.session)
    response = RedirectResponse("/login", status_code=303)
    web.set_cookie(visit.request, response, web.sessions.anonymous())
    return response


ROUTES: Final = (
    ("/", ("GET",), home),
    ("/login", ("GET",), login_form),
    ("/login", ("POST",), login),
    ("/logout", ("POST",), logout),
)
"""(path, methods, page) of this module."""
