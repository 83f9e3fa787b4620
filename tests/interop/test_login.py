"""Real clients log in to trustyard: `skopeo login` / `--creds`, `podman login`, `docker login`.

A developer pushes; a guest is refused, and the client shows the registry's own message; a wrong password
is refused at login; anonymous clients pull from a public project and nothing from a private one; a robot
account logs in as `robot$name`. Users and projects are created in the server's database directly (the server
runs; SQLite in WAL mode), before the server has seen any request about them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fixtures.dockerd import Dockerd
from trustyard.auth.model import Action, Role
from trustyard.auth.store import IdentityStore
from trustyard.db.engine import Database

from .clients import Podman, Skopeo
from .images import OciImage
from .servers import RegistryServer, TrustyardServer

pytestmark = pytest.mark.interop

DENIED = "denied: requested access to the resource is denied"


@pytest.fixture
def registry(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    """Always trustyard here (access control is what is tested), whatever TRUSTYARD_INTEROP_SUT says."""
    return registry_factory(TrustyardServer)


@pytest.fixture
def people(registry: RegistryServer) -> Iterator[IdentityStore]:
    """Project `team` (private) with developer `dev` and guest `gus`; project `open` (public); robot `ci`."""
    db = Database(registry.database_url or f"sqlite:///{registry.data_dir / 'trustyard.db'}")
    store = IdentityStore(db)
    store.create_project("team")
    store.create_project("open", public=True)
    store.create_user("dev", password="dev-password")
    store.create_user("gus", password="gus-password")
    store.set_member("team", Role.DEVELOPER, user="dev")
    store.set_member("team", Role.GUEST, user="gus")
    yield store
    db.dispose()


@pytest.fixture
def fresh_skopeo(tmp_path: Path) -> Skopeo:
    """skopeo with an empty auth file of its own: nobody logged in."""
    return Skopeo(tmp_path / "fresh-skopeo", auth_file=tmp_path / "fresh-auth.json")


def _image(alpine_app: OciImage) -> str:
    return f"oci:{alpine_app.layout}"


def test_skopeo_login_as_developer_pushes_and_as_guest_is_refused_with_the_registry_message(
    registry: RegistryServer, people: IdentityStore, fresh_skopeo: Skopeo, alpine_app: OciImage
) -> None:
    host = registry.host
    out = fresh_skopeo.run("login", "--tls-verify=false", "-u", "dev", "-p", "dev-password", host)
    assert "Login Succeeded" in out.stdout
    fresh_skopeo.copy(_image(alpine_app), f"docker://{host}/team/app:v1")
    fresh_skopeo.run("logout", host)
    fresh_skopeo.run("login", "--tls-verify=false", "-u", "gus", "-p", "gus-password", host)
    assert fresh_skopeo.list_tags(f"docker://{host}/team/app") == ["v1"]  # a guest pulls and lists
    refused = fresh_skopeo.run(*fresh_skopeo.copy_args(_image(alpine_app), f"docker://{host}/team/app:v2"), check=False)
    assert refused.returncode != 0
    assert DENIED in refused.stderr
    assert "user 'gus' may not push in repository 'team/app'" in refused.stderr
    assert fresh_skopeo.list_tags(f"docker://{host}/team/app") == ["v1"]  # nothing was pushed


def test_skopeo_creds_wrong_password_and_anonymous_access(
    registry: RegistryServer, people: IdentityStore, skopeo: Skopeo, fresh_skopeo: Skopeo, alpine_app: OciImage
) -> None:
    host = registry.host
    skopeo.copy(_image(alpine_app), f"docker://{host}/open/app:v1")  # as admin (the test's auth file)
    skopeo.copy(_image(alpine_app), f"docker://{host}/team/app:v1")
    bad = fresh_skopeo.run("login", "--tls-verify=false", "-u", "dev", "-p", "wrong", host, check=False)
    assert bad.returncode != 0
    assert "invalid username/password" in bad.stderr  # containers/image's words for the token endpoint's 401
    ok = fresh_skopeo.run(
        "inspect", "--tls-verify=false", "--creds", "dev:dev-password", f"docker://{host}/team/app:v1"
    )
    assert '"Name"' in ok.stdout
    anonymous_public = fresh_skopeo.run("inspect", "--tls-verify=false", f"docker://{host}/open/app:v1")
    assert '"Name"' in anonymous_public.stdout
    anonymous_private = fresh_skopeo.run("inspect", "--tls-verify=false", f"docker://{host}/team/app:v1", check=False)
    assert anonymous_private.returncode != 0
    assert "unauthorized" in anonymous_private.stderr
    anonymous_push = fresh_skopeo.run(
        *fresh_skopeo.copy_args(_image(alpine_app), f"docker://{host}/open/app:v2"), check=False
    )
    assert anonymous_push.returncode != 0  # out of the box nobody pushes anonymously, public project or not


def test_robot_account_logs_in_and_is_held_to_its_permissions(
    registry: RegistryServer, people: IdentityStore, fresh_skopeo: Skopeo, skopeo: Skopeo, alpine_app: OciImage
) -> None:
    host = registry.host
    _, secret = people.create_robot("ci", {Action.PULL, Action.PUSH}, project="team", repositories=["team/app*"])
    fresh_skopeo.run("login", "--tls-verify=false", "-u", "robot$ci", "-p", secret, host)
    fresh_skopeo.copy(_image(alpine_app), f"docker://{host}/team/app-build:1")
    outside = fresh_skopeo.run(
        *fresh_skopeo.copy_args(_image(alpine_app), f"docker://{host}/team/other:1"), check=False
    )
    assert outside.returncode != 0
    assert "403 (Forbidden)" in outside.stderr  # refused at its first request, a HEAD: no body to quote
    gone = skopeo.run("list-tags", "--tls-verify=false", f"docker://{registry.host}/team/other", check=False)
    assert gone.returncode != 0 and "404 (Not Found)" in gone.stderr  # the admin sees nothing was pushed


def test_podman_login_developer_pushes_guest_is_refused(
    registry: RegistryServer, people: IdentityStore, podman: Podman, skopeo: Skopeo, alpine_app: OciImage
) -> None:
    host = registry.host
    skopeo.copy(_image(alpine_app), f"docker://{host}/open/base:1")  # as admin
    podman.run("logout", "--all")
    podman.run("login", "--tls-verify=false", "-u", "dev", "-p", "dev-password", host)
    podman.run("pull", f"{host}/open/base:1")
    podman.run("tag", f"{host}/open/base:1", f"{host}/team/built:1")
    podman.run("push", f"{host}/team/built:1")
    podman.run("logout", host)
    podman.run("login", "--tls-verify=false", "-u", "gus", "-p", "gus-password", host)
    podman.run("tag", f"{host}/open/base:1", f"{host}/team/built:2")
    refused = podman.run("push", f"{host}/team/built:2", check=False)
    assert refused.returncode != 0
    assert DENIED in refused.stderr
    wrong = podman.run("login", "--tls-verify=false", "-u", "gus", "-p", "nope", host, check=False)
    assert wrong.returncode != 0
    assert "invalid username/password" in wrong.stderr


def test_docker_login_developer_pushes_guest_is_refused(
    registry: RegistryServer, people: IdentityStore, docker: Dockerd, skopeo: Skopeo, alpine_app: OciImage
) -> None:
    host = registry.host
    skopeo.copy(_image(alpine_app), f"docker://{host}/open/base:1")  # as admin
    docker.docker("logout", host, check=True)
    docker.docker("pull", f"{host}/open/base:1", check=True)  # anonymous pull of a public project
    out = docker.docker("login", "-u", "dev", "--password-stdin", host, input_text="dev-password", check=True)
    assert "Login Succeeded" in out.stdout
    docker.docker("tag", f"{host}/open/base:1", f"{host}/team/built:1", check=True)
    docker.docker("push", f"{host}/team/built:1", check=True)
    docker.docker("login", "-u", "gus", "--password-stdin", host, input_text="gus-password", check=True)
    docker.docker("tag", f"{host}/open/base:1", f"{host}/team/built:2", check=True)
    refused = docker.docker("push", f"{host}/team/built:2", check=False)
    assert refused.returncode != 0
    assert "denied" in refused.stderr
    wrong = docker.docker("login", "-u", "gus", "--password-stdin", host, input_text="nope", check=False)
    assert wrong.returncode != 0
