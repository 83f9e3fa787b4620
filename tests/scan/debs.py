"""Real Debian packages for the scanner's tests: downloaded by name with ``apt-get download``, kept in a cache.

The cache is ``$TRUSTYARD_TEST_CACHE/debs`` (default ``~/.cache/trustyard-tests/debs``): a rerun finds the
``.deb`` files there and downloads nothing. What a test expects is read from the package itself
(``dpkg-deb -f``), never written into the test, so a security update of a package changes nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("TRUSTYARD_TEST_CACHE", Path.home() / ".cache" / "trustyard-tests")) / "debs"
_REPACK = re.compile(r"[+.~](?:dfsg|ds|repack)[0-9]*$")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is needed to fetch Debian packages for this test: apt-get install {name}")
    return found


def deb(package: str) -> Path:
    """The cached ``.deb`` of ``package``, downloaded into the cache first if it is not there."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = sorted(CACHE.glob(f"{package}_*.deb"))
    if not found:
        done = subprocess.run(
            [_tool("apt-get"), "download", package], cwd=CACHE, capture_output=True, text=True, check=False
        )
        found = sorted(CACHE.glob(f"{package}_*.deb"))
        if done.returncode != 0 or not found:
            raise RuntimeError(f"apt-get download {package} failed (apt-get update first?): {done.stderr.strip()}")
    return found[-1]


def version(package_file: Path) -> str:
    """The package's Debian version, from its control file."""
    out = subprocess.run(
        [_tool("dpkg-deb"), "-f", str(package_file), "Version"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def upstream(debian_version: str) -> str:
    """The upstream version of a Debian version: no epoch, no revision, no repack suffix (``+dfsg``)."""
    bare = debian_version.partition(":")[2] if ":" in debian_version else debian_version
    bare = bare.rpartition("-")[0] if "-" in bare else bare
    return _REPACK.sub("", bare)


def extract(package_file: Path, root: Path) -> None:
    """Unpack the package's files into ``root`` (no maintainer scripts, no dpkg database)."""
    subprocess.run([_tool("dpkg-deb"), "-x", str(package_file), str(root)], check=True)
