"""``trustyard db update``: download every configured source from its public location, then import it all at once.

One ``Feed`` per source (a ``typing.Protocol``, listed in ``FEEDS``) knows where its data is published and
how to ask for only what changed:
- OSV: ``<vulndb_osv_url>/<ECOSYSTEM>/all.zip`` for each configured ecosystem (by default every one in
  osv.dev's ``ecosystems.txt`` without a ``:``, whose zips hold their releases' records too);
- NVD: the CVE API 2.0, page by page (``startIndex``/``resultsPerPage`` up to ``totalResults``, the NVD's
  requested pause between requests); after a complete fetch, only CVEs modified since it started
  (``lastModStartDate``/``lastModEndDate``, at most 120 days apart as the API requires, else everything again);
- the Debian tracker's JSON and Alpine's ``<release>/{main,community}.json``.
Static files are fetched with a conditional GET (``If-None-Match``/``If-Modified-Since`` from the validators the
last update stored): an unchanged file costs one request and is not imported again.

Atomic as a whole: everything is downloaded into a staging folder first, and only when every download is
complete are the files imported, in one store transaction (``importer.import_paths``). An HTTP error, a
connection cut mid-body, a body shorter than its ``Content-Length`` or malformed data leaves the store exactly
as it was, validators and NVD state included (they are written after the import commits).

Not here: parsing (the sources), the store's rules (``store``), the command line (``cli/db.py``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import quote

import httpx

from trustyard.config import Settings
from trustyard.scan.vulndb.download import staging_folder
from trustyard.scan.vulndb.errors import DownloadError, SourceFormatError, VulnDbError
from trustyard.scan.vulndb.importer import import_paths
from trustyard.scan.vulndb.store import ImportReport, VulnerabilityStore

NVD_MAX_RANGE: Final = timedelta(days=120)
"""The NVD API refuses lastModStartDate..lastModEndDate ranges longer than this."""
_CHUNK: Final = 1024 * 1024
_RETRY_STATUS: Final = frozenset({429, 503})


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Reporter(Protocol):
    """Where progress goes (a rich progress bar on a terminal, nothing otherwise)."""

    def start(self, url: str, total: int | None) -> None:
        """A download begins; ``total`` is its Content-Length when the server gave one."""
        ...

    def advance(self, size: int) -> None:
        """``size`` more bytes of the current download arrived."""
        ...


class _Silent:
    def start(self, url: str, total: int | None) -> None:
        """Nothing to show."""

    def advance(self, size: int) -> None:
        """Nothing to show."""


@dataclass
class Fetched:
    """What one feed downloaded: files to import (with the location provenance records), state to remember."""

    files: list[tuple[Path, str]] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    not_modified: list[str] = field(default_factory=list)


class Fetcher:
    """HTTP for the feeds: conditional GETs of files and JSON API pages into the staging folder."""

    def __init__(
        self,
        client: httpx.Client,
        store: VulnerabilityStore,
        folder: Path,
        reporter: Reporter,
        *,
        max_bytes: int = 4 * 1024 * 1024 * 1024,
        retries: int = 3,
        retry_delay: float = 6.0,
    ) -> None:
        self.client = client
        self.store = store
        self.folder = folder
        self.reporter = reporter
        self.max_bytes = max_bytes
        self.retries = retries
        self.retry_delay = retry_delay
        self._names = 0

    def _target(self, url: str) -> Path:
        self._names += 1
        suffix = Path(httpx.URL(url).path).suffix
        return self.folder / f"{self._names:05d}{suffix if suffix in ('.zip', '.json') else '.json'}"

    def file(self, url: str, fetched: Fetched) -> None:
        """A static file, unless the validators the store remembers say it has not changed."""
        headers: dict[str, str] = {}
        known = self.store.get_meta(f"http:{url}")
        if known:
            validators = json.loads(known)
            if validators.get("etag"):
                headers["If-None-Match"] = validators["etag"]
            if validators.get("last_modified"):
                headers["If-Modified-Since"] = validators["last_modified"]
        path = self._target(url)
        response_headers = self.get(url, path, headers=headers)
        if response_headers is None:
            fetched.not_modified.append(url)
            return
        fetched.files.append((path, url))
        validators = {"etag": response_headers.get("etag"), "last_modified": response_headers.get("last-modified")}
        if any(validators.values()):
            fetched.meta[f"http:{url}"] = json.dumps(validators)

    def page(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[Path, object]:
        """One API page, saved and parsed (the caller reads its counts)."""
        path = self._target(url)
        self.get(url, path, params=params, headers=headers)
        try:
            return path, json.loads(path.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DownloadError(f"{url}: the answer is not JSON: {e}") from e

    def get(
        self, url: str, path: Path, *, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Headers | None:
        """Stream ``url`` into ``path``; ``None`` on 304; ``DownloadError`` on anything incomplete."""
        for attempt in range(self.retries):
            try:
                with self.client.stream("GET", url, params=params, headers=headers) as response:
                    if response.status_code == 304:
                        return None
                    if response.status_code in _RETRY_STATUS and attempt + 1 < self.retries:
                        time.sleep(self.retry_delay * (attempt + 1))
                        continue
                    if response.status_code != 200:
                        raise DownloadError(f"{response.url}: HTTP {response.status_code} {response.reason_phrase}")
                    self._save(response, path)
                    return response.headers
            except httpx.HTTPError as e:
                path.unlink(missing_ok=True)
                raise DownloadError(f"{url}: download failed: {e}") from e
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _save(self, response: httpx.Response, path: Path) -> None:
        length = response.headers.get("content-length")
        expected = int(length) if length and length.isdigit() else None
        self.reporter.start(str(response.url), expected)
        size = 0
        with path.open("wb") as out:
            for chunk in response.iter_raw(_CHUNK) if _identity(response) else response.iter_bytes(_CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise DownloadError(f"{response.url}: larger than the limit of {self.max_bytes} bytes")
                out.write(chunk)
                self.reporter.advance(len(chunk))
        if expected is not None and _identity(response) and size != expected:
            raise DownloadError(f"{response.url}: got {size} of {expected} bytes")


def _identity(response: httpx.Response) -> bool:
    return str(response.headers.get("content-encoding", "identity")) == "identity"


class Feed(Protocol):
    """One source's public location and how to fetch only what changed since the last update."""

    name: str

    def fetch(self, fetcher: Fetcher, settings: Settings) -> Fetched:
        """Download into the staging folder; raise ``DownloadError`` for anything incomplete."""
        ...


def _base(url: str) -> str:
    return url.rstrip("/")


class OsvFeed:
    """osv.dev's per-ecosystem ``all.zip`` files."""

    name = "osv"

    def ecosystems(self, fetcher: Fetcher, settings: Settings) -> list[str]:
        """The configured ecosystems, else those of ``ecosystems.txt`` (one per line; release-specific ones
        such as ``Debian:12`` are left out: the plain ecosystem's zip holds their records)."""
        if settings.vulndb_osv_ecosystems:
            return list(settings.vulndb_osv_ecosystems)
        url = f"{_base(settings.vulndb_osv_url)}/ecosystems.txt"
        path = fetcher.folder / "ecosystems.txt"
        fetcher.get(url, path)  # the list itself is tiny: never conditional
        names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
        path.unlink()
        return [n for n in names if n and ":" not in n]

    def fetch(self, fetcher: Fetcher, settings: Settings) -> Fetched:
        """Each ecosystem's zip, conditionally."""
        fetched = Fetched()
        for ecosystem in self.ecosystems(fetcher, settings):
            fetcher.file(f"{_base(settings.vulndb_osv_url)}/{quote(ecosystem, safe='')}/all.zip", fetched)
        return fetched


class NvdFeed:
    """The NVD's CVE API 2.0, paginated, incremental after the first complete fetch."""

    name = "nvd"
    STATE: Final = "nvd:fetched_from"

    def fetch(self, fetcher: Fetcher, settings: Settings) -> Fetched:
        """Every page of the (incremental) query."""
        fetched = Fetched()
        started = _now()
        params = {"resultsPerPage": str(settings.vulndb_nvd_page_size)}
        last = fetcher.store.get_meta(self.STATE)
        if last is not None:
            since = datetime.fromisoformat(last)
            if started - since < NVD_MAX_RANGE:
                params["lastModStartDate"] = since.isoformat(timespec="milliseconds")
                params["lastModEndDate"] = started.isoformat(timespec="milliseconds")
        headers = {}
        if settings.vulndb_nvd_api_key is not None:
            headers["apiKey"] = settings.vulndb_nvd_api_key.get_secret_value()
        url = settings.vulndb_nvd_url
        start = 0
        while True:
            path, page = fetcher.page(url, {**params, "startIndex": str(start)}, headers)
            total, count = _page_counts(url, page)
            fetched.files.append((path, url))
            start += count
            if start >= total or count == 0:
                break
            time.sleep(settings.vulndb_nvd_delay)
        fetched.meta[self.STATE] = started.isoformat()
        return fetched


def _page_counts(url: str, page: object) -> tuple[int, int]:
    """(totalResults, CVEs on this page) of an NVD API answer; ``DownloadError`` when it is not one."""
    if not isinstance(page, dict):
        raise DownloadError(f"{url}: not an NVD API answer")
    total, items = page.get("totalResults"), page.get("vulnerabilities")
    if not isinstance(total, int) or not isinstance(items, list):
        raise DownloadError(f"{url}: not an NVD API answer (no totalResults or vulnerabilities)")
    return total, len(items)


class DebianFeed:
    """The Debian Security Tracker's JSON dump."""

    name = "debian"

    def fetch(self, fetcher: Fetcher, settings: Settings) -> Fetched:
        """One file, conditionally."""
        fetched = Fetched()
        fetcher.file(settings.vulndb_debian_url, fetched)
        return fetched


class AlpineFeed:
    """Alpine's secdb: ``main`` and ``community`` of each configured branch."""

    name = "alpine"

    def fetch(self, fetcher: Fetcher, settings: Settings) -> Fetched:
        """Two files per branch, conditionally."""
        fetched = Fetched()
        for release in settings.vulndb_alpine_releases:
            for repository in ("main", "community"):
                fetcher.file(f"{_base(settings.vulndb_alpine_url)}/{quote(release)}/{repository}.json", fetched)
        return fetched


FEEDS: tuple[Feed, ...] = (OsvFeed(), NvdFeed(), DebianFeed(), AlpineFeed())
FEED_NAMES: Final = tuple(f.name for f in FEEDS)


@dataclass
class UpdateResult:
    """What ``db update`` did: per feed the files imported and those not modified, and the import's report."""

    feeds: dict[str, Fetched]
    report: ImportReport | None


def update(
    store: VulnerabilityStore,
    settings: Settings,
    *,
    feeds: Sequence[str] | None = None,
    staging: Path,
    reporter: Reporter | None = None,
    import_total: Callable[[int], None] | None = None,
    import_progress: Callable[[int], None] | None = None,
    client: httpx.Client | None = None,
) -> UpdateResult:
    """Download the named feeds (default: ``vulndb_sources``) and import them in one transaction."""
    names = list(feeds or settings.vulndb_sources)
    unknown = sorted(set(names) - set(FEED_NAMES))
    if unknown:
        raise VulnDbError(f"unknown source {', '.join(unknown)}; known: {', '.join(FEED_NAMES)}")
    chosen = [f for f in FEEDS if f.name in names]
    with staging_folder(staging, "update-") as folder, _client(client) as http:
        fetcher = Fetcher(http, store, folder, reporter or _Silent(), retry_delay=settings.vulndb_nvd_delay)
        fetched = {feed.name: feed.fetch(fetcher, settings) for feed in chosen}
        files = [f for result in fetched.values() for f in result.files]
        try:
            report = import_paths(store, files, total=import_total, progress=import_progress) if files else None
        except SourceFormatError as e:
            raise SourceFormatError(_named_by_url(e.origin, files), e.reason) from e
        checked = _stamp(_now())
        meta = {k: v for result in fetched.values() for k, v in result.meta.items()}
        for name, result in fetched.items():
            meta[f"update:{name}"] = json.dumps(
                {
                    "checked_at": checked,
                    "downloaded": [url for _, url in result.files],
                    "not_modified": result.not_modified,
                }
            )
        store.set_meta(meta)
    return UpdateResult(fetched, report)


def _named_by_url(origin: str, files: Sequence[tuple[Path, str]]) -> str:
    """A bad record's origin with the staging file replaced by the URL it came from (``URL!member``)."""
    for path, url in files:
        if origin == str(path) or origin.startswith(f"{path}!"):
            return url + origin[len(str(path)) :]
    return origin


@contextlib.contextmanager
def _client(client: httpx.Client | None) -> Iterator[httpx.Client]:
    """The caller's client, or one of our own (closed afterwards)."""
    if client is not None:
        yield client
        return
    with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=20.0)) as own:
        yield own


def update_status(store: VulnerabilityStore) -> Iterator[dict[str, object]]:
    """What the last update of each feed did (``db status``): when it checked, what it downloaded."""
    for key, value in sorted(store.meta_with_prefix("update:").items()):
        yield {"source": key.removeprefix("update:"), **json.loads(value)}
