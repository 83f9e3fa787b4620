"""Fetch advisory data over HTTP(S) to a local file, for ``trustyard db import URL`` (and later ``db update``).

Streams the body to a temporary file in the given folder (constant memory, whatever the size), refuses more
than ``max_bytes``, and gives the file the server's ``Last-Modified`` time, which the importer uses as the
data's age when the records carry none (Alpine's secdb, the Debian tracker). Any failure is a
``DownloadError`` naming the URL; a partial file is removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from trustyard.scan.vulndb.errors import DownloadError

DEFAULT_MAX_BYTES = 4 * 1024 * 1024 * 1024
_CHUNK = 1024 * 1024


@contextlib.contextmanager
def staging_folder(parent: Path, prefix: str = "download-") -> Iterator[Path]:
    """A fresh folder under ``parent`` (same file system as the store: renames are atomic), removed afterwards
    whatever happens, so no partial download or unpacked file outlives a failure."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def is_url(text: str) -> bool:
    """Whether an import argument is an HTTP(S) URL rather than a path."""
    return text.startswith(("http://", "https://"))


def download(url: str, folder: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 60.0) -> Path:
    """Download ``url`` into a new file under ``folder``; the caller deletes it when done."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(httpx.URL(url).path).suffix if is_url(url) else ""
    fd, name = tempfile.mkstemp(prefix="download-", suffix=suffix if suffix in (".zip", ".json") else "", dir=folder)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
            size = 0
            for chunk in response.iter_bytes(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"{url}: larger than the limit of {max_bytes} bytes")
                out.write(chunk)
            last_modified = response.headers.get("last-modified")
        if last_modified:
            try:
                stamp = parsedate_to_datetime(last_modified).timestamp()
            except (TypeError, ValueError):
                pass  # a malformed header: the download time stands in
            else:
                os.utime(path, (stamp, stamp))
    except httpx.HTTPError as e:
        path.unlink(missing_ok=True)
        raise DownloadError(f"{url}: download failed: {e}") from e
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
