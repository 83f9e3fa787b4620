"""The access-control domain: users, teams, projects, memberships, robot accounts, roles and actions (issue 3).

Frozen dataclasses, built by ``store.py`` from database rows; nothing here does I/O. A project is the first
path segment of a repository name (``library/nginx`` lives in project ``library``). Secrets are never part
of these objects: password and robot-secret hashes stay in the store.

Not here: which role may do what (``roles.py``), how a caller proves who they are (``providers.py``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A member's role in a project, as Harbor names them (highest first)."""

    PROJECT_ADMIN = "project_admin"
    MAINTAINER = "maintainer"
    DEVELOPER = "developer"
    GUEST = "guest"
    LIMITED_GUEST = "limited_guest"


class Action(StrEnum):
    """Something a caller may do in a project."""

    PULL = "pull"
    """Read manifests and blobs."""
    LIST = "list"
    """List the project's repositories and their tags (the catalog, ``/tags/list``)."""
    PUSH = "push"
    """Upload blobs and manifests, create tags by pushing."""
    DELETE = "delete"
    """Delete manifests and blobs."""
    MANAGE_TAGS = "manage_tags"
    """Delete or move tags."""
    MANAGE_MEMBERS = "manage_members"
    """Add and remove members and change their roles."""
    MANAGE_ROBOTS = "manage_robots"
    """Create, rotate, disable and delete the project's robot accounts."""


ROBOT_ACTIONS = frozenset({Action.PULL, Action.LIST, Action.PUSH, Action.DELETE})
"""The actions a robot account may be granted (robots never manage members or other robots)."""


@dataclass(frozen=True, slots=True)
class User:
    """A person (or an account from an identity provider); ``is_admin`` is a system administrator."""

    id: int
    name: str
    email: str | None
    is_admin: bool
    disabled: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class Team:
    """A named group of users; a team's project role applies to each of its members."""

    id: int
    name: str
    created_at: float


SEVERITY_ORDER: tuple[str, ...] = ("low", "medium", "high", "critical")
"""Severities a pull policy can name, lowest first (``unknown`` is never a threshold)."""


@dataclass(frozen=True, slots=True)
class AcceptedVulnerability:
    """One entry of a project's allowlist: a vulnerability its admins accepted, until ``expires_at`` if set.

    Accepting is by ID (any alias of a finding counts: a CVE accepts the GHSA and PYSEC records of the same
    vulnerability), because that is how a security team reasons about a risk, whatever the advisory source.
    """

    id: str
    expires_at: float | None = None
    reason: str = ""

    def active(self, now: float) -> bool:
        """Whether the acceptance still holds at ``now`` (an expired one is ignored, not deleted: it is history)."""
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class ProjectPolicy:
    """What a project demands of the images pulled from it, checked at the registry's door on manifest GET.

    ``content_trust``: a pull by tag needs a valid signed target naming the digest the tag points at now;
    ``block_severity``: refuse images with a finding at or above this severity (``None``: off);
    ``block_unscanned``: refuse images whose scan has not finished; ``allowlist``: accepted vulnerabilities,
    which the severity threshold ignores. The default demands nothing, as a plain registry does.
    """

    content_trust: bool = False
    block_severity: str | None = None
    block_unscanned: bool = False
    allowlist: tuple[AcceptedVulnerability, ...] = ()

    def __post_init__(self) -> None:
        if self.block_severity is not None and self.block_severity not in SEVERITY_ORDER:
            raise ValueError(f"block_severity must be one of {', '.join(SEVERITY_ORDER)} or None")

    @property
    def gated(self) -> bool:
        """Whether any check applies to pulls (the hot path skips all of them when none does)."""
        return self.content_trust or self.block_severity is not None or self.block_unscanned

    def accepted(self, ids: set[str] | frozenset[str], now: float) -> bool:
        """Whether any of ``ids`` (a finding's ID and aliases) is accepted and not expired at ``now``."""
        return any(a.id in ids and a.active(now) for a in self.allowlist)


@dataclass(frozen=True, slots=True)
class Project:
    """A namespace of repositories; a public one lets anyone (anonymous too) pull and list."""

    id: int
    name: str
    public: bool
    created_at: float
    policy: ProjectPolicy = ProjectPolicy()


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's or a team's role in a project: exactly one of ``user`` and ``team`` is set (their names)."""

    project: str
    role: Role
    user: str | None = None
    team: str | None = None

    def __post_init__(self) -> None:
        if (self.user is None) == (self.team is None):
            raise ValueError("a membership names exactly one of a user and a team")


@dataclass(frozen=True, slots=True)
class Robot:
    """A robot account: a fixed set of actions in one project (``project``) or in all (``None``: system robot)."""

    id: int
    name: str
    project: str | None
    permissions: frozenset[Action]
    expires_at: float | None
    disabled: bool
    created_at: float
    repositories: tuple[str, ...] | None = None
    """fnmatch patterns over full repository names the permissions are limited to; ``None``: all in scope."""

    def covers(self, repository: str) -> bool:
        """Whether this robot's permissions apply to ``repository`` (its project and its patterns)."""
        if self.project is not None and repository.split("/", 1)[0] != self.project:
            return False
        return self.repositories is None or any(fnmatch.fnmatchcase(repository, p) for p in self.repositories)

    def is_expired(self, now: float) -> bool:
        """Whether the robot's expiry has passed at ``now`` (epoch seconds); ``None`` never expires."""
        return self.expires_at is not None and now >= self.expires_at
