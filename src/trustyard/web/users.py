"""Accounts: administrators list, create, disable and enable users; everyone changes their own password.

Through the management API's user handlers, so the same rules hold as for ``/api/v1/users``: only
administrators manage others, nobody disables or demotes themselves, a password change needs the old password
(checked through the login path, so the throttle applies). Passwords are never rendered back into a form.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from trustyard.auth import api
from trustyard.auth.schemas import NewUser, NoBody, UserPatch
from trustyard.web.interface import FormError, Visit, WebInterface, body_of

__all__ = ["ROUTES"]


async def users(web: WebInterface, visit: Visit, *, status: int = 200, message: str | None = None) -> Response:
    """Every user (administrators only, as the API decides), with a form to create one."""
    found = await web.call(visit, api.list_users, NoBody())
    return web.page(visit, "users.html", status, users=found.users, message=message)


async def create_user(web: WebInterface, visit: Visit) -> Response:
    """Create a user with a password (and optionally an email address and administrator rights)."""
    fields = await web.form(visit)
    failure = "User not created"
    values: dict[str, object] = {
        "name": fields.get("name", "").strip(),
        "password": fields.get("password", ""),
        "admin": fields.get("admin") == "on",
    }
    if fields.get("email", "").strip():
        values["email"] = fields["email"].strip()
    body = body_of(NewUser, failure, users, values)
    await web.change(visit, api.create_user, body, failure=failure, redo=users)
    return RedirectResponse("/users", status_code=303)


async def set_disabled(web: WebInterface, visit: Visit) -> Response:
    """Disable a user (their sessions and tokens stop working at once) or enable them again."""
    fields = await web.form(visit)
    failure = "Not changed"
    body = body_of(UserPatch, failure, users, {"disabled": fields.get("disabled") == "true"})
    await web.change(visit, api.patch_user, body, failure=failure, redo=users, user=fields.get("user", ""))
    return RedirectResponse("/users", status_code=303)


async def account(web: WebInterface, visit: Visit, *, status: int = 200, message: str | None = None) -> Response:
    """The visitor's own account, and the form to change their password."""
    me = await web.call(visit, api.get_user, NoBody(), user=visit.user.name)
    done = visit.request.query_params.get("changed") == "1"
    return web.page(visit, "account.html", status, account=me, message=message, changed=done)


async def change_password(web: WebInterface, visit: Visit) -> Response:
    """Change one's own password: the old one is checked first (a wrong one is refused, and counts as a failed
    login)."""
    fields = await web.form(visit)
    failure = "Password not changed"
    if fields.get("password", "") != fields.get("repeat", ""):
        raise FormError(400, f"{failure}: the two new passwords differ", account)
    values = {"password": fields.get("password", ""), "old_password": fields.get("old_password", "")}
    body = body_of(UserPatch, failure, account, values)
    try:
        await web.change(visit, api.patch_user, body, failure=failure, redo=account, user=visit.user.name)
    except api.ApiError as e:
        if e.status == 403:  # the old password was wrong: say so on the form
            raise FormError(403, f"{failure}: {e.message}", account) from None
        raise
    return RedirectResponse(f"/account?changed={quote('1')}", status_code=303)


ROUTES: Final = (
    ("/users", ("GET",), users),
    ("/users", ("POST",), create_user),
    ("/users/disabled", ("POST",), set_disabled),
    ("/account", ("GET",), account),
    ("/account", ("POST",), change_password),
)
"""(path, methods, page) of this module."""
