"""A small OCI distribution client over httpx, for assertions the real clients cannot make.

Covers what the interop tests read directly: catalog and tag lists (with `Link` pagination), manifests by
tag or digest, blobs streamed and re-hashed, the upload session endpoints (POST, PATCH with Content-Range,
GET status, PUT ?digest=) and the OCI error body. `check_integrity` walks everything reachable from the
catalog and reports every blob or manifest whose bytes do not hash to its digest.

Not a general client: no auth, no mounts, no referrers. Spec: OCI distribution-spec 1.1, "Pull",
"Push" (chunked uploads) and "Content discovery".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx

MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def oci_error_codes(response: httpx.Response) -> list[str]:
    """The `code`s of an OCI error body (`{"errors": [{"code": ...}]}`); empty if the body is not one."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return []
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    return [str(e.get("code")) for e in body["errors"] if isinstance(e, dict)]


@dataclass(frozen=True)
class Manifest:
    """A manifest as served: bytes, Content-Type and Docker-Content-Digest."""

    body: bytes
    media_type: str
    digest_header: str | None

    @property
    def digest(self) -> str:
        """sha256 of the bytes served."""
        return "sha256:" + hashlib.sha256(self.body).hexdigest()

    def children(self) -> list[str]:
        """Digests of the manifests an index names."""
        body = json.loads(self.body)
        return [str(m["digest"]) for m in body.get("manifests", [])]

    def blobs(self) -> list[str]:
        """Digests of the config and layers an image manifest names (foreign-URL layers skipped)."""
        body = json.loads(self.body)
        descs = [body["config"], *body.get("layers", [])] if "config" in body else []
        return [str(d["digest"]) for d in descs if not d.get("urls")]


@dataclass
class IntegrityReport:
    """What `check_integrity` saw: counts and every problem found."""

    repositories: int = 0
    tags: int = 0
    manifests: int = 0
    blobs: int = 0
    problems: list[str] = field(default_factory=list)


class RegistryClient:
    """httpx over one registry's /v2/ API (plain HTTP; Basic credentials when the registry needs them)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, auth: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, auth=auth)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def absolute(self, location: str) -> str:
        """A Location header (absolute or relative) as an absolute URL."""
        return urljoin(self.base_url + "/", location)

    # -- discovery ---------------------------------------------------------------------------------------
    def _paged(self, path: str, key: str, *, missing_ok: bool = False) -> Iterator[str]:
        url: str | None = path
        while url is not None:
            response = self.http.get(url)
            if missing_ok and response.status_code == 404 and oci_error_codes(response) == ["NAME_UNKNOWN"]:
                return
            response.raise_for_status()
            yield from json.loads(response.content).get(key) or []
            link = response.headers.get("link")
            url = link.split(";")[0].strip().strip("<>") if link else None

    def catalog(self) -> list[str]:
        """All repository names (`GET /v2/_catalog`, following `Link`)."""
        return list(self._paged("/v2/_catalog?n=100", "repositories"))

    def tags(self, repo: str) -> list[str]:
        """All tags of a repository (`GET /v2/<name>/tags/list`, following `Link`).

        A catalogued repository without tags may answer 404 NAME_UNKNOWN (distribution 2.8 does, for a
        repository that holds only blobs or upload sessions): that is an empty list.
        """
        return list(self._paged(f"/v2/{repo}/tags/list?n=100", "tags", missing_ok=True))

    # -- content -----------------------------------------------------------------------------------------
    def get_manifest(self, repo: str, reference: str) -> Manifest:
        """`GET /v2/<name>/manifests/<reference>`; raises for any status but 200."""
        response = self.http.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        response.raise_for_status()
        return Manifest(
            body=response.content,
            media_type=response.headers.get("content-type", ""),
            digest_header=response.headers.get("docker-content-digest"),
        )

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """Docker-Content-Digest of `HEAD /v2/<name>/manifests/<reference>`."""
        response = self.http.head(f"/v2/{repo}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        response.raise_for_status()
        digest: str | None = response.headers.get("docker-content-digest")
        return digest

    def blob_digest(self, repo: str, digest: str) -> tuple[int, str, int]:
        """Stream `GET /v2/<name>/blobs/<digest>`: (status, sha256 of the body, body length)."""
        h = hashlib.sha256()
        size = 0
        with self.http.stream("GET", f"/v2/{repo}/blobs/{digest}", follow_redirects=True) as response:
            for chunk in response.iter_bytes(1 << 20):
                h.update(chunk)
                size += len(chunk)
            return response.status_code, "sha256:" + h.hexdigest(), size

    def get_blob(self, repo: str, digest: str) -> bytes:
        """The whole body of a blob; raises for any status but 200."""
        response = self.http.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
        response.raise_for_status()
        return response.content

    # -- uploads -----------------------------------------------------------------------------------------
    def start_upload(self, repo: str) -> httpx.Response:
        """`POST /v2/<name>/blobs/uploads/` (an empty body opens a session)."""
        return self.http.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})

    def patch_chunk(self, location: str, chunk: bytes, start: int) -> httpx.Response:
        """`PATCH <location>` with one chunk and `Content-Range: <start>-<end>`."""
        return self.http.patch(
            self.absolute(location),
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(chunk) - 1}",
                "Content-Length": str(len(chunk)),
            },
        )

    def upload_status(self, location: str) -> httpx.Response:
        """`GET <location>`: 204 with `Range: 0-<last>` while the session lives."""
        return self.http.get(self.absolute(location))

    def finish_upload(self, location: str, digest: str, chunk: bytes = b"") -> httpx.Response:
        """`PUT <location>?digest=<digest>`, with an optional last chunk."""
        url = httpx.URL(self.absolute(location))
        url = url.copy_merge_params({"digest": digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(chunk))}
        return self.http.put(url, content=chunk, headers=headers)

    # -- integrity ---------------------------------------------------------------------------------------
    def check_integrity(self) -> IntegrityReport:
        """Fetch every manifest and blob reachable from catalog -> tags; record every mismatch or miss."""
        report = IntegrityReport()
        for repo in self.catalog():
            report.repositories += 1
            seen: set[str] = set()
            pending: list[str] = []
            for tag in self.tags(repo):
                report.tags += 1
                pending.append(tag)
            blobs: set[str] = set()
            while pending:
                reference = pending.pop()
                try:
                    manifest = self.get_manifest(repo, reference)
                except httpx.HTTPStatusError as e:
                    report.problems.append(f"{repo}:{reference}: manifest GET {e.response.status_code}")
                    continue
                if manifest.digest in seen:
                    continue
                seen.add(manifest.digest)
                report.manifests += 1
                if manifest.digest_header not in (None, manifest.digest):
                    report.problems.append(
                        f"{repo}:{reference}: Docker-Content-Digest {manifest.digest_header} "
                        f"but body hashes to {manifest.digest}"
                    )
                if reference.startswith("sha256:") and reference != manifest.digest:
                    report.problems.append(f"{repo}@{reference}: body hashes to {manifest.digest}")
                if manifest.media_type in INDEX_TYPES:
                    pending.extend(manifest.children())
                else:
                    blobs.update(manifest.blobs())
            for digest in sorted(blobs):
                report.blobs += 1
                status, actual, size = self.blob_digest(repo, digest)
                if status != 200:
                    report.problems.append(f"{repo}@{digest}: blob GET {status}")
                elif actual != digest:
                    report.problems.append(f"{repo}@{digest}: blob body ({size} B) hashes to {actual}")
        return report
