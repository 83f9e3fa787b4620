"""Where the shared advisory data is: ``$TRUSTYARD_SHARED_DIR/vulndb``, by default ``../shared/vulndb``.

The data is real (osv.dev-format zips, Alpine secdb, a Debian tracker excerpt) and read-only; its README
says what each file holds and ``fixtures/expectations.json`` which packages it must find vulnerable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

SHARED_VULNDB = Path(os.environ.get("TRUSTYARD_SHARED_DIR", Path(__file__).resolve().parents[4] / "shared")) / "vulndb"
OSV = SHARED_VULNDB / "osv"
ALPINE = SHARED_VULNDB / "alpine-secdb"
DEBIAN_EXCERPT = SHARED_VULNDB / "debian-security-tracker" / "tracker-json-excerpt.json"


@pytest.fixture
def shared_vulndb_present() -> None:
    """Fails (never skips) with the path when the shared data is missing; a plugin of tests/conftest.py."""
    assert SHARED_VULNDB.is_dir(), f"shared advisory data not at {SHARED_VULNDB}: set TRUSTYARD_SHARED_DIR"


needs_shared = pytest.mark.usefixtures("shared_vulndb_present")
"""Tests that read the shared data fail with the path when it is missing: they never skip."""


def expectations() -> dict[str, Any]:
    """``fixtures/expectations.json``: known-vulnerable packages and their advisory ids."""
    data: dict[str, Any] = json.loads((SHARED_VULNDB / "fixtures" / "expectations.json").read_text())
    return data
