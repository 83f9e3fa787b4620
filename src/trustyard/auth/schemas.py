"""The JSON shapes of the management API (``api.py``) and of ``trustyard admin --json``: one pydantic model per
request body, answer and query string, built from the domain objects with ``of``.

Requests are closed (``extra="forbid"``): an unknown field is a 400, not silently ignored. Passwords are
``SecretStr`` so they never appear in a repr, a log line or a validation message. Never here: a password hash,
or a robot secret except in ``RobotWithSecret``, the answer that shows it once. Times are RFC 3339 in UTC;
audit events keep the export's epoch seconds (``at``), so a page of the API and a line of the export agree.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from trustyard.auth.audit import AuditEvent, AuditQuery
from trustyard.auth.model import (
    AcceptedVulnerability,
    Membership,
    Project,
    ProjectPolicy,
    Robot,
    Role,
    Team,
    User,
)
from trustyard.auth.store import ROBOT_PREFIX

if TYPE_CHECKING:
    from trustyard.registry.gc import GcRun

__all__ = [
    "MIN_PASSWORD",
    "AuditEventOut",
    "AuditFilters",
    "AuditPage",
    "ErrorBody",
    "ErrorItem",
    "GcRunList",
    "GcRunOut",
    "GcRunQuery",
    "MemberList",
    "MemberOut",
    "MemberRole",
    "NewProject",
    "NewRobot",
    "NewTeam",
    "NewUser",
    "NoBody",
    "ProjectList",
    "ProjectOut",
    "ProjectPatch",
    "RobotList",
    "RobotOut",
    "RobotPatch",
    "RobotPermission",
    "RobotWithSecret",
    "TeamList",
    "TeamMembers",
    "TeamOut",
    "UserList",
    "UserOut",
    "UserPatch",
]

MIN_PASSWORD: Final = 8


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _password_length(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return value


Name = Annotated[str, Field(min_length=1, max_length=255)]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[
    SecretStr,
    AfterValidator(_password_length),
    Field(max_length=1024, json_schema_extra={"minLength": MIN_PASSWORD}),
]
RobotPermission = Literal["pull", "list", "push", "delete"]
"""``model.ROBOT_ACTIONS`` as the wire spells them (a test keeps the two equal)."""
Pattern = Annotated[str, Field(min_length=1, max_length=255, description="fnmatch pattern over repository names")]


def _time(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


class UserOut(_Wire):
    """A user as the API shows it (never a password or its hash)."""

    name: str
    email: str | None
    admin: bool
    disabled: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        """The wire form of ``user``."""
        return cls(
            name=user.name,
            email=user.email,
            admin=user.is_admin,
            disabled=user.disabled,
            created_at=dt.datetime.fromtimestamp(user.created_at, dt.UTC),
        )


class UserList(_Wire):
    """Every user, by name."""

    users: list[UserOut]


class NewUser(_Wire):
    """A user to create; without a password it cannot log in with a local password."""

    name: Name
    password: Password | None = None
    email: Email | None = None
    admin: bool = False


class UserPatch(_Wire):
    """Changes to a user; absent fields stay. Users may change only their own password, with the old one."""

    email: Email | None = Field(default=None, description="null removes the address")
    admin: bool | None = None
    disabled: bool | None = None
    password: Password | None = None
    old_password: SecretStr | None = Field(default=None, description="required to change one's own password")


class TeamOut(_Wire):
    """A team."""

    name: str
    created_at: dt.datetime

    @classmethod
    def of(cls, team: Team) -> TeamOut:
        """The wire form of ``team``."""
        return cls(name=team.name, created_at=dt.datetime.fromtimestamp(team.created_at, dt.UTC))


class TeamList(_Wire):
    """Every team, by name."""

    teams: list[TeamOut]


class NewTeam(_Wire):
    """A team to create."""

    name: Name


class TeamMembers(_Wire):
    """The names of a team's members, sorted."""

    members: list[str]


PolicySeverity = Literal["low", "medium", "high", "critical"]


class AcceptedVulnerabilityWire(_Wire):
    """A vulnerability the project accepts (by any of its IDs or aliases), until ``expires_at`` if given."""

    id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")]
    expires_at: AwareDatetime | None = None
    reason: Annotated[str, Field(max_length=1000)] = ""

    @classmethod
    def of(cls, accepted: AcceptedVulnerability) -> AcceptedVulnerabilityWire:
        """The wire form of an allowlist entry."""
        expires = None if accepted.expires_at is None else dt.datetime.fromtimestamp(accepted.expires_at, dt.UTC)
        return cls(id=accepted.id, expires_at=expires, reason=accepted.reason)

    def entry(self) -> AcceptedVulnerability:
        """The domain form."""
        expires = None if self.expires_at is None else self.expires_at.timestamp()
        return AcceptedVulnerability(self.id, expires, self.reason)


class ProjectOut(_Wire):
    """A project, with the pull policy the registry enforces on it."""

    name: str
    public: bool
    created_at: dt.datetime
    content_trust: bool = Field(description="pulls by tag need a valid signed target for the tag's digest")
    block_severity: PolicySeverity | None = Field(description="refuse images with findings at or above this")
    block_unscanned: bool = Field(description="refuse images whose scan has not finished")
    allowlist: list[AcceptedVulnerabilityWire] = Field(description="accepted vulnerabilities")

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        """The wire form of ``project``."""
        created = dt.datetime.fromtimestamp(project.created_at, dt.UTC)
        policy = project.policy
        return cls(
            name=project.name,
            public=project.public,
            created_at=created,
            content_trust=policy.content_trust,
            block_severity=policy.block_severity,  # type: ignore[arg-type]  # validated by ProjectPolicy
            block_unscanned=policy.block_unscanned,
            allowlist=[AcceptedVulnerabilityWire.of(a) for a in policy.allowlist],
        )


class ProjectList(_Wire):
    """The projects the caller can see: administrators all, others the public ones and their own."""

    projects: list[ProjectOut]


class NewProject(_Wire):
    """A project to create; the creating user becomes its project admin."""

    name: Name
    public: bool = False


class ProjectPatch(_Wire):
    """Change a project: visibility and pull policy; fields left out stay as they are (null clears a threshold)."""

    public: bool | None = None
    content_trust: bool | None = None
    block_severity: PolicySeverity | None = None
    block_unscanned: bool | None = None
    allowlist: Annotated[list[AcceptedVulnerabilityWire], Field(max_length=10_000)] | None = None

    def policy(self, current: ProjectPolicy) -> ProjectPolicy | None:
        """The policy after this patch, or ``None`` when the patch names no policy field."""
        given = self.model_fields_set - {"public"}
        if not given:
            return None
        return ProjectPolicy(
            content_trust=current.content_trust if self.content_trust is None else self.content_trust,
            block_severity=self.block_severity if "block_severity" in given else current.block_severity,
            block_unscanned=current.block_unscanned if self.block_unscanned is None else self.block_unscanned,
            allowlist=current.allowlist if self.allowlist is None else tuple(a.entry() for a in self.allowlist),
        )


class MemberOut(_Wire):
    """A user's or a team's role in a project."""

    kind: Literal["user", "team"]
    name: str
    role: Role

    @classmethod
    def of(cls, member: Membership) -> MemberOut:
        """The wire form of ``member``."""
        if member.user is not None:
            return cls(kind="user", name=member.user, role=member.role)
        return cls(kind="team", name=str(member.team), role=member.role)


class MemberList(_Wire):
    """A project's direct members: users first, each sorted by name."""

    members: list[MemberOut]


class MemberRole(_Wire):
    """The role to give a member."""

    role: Role


class RobotOut(_Wire):
    """A robot account (its secret is shown only when created or rotated)."""

    name: str
    login: str = Field(description="the user name to log in with: robot$<name>")
    project: str | None = Field(description="null: a system robot")
    permissions: list[RobotPermission]
    repositories: list[str] | None = Field(description="null: every repository in scope")
    expires_at: dt.datetime | None
    expired: bool
    disabled: bool
    created_at: dt.datetime

    @classmethod
    def fields_of(cls, robot: Robot) -> dict[str, Any]:
        """The wire fields of ``robot`` (``RobotWithSecret`` adds one)."""
        return {
            "name": robot.name,
            "login": ROBOT_PREFIX + robot.name,
            "project": robot.project,
            "permissions": sorted(robot.permissions),
            "repositories": None if robot.repositories is None else list(robot.repositories),
            "expires_at": _time(robot.expires_at),
            "expired": robot.is_expired(time.time()),
            "disabled": robot.disabled,
            "created_at": _time(robot.created_at),
        }

    @classmethod
    def of(cls, robot: Robot) -> RobotOut:
        """The wire form of ``robot``."""
        return cls(**cls.fields_of(robot))


class RobotWithSecret(RobotOut):
    """A robot and its secret: shown this once, stored only as a hash; keep it now or rotate it later."""

    secret: str

    @classmethod
    def with_secret(cls, robot: Robot, secret: str) -> RobotWithSecret:
        """The wire form of ``robot`` and its new ``secret``."""
        return cls(**cls.fields_of(robot), secret=secret)


class RobotList(_Wire):
    """Robot accounts, by name."""

    robots: list[RobotOut]


class NewRobot(_Wire):
    """A robot account to create: what it may do, where, and until when."""

    name: Name
    permissions: list[RobotPermission] = Field(min_length=1)
    repositories: list[Pattern] | None = Field(default=None, min_length=1, description="null: every repository")
    expires_in: int | None = Field(default=None, gt=0, description="seconds from now")
    expires_at: AwareDatetime | None = Field(default=None, description="RFC 3339 time")


class RobotPatch(_Wire):
    """Changes to a robot; absent fields stay, ``repositories: null`` means all, ``expires_at: null`` never."""

    disabled: bool | None = None
    permissions: list[RobotPermission] | None = Field(default=None, min_length=1)
    repositories: list[Pattern] | None = Field(default=None, min_length=1)
    expires_in: int | None = Field(default=None, gt=0)
    expires_at: AwareDatetime | None = None


class AuditEventOut(_Wire):
    """An audit event, as exported (``at``: epoch seconds)."""

    id: int
    at: float
    actor: str
    action: str
    result: Literal["success", "failure", "denied"]
    project: str | None
    repository: str | None
    target: str | None
    address: str | None
    detail: dict[str, Any] | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        """The wire form of ``event``."""
        return cls.model_validate(event.to_json())


class AuditPage(_Wire):
    """Events oldest first; ``next`` is the ``after`` of the following page (null: this was the last)."""

    events: list[AuditEventOut]
    next: int | None


class AuditFilters(_Wire):
    """Query parameters of the audit endpoints; each narrows the events (times: RFC 3339 or epoch seconds)."""

    actor: str | None = None
    project: str | None = None
    repository: str | None = None
    action: str | None = None
    result: Literal["success", "failure", "denied"] | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    after: int | None = Field(default=None, ge=0, description="the id of the last event already seen")

    def query(self) -> AuditQuery:
        """The ``AuditLog`` query these parameters ask for."""
        since = None if self.since is None else self.since.timestamp()
        until = None if self.until is None else self.until.timestamp()
        return AuditQuery(self.actor, self.project, self.repository, self.action, self.result, since, until, self.after)


class GcRunOut(_Wire):
    """A garbage-collection run (``registry.gc.GcRun``): ``finished_at`` is null while it runs."""

    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    trigger: Literal["schedule", "cli"]
    dry_run: bool
    status: Literal["running", "done", "failed"]
    manifests_deleted: int
    blobs_deleted: int
    bytes_freed: int
    uploads_expired: int
    orphan_files: int
    error: str | None

    @classmethod
    def of(cls, run: GcRun) -> GcRunOut:
        """The wire form of a ``GcRun`` (times as RFC 3339)."""
        fields = {name: getattr(run, name) for name in cls.model_fields}
        return cls.model_validate(
            {**fields, "started_at": _time(run.started_at), "finished_at": _time(run.finished_at)}
        )


class GcRunList(_Wire):
    """Runs, newest first."""

    runs: list[GcRunOut]


class GcRunQuery(_Wire):
    """How many of the newest runs to list."""

    limit: int = Field(default=50, ge=1, le=1000)


class NoBody(_Wire):
    """The body of endpoints that take none (any body sent is ignored)."""


class ErrorItem(_Wire):
    """One error."""

    code: str
    message: str


class ErrorBody(_Wire):
    """Every error answer."""

    errors: list[ErrorItem]
