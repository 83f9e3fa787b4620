"""End to end: ``require_pull_allowed`` holds ``docker run`` and ``docker pull`` to the registry's own pull gates.

A real ``trustyard serve`` (HTTPS, the PyPI advisories imported) holds ``library/plain`` (the Alpine minirootfs,
pushed by the guarded dockerd itself, so it stays in the engine's store) and ``library/vuln`` (the
../shared/images fixture with old PyPI packages, pushed by skopeo; its scan finds high ones). The plugin's
policy has only that rule, and no cache, so a project change counts at once. The project's pull policy is
changed through the management API (``PATCH /api/v1/projects/library``); the docker CLI then shows the
plugin's refusal quoting the registry's own reason, the ``refusal`` of the verdict endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.dockerd import Dockerd
from interop.servers import TrustyardServer

from .test_dockerd_images import DENIED, _api, _verdict, _wait_scanned, guarded_engine

pytestmark = pytest.mark.interop
RECORDED = Path(__file__).parents[1] / "assets/authz/verdicts"
POLICY = """\
version = 1

[images]
require_pull_allowed = true

[trustyard]
ca_file = "{ca}"
cache_ttl = 0
"""


@dataclass
class Site:
    server: TrustyardServer
    engine: Dockerd

    def image(self, name: str) -> str:
        return f"{self.server.host}/library/{name}"

    def project(self, **policy: Any) -> None:
        """Change the ``library`` project's pull policy through the management API."""
        with _api(self.server) as api:
            changed = api.patch("/api/v1/projects/library", json=policy)
        assert changed.status_code == 200, changed.text

    def refusal(self, name: str) -> str:
        """The registry's reason for refusing a pull of ``library/NAME:1``, from the verdict endpoint."""
        verdict = _verdict(self.server, name, "1")
        assert verdict["pull_allowed"] is False and verdict["refusal"], verdict
        return str(verdict["refusal"]).rstrip(".")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with guarded_engine(tmp_path_factory.mktemp("authz-pull-gates"), POLICY) as (server, engine, _):
        plain = f"{server.host}/library/plain:1"
        engine.import_alpine(plain)
        engine.docker("push", plain, check=True)
        for name in ("plain", "vuln"):
            _wait_scanned(server, name)
        yield Site(server, engine)


def test_content_trust_of_the_project_refuses_running_an_unsigned_local_image(site: Site) -> None:
    argv = ("run", "--rm", "--network", "none", site.image("plain:1"), "true")
    ran = site.engine.docker(*argv)
    assert ran.returncode == 0, ran.stderr  # the project demands nothing yet
    site.project(content_trust=True)
    reason = site.refusal("plain")
    assert reason.startswith("content trust is required in project 'library': tag '1' has no signature")
    refused = site.engine.docker(*argv)  # the image is in the engine's store: only the plugin stands in the way
    assert refused.returncode == 125
    expected = f"[image.pull] trustyard's registry refuses pulls of {site.image('plain:1')}: {reason}"
    assert DENIED in refused.stderr and expected in refused.stderr, refused.stderr
    pull = site.engine.docker("pull", site.image("plain:1"))
    assert pull.returncode != 0 and expected in pull.stderr, pull.stderr
    assert site.engine.docker("ps", "-aq").stdout.split() == []
    site.project(content_trust=False)
    ran = site.engine.docker(*argv)
    assert ran.returncode == 0, ran.stderr


def test_severity_threshold_of_the_project_refuses_the_pull(site: Site) -> None:
    site.project(block_severity="high")
    try:
        verdict = _verdict(site.server, "vuln", "1")
        recorded = json.loads((RECORDED / "vuln-block-high.json").read_text())
        assert verdict["refusal"] == recorded["refusal"]  # the unit tests' recording is this registry's answer
        assert set(verdict) == set(recorded) and verdict["digest"] == recorded["digest"]
        refused = site.engine.docker("run", "--rm", "--network", "none", site.image("vuln:1"), "true")
        assert refused.returncode == 125
        expected = f"[image.pull] trustyard's registry refuses pulls of {site.image('vuln:1')}: {site.refusal('vuln')}"
        assert DENIED in refused.stderr and expected in refused.stderr, refused.stderr
        pull = site.engine.docker("pull", site.image("vuln:1"))
        assert pull.returncode != 0 and expected in pull.stderr, pull.stderr
        assert site.engine.docker("image", "inspect", site.image("vuln:1")).returncode != 0  # never pulled
        assert site.engine.plugin is not None
        refusals = [(r["endpoint"], r["rules"]) for r in site.engine.plugin.audit() if not r["allow"]]
        assert refusals[-2:] == [("POST /containers/create", ["image.pull"]), ("POST /images/create", ["image.pull"])]
    finally:
        site.project(block_severity=None)
