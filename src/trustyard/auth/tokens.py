"""The token service of Docker Registry token authentication: ES256 access tokens and refresh tokens.

Implements the JWT of the distribution token spec (spec/auth/jwt.md, spec/auth/token.md, spec/auth/oauth.md):
claims ``iss``, ``sub``, ``aud`` (the service), ``exp``, ``nbf``, ``iat``, ``jti`` and ``access``; header
``kid`` is the libtrust fingerprint of the public key the spec describes (SHA-256 of the DER
SubjectPublicKeyInfo, truncated to 240 bits, base32, twelve groups of four joined by ``:``).

Verification is pinned: algorithm ES256 only, our ``kid`` only, our key only, our issuer, the expected audience,
and ``exp``/``nbf``/``iat`` against an injectable clock with a small leeway. It raises ``AuthenticationError``
and never returns a bool. Refresh tokens are JWTs with a distinct header ``typ`` (an access token is never
accepted as a refresh token, nor the reverse), bound to subject and service, and revoked by a per-subject
generation counter the caller stores and passes in (bump it to revoke every refresh token of a user). Both kinds
may name the account they were issued to (claim ``acc``): an account deleted and created again under the same
name is another account, and must not inherit the old one's tokens (its refresh-token counter starts over).

Not here: who may get which scopes (the caller passes the granted list), HTTP, persisting generations.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustyard.auth.errors import AuthConfigError, AuthenticationError
from trustyard.auth.scopes import InvalidScopeError, Scope, from_access_claim, to_access_claim
from trustyard.config import Settings
from trustyard.privatefile import PrivateFileError, create_private, read_private

__all__ = ["ACCESS_TOKEN_TYPE", "REFRESH_TOKEN_TYPE", "AccessClaims", "RefreshClaims", "TokenService", "key_id"]

ALGORITHM: Final = "ES256"
ACCESS_TOKEN_TYPE: Final = "JWT"  # noqa: S105 - a JOSE "typ", not a secret
REFRESH_TOKEN_TYPE: Final = "trustyard-refresh+jwt"  # noqa: S105 - a JOSE "typ"
_MAX_TOKEN_LENGTH: Final = 16 * 1024
_REQUIRED: Final = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The libtrust fingerprint of ``public_key``, the ``kid`` the distribution token spec asks for."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode("ascii")
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


def _account(claims: dict[str, Any]) -> str | None:
    """The ``acc`` claim, if any."""
    account = claims.get("acc")
    if account is not None and not isinstance(account, str):
        raise AuthenticationError("invalid token claims")
    return account


@dataclass(frozen=True)
class AccessClaims:
    """The verified claims of an access token."""

    issuer: str
    subject: str
    audience: str
    expires_at: float
    not_before: float
    issued_at: float
    jwt_id: str
    access: tuple[Scope, ...]
    account: str | None = None
    """The account the token was issued to, when it was issued with one (claim ``acc``)."""


@dataclass(frozen=True)
class RefreshClaims:
    """The verified claims of a refresh token."""

    issuer: str
    subject: str
    audience: str
    expires_at: float
    issued_at: float
    jwt_id: str
    generation: int
    account: str | None = None
    """The account the token was issued to, when it was issued with one (``issue_refresh(account=...)``)."""


def _load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load the PEM key at ``path`` (refusing loose permissions), or create it with mode 0600."""
    what = "token signing key"
    try:
        data = read_private(path, what)
        if data is None:
            new = ec.generate_private_key(ec.SECP256R1())
            pem = new.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            data = create_private(path, pem, what)  # another process's key, if it won the race
    except PrivateFileError as e:
        raise AuthConfigError(e.message) from e
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise AuthConfigError(f"token signing key {path} is not an unencrypted PEM private key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise AuthConfigError(f"token signing key {path} is not an EC P-256 key (ES256)")
    return key


class TokenService:
    """Issues and verifies the registry's tokens with one ES256 key, loaded or generated on first use."""

    def __init__(
        self,
        *,
        key_path: Path,
        issuer: str,
        service: str,
        lifetime: float = 300,
        refresh_lifetime: float = 30 * 24 * 3600,
        leeway: float = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` returns Unix seconds; tests inject a fake one."""
        self._key_path = key_path
        self.issuer = issuer
        self.service = service
        self.lifetime = lifetime
        self.refresh_lifetime = refresh_lifetime
        self.leeway = leeway
        self._clock = clock
        self._lock = threading.Lock()
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._kid = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenService:
        """The service ``trustyard serve`` uses: key path, issuer, service and lifetimes from settings."""
        return cls(
            key_path=settings.token_signing_key or settings.data_dir / "auth" / "token-signing-key.pem",
            issuer=settings.token_issuer,
            service=settings.token_service,
            lifetime=settings.token_lifetime,
            refresh_lifetime=settings.refresh_token_lifetime,
            leeway=settings.token_leeway,
        )

    def now(self) -> float:
        """The service's clock (Unix seconds), against which token times are checked."""
        return self._clock()

    def _signing_key(self) -> tuple[ec.EllipticCurvePrivateKey, str]:
        with self._lock:
            if self._key is None:
                self._key = _load_or_create_key(self._key_path)
                self._kid = key_id(self._key.public_key())
            return self._key, self._kid

    @property
    def key_id(self) -> str:
        """The ``kid`` of our key (loads or creates the key)."""
        return self._signing_key()[1]

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half of our key, e.g. for a JWKS document."""
        return self._signing_key()[0].public_key()

    def _sign(self, claims: dict[str, Any], typ: str) -> str:
        key, kid = self._signing_key()
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid, "typ": typ})

    def _base_claims(self, subject: str, audience: str, lifetime: float) -> dict[str, Any]:
        now = int(self._clock())
        return {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + int(lifetime),
            "nbf": now,
            "iat": now,
            "jti": secrets.token_urlsafe(18),
        }

    def issue(
        self,
        subject: str,
        access: Sequence[Scope],
        *,
        audience: str | None = None,
        lifetime: float | None = None,
        account: str | None = None,
    ) -> str:
        """A compact JWT granting ``access`` to ``subject`` (``""`` for anonymous) for ``audience``.

        ``account`` (claim ``acc``) names the account behind ``subject``, for the caller to check that the
        subject's name still belongs to it when the token comes back (``AccessClaims.account``).
        """
        claims = self._base_claims(subject, audience or self.service, self.lifetime if lifetime is None else lifetime)
        claims["access"] = to_access_claim(access)
        if account is not None:
            claims["acc"] = account
        return self._sign(claims, ACCESS_TOKEN_TYPE)

    def issue_refresh(
        self, subject: str, generation: int, *, account: str | None = None, lifetime: float | None = None
    ) -> str:
        """A refresh token for ``subject`` on our service, valid while its generation counter is ``generation``.

        ``account`` (claim ``acc``) names the account behind ``subject`` for ``verify_refresh(account=...)``.
        """
        if not subject:
            raise AuthenticationError("refresh tokens are only issued to authenticated users")
        claims = self._base_claims(subject, self.service, self.refresh_lifetime if lifetime is None else lifetime)
        claims["gen"] = generation
        if account is not None:
            claims["acc"] = account
        return self._sign(claims, REFRESH_TOKEN_TYPE)

    def _decode(self, token: str, typ: str, audience: str) -> dict[str, Any]:
        """Signature, algorithm, kid, typ, iss, aud and times checked; the payload, else AuthenticationError."""
        if len(token) > _MAX_TOKEN_LENGTH:
            raise AuthenticationError("token too long")
        key, kid = self._signing_key()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as e:
            raise AuthenticationError("malformed token") from e
        if header.get("alg") != ALGORITHM:
            raise AuthenticationError(f"token algorithm must be {ALGORITHM}")
        if header.get("kid") != kid:
            raise AuthenticationError("token signed by an unknown key")
        if header.get("typ") != typ:
            raise AuthenticationError("wrong kind of token")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key(),
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                options={
                    "require": _REQUIRED,
                    "verify_exp": False,  # checked below against the injectable clock
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidAudienceError as e:
            raise AuthenticationError("token is for another service") from e
        except jwt.InvalidIssuerError as e:
            raise AuthenticationError("token from another issuer") from e
        except jwt.PyJWTError as e:
            raise AuthenticationError("invalid token") from e
        if not isinstance(claims["sub"], str) or not isinstance(claims["jti"], str):
            raise AuthenticationError("invalid token claims")
        now = self._clock()
        times = [claims["exp"], claims["nbf"], claims["iat"]]
        if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in times):
            raise AuthenticationError("invalid token time claims")
        if now >= claims["exp"] + self.leeway:
            raise AuthenticationError("token expired")
        if now < claims["nbf"] - self.leeway or now < claims["iat"] - self.leeway:
            raise AuthenticationError("token not valid yet")
        return claims

    def verify(self, token: str, *, audience: str | None = None) -> AccessClaims:
        """Verify an access token for ``audience`` (default our service); raise AuthenticationError if bad."""
        audience = audience or self.service
        claims = self._decode(token, ACCESS_TOKEN_TYPE, audience)
        try:
            access = from_access_claim(claims.get("access"))
        except InvalidScopeError as e:
            raise AuthenticationError("token has a malformed access claim") from e
        return AccessClaims(
            issuer=claims["iss"],
            subject=claims["sub"],
            audience=audience,
            expires_at=claims["exp"],
            not_before=claims["nbf"],
            issued_at=claims["iat"],
            jwt_id=claims["jti"],
            access=tuple(access),
            account=_account(claims),
        )

    def verify_refresh(
        self,
        token: str,
        *,
        generation: Callable[[str], int | None],
        account: Callable[[str], str | None] | None = None,
    ) -> RefreshClaims:
        """Verify a refresh token; ``generation(subject)`` is the subject's current counter (None: no such user).

        A token whose generation differs from the current one has been revoked. With ``account``, the token must
        also have been issued to ``account(subject)``, the account that has the subject's name now.
        """
        claims = self._decode(token, REFRESH_TOKEN_TYPE, self.service)
        gen = claims.get("gen")
        if not isinstance(gen, int) or isinstance(gen, bool):
            raise AuthenticationError("refresh token has no generation")
        subject: str = claims["sub"]
        current = generation(subject)
        if current is None or current != gen:
            raise AuthenticationError("refresh token revoked")
        issued_to = _account(claims)
        if account is not None and (issued_to is None or issued_to != account(subject)):
            raise AuthenticationError("refresh token revoked")
        return RefreshClaims(
            issuer=claims["iss"],
            subject=subject,
            audience=self.service,
            expires_at=claims["exp"],
            issued_at=claims["iat"],
            jwt_id=claims["jti"],
            generation=gen,
            account=issued_to,
        )
