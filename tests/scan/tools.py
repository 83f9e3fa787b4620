"""Command-line tools the scanner's tests drive (rpm, db5.3_load, cargo, objcopy, skopeo, docker-registry).

A missing tool fails the test with the Debian package that provides it (scripts/test installs them all):
tests never skip.
"""

from __future__ import annotations

import shutil

import pytest


def need(tool: str, package: str) -> str:
    """The path of ``tool``; fails the test naming ``package`` when it is not installed."""
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is not installed: apt-get install {package} (scripts/test installs it)")
    return found
