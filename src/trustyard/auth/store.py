"""Identities in SQL: users, teams, projects, memberships with roles, robot accounts, the first admin.

``IdentityStore`` is the data side of access control over a ``Database`` (SQLite or PostgreSQL, the tables
of ``db/models.py``); every method is one short transaction. Secrets go in only through ``passwords.py``:
the store keeps argon2id hashes and hands a generated robot secret back exactly once. ``role_of`` resolves a
user's role in a project from direct and team memberships (the highest wins).

Not here: deciding whether a request is allowed (the permission checks, with the system-admin and public-project
rules), checking a user's password (``providers.py``), tokens, throttling, audit.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from sqlalchemy import Connection, Row, delete, func, or_, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from trustyard.auth.errors import AuthenticationError, AuthError
from trustyard.auth.model import (
    ROBOT_ACTIONS,
    AcceptedVulnerability,
    Action,
    Membership,
    Project,
    ProjectPolicy,
    Robot,
    Role,
    Team,
    User,
)
from trustyard.auth.passwords import hash_secret, new_secret, verify_secret
from trustyard.auth.roles import highest
from trustyard.db.engine import Database
from trustyard.db.models import project_members, projects, repositories, robots, team_members, teams, users
from trustyard.oci.reference import InvalidReferenceError, validate_name

ADMIN_NAME = "admin"
"""The system administrator ``bootstrap_admin`` creates on first start."""


class IdentityExistsError(AuthError):
    """A user, team, project or robot of that name exists already."""


class ProjectNotEmptyError(IdentityExistsError):
    """A project to delete still holds repositories (a conflict, like a name that exists)."""


class UnknownIdentityError(AuthError):
    """No user, team, project or robot of that name."""


def _project(row: Row[Any]) -> Project:
    accepted = tuple(
        AcceptedVulnerability(str(e["id"]), e.get("expires_at"), str(e.get("reason", "")))
        for e in json.loads(row.allowlist or "[]")
    )
    policy = ProjectPolicy(bool(row.content_trust), row.block_severity, bool(row.block_unscanned), accepted)
    return Project(row.id, row.name, bool(row.public), row.created_at, policy)


def _allowlist_json(policy: ProjectPolicy) -> str:
    return json.dumps([{"id": a.id, "expires_at": a.expires_at, "reason": a.reason} for a in policy.allowlist])


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        name=row.name,
        email=row.email,
        is_admin=bool(row.is_admin),
        disabled=bool(row.disabled),
        created_at=row.created_at,
    )


def _robot(row: Row[Any], project: str | None) -> Robot:
    return Robot(
        id=row.id,
        name=row.name,
        project=project,
        permissions=frozenset(Action(a) for a in json.loads(row.permissions)),
        repositories=None if row.repositories is None else tuple(json.loads(row.repositories)),
        expires_at=row.expires_at,
        disabled=bool(row.disabled),
        created_at=row.created_at,
    )


def _permissions(actions: Iterable[Action]) -> str:
    chosen = frozenset(Action(a) for a in actions)
    if not chosen:
        raise AuthError("a robot account needs at least one permission")
    if not chosen <= ROBOT_ACTIONS:
        extra = ", ".join(sorted(chosen - ROBOT_ACTIONS))
        raise AuthError(f"a robot account cannot be granted {extra}")
    return json.dumps(sorted(chosen))


_PROJECT_NAME_RULE = (
    "invalid project name {name!r}: a project name is the first component of repository names "
    "(lower-case letters and digits, joined by '.', '_', '__' or '-')"
)

_ROBOT_COLUMNS = (*robots.c, projects.c.name.label("project_name"))

ROBOT_PREFIX: Final = "robot$"
"""How a robot account is named where a user name could stand (Basic auth, token subjects): ``robot$ci``."""

_ACCOUNT_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,254}")
_ROBOT_NAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,254}")
_PATTERN: Final = re.compile(r"[a-z0-9._/*?\[\]-]{1,255}")


def _check_name(name: str, what: str, rule: re.Pattern[str] = _ACCOUNT_NAME) -> None:
    """User, team and robot names: no ':' (Basic auth), '$' (robot prefix), spaces or control characters."""
    if not rule.fullmatch(name):
        allowed = "letters, digits, '.', '_', '@' and '-'" if rule is _ACCOUNT_NAME else "a-z, 0-9, '.', '_', '-'"
        raise AuthError(f"invalid {what} name {name[:100]!r}: use {allowed}, starting with a letter or digit")


def _patterns(repositories: Iterable[str] | None) -> str | None:
    if repositories is None:
        return None
    chosen = sorted(set(repositories))
    if not chosen:
        raise AuthError("a robot limited to repositories needs at least one repository pattern")
    for pattern in chosen:
        if not _PATTERN.fullmatch(pattern):
            raise AuthError(f"invalid repository pattern {pattern[:100]!r}: use a-z, 0-9, '._/-' and * ? [ ]")
    return json.dumps(chosen)


class IdentityStore:
    """Users, teams, projects, memberships and robots in SQL; thread-safe (one connection per call)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.version = 0
        """Bumped after every change made through this object: caches of permissions compare it."""

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.db.write() as conn:
                yield conn
        finally:
            self.version += 1

    def _insert(self, table: Any) -> Any:
        return sqlite.insert(table) if self.db.is_sqlite else postgresql.insert(table)

    @staticmethod
    def _id(conn: Connection, table: Any, name: str, what: str) -> int:
        found = conn.execute(select(table.c.id).where(table.c.name == name)).scalar()
        if found is None:
            raise UnknownIdentityError(f"no {what} named {name!r}")
        return int(found)

    def _create(self, table: Any, what: str, name: str, **values: object) -> Row[Any]:
        """Insert a named row; ``IdentityExistsError`` if the name is taken (also when racing another node)."""
        stmt = (
            self._insert(table)
            .values(name=name, created_at=time.time(), **values)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(*table.c)
        )
        with self._write() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise IdentityExistsError(f"a {what} named {name!r} exists already")
        return row

    # -- users -------------------------------------------------------------------------------------------------

    def create_user(
        self, name: str, *, email: str | None = None, password: str | None = None, is_admin: bool = False
    ) -> User:
        """A new, enabled user; without ``password`` it cannot log in with a local password."""
        _check_name(name, "user")
        hashed = None if password is None else hash_secret(password)
        row = self._create(users, "user", name, email=email, password_hash=hashed, is_admin=is_admin, disabled=False)
        return _user(row)

    def get_user(self, name: str) -> User | None:
        """The user of that name, disabled or not."""
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with self.db.read() as conn:
            return [_user(r) for r in conn.execute(select(users).order_by(users.c.name))]

    def credentials(self, name: str) -> tuple[User, str | None] | None:
        """The user and its password hash (``None``: no local password), for an identity provider."""
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).first()
        return None if row is None else (_user(row), row.password_hash)

    def _update_user(self, name: str, **values: object) -> None:
        with self._write() as conn:
            if not conn.execute(update(users).where(users.c.name == name).values(**values)).rowcount:
                raise UnknownIdentityError(f"no user named {name!r}")

    def set_password(self, name: str, password: str | None) -> None:
        """Replace the user's password (``None`` removes it: no local login); revokes its refresh tokens."""
        hashed = None if password is None else hash_secret(password)
        self._update_user(name, password_hash=hashed, token_generation=users.c.token_generation + 1)

    def token_generation(self, name: str) -> int | None:
        """The user's refresh-token generation (``None``: no such user, or disabled)."""
        with self.db.read() as conn:
            row = conn.execute(select(users.c.token_generation, users.c.disabled).where(users.c.name == name)).first()
        return None if row is None or row.disabled else int(row.token_generation)

    def revoke_tokens(self, name: str) -> None:
        """Make every refresh token issued to the user so far stop working."""
        self._update_user(name, token_generation=users.c.token_generation + 1)

    def set_password_hash(self, name: str, hashed: str) -> None:
        """Store an already computed hash (an identity provider re-hashing with today's parameters)."""
        self._update_user(name, password_hash=hashed)

    def set_user_disabled(self, name: str, disabled: bool = True) -> None:
        """Disable (or enable again) a user; a disabled user cannot authenticate (refresh tokens revoked)."""
        self._update_user(name, disabled=disabled, token_generation=users.c.token_generation + 1)

    def set_email(self, name: str, email: str | None) -> None:
        """Change (or, with ``None``, remove) a user's e-mail address."""
        self._update_user(name, email=email)

    def set_admin(self, name: str, is_admin: bool) -> None:
        """Make a user a system administrator, or no longer one."""
        self._update_user(name, is_admin=is_admin)

    def delete_user(self, name: str) -> None:
        """Delete a user with its team and project memberships."""
        with self._write() as conn:
            if not conn.execute(delete(users).where(users.c.name == name)).rowcount:
                raise UnknownIdentityError(f"no user named {name!r}")

    def bootstrap_admin(self, password: str | None) -> str | None:
        """Create the system administrator ``admin`` when the database has no user yet (first start).

        The password is ``password`` or, if that is ``None``, a generated one. Returns the generated password
        (to be shown once), ``None`` when ``password`` was given or when nothing was created: once any user
        exists, later calls do nothing, so a deleted or renamed ``admin`` is never re-created. Safe when
        several nodes start at once: only one of them creates the user.
        """
        generated = new_secret() if password is None else None
        hashed = hash_secret(password if password is not None else str(generated))
        now = time.time()
        with self._write() as conn:
            if conn.execute(select(func.count()).select_from(users)).scalar_one():
                return None
            created = conn.execute(
                self._insert(users)
                .values(name=ADMIN_NAME, password_hash=hashed, is_admin=True, disabled=False, created_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(users.c.id)
            ).first()
        return generated if created is not None else None

    # -- teams -------------------------------------------------------------------------------------------------

    def create_team(self, name: str) -> Team:
        """A new, empty team."""
        _check_name(name, "team")
        row = self._create(teams, "team", name)
        return Team(id=row.id, name=row.name, created_at=row.created_at)

    def get_team(self, name: str) -> Team | None:
        """The team of that name."""
        with self.db.read() as conn:
            row = conn.execute(select(teams).where(teams.c.name == name)).first()
        return None if row is None else Team(id=row.id, name=row.name, created_at=row.created_at)

    def list_teams(self) -> list[Team]:
        """Every team, by name."""
        with self.db.read() as conn:
            rows = conn.execute(select(teams).order_by(teams.c.name)).all()
        return [Team(id=r.id, name=r.name, created_at=r.created_at) for r in rows]

    def delete_team(self, name: str) -> None:
        """Delete a team; its members lose the roles they had through it."""
        with self._write() as conn:
            if not conn.execute(delete(teams).where(teams.c.name == name)).rowcount:
                raise UnknownIdentityError(f"no team named {name!r}")

    def add_team_member(self, team: str, user: str) -> None:
        """Add a user to a team (no change if already in it)."""
        with self._write() as conn:
            tid = self._id(conn, teams, team, "team")
            uid = self._id(conn, users, user, "user")
            conn.execute(
                self._insert(team_members)
                .values(team_id=tid, user_id=uid)
                .on_conflict_do_nothing(index_elements=["team_id", "user_id"])
            )

    def remove_team_member(self, team: str, user: str) -> bool:
        """Remove a user from a team; whether they were in it."""
        with self._write() as conn:
            tid = self._id(conn, teams, team, "team")
            uid = self._id(conn, users, user, "user")
            result = conn.execute(
                delete(team_members).where(team_members.c.team_id == tid, team_members.c.user_id == uid)
            )
            return bool(result.rowcount)

    def team_members(self, team: str) -> list[str]:
        """The names of a team's members, sorted."""
        with self.db.read() as conn:
            tid = self._id(conn, teams, team, "team")
            q = (
                select(users.c.name)
                .join(team_members, team_members.c.user_id == users.c.id)
                .where(team_members.c.team_id == tid)
                .order_by(users.c.name)
            )
            return [r[0] for r in conn.execute(q)]

    # -- projects ----------------------------------------------------------------------------------------------

    def create_project(self, name: str, *, public: bool = False) -> Project:
        """A new project, private unless ``public``; its name is one component of a repository name."""
        try:
            validate_name(name)
        except InvalidReferenceError as e:
            raise AuthError(_PROJECT_NAME_RULE.format(name=name[:100])) from e
        if "/" in name:
            raise AuthError(_PROJECT_NAME_RULE.format(name=name[:100]))
        row = self._create(projects, "project", name, public=public)
        return _project(row)

    def get_project(self, name: str) -> Project | None:
        """The project of that name."""
        with self.db.read() as conn:
            row = conn.execute(select(projects).where(projects.c.name == name)).first()
        return None if row is None else _project(row)

    def list_projects(self) -> list[Project]:
        """Every project, by name."""
        with self.db.read() as conn:
            rows = conn.execute(select(projects).order_by(projects.c.name)).all()
        return [_project(r) for r in rows]

    def set_project_public(self, name: str, public: bool) -> None:
        """Make a project public (anonymous pull) or private."""
        with self._write() as conn:
            if not conn.execute(update(projects).where(projects.c.name == name).values(public=public)).rowcount:
                raise UnknownIdentityError(f"no project named {name!r}")

    def set_project_policy(self, name: str, policy: ProjectPolicy) -> None:
        """Replace a project's pull policy (content trust, severity threshold, unscanned images, allowlist)."""
        values = {
            "content_trust": policy.content_trust,
            "block_severity": policy.block_severity,
            "block_unscanned": policy.block_unscanned,
            "allowlist": _allowlist_json(policy),
        }
        with self._write() as conn:
            if not conn.execute(update(projects).where(projects.c.name == name).values(**values)).rowcount:
                raise UnknownIdentityError(f"no project named {name!r}")

    def delete_project(self, name: str) -> None:
        """Delete an empty project with its memberships and robot accounts.

        A project that still holds repositories is refused (``ProjectNotEmptyError``), as Harbor does: were its
        repositories left behind, whoever next created a project of that name would administer them.
        """
        held = or_(repositories.c.name == name, repositories.c.name.startswith(name + "/", autoescape=True))
        with self._write() as conn:
            count = conn.execute(select(func.count()).select_from(repositories).where(held)).scalar_one()
            if count:
                raise ProjectNotEmptyError(
                    f"project {name!r} still holds {count} repositor{'y' if count == 1 else 'ies'}; delete them first"
                )
            if not conn.execute(delete(projects).where(projects.c.name == name)).rowcount:
                raise UnknownIdentityError(f"no project named {name!r}")

    # -- memberships -------------------------------------------------------------------------------------------

    def set_member(self, project: str, role: Role, *, user: str | None = None, team: str | None = None) -> None:
        """Give a user or a team (exactly one) ``role`` in ``project``, replacing any role it had there."""
        member = Membership(project=project, role=Role(role), user=user, team=team)
        now = time.time()
        with self._write() as conn:
            pid = self._id(conn, projects, project, "project")
            if member.user is not None:
                key, value = "user_id", self._id(conn, users, member.user, "user")
            else:
                key, value = "team_id", self._id(conn, teams, str(member.team), "team")
            conn.execute(
                self._insert(project_members)
                .values(project_id=pid, role=member.role.value, created_at=now, **{key: value})
                .on_conflict_do_update(index_elements=["project_id", key], set_={"role": member.role.value})
            )

    def remove_member(self, project: str, *, user: str | None = None, team: str | None = None) -> bool:
        """Take a user's or team's membership of ``project`` away; whether it had one."""
        Membership(project=project, role=Role.GUEST, user=user, team=team)  # validates exactly one of them
        with self._write() as conn:
            pid = self._id(conn, projects, project, "project")
            if user is not None:
                cond = project_members.c.user_id == self._id(conn, users, user, "user")
            else:
                cond = project_members.c.team_id == self._id(conn, teams, str(team), "team")
            result = conn.execute(delete(project_members).where(project_members.c.project_id == pid, cond))
            return bool(result.rowcount)

    def members(self, project: str) -> list[Membership]:
        """A project's direct members (users and teams), users first, each sorted by name."""
        with self.db.read() as conn:
            pid = self._id(conn, projects, project, "project")
            q = (
                select(project_members.c.role, users.c.name.label("user"), teams.c.name.label("team"))
                .outerjoin(users, users.c.id == project_members.c.user_id)
                .outerjoin(teams, teams.c.id == project_members.c.team_id)
                .where(project_members.c.project_id == pid)
            )
            rows = conn.execute(q).all()
        found = [Membership(project=project, role=Role(r.role), user=r.user, team=r.team) for r in rows]
        return sorted(found, key=lambda m: (m.user is None, m.user or m.team or ""))

    def role_of(self, user: str, project: str) -> Role | None:
        """The user's role in the project: the highest of its direct role and its teams' roles, else ``None``.

        A disabled user has no role. System administrators and public projects are the permission checks'
        business, not a role.
        """
        direct = (
            select(project_members.c.role)
            .join(users, users.c.id == project_members.c.user_id)
            .join(projects, projects.c.id == project_members.c.project_id)
            .where(users.c.name == user, projects.c.name == project, users.c.disabled.is_(False))
        )
        via_team = (
            select(project_members.c.role)
            .join(team_members, team_members.c.team_id == project_members.c.team_id)
            .join(users, users.c.id == team_members.c.user_id)
            .join(projects, projects.c.id == project_members.c.project_id)
            .where(users.c.name == user, projects.c.name == project, users.c.disabled.is_(False))
        )
        with self.db.read() as conn:
            roles = {Role(r[0]) for r in conn.execute(union_all(direct, via_team))}
        return highest(roles)

    # -- robots ------------------------------------------------------------------------------------------------

    def create_robot(
        self,
        name: str,
        permissions: Iterable[Action],
        *,
        project: str | None = None,
        expires_at: float | None = None,
        repositories: Iterable[str] | None = None,
    ) -> tuple[Robot, str]:
        """A new robot account and its secret, returned this once (only its hash is stored).

        ``project`` ``None`` makes a system robot; ``permissions`` is a non-empty subset of
        ``model.ROBOT_ACTIONS``; ``expires_at`` (epoch seconds) ``None`` never expires; ``repositories``
        (fnmatch patterns over full repository names, e.g. ``team/app-*``) limits the permissions further.
        """
        _check_name(name, "robot", _ROBOT_NAME)
        chosen = _permissions(permissions)
        patterns = _patterns(repositories)
        secret = new_secret()
        hashed = hash_secret(secret)
        with self._write() as conn:
            pid = None if project is None else self._id(conn, projects, project, "project")
            row = conn.execute(
                self._insert(robots)
                .values(
                    name=name,
                    project_id=pid,
                    secret_hash=hashed,
                    permissions=chosen,
                    repositories=patterns,
                    expires_at=expires_at,
                    disabled=False,
                    created_at=time.time(),
                )
                .on_conflict_do_nothing(index_elements=["name"])
                .returning(*robots.c)
            ).first()
        if row is None:
            raise IdentityExistsError(f"a robot named {name!r} exists already")
        return _robot(row, project), secret

    def _robot_row(self, conn: Connection, name: str) -> Row[Any] | None:
        q = select(*_ROBOT_COLUMNS).outerjoin(projects, projects.c.id == robots.c.project_id)
        return conn.execute(q.where(robots.c.name == name)).first()

    def get_robot(self, name: str) -> Robot | None:
        """The robot of that name, disabled or expired or not."""
        with self.db.read() as conn:
            row = self._robot_row(conn, name)
        return None if row is None else _robot(row, row.project_name)

    def list_robots(self, project: str | None = None) -> list[Robot]:
        """The robots of a project, or the system robots (``project`` ``None``), by name."""
        q = select(*_ROBOT_COLUMNS).outerjoin(projects, projects.c.id == robots.c.project_id)
        q = q.where(robots.c.project_id.is_(None) if project is None else projects.c.name == project)
        with self.db.read() as conn:
            rows: Sequence[Row[Any]] = conn.execute(q.order_by(robots.c.name)).all()
        return [_robot(r, r.project_name) for r in rows]

    def _update_robot(self, name: str, **values: object) -> None:
        with self._write() as conn:
            if not conn.execute(update(robots).where(robots.c.name == name).values(**values)).rowcount:
                raise UnknownIdentityError(f"no robot named {name!r}")

    def rotate_robot_secret(self, name: str) -> str:
        """Replace a robot's secret; the new one is returned this once and the old one stops working."""
        secret = new_secret()
        self._update_robot(name, secret_hash=hash_secret(secret))
        return secret

    def set_robot_disabled(self, name: str, disabled: bool = True) -> None:
        """Disable (or enable again) a robot account."""
        self._update_robot(name, disabled=disabled)

    def set_robot_permissions(
        self, name: str, permissions: Iterable[Action], repositories: Iterable[str] | None = None
    ) -> None:
        """Replace a robot's permissions and repository patterns (``None``: every repository in its scope)."""
        self._update_robot(name, permissions=_permissions(permissions), repositories=_patterns(repositories))

    def set_robot_expiry(self, name: str, expires_at: float | None) -> None:
        """Change when a robot expires (``None``: never)."""
        self._update_robot(name, expires_at=expires_at)

    def delete_robot(self, name: str) -> None:
        """Delete a robot account."""
        with self._write() as conn:
            if not conn.execute(delete(robots).where(robots.c.name == name)).rowcount:
                raise UnknownIdentityError(f"no robot named {name!r}")

    def authenticate_robot(self, name: str, secret: str, *, now: float | None = None) -> Robot:
        """The robot whose ``name`` and ``secret`` these are, if enabled and not expired; else raises.

        An unknown name is checked against a dummy hash (same time as a wrong secret). The reason for a
        refusal of a correct secret (disabled, expired) is only told after the secret was verified.
        """
        with self.db.read() as conn:
            row = self._robot_row(conn, name)
        try:
            verify_secret(None if row is None else row.secret_hash, secret)
        except AuthenticationError:
            raise AuthenticationError("invalid robot name or secret") from None
        if row is None:  # pragma: no cover - verify_secret refuses a missing hash
            raise AuthenticationError("invalid robot name or secret")
        robot = _robot(row, row.project_name)
        if robot.disabled:
            raise AuthenticationError(f"robot account {name!r} is disabled")
        if robot.is_expired(time.time() if now is None else now):
            raise AuthenticationError(f"robot account {name!r} has expired")
        return robot
