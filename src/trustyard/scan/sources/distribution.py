"""A pull-only client of the OCI distribution API, for the ``docker://`` source: manifests and blobs, verified.

It speaks what registries answer to anonymous and logged-in pulls (distribution-spec v1.1 "Pull", and the
Docker token auth of distribution's ``docs/spec/auth``): ``GET /v2/`` first, to learn the scheme and the
challenge; a ``Bearer realm=...,service=...`` challenge is answered by asking the realm for a pull token for
the one repository (with the user's credentials as Basic, if any); a ``Basic`` challenge by sending the
credentials on every request. A token that expires mid-pull is renewed once.

Every byte is checked against the digest that named it while it streams: a manifest or config is read up to a
small limit and hashed, a blob is handed to the caller chunk by chunk through ``VerifiedBlob``, which hashes
and counts as it goes and fails at the end of the stream (or as soon as the stream outgrows the descriptor's
size) when the bytes are not the ones asked for. No layer is held in memory.

Not here: which image and platform to read (``docker.py``), where credentials come from (``credentials.py``).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import httpx

from trustyard import __version__
from trustyard.oci.digest import Digest, Hasher
from trustyard.oci.mediatypes import MediaType
from trustyard.scan.errors import SourceError
from trustyard.scan.sources.credentials import Credentials

logger = logging.getLogger(__name__)

MANIFEST_ACCEPT: Final = ", ".join(
    [MediaType.OCI_INDEX, MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST_LIST, MediaType.DOCKER_MANIFEST]
)
_CHUNK: Final = 1 << 20
_MAX_ERROR_BODY: Final = 64 * 1024
_MAX_TOKEN_BODY: Final = 1 << 20
_HTTP_ERRORS: Final = (
    httpx.HTTPError,
    httpx.InvalidURL,
)  # InvalidURL (a realm URL or host httpx refuses) is no HTTPError
_PARAM: Final = re.compile(r'\s*([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*,?')


class RegistryAuthError(SourceError):
    """The registry wants credentials we do not have, or refused the ones we gave."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> (``bearer``, params); RFC 7235 auth-params, quoted or not."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if m is None or m.end() == pos:
            break
        value = m[2] if m[2] is not None else m[3]
        params[m[1].lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return scheme.lower(), params


def basic_authorization(creds: Credentials) -> str:
    """The ``Authorization`` value of HTTP Basic (RFC 7617) for ``creds``."""
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode("ascii")


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 or ::1, with or without a port."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class VerifiedBlob:
    """A blob's bytes as a ``read(size)`` stream, hashed and counted as they pass; ``SourceError`` on a mismatch.

    The check happens when the stream ends, before the reader sees the end: whoever reads to the end (the
    layer walker always does) learns of a corrupt blob before it could use a result built from it.
    """

    def __init__(self, chunks: Iterator[bytes], digest: Digest, size: int | None, where: str) -> None:
        self._chunks = chunks
        self._digest = digest
        self._size = size
        self._where = where
        self._hasher = Hasher(digest.algorithm)
        self._buffer = memoryview(b"")
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            parts = [bytes(self._buffer)]
            self._buffer = memoryview(b"")
            while chunk := self._next():
                parts.append(chunk)
            return b"".join(parts)
        if not self._buffer:
            self._buffer = memoryview(self._next())
        data = bytes(self._buffer[:size])
        self._buffer = self._buffer[size:]
        return data

    def _next(self) -> bytes:
        if self._done:
            return b""
        for chunk in self._chunks:
            if not chunk:
                continue
            self._hasher.update(chunk)
            if self._size is not None and self._hasher.size > self._size:
                raise SourceError(f"{self._where}: the registry sent more than the {self._size} bytes it should")
            return chunk
        self._done = True
        if self._size is not None and self._hasher.size != self._size:
            raise SourceError(f"{self._where}: the registry sent {self._hasher.size} bytes, not {self._size}")
        if self._hasher.digest() != self._digest:
            raise SourceError(
                f"{self._where}: the bytes the registry sent hash to {self._hasher.digest()}, not to {self._digest};"
                " refused"
            )
        return b""


class DistributionClient:
    """Pull access to one repository of one registry; ``close()`` when done."""

    def __init__(
        self,
        host: str,
        repository: str,
        *,
        credentials: Credentials | None = None,
        tls_verify: bool | None = None,
        timeout: float = 60.0,
    ) -> None:
        self._host = host
        self._repository = repository
        self._credentials = credentials
        insecure = tls_verify is False
        if insecure:
            logger.warning(
                "TLS verification is off for %s (--tls-verify=false): the registry is not authenticated", host
            )
        self._schemes = ("https", "http") if insecure or (tls_verify is None and is_loopback(host)) else ("https",)
        self._http = httpx.Client(
            verify=not insecure,
            follow_redirects=True,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
            headers={"User-Agent": f"trustyard/{__version__}", "Accept-Encoding": "identity"},
        )
        self._authorization: str | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        try:
            self._base = self._ping()
        except BaseException:
            self._http.close()
            raise

    @property
    def base_url(self) -> str:
        """``https://host`` or ``http://host``, whichever answered."""
        return self._base

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def manifest(self, reference: str, limit: int) -> tuple[bytes, str | None, str | None]:
        """The raw manifest ``reference`` (a tag or a digest) names, its Content-Type and Docker-Content-Digest."""
        url = f"{self._base}/v2/{self._repository}/manifests/{reference}"
        with self._stream(url, {"Accept": MANIFEST_ACCEPT}, f"manifest {reference}") as response:
            raw = _read_limited(response, limit, f"manifest {reference}")
            return raw, response.headers.get("content-type"), response.headers.get("docker-content-digest")

    def small_blob(self, digest: Digest, limit: int) -> bytes:
        """A config blob, refused past ``limit`` bytes, checked against ``digest`` (read to its end)."""
        parts: list[bytes] = []
        total = 0
        with self.blob(digest, None) as blob:
            while chunk := blob.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise SourceError(f"blob {digest} is larger than {limit} bytes; not an image config")
                parts.append(chunk)
        return b"".join(parts)

    @contextmanager
    def blob(self, digest: Digest, size: int | None) -> Iterator[VerifiedBlob]:
        """The blob ``digest`` as a verified stream (``size``: the descriptor's, when known)."""
        url = f"{self._base}/v2/{self._repository}/blobs/{digest}"
        where = f"{self._host}/{self._repository}@{digest}"
        with self._stream(url, {}, f"blob {digest}") as response:
            try:
                yield VerifiedBlob(response.iter_raw(_CHUNK), digest, size, where)
            except _HTTP_ERRORS as e:
                raise SourceError(f"{where}: the download failed: {e}") from e

    # -- the connection and its authorization ---------------------------------------------------------------

    def _ping(self) -> str:
        failures: list[str] = []
        for scheme in self._schemes:
            base = f"{scheme}://{self._host}"
            try:
                response = self._http.get(f"{base}/v2/")
            except _HTTP_ERRORS as e:
                failures.append(f"{base}: {e}")
                continue
            if response.status_code == 401:
                self._challenge = parse_challenge(response.headers.get("www-authenticate", ""))
            elif response.status_code != 200:
                raise SourceError(f"{base}/v2/ answered HTTP {response.status_code}: not a container registry")
            return base
        hint = "" if "http" in self._schemes else " (a registry served over plain HTTP needs --tls-verify=false)"
        raise SourceError(f"cannot reach the registry {self._host}: {'; '.join(failures)}{hint}")

    def _authorize(self) -> None:
        """Set ``self._authorization`` from the last challenge; ``RegistryAuthError`` when it cannot be met."""
        scheme, params = self._challenge or ("", {})
        creds = self._credentials
        if scheme == "basic":
            if creds is None:
                raise RegistryAuthError(self._needs_login())
            self._authorization = basic_authorization(creds)
        elif scheme == "bearer" and params.get("realm"):
            self._authorization = f"Bearer {self._token(params)}"
        else:
            raise RegistryAuthError(f"{self._host} asks for an authentication this client does not speak: {scheme!r}")

    def _token(self, params: dict[str, str]) -> str:
        realm = params["realm"]
        if not realm.startswith(("https://", "http://")):
            raise RegistryAuthError(f"{self._host}: the token realm {realm!r} is not an http(s) URL")
        query = {"scope": f"repository:{self._repository}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        creds = self._credentials
        auth = None
        if creds is not None:
            query["account"] = creds.username
            auth = httpx.BasicAuth(creds.username, creds.password)
        try:
            with self._http.stream("GET", realm, params=query, auth=auth) as response:
                body = _read_limited(response, _MAX_TOKEN_BODY, "token") if response.status_code == 200 else b""
                status = response.status_code
        except _HTTP_ERRORS as e:
            raise RegistryAuthError(f"{self._host}: cannot reach the token endpoint {realm}: {e}") from e
        if status in (401, 403):
            if creds is None:
                raise RegistryAuthError(self._needs_login())
            raise RegistryAuthError(
                f"{self._host}: the registry refused the credentials of {creds.username!r} (HTTP {status} from"
                f" {realm}); check the user name and password"
            )
        if status != 200:
            raise RegistryAuthError(f"{self._host}: the token endpoint {realm} answered HTTP {status}")
        try:
            data = json.loads(body)
        except ValueError as e:
            raise RegistryAuthError(f"{self._host}: the token endpoint {realm} did not answer JSON") from e
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"{self._host}: the token endpoint {realm} answered without a token")
        return token

    def _needs_login(self) -> str:
        return (
            f"{self._host}/{self._repository} needs credentials: give --creds USER:PASSWORD, or log in with"
            " `skopeo login`, `podman login` or `docker login`"
        )

    @contextmanager
    def _stream(self, url: str, headers: dict[str, str], what: str) -> Iterator[httpx.Response]:
        """GET ``url`` with authorization, renewing it once on a 401; non-2xx answers become ``SourceError``."""
        if self._authorization is None and self._challenge is not None:
            self._authorize()
        for attempt in range(2):
            sent = dict(headers)
            if self._authorization is not None:
                sent["Authorization"] = self._authorization
            try:
                with self._http.stream("GET", url, headers=sent) as response:
                    if response.status_code == 401 and attempt == 0:
                        self._challenge = parse_challenge(response.headers.get("www-authenticate", ""))
                        self._authorization = None
                        self._authorize()
                        continue
                    if response.status_code != 200:
                        raise self._refusal(response, what)
                    yield response
                    return
            except _HTTP_ERRORS as e:
                raise SourceError(f"{self._host}/{self._repository}: {what}: {e}") from e
        raise SourceError(f"{self._host}/{self._repository}: {what}: refused after renewing the authorization")

    def _refusal(self, response: httpx.Response, what: str) -> SourceError:
        body = _read_limited(response, _MAX_ERROR_BODY, "error", truncate=True)
        detail = ""
        try:
            errors = json.loads(body).get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        except (ValueError, AttributeError):
            detail = ""
        where = f"{self._host}/{self._repository}: {what}"
        status = response.status_code
        suffix = f" ({detail})" if detail else ""
        if status == 401:
            if self._credentials is None:
                return RegistryAuthError(self._needs_login())
            return RegistryAuthError(
                f"{where}: the registry refused the credentials of {self._credentials.username!r}{suffix}"
            )
        if status == 403:
            return RegistryAuthError(f"{where}: access denied (HTTP 403){suffix}")
        if status == 404:
            return SourceError(f"{where}: not found (HTTP 404){suffix}")
        return SourceError(f"{where}: HTTP {status}{suffix}")


def _read_limited(response: httpx.Response, limit: int, what: str, *, truncate: bool = False) -> bytes:
    parts: list[bytes] = []
    total = 0
    for chunk in response.iter_raw(_CHUNK):
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            if truncate:
                return b"".join(parts)[:limit]
            raise SourceError(f"the {what} is larger than {limit} bytes; refused")
    return b"".join(parts)
