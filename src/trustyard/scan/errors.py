"""The scanner's exception family: everything the image analysis raises on purpose is a ``ScanError``.

Hostile or broken input (a malformed tar, a decompression bomb, a corrupt package database) must end in one
of these with a message a user can act on, never in a library's own exception or a traceback. Each parser of
untrusted bytes has its own subclass so that tests can check "malformed input raises this module's error".
"""

from __future__ import annotations

from trustyard.errors import TrustyardError


class ScanError(TrustyardError):
    """Root of every error the scanner raises on purpose."""


class LayerError(ScanError):
    """A layer that cannot be read: not a tar, a corrupt compressed stream, a malformed header."""


class LayerLimitError(LayerError):
    """A layer that exceeds a configured limit (entry size, total size, entry count, path length)."""


class DecompressionBombError(LayerLimitError):
    """A compressed layer that expands far more than real layers do: refused before it fills memory or disk."""


class SourceError(ScanError):
    """An image source that cannot be opened or is not what its name says (bad layout, missing blob, ...)."""


class PackageDatabaseError(ScanError):
    """A package database or metadata file that cannot be parsed; each parser raises its own subclass."""


class SbomError(ScanError):
    """A bill of materials the format's own library refuses to build or finds invalid (a bug, reported plainly)."""
