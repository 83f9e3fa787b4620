"""What trustyard knows about an image: signed or not, scanned or not, its worst finding — asked over its API.

The registry answers ``GET /api/v1/repositories/{name}/verdict/{reference}`` with the image's digest, whether
its tag (or digest) is signed in the trust service and by whom, and its scan summary (``status``, ``worst``,
``counts``). ``VerdictSource`` is the seam: ``TrustyardVerdicts`` asks a real registry over HTTP (Basic
credentials of a robot account or user, a timeout, an optional CA file), ``CachedVerdicts`` keeps answers
for a time to live keyed by repository and reference, so a burst of ``docker run`` of one image asks once.

Every way the answer can fail to arrive — connection refused, timeout, 5xx, credentials refused (401/403), a
body that does not fit the contract — raises ``VerdictUnavailableError``; the rules decide what that means
(``on_unavailable``, default refuse). A 404 is an answer: trustyard has no such image (``None``).
Neither a 404 nor a scan still queued or running is cached, so a refused ``docker run`` works as soon as the
image is pushed and scanned.

Not here: which verdict refuses what (``images.py``).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from trustyard.authz.errors import AuthzError, PolicyFileError
from trustyard.decision_cache import DecisionCache
from trustyard.scan.errors import SourceError
from trustyard.scan.sources.credentials import Credentials

VERDICT_PATH: Final = "/api/v1/repositories/{name}/verdict/{reference}"
FINAL_SCAN_STATES: Final = frozenset({"done", "failed", "none"})
"""Scan states that will not change by themselves; other verdicts are not cached."""


class VerdictUnavailableError(AuthzError):
    """trustyard could not be asked, or its answer could not be read."""


class ScanSummary(BaseModel):
    """The ``scan`` object of a verdict: job state, worst severity among the findings, counts per severity."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: str | None = None
    worst: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)


class ImageVerdict(BaseModel):
    """trustyard's verdict on one repository and reference (the management API's contract)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    repository: str
    reference: str
    digest: str | None = None
    signed: bool = False
    signed_digest: str | None = None
    signers: list[Any] = Field(default_factory=list)
    scan: ScanSummary = Field(default_factory=ScanSummary)
    pull_allowed: bool | None = None
    refusal: str | None = None


class VerdictSource(Protocol):
    """Where verdicts come from; ``None``: trustyard has no such image. Raises only ``VerdictUnavailableError``."""

    def verdict(self, repository: str, reference: str) -> ImageVerdict | None:
        """The verdict on ``repository`` at ``reference`` (a tag or a digest)."""
        ...


def read_credentials(path: Path) -> Credentials:
    """``NAME:SECRET`` from the first line of ``path`` (a robot account's login and secret; keep the file 0600)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise PolicyFileError(f"cannot read trustyard credentials {path}: {getattr(e, 'strerror', None) or e}") from e
    try:
        found = Credentials.parse(lines[0].strip() if lines else "")
    except SourceError as e:
        raise PolicyFileError(f"trustyard credentials {path}: expected one line NAME:SECRET") from e
    if not found.password:
        raise PolicyFileError(f"trustyard credentials {path}: the secret is empty")
    return found


class TrustyardVerdicts:
    """Asks one trustyard registry's management API; thread-safe (one pooled ``httpx.Client``)."""

    def __init__(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        timeout: float = 5.0,
        ca_file: Path | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        auth = (credentials.username, credentials.password) if credentials else None
        try:
            verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        except (OSError, ssl.SSLError) as e:
            raise PolicyFileError(f"cannot read trustyard's CA file {ca_file}: {e}") from e
        self._client = httpx.Client(
            base_url=self.url, auth=auth, timeout=timeout, verify=verify, transport=transport, follow_redirects=False
        )

    def verdict(self, repository: str, reference: str) -> ImageVerdict | None:
        path = VERDICT_PATH.format(name=quote(repository, safe="/"), reference=quote(reference, safe=":"))
        try:
            response = self._client.get(path, headers={"Accept": "application/json"})
        except httpx.HTTPError as e:
            raise VerdictUnavailableError(f"trustyard at {self.url} unreachable: {type(e).__name__}: {e}") from e
        if response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise VerdictUnavailableError(
                f"trustyard at {self.url} refused the plugin's credentials ({response.status_code}): "
                "give its robot account pull access to the repository"
            )
        if response.status_code != 200:
            raise VerdictUnavailableError(f"trustyard at {self.url} answered {response.status_code} for {repository}")
        try:
            return ImageVerdict.model_validate_json(response.content)
        except ValidationError as e:
            raise VerdictUnavailableError(f"trustyard's verdict for {repository}:{reference} is malformed: {e}") from e

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class _Unversioned:
    """No identity store behind these answers: entries only expire by age."""

    version = 0


class CachedVerdicts:
    """A ``VerdictSource`` that remembers verdicts with a finished scan for ``ttl`` seconds.

    A signature published (or removed) after a verdict was cached takes effect when the entry expires: the
    time to live is the longest a stale verdict is used, so keep it short (the default is 30 s).
    """

    def __init__(
        self, source: VerdictSource, *, ttl: float, clock: Callable[[], float] = time.monotonic, size: int = 4096
    ) -> None:
        self._source = source
        self._cache: DecisionCache[tuple[str, str], ImageVerdict] = DecisionCache(
            _Unversioned(), ttl=ttl, max_entries=size, clock=clock
        )

    def verdict(self, repository: str, reference: str) -> ImageVerdict | None:
        hit = self._cache.get((repository, reference))
        if hit is not None:
            return hit
        found = self._source.verdict(repository, reference)  # errors are never cached
        if found is not None and found.scan.status in FINAL_SCAN_STATES:
            self._cache.put((repository, reference), found)
        return found  # an image pushed (or a scan finished) a second later must not wait for the TTL


@dataclass(frozen=True, slots=True)
class TrustyardLink:
    """The policy's ``[trustyard]`` table: where the registry's API is and how the plugin logs in."""

    url: str | None = None
    registry_host: str | None = None
    credentials_file: Path | None = None
    ca_file: Path | None = None
    timeout: float = 5.0
    cache_ttl: float = 30.0

    @property
    def host(self) -> str | None:
        """trustyard's registry host as image names spell it: ``registry_host``, else the URL's ``host:port``."""
        if self.registry_host:
            return self.registry_host
        return urlsplit(self.url).netloc or None if self.url else None

    def source(self) -> VerdictSource | None:
        """The cached verdict source this link describes (``None`` without a URL); reads the credentials file."""
        if not self.url:
            return None
        credentials = read_credentials(self.credentials_file) if self.credentials_file else None
        client = TrustyardVerdicts(self.url, credentials=credentials, timeout=self.timeout, ca_file=self.ca_file)
        return CachedVerdicts(client, ttl=self.cache_ttl) if self.cache_ttl > 0 else client
