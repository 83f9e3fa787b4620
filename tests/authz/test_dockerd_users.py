"""End to end: users from TLS client certificates, with a real dockerd listening on 127.0.0.1 with ``--tlsverify``.

A CA made in the test signs dockerd's server certificate and two client certificates, ``alice`` (in the
policy's ``operators`` group) and ``bob`` (OU ``operators`` in his certificate, which this policy does not
trust for groups). The policy lets operators run privileged containers; the real docker CLI connects as each
user over TCP, and dockerd passes the certificate's CN as ``User`` and the chain in
``RequestPeerCertificates``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.dockerd import Dockerd, DockerTLS

pytestmark = pytest.mark.interop
IMAGE = "users/alpine:3.20"
PRIVILEGED_RULES = '["5.4", "5.5", "5.22", "C.5.3.1", "C.5.3.2", "C.5.3.3", "C.5.3.4"]'
POLICY = f"""\
version = 1

[groups]
operators = ["alice"]

[[exception]]
groups = ["operators"]
rules = {PRIVILEGED_RULES}
reason = "operators debug the host"
"""


class Users:
    def __init__(self, engine: Dockerd, tls: DockerTLS) -> None:
        self.engine = engine
        self.alice = tls.issue("alice", common_name="alice")
        self.bob = tls.issue("bob", common_name="bob", units=["operators"])


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Users]:
    workdir = tmp_path_factory.mktemp("authz-users")
    policy = workdir / "policy.toml"
    policy.write_text(POLICY)
    tls = DockerTLS(workdir / "tls")
    engine = Dockerd(workdir, with_plugin=True, policy=policy, tls=tls)
    try:
        engine.start()
        engine.import_alpine(IMAGE)
        yield Users(engine, tls)
    finally:
        engine.stop()


def _create_records(engine: Dockerd, user: str) -> list[dict[str, object]]:
    assert engine.plugin is not None
    return [r for r in engine.plugin.audit() if r["user"] == user and r["endpoint"] == "POST /containers/create"]


def test_operator_may_run_privileged(users: Users) -> None:
    created = users.engine.as_user(users.alice, "create", "--privileged", "--name", "alice-priv", IMAGE, "true")
    assert created.returncode == 0, created.stderr
    record = _create_records(users.engine, "alice")[-1]
    assert record["allow"] and record["authn"] == "TLS" and record["groups"] == ["operators"], record
    assert "5.5" in record["excepted"]  # type: ignore[operator]


def test_other_user_is_refused_privileged_and_allowed_plain(users: Users) -> None:
    refused = users.engine.as_user(users.bob, "create", "--privileged", IMAGE, "true")
    assert refused.returncode != 0
    assert "authorization denied by plugin trustyard" in refused.stderr and "[5.5]" in refused.stderr, refused.stderr
    plain = users.engine.as_user(users.bob, "create", "--name", "bob-plain", IMAGE, "true")
    assert plain.returncode == 0, plain.stderr
    records = _create_records(users.engine, "bob")
    assert [r["allow"] for r in records] == [False, True]
    assert records[0]["groups"] == []  # his certificate's OU is no group: this policy keeps groups in the file


def test_unix_socket_caller_is_anonymous_and_never_excepted(users: Users) -> None:
    refused = users.engine.docker("create", "--privileged", IMAGE, "true")
    assert refused.returncode != 0 and "[5.5]" in refused.stderr, refused.stderr
    assert _create_records(users.engine, "")[-1]["allow"] is False


def test_client_without_certificate_never_reaches_the_engine(users: Users, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(users.alice.joinpath("ca.pem").read_bytes())
    refused = users.engine.as_user(tmp_path, "version")
    assert refused.returncode != 0
