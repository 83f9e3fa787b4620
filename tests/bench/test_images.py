"""Every image check passes on a clean image and fails on one built with the failure in it.

``clean`` runs as a user, has a HEALTHCHECK, installs with caches cleared and carries nothing it should not;
``dirty`` runs as root and has every problem the checks look for (a setuid binary, a secret in ENV, a
credential file, an empty password, duplicate IDs, sudo / dist-upgrade / lone update / ADD / apk without
--no-cache in its history, a VOLUME on /proc, the latest tag, a .git directory). Both are OCI layouts built by
``ocibuild``; the real Alpine fixture of ../shared/images is read too. Both are also pushed with skopeo to
Debian's docker-registry and read back as ``docker://`` images, which must be judged exactly as the layouts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.ocibuild import build_image
from interop.clients import Skopeo
from interop.servers import DistributionServer
from trustyard.bench import CHECKS_BY_ID, BenchContext, Result, run_checks, select

ALPINE_APP = "oci:/work/shared/images/oci-alpine-app:fixture-alpine-app:1"
PASSWD_OK = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
SHADOW_OK = b"root:!:19000:0:::::\napp:!:19000:0:::::\n"
GROUP_OK = b"root:x:0:\napp:x:1000:\n"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("clean")
    base = [
        ("etc/", b"", 0o755, 0, 0),
        ("etc/passwd", PASSWD_OK, 0o644, 0, 0),
        ("etc/shadow", SHADOW_OK, 0o640, 0, 42),
        ("etc/group", GROUP_OK, 0o644, 0, 0),
        ("usr/bin/app", b"#!/bin/sh\n", 0o755, 0, 0),
    ]
    return build_image(
        root / "layout",
        tag="1.0",
        layers=[base],
        config={
            "User": "app",
            "Env": ["PATH=/usr/bin", "APP_MODE=prod"],
            "Healthcheck": {"Test": ["CMD", "/usr/bin/app"]},
        },
        history=[
            "/bin/sh -c #(nop) ADD file:0123abcd in / ",
            "/bin/sh -c apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*",
            "/bin/sh -c apk add --no-cache ca-certificates",
            "/bin/sh -c #(nop) COPY file:feed in /usr/bin/app ",
        ],
    )


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("dirty")
    base = [
        ("etc/", b"", 0o755, 0, 0),
        (
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\nguest::1001:1001::/:/bin/sh\n",
            0o644,
            0,
            0,
        ),
        ("etc/shadow", b"root::19000:0:::::\ntoor:!:19000:0:::::\n", 0o640, 0, 0),
        ("etc/group", b"root:x:0:\nwheel:x:0:\n", 0o644, 0, 0),
        ("usr/bin/su", b"\x7fELF", 0o4755, 0, 0),
        ("usr/bin/wall", b"\x7fELF", 0o2755, 0, 5),
    ]
    app = [
        ("root/.git-credentials", b"https://u:p@example.com\n", 0o600, 0, 0),
        ("app/.git/", b"", 0o755, 0, 0),
        ("app/.git/HEAD", b"ref: refs/heads/main\n", 0o644, 0, 0),
    ]
    return build_image(
        root / "layout",
        tag="latest",
        layers=[base, app],
        config={"Env": ["PATH=/usr/bin", "DB_PASSWORD=hunter2"], "Volumes": {"/proc/data": {}}},
        history=[
            "/bin/sh -c #(nop) ADD https://example.com/app.tar.gz /app ",
            "/bin/sh -c apt-get update",
            "/bin/sh -c apt-get install -y sudo && apt-get dist-upgrade -y",
            "/bin/sh -c sudo chown app /app",
            "/bin/sh -c apk add ca-certificates",
        ],
    )


IMAGE_CHECKS = [c.id for c in select(["4", "dockle"])]
MANUAL_ONLY = {"4.2", "4.3", "4.4", "4.11", "4.12"}
ENV_CHECKS = {"4.5", "CIS-DI-0005"}


def _result(check_id: str, image: str, environ: dict[str, str] | None = None) -> tuple[Result, tuple[str, ...]]:
    context = BenchContext(root=Path("/nonexistent"), images=(image,), environ=environ or {})
    outcome = run_checks([CHECKS_BY_ID[check_id]], context).outcomes[0]
    return outcome.result.result, outcome.result.items


@pytest.mark.parametrize("check_id", [c for c in IMAGE_CHECKS if c not in MANUAL_ONLY | ENV_CHECKS])
def test_image_check_passes_on_clean_image(check_id: str, clean: str) -> None:
    result, items = _result(check_id, clean)
    assert result is Result.PASS, items


@pytest.mark.parametrize("check_id", [c for c in IMAGE_CHECKS if c not in MANUAL_ONLY | ENV_CHECKS])
def test_image_check_fails_on_dirty_image(check_id: str, dirty: str) -> None:
    result, items = _result(check_id, dirty)
    assert result in (Result.WARN, Result.INFO), items
    assert items and all(i.startswith(dirty) for i in items)


def test_dirty_findings_name_the_problem(dirty: str) -> None:
    assert _result("4.8", dirty)[1] == (f"{dirty}: setuid /usr/bin/su", f"{dirty}: setgid /usr/bin/wall")
    assert _result("4.10", dirty)[1] == (
        f"{dirty}: ENV DB_PASSWORD",
        f"{dirty}: credential file /root/.git-credentials",
    )
    assert _result("DKL-LI-0001", dirty)[1] == (f"{dirty}: root (shadow)", f"{dirty}: guest (passwd)")
    assert _result("DKL-LI-0002", dirty)[1] == (f"{dirty}: UID 0: root, toor", f"{dirty}: GID 0: root, wheel")
    assert _result("4.9", dirty)[1] == (f"{dirty}: /bin/sh -c #(nop) ADD https://example.com/app.tar.gz /app",)


@pytest.mark.parametrize("check_id", sorted(ENV_CHECKS))
def test_content_trust_follows_the_environment(check_id: str, clean: str) -> None:
    assert _result(check_id, clean, {"DOCKER_CONTENT_TRUST": "1"})[0] is Result.PASS
    assert _result(check_id, clean, {})[0] is Result.WARN


@pytest.mark.parametrize("check_id", sorted(MANUAL_ONLY))
def test_manual_image_checks_are_notes(check_id: str, clean: str) -> None:
    assert _result(check_id, clean)[0] is Result.NOTE
    assert not CHECKS_BY_ID[check_id].scored


def test_real_alpine_fixture() -> None:
    """The shared Alpine image: root user and no HEALTHCHECK (true of it), no setuid files, no empty passwords."""
    assert _result("4.1", ALPINE_APP)[0] is Result.WARN
    assert _result("4.6", ALPINE_APP)[0] is Result.WARN
    assert _result("4.8", ALPINE_APP)[0] is Result.PASS
    assert _result("DKL-LI-0001", ALPINE_APP)[0] is Result.PASS
    assert _result("DKL-DI-0006", ALPINE_APP)[0] is Result.PASS


def test_no_image_is_info_not_pass() -> None:
    outcome = run_checks([CHECKS_BY_ID["4.1"]], BenchContext(root=Path("/nonexistent"))).outcomes[0]
    assert outcome.result.result is Result.INFO
    assert "no image given" in outcome.result.details


def test_unreadable_image_is_info(tmp_path: Path) -> None:
    outcome = run_checks([CHECKS_BY_ID["4.1"]], BenchContext(images=(f"oci:{tmp_path}:x",))).outcomes[0]
    assert outcome.result.result is Result.INFO


def test_rootfs_has_no_config_but_files_are_checked(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "shadow").write_text("root::1:0:::::\n")
    image = f"rootfs:{tmp_path}"
    assert _result("4.1", image)[0] is Result.INFO
    assert _result("DKL-LI-0001", image)[0] is Result.WARN


@pytest.fixture(scope="module")
def pushed(clean: str, dirty: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """``clean`` and ``dirty`` pushed with skopeo to Debian's docker-registry: oci name -> docker:// name."""
    workdir = tmp_path_factory.mktemp("registry")
    server = DistributionServer(workdir=workdir / "distribution")
    skopeo = Skopeo(workdir / "skopeo")
    server.start()
    try:
        names = {}
        for oci_name, repo in ((clean, "bench/clean"), (dirty, "bench/dirty")):
            names[oci_name] = f"docker://{server.host}/{repo}:{oci_name.rpartition(':')[2]}"
            skopeo.copy(oci_name, names[oci_name])
        yield names
    finally:
        server.close()


@pytest.mark.interop
def test_images_from_a_registry_judged_as_their_layouts(pushed: dict[str, str]) -> None:
    """docker:// (no engine, no local copy): configuration, history and files give the same results and items."""
    checks = [c for c in IMAGE_CHECKS if c not in MANUAL_ONLY]
    for oci_name, docker_name in pushed.items():
        for check_id in checks:
            local, remote = _result(check_id, oci_name), _result(check_id, docker_name)
            assert remote[0] is local[0], (check_id, docker_name, remote, local)
            assert [i.removeprefix(docker_name) for i in remote[1]] == [i.removeprefix(oci_name) for i in local[1]]
