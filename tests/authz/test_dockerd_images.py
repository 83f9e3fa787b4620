"""End to end: the image rules with a real ``trustyard serve``, the real ``notary`` client and a real dockerd.

trustyard serves HTTPS (the notary client needs it) with the PyPI advisories of ../shared/vulndb imported by
``trustyard db import``. Three images are pushed: ``library/clean`` (the Alpine minirootfs, pushed by the
guarded dockerd itself) and ``library/vuln`` (the ../shared/images fixture with old PyPI packages, pushed by
skopeo; its scan finds high ones), both signed with ``notary add``/``publish`` over their manifests, and
``library/unsigned`` (the clean image under another name, never signed). The plugin logs in as a system robot
account with pull permission, created through the management API, its secret in a file named by
``TRUSTYARD_AUTHZ_CREDENTIALS_FILE``; trustyard's URL comes from ``TRUSTYARD_AUTHZ_REGISTRY_URL``.

Policy: images only from trustyard's registry, signed, no finding of high or worse, unscanned refused. The
docker CLI shows each refusal with the plugin's message; the last test stops trustyard and shows that an
image the plugin has not judged yet is refused while trustyard is unreachable.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.dockerd import Dockerd
from interop.clients import add_login
from interop.notary_client import client, running_trustyard
from interop.servers import TrustyardServer
from trustyard.authz.verdicts import TrustyardVerdicts, VerdictUnavailableError, read_credentials
from trustyard.scan.sources.credentials import Credentials

pytestmark = pytest.mark.interop
VULNERABLE = Path("/work/shared/images/oci-alpine-app")
PYPI_ADVISORIES = Path("/work/shared/vulndb/osv/PyPI/all.zip")
DENIED = "authorization denied by plugin trustyard"
POLICY = """\
version = 1

[images]
allowed_registries = ["{host}"]
require_signed = true
max_severity = "high"
unscanned = "refuse"

[trustyard]
ca_file = "{ca}"
timeout = 5
cache_ttl = 30
"""


@dataclass
class Site:
    server: TrustyardServer
    engine: Dockerd
    digests: dict[str, str]
    credentials: Path

    def image(self, name: str) -> str:
        return f"{self.server.host}/library/{name}"


def _api(server: TrustyardServer) -> httpx.Client:
    assert server.tls is not None and server.credentials is not None
    return httpx.Client(
        base_url=server.url,
        auth=server.credentials,
        verify=ssl.create_default_context(cafile=server.tls[2]),
        timeout=30,
    )


def _verdict(server: TrustyardServer, name: str, tag: str) -> dict[str, Any]:
    with _api(server) as api:
        response = api.get(f"/api/v1/repositories/library/{name}/verdict/{tag}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _wait_scanned(server: TrustyardServer, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        verdict = _verdict(server, name, "1")
        if verdict["scan"]["status"] in ("done", "failed"):
            assert verdict["scan"]["status"] == "done", verdict
            return verdict
        time.sleep(0.5)
    raise AssertionError(f"library/{name}:1 not scanned in 180 s: {verdict}")


def _run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(argv[:3])}: {done.stderr}"
    return done.stdout


def _sign(server: TrustyardServer, workdir: Path, name: str) -> None:
    """``notary add`` the manifest trustyard stores for ``library/NAME:1`` (Docker Content Trust's target)."""
    assert server.credentials is not None
    manifest = workdir / f"{name}.manifest.json"
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", ":".join(server.credentials),
         f"docker://{server.host}/library/{name}:1"],
        capture_output=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    manifest.write_bytes(raw)
    notary = client(server, workdir, name)
    notary.run("init", f"library/{name}")
    notary.run("add", f"library/{name}", "1", str(manifest))
    notary.run("publish", f"library/{name}")


def _robot(server: TrustyardServer, path: Path) -> None:
    with _api(server) as api:
        created = api.post("/api/v1/robots", json={"name": "authz", "permissions": ["pull"]})
    assert created.status_code == 201, created.text
    robot = created.json()
    path.write_text(f"{robot['login']}:{robot['secret']}\n")
    path.chmod(0o600)


@contextlib.contextmanager
def guarded_engine(workdir: Path, policy_text: str) -> Iterator[tuple[TrustyardServer, Dockerd, Path]]:
    """trustyard (advisories imported, ``library/vuln:1`` pushed) and a dockerd guarded by the plugin.

    ``policy_text``: the plugin's policy, formatted with trustyard's ``host`` and ``ca`` file. The plugin logs
    in as a pull robot (the credentials file is yielded); the docker CLI is logged in as the administrator.
    """
    with running_trustyard(workdir) as server:
        assert server.tls is not None
        _run("trustyard", "db", "import", str(PYPI_ADVISORIES), "--data-dir", str(server.data_dir))
        _run("skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", ":".join(server.credentials),
             "oci:" + str(VULNERABLE) + ":fixture-alpine-app:1", f"docker://{server.host}/library/vuln:1")  # fmt: skip
        credentials = workdir / "authz.credentials"
        _robot(server, credentials)
        policy = workdir / "policy.toml"
        policy.write_text(policy_text.format(host=server.host, ca=server.tls[2]))
        env = {"TRUSTYARD_AUTHZ_REGISTRY_URL": server.url, "TRUSTYARD_AUTHZ_CREDENTIALS_FILE": str(credentials)}
        engine = Dockerd(workdir / "engine", with_plugin=True, policy=policy, plugin_env=env)
        (workdir / "engine/client").mkdir(parents=True)
        add_login(workdir / "engine/client/config.json", server.host, server.credentials)
        try:
            engine.start()
            yield server, engine, credentials
        finally:
            engine.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("authz-images")
    with guarded_engine(workdir, POLICY) as (server, engine, credentials):
        clean, unsigned = f"{server.host}/library/clean:1", f"{server.host}/library/unsigned:1"
        engine.import_alpine(clean)
        engine.docker("tag", clean, unsigned, check=True)
        engine.docker("push", clean, check=True)
        engine.docker("push", unsigned, check=True)
        engine.docker("rmi", clean, unsigned, check=True)  # `docker run` must pull through the plugin
        _sign(server, workdir, "clean")
        _sign(server, workdir, "vuln")
        digests = {name: _wait_scanned(server, name)["digest"] for name in ("clean", "vuln", "unsigned")}
        yield Site(server, engine, digests, credentials)


def test_image_from_a_registry_not_allowed_is_refused(site: Site) -> None:
    refused = site.engine.docker("run", "--rm", "quay.io/team/app:1", "true")
    assert refused.returncode == 125
    assert DENIED in refused.stderr and "[image.registry]" in refused.stderr, refused.stderr
    assert "quay.io/team/app:1 comes from quay.io, which is not an allowed registry" in refused.stderr
    pull = site.engine.docker("pull", "alpine:3.20")  # docker.io, as the engine reads an unqualified name
    assert pull.returncode != 0 and "docker.io/library/alpine:3.20 comes from docker.io" in pull.stderr, pull.stderr


def test_unsigned_image_is_refused(site: Site) -> None:
    verdict = _verdict(site.server, "unsigned", "1")
    assert verdict["signed"] is False and verdict["scan"]["worst"] is None
    refused = site.engine.docker("run", "--rm", "--network", "none", site.image("unsigned:1"), "true")
    assert refused.returncode == 125
    assert DENIED in refused.stderr and "[image.signed]" in refused.stderr, refused.stderr
    assert "is not signed in trustyard" in refused.stderr


def test_signed_scanned_clean_image_runs(site: Site) -> None:
    verdict = _verdict(site.server, "clean", "1")
    assert verdict["signed"] is True and verdict["signed_digest"] == verdict["digest"], verdict
    ran = site.engine.docker("run", "--rm", "--network", "none", site.image("clean:1"), "cat", "/etc/alpine-release")
    assert ran.returncode == 0 and ran.stdout.strip() == "3.20.3", ran.stderr
    assert site.engine.plugin is not None
    judged = [r for r in site.engine.plugin.audit() if "library/clean:1" in str(r["msg"]) or r["allow"]]
    assert judged  # every decision is in the audit log, allowed ones too


def test_image_with_high_findings_is_refused(site: Site) -> None:
    verdict = _verdict(site.server, "vuln", "1")
    highs = verdict["scan"]["counts"]["high"]
    assert verdict["signed"] is True and verdict["scan"]["worst"] == "high" and highs >= 1, verdict
    refused = site.engine.docker("run", "--rm", "--network", "none", site.image("vuln:1"), "true")
    assert refused.returncode == 125
    assert DENIED in refused.stderr and "[image.severity]" in refused.stderr, refused.stderr
    assert "findings of severity high" in refused.stderr and f"{highs} high" in refused.stderr
    assert "[image.signed]" not in refused.stderr


def test_client_answers_from_the_real_api(site: Site) -> None:
    """The plugin's client against the running registry: a verdict, no such image, refused credentials."""
    assert site.server.tls is not None
    ca = site.server.tls[2]
    robot = read_credentials(site.credentials)
    good = TrustyardVerdicts(site.server.url, credentials=robot, ca_file=ca)
    found = good.verdict("library/clean", "1")
    assert found is not None and found.signed and found.digest == site.digests["clean"]
    assert good.verdict("library/clean", "no-such-tag") is None
    wrong = TrustyardVerdicts(site.server.url, credentials=Credentials(robot.username, "wrong"), ca_file=ca)
    with pytest.raises(VerdictUnavailableError, match=r"refused the plugin's credentials \(401\)"):
        wrong.verdict("library/clean", "1")
    good.close()
    wrong.close()


def test_trustyard_unreachable_means_refused(site: Site) -> None:
    site.server.kill()  # a registry that is gone (SIGTERM waits for clients' keep-alive connections)
    by_digest = f"{site.server.host}/library/clean@{site.digests['clean']}"  # never judged, so never cached
    started = time.monotonic()
    refused = site.engine.docker("run", "--rm", "--network", "none", by_digest, "true")
    assert refused.returncode == 125
    assert DENIED in refused.stderr and "trustyard could not be asked" in refused.stderr, refused.stderr
    assert time.monotonic() - started < 30
    assert site.engine.plugin is not None
    record = site.engine.plugin.audit()[-1]
    assert record["allow"] is False and json.dumps(record).count("image.signed") >= 1
