"""A small OCI distribution client for ``trustyard db push``/``db pull``: one manifest, its blobs, nothing else.

Written here because the registry client of the ``docker://`` image source pulls only; pushing the store needs
uploads too. What it speaks (distribution-spec v1.1, and Docker token auth as trustyard's registry does it):
- ``GET /v2/`` first: a ``Bearer realm=...,service=...`` challenge is answered by asking the realm for a token
  for the one repository (``repository:NAME:pull`` or ``pull,push``), with the credentials as Basic when there
  are any; a ``Basic`` challenge by sending the credentials on every request;
- push: ``HEAD`` each blob (skipped when there), else ``POST /blobs/uploads/`` and one ``PUT ?digest=``
  streaming the file (monolithic upload); then ``PUT /manifests/TAG``;
- pull: ``GET /manifests/REF`` (read up to 4 MiB, its digest checked when REF is a digest) and a blob streamed
  to a file while hashed: the caller gets it only if digest and size are right.
Plain HTTP only with ``plain_http`` (as ``oras --plain-http``); certificates are verified otherwise.

Every failure is a ``TransportError`` naming the URL and the registry's own error message.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final
from urllib.parse import urljoin

import httpx

from trustyard import __version__
from trustyard.oci.digest import Digest
from trustyard.oci.reference import InvalidReferenceError, is_digest, validate_name, validate_tag
from trustyard.scan.sources.credentials import Credentials
from trustyard.scan.sources.distribution import basic_authorization, parse_challenge
from trustyard.scan.vulndb.errors import VulnDbError

MAX_MANIFEST: Final = 4 * 1024 * 1024
_CHUNK: Final = 1 << 20


class TransportError(VulnDbError):
    """The registry could not be reached, refused us, or answered with something other than what we asked for."""


@dataclass(frozen=True, slots=True)
class Reference:
    """``REGISTRY/REPO:TAG`` or ``REGISTRY/REPO@sha256:...``: where the store artifact lives."""

    registry: str
    repository: str
    reference: str

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse; ``TransportError`` for anything without a registry host, a repository and a tag or digest."""
        host, slash, rest = text.partition("/")
        if not slash or not rest or not host:
            raise TransportError(f"{text!r}: give REGISTRY/REPO:TAG (for example 127.0.0.1:5000/vulndb/store:latest)")
        if "@" in rest:
            repository, _, reference = rest.partition("@")
            if not is_digest(reference):
                raise TransportError(f"{text!r}: {reference!r} is not a digest")
        else:
            repository, colon, reference = rest.rpartition(":")
            if not colon or "/" in reference:
                raise TransportError(f"{text!r}: give a tag (REGISTRY/REPO:TAG) or a digest (REGISTRY/REPO@sha256:...)")
            try:
                validate_tag(reference)
            except InvalidReferenceError as e:
                raise TransportError(f"{text!r}: {e}") from e
        try:
            validate_name(repository)
        except InvalidReferenceError as e:
            raise TransportError(f"{text!r}: {e}") from e
        return cls(host, repository, reference)

    def __str__(self) -> str:
        sep = "@" if is_digest(self.reference) else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"


def _registry_message(response: httpx.Response) -> str:
    """The first OCI error's code and message, else the status line."""
    try:
        body = json.loads(response.read()[:65536])
        first = body["errors"][0]
        return f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return f"HTTP {response.status_code} {response.reason_phrase}"


class RegistryClient:
    """One repository of one registry, authorized for ``actions`` (``pull`` or ``pull,push``)."""

    def __init__(
        self,
        ref: Reference,
        *,
        actions: str,
        username: str | None = None,
        password: str | None = None,
        plain_http: bool = False,
        verify: bool | str = True,
        timeout: float = 60.0,
    ) -> None:
        self.ref = ref
        self.base = f"{'http' if plain_http else 'https'}://{ref.registry}/v2/{ref.repository}"
        self._basic = basic_authorization(Credentials(username, password or "")) if username else None
        self._actions = actions
        self._client = httpx.Client(
            verify=verify, timeout=timeout, headers={"User-Agent": f"trustyard/{__version__}"}, follow_redirects=True
        )
        self._auth: str | None = None
        try:
            self._authorize(f"{'http' if plain_http else 'https'}://{ref.registry}/v2/")
        except BaseException:
            self._client.close()
            raise

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- authorization ----------------------------------------------------------------------------------

    def _authorize(self, ping: str) -> None:
        response = self._send("GET", ping, auth=False)
        if response.status_code == 200:
            return
        if response.status_code != 401:
            raise TransportError(f"{ping}: {_registry_message(response)}")
        scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
        if scheme == "basic":
            if self._basic is None:
                raise TransportError(f"{self.ref.registry} wants a login: pass --creds USER:PASSWORD")
            self._auth = self._basic
        elif scheme == "bearer" and params.get("realm"):
            self._auth = "Bearer " + self._token(params)
        else:
            raise TransportError(f"{ping}: a 401 without a challenge this client knows ({scheme or 'none'})")
        check = self._send("GET", ping)
        if check.status_code == 401:
            raise TransportError(f"{self.ref.registry} refused the credentials")

    def _token(self, params: dict[str, str]) -> str:
        query = {"scope": f"repository:{self.ref.repository}:{self._actions}"}
        if params.get("service"):
            query["service"] = params["service"]
        headers = {"Authorization": self._basic} if self._basic else {}
        try:
            response = self._client.get(params["realm"], params=query, headers=headers)
        except httpx.HTTPError as e:
            raise TransportError(f"{params['realm']}: cannot get a token: {e}") from e
        if response.status_code == 401:
            raise TransportError(f"{self.ref.registry} refused the credentials (token endpoint: 401)")
        if response.status_code != 200:
            raise TransportError(f"{params['realm']}: {_registry_message(response)}")
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise TransportError(f"{params['realm']}: the answer holds no token")
        return token

    def _send(
        self,
        method: str,
        url: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        merged = dict(headers or {})
        if auth and self._auth:
            merged["Authorization"] = self._auth
        try:
            return self._client.request(method, url, headers=merged, content=content, params=params)
        except httpx.HTTPError as e:
            raise TransportError(f"{url}: {e}") from e

    # --- push -------------------------------------------------------------------------------------------

    def has_blob(self, digest: Digest) -> bool:
        """Whether the repository already holds the blob."""
        return self._send("HEAD", f"{self.base}/blobs/{digest}").status_code == 200

    def push_blob(self, digest: Digest, path: Path | None = None, data: bytes | None = None) -> None:
        """Upload a file's (or bytes') content as ``digest`` unless the repository has it (monolithic PUT)."""
        if self.has_blob(digest):
            return
        start = self._send("POST", f"{self.base}/blobs/uploads/")
        if start.status_code != 202 or "location" not in start.headers:
            raise TransportError(f"{self.base}/blobs/uploads/: {_registry_message(start)}")
        location = urljoin(f"{self.base}/", start.headers["location"])
        headers = {"Content-Type": "application/octet-stream"}
        if self._auth:
            headers["Authorization"] = self._auth
        try:
            if path is not None:
                headers["Content-Length"] = str(path.stat().st_size)
                with path.open("rb") as f:
                    done = self._client.put(
                        location, params={"digest": str(digest)}, headers=headers, content=_chunks(f)
                    )
            else:
                done = self._client.put(location, params={"digest": str(digest)}, headers=headers, content=data)
        except httpx.HTTPError as e:
            raise TransportError(f"{location}: upload failed: {e}") from e
        if done.status_code != 201:
            raise TransportError(f"upload of {digest}: {_registry_message(done)}")

    def push_manifest(self, manifest: bytes, media_type: str) -> Digest:
        """Put the manifest under the reference's tag; the digest the registry answers (checked against ours)."""
        digest = Digest.of(manifest)
        response = self._send(
            "PUT",
            f"{self.base}/manifests/{self.ref.reference}",
            headers={"Content-Type": media_type},
            content=manifest,
        )
        if response.status_code != 201:
            raise TransportError(f"manifest {self.ref}: {_registry_message(response)}")
        answered = response.headers.get("docker-content-digest")
        if answered and answered != str(digest):
            raise TransportError(f"manifest {self.ref}: the registry stored {answered}, we sent {digest}")
        return digest

    # --- pull -------------------------------------------------------------------------------------------

    def manifest(self, accept: str) -> tuple[bytes, Digest]:
        """The manifest's bytes and digest (checked against the reference when it is a digest)."""
        url = f"{self.base}/manifests/{self.ref.reference}"
        with self._client.stream("GET", url, headers=self._headers({"Accept": accept})) as response:
            if response.status_code != 200:
                raise TransportError(f"{self.ref}: {_registry_message(response)}")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_MANIFEST:
                    raise TransportError(f"{self.ref}: the manifest is larger than {MAX_MANIFEST} bytes")
        digest = Digest.of(body)
        if is_digest(self.ref.reference) and str(digest) != self.ref.reference:
            raise TransportError(f"{self.ref}: the manifest's digest is {digest}")
        return body, digest

    def blob_to(self, digest: Digest, size: int, target: Path) -> None:
        """Stream a blob into ``target``; ``TransportError`` (and no file) unless its digest and size are right."""
        url = f"{self.base}/blobs/{digest}"
        hasher = hashlib.new(digest.algorithm)
        written = 0
        try:
            with self._client.stream("GET", url, headers=self._headers({})) as response, target.open("wb") as out:
                if response.status_code != 200:
                    raise TransportError(f"{url}: {_registry_message(response)}")
                for chunk in response.iter_bytes(_CHUNK):
                    written += len(chunk)
                    if written > size:
                        raise TransportError(f"{url}: more than the {size} bytes the manifest says")
                    hasher.update(chunk)
                    out.write(chunk)
        except httpx.HTTPError as e:
            target.unlink(missing_ok=True)
            raise TransportError(f"{url}: download failed: {e}") from e
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        if written != size or hasher.hexdigest() != digest.hex:
            target.unlink(missing_ok=True)
            raise TransportError(f"{url}: the blob does not match its digest and size ({written} of {size} bytes)")

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        return {**extra, **({"Authorization": self._auth} if self._auth else {})}


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    """A file's content in chunks, for a streamed upload of known length."""
    while chunk := f.read(_CHUNK):
        yield chunk
