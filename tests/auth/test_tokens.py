"""The token service: key handling, issuing, and verification that refuses every forged or stale token.

Attack tests are named ``test_attack_*``; forged tokens are built by hand (PyJWT, hmac) as an attacker would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trustyard.auth.errors import AuthConfigError, AuthenticationError
from trustyard.auth.scopes import Scope
from trustyard.auth.tokens import REFRESH_TOKEN_TYPE, TokenService, key_id
from trustyard.config import Settings

NOW = 1_800_000_000.0
PULL_PUSH = [Scope.of("repository", "library/nginx", "pull", "push")]


class Clock:
    """A settable clock."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "token.pem"


def make_service(key_path: Path, clock: Clock, **overrides: Any) -> TokenService:
    options: dict[str, Any] = {"issuer": "trustyard-test", "service": "registry.test", "lifetime": 300, "leeway": 10}
    options.update(overrides)
    return TokenService(key_path=key_path, clock=clock, **options)


@pytest.fixture
def service(key_path: Path, clock: Clock) -> TokenService:
    service = make_service(key_path, clock)
    assert service.key_id  # creates the key, so tests can sign by hand with it
    return service


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Our signing key as an attacker who stole it would hold it (the service has created it by now)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def valid_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "trustyard-test",
        "sub": "alice",
        "aud": "registry.test",
        "exp": int(NOW) + 300,
        "nbf": int(NOW),
        "iat": int(NOW),
        "jti": "forged",
        "access": [{"type": "repository", "name": "library/nginx", "actions": ["pull", "push", "delete"]}],
    }
    claims.update(overrides)
    return claims


def split(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        signature,
    )


# --- keys -------------------------------------------------------------------------------------------------------


def test_key_generated_on_first_use_with_mode_0600(key_path: Path, clock: Clock) -> None:
    service = make_service(key_path, clock)
    assert not key_path.exists()
    service.issue("alice", PULL_PUSH)
    assert key_path.is_file()
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert key_path.parent.stat().st_mode & 0o077 == 0


def test_key_reused_by_the_next_service(service: TokenService, key_path: Path, clock: Clock) -> None:
    token = service.issue("alice", PULL_PUSH)
    again = make_service(key_path, clock)
    assert again.key_id == service.key_id
    assert again.verify(token).subject == "alice"


def test_key_id_is_a_libtrust_fingerprint(service: TokenService, key_path: Path) -> None:
    assert re.fullmatch(r"[A-Z2-7]{4}(?::[A-Z2-7]{4}){11}", service.key_id)
    der = (
        private_key(key_path)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    expected = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    assert service.key_id.replace(":", "") == expected
    assert key_id(service.public_key()) == service.key_id


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_attack_key_file_readable_by_others_is_refused(key_path: Path, clock: Clock, mode: int) -> None:
    make_service(key_path, clock).issue("alice", PULL_PUSH)
    os.chmod(key_path, mode)
    with pytest.raises(AuthConfigError, match="chmod 600"):
        make_service(key_path, clock).issue("alice", PULL_PUSH)


def test_key_file_not_a_key_is_refused(key_path: Path, clock: Clock) -> None:
    key_path.parent.mkdir()
    key_path.write_bytes(b"not a key")
    key_path.chmod(0o600)
    with pytest.raises(AuthConfigError, match="PEM"):
        make_service(key_path, clock).issue("alice", PULL_PUSH)


def test_key_file_with_an_rsa_key_is_refused(key_path: Path, clock: Clock) -> None:
    key_path.parent.mkdir()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    with pytest.raises(AuthConfigError, match="P-256"):
        make_service(key_path, clock).issue("alice", PULL_PUSH)


def test_key_path_that_is_a_directory_is_refused(key_path: Path, clock: Clock) -> None:
    key_path.mkdir(parents=True)
    with pytest.raises(AuthConfigError):
        make_service(key_path, clock).issue("alice", PULL_PUSH)


def test_from_settings_defaults_the_key_under_data_dir(tmp_path: Path) -> None:
    service = TokenService.from_settings(Settings(data_dir=tmp_path, token_service="reg", token_issuer="iss"))
    token = service.issue("alice", PULL_PUSH)
    assert (tmp_path / "auth" / "token-signing-key.pem").is_file()
    claims = service.verify(token)
    assert (claims.issuer, claims.audience) == ("iss", "reg")


# --- issue and verify --------------------------------------------------------------------------------------------


def test_issue_and_verify(service: TokenService) -> None:
    token = service.issue("alice", PULL_PUSH)
    header, payload, _ = split(token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": service.key_id}
    assert set(payload) == {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"}
    assert payload["access"] == [{"type": "repository", "name": "library/nginx", "actions": ["pull", "push"]}]
    claims = service.verify(token)
    assert claims.subject == "alice"
    assert claims.issuer == "trustyard-test"
    assert claims.audience == "registry.test"
    assert (claims.issued_at, claims.not_before, claims.expires_at) == (NOW, NOW, NOW + 300)
    assert claims.access == tuple(PULL_PUSH)
    assert claims.jwt_id


def test_anonymous_token_with_no_access(service: TokenService) -> None:
    claims = service.verify(service.issue("", []))
    assert (claims.subject, claims.access) == ("", ())


def test_jwt_ids_are_unique(service: TokenService) -> None:
    assert len({service.verify(service.issue("alice", [])).jwt_id for _ in range(20)}) == 20


def test_leeway_accepts_small_clock_skew(service: TokenService, clock: Clock) -> None:
    token = service.issue("alice", PULL_PUSH)
    clock.now = NOW + 300 + 9
    service.verify(token)
    clock.now = NOW - 9
    service.verify(token)


def test_attack_expired_token(service: TokenService, clock: Clock) -> None:
    token = service.issue("alice", PULL_PUSH)
    clock.now = NOW + 300 + 10
    with pytest.raises(AuthenticationError, match="expired"):
        service.verify(token)


def test_attack_not_yet_valid_token(service: TokenService, clock: Clock) -> None:
    clock.now = NOW + 3600
    token = service.issue("alice", PULL_PUSH)
    clock.now = NOW
    with pytest.raises(AuthenticationError, match="not valid yet"):
        service.verify(token)


def test_attack_token_for_another_service(service: TokenService) -> None:
    token = service.issue("alice", PULL_PUSH, audience="other-registry")
    with pytest.raises(AuthenticationError, match="another service"):
        service.verify(token)


def test_attack_our_token_presented_to_another_audience(service: TokenService) -> None:
    token = service.issue("alice", PULL_PUSH)
    with pytest.raises(AuthenticationError, match="another service"):
        service.verify(token, audience="other-registry")


def test_attack_wrong_issuer(key_path: Path, clock: Clock, service: TokenService) -> None:
    token = make_service(key_path, clock, issuer="evil").issue("alice", PULL_PUSH)
    with pytest.raises(AuthenticationError, match="another issuer"):
        service.verify(token)


def test_attack_alg_none(service: TokenService) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": service.key_id}
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(valid_claims()).encode())}."
    with pytest.raises(AuthenticationError, match="ES256"):
        service.verify(token)


def test_attack_alg_none_via_pyjwt(service: TokenService) -> None:
    token = jwt.encode(valid_claims(), "", algorithm="none", headers={"kid": service.key_id})
    with pytest.raises(AuthenticationError):
        service.verify(token)


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
def test_attack_hs256_signed_with_the_public_key(service: TokenService, encoding: serialization.Encoding) -> None:
    public = service.public_key().public_bytes(encoding, serialization.PublicFormat.SubjectPublicKeyInfo)
    for alg in ("HS256", "ES256"):  # the second lies about its algorithm
        header = {"alg": alg, "typ": "JWT", "kid": service.key_id}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(valid_claims()).encode())}"
        signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
        with pytest.raises(AuthenticationError):
            service.verify(f"{signing_input}.{b64(signature)}")


def test_attack_tampered_payload(service: TokenService) -> None:
    token = service.issue("alice", [Scope.of("repository", "library/nginx", "pull")])
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["access"][0]["actions"] = ["pull", "push", "delete"]
    with pytest.raises(AuthenticationError, match="invalid token"):
        service.verify(f"{header}.{b64(json.dumps(claims).encode())}.{signature}")


def test_attack_tampered_subject(service: TokenService) -> None:
    token = service.issue("alice", PULL_PUSH)
    header, _, signature = token.split(".")
    with pytest.raises(AuthenticationError):
        service.verify(f"{header}.{b64(json.dumps(valid_claims(sub='admin')).encode())}.{signature}")


def test_attack_foreign_key(tmp_path: Path, clock: Clock, service: TokenService) -> None:
    foreign = make_service(tmp_path / "foreign.pem", clock)
    with pytest.raises(AuthenticationError, match="unknown key"):
        service.verify(foreign.issue("alice", PULL_PUSH))


def test_attack_foreign_key_claiming_our_kid(tmp_path: Path, service: TokenService) -> None:
    foreign = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(valid_claims(), foreign, algorithm="ES256", headers={"kid": service.key_id})
    with pytest.raises(AuthenticationError, match="invalid token"):
        service.verify(token)


def test_attack_missing_kid(service: TokenService, key_path: Path) -> None:
    token = jwt.encode(valid_claims(), private_key(key_path), algorithm="ES256")
    with pytest.raises(AuthenticationError, match="unknown key"):
        service.verify(token)


@pytest.mark.parametrize("missing", ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"])
def test_token_missing_a_claim_is_refused(service: TokenService, key_path: Path, missing: str) -> None:
    claims = valid_claims()
    del claims[missing]
    token = jwt.encode(claims, private_key(key_path), algorithm="ES256", headers={"kid": service.key_id})
    with pytest.raises(AuthenticationError):
        service.verify(token)


@pytest.mark.parametrize(
    "overrides",
    [
        {"access": "repository:a:pull"},
        {"access": [{"type": "repository", "name": "../etc", "actions": ["pull"]}]},
        {"sub": 7},
        {"exp": "tomorrow"},
        {"nbf": True},
    ],
    ids=["access-string", "access-bad-name", "sub-int", "exp-string", "nbf-bool"],
)
def test_token_with_malformed_claims_is_refused(
    service: TokenService, key_path: Path, overrides: dict[str, Any]
) -> None:
    token = jwt.encode(
        valid_claims(**overrides), private_key(key_path), algorithm="ES256", headers={"kid": service.key_id}
    )
    with pytest.raises(AuthenticationError):
        service.verify(token)


def test_hand_signed_valid_token_is_accepted(service: TokenService, key_path: Path) -> None:
    """The control for the forged-token tests: the same construction with our key verifies."""
    token = jwt.encode(valid_claims(), private_key(key_path), algorithm="ES256", headers={"kid": service.key_id})
    assert service.verify(token).subject == "alice"


@pytest.mark.parametrize("token", ["", "x", "a.b.c", "a.b", "...", "e30.e30.", "x" * 20000])
def test_garbage_is_refused(service: TokenService, token: str) -> None:
    with pytest.raises(AuthenticationError):
        service.verify(token)


# --- refresh tokens ----------------------------------------------------------------------------------------------


def test_refresh_token_round_trip(service: TokenService) -> None:
    token = service.issue_refresh("alice", 3)
    header, payload, _ = split(token)
    assert header["typ"] == REFRESH_TOKEN_TYPE
    assert "access" not in payload
    claims = service.verify_refresh(token, generation={"alice": 3}.get)
    assert (claims.subject, claims.generation, claims.audience) == ("alice", 3, "registry.test")
    assert claims.expires_at == NOW + 30 * 24 * 3600


def test_refresh_token_revoked_by_generation_bump(service: TokenService) -> None:
    token = service.issue_refresh("alice", 3)
    with pytest.raises(AuthenticationError, match="revoked"):
        service.verify_refresh(token, generation={"alice": 4}.get)


def test_attack_deleted_users_refresh_token(service: TokenService) -> None:
    token = service.issue_refresh("alice", 3)
    no_users: dict[str, int] = {}
    with pytest.raises(AuthenticationError, match="revoked"):
        service.verify_refresh(token, generation=no_users.get)


def test_attack_access_token_used_as_refresh_token(service: TokenService) -> None:
    with pytest.raises(AuthenticationError, match="wrong kind"):
        service.verify_refresh(service.issue("alice", PULL_PUSH), generation={"alice": 0}.get)


def test_attack_refresh_token_used_as_access_token(service: TokenService) -> None:
    with pytest.raises(AuthenticationError, match="wrong kind"):
        service.verify(service.issue_refresh("alice", 0))


def test_attack_refresh_token_for_another_service(key_path: Path, clock: Clock, service: TokenService) -> None:
    token = make_service(key_path, clock, service="other-registry").issue_refresh("alice", 0)
    with pytest.raises(AuthenticationError, match="another service"):
        service.verify_refresh(token, generation={"alice": 0}.get)


def test_attack_expired_refresh_token(service: TokenService, clock: Clock) -> None:
    token = service.issue_refresh("alice", 0, lifetime=60)
    clock.now = NOW + 71
    with pytest.raises(AuthenticationError, match="expired"):
        service.verify_refresh(token, generation={"alice": 0}.get)


def test_attack_refresh_token_without_generation(service: TokenService, key_path: Path) -> None:
    token = jwt.encode(
        valid_claims(),
        private_key(key_path),
        algorithm="ES256",
        headers={"kid": service.key_id, "typ": REFRESH_TOKEN_TYPE},
    )
    with pytest.raises(AuthenticationError, match="generation"):
        service.verify_refresh(token, generation={"alice": 0}.get)


def test_no_refresh_token_for_anonymous(service: TokenService) -> None:
    with pytest.raises(AuthenticationError):
        service.issue_refresh("", 0)
