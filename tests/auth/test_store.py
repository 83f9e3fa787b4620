"""The identity store on SQLite and PostgreSQL: users, local authentication, teams, projects, roles, robots,
the first administrator, and migration 0002 over a database holding 0001 data.

Every test taking ``database_url`` runs on both backends (``tests/fixtures/databases.py``). Not here: the role
table itself (``test_roles.py``), hashing (``test_passwords.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher
from sqlalchemy import func, inspect, select, text

from trustyard.auth.errors import AuthenticationError, AuthError
from trustyard.auth.model import Action, Membership, Role
from trustyard.auth.passwords import needs_rehash
from trustyard.auth.providers import IdentityProvider, LocalIdentityProvider
from trustyard.auth.store import (
    ADMIN_NAME,
    IdentityExistsError,
    IdentityStore,
    ProjectNotEmptyError,
    UnknownIdentityError,
)
from trustyard.db import models
from trustyard.db.engine import Database
from trustyard.registry.metadata import MetadataStore, NewManifest

PULL_PUSH = {Action.PULL, Action.PUSH}


@pytest.fixture
def store(database_url: str) -> Iterator[IdentityStore]:
    """An identity store over a fresh, migrated database."""
    db = Database(database_url)
    try:
        yield IdentityStore(db)
    finally:
        db.dispose()


@pytest.fixture
def provider(store: IdentityStore) -> IdentityProvider:
    """Local authentication over ``store``."""
    return LocalIdentityProvider(store)


# -- users and local authentication ------------------------------------------------------------------------------


def test_a_created_user_authenticates_with_its_password(store: IdentityStore, provider: IdentityProvider) -> None:
    made = store.create_user("alice", email="alice@example.org", password="wonderland")
    assert not made.is_admin and not made.disabled
    assert store.get_user("alice") == made
    assert provider.authenticate("alice", "wonderland") == made


def test_a_password_is_stored_only_as_an_argon2id_hash(store: IdentityStore) -> None:
    store.create_user("alice", password="wonderland")
    with store.db.read() as conn:
        stored = conn.execute(select(models.users)).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert all("wonderland" not in str(value) for value in stored)


def test_a_wrong_password_raises(store: IdentityStore, provider: IdentityProvider) -> None:
    store.create_user("alice", password="wonderland")
    with pytest.raises(AuthenticationError, match="invalid username or password"):
        provider.authenticate("alice", "Wonderland")


def test_an_unknown_user_raises_the_same_error(provider: IdentityProvider) -> None:
    with pytest.raises(AuthenticationError, match="invalid username or password"):
        provider.authenticate("mallory", "anything")


def test_a_user_without_a_local_password_cannot_log_in_with_one(
    store: IdentityStore, provider: IdentityProvider
) -> None:
    store.create_user("ldap-user")
    with pytest.raises(AuthenticationError, match="invalid username or password"):
        provider.authenticate("ldap-user", "")


def test_a_disabled_user_cannot_authenticate_until_enabled(store: IdentityStore, provider: IdentityProvider) -> None:
    store.create_user("alice", password="wonderland")
    store.set_user_disabled("alice")
    disabled = store.get_user("alice")
    assert disabled is not None and disabled.disabled
    with pytest.raises(AuthenticationError, match="disabled"):
        provider.authenticate("alice", "wonderland")
    with pytest.raises(AuthenticationError, match="invalid username or password"):
        provider.authenticate("alice", "guess")  # a wrong password does not learn that the account is disabled
    store.set_user_disabled("alice", False)
    assert provider.authenticate("alice", "wonderland").name == "alice"


def test_a_changed_password_replaces_the_old_one(store: IdentityStore, provider: IdentityProvider) -> None:
    store.create_user("alice", password="wonderland")
    store.set_password("alice", "looking-glass")
    with pytest.raises(AuthenticationError):
        provider.authenticate("alice", "wonderland")
    provider.authenticate("alice", "looking-glass")
    store.set_password("alice", None)
    with pytest.raises(AuthenticationError):
        provider.authenticate("alice", "looking-glass")


def test_a_deleted_user_cannot_authenticate_and_loses_its_memberships(
    store: IdentityStore, provider: IdentityProvider
) -> None:
    store.create_user("alice", password="wonderland")
    store.create_project("library")
    store.create_team("devs")
    store.add_team_member("devs", "alice")
    store.set_member("library", Role.DEVELOPER, user="alice")
    store.delete_user("alice")
    assert store.get_user("alice") is None
    with pytest.raises(AuthenticationError):
        provider.authenticate("alice", "wonderland")
    assert store.members("library") == []
    assert store.team_members("devs") == []
    with pytest.raises(UnknownIdentityError):
        store.delete_user("alice")


def test_a_weak_hash_is_replaced_on_login(store: IdentityStore, provider: IdentityProvider) -> None:
    store.create_user("alice")
    store.set_password_hash("alice", PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("pw"))
    provider.authenticate("alice", "pw")
    found = store.credentials("alice")
    assert found is not None and found[1] is not None
    assert not needs_rehash(found[1])
    provider.authenticate("alice", "pw")


@pytest.mark.parametrize("kind", ["user", "team", "project"])
def test_names_are_unique(store: IdentityStore, kind: str) -> None:
    creators: dict[str, Callable[[str], object]] = {
        "user": store.create_user,
        "team": store.create_team,
        "project": store.create_project,
    }
    create = creators[kind]
    create("same")
    with pytest.raises(IdentityExistsError, match="exists already"):
        create("same")


def test_changes_to_unknown_names_raise(store: IdentityStore) -> None:
    with pytest.raises(UnknownIdentityError, match="no user named 'nobody'"):
        store.set_password("nobody", "x")
    with pytest.raises(UnknownIdentityError, match="no project named 'nowhere'"):
        store.set_member("nowhere", Role.GUEST, user="nobody")
    store.create_project("library")
    with pytest.raises(UnknownIdentityError, match="no user named 'nobody'"):
        store.set_member("library", Role.GUEST, user="nobody")
    with pytest.raises(UnknownIdentityError, match="no team"):
        store.add_team_member("ghosts", "nobody")


# -- projects, memberships and role resolution ----------------------------------------------------------------


def test_projects_are_private_unless_made_public(store: IdentityStore) -> None:
    assert not store.create_project("private").public
    assert store.create_project("library", public=True).public
    store.set_project_public("private", True)
    store.set_project_public("library", False)
    assert [(p.name, p.public) for p in store.list_projects()] == [("library", False), ("private", True)]
    assert store.get_project("nowhere") is None


@pytest.mark.parametrize("name", ["Library", "a/b", "..", "-x", "", "x" * 256, "lib%2fx"])
def test_a_project_name_is_one_repository_name_component(store: IdentityStore, name: str) -> None:
    with pytest.raises(AuthError, match="invalid project name"):
        store.create_project(name)
    assert store.list_projects() == []


def test_a_direct_member_has_its_role_and_a_new_role_replaces_it(store: IdentityStore) -> None:
    store.create_user("alice")
    store.create_project("library")
    store.create_project("other")
    assert store.role_of("alice", "library") is None
    store.set_member("library", Role.GUEST, user="alice")
    assert store.role_of("alice", "library") is Role.GUEST
    store.set_member("library", Role.MAINTAINER, user="alice")
    assert store.role_of("alice", "library") is Role.MAINTAINER
    assert store.members("library") == [Membership(project="library", role=Role.MAINTAINER, user="alice")]
    assert store.role_of("alice", "other") is None
    assert store.remove_member("library", user="alice")
    assert not store.remove_member("library", user="alice")
    assert store.role_of("alice", "library") is None


def test_a_team_members_role_comes_through_the_team(store: IdentityStore) -> None:
    for name in ("alice", "bob"):
        store.create_user(name)
    store.create_project("library")
    store.create_team("devs")
    store.add_team_member("devs", "alice")
    store.add_team_member("devs", "alice")  # no change
    store.set_member("library", Role.DEVELOPER, team="devs")
    assert store.role_of("alice", "library") is Role.DEVELOPER
    assert store.role_of("bob", "library") is None
    assert store.members("library") == [Membership(project="library", role=Role.DEVELOPER, team="devs")]
    assert store.remove_team_member("devs", "alice")
    assert store.role_of("alice", "library") is None


@pytest.mark.parametrize(
    ("direct", "via_teams", "expected"),
    [
        pytest.param(Role.GUEST, [Role.MAINTAINER], Role.MAINTAINER, id="team-above-direct"),
        pytest.param(Role.PROJECT_ADMIN, [Role.DEVELOPER], Role.PROJECT_ADMIN, id="direct-above-team"),
        pytest.param(None, [Role.LIMITED_GUEST, Role.DEVELOPER, Role.GUEST], Role.DEVELOPER, id="best-of-teams"),
        pytest.param(Role.LIMITED_GUEST, [], Role.LIMITED_GUEST, id="direct-only"),
    ],
)
def test_the_highest_of_direct_and_team_roles_wins(
    store: IdentityStore, direct: Role | None, via_teams: list[Role], expected: Role
) -> None:
    store.create_user("alice")
    store.create_project("library")
    if direct is not None:
        store.set_member("library", direct, user="alice")
    for i, role in enumerate(via_teams):
        store.create_team(f"team{i}")
        store.add_team_member(f"team{i}", "alice")
        store.set_member("library", role, team=f"team{i}")
    assert store.role_of("alice", "library") is expected


def test_a_disabled_user_has_no_role(store: IdentityStore) -> None:
    store.create_user("alice")
    store.create_project("library")
    store.create_team("devs")
    store.add_team_member("devs", "alice")
    store.set_member("library", Role.DEVELOPER, team="devs")
    store.set_member("library", Role.GUEST, user="alice")
    store.set_user_disabled("alice")
    assert store.role_of("alice", "library") is None


def test_a_project_holding_repositories_cannot_be_deleted(store: IdentityStore) -> None:
    """Left behind, its repositories would belong to whoever next created a project of that name."""
    store.create_project("acme")
    store.create_project("a_c")  # '_' is a LIKE wildcard: "a_c/%" must not match "abc/app"
    with store.db.write() as conn:
        conn.execute(models.repositories.insert().values(name="acme/app", created_at=time.time()))
        conn.execute(models.repositories.insert().values(name="abc/app", created_at=time.time()))
    with pytest.raises(ProjectNotEmptyError, match="still holds 1 repository"):
        store.delete_project("acme")
    assert store.get_project("acme") is not None
    store.delete_project("a_c")
    assert store.get_project("a_c") is None


def test_deleting_a_team_or_project_removes_its_memberships(store: IdentityStore) -> None:
    store.create_user("alice")
    store.create_project("library")
    store.create_team("devs")
    store.add_team_member("devs", "alice")
    store.set_member("library", Role.MAINTAINER, team="devs")
    store.delete_team("devs")
    assert store.role_of("alice", "library") is None
    store.set_member("library", Role.GUEST, user="alice")
    store.delete_project("library")
    store.create_project("library")
    assert store.role_of("alice", "library") is None
    with store.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(models.project_members)).scalar_one() == 0


def test_a_membership_names_exactly_one_of_user_and_team(store: IdentityStore) -> None:
    store.create_user("alice")
    store.create_team("devs")
    store.create_project("library")
    with pytest.raises(ValueError, match="exactly one"):
        store.set_member("library", Role.GUEST, user="alice", team="devs")
    with pytest.raises(ValueError, match="exactly one"):
        store.set_member("library", Role.GUEST)


# -- robot accounts ------------------------------------------------------------------------------------------------


def test_a_robots_secret_is_returned_once_and_stored_only_hashed(store: IdentityStore) -> None:
    store.create_project("library")
    robot, secret = store.create_robot("library-ci", PULL_PUSH, project="library", expires_at=None)
    assert robot.project == "library" and robot.permissions == PULL_PUSH and not robot.disabled
    assert len(secret) >= 43
    with store.db.read() as conn:
        row = conn.execute(select(models.robots)).one()
    assert row.secret_hash.startswith("$argon2id$")
    assert all(secret not in str(value) for value in row)
    assert store.get_robot("library-ci") == robot
    assert store.authenticate_robot("library-ci", secret) == robot


def test_a_wrong_or_unknown_robot_secret_is_refused(store: IdentityStore) -> None:
    _, secret = store.create_robot("ci", {Action.PULL})
    with pytest.raises(AuthenticationError, match="invalid robot name or secret"):
        store.authenticate_robot("ci", secret + "x")
    with pytest.raises(AuthenticationError, match="invalid robot name or secret"):
        store.authenticate_robot("nobody", secret)


def test_an_expired_robot_is_refused(store: IdentityStore) -> None:
    now = time.time()
    _, secret = store.create_robot("ci", {Action.PULL}, expires_at=now + 60)
    assert store.authenticate_robot("ci", secret, now=now).name == "ci"
    with pytest.raises(AuthenticationError, match="expired"):
        store.authenticate_robot("ci", secret, now=now + 60)
    store.set_robot_expiry("ci", now - 1)
    with pytest.raises(AuthenticationError, match="expired"):
        store.authenticate_robot("ci", secret)
    store.set_robot_expiry("ci", None)
    store.authenticate_robot("ci", secret, now=now + 10**9)


def test_a_disabled_robot_is_refused_until_enabled(store: IdentityStore) -> None:
    _, secret = store.create_robot("ci", {Action.PULL})
    store.set_robot_disabled("ci")
    with pytest.raises(AuthenticationError, match="disabled"):
        store.authenticate_robot("ci", secret)
    store.set_robot_disabled("ci", False)
    store.authenticate_robot("ci", secret)


def test_rotating_a_robots_secret_retires_the_old_one(store: IdentityStore) -> None:
    _, old = store.create_robot("ci", {Action.PULL})
    new = store.rotate_robot_secret("ci")
    assert new != old
    with pytest.raises(AuthenticationError):
        store.authenticate_robot("ci", old)
    store.authenticate_robot("ci", new)


def test_system_and_project_robots_are_listed_apart_and_go_with_their_project(store: IdentityStore) -> None:
    store.create_project("library")
    store.create_robot("system", {Action.PULL})
    store.create_robot("library-ci", PULL_PUSH, project="library")
    assert [(r.name, r.project) for r in store.list_robots()] == [("system", None)]
    assert [r.name for r in store.list_robots("library")] == ["library-ci"]
    with pytest.raises(IdentityExistsError):
        store.create_robot("system", {Action.PULL})
    store.delete_project("library")
    assert store.get_robot("library-ci") is None
    store.delete_robot("system")
    assert store.list_robots() == []


@pytest.mark.parametrize(
    "permissions",
    [pytest.param(set(), id="none"), pytest.param({Action.PULL, Action.MANAGE_MEMBERS}, id="manage-members")],
)
def test_a_robot_gets_only_robot_actions(store: IdentityStore, permissions: set[Action]) -> None:
    with pytest.raises(AuthError, match="robot account"):
        store.create_robot("bad", permissions)
    assert store.get_robot("bad") is None


# -- the first administrator -----------------------------------------------------------------------------------


def test_bootstrap_generates_an_admin_password_once(store: IdentityStore, provider: IdentityProvider) -> None:
    generated = store.bootstrap_admin(None)
    assert generated is not None and len(generated) >= 43
    admin = provider.authenticate(ADMIN_NAME, generated)
    assert admin.is_admin and not admin.disabled
    assert store.bootstrap_admin(None) is None
    assert store.bootstrap_admin("another") is None
    provider.authenticate(ADMIN_NAME, generated)  # unchanged by the later calls
    with pytest.raises(AuthenticationError):
        provider.authenticate(ADMIN_NAME, "another")


def test_bootstrap_with_a_password_uses_it_and_never_recreates_a_deleted_admin(
    store: IdentityStore, provider: IdentityProvider
) -> None:
    assert store.bootstrap_admin("from-the-environment") is None
    assert provider.authenticate(ADMIN_NAME, "from-the-environment").is_admin
    store.create_user("root", password="x", is_admin=True)
    store.delete_user(ADMIN_NAME)
    assert store.bootstrap_admin(None) is None
    assert store.get_user(ADMIN_NAME) is None


# -- migration 0002 --------------------------------------------------------------------------------------------


def _head() -> str:
    """The newest Alembic revision of the migrations folder."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(models.__file__).parent / "migrations"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def _migrate(db: Database, *, to: str, down: bool = False) -> None:
    """Run Alembic up (or down) to revision ``to`` on ``db``, the way ``Database.migrate`` hands it over."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(models.__file__).parent / "migrations"))
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, to)
        conn.commit()


def test_migrations_upgrade_a_database_holding_0001_data_and_downgrade_cleanly(database_url: str) -> None:
    db = Database(database_url, migrate=False)
    try:
        _migrate(db, to="0001")
        with db.read() as conn:
            assert "users" not in inspect(conn).get_table_names()
        meta = MetadataStore(db)
        layer, manifest = "sha256:" + "1" * 64, "sha256:" + "3" * 64
        with db.write() as conn:
            meta.record_blob(conn, "library/app", layer, 20)
        meta.put_manifest(
            "library/app",
            NewManifest(
                digest=manifest,
                media_type="application/vnd.oci.image.manifest.v1+json",
                size=30,
                artifact_type=None,
                subject=None,
                annotations={},
                blob_digests=frozenset({layer}),
                child_digests=frozenset(),
            ),
            ["v1"],
            lambda: None,
        )
        db.migrate()
        with db.read() as conn:
            # the newest revision, whichever later migrations add on top of 0003
            assert [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))] == [_head()]
            assert {"users", "teams", "team_members", "projects", "project_members", "robots", "audit_events"} <= set(
                inspect(conn).get_table_names()
            )
        record = MetadataStore(db).resolve_tag("library/app", "v1")
        assert record is not None and record.digest == manifest
        store = IdentityStore(db)
        assert store.bootstrap_admin("pw") is None
        upgraded = store.get_project("library")  # 0003 gives repositories pushed before access control a project
        assert upgraded is not None and not upgraded.public
        store.set_member("library", Role.PROJECT_ADMIN, user=ADMIN_NAME)
        assert store.role_of(ADMIN_NAME, "library") is Role.PROJECT_ADMIN
        assert store.token_generation(ADMIN_NAME) == 0
        _migrate(db, to="0002", down=True)
        with db.read() as conn:
            assert "audit_events" not in inspect(conn).get_table_names()
            assert "token_generation" not in {c["name"] for c in inspect(conn).get_columns("users")}
        assert store.role_of(ADMIN_NAME, "library") is Role.PROJECT_ADMIN
        _migrate(db, to="0001", down=True)
        with db.read() as conn:
            assert "users" not in inspect(conn).get_table_names()
        assert MetadataStore(db).resolve_tag("library/app", "v1") is not None
    finally:
        db.dispose()
