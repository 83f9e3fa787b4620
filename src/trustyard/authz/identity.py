"""Who is asking: the engine's user name checked against the TLS client certificate, and the user's groups.

dockerd only knows users when it listens with ``--tlsverify``: it then sends ``User`` = the common name of the
client certificate's subject, ``UserAuthNMethod`` = ``TLS`` and the whole verified chain, leaf first, in
``RequestPeerCertificates``: each one base64 of its PEM text (``authorization.PeerCertificate.MarshalJSON``
PEM-encodes before Go's ``[]byte`` base64; seen from dockerd 20.10 in test_dockerd_users.py). DER is read too.
On a unix socket every caller is the anonymous user ``""``.

Groups come from the policy file's ``[groups]`` table (group -> user names), and — only when the policy says
``[identity] groups_from_ou = true`` — from the organizational-unit (OU) values of the certificate's subject.
The policy file is the default because it keeps who-may-do-what in one reviewed file; OU groups suit a site
whose CA already encodes teams in its certificates, and then whoever issues certificates also grants groups.

The user name is the certificate's CN, never trusted alone: when certificates are present, ``User`` must be the
leaf's CN (dockerd derives both from the same certificate, so a mismatch means the message was not built by
dockerd from this connection) and is refused otherwise. Certificates are not re-verified here: dockerd has
verified the chain against its ``--tlscacert`` before it calls the plugin.

Not here: what users and groups may do (``policy.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from trustyard.authz.errors import RequestError


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller of the engine: ``name`` (``""``: anonymous) and the groups it belongs to."""

    name: str
    groups: frozenset[str] = frozenset()
    authn: str = ""

    def is_any(self, users: frozenset[str], groups: frozenset[str]) -> bool:
        """True when this caller is one of ``users`` or in one of ``groups``; the anonymous caller never is."""
        return bool(self.name) and (self.name in users or bool(self.groups & groups))


def identify(
    user: str,
    authn: str,
    certificates: tuple[bytes, ...],
    groups: Mapping[str, frozenset[str]],
    *,
    groups_from_ou: bool = False,
) -> Principal:
    """The principal of one request; ``RequestError`` when the certificate is unreadable or names someone else."""
    ou: frozenset[str] = frozenset()
    if certificates:
        leaf = _certificate(certificates[0])
        common_names = [str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if common_names[:1] != [user]:
            raise RequestError(
                f"the engine's user {user!r} is not the client certificate's common name "
                f"{common_names[0] if common_names else '(none)'!r}"
            )
        if groups_from_ou:
            ou = frozenset(str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME))
    member_of = frozenset(group for group, users in groups.items() if user and user in users)
    return Principal(user, member_of | (ou if user else frozenset()), authn)


def _certificate(data: bytes) -> x509.Certificate:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as e:
        raise RequestError("the client certificate the engine passed is not an X.509 certificate") from e
