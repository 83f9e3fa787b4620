"""The access-control part, assembled: one object the server, the management API and the CLI share.

``AccessControl.from_settings`` builds the identity store, the permission policy, the token service, the
login throttle, the audit log and the authenticator over one database, and ``bootstrap`` creates the first
administrator. Nothing here speaks HTTP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trustyard.auth.audit import AuditEvent, AuditLog
from trustyard.auth.authenticator import Authenticator
from trustyard.auth.policy import AccessPolicy
from trustyard.auth.providers import LocalIdentityProvider
from trustyard.auth.store import IdentityStore
from trustyard.auth.throttle import LoginThrottle
from trustyard.auth.tokens import TokenService
from trustyard.config import Settings
from trustyard.db.engine import Database

__all__ = ["AccessControl"]

log = logging.getLogger("trustyard.auth")


@dataclass(frozen=True)
class AccessControl:
    """Identities, permissions, tokens, throttling and audit over one database."""

    settings: Settings
    store: IdentityStore
    policy: AccessPolicy
    tokens: TokenService
    throttle: LoginThrottle
    audit: AuditLog
    authenticator: Authenticator

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> AccessControl:
        """Everything wired from ``settings`` (the token key is loaded or created on first use)."""
        store = IdentityStore(db)
        policy = AccessPolicy(
            store,
            anonymous_push=settings.insecure_anonymous_push,
            users_create_projects=settings.users_create_projects,
            cache_ttl=settings.auth_cache_ttl,
        )
        tokens = TokenService.from_settings(settings)
        throttle = LoginThrottle.from_settings(settings)
        audit = AuditLog(db, flush_interval=settings.audit_flush_interval)
        authenticator = Authenticator(
            store=store,
            provider=LocalIdentityProvider(store),
            policy=policy,
            tokens=tokens,
            throttle=throttle,
            audit=audit,
            cache_ttl=settings.auth_cache_ttl,
        )
        return cls(settings, store, policy, tokens, throttle, audit, authenticator)

    def bootstrap(self) -> str | None:
        """Create ``admin`` on first start; the generated password to show once, if one was generated."""
        given = self.settings.admin_password
        return self.store.bootstrap_admin(None if given is None else given.get_secret_value())

    def warn_if_insecure(self) -> None:
        """Say loudly, at every start, that the registry is open to anyone."""
        if self.settings.insecure_anonymous_push:
            log.warning(
                "INSECURE: insecure_anonymous_push is on: anyone, without credentials, may push, pull and delete"
                " every repository"
            )
            self.audit.record(AuditEvent("", "config.insecure_anonymous_push", detail={"enabled": True}))
