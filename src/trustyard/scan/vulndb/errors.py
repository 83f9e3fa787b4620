"""The vulnerability store's exception family: bad advisory data, an unusable store file, a failed download.

Every error names what it was reading (a file, a zip member, a URL) so that a user can find the bad record;
an import that raises one of these has changed nothing (the store's import is one transaction).
"""

from __future__ import annotations

from trustyard.scan.errors import ScanError


class VulnDbError(ScanError):
    """Root of every error the vulnerability store and its sources raise on purpose."""


class SourceFormatError(VulnDbError):
    """Advisory data that is not what its source's format says (bad JSON, a missing field, a wrong type)."""

    def __init__(self, origin: str, reason: str) -> None:
        super().__init__(f"{origin}: {reason}")
        self.origin = origin
        self.reason = reason


class UnrecognizedSourceError(VulnDbError):
    """Data that no known source recognises (pass ``--source`` to say which it is)."""


class StoreError(VulnDbError):
    """The store file cannot be opened or used: not SQLite, a newer schema, locked, damaged."""


class DownloadError(VulnDbError):
    """Advisory data that could not be downloaded (network failure, HTTP error status, too large)."""
