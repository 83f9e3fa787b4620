"""The Engine API operation a request names, read from its raw request target the way dockerd routes it.

dockerd hands plugins the request target exactly as the client sent it (``r.RequestURI``), but routes on the
decoded, cleaned path: gorilla/mux matches ``URL.Path`` after percent-decoding and answers an uncleaned path
(``//``, ``/./``, ``/../``) with a redirect to the cleaned one, and an optional ``/v{version}`` prefix selects the
API version. A policy that matched the raw text could be sidestepped with ``/v1.43//containers/create?``,
``/containers%2Fcreate`` or ``/x/../containers/create``, so every target is brought to the one form dockerd acts
on before any rule looks at it. Targets dockerd would not route the same way for sure (absolute-form targets,
control characters, a ``%`` left after decoding, a version prefix that is not ``MAJOR.MINOR`` or outside the
versions this plugin knows) raise ``RequestError`` and are refused.

Not here: which operations carry a body to inspect (``service.py``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, unquote

from trustyard.authz.errors import RequestError

MIN_API_VERSION: Final = (1, 12)
"""The oldest Engine API version dockerd 20.10 still serves."""
MAX_API_VERSION: Final = (1, 51)
"""The newest Engine API version (Docker 28.x) whose create and exec bodies this plugin has been checked against."""

_MUX_VERSION = re.compile(r"v[0-9.]+")  # what dockerd's router treats as a version segment
_VERSION = re.compile(r"v([0-9]{1,3})\.([0-9]{1,3})")
_UNSAFE = re.compile(r"[\x00-\x20\x7f#\\]")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One API operation: upper-case method, cleaned path without the version prefix, the version and the query."""

    method: str
    path: str
    version: tuple[int, int] | None
    query: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str:
        """The first value of a query parameter, as dockerd's ``r.Form.Get`` reads it; ``""`` when absent."""
        return next((v for k, v in self.query if k == name), "")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def parse_endpoint(method: str, request_uri: str) -> Endpoint:
    """Normalise ``request_uri`` as dockerd routes it; raise ``RequestError`` for anything it might route otherwise."""
    if not re.fullmatch(r"[A-Za-z]{1,16}", method):
        raise RequestError(f"unsupported request method {method!r}")
    if not request_uri.startswith("/"):
        raise RequestError(f"unsupported request target {request_uri[:80]!r}: not an origin-form path")
    raw_path, _, raw_query = request_uri.partition("?")
    try:
        path = unquote(raw_path, errors="strict")
        query = tuple(parse_qsl(raw_query, keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError as e:
        raise RequestError("request target is not valid UTF-8 after percent-decoding") from e
    if "%" in path or _UNSAFE.search(path):
        raise RequestError(f"request target {request_uri[:80]!r} is double-encoded or has control characters")
    cleaned = posixpath.normpath(path)
    cleaned = "/" + cleaned.lstrip("/")  # normpath keeps a leading "//"; dockerd's cleaning does not
    version: tuple[int, int] | None = None
    first, _, rest = cleaned[1:].partition("/")
    if _MUX_VERSION.fullmatch(first):
        found = _VERSION.fullmatch(first)
        if found is None:
            raise RequestError(f"unknown API version {first!r} in {request_uri[:80]!r}")
        version = (int(found[1]), int(found[2]))
        if not MIN_API_VERSION <= version <= MAX_API_VERSION:
            raise RequestError(
                f"API version {first[1:]} is outside the versions this plugin knows "
                f"({_dotted(MIN_API_VERSION)}-{_dotted(MAX_API_VERSION)})"
            )
        cleaned = "/" + rest
    return Endpoint(method.upper(), cleaned.rstrip("/") or "/", version, query)


def _dotted(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"
