"""The token endpoint of Docker Registry token authentication, ``/auth/token`` (distribution spec/auth/).

- ``GET`` (spec/auth/token.md): ``service``, ``scope`` (repeated or space-separated), ``offline_token``,
  ``client_id``, ``account``; credentials as ``Basic`` (a user, or a robot as ``robot$name``) or none at all
  (anonymous: public pulls). Answers ``{"token", "access_token", "expires_in", "issued_at"}`` and, for a user
  asking ``offline_token=true``, a ``refresh_token`` (what ``docker login`` keeps as an identity token).
- ``POST`` (spec/auth/oauth.md), form-encoded: ``grant_type=password`` with ``username``/``password``, or
  ``grant_type=refresh_token`` with ``refresh_token``; ``service``, ``scope``, ``client_id``,
  ``access_type=offline``. Answers ``{"access_token", "scope", "expires_in", "issued_at"}`` (+
  ``refresh_token``).

A scope may name a repository Docker-style, ``HOST[:PORT]/REPO``, as the docker CLI does for content trust:
when HOST[:PORT] is this registry (``public_hosts`` or the request's ``Host``), it is REPO's scope and the
token grants REPO (``registry_hosts``); another registry's host is a 400 ``invalid_scope`` naming both.

The granted access is the intersection of what was asked and what the policy allows, never more; asking for
more than allowed is not an error (the registry refuses the request later with a message of its own). A bad
credential is a 401, a throttled one a 429 with ``Retry-After``, malformed input a 400. Every token issued
and every refusal is audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trustyard.auth.audit import AuditEvent
from trustyard.auth.authenticator import parse_basic
from trustyard.auth.errors import AuthenticationError, ThrottledError
from trustyard.auth.policy import ANONYMOUS, Kind, Principal, account_id
from trustyard.auth.scopes import InvalidScopeError, Scope, intersect, parse_scopes
from trustyard.auth.service import AccessControl
from trustyard.registry.api.access import client_address, scope_actions

__all__ = ["registry_hosts", "token_endpoint"]

_MAX_FORM: Final = 64 * 1024
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _BadRequestError(Exception):
    def __init__(self, error: str, message: str, status: int = 400, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.error, self.message, self.status, self.retry_after = error, message, status, retry_after


def _error(e: _BadRequestError) -> Response:
    code = {401: "UNAUTHORIZED", 429: "TOOMANYREQUESTS"}.get(e.status, "UNSUPPORTED")
    headers = dict(_NO_STORE)
    if e.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(e.retry_after)))
    if e.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="trustyard"'
    body = {"error": e.error, "error_description": e.message, "errors": [{"code": code, "message": e.message}]}
    return JSONResponse(body, status_code=e.status, headers=headers)


def _allowed(access: AccessControl, principal: Principal, requested: list[Scope]) -> list[Scope]:
    """What ``principal`` may be granted of each requested resource (before intersecting)."""
    allowed: list[Scope] = []
    for scope in requested:
        if scope.type == "registry" and scope.name == "catalog":
            allowed.append(Scope.of("registry", "catalog", "*"))  # the catalog is filtered per caller
        elif scope.type == "repository":
            actions = scope_actions(access.policy.actions_or_creatable(principal, scope.name))
            if actions:
                allowed.append(Scope(scope.type, scope.name, actions))
    return allowed


def _login(access: AccessControl, username: str, password: str, address: str) -> Principal:
    try:
        return access.authenticator.login(username, password, address, via="token")
    except ThrottledError as e:
        raise _BadRequestError("slow_down", e.message, 429, e.retry_after) from None
    except AuthenticationError as e:
        raise _BadRequestError("invalid_grant", e.message, 401) from None


def _account(access: AccessControl, name: str) -> str | None:
    """Which account has the user name ``name`` now (``policy.account_id``), ``None`` if none has."""
    user = access.store.get_user(name)
    return None if user is None else account_id(user)


def _issue(
    access: AccessControl, principal: Principal, requested: list[Scope], address: str, *, refresh: bool, how: str
) -> dict[str, Any]:
    granted = intersect(requested, _allowed(access, principal, requested))
    tokens = access.tokens
    token = tokens.issue(principal.subject, granted, account=principal.account)
    body: dict[str, Any] = {
        "token": token,
        "access_token": token,
        "expires_in": int(tokens.lifetime),
        "issued_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "scope": " ".join(str(s) for s in granted),
    }
    if refresh and principal.kind is Kind.USER:
        generation = access.store.token_generation(principal.name)
        if generation is not None and principal.account is not None:
            body["refresh_token"] = tokens.issue_refresh(principal.name, generation, account=principal.account)
    access.audit.record(
        AuditEvent(
            principal.subject,
            "token",
            address=address,
            detail={
                "grant": how,
                "requested": [str(s) for s in requested],
                "granted": [str(s) for s in granted],
                "refresh_token": "refresh_token" in body,
            },
        )
    )
    return body


def registry_hosts(request: Request) -> frozenset[str]:
    """The ``host[:port]`` names (lower-case) this registry answers to: configured, and this request's ``Host``."""
    settings = request.app.state.settings
    hosts = {h.strip().lower() for h in settings.public_hosts if h.strip()}
    host = request.headers.get("host", "").strip().lower()
    if host:
        hosts.add(host)
    return frozenset(hosts)


def _scopes(values: list[str], hosts: frozenset[str]) -> list[Scope]:
    """The requested scopes; a ``Scope`` is only ever built with a valid repository name."""
    try:
        return parse_scopes(values, hosts)
    except InvalidScopeError as e:
        raise _BadRequestError("invalid_scope", e.message) from None


def _check_service(access: AccessControl, service: str | None) -> None:
    if service and service != access.tokens.service:
        ours = access.tokens.service
        raise _BadRequestError("invalid_request", f"unknown service {service[:100]!r}; this is {ours!r}")


def _get(access: AccessControl, request: Request) -> dict[str, Any]:
    params = request.query_params
    _check_service(access, params.get("service"))
    requested = _scopes(params.getlist("scope"), registry_hosts(request))
    address = client_address(request)
    header = request.headers.get("authorization")
    principal = ANONYMOUS
    if header:
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise _BadRequestError("invalid_request", "the token endpoint takes Basic credentials (or none)", 401)
        try:
            username, password = parse_basic(credentials.strip())
        except AuthenticationError as e:
            raise _BadRequestError("invalid_request", e.message, 401) from None
        principal = _login(access, username, password, address)
    refresh = params.get("offline_token", "").lower() == "true"
    return _issue(access, principal, requested, address, refresh=refresh, how="basic" if header else "anonymous")


def _post(access: AccessControl, request: Request, form: dict[str, str], scopes: list[str]) -> dict[str, Any]:
    _check_service(access, form.get("service"))
    requested = _scopes(scopes, registry_hosts(request))
    address = client_address(request)
    grant = form.get("grant_type", "")
    offline = form.get("access_type", "") == "offline"
    if grant == "password":
        username, password = form.get("username", ""), form.get("password", "")
        if not username:
            raise _BadRequestError("invalid_request", "grant_type=password needs username and password")
        principal = _login(access, username, password, address)
        return _issue(access, principal, requested, address, refresh=offline, how="password")
    if grant == "refresh_token":
        token = form.get("refresh_token", "")
        try:
            claims = access.tokens.verify_refresh(
                token, generation=access.store.token_generation, account=lambda name: _account(access, name)
            )
            principal = access.policy.resolve(claims.subject)
        except AuthenticationError as e:
            access.audit.record(AuditEvent("", "token", "failure", address=address, detail={"reason": e.message}))
            raise _BadRequestError("invalid_grant", e.message, 401) from None
        return _issue(access, principal, requested, address, refresh=True, how="refresh_token")
    message = f"unsupported grant_type {grant[:40]!r}; use password or refresh_token"
    raise _BadRequestError("unsupported_grant_type", message)


async def _form(request: Request) -> tuple[dict[str, str], list[str]]:
    """The urlencoded form (OAuth2 requires it): fields (last wins) and every ``scope`` value."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _BadRequestError("invalid_request", "POST a form: Content-Type application/x-www-form-urlencoded")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > _MAX_FORM:
            raise _BadRequestError("invalid_request", "form too large")
    try:
        pairs = parse_qsl(data.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise _BadRequestError("invalid_request", "malformed form") from None
    return dict(pairs), [v for k, v in pairs if k == "scope"]


async def token_endpoint(request: Request) -> Response:
    """``GET`` and ``POST /auth/token``."""
    access: AccessControl = request.app.state.access
    try:
        if request.method == "POST":
            length = request.headers.get("content-length") or "0"
            if not (length.isascii() and length.isdigit()) or int(length) > _MAX_FORM:
                raise _BadRequestError("invalid_request", "missing, malformed or too large form")
            fields, scopes = await _form(request)
            body = await run_in_threadpool(_post, access, request, fields, scopes)
        else:
            body = await run_in_threadpool(_get, access, request)
    except _BadRequestError as e:
        return _error(e)
    return JSONResponse(body, headers=_NO_STORE)
