"""HTTP for the trust client: the registry's token auth, the trust service's routes, a manifest's digest.

Auth is challenge-driven, as docker and notary do it: a request goes out with the token held for its scope;
on ``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` the client fetches a token from the
realm with its Basic credentials (``repository:<gun>:pull``, ``push,pull`` or ``*``, as the ``notary``
client asks; the scope the challenge names when it names one) and retries once; a ``Basic`` challenge is
answered with the credentials directly. Tokens are kept per scope for the run.

Not here: what the metadata means (``client_chain``), files (``client``).
"""

from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass
from typing import Final

import httpx

from trustyard.trust.client_chain import TrustClientError

__all__ = [
    "MANIFEST_ACCEPT",
    "HttpSession",
    "ManifestDescriptor",
    "TransportError",
    "error_message",
    "manifest_descriptor",
]

MANIFEST_ACCEPT: Final = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
MAX_MANIFEST: Final = 4 * 1024 * 1024  # the registry's own cap on a manifest
_PARAM: Final = re.compile(r'(\w+)="([^"]*)"')


class TransportError(TrustClientError):
    """The registry or trust server could not be reached, or answered with an unexpected status."""


@dataclass(frozen=True, slots=True)
class ManifestDescriptor:
    """What a tag points at in the registry: the digest and size of the manifest's exact bytes."""

    digest: str
    size: int
    media_type: str


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAM.findall(rest))


class HttpSession:
    """One base URL, its TLS trust and credentials, and the bearer tokens obtained for each scope."""

    def __init__(
        self,
        base_url: str,
        *,
        credentials: tuple[str, str] | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._client = httpx.Client(verify=verify, timeout=timeout, follow_redirects=False)
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        scope: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send one request, authenticating once if challenged; network failures become ``TransportError``."""
        url = f"{self.base_url}{path}"
        sent = dict(headers or {})
        if scope in self._tokens:
            sent["Authorization"] = f"Bearer {self._tokens[scope]}"
        response = self._send(method, url, sent, content)
        if response.status_code != 401:
            return response
        scheme, params = _challenge(response.headers.get("www-authenticate", ""))
        if scheme == "bearer" and "realm" in params:
            token = self._token(params, params.get("scope") or scope)
            self._tokens[scope] = token
            sent["Authorization"] = f"Bearer {token}"
        elif scheme == "basic" and self._credentials is not None:
            sent.pop("Authorization", None)
            return self._send(method, url, sent, content, auth=self._credentials)
        else:
            return response
        return self._send(method, url, sent, content)

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return self._client.request(method, url, headers=headers, content=content, auth=auth)
        except httpx.HTTPError as e:
            raise TransportError(f"cannot reach {url}: {e}") from e

    def _token(self, params: dict[str, str], scope: str) -> str:
        query = {"scope": scope}
        if "service" in params:
            query["service"] = params["service"]
        try:
            response = self._client.get(params["realm"], params=query, auth=self._credentials)
        except httpx.HTTPError as e:
            raise TransportError(f"cannot reach the token service {params['realm']}: {e}") from e
        if response.status_code == 401:
            who = f"as {self._credentials[0]!r}" if self._credentials else "anonymously (give --username)"
            raise TransportError(f"the registry refused the login {who}: {error_message(response)}")
        if response.status_code != 200:
            raise TransportError(f"the token service answered {response.status_code}: {error_message(response)}")
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except ValueError:
            token = None
        if not isinstance(token, str) or not token:
            raise TransportError("the token service answered without a token")
        return token


def error_message(response: httpx.Response) -> str:
    """The error message of an OCI / notary / token error body, or the status line."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            detail = first.get("detail")
            if isinstance(detail, dict) and isinstance(detail.get("Error"), dict):
                return f"{first.get('code')}: {detail['Error'].get('Msg')}"
            return f"{first.get('code')}: {first.get('message')}"
        if isinstance(body.get("error_description"), str):
            return str(body["error_description"])
    return f"HTTP {response.status_code}"


def manifest_descriptor(session: HttpSession, repository: str, reference: str) -> ManifestDescriptor:
    """GET the manifest a tag names; the digest is computed over the bytes received, never taken on trust."""
    response = session.request(
        "GET",
        f"/v2/{repository}/manifests/{reference}",
        f"repository:{repository}:pull",
        headers={"Accept": MANIFEST_ACCEPT},
    )
    if response.status_code == 404:
        raise TransportError(f"{repository}:{reference} is not in the registry ({error_message(response)})")
    if response.status_code != 200:
        raise TransportError(
            f"the registry answered {response.status_code} for {repository}:{reference}: {error_message(response)}"
        )
    body = response.content
    if len(body) > MAX_MANIFEST:
        raise TransportError(f"the manifest of {repository}:{reference} is larger than {MAX_MANIFEST} bytes")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    claimed = response.headers.get("docker-content-digest")
    if claimed is not None and claimed.startswith("sha256:") and claimed != digest:
        raise TransportError(f"the registry says the manifest is {claimed}, but its bytes hash to {digest}")
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    return ManifestDescriptor(digest, len(body), media_type)
