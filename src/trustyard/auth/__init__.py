"""Access control: identities, projects, roles, robot accounts, tokens and audit (issue 3).

Built in stages. Landed so far: the domain model and Harbor's role table, argon2id secrets, the SQL
identity store, Docker token-auth scopes and ES256 tokens, login throttling. Not yet wired into
``trustyard serve`` (the registry still serves without authentication) and no audit log yet.
"""

from trustyard.auth.errors import (
    AuthConfigError,
    AuthenticationError,
    AuthError,
    PermissionDeniedError,
    ThrottledError,
)
from trustyard.auth.model import Action, Membership, Project, Robot, Role, Team, User
from trustyard.auth.passwords import hash_secret, needs_rehash, new_secret, verify_secret
from trustyard.auth.providers import IdentityProvider, LocalIdentityProvider
from trustyard.auth.roles import allows, highest
from trustyard.auth.scopes import InvalidScopeError, Scope, bearer_challenge, intersect, parse_scope, parse_scopes
from trustyard.auth.store import IdentityExistsError, IdentityStore, UnknownIdentityError
from trustyard.auth.throttle import LoginThrottle
from trustyard.auth.tokens import AccessClaims, RefreshClaims, TokenService

__all__ = [
    "AccessClaims",
    "Action",
    "AuthConfigError",
    "AuthError",
    "AuthenticationError",
    "IdentityExistsError",
    "IdentityProvider",
    "IdentityStore",
    "InvalidScopeError",
    "LocalIdentityProvider",
    "LoginThrottle",
    "Membership",
    "PermissionDeniedError",
    "Project",
    "RefreshClaims",
    "Robot",
    "Role",
    "Scope",
    "Team",
    "ThrottledError",
    "TokenService",
    "UnknownIdentityError",
    "User",
    "allows",
    "bearer_challenge",
    "hash_secret",
    "highest",
    "intersect",
    "needs_rehash",
    "new_secret",
    "parse_scope",
    "parse_scopes",
    "verify_secret",
]
