"""OCI distribution HTTP routes (distribution-spec v1.1 "Endpoints", end-1 to end-13).

Each handler parses the request, calls one ``RegistryService`` method and builds the response; every
``RegistryError`` becomes the spec's JSON error in ``registry_error_response``. Repository names contain
slashes, so ``/v2/<name>/...`` is matched by one regular expression rather than by path templates.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Final
from urllib.parse import quote, urlencode

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from trustyard.auth.audit import AuditEvent
from trustyard.auth.authenticator import Caller
from trustyard.auth.model import Action
from trustyard.auth.policy import ANONYMOUS, Principal, project_of
from trustyard.auth.scopes import Scope
from trustyard.auth.service import AccessControl
from trustyard.oci.mediatypes import INDEX_TYPES, MediaType
from trustyard.oci.reference import InvalidReferenceError, is_tag, validate_name
from trustyard.registry.api.access import (
    TOKEN_PATH,
    RefusalError,
    authenticate,
    authorize,
    client_address,
    refuse,
    run_read,
)
from trustyard.registry.api.errors import BASE_HEADERS, error_response, registry_error_response
from trustyard.registry.api.openapi import openapi
from trustyard.registry.api.token import token_endpoint
from trustyard.registry.errors import BlobUploadInvalidError, NameInvalidError, RegistryError, SizeInvalidError
from trustyard.registry.gates import Pull, PullGate, first_refusal
from trustyard.registry.service import RegistryService
from trustyard.trust.api import dispatch as trust_dispatch
from trustyard.trust.gate import put_reporting_overwrites

_PATH: Final = re.compile(
    r"^/v2/(?P<name>.+?)/(?:"
    r"blobs/uploads/(?P<upload>[^/]*)"
    r"|(?P<kind>blobs|manifests|referrers)/(?P<ref>[^/]+)"
    r"|(?P<tags>tags/list)"
    r")$"
)
_CONTENT_RANGE: Final = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)$")
MAX_PAGE: Final = 1000


def _headers(**extra: str) -> dict[str, str]:
    h = dict(BASE_HEADERS)
    h.update({k.replace("_", "-"): v for k, v in extra.items()})
    return h


def _upload_headers(name: str, upload_id: str, offset: int) -> dict[str, str]:
    return _headers(
        Location=f"/v2/{name}/blobs/uploads/{upload_id}",
        Range=f"0-{max(offset - 1, 0)}",
        Docker_Upload_UUID=upload_id,
        Content_Length="0",
    )


def _content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise SizeInvalidError(f"invalid Content-Length {value[:30]!r}")
    return int(value)


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that hangs up ends the stream early."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        return


def _page(request: Request) -> tuple[int, str | None]:
    n_text = request.query_params.get("n")
    last = request.query_params.get("last") or None
    if n_text is None or n_text == "":
        return MAX_PAGE, last
    if not (n_text.isascii() and n_text.isdigit()):
        raise _PaginationError(n_text)
    return min(int(n_text), MAX_PAGE), last


class _PaginationError(Exception):
    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


def _accepts(request: Request, media_type: str) -> bool:
    accept = request.headers.getlist("accept")
    if not accept:
        return True
    types = {part.split(";", 1)[0].strip() for header in accept for part in header.split(",")}
    types.discard("")
    if not types or "*/*" in types or media_type in types or f"{media_type.split('/', 1)[0]}/*" in types:
        return True
    # Clients that never sent an Accept for JSON manifests (old curl defaults) still get the document.
    return "application/json" in types and media_type not in INDEX_TYPES


# -- handlers ----------------------------------------------------------------------------------------------


async def base(request: Request) -> Response:
    """end-1: the API version check; a 401 challenge tells clients to log in (unless the registry is open)."""
    access: AccessControl = request.app.state.access
    head = request.method == "HEAD"
    try:
        caller = await authenticate(request, access)
        if caller.principal.anonymous and not access.settings.insecure_anonymous_push:
            raise refuse(request, access, 401, "UNAUTHORIZED", "authentication required")
    except RefusalError as e:
        return e.response(head=head)
    return Response(b"{}", media_type="application/json", headers=_headers())


async def catalog(request: Request) -> Response:
    """List the repositories the caller may list, paginated with ``n`` and ``last`` and a ``Link`` onwards."""
    service: RegistryService = request.app.state.registry
    access: AccessControl = request.app.state.access
    try:
        caller = await authenticate(request, access)
        if not caller.token_grants("registry", "catalog", "*"):
            raise refuse(
                request,
                access,
                403,
                "DENIED",
                "the token does not grant the catalog; request registry:catalog:*",
                scopes=(Scope.of("registry", "catalog", "*"),),
                error="insufficient_scope",
            )
    except RefusalError as e:
        return e.response()
    try:
        n, last = _page(request)
    except _PaginationError as e:
        return error_response("PAGINATION_NUMBER_INVALID", f"invalid n {e.value[:20]!r}", 400)
    names = await run_in_threadpool(_visible_catalog, service, access, caller.principal, n + 1, last)
    headers = _headers()
    if len(names) > n:
        names = names[:n]
        if names:
            headers["Link"] = f'</v2/_catalog?{urlencode({"n": n, "last": names[-1]})}>; rel="next"'
    return JSONResponse({"repositories": names}, headers=headers)


def _visible_catalog(
    service: RegistryService, access: AccessControl, principal: Principal, limit: int, last: str | None
) -> list[str]:
    """Up to ``limit`` repository names after ``last`` in projects ``principal`` may list."""
    policy = access.policy
    visible: list[str] = []
    while len(visible) < limit:
        names = service.catalog(MAX_PAGE, last)
        visible += [n for n in names if Action.LIST in policy.actions(principal, n)]
        if len(names) < MAX_PAGE:
            break
        last = names[-1]
    return visible[:limit]


async def _blob(request: Request, service: RegistryService, m: re.Match[str]) -> Response:
    name, digest = m["name"], m["ref"]
    head = request.method == "HEAD"
    if request.method == "DELETE":
        await run_in_threadpool(service.delete_blob, name, digest)
        return Response(status_code=202, headers=_headers(Content_Length="0"))
    size, stale = await run_read(service.inline_reads, service.stat_blob, name, digest)
    if stale:
        await run_in_threadpool(service.touch_blob, digest)
    headers = _headers(
        Docker_Content_Digest=digest,
        Accept_Ranges="bytes",
        ETag=f'"{digest}"',
        Cache_Control="max-age=31536000",
    )
    start, end, status = 0, size, 200
    range_header = request.headers.get("range")
    if range_header:
        r = _RANGE.match(range_header.strip())
        if r and (r[1] or r[2]):
            if r[1]:
                start = int(r[1])
                end = min(int(r[2]) + 1, size) if r[2] else size
            else:
                start, end = max(size - int(r[2]), 0), size
            if start >= size or start >= end:
                return error_response(
                    "SIZE_INVALID",
                    f"range {range_header[:60]} is not satisfiable for {size} bytes",
                    416,
                    head=head,
                    headers={"Content-Range": f"bytes */{size}"},
                )
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if head:
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    chunks = await run_in_threadpool(service.read_blob, name, digest, start, end)
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


async def _may_pull(request: Request, source: str) -> bool:
    """Whether the caller may read ``source`` (a mount's ``from``): a mount must never leak a blob."""
    access: AccessControl = request.app.state.access
    caller: Caller = request.state.caller
    try:
        validate_name(source)
    except InvalidReferenceError:
        return False
    try:
        await authorize(request, access, caller, source, (Action.PULL,))
    except RefusalError:
        return False
    return True


async def _start_upload(request: Request, service: RegistryService, name: str) -> Response:
    params = request.query_params
    mount, source = params.get("mount"), params.get("from")
    if mount and source and await _may_pull(request, source):
        mounted: bool = await run_in_threadpool(service.mount_blob, name, mount, source)
        if mounted:
            return Response(
                status_code=201,
                headers=_headers(Location=f"/v2/{name}/blobs/{mount}", Docker_Content_Digest=mount, Content_Length="0"),
            )
    upload_id = await run_in_threadpool(service.start_upload, name)
    digest = params.get("digest")
    if digest:  # monolithic upload: POST with the whole blob
        length = _content_length(request)
        try:
            d = await service.finish(name, upload_id, digest, _body(request), length=length)
        except RegistryError:
            await run_in_threadpool(_cancel_quietly, service, name, upload_id)
            raise
        return Response(
            status_code=201,
            headers=_headers(Location=f"/v2/{name}/blobs/{d}", Docker_Content_Digest=str(d), Content_Length="0"),
        )
    return Response(status_code=202, headers=_upload_headers(name, upload_id, 0))


def _chunk(request: Request) -> tuple[int | None, int | None]:
    """Where a chunk starts and how long it is (PATCH or closing PUT), from Content-Range and Content-Length.

    When only Content-Range is given, its length is what must arrive: a shorter body is refused.
    """
    length = _content_length(request)
    content_range = request.headers.get("content-range")
    if not content_range:
        return None, length
    cr = _CONTENT_RANGE.match(content_range.strip())
    if cr is None:
        raise BlobUploadInvalidError(f"malformed Content-Range {content_range[:60]!r}")
    start, end = int(cr[1]), int(cr[2])
    if end < start or (length is not None and length != end - start + 1):
        raise BlobUploadInvalidError(f"Content-Range {content_range[:60]} disagrees with Content-Length")
    return start, end - start + 1


def _cancel_quietly(service: RegistryService, name: str, upload_id: str) -> None:
    try:
        service.cancel_upload(name, upload_id)
    except RegistryError:
        return


async def _upload(request: Request, service: RegistryService, m: re.Match[str]) -> Response:
    name, upload_id = m["name"], m["upload"]
    method = request.method
    if not upload_id:
        if method != "POST":
            return _unsupported(request)
        return await _start_upload(request, service, name)
    if method == "GET":
        offset = await run_in_threadpool(service.upload_offset, name, upload_id)
        return Response(status_code=204, headers=_upload_headers(name, upload_id, offset))
    if method == "DELETE":
        await run_in_threadpool(service.cancel_upload, name, upload_id)
        return Response(status_code=204, headers=_headers(Content_Length="0"))
    if method == "PATCH":
        start, length = _chunk(request)
        offset = await service.append(name, upload_id, _body(request), start=start, length=length)
        return Response(status_code=202, headers=_upload_headers(name, upload_id, offset))
    if method == "PUT":
        digest = request.query_params.get("digest")
        if not digest:
            raise BlobUploadInvalidError("closing an upload needs ?digest=")
        start, length = _chunk(request)
        d = await service.finish(name, upload_id, digest, _body(request), start=start, length=length)
        return Response(
            status_code=201,
            headers=_headers(Location=f"/v2/{name}/blobs/{d}", Docker_Content_Digest=str(d), Content_Length="0"),
        )
    return _unsupported(request)


async def _manifest(request: Request, service: RegistryService, m: re.Match[str]) -> Response:
    name, reference = m["name"], m["ref"]
    method = request.method
    if method in ("GET", "HEAD"):
        if method == "HEAD":
            rec = await run_read(service.inline_reads, service.head_manifest, name, reference)
            digest, media_type, size, body = rec.digest, rec.media_type, rec.size, b""
        else:
            stored = await run_read(service.inline_reads, service.get_manifest, name, reference)
            digest, media_type, body = stored.digest, stored.media_type, stored.body
            size = len(body)
        if not _accepts(request, media_type) and media_type in INDEX_TYPES and is_tag(reference):
            # an old client that cannot read indexes gets the linux/amd64 image, as the reference registry does
            index = await run_read(service.inline_reads, service.get_manifest, name, reference)
            fallback = await run_read(
                service.inline_reads, service.platform_manifest, name, index, lambda t: _accepts(request, t)
            )
            if fallback is not None:
                digest, media_type = fallback.digest, fallback.media_type
                body, size = (b"", len(fallback.body)) if method == "HEAD" else (fallback.body, len(fallback.body))
        if not _accepts(request, media_type):
            return error_response(
                "MANIFEST_UNKNOWN",
                f"manifest is {media_type}, which the request's Accept header does not allow",
                404,
                {"mediaType": media_type},
                head=method == "HEAD",
            )
        headers = _headers(Docker_Content_Digest=digest, ETag=f'"{digest}"', Content_Length=str(size))
        if method == "HEAD":
            return Response(status_code=200, headers=headers, media_type=media_type)
        access: AccessControl = request.app.state.access
        policy = access.policy.pull_policy(name)
        if policy.gated:
            refused = await _gate(request, Pull(name, reference, str(digest), media_type, policy, _subject(request)))
            if refused is not None:
                return refused
        return Response(body, headers=headers, media_type=media_type)
    if method == "PUT":
        limit = service.max_manifest_size
        length = _content_length(request)
        if length is not None and length > limit:
            return error_response("SIZE_INVALID", f"manifest of {length} bytes exceeds the limit of {limit}", 413)
        buf = bytearray()
        async for chunk in _body(request):
            buf += chunk
            if len(buf) > limit:
                return error_response("SIZE_INVALID", f"manifest exceeds the limit of {limit} bytes", 413)
        extra_tags = tuple(request.query_params.getlist("tag"))
        pushed = await run_in_threadpool(  # a push that moves a signed tag to unsigned content is audited
            put_reporting_overwrites,
            request.app.state.access,
            service,
            name,
            reference,
            bytes(buf),
            request.headers.get("content-type"),
            extra_tags,
            _subject(request),
        )
        headers = _headers(
            Location=f"/v2/{name}/manifests/{pushed.digest}",
            Docker_Content_Digest=pushed.digest,
            Content_Length="0",
        )
        if pushed.subject:
            headers["OCI-Subject"] = pushed.subject
        if extra_tags:  # ?tag= pushes: the spec requires an OCI-Tag response header naming every accepted tag
            headers["OCI-Tag"] = ", ".join(extra_tags)
        return Response(status_code=201, headers=headers)
    # DELETE: the only method left that dispatch lets through (_ALLOWED)
    await run_in_threadpool(service.delete_manifest, name, reference)
    return Response(status_code=202, headers=_headers(Content_Length="0"))


async def _tags(request: Request, service: RegistryService, m: re.Match[str]) -> Response:
    if request.method != "GET":
        return _unsupported(request)
    name = m["name"]
    try:
        n, last = _page(request)
    except _PaginationError as e:
        return error_response("PAGINATION_NUMBER_INVALID", f"invalid n {e.value[:20]!r}", 400)
    tags = await run_in_threadpool(service.tags, name, n + 1, last)
    headers = _headers()
    if len(tags) > n:
        tags = tags[:n]
        if tags:
            headers["Link"] = f'</v2/{name}/tags/list?{urlencode({"n": n, "last": tags[-1]})}>; rel="next"'
    return JSONResponse({"name": name, "tags": tags}, headers=headers)


async def _referrers(request: Request, service: RegistryService, m: re.Match[str]) -> Response:
    artifact_type = request.query_params.get("artifactType") or None
    body = await run_in_threadpool(service.referrers, m["name"], m["ref"], artifact_type)
    headers = _headers()
    if artifact_type is not None:
        headers["OCI-Filters-Applied"] = "artifactType"
    return Response(body, headers=headers, media_type=MediaType.OCI_INDEX.value)


def _unsupported(request: Request) -> Response:
    return error_response("UNSUPPORTED", f"{request.method} is not supported here", 405, head=request.method == "HEAD")


_ALLOWED: Final[dict[str, frozenset[str]]] = {
    "blobs": frozenset({"GET", "HEAD", "DELETE"}),
    "manifests": frozenset({"GET", "HEAD", "PUT", "DELETE"}),
    "referrers": frozenset({"GET"}),
}


def _subject(request: Request) -> str:
    caller: Caller | None = getattr(request.state, "caller", None)
    return "" if caller is None else caller.principal.subject


async def _gate(request: Request, pull: Pull) -> Response | None:
    """The project's pull gates on a manifest GET: ``None`` to serve it, else the ``DENIED`` answer (audited)."""
    gates: tuple[PullGate, ...] = getattr(request.app.state, "pull_gates", ())
    service: RegistryService = request.app.state.registry
    # gates answer from caches keyed on the newest trust change and scan; on SQLite a miss is a local read too
    refused = await run_read(service.inline_reads, first_refusal, gates, pull)
    if refused is None:
        return None
    access: AccessControl = request.app.state.access
    event = AuditEvent(
        pull.subject,
        "pull",
        "denied",
        project=project_of(pull.repository),
        repository=pull.repository,
        target=pull.reference,
        address=client_address(request),
        detail={"reason": refused.message, "gate": refused.gate, "digest": pull.digest},
    )
    access.audit.record(event)
    return error_response("DENIED", refused.message, 403, {"gate": refused.gate, **refused.detail})


def _needed(method: str, m: re.Match[str]) -> tuple[Action, ...]:
    """The registry actions a request needs on its repository."""
    if m["upload"] is not None:
        return (Action.PUSH,)
    if m["tags"]:
        return (Action.PULL, Action.LIST)
    if method in ("GET", "HEAD"):
        return (Action.PULL,)
    if method == "DELETE":
        return (Action.MANAGE_TAGS,) if m["kind"] == "manifests" and is_tag(m["ref"]) else (Action.DELETE,)
    return (Action.PUSH,)


def _audited(request: Request, m: re.Match[str]) -> str | None:
    """The audit action of a request worth recording (manifest pulls, pushes, deletes), else ``None``."""
    method, kind = request.method, m["kind"]
    if kind == "manifests":
        return {"GET": "pull", "PUT": "push", "DELETE": "delete"}.get(method)
    if kind == "blobs" and method == "DELETE":
        return "delete"
    return None


def _audit(request: Request, m: re.Match[str], action: str, result: str, principal: Principal, **detail: str) -> None:
    access: AccessControl = request.app.state.access
    name = m["name"]
    address = client_address(request)
    if not detail:  # every manifest GET comes here: the lean path
        access.audit.record_request(principal.subject, action, result, project_of(name), name, m["ref"], address)
        return
    event = AuditEvent(
        principal.subject,
        action,
        result,
        project=project_of(name),
        repository=name,
        target=m["ref"],
        address=address,
        detail=detail,
    )
    access.audit.record(event)


async def dispatch(request: Request) -> Response:
    """Route ``/v2/<name>/...`` by regular expression, authorize, and map registry errors."""
    service: RegistryService = request.app.state.registry
    access: AccessControl = request.app.state.access
    path: str = request.scope["path"]  # not request.url: building a URL object costs ~6% of a manifest GET
    if "/_trust/" in path:  # Notary v1 trust data on the registry's host, as `docker trust` expects
        return await trust_dispatch(request)
    m = _PATH.match(path)
    head = request.method == "HEAD"
    if m is None:
        return error_response("UNSUPPORTED", f"no such endpoint {quote(path[:200])}", 404, head=head)
    audited = _audited(request, m)
    caller = Caller(ANONYMOUS)
    try:
        caller = await authenticate(request, access)
        request.state.caller = caller
        try:
            validate_name(m["name"])
        except InvalidReferenceError as e:
            raise NameInvalidError(e.message, {"name": m["name"][:300]}) from None
        principal = await authorize(request, access, caller, m["name"], _needed(request.method, m))
    except RefusalError as e:
        if audited and e.status == 403:
            _audit(request, m, audited, "denied", caller.principal, reason=e.message)
        return e.response(head=head)
    except RegistryError as e:
        return registry_error_response(e, head=head)
    response = await _route(request, service, m, head)
    if audited and response.status_code < 300:
        _audit(request, m, audited, "success", principal)
    return response


async def _route(request: Request, service: RegistryService, m: re.Match[str], head: bool) -> Response:
    try:
        if m["upload"] is not None:
            return await _upload(request, service, m)
        if m["tags"]:
            return await _tags(request, service, m)
        kind = m["kind"]
        if request.method not in _ALLOWED[kind]:
            return _unsupported(request)
        if kind == "blobs":
            return await _blob(request, service, m)
        if kind == "manifests":
            return await _manifest(request, service, m)
        return await _referrers(request, service, m)
    except RegistryError as e:
        return registry_error_response(e, head=head)


async def openapi_document(request: Request) -> Response:
    """The OpenAPI 3.1 description of this API."""
    return JSONResponse(openapi(), headers=_headers())


ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

routes = [
    Route(TOKEN_PATH, token_endpoint, methods=["GET", "POST"]),
    Route("/v2/", base, methods=["GET", "HEAD"]),
    Route("/v2", base, methods=["GET", "HEAD"]),
    Route("/v2/_catalog", catalog, methods=["GET"]),
    Route("/openapi.json", openapi_document, methods=["GET"]),
    Route("/v2/{rest:path}", dispatch, methods=ALL_METHODS),
]
