"""The Notary v1 HTTP edge: ``/v2/<gun>/_trust/tuf/...`` and the change feed, on the registry's host and port.

The registry's ``/v2/`` dispatch hands every path containing ``/_trust/`` here. Each handler parses the
path, authorizes with the scopes the ``notary`` client asks for (``pull`` to read, ``push,pull`` to write and
to fetch a server key, ``*`` to delete or rotate; notes/notary-v1.md section 3), calls one ``TrustService``
method in a worker thread (signatures and the database are blocking work), and maps ``TrustError`` to
notary-server's error envelope. Routes, content types and cache headers are what the real server sends.

A GUN may carry the registry's host (Docker names trust data ``<host>:<port>/<repo>``): one of
``public_hosts`` or the request's ``Host``. Access control sees the repository without it (the token endpoint
grants that repository for the docker CLI's ``repository:<host>:<port>/<repo>`` scopes), while the trust
data (and the root certificate's CN) keep the full GUN. A GUN on another registry's host is ``INVALID_GUN``.
"""

from __future__ import annotations

import email.policy
import re
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from trustyard.auth.audit import AuditEvent
from trustyard.auth.authenticator import Caller
from trustyard.auth.model import Action
from trustyard.auth.policy import ANONYMOUS, project_of
from trustyard.auth.scopes import ForeignHostError, local_name
from trustyard.auth.service import AccessControl
from trustyard.oci.reference import InvalidReferenceError, validate_name
from trustyard.registry.api.access import RefusalError, authenticate, authorize, client_address, refuse, run_read
from trustyard.registry.api.token import registry_hosts
from trustyard.trust.errors import InvalidRoleError, MalformedUploadError, MetadataNotFoundError, TrustError
from trustyard.trust.metadata import MAX_NAME, is_valid_role
from trustyard.trust.service import TrustService

__all__ = ["dispatch", "trust_service"]

_ROLE: Final = r"root|snapshot|timestamp|targets(?:/[^/\s]+)*"
_TUF: Final = re.compile(r"^/v2/(?P<gun>[^*]+?)/_trust/tuf/(?P<file>.*)$")
_FEED: Final = re.compile(r"^/v2/(?:(?P<gun>[^*]+?)/)?_trust/changefeed$")
# the checksum form first: "targets/releases.<hex>.json" would otherwise read as a role "releases.<hex>"
_BY_CHECKSUM: Final = re.compile(rf"^(?P<role>{_ROLE})\.(?P<hash>[0-9a-f]{{64}}|[0-9a-f]{{96}}|[0-9a-f]{{128}})\.json$")
_BY_VERSION: Final = re.compile(rf"^(?P<version>[1-9][0-9]{{0,8}})\.(?P<role>{_ROLE})\.json$")
_LATEST: Final = re.compile(rf"^(?P<role>{_ROLE})\.json$")
_KEY: Final = re.compile(r"^(?P<role>[^/]+)\.key$")

_PULL: Final = (Action.PULL,)
_PUSH_PULL: Final = (Action.PULL, Action.PUSH)
_ALL: Final = (Action.PULL, Action.PUSH, Action.DELETE)
_CHALLENGE: Final = {_PULL: frozenset({"pull"}), _PUSH_PULL: frozenset({"push", "pull"}), _ALL: frozenset({"*"})}
_LATEST_CACHE: Final = "public, max-age=300, s-maxage=300, must-revalidate"
_CONSISTENT_CACHE: Final = "public, max-age=2592000, s-maxage=2592000"
_TEXT: Final = "text/plain; charset=utf-8"


def trust_service(request: Request) -> TrustService:
    """The app's trust service, built on first use from its settings and the registry's database."""
    state = request.app.state
    service: TrustService | None = getattr(state, "trust", None)
    if service is None:
        service = TrustService.from_settings(state.settings, state.registry.db)
        state.trust = service
    return service


def _error(e: TrustError) -> Response:
    body: dict[str, Any] = {"code": e.code, "message": e.public_message}
    detail = e.detail()
    if detail is not None:
        body["detail"] = detail
    return JSONResponse({"errors": [body]}, status_code=e.status, media_type="application/json; charset=utf-8")


def _invalid_gun(gun: str) -> Response:
    body = {"code": "INVALID_GUN", "message": "The GUN you are attempting to operate on is invalid.", "detail": gun}
    return JSONResponse({"errors": [body]}, status_code=400, media_type="application/json; charset=utf-8")


def _repository(request: Request, gun: str) -> str:
    """The registry repository a GUN names: without a leading ``<this registry's host>/`` (Docker's GUNs carry
    it; ``registry_hosts``); ``ForeignHostError`` for a GUN on another registry's host."""
    return local_name(gun, registry_hosts(request))


def _needed(method: str, file: str) -> tuple[Action, ...] | None:
    """What a trust request needs, as the notary client asks for it; ``None`` for an unsupported method."""
    if file == "":
        return {"POST": _PUSH_PULL, "DELETE": _ALL}.get(method)
    if file.endswith(".key"):
        return {"GET": _PUSH_PULL, "POST": _ALL}.get(method)
    return _PULL if method in ("GET", "HEAD") else None


async def dispatch(request: Request) -> Response:
    """Route one ``/_trust/`` request: authorize, then serve metadata, keys, updates or the change feed."""
    access: AccessControl = request.app.state.access
    path: str = request.scope["path"]
    if (feed := _FEED.match(path)) is not None:
        return await _changefeed(request, access, feed["gun"])
    m = _TUF.match(path)
    if m is None:
        return _error(_NotFoundError("no such trust endpoint"))
    gun, file = m["gun"], m["file"]
    needed = _needed(request.method, file)
    if needed is None:
        return JSONResponse(
            {"errors": [{"code": "UNSUPPORTED", "message": f"{request.method} is not supported here"}]},
            status_code=405,
        )
    refused = await _authorize(request, access, gun, needed)
    if refused is not None:
        return refused
    audited = _audited(request.method, file)
    try:
        service = trust_service(request)  # a missing or unreadable KEK is NO_CRYPTOSERVICE, not a traceback
        if file == "":
            if request.method == "DELETE":
                await run_in_threadpool(service.delete, gun)
            else:
                files = await _read_upload(request, service)
                await run_in_threadpool(service.update, gun, files)
                audited = f"{audited}:{','.join(sorted(files))}"
            response = Response(b"", status_code=200)
        elif (k := _KEY.match(file)) is not None:
            fn = service.public_key if request.method == "GET" else service.rotate_key
            key = await run_in_threadpool(fn, gun, k["role"])
            body = {"keytype": key.keytype, "keyval": {"public": key.public, "private": None}}
            response = JSONResponse(body, media_type=_TEXT)
            if audited:
                audited = f"{audited}:{k['role']}:{key.key_id}"
        else:
            return await _metadata(request, service, gun, file)
    except TrustError as e:
        if audited:
            _audit(request, access, gun, audited, "failure", reason=f"{e.code}: {e.message}")
        return _error(e)
    if audited:
        _audit(request, access, gun, audited, "success")
    return response


def _audited(method: str, file: str) -> str | None:
    """The audit action of a trust write (publish, delete, key rotation); reads are not recorded."""
    if file == "":
        return {"POST": "trust.publish", "DELETE": "trust.delete"}.get(method)
    if file.endswith(".key") and method == "POST":
        return "trust.rotate"
    return None


def _audit(request: Request, access: AccessControl, gun: str, what: str, result: str, **detail: str) -> None:
    """Record a trust write: who changed the signed state of which GUN, and which roles or key."""
    action, _, extra = what.partition(":")
    caller: Caller = getattr(request.state, "caller", Caller(ANONYMOUS))
    repository = _repository(request, gun)
    if extra:
        detail["roles" if action == "trust.publish" else "key"] = extra
    event = AuditEvent(
        caller.principal.subject,
        action,
        result,
        project=project_of(repository),
        repository=repository,
        target=gun,
        address=client_address(request),
        detail=detail,
    )
    access.audit.record(event)


async def _authorize(request: Request, access: AccessControl, gun: str, needed: tuple[Action, ...]) -> Response | None:
    try:
        repository = _repository(request, gun)
        if len(gun) > MAX_NAME:
            raise InvalidReferenceError("a GUN is stored in 255 characters")
        validate_name(repository)
    except ForeignHostError as e:
        return _invalid_gun(e.message)
    except InvalidReferenceError:
        return _invalid_gun(gun)
    caller = Caller(ANONYMOUS)
    try:
        caller = await authenticate(request, access)
        request.state.caller = caller
        await authorize(request, access, caller, repository, needed, challenge=_CHALLENGE[needed])
    except RefusalError as e:
        return e.response(head=request.method == "HEAD")
    return None


async def _metadata(request: Request, service: TrustService, gun: str, file: str) -> Response:
    if (m := _BY_CHECKSUM.match(file)) is not None:
        found = await run_read(request.app.state.registry.inline_reads, service.get, gun, m["role"], checksum=m["hash"])
        cache = _CONSISTENT_CACHE
    elif (m := _BY_VERSION.match(file)) is not None:
        found = await run_read(
            request.app.state.registry.inline_reads, service.get, gun, m["role"], version=int(m["version"])
        )
        cache = _CONSISTENT_CACHE
    elif (m := _LATEST.match(file)) is not None:
        found = await run_read(request.app.state.registry.inline_reads, service.get, gun, m["role"])
        cache = _LATEST_CACHE
    else:
        raise _NotFoundError(f"no such trust file {file[:100]!r}")
    headers = {"Cache-Control": cache, "Last-Modified": formatdate(found.created_at, usegmt=True)}
    body = b"" if request.method == "HEAD" else found.data
    headers["Content-Length"] = str(len(found.data))
    return Response(body, media_type=_TEXT, headers=headers)


async def _read_upload(request: Request, service: TrustService) -> dict[str, bytes]:
    """The multipart form of an update: one ``files`` part per role, named by its filename."""
    del service
    settings = request.app.state.settings
    limit = settings.trust_max_metadata_size
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise MalformedUploadError("an update must be multipart/form-data")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise MalformedUploadError(f"the update is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as e:
        raise MalformedUploadError("the client went away during the upload") from e
    return parse_upload(content_type, b"".join(chunks))


def parse_upload(content_type: str, body: bytes) -> dict[str, bytes]:
    """Split a multipart update into role -> bytes; ``INVALID_ROLE`` for a part that names no role."""
    if "\r" in content_type or "\n" in content_type:
        raise MalformedUploadError("the content type is malformed")
    try:
        header = content_type.encode("latin-1")
    except UnicodeEncodeError as e:
        raise MalformedUploadError("the content type is malformed") from e
    message = message_from_bytes(
        b"Content-Type: " + header + b"\r\nMIME-Version: 1.0\r\n\r\n" + body, policy=email.policy.HTTP
    )
    if not message.is_multipart():
        raise MalformedUploadError("the update is not a multipart form")
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            raise MalformedUploadError("a part of the update is malformed")
        role = part.get_filename()
        if part.get_param("name", header="content-disposition") != "files" or not role:
            raise MalformedUploadError("every part must be a file named 'files'")
        if not is_valid_role(role):
            raise InvalidRoleError(role)
        if role in files:
            raise MalformedUploadError(f"{role} is sent twice")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            raise MalformedUploadError(f"{role} has no content")
        files[role] = payload
    if not files:
        raise MalformedUploadError("the update holds no files")
    return files


async def _changefeed(request: Request, access: AccessControl, gun: str | None) -> Response:
    """``GET [/<gun>]/_trust/changefeed?change_id=&records=``: pull on the GUN, or an administrator for all."""
    if request.method != "GET":
        return JSONResponse({"errors": [{"code": "UNSUPPORTED", "message": "only GET"}]}, status_code=405)
    if gun is not None:
        refused = await _authorize(request, access, gun, _PULL)
        if refused is not None:
            return refused
    else:
        try:
            caller = await authenticate(request, access)
            if not caller.principal.is_admin:
                status = 401 if caller.principal.anonymous else 403
                raise refuse(request, access, status, "DENIED", "the global change feed is for administrators")
        except RefusalError as e:
            return e.response()
    try:
        after = int(request.query_params.get("change_id") or "0")
        records = int(request.query_params.get("records") or "100")
    except ValueError:
        return _error(_InvalidParametersError("change_id and records must be integers"))
    records = max(-1000, min(1000, records))
    try:
        service = trust_service(request)
        changes = await run_in_threadpool(service.changes, gun, after, records)
    except TrustError as e:
        return _error(e)
    items = [
        {
            "ID": str(c.id),
            "CreatedAt": datetime.fromtimestamp(c.created_at, UTC).isoformat().replace("+00:00", "Z"),
            "GUN": c.gun,
            "Version": c.version,
            "SHA256": c.sha256,
            "Category": c.category,
        }
        for c in changes
    ]
    return JSONResponse({"count": len(items), "records": items})


class _NotFoundError(MetadataNotFoundError):
    """A trust path that names nothing (notary's ``GENERIC_NOT_FOUND``)."""

    code = "GENERIC_NOT_FOUND"
    public_message = "You have requested a resource that does not exist."


class _InvalidParametersError(TrustError):
    code = "INVALID_PARAMETERS"
    status = 400
    public_message = "The parameters provided to the API call were invalid."
