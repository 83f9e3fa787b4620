"""Registry errors -> the OCI distribution JSON error body and HTTP status, in one place.

Statuses follow distribution-spec v1.1 "Error Codes" and what the reference registry sends where the
spec leaves room (e.g. ``MANIFEST_BLOB_UNKNOWN`` on push is 400).
"""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.responses import Response

from trustyard.registry.errors import RangeInvalidError, RegistryError, TooLargeError

STATUS: Final[dict[str, int]] = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "PAGINATION_NUMBER_INVALID": 400,
    "UNAVAILABLE": 503,
}

BASE_HEADERS: Final = {
    "Docker-Distribution-API-Version": "registry/2.0",
    "X-Content-Type-Options": "nosniff",
}


def status_of(error: RegistryError) -> int:
    """The HTTP status for an error (range and size-limit failures have their own)."""
    if isinstance(error, RangeInvalidError):
        return 416
    if isinstance(error, TooLargeError):
        return 413
    return STATUS.get(error.code, 500)


def error_response(
    code: str,
    message: str,
    status: int,
    detail: Any = None,
    *,
    head: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    """An OCI error body (no body for HEAD requests)."""
    body = b"" if head else json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()
    h = dict(BASE_HEADERS)
    if headers:
        h.update(headers)
    return Response(body, status_code=status, media_type="application/json", headers=h)


def registry_error_response(error: RegistryError, *, head: bool = False) -> Response:
    """Map a ``RegistryError`` raised by the service."""
    headers: dict[str, str] = {}
    if isinstance(error, RangeInvalidError) and isinstance(error.detail, dict) and "offset" in error.detail:
        offset = int(error.detail["offset"])
        headers["Range"] = f"0-{max(offset - 1, 0)}"
    return error_response(error.code, error.message, status_of(error), error.detail, head=head, headers=headers)
