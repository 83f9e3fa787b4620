"""Users and groups: the engine's ``User`` checked against the client certificate, groups from the policy or OU.

Certificates are made by the same CA helper the end-to-end test uses, and passed as dockerd passes them
(base64 of PEM text, leaf first).
"""

from __future__ import annotations

import base64
import tomllib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fixtures.dockerd import DockerTLS
from trustyard.authz import Authorizer, Policy

from .test_decisions import create, message

PRIVILEGED = create({"Privileged": True})
URI = "/v1.41/containers/create"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> DockerTLS:
    return DockerTLS(tmp_path_factory.mktemp("identity-tls"))


def _chain(folder: Path, *, der: bool = False) -> list[str]:
    pem = (folder / "cert.pem").read_bytes()
    data = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER) if der else pem
    return [base64.b64encode(data).decode()]


def _as(user: str, chain: list[str], body: object = PRIVILEGED) -> bytes:
    return message(URI, body, user=user, UserAuthNMethod="TLS", RequestPeerCertificates=chain)


def _policy(extra: str = "") -> Policy:
    text = '[groups]\nops = ["alice"]\n[[exception]]\ngroups = ["ops"]\nrules = ["*"]\n' + extra
    return Policy.from_dict(tomllib.loads(text), source="test")


def test_user_in_a_policy_group_is_excepted(tls: DockerTLS) -> None:
    alice = tls.issue("alice", common_name="alice")
    authz = Authorizer(_policy())
    for chain in (_chain(alice), _chain(alice, der=True)):
        decision = authz.request(_as("alice", chain))
        assert decision.allow and "5.5" in decision.excepted


def test_user_not_matching_the_certificate_is_refused(tls: DockerTLS) -> None:
    """A message claiming alice with bob's certificate was not built by dockerd from that connection."""
    bob = tls.issue("bob", common_name="bob")
    decision = Authorizer(_policy()).request(_as("alice", _chain(bob), create()))
    assert not decision.allow and "is not the client certificate's common name 'bob'" in decision.msg


def test_unreadable_certificate_is_refused() -> None:
    garbage = [base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnot one\n").decode()]
    decision = Authorizer(_policy()).request(_as("alice", garbage, create()))
    assert not decision.allow and "not an X.509 certificate" in decision.msg


def test_ou_groups_only_when_the_policy_trusts_them(tls: DockerTLS) -> None:
    carol = tls.issue("carol", common_name="carol", units=["ops", "dev"])
    assert not Authorizer(_policy()).request(_as("carol", _chain(carol))).allow
    trusting = Authorizer(_policy("[identity]\ngroups_from_ou = true\n"))
    decision = trusting.request(_as("carol", _chain(carol)))
    assert decision.allow and "5.5" in decision.excepted


def test_endpoint_denies_by_group_and_exempt_group() -> None:
    policy = Policy.from_dict(
        tomllib.loads(
            '[groups]\nops = ["alice"]\ndev = ["dan"]\n'
            '[[deny]]\npath = "/volumes/create"\ngroups = ["dev"]\n'
            '[[deny]]\npath = "/plugins/*"\nexempt_groups = ["ops"]\n'
        )
    )
    authz = Authorizer(policy)
    assert not authz.request(message("/v1.41/volumes/create", {}, user="dan")).allow
    assert authz.request(message("/v1.41/volumes/create", {}, user="alice")).allow
    assert authz.request(message("/v1.41/plugins/pull", {}, user="alice")).allow
    assert not authz.request(message("/v1.41/plugins/pull", {}, user="dan")).allow
    assert not authz.request(message("/v1.41/plugins/pull", {}, user="")).allow
