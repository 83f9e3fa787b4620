"""Fixtures for interop tests: registries as real processes, real clients, test images.

Registries that need credentials (trustyard is secure by default) are logged into as they start: their
`credentials` go into the test's auth file (`auth_file`), which skopeo, podman and the docker CLI all read, and
into the `api` client.

`registry` is the system under test (trustyard; TRUSTYARD_INTEROP_SUT=distribution points it at Debian's
docker-registry to check the tests themselves), `reference_registry` is docker-registry. Every server a test
starts is remembered on the test item, and a failing test's report carries the tail of each server's log.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from fixtures.dockerd import Dockerd
from fixtures.processes import tail

from .clients import Podman, Skopeo, add_login
from .images import OciImage, debian_image, read_layout, shared_layouts
from .registry_api import RegistryClient
from .servers import DistributionServer, RegistryServer, ServerError, server_under_test

LOGGED_KEY = pytest.StashKey[list[tuple[str, Path]]]()
LOG_TAIL_LINES = 80


def _remember_log(item: pytest.Item, name: str, path: Path) -> None:
    item.stash.setdefault(LOGGED_KEY, []).append((name, path))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the log tail of every server the test used to a failing report."""
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("interop"):
        # DESIGN.md: an interop test that skips in CI is a defect; the set-up installs what they need
        report.outcome = "failed"
        report.longrepr = f"interop test skipped ({report.longrepr}): install what it needs instead"
    if report.failed:
        for name, path in item.stash.get(LOGGED_KEY, []):
            report.sections.append((f"{name} log tail ({path})", tail(path, LOG_TAIL_LINES)))
    return report


RegistryFactory = Callable[..., RegistryServer]


@pytest.fixture
def auth_file(tmp_path: Path) -> Path:
    """The test's auth file (containers-auth.json / docker config.json format), empty until a login."""
    path = tmp_path / "auth.json"
    path.write_text('{"auths": {}}')
    return path


@pytest.fixture
def registry_factory(request: pytest.FixtureRequest, tmp_path: Path, auth_file: Path) -> Iterator[RegistryFactory]:
    """Start registries (`factory(kind=None)`: None = the system under test) that stop after the test."""
    started: list[RegistryServer] = []

    def factory(kind: type[RegistryServer] | None = None, database_url: str | None = None) -> RegistryServer:
        cls = kind or server_under_test()
        server = cls(workdir=tmp_path / f"{cls.name}-{len(started)}", database_url=database_url)
        _remember_log(request.node, server.name, server.log_path)
        started.append(server)
        server.start()
        if server.credentials is not None:
            add_login(auth_file, server.host, server.credentials)
        return server

    yield factory
    failures = []
    for server in reversed(started):
        try:
            server.close()
        except ServerError as e:  # stop the others all the same
            failures.append(e)
    if failures:
        raise failures[0]
    # a 5xx is a registry bug whatever the test checked (a test that provokes one can read the log itself)
    errors = [line for server in started for line in server.server_errors()]
    assert errors == [], "requests answered with 5xx:\n" + "\n".join(errors)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str | None:
    """Metadata database URL of the registry under test: None (its default SQLite file in the data dir),
    or a fresh PostgreSQL database where a test is marked EACH_DATABASE (servers.py)."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        return None
    assert kind == "postgresql", kind
    url: str = request.getfixturevalue("postgresql_url")
    return url


@pytest.fixture
def registry(database: str | None, registry_factory: RegistryFactory) -> RegistryServer:
    """The registry under test, started on a free port with an empty data dir (and `database`).

    `database` comes first: the server stops before its PostgreSQL database is dropped.
    """
    return registry_factory(database_url=database)


@pytest.fixture
def reference_registry(registry_factory: RegistryFactory) -> RegistryServer:
    """Debian's docker-registry (distribution 2.8.2), delete enabled."""
    return registry_factory(DistributionServer)


@pytest.fixture
def api(registry: RegistryServer) -> Iterator[RegistryClient]:
    """An HTTP client of the registry under test."""
    with RegistryClient(registry.url, auth=registry.credentials) as client:
        yield client


@pytest.fixture
def skopeo(tmp_path: Path, auth_file: Path) -> Skopeo:
    """skopeo with its own policy, registries.d, tmpdir and blob-info cache, logged in where needed."""
    return Skopeo(tmp_path / "skopeo", auth_file=auth_file)


@pytest.fixture
def podman(tmp_path: Path, registry: RegistryServer, auth_file: Path) -> Iterator[Podman]:
    """podman (runc, vfs storage under tmp) that treats the registry under test as insecure, logged in."""
    client = Podman(tmp_path / "podman", insecure_hosts=[registry.host], auth_file=auth_file)
    yield client
    client.close()


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    """One dockerd for the session; every 127.0.0.0/8 registry is insecure to it."""
    daemon = Dockerd(tmp_path_factory.mktemp("dockerd"))
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture
def docker(request: pytest.FixtureRequest, dockerd: Dockerd, auth_file: Path) -> Iterator[Dockerd]:
    """The session's dockerd, its log tail attached to this test's failure report; images removed after.

    The docker CLI's config.json is the test's auth file (a symlink), so it is logged in where skopeo is.
    """
    _remember_log(request.node, dockerd.name, dockerd.log_path)
    config = dockerd.client_config / "config.json"
    config.unlink(missing_ok=True)
    config.symlink_to(auth_file)
    yield dockerd
    dockerd.docker("image", "prune", "--all", "--force", check=True)
    config.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def alpine_app() -> OciImage:
    """The shared 3-layer Alpine application image (../shared/images/oci-alpine-app), read-only."""
    layouts = [layout for layout in shared_layouts() if layout.name == "oci-alpine-app"]
    assert layouts, "../shared/images/oci-alpine-app is missing"
    return read_layout(layouts[0])[0]


@pytest.fixture(scope="session")
def debian(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """Debian 12 minbase (shared rootfs, gzip) plus one small layer, built once per session."""
    return debian_image(tmp_path_factory.mktemp("debian-layout"))
