"""The web interface's core: who is visiting, and how pages call the management API's handlers.

Pages never reach into stores: each one calls the same handler ``/api/v1`` runs for the same request
(``auth.api.invoke``), so a page shows exactly what the API would answer this person, is refused exactly when the
API would refuse, and leaves the same audit events. A refusal becomes an error page with the API's message.

A visit resolves its session cookie (``session.py``) to a principal through the access policy on every request,
so an account deleted or disabled since sign-in is signed out at once. Most pages need a signed-in user; anyone
else is sent to the sign-in page and back. The browsing pages (projects, repositories, images) also serve
visitors without a session, as Harbor does: their handlers run for the anonymous principal, which the access
policy lets see public projects only, and any refusal becomes the same sign-in redirect a missing project gets.

Not here: the pages themselves (``signin.py``, ``projects.py``, ``images.py``, ``operations.py``), the routes
(``routes.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast
from urllib.parse import parse_qsl, quote

from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from trustyard.auth.api import ApiError, Call, invoke
from trustyard.auth.errors import AuthenticationError
from trustyard.auth.policy import ANONYMOUS, Principal
from trustyard.auth.service import AccessControl
from trustyard.config import Settings
from trustyard.registry.api.access import client_address
from trustyard.registry.service import RegistryService
from trustyard.web.render import Renderer
from trustyard.web.session import COOKIE, CsrfError, Session, SessionCodec, load_or_create_key

__all__ = ["FormError", "Visit", "WebInterface", "body_of", "invalid"]

B = TypeVar("B", bound=BaseModel)
R = TypeVar("R")
MAX_FORM: Final = 64 * 1024


Redo = Callable[..., Awaitable[Response]]
"""A page that shows a form again: called as ``redo(web, visit, status=..., message=...)``."""


class FormError(Exception):
    """A form the API (or its body model) refused: its page is shown again with the reason, nothing changed."""

    def __init__(self, status: int, message: str, redo: Redo) -> None:
        super().__init__(message)
        self.status, self.message, self.redo = status, message, redo


def body_of(model: type[B], failure: str, redo: Redo, values: Mapping[str, object]) -> B:
    """The API body a form describes; ``FormError`` (400, naming the fields) if it is not valid."""
    try:
        return model.model_validate(values)
    except ValidationError as e:
        raise FormError(400, f"{failure}: {invalid(e)}", redo) from None


@dataclass(frozen=True)
class Visit:
    """One request of a browser: its session, the principal behind it, and whether the cookie must be (re)set."""

    request: Request
    session: Session
    principal: Principal | None
    renew: bool

    @property
    def user(self) -> Principal:
        """The signed-in principal (pages behind sign-in only; ``routes.py`` sends others to sign in)."""
        if self.principal is None:
            raise ApiError(401, "UNAUTHORIZED", "sign in first")
        return self.principal

    @property
    def caller(self) -> Principal:
        """Whom the API's handlers run for: the signed-in principal, else the anonymous one."""
        return self.principal or ANONYMOUS

    @property
    def address(self) -> str:
        """The client's address, for the login throttle and the audit log."""
        return client_address(self.request)


class WebInterface:
    """Sessions, templates and the way into the API's handlers, shared by every page."""

    def __init__(self, *, settings: Settings, access: AccessControl, registry: RegistryService) -> None:
        self.settings = settings
        self.access = access
        self.registry = registry
        self.sessions = SessionCodec(load_or_create_key(settings.data_dir / "web" / "session-key"))
        self.renderer = Renderer()
        self.secure = settings.tls_cert is not None

    # -- visitors ------------------------------------------------------------------------------------------

    def _principal(self, session: Session) -> Principal | None:
        if not session.signed_in:
            return None
        try:
            principal = self.access.policy.resolve(session.subject)
        except AuthenticationError:
            return None
        return principal if principal.account == session.account else None

    async def visit(self, request: Request) -> Visit:
        """Who is visiting: their valid session (or a new anonymous one) and its principal, if signed in."""
        session = self.sessions.decode(request.cookies.get(COOKIE))
        if session is None:
            return Visit(request, self.sessions.anonymous(), None, renew=True)
        principal = await run_in_threadpool(self._principal, session) if session.signed_in else None
        if session.signed_in and principal is None:
            return Visit(request, self.sessions.anonymous(), None, renew=True)
        return Visit(request, session, principal, renew=False)

    def set_cookie(self, request: Request, response: Response, session: Session) -> None:
        """Attach ``session`` as the cookie: HttpOnly, SameSite=Lax, Secure under TLS, for the whole site."""
        response.set_cookie(
            COOKIE,
            self.sessions.encode(session),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure or request.url.scheme == "https",
        )

    async def _fields(self, visit: Visit) -> list[tuple[str, str]]:
        """The URL-encoded form body (every form here is one), at most ``MAX_FORM`` bytes, parsed once."""
        cached = visit.request.scope.get("trustyard.form")
        if cached is not None:
            return cast(list[tuple[str, str]], cached)
        kind = visit.request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise CsrfError("This is not a form this site sends.")
        body = bytearray()
        async for chunk in visit.request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                raise CsrfError("The form is too large.")
        try:
            fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise CsrfError("The form could not be read.") from None
        visit.request.scope["trustyard.form"] = fields
        return fields

    async def form(self, visit: Visit) -> dict[str, str]:
        """The POSTed form's fields, once its CSRF token matched the session's (``CsrfError`` otherwise)."""
        fields = dict(await self._fields(visit))
        self.sessions.check_csrf(visit.session, fields.get("csrf"))
        origin = visit.request.headers.get("origin")
        if origin and origin not in self._origins(visit.request):
            raise CsrfError("The form was sent from another site.")
        return fields

    @staticmethod
    def _origins(request: Request) -> set[str]:
        host = request.headers.get("host", "")
        return {f"http://{host}", f"https://{host}"}

    async def form_list(self, visit: Visit, name: str) -> list[str]:
        """Every value of a repeated form field (checkboxes); call ``form`` first, which checks the token."""
        return [value for key, value in await self._fields(visit) if key == name]

    # -- the API's handlers --------------------------------------------------------------------------------

    async def call(
        self,
        visit: Visit,
        handler: Callable[[Call, B], R],
        body: B,
        *,
        query: Sequence[tuple[str, str]] = (),
        extra: Mapping[str, str] | None = None,
        **params: str,
    ) -> R:
        """Run the API handler for this visitor (``ApiError`` when the API would refuse); ``params`` and
        ``extra`` are the path parameters. An anonymous visitor (browsing pages only) calls as ``ANONYMOUS``."""
        principal = visit.caller
        return await run_in_threadpool(
            lambda: invoke(
                handler,
                body,
                principal=principal,
                address=visit.address,
                access=self.access,
                registry=self.registry,
                params={**params, **(extra or {})},
                query=query,
            )
        )

    async def change(
        self,
        visit: Visit,
        handler: Callable[[Call, B], R],
        body: B,
        *,
        failure: str,
        redo: Redo,
        extra: Mapping[str, str] | None = None,
        **params: str,
    ) -> R:
        """``call`` for a form's change: a refusal about the input (400, 404, 409) becomes ``FormError``, so the
        form is shown again with the API's reason; any other refusal is an error page."""
        try:
            return await self.call(visit, handler, body, extra={**(extra or {}), **params})
        except ApiError as e:
            if e.status in (400, 404, 409):
                raise FormError(e.status, f"{failure}: {e.message}", redo) from None
            raise

    # -- answers -------------------------------------------------------------------------------------------

    def page(self, visit: Visit, template: str, status: int = 200, **context: Any) -> Response:
        """A page for this visitor (its session cookie renewed when needed)."""
        base = {
            "user": visit.principal,
            "csrf": visit.session.csrf,
            "path": visit.request.url.path,
            "sign_in": _sign_in_url(visit),
            "host": visit.request.headers.get("host", self.settings.listen),
        }
        response = self.renderer.page(template, {**base, **context}, status=status)
        if visit.renew:
            self.set_cookie(visit.request, response, visit.session)
        return response

    def error(self, visit: Visit, status: int, message: str, title: str | None = None) -> Response:
        """The error page: what went wrong, in the API's words."""
        titles = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
        heading = title or titles.get(status, "Something went wrong")
        return self.page(visit, "error.html", status, title=heading, message=message)

    def refused(self, visit: Visit, error: ApiError) -> Response:
        """An API refusal as a page."""
        return self.error(visit, error.status, error.message)

    def sign_in_first(self, visit: Visit) -> Response:
        """Send an anonymous visitor to the sign-in page, to come back here afterwards."""
        response = RedirectResponse(_sign_in_url(visit), status_code=303)
        if visit.renew:
            self.set_cookie(visit.request, response, visit.session)
        return response


def _sign_in_url(visit: Visit) -> str:
    """The sign-in page, to come back to this one afterwards."""
    target = visit.request.url.path
    if visit.request.url.query:
        target += "?" + visit.request.url.query
    return f"/login?next={quote(target, safe='')}"


def invalid(error: ValidationError) -> str:
    """A form's validation problems in one sentence, naming fields but never echoing values."""
    problems = []
    for item in error.errors(include_input=False, include_url=False, include_context=False)[:5]:
        location = ".".join(str(part) for part in item["loc"])
        problems.append(f"{location}: {item['msg']}" if location else item["msg"])
    return "; ".join(problems)
