"""Docker Content Trust end to end: Debian's dockerd 20.10 and the docker CLI against `trustyard serve`.

The registry runs with TLS and token auth; it is also the trust server (``DOCKER_CONTENT_TRUST_SERVER`` is
its own https URL, its CA in the docker CLI's ``tls/<host>/ca.crt``). The docker CLI logs in as the registry's
admin (its config.json), signs on ``DOCKER_CONTENT_TRUST=1 docker push`` with passphrases from the environment,
names the trust data ``127.0.0.1:PORT/dct/app`` and asks the token endpoint for
``repository:127.0.0.1:PORT/dct/app:...`` scopes. ``docker trust inspect`` shows the signed digest and signer,
a content-trust pull of the signed tag pulls that digest, and of an unsigned tag is refused by the CLI; with
the project requiring content trust, the registry itself refuses the unsigned tag to a plain ``docker pull``.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from fixtures.dockerd import ALPINE, Dockerd

from .clients import add_login
from .notary_client import running_trustyard
from .servers import TrustyardServer

pytestmark = pytest.mark.interop

PUSHED_DIGEST = re.compile(r"^\S+: digest: (sha256:[0-9a-f]{64}) size: (\d+)$", re.MULTILINE)
PASSPHRASES = {
    "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "dct-root-passphrase",
    "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "dct-repository-passphrase",
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TrustyardServer]:
    """`trustyard serve` with TLS and access control: registry and trust server on one host and port."""
    with running_trustyard(tmp_path) as srv:
        yield srv


@pytest.fixture
def trusting(docker: Dockerd, server: TrustyardServer, auth_file: Path) -> Iterator[dict[str, str]]:
    """The docker CLI logged in to the registry and trusting its CA; the environment that turns on DCT."""
    assert server.tls is not None
    add_login(auth_file, server.host, server.credentials)
    tls = docker.client_config / "tls" / server.host
    tls.mkdir(parents=True)
    shutil.copyfile(server.tls[2], tls / "ca.crt")
    env = {**docker.env, **PASSPHRASES, "DOCKER_CONTENT_TRUST": "1", "DOCKER_CONTENT_TRUST_SERVER": server.url}
    yield env
    shutil.rmtree(docker.client_config / "tls", ignore_errors=True)
    shutil.rmtree(docker.client_config / "trust", ignore_errors=True)


def trusted(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI with content trust on (no check: the test reads the outcome)."""
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def token_queries(server: TrustyardServer) -> list[str]:
    """The query strings of every ``/auth/token`` request in the server's request log."""
    queries: list[str] = []
    for line in server.log_path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("path") == "/auth/token" and entry.get("query"):
                queries.append(str(entry["query"]))
    return queries


def ok(done: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must have succeeded."""
    assert done.returncode == 0, f"rc {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


def test_docker_content_trust_push_inspect_pull(
    docker: Dockerd, server: TrustyardServer, trusting: dict[str, str]
) -> None:
    repo = f"{server.host}/dct/app"
    docker.docker("import", str(ALPINE), f"{repo}:signed", check=True)
    docker.docker("import", "--change", "LABEL signed=no", str(ALPINE), f"{repo}:unsigned", check=True)  # another image

    pushed = ok(trusted(trusting, "push", f"{repo}:signed"))
    assert f"Successfully signed {repo}:signed" in pushed
    asked = {scope for query in token_queries(server) for scope in parse_qs(query).get("scope", [])}
    assert f"repository:{repo}:push,pull" in asked, "the docker CLI names trust data by the full image name"
    match = PUSHED_DIGEST.search(pushed)
    assert match, pushed
    digest, size = match.group(1), int(match.group(2))
    ok(trusted({k: v for k, v in trusting.items() if k != "DOCKER_CONTENT_TRUST"}, "push", f"{repo}:unsigned"))

    [inspected] = json.loads(ok(trusted(trusting, "trust", "inspect", f"{repo}:signed")))
    assert inspected["Name"] == f"{repo}:signed"
    assert inspected["SignedTags"] == [
        {"SignedTag": "signed", "Digest": digest.removeprefix("sha256:"), "Signers": ["Repo Admin"]}
    ]
    assert [k["Name"] for k in inspected["AdministrativeKeys"]] == ["Root", "Repository"]
    pretty = ok(trusted(trusting, "trust", "inspect", "--pretty", repo))
    assert re.search(r"^signed\s+[0-9a-f]{64}\s+\(Repo Admin\)$", pretty, re.MULTILINE), pretty

    # the server's own view agrees: signed for the pushed digest and size, by the repository key
    assert server.tls is not None
    http = httpx.Client(
        base_url=server.url,
        auth=server.credentials,
        verify=ssl.create_default_context(cafile=str(server.tls[2])),
        timeout=30,
    )
    with http:
        verdict = http.get("/api/v1/repositories/dct/app/verdict/signed").json()
        assert (verdict["signed"], verdict["digest"], verdict["signers"]) == (True, digest, ["Repo Admin"])
        assert http.get(f"/v2/dct/app/manifests/{digest}").headers["content-length"] == str(size)

        docker.docker("rmi", f"{repo}:signed", f"{repo}:unsigned", check=True)
        pulled = ok(trusted(trusting, "pull", f"{repo}:signed"))
        assert f"{repo}@{digest}" in pulled, "DCT pulls the signed digest, then tags it"
        assert docker.docker("image", "inspect", f"{repo}:signed", check=False).returncode == 0

        refused = trusted(trusting, "pull", f"{repo}:unsigned")
        assert refused.returncode != 0
        assert "No valid trust data for unsigned" in refused.stderr

        # the registry enforces it too, for a client that does not check signatures itself
        assert http.patch("/api/v1/projects/dct", json={"content_trust": True}).status_code == 200
        plain = docker.docker("pull", f"{repo}:unsigned", check=False)
        assert plain.returncode != 0
        # dockerd resolves the tag with HEAD (never gated: signers need it), GETs the digest (refused), falls
        # back to GET by tag (refused) and prints that answer
        assert (
            "error after falling back to get manifest by tag: denied: content trust is required in project 'dct':"
            " tag 'unsigned' has no signed target in the trust data of 'dct/app'"
        ) in plain.stderr
        docker.docker("rmi", f"{repo}:signed", check=True)
        ok(trusted(trusting, "pull", f"{repo}:signed"))


def test_docker_trust_signer_signs_through_a_delegation(
    docker: Dockerd, server: TrustyardServer, trusting: dict[str, str], tmp_path: Path
) -> None:
    """`docker trust signer add` delegates to alice (targets/alice and targets/releases), `docker trust sign`
    pushes and signs with her key; inspect, the registry's verdict and a DCT pull all name alice."""
    repo = f"{server.host}/dct/team"
    docker.docker("import", str(ALPINE), f"{repo}:v1", check=True)
    keys = tmp_path / "keys"
    keys.mkdir()
    ok(trusted(trusting, "trust", "key", "generate", "alice", "--dir", str(keys)))
    ok(trusted(trusting, "trust", "signer", "add", "--key", str(keys / "alice.pub"), "alice", repo))
    signed = ok(trusted(trusting, "trust", "sign", f"{repo}:v1"))
    assert f"Successfully signed {repo}:v1" in signed

    [inspected] = json.loads(ok(trusted(trusting, "trust", "inspect", repo)))
    [row] = inspected["SignedTags"]
    assert row["SignedTag"] == "v1" and row["Signers"] == ["alice"]
    assert [s["Name"] for s in inspected["Signers"]] == ["alice"]
    digest = "sha256:" + row["Digest"]

    assert server.tls is not None
    tls = ssl.create_default_context(cafile=str(server.tls[2]))
    with httpx.Client(base_url=server.url, auth=server.credentials, verify=tls, timeout=30) as http:
        verdict = http.get("/api/v1/repositories/dct/team/verdict/v1").json()
    assert (verdict["signed"], verdict["digest"], verdict["signers"]) == (True, digest, ["alice"])

    docker.docker("rmi", f"{repo}:v1", check=True)
    assert f"{repo}@{digest}" in ok(trusted(trusting, "pull", f"{repo}:v1"))
