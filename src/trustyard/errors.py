"""The root of every exception trustyard raises on purpose.

Each part has its own family below this root (``RegistryError``, ``StorageError``, ...); the edges (HTTP,
CLI) map a family to their protocol's error. Anything that is not a ``TrustyardError`` is a bug.
"""

from __future__ import annotations


class TrustyardError(Exception):
    """A failure with a message meant for the user, never a traceback."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def diagnostics(self) -> str:
        """A longer explanation for the CLI: what happened and what to do; defaults to the message."""
        return self.message
