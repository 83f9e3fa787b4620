"""Authorization at the registry's door: which action each request needs, and the 401/403 it gets otherwise.

Every ``/v2/`` request passes ``authorize`` before its handler runs. The caller comes from the
``Authorization`` header (``Basic`` or a ``Bearer`` token from ``/auth/token``, or nobody); the request needs
registry actions on a repository (``needed``); the decision is the policy's, and for a token also the token's:

- the policy refuses and nobody is logged in: ``401`` with a ``WWW-Authenticate: Bearer`` challenge naming the
  scope, which sends a client to the token endpoint with its credentials;
- the policy refuses a logged-in caller: ``403 DENIED`` with a message saying who may not do what, which
  skopeo, podman and docker print as they received it;
- the policy allows but the token was issued for less: ``403`` with a challenge carrying
  ``error="insufficient_scope"`` and the scope needed, as RFC 6750 section 3.1 says, so the client fetches a
  token for the larger scope (oras-py renews its token on a 403 only; skopeo, podman and docker ask for the
  scopes an operation needs before they start, and never meet this).

A push to a project that does not exist creates it (private, the pusher its project admin) when the pusher
may create projects; otherwise the push is refused like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from trustyard.auth.audit import AuditEvent
from trustyard.auth.authenticator import Caller
from trustyard.auth.errors import AuthenticationError, ThrottledError
from trustyard.auth.model import Action, Role
from trustyard.auth.policy import ANONYMOUS, Kind, Principal, project_of
from trustyard.auth.scopes import Scope, bearer_challenge
from trustyard.auth.service import AccessControl
from trustyard.auth.store import IdentityExistsError
from trustyard.registry.api.errors import error_response

__all__ = [
    "RefusalError",
    "authenticate",
    "authorize",
    "client_address",
    "realm",
    "refuse",
    "scope_actions",
    "token_action",
]

TOKEN_PATH: Final = "/auth/token"  # noqa: S105 - a URL path
T = TypeVar("T")

_TOKEN_ACTION: Final = {
    Action.PULL: "pull",
    Action.LIST: "pull",
    Action.PUSH: "push",
    Action.DELETE: "delete",
    Action.MANAGE_TAGS: "delete",
}


class RefusalError(Exception):
    """A request that may not go on; ``response()`` is what the client gets."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        realm: str,
        service: str,
        scopes: tuple[Scope, ...] = (),
        error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.realm, self.service, self.scopes, self.error = realm, service, scopes, error
        self.retry_after = retry_after

    def response(self, *, head: bool = False) -> Response:
        """The spec's JSON error, with the Bearer challenge on a 401 and ``Retry-After`` on a 429."""
        headers: dict[str, str] = {}
        if self.status == 401 or self.error is not None:
            headers["WWW-Authenticate"] = bearer_challenge(
                realm=self.realm, service=self.service, scopes=self.scopes, error=self.error
            )
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(self.retry_after)))
        return error_response(self.code, self.message, self.status, head=head, headers=headers)


def token_action(action: Action) -> str:
    """The token-scope action (pull, push, delete) that covers a registry action."""
    return _TOKEN_ACTION.get(action, "*")


def scope_actions(actions: Iterable[Action]) -> frozenset[str]:
    """The token-scope actions a set of registry actions allows; ``*`` when pull, push and delete all are."""
    granted = frozenset(_TOKEN_ACTION[a] for a in actions if a in _TOKEN_ACTION)
    if {"pull", "push", "delete"} <= granted:
        granted |= {"*"}
    return granted


def realm(request: Request, access: AccessControl) -> str:
    """The token endpoint's absolute URL: configured, or this request's scheme and host."""
    configured = access.settings.token_realm
    if configured:
        return configured
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}{TOKEN_PATH}"


def client_address(request: Request) -> str:
    """The peer's address, for throttling and the audit log."""
    return request.client.host if request.client else "unknown"


def refuse(
    request: Request,
    access: AccessControl,
    status: int,
    code: str,
    message: str,
    *,
    scopes: tuple[Scope, ...] = (),
    error: str | None = None,
    retry_after: float | None = None,
) -> RefusalError:
    """A refusal carrying this server's realm and service for its challenge."""
    return RefusalError(
        status,
        code,
        message,
        realm=realm(request, access),
        service=access.tokens.service,
        scopes=scopes,
        error=error,
        retry_after=retry_after,
    )


async def run_read(inline: bool, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` inline when ``inline`` (SQLite: cache hits and local reads take microseconds,
    less than the hop to a worker thread), else in a worker thread so a network database never stalls the
    event loop. The one rule for every hot read of the registry, its access checks and its trust service."""
    if inline:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


async def authenticate(request: Request, access: AccessControl) -> Caller:
    """The caller of ``request``; a bad credential or token is a 401 (a throttled login a 429)."""
    header = request.headers.get("authorization")
    if not header:
        return Caller(ANONYMOUS)
    try:
        if header[:7].lower() == "bearer " and access.store.db.is_sqlite:  # no argon2, cached reads: inline
            return access.authenticator.from_header(header, client_address(request))
        return await run_in_threadpool(access.authenticator.from_header, header, client_address(request))
    except ThrottledError as e:
        raise refuse(request, access, 429, "TOOMANYREQUESTS", e.message, retry_after=e.retry_after) from None
    except AuthenticationError as e:
        raise refuse(request, access, 401, "UNAUTHORIZED", e.message, error="invalid_token") from None


def _challenge_actions(needed: frozenset[Action]) -> frozenset[str]:
    wanted = frozenset(token_action(a) for a in needed)
    return wanted | {"pull"} if "push" in wanted else wanted


def _create_project(access: AccessControl, principal: Principal, repository: str, address: str) -> None:
    name = project_of(repository)
    try:
        access.store.create_project(name)
    except IdentityExistsError:
        return
    if principal.kind is Kind.USER:
        access.store.set_member(name, Role.PROJECT_ADMIN, user=principal.name)
    access.audit.record(
        AuditEvent(principal.subject, "project.create", project=name, address=address, detail={"by": "push"}),
        wait=True,
    )


async def authorize(
    request: Request,
    access: AccessControl,
    caller: Caller,
    repository: str,
    needed: Iterable[Action],
    *,
    challenge: frozenset[str] | None = None,
) -> Principal:
    """Return the principal if ``caller`` may take every ``needed`` action on ``repository``, else raise.

    ``challenge`` overrides the token-scope actions named in a refusal's challenge: the Notary routes ask
    for ``*`` (delete, key rotation) where the registry would say ``delete,pull,push``.
    """
    need = frozenset(needed)
    principal = caller.principal
    policy = access.policy
    creating = Action.PUSH in need and policy.may_create_project(principal)
    if creating and not await run_read(access.store.db.is_sqlite, policy.project_exists, project_of(repository)):
        await run_in_threadpool(_create_project, access, principal, repository, client_address(request))
    allowed = await run_read(access.store.db.is_sqlite, policy.actions, principal, repository)
    if not need <= allowed:
        if principal.anonymous:
            scope = (Scope("repository", repository, challenge or _challenge_actions(need)),)
            raise refuse(request, access, 401, "UNAUTHORIZED", "authentication required", scopes=scope)
        missing = ", ".join(sorted(a.value for a in need - allowed))
        who = "robot account" if principal.kind is Kind.ROBOT else "user"
        raise refuse(
            request,
            access,
            403,
            "DENIED",
            f"requested access to the resource is denied: {who} {principal.subject!r} may not {missing}"
            f" in repository {repository!r}",
        )
    for action in need:
        if not caller.token_grants("repository", repository, token_action(action)):
            scope = (Scope("repository", repository, challenge or _challenge_actions(need)),)
            raise refuse(
                request,
                access,
                403,
                "DENIED",
                "the token does not grant this action; request a token with the scope",
                scopes=scope,
                error="insufficient_scope",
            )
    return principal
