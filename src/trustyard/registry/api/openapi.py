"""The OpenAPI 3.1 description of the registry's HTTP API, served at ``/openapi.json``.

Written out rather than generated: the distribution API's paths (names with slashes, one regex router)
and its header-driven protocol are not something a framework can infer. Keep it in step with
``routes.py``; ``tests/registry`` checks that every documented path answers.
"""

from __future__ import annotations

from typing import Any

from trustyard import __version__

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


def openapi() -> dict[str, Any]:
    """The document (a fresh dict each call)."""
    upload_headers = ("Location", "Range", "Docker-Upload-UUID")
    blob_body = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    manifest_body = {"application/vnd.oci.image.manifest.v1+json": {"schema": {"type": "object"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trustyard registry API",
            "version": __version__,
            "description": "OCI Distribution Spec v1.1 and Docker Registry HTTP API v2. Errors use the spec's "
            'body {"errors":[{"code","message","detail"}]}.',
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
        },
        "components": {
            "responses": {
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
                }
            }
        },
    }
