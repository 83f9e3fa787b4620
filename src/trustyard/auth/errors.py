"""The access-control exception family (issue 3), mapped at the edges: HTTP 401/403/429, CLI exit 1.

Messages never contain a secret (password, token, robot secret), whatever the caller passed in.
"""

from __future__ import annotations

from trustyard.errors import TrustyardError


class AuthError(TrustyardError):
    """Root of every access-control failure."""


class AuthenticationError(AuthError):
    """Who the caller is could not be established (bad password, bad or expired token, disabled account)."""


class PermissionDeniedError(AuthError):
    """The caller is known but may not do this."""


class ThrottledError(AuthError):
    """Too many failed logins; ``retry_after`` says when to try again (seconds)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthConfigError(AuthError):
    """Keys or settings of the access-control part are missing or unusable."""
