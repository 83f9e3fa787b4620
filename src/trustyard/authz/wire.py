"""The Docker authorization plugin protocol: the engine's messages parsed once into typed objects, and the answer.

dockerd (``pkg/authorization``) POSTs a JSON object to ``/AuthZPlugin.AuthZReq`` before it handles an API call and
to ``/AuthZPlugin.AuthZRes`` after; both carry ``User``, ``UserAuthNMethod``, ``RequestMethod``, ``RequestUri``,
``RequestBody`` (Go ``[]byte``: base64), ``RequestHeaders`` (one value per name), ``RequestPeerCertificates``
(base64 of each certificate's PEM text), and the second also ``ResponseStatusCode``, ``ResponseBody`` and
``ResponseHeaders``. The answer is ``{"Allow": bool, "Msg": str, "Err": str}``. The envelope is a closed set
that has not changed since Docker 1.10, so an unknown field is refused: it means a protocol this plugin has not
been reviewed against.

Request bodies are JSON that dockerd decodes with Go's ``encoding/json``, which differs from Python's in ways
an attacker can use to show the plugin one request and the engine another: Go matches object keys to struct
fields case-insensitively (``"hostconfig": {"privileged": true}`` is privileged) and merges repeated keys into the
same struct. ``read_json_body`` therefore refuses objects with repeated or case-colliding keys and renames keys
that Go would take for a known field to that field's exact name, so the rules see what dockerd will do.

Not here: which endpoints need a body, and the rules (``service.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trustyard.authz.endpoint import Endpoint, parse_endpoint
from trustyard.authz.errors import RequestError

PLUGIN_CONTENT_TYPE: Final = "application/vnd.docker.plugins.v1.2+json"
MAX_ENVELOPE: Final = 4 * 1024 * 1024
"""Largest plugin message read: dockerd sends bodies only below 1 MiB, which is 1.4 MiB in base64."""


class _Envelope(BaseModel):
    """The JSON dockerd sends (``authorization.Request``); every field is ``omitempty`` on the Go side."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    user: str = Field(default="", alias="User")
    user_authn_method: str = Field(default="", alias="UserAuthNMethod")
    request_method: str = Field(default="", alias="RequestMethod")
    request_uri: str = Field(default="", alias="RequestUri")
    request_body: str | None = Field(default=None, alias="RequestBody")
    request_headers: dict[str, str] | None = Field(default=None, alias="RequestHeaders")
    request_peer_certificates: list[str] | None = Field(default=None, alias="RequestPeerCertificates")
    response_status_code: int = Field(default=0, alias="ResponseStatusCode")
    response_body: str | None = Field(default=None, alias="ResponseBody")
    response_headers: dict[str, str] | None = Field(default=None, alias="ResponseHeaders")


@dataclass(frozen=True, slots=True)
class EngineRequest:
    """One API call as the engine reports it, URI normalised, bodies decoded, headers keyed in lower case.

    ``body`` is ``None`` when dockerd sent none: it leaves the body out for non-JSON content, for chunked
    requests and for bodies of 1 MiB or more, so "no body" never means "empty request".
    """

    user: str
    authn_method: str
    endpoint: Endpoint
    raw_uri: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    peer_certificates: tuple[bytes, ...] = ()
    response_status: int = 0
    response_body: bytes | None = None
    response_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """The plugin's answer: ``rules`` refused it, ``warnings`` failed in warn mode, ``excepted`` were excused."""

    allow: bool
    msg: str = ""
    err: str = ""
    rules: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    excepted: tuple[str, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        """The ``authorization.Response`` JSON object dockerd reads."""
        return {"Allow": self.allow, "Msg": self.msg, "Err": self.err}


def parse_message(data: bytes) -> EngineRequest:
    """Parse an ``AuthZReq``/``AuthZRes`` body; anything unreadable raises ``RequestError``."""
    if len(data) > MAX_ENVELOPE:
        raise RequestError(f"plugin message of {len(data)} bytes exceeds {MAX_ENVELOPE}")
    if not data.strip():
        # dockerd re-sends a request whose plugin call failed (the plugin restarted mid-request) with the message
        # already consumed: nothing says what is asked, so it is refused and the user runs the command again
        raise RequestError("the engine sent an empty plugin message (a retry after the plugin restarted): run it again")
    try:
        raw = _Envelope.model_validate(_loads(data))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise RequestError(f"malformed plugin message: {where}: {err['msg']}") from e
    if not raw.request_method or not raw.request_uri:
        raise RequestError("malformed plugin message: RequestMethod and RequestUri are required")
    return EngineRequest(
        user=raw.user,
        authn_method=raw.user_authn_method,
        endpoint=parse_endpoint(raw.request_method, raw.request_uri),
        raw_uri=raw.request_uri,
        body=_b64("RequestBody", raw.request_body),
        headers=_lower(raw.request_headers),
        peer_certificates=tuple(_b64("RequestPeerCertificates", c) or b"" for c in raw.request_peer_certificates or ()),
        response_status=raw.response_status_code,
        response_body=_b64("ResponseBody", raw.response_body),
        response_headers=_lower(raw.response_headers),
    )


def read_json_body(body: bytes, known_fields: Collection[str]) -> dict[str, Any]:
    """Decode a request body as dockerd would: a JSON object, keys folded onto ``known_fields`` as Go matches them.

    Raises ``RequestError`` for invalid UTF-8 or JSON, ``NaN``/``Infinity``, a top level that is not an object, or
    an object whose keys repeat or differ only in case (Go would merge them; Python would keep the last).
    """
    canonical = {name.casefold(): name for name in known_fields}
    value = _loads(body)
    if not isinstance(value, dict):
        raise RequestError("request body is not a JSON object")
    folded: dict[str, Any] = _fold(value, canonical)
    return folded


def _loads(data: bytes) -> Any:
    try:
        text = data.decode("utf-8")  # json.loads(bytes) would also accept UTF-16/32, which Go does not
        return json.loads(text, object_pairs_hook=_no_repeats, parse_constant=_no_constants)
    except UnicodeDecodeError as e:
        raise RequestError("body is not UTF-8") from e
    except (json.JSONDecodeError, RecursionError) as e:
        raise RequestError(f"body is not valid JSON: {e}") from e


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, str] = {}
    for key, _ in pairs:
        folded = key.casefold()
        if folded in seen:
            raise RequestError(f"JSON object has keys {seen[folded]!r} and {key!r}, which the engine reads as one")
        seen[folded] = key
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise RequestError(f"body is not valid JSON: {name} is not a JSON number")


def _fold(value: Any, canonical: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {canonical.get(k.casefold(), k): _fold(v, canonical) for k, v in value.items()}
    if isinstance(value, list):
        return [_fold(v, canonical) for v in value]
    return value


def _b64(name: str, value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise RequestError(f"malformed plugin message: {name} is not base64") from e


def _lower(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k.lower(): v for k, v in (headers or {}).items()}
