"""The authorization plugin's exception family.

``AuthzError`` is the root; ``RequestError`` means "this request cannot be judged" and always becomes a
refusal (fail closed), never an allow; ``PolicyFileError`` is a policy file that cannot be loaded, which stops
``trustyard authz serve`` before it answers anything.
"""

from __future__ import annotations

from trustyard.errors import TrustyardError


class AuthzError(TrustyardError):
    """Root of the authorization plugin's errors."""


class RequestError(AuthzError):
    """A request from the engine that cannot be read or judged: the plugin refuses it with this message."""


class PolicyFileError(AuthzError):
    """A policy file that is not valid: unreadable, not TOML, unknown keys or rule ids."""
