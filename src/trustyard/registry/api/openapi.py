"""The OpenAPI 3.1 description of the registry's HTTP API, served at ``/openapi.json``.

The distribution API is written out rather than generated: its paths (names with slashes, one regex router)
and its header-driven protocol are not something a framework can infer. Keep it in step with ``routes.py``;
``tests/registry`` checks that every documented path answers. The management API (``/api/v1``) is generated
from the table that also routes it (``auth.api.ENDPOINTS``) and the pydantic models of its bodies and answers,
so it cannot drift; ``tests/auth/test_api_management.py`` validates the whole document against OpenAPI 3.1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaValue, models_json_schema

from trustyard import __version__
from trustyard.auth.api import ENDPOINTS, Endpoint
from trustyard.auth.schemas import ErrorBody, NoBody

_ERROR = {"$ref": "#/components/responses/Error"}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}, "description": "repository"}
_DIGEST = {"name": "digest", "in": "path", "required": True, "schema": {"type": "string"}}
_REF = {
    "name": "reference",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "tag or digest",
}
_UUID = {"name": "uuid", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGE = [
    {"name": "n", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "last", "in": "query", "schema": {"type": "string"}},
]


def _resp(description: str, *headers: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if headers:
        out["headers"] = {h: {"schema": {"type": "string"}} for h in headers}
    if content:
        out["content"] = content
    return out


_SCHEMA_REF = "#/components/schemas/{model}"
_API_ERROR = {"$ref": "#/components/responses/ApiError"}
_SECURITY: list[dict[str, list[str]]] = [{"basicAuth": []}, {"bearerAuth": []}]
_TAGS = (
    "users",
    "teams",
    "projects",
    "members",
    "robots",
    "audit",
    "repositories",
    "exposure",
    "vulnerability-data",
    "gc",
)
_STATUS_TEXT = {200: "done", 201: "created", 204: "done (no content)"}
Mode = Literal["validation", "serialization"]
Refs = Mapping[tuple[Any, Mode], JsonSchemaValue]


def _management_schemas() -> tuple[Refs, dict[str, Any]]:
    """References to every body and answer model, and the schemas they point to (for ``components``)."""
    wanted: dict[tuple[type[BaseModel], Mode], None] = {(ErrorBody, "serialization"): None}
    for endpoint in ENDPOINTS:
        if endpoint.body is not NoBody:
            wanted[(endpoint.body, "validation")] = None
        if endpoint.response is not None:
            wanted[(endpoint.response, "serialization")] = None
    refs, definitions = models_json_schema(list(wanted), ref_template=_SCHEMA_REF)
    return refs, dict(definitions.get("$defs", {}))


def _parameters(endpoint: Endpoint[Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    if endpoint.query is not None:
        schema = endpoint.query.model_json_schema(mode="validation")
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            found.append(param)
    return found


def _operation(endpoint: Endpoint[Any], refs: Refs) -> dict[str, Any]:
    """One management API operation: parameters, body, answers, who may call it (the handler's docstring)."""
    slug = re.sub(r"[^a-z0-9]+", "_", endpoint.path.removeprefix("/api/v1/").lower()).strip("_")
    answer: dict[str, Any] = {"description": _STATUS_TEXT.get(endpoint.status, "done")}
    if endpoint.response is not None:
        schema = refs[(endpoint.response, "serialization")]
        answer["content"] = {endpoint.media_type: {"schema": schema}}
    operation: dict[str, Any] = {
        "operationId": f"{endpoint.method.lower()}_{slug}",
        "summary": endpoint.summary,
        "description": (endpoint.handler.__doc__ or "").strip(),
        "tags": [[part for part in endpoint.path.split("/") if part in _TAGS][-1]],
        "security": _SECURITY,
        "parameters": _parameters(endpoint),
        "responses": {str(endpoint.status): answer, **{str(s): _API_ERROR for s in endpoint.errors}},
    }
    if endpoint.body is not NoBody:
        body = {"application/json": {"schema": refs[(endpoint.body, "validation")]}}
        operation["requestBody"] = {"required": True, "content": body}
    return operation


def _management() -> tuple[dict[str, Any], dict[str, Any]]:
    """The management API's paths and its component schemas."""
    refs, schemas = _management_schemas()
    paths: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, refs)
    return paths, schemas


def _api_error(refs_schema: str) -> dict[str, Any]:
    return {
        "description": 'a management API error: {"errors": [{"code", "message"}]}; a 401 carries WWW-Authenticate',
        "content": {"application/json": {"schema": {"$ref": refs_schema}}},
    }


def openapi() -> dict[str, Any]:
    """The document (a fresh dict each call)."""
    upload_headers = ("Location", "Range", "Docker-Upload-UUID")
    blob_body = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    manifest_body = {"application/vnd.oci.image.manifest.v1+json": {"schema": {"type": "object"}}}
    management_paths, schemas = _management()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trustyard registry API",
            "version": __version__,
            "description": "OCI Distribution Spec v1.1 and Docker Registry HTTP API v2 under /v2 (errors use the "
            'spec\'s body {"errors":[{"code","message","detail"}]}); the management API of users, teams, projects, '
            "members, robot accounts and the audit log under /api/v1 (Basic credentials or a Bearer token from "
            "/auth/token).",
        },
        "paths": {
            "/v2/": {"get": {"summary": "API version check", "responses": {"200": _resp("supported")}}},
            "/v2/_catalog": {
                "get": {
                    "summary": "list repositories",
                    "parameters": _PAGE,
                    "responses": {"200": _resp("repositories", "Link"), "400": _ERROR},
                }
            },
            "/v2/{name}/blobs/{digest}": {
                "parameters": [_NAME, _DIGEST],
                "head": {"summary": "blob exists", "responses": {"200": _resp("present"), "404": _ERROR}},
                "get": {
                    "summary": "fetch a blob (Range supported)",
                    "parameters": [{"name": "Range", "in": "header", "schema": {"type": "string"}}],
                    "responses": {
                        "200": _resp("content", "Docker-Content-Digest", content=blob_body),
                        "206": _resp("partial content", "Content-Range", content=blob_body),
                        "404": _ERROR,
                        "416": _ERROR,
                    },
                },
                "delete": {"summary": "remove a blob from the repository", "responses": {"202": _resp("deleted")}},
            },
            "/v2/{name}/blobs/uploads/": {
                "parameters": [_NAME],
                "post": {
                    "summary": "start an upload, upload monolithically (?digest=) or mount (?mount=&from=)",
                    "parameters": [
                        {"name": "digest", "in": "query", "schema": {"type": "string"}},
                        {"name": "mount", "in": "query", "schema": {"type": "string"}},
                        {"name": "from", "in": "query", "schema": {"type": "string"}},
                    ],
                    "requestBody": {"required": False, "content": blob_body},
                    "responses": {
                        "201": _resp("blob created or mounted", "Location", "Docker-Content-Digest"),
                        "202": _resp("upload session started", *upload_headers),
                        "400": _ERROR,
                    },
                },
            },
            "/v2/{name}/blobs/uploads/{uuid}": {
                "parameters": [_NAME, _UUID],
                "get": {"summary": "upload status", "responses": {"204": _resp("offset", *upload_headers)}},
                "patch": {
                    "summary": "append a chunk (Content-Range start must equal the offset)",
                    "requestBody": {"content": blob_body},
                    "responses": {"202": _resp("accepted", *upload_headers), "404": _ERROR, "416": _ERROR},
                },
                "put": {
                    "summary": "close the upload with ?digest=",
                    "parameters": [{"name": "digest", "in": "query", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {"content": blob_body},
                    "responses": {"201": _resp("created", "Location", "Docker-Content-Digest"), "400": _ERROR},
                },
                "delete": {"summary": "cancel the upload", "responses": {"204": _resp("cancelled"), "404": _ERROR}},
            },
            "/v2/{name}/manifests/{reference}": {
                "parameters": [_NAME, _REF],
                "head": {"summary": "manifest exists", "responses": {"200": _resp("present", "Docker-Content-Digest")}},
                "get": {
                    "summary": "fetch a manifest (negotiated by Accept)",
                    "responses": {
                        "200": _resp("manifest", "Docker-Content-Digest", content=manifest_body),
                        "404": _ERROR,
                    },
                },
                "put": {
                    "summary": "push a manifest (by tag, or by digest with optional ?tag=)",
                    "requestBody": {"required": True, "content": manifest_body},
                    "responses": {
                        "201": _resp("created", "Location", "Docker-Content-Digest", "OCI-Subject"),
                        "400": _ERROR,
                        "413": _ERROR,
                    },
                },
                "delete": {"summary": "delete a manifest (digest) or a tag", "responses": {"202": _resp("deleted")}},
            },
            "/v2/{name}/tags/list": {
                "parameters": [_NAME],
                "get": {"summary": "list tags", "parameters": _PAGE, "responses": {"200": _resp("tags", "Link")}},
            },
            "/v2/{name}/referrers/{digest}": {
                "parameters": [_NAME, _DIGEST],
                "get": {
                    "summary": "manifests whose subject is digest",
                    "parameters": [{"name": "artifactType", "in": "query", "schema": {"type": "string"}}],
                    "responses": {"200": _resp("image index", "OCI-Filters-Applied")},
                },
            },
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": _resp("OpenAPI 3.1")}}},
            **management_paths,
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic", "description": "a user, or robot$<name> and secret"},
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "/auth/token"},
            },
            "responses": {
                "ApiError": _api_error(_SCHEMA_REF.format(model=ErrorBody.__name__)),
                "Error": {
                    "description": "an OCI error",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "errors": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["code", "message"],
                                            "properties": {
                                                "code": {"type": "string"},
                                                "message": {"type": "string"},
                                                "detail": {},
                                            },
                                        },
                                    }
                                },
                            }
                        }
                    },
                },
            },
        },
    }
