"""Audited changes of identities: what the management API and ``trustyard admin`` both do to users, teams,
projects, members and robot accounts.

Each method of ``IdentityAdmin`` makes one change through the ``IdentityStore`` and then writes its audit event
before returning (``AuditLog.record(..., wait=True)``), so a change reported done is a change on record. The
event names the actor (a user, ``robot$name``, or ``cli:<unix user>``), the address it came from, and what
changed, never a secret: a new password is recorded as "password changed", a robot secret not at all. The
rules shared by both edges live here too: whoever creates a project administers it, a robot's expiry is given
in seconds from now or as a time, and a partial robot update keeps what it does not name.

Not here: who may make a change (the API authorizes through ``AccessPolicy``; the CLI is whoever can open the
database), parsing requests or command lines.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal

from trustyard.auth.audit import AuditEvent, AuditLog
from trustyard.auth.errors import AuthError
from trustyard.auth.model import Action, Membership, Project, ProjectPolicy, Robot, Role, Team, User
from trustyard.auth.store import IdentityStore, UnknownIdentityError

__all__ = ["KEEP", "Actor", "IdentityAdmin", "Keep", "resolve_expiry"]


class Keep(Enum):
    """The type of ``KEEP``: "leave this field as it is" where ``None`` is a value of its own."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, as the audit log names them, and from where (``None``: this machine)."""

    subject: str
    address: str | None = None


def resolve_expiry(
    seconds: float | None, at: dt.datetime | None, *, now: float | None = None
) -> float | Literal[Keep.KEEP] | None:
    """Epoch seconds of an expiry given as seconds from now or as an aware time; ``KEEP`` if neither is given.

    Raises ``AuthError`` for both at once, a time without a zone, or an expiry that is not in the future.
    """
    if seconds is not None and at is not None:
        raise AuthError("give the expiry as seconds from now or as a time, not both")
    current = time.time() if now is None else now
    if seconds is not None:
        if seconds <= 0:
            raise AuthError("an expiry in seconds from now must be positive")
        return current + seconds
    if at is None:
        return KEEP
    if at.tzinfo is None:
        raise AuthError("an expiry time needs a time zone (RFC 3339, e.g. 2030-01-01T00:00:00Z)")
    if at.timestamp() <= current:
        raise AuthError(f"the expiry {at.isoformat()} is not in the future")
    return at.timestamp()


def _robot_detail(robot: Robot) -> dict[str, Any]:
    return {
        "project": robot.project,
        "permissions": sorted(robot.permissions),
        "repositories": None if robot.repositories is None else list(robot.repositories),
        "expires_at": robot.expires_at,
        "disabled": robot.disabled,
    }


class IdentityAdmin:
    """Changes users, teams, projects, members and robots, and records each change in the audit log."""

    def __init__(self, store: IdentityStore, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit

    def _record(
        self,
        actor: Actor,
        action: str,
        *,
        target: str | None = None,
        project: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        event = AuditEvent(actor.subject, action, project=project, target=target, address=actor.address, detail=detail)
        self.audit.record(event, wait=True)

    # -- users -------------------------------------------------------------------------------------------------

    def user(self, name: str) -> User:
        """The user of that name; ``UnknownIdentityError`` if there is none."""
        found = self.store.get_user(name)
        if found is None:
            raise UnknownIdentityError(f"no user named {name!r}")
        return found

    def create_user(
        self, actor: Actor, name: str, *, password: str | None, email: str | None = None, is_admin: bool = False
    ) -> User:
        """A new user (without ``password`` it cannot log in with a local password)."""
        user = self.store.create_user(name, email=email, password=password, is_admin=is_admin)
        detail = {"email": email, "admin": is_admin, "password": password is not None}
        self._record(actor, "user.create", target=name, detail=detail)
        return user

    def update_user(
        self,
        actor: Actor,
        name: str,
        *,
        email: str | Literal[Keep.KEEP] | None = KEEP,
        is_admin: bool | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> User:
        """Change what is given (``password`` also revokes the user's refresh tokens); the user afterwards."""
        self.user(name)
        detail: dict[str, Any] = {}
        if email is not KEEP:
            self.store.set_email(name, email)
            detail["email"] = email
        if is_admin is not None:
            self.store.set_admin(name, is_admin)
            detail["admin"] = is_admin
        if disabled is not None:
            self.store.set_user_disabled(name, disabled)
            detail["disabled"] = disabled
        if password is not None:
            self.store.set_password(name, password)
            detail["password"] = "changed"  # noqa: S105 - a word, not a password
        self._record(actor, "user.update", target=name, detail=detail)
        return self.user(name)

    def delete_user(self, actor: Actor, name: str) -> None:
        """Delete a user with its team and project memberships."""
        self.store.delete_user(name)
        self._record(actor, "user.delete", target=name)

    # -- teams -------------------------------------------------------------------------------------------------

    def team(self, name: str) -> Team:
        """The team of that name; ``UnknownIdentityError`` if there is none."""
        found = self.store.get_team(name)
        if found is None:
            raise UnknownIdentityError(f"no team named {name!r}")
        return found

    def create_team(self, actor: Actor, name: str) -> Team:
        """A new, empty team."""
        team = self.store.create_team(name)
        self._record(actor, "team.create", target=name)
        return team

    def delete_team(self, actor: Actor, name: str) -> None:
        """Delete a team; its members lose the roles they had through it."""
        self.store.delete_team(name)
        self._record(actor, "team.delete", target=name)

    def add_team_member(self, actor: Actor, team: str, user: str) -> None:
        """Add a user to a team (no change if already in it)."""
        self.store.add_team_member(team, user)
        self._record(actor, "team.member.add", target=team, detail={"user": user})

    def remove_team_member(self, actor: Actor, team: str, user: str) -> None:
        """Take a user out of a team; ``UnknownIdentityError`` if they were not in it."""
        if not self.store.remove_team_member(team, user):
            raise UnknownIdentityError(f"user {user!r} is not a member of team {team!r}")
        self._record(actor, "team.member.remove", target=team, detail={"user": user})

    # -- projects ----------------------------------------------------------------------------------------------

    def project(self, name: str) -> Project:
        """The project of that name; ``UnknownIdentityError`` if there is none."""
        found = self.store.get_project(name)
        if found is None:
            raise UnknownIdentityError(f"no project named {name!r}")
        return found

    def create_project(self, actor: Actor, name: str, *, public: bool = False, admin: str | None = None) -> Project:
        """A new project; ``admin`` (its creator, when a user) becomes its project admin."""
        project = self.store.create_project(name, public=public)
        if admin is not None:
            self.store.set_member(name, Role.PROJECT_ADMIN, user=admin)
        self._record(actor, "project.create", project=name, detail={"public": public, "admin": admin})
        return project

    def set_project_public(self, actor: Actor, name: str, public: bool) -> Project:
        """Make a project public (anonymous pull) or private; the project afterwards."""
        self.store.set_project_public(name, public)
        self._record(actor, "project.update", project=name, detail={"public": public})
        return self.project(name)

    def set_project_policy(self, actor: Actor, name: str, policy: ProjectPolicy) -> Project:
        """Replace a project's pull policy; the project afterwards. Audited with the new policy's summary."""
        self.store.set_project_policy(name, policy)
        detail = {
            "content_trust": policy.content_trust,
            "block_severity": policy.block_severity,
            "block_unscanned": policy.block_unscanned,
            "allowlist": [a.id for a in policy.allowlist],
        }
        self._record(actor, "project.policy", project=name, detail=detail)
        return self.project(name)

    def delete_project(self, actor: Actor, name: str) -> None:
        """Delete an empty project with its memberships and robots (``ProjectNotEmptyError`` otherwise)."""
        self.store.delete_project(name)
        self._record(actor, "project.delete", project=name)

    # -- members -----------------------------------------------------------------------------------------------

    def set_member(
        self, actor: Actor, project: str, role: Role, *, user: str | None = None, team: str | None = None
    ) -> Membership:
        """Give a user or a team ``role`` in ``project`` (replacing the role it had)."""
        self.store.set_member(project, role, user=user, team=team)
        member = Membership(project=project, role=role, user=user, team=team)
        target = user if user is not None else team
        kind = "user" if user is not None else "team"
        self._record(actor, "member.set", project=project, target=target, detail={"kind": kind, "role": role})
        return member

    def remove_member(self, actor: Actor, project: str, *, user: str | None = None, team: str | None = None) -> None:
        """Take a user's or team's membership away; ``UnknownIdentityError`` if it had none."""
        kind, target = ("user", user) if user is not None else ("team", team)
        if not self.store.remove_member(project, user=user, team=team):
            raise UnknownIdentityError(f"{kind} {target!r} is not a member of project {project!r}")
        self._record(actor, "member.remove", project=project, target=target, detail={"kind": kind})

    # -- robots ------------------------------------------------------------------------------------------------

    def robot(self, name: str) -> Robot:
        """The robot of that name; ``UnknownIdentityError`` if there is none."""
        found = self.store.get_robot(name)
        if found is None:
            raise UnknownIdentityError(f"no robot named {name!r}")
        return found

    def create_robot(
        self,
        actor: Actor,
        name: str,
        permissions: Iterable[Action],
        *,
        project: str | None = None,
        expires_at: float | None = None,
        repositories: Iterable[str] | None = None,
    ) -> tuple[Robot, str]:
        """A new robot and its secret, which exists nowhere else: show it once, store it nowhere."""
        robot, secret = self.store.create_robot(
            name, permissions, project=project, expires_at=expires_at, repositories=repositories
        )
        self._record(actor, "robot.create", project=project, target=name, detail=_robot_detail(robot))
        return robot, secret

    def update_robot(
        self,
        actor: Actor,
        name: str,
        *,
        disabled: bool | None = None,
        permissions: Iterable[Action] | None = None,
        repositories: Iterable[str] | Literal[Keep.KEEP] | None = KEEP,
        expires_at: float | Literal[Keep.KEEP] | None = KEEP,
    ) -> Robot:
        """Change what is given and keep the rest (``repositories`` ``None``: all in scope; ``expires_at``
        ``None``: never); the robot afterwards. Permissions go first: they are what a bad request gets wrong.
        """
        before = self.robot(name)
        if permissions is not None or repositories is not KEEP:
            chosen = before.permissions if permissions is None else permissions
            patterns = before.repositories if repositories is KEEP else repositories
            self.store.set_robot_permissions(name, chosen, patterns)
        if expires_at is not KEEP:
            self.store.set_robot_expiry(name, expires_at)
        if disabled is not None:
            self.store.set_robot_disabled(name, disabled)
        after = self.robot(name)
        self._record(actor, "robot.update", project=after.project, target=name, detail=_robot_detail(after))
        return after

    def rotate_robot(self, actor: Actor, name: str) -> tuple[Robot, str]:
        """A new secret for the robot (returned this once); the old one stops working."""
        secret = self.store.rotate_robot_secret(name)
        robot = self.robot(name)
        self._record(actor, "robot.rotate", project=robot.project, target=name)
        return robot, secret

    def delete_robot(self, actor: Actor, name: str) -> None:
        """Delete a robot account."""
        robot = self.robot(name)
        self.store.delete_robot(name)
        self._record(actor, "robot.delete", project=robot.project, target=name)
