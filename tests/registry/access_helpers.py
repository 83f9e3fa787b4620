"""The world the access-control API tests run in: accounts of every role, projects, robots and images.

``populate`` builds it in any registry app (SQLite or PostgreSQL, through the app's own ``IdentityStore`` and
by pushing as the system administrator):

- projects ``pub`` (public) and ``priv`` (private), where one user of each Harbor role is a member, and four
  project robots each (``<project>-pull``: pull; ``-push``: pull and push; ``-delete``: pull and delete;
  ``-pattern``: pull, push and list, limited to ``<project>/app*``);
- projects ``commons`` (public) and ``vault`` (private) without members: sources of cross-project mounts;
- images ``<project>/app:v1`` (``pub``, ``priv``) and ``<project>/base:v1`` (all four), each with layers of
  its own (``app_image``, ``base_image`` rebuild them).

``WorldTemplate`` builds the world once per test module in a SQLite database and copies it for every test
(a copy takes milliseconds), so tests stay independent of each other's order and of what they change.

Password hashing runs with cheap argon2 parameters here (``cheap_hashing``): with the production
parameters one verification takes over 200 ms on the CI machines, and these tests log in thousands of
times. The hashing code is the same; its parameters are tested in ``tests/auth/test_passwords.py``.

Not here: the assertions (the test modules).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from argon2 import PasswordHasher

from trustyard.auth import passwords
from trustyard.auth.model import Action, Role
from trustyard.auth.service import AccessControl
from trustyard.config import Settings, load_settings
from trustyard.db.engine import Database
from trustyard.registry.app import create_app
from trustyard.registry.service import RegistryService
from trustyard.storage.filesystem import FilesystemBlobStore

from .conftest import BASE, ManifestDoc, RegistryClient, assert_error, make_image

PUBLIC: Final = "pub"
PRIVATE: Final = "priv"
COMMONS: Final = "commons"
VAULT: Final = "vault"
MEMBER_PROJECTS: Final = (PUBLIC, PRIVATE)
PROJECTS: Final = {PUBLIC: True, PRIVATE: False, COMMONS: True, VAULT: False}
"""Project -> whether it is public."""

ADMIN: Final = "admin"
PROJECT_ADMIN: Final = "project_admin"
MAINTAINER: Final = "maintainer"
DEVELOPER: Final = "developer"
GUEST: Final = "guest"
LIMITED_GUEST: Final = "limited_guest"
NON_MEMBER: Final = "non_member"
ANONYMOUS: Final = "anonymous"
ROBOT_PULL: Final = "robot_pull"
ROBOT_PUSH: Final = "robot_push"
ROBOT_DELETE: Final = "robot_delete"
ROBOT_PATTERN: Final = "robot_pattern"
ROLES: Final = (
    ADMIN,
    PROJECT_ADMIN,
    MAINTAINER,
    DEVELOPER,
    GUEST,
    LIMITED_GUEST,
    NON_MEMBER,
    ANONYMOUS,
    ROBOT_PULL,
    ROBOT_PUSH,
    ROBOT_DELETE,
    ROBOT_PATTERN,
)
"""Every kind of caller the tests try, as the column names of their tables."""

USERS: Final = {ADMIN: "sysadmin", NON_MEMBER: "outsider"} | {
    role: role.replace("_", "-") for role in (PROJECT_ADMIN, MAINTAINER, DEVELOPER, GUEST, LIMITED_GUEST)
}
"""Role -> the user name that has it (members have it in ``pub`` and ``priv``)."""
MEMBER_ROLES: Final = {
    PROJECT_ADMIN: Role.PROJECT_ADMIN,
    MAINTAINER: Role.MAINTAINER,
    DEVELOPER: Role.DEVELOPER,
    GUEST: Role.GUEST,
    LIMITED_GUEST: Role.LIMITED_GUEST,
}
ROBOTS: Final[Mapping[str, tuple[str, frozenset[Action], str | None]]] = {
    ROBOT_PULL: ("pull", frozenset({Action.PULL}), None),
    ROBOT_PUSH: ("push", frozenset({Action.PULL, Action.PUSH}), None),
    ROBOT_DELETE: ("delete", frozenset({Action.PULL, Action.DELETE}), None),
    ROBOT_PATTERN: ("pattern", frozenset({Action.PULL, Action.PUSH, Action.LIST}), "{project}/app*"),
}
"""Role -> (robot name suffix, permissions, repository pattern or None) of the robots of each member project."""


def password_of(user: str) -> str:
    """The password of a world user: distinctive, so a test can look for it in responses and logs."""
    return f"pw.{user}.Kq7-zV9"


def robot_name(role: str, project: str) -> str:
    """The name of ``project``'s robot playing ``role`` (without the ``robot$`` prefix)."""
    return f"{project}-{ROBOTS[role][0]}"


def app_image(project: str) -> ManifestDoc:
    """The image tagged ``v1`` in ``<project>/app``."""
    return make_image(f"{project}/app")


def base_image(project: str) -> ManifestDoc:
    """The image tagged ``v1`` in ``<project>/base``."""
    return make_image(f"{project}/base")


REPOSITORIES: Final = tuple(sorted([f"{p}/app" for p in MEMBER_PROJECTS] + [f"{p}/base" for p in PROJECTS]))
"""Every repository of the world, as the catalog sorts them."""


@dataclass(frozen=True)
class Account:
    """A caller: ``username`` ``None`` is the anonymous one."""

    role: str
    username: str | None = None
    password: str | None = None

    @property
    def auth(self) -> httpx.Auth:
        """Basic credentials for httpx (for anonymous, an ``Auth`` that adds nothing)."""
        if self.username is None or self.password is None:
            return httpx.Auth()
        return httpx.BasicAuth(self.username, self.password)

    @property
    def subject(self) -> str:
        """The token ``sub`` / audit actor of this account (``""`` for anonymous)."""
        return self.username or ""


@dataclass(frozen=True)
class World:
    """The accounts of a populated registry (robot secrets are generated, so they are kept here)."""

    robot_secrets: Mapping[str, str]

    def account(self, role: str, project: str = PRIVATE) -> Account:
        """The account playing ``role``; robots are those of ``project`` (``pub`` or ``priv``)."""
        if role == ANONYMOUS:
            return Account(role)
        if role in ROBOTS:
            name = robot_name(role, project)
            return Account(role, f"robot${name}", self.robot_secrets[name])
        return Account(role, USERS[role], password_of(USERS[role]))


def access_of(client: RegistryClient) -> AccessControl:
    """The access-control object of the app under test."""
    access: AccessControl = client.app.state.access
    return access


@contextlib.contextmanager
def as_account(client: RegistryClient, account: Account) -> Iterator[RegistryClient]:
    """Let ``client``'s own requests (``push`` and friends) carry ``account``'s Basic credentials."""
    previous = client.http.auth
    client.http.auth = account.auth
    try:
        yield client
    finally:
        client.http.auth = httpx.Auth() if previous is None else previous


async def populate(client: RegistryClient) -> World:
    """Create the world's accounts, projects, memberships and robots, and push its images as the admin."""
    store = access_of(client).store
    store.create_user(USERS[ADMIN], password=password_of(USERS[ADMIN]), is_admin=True)
    for role in (*MEMBER_ROLES, NON_MEMBER):
        store.create_user(USERS[role], password=password_of(USERS[role]))
    for project, public in PROJECTS.items():
        store.create_project(project, public=public)
    secrets: dict[str, str] = {}
    for project in MEMBER_PROJECTS:
        for role, member_role in MEMBER_ROLES.items():
            store.set_member(project, member_role, user=USERS[role])
        for role, (_, permissions, pattern) in ROBOTS.items():
            patterns = None if pattern is None else [pattern.format(project=project)]
            name = robot_name(role, project)
            _, secrets[name] = store.create_robot(name, permissions, project=project, repositories=patterns)
    world = World(secrets)
    with as_account(client, world.account(ADMIN)):
        for project in PROJECTS:
            await client.push(f"{project}/base", base_image(project), "v1")
        for project in MEMBER_PROJECTS:
            await client.push(f"{project}/app", app_image(project), "v1")
    return world


CHALLENGE_PREFIX: Final = 'Bearer realm="http://registry.test/auth/token",service="trustyard"'


def assert_challenge(response: httpx.Response, scope: str | None = None, error: str | None = None) -> None:
    """The response challenges the client to fetch a token (for ``scope``, with ``error``), nothing else."""
    expected = CHALLENGE_PREFIX
    if scope is not None:
        expected += f',scope="{scope}"'
    if error is not None:
        expected += f',error="{error}"'
    assert response.headers["www-authenticate"] == expected


def assert_insufficient_scope(response: httpx.Response, scope: str) -> None:
    """The caller may do this but its token does not say so: ``403 DENIED`` with a challenge for the scope
    needed (RFC 6750 section 3.1), so the client fetches a larger token."""
    assert_error(response, 403, "DENIED")
    assert_challenge(response, scope, "insufficient_scope")


# -- settings, hashing and apps ---------------------------------------------------------------------------------


CHEAP_HASHER: Final = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


@contextlib.contextmanager
def isolated_environment() -> Iterator[None]:
    """No ``TRUSTYARD_*`` variable of the caller's environment, and cheap password hashing (see above)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("TRUSTYARD_"):
                mp.delenv(key)
        mp.setattr(passwords, "_HASHER", CHEAP_HASHER)
        yield


def secure_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings as ``trustyard serve`` has them out of the box (authentication required), for a test app."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "fsync": False,
        "insecure_anonymous_push": False,
    }
    values.update(overrides)
    return load_settings(**values)


async def open_app(stack: AsyncExitStack, settings: Settings) -> RegistryClient:
    """The real app over the migrated database of ``settings``, with an in-process client (closed with ``stack``)."""
    db = Database(settings.metadata_url, migrate=False)  # migrated already: checking again costs 30 ms a test
    stack.callback(db.dispose)
    service = RegistryService(
        db=db,
        store=FilesystemBlobStore(settings.data_dir, fsync=settings.fsync),
        max_manifest_size=settings.max_manifest_size,
    )
    app = create_app(settings, registry=service)
    transport = httpx.ASGITransport(app=app)
    http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url=BASE))
    return RegistryClient(http, app, settings)


@dataclass(frozen=True)
class WorldTemplate:
    """A populated SQLite database and data folder (blobs, token key), copied for each test."""

    root: Path
    world: World

    @classmethod
    def build(cls, root: Path, migrated_sqlite: Path) -> WorldTemplate:
        """Populate a copy of the migrated empty database under ``root`` (call inside ``isolated_environment``)."""
        shutil.copyfile(migrated_sqlite, root / "world.db")

        async def run() -> World:
            async with AsyncExitStack() as stack:
                client = await open_app(stack, cls._settings(root))
                world = await populate(client)
                assert access_of(client).tokens.key_id  # the signing key, created now, is part of the template
                return world

        return cls(root, asyncio.run(run()))

    @staticmethod
    def _settings(root: Path, **overrides: Any) -> Settings:
        return secure_settings(root / "data", f"sqlite:///{root / 'world.db'}", **overrides)

    async def open(self, stack: AsyncExitStack, dest: Path, **overrides: Any) -> RegistryClient:
        """A client of a fresh copy of the world in ``dest`` (settings ``overrides`` on top)."""
        for path in self.root.glob("world.db*"):
            shutil.copyfile(path, dest / path.name)
        shutil.copytree(self.root / "data", dest / "data")
        return await open_app(stack, self._settings(dest, **overrides))


WorldFactory = Callable[..., Awaitable[RegistryClient]]


def world_fixtures() -> tuple[object, object, object, object]:
    """A test module's fixtures over the world; bind them to these names in the module (``ruff`` forbids
    importing fixtures): ``isolated, template, open_world, registry = world_fixtures()``.

    - ``isolated`` (module, autouse): ``isolated_environment`` for the whole module;
    - ``template`` (module): the ``WorldTemplate``, built once;
    - ``open_world`` (test): ``await open_world(**settings)`` is a client of the test's own copy of the world;
    - ``registry`` (test): ``open_world()`` with the default (secure) settings.
    """

    @pytest.fixture(scope="module", autouse=True)
    def isolated() -> Iterator[None]:
        with isolated_environment():
            yield

    @pytest.fixture(scope="module")
    def template(isolated: None, tmp_path_factory: pytest.TempPathFactory, migrated_sqlite: Path) -> WorldTemplate:
        return WorldTemplate.build(tmp_path_factory.mktemp("access-world"), migrated_sqlite)

    @pytest.fixture
    async def open_world(template: WorldTemplate, tmp_path: Path) -> AsyncIterator[WorldFactory]:
        async with AsyncExitStack() as stack:
            count = 0

            async def factory(**overrides: Any) -> RegistryClient:
                nonlocal count
                count += 1
                dest = tmp_path / f"world{count}"
                dest.mkdir()
                return await template.open(stack, dest, **overrides)

            yield factory

    @pytest.fixture
    async def registry(open_world: WorldFactory) -> RegistryClient:
        return await open_world()

    return isolated, template, open_world, registry
