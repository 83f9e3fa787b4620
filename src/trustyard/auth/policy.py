"""Who may do what: principals, and the one function that answers "which actions in this repository?".

Every permission decision of the registry, the token endpoint and the management API goes through
``AccessPolicy.actions``: system administrators may do everything; a public project lets anyone, anonymous
callers too, pull and list; members get their role's actions (``roles.py``); robots get their chosen
permissions where their project and repository patterns cover the repository. Everything else gets nothing,
and a project that does not exist gives nothing to anyone but administrators.

Decisions are cached for ``cache_ttl`` seconds per (principal, repository); any change made through this
process's ``IdentityStore`` empties the cache at once, changes made by another process (a second worker, the
``trustyard admin`` CLI, another node) are seen within ``cache_ttl``.

Not here: proving who a caller is (``authenticator.py``), HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from trustyard.auth.errors import AuthenticationError
from trustyard.auth.model import Action, ProjectPolicy, Robot, Role, User
from trustyard.auth.roles import ROLE_ACTIONS
from trustyard.auth.store import ROBOT_PREFIX, IdentityStore
from trustyard.decision_cache import DecisionCache

__all__ = ["ALL_ACTIONS", "ANONYMOUS", "AccessPolicy", "Kind", "Principal", "account_id", "project_of"]

ALL_ACTIONS: Final = frozenset(Action)
_PUBLIC: Final = frozenset({Action.PULL, Action.LIST})
_CREATOR: Final = ROLE_ACTIONS[Role.PROJECT_ADMIN]  # whoever creates a project administers it
_NO_POLICY: Final = ProjectPolicy()
_MAX_CACHED: Final = 50_000


class Kind(StrEnum):
    """What sort of caller a principal is."""

    ANONYMOUS = "anonymous"
    USER = "user"
    ROBOT = "robot"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller (or the anonymous one), as the permission checks see it."""

    kind: Kind
    name: str
    is_admin: bool = False
    robot: Robot | None = None
    account: str | None = None
    """Which account has the name now (``account_id``); ``None`` for anonymous."""

    @property
    def subject(self) -> str:
        """The token ``sub`` and audit ``actor``: the user name, ``robot$name``, or ``""`` for anonymous."""
        if self.kind is Kind.ROBOT:
            return ROBOT_PREFIX + self.name
        return self.name

    @property
    def anonymous(self) -> bool:
        """Whether nobody proved who they are."""
        return self.kind is Kind.ANONYMOUS


ANONYMOUS: Final = Principal(Kind.ANONYMOUS, "")


def account_id(account: User | Robot) -> str:
    """What tells a user or robot account from an earlier one of the same name (deleted, then created again):
    its row id and creation time. Tokens carry it, so the new account never inherits the old one's tokens."""
    return f"{account.id}@{account.created_at!r}"


def project_of(repository: str) -> str:
    """The project a repository lives in: the first path segment of its name."""
    return repository.split("/", 1)[0]


class AccessPolicy:
    """Answers which actions a principal has in a repository, from the identity store, with a short cache."""

    def __init__(
        self,
        store: IdentityStore,
        *,
        anonymous_push: bool = False,
        users_create_projects: bool = True,
        cache_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``anonymous_push`` is the insecure open-registry mode; ``users_create_projects`` as Harbor's default."""
        self.store = store
        self.anonymous_push = anonymous_push
        self.users_create_projects = users_create_projects
        self.cache_ttl = cache_ttl
        self._cache: DecisionCache[tuple[str, str], object] = DecisionCache(
            store, ttl=cache_ttl, max_entries=_MAX_CACHED, clock=clock
        )

    def _cached(self, key: tuple[str, str], compute: Callable[[], object]) -> object:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        value = compute()
        self._cache.put(key, value)
        return value

    def forget(self) -> None:
        """Drop every cached decision (after a change the store could not see, e.g. in tests)."""
        self._cache.clear()

    def resolve(self, subject: str) -> Principal:
        """The current principal behind a token subject; ``AuthenticationError`` if it is gone or disabled.

        Checked on every request carrying a token, so a deleted or disabled account's unexpired tokens stop
        working (within ``cache_ttl`` when the change came from another process).
        """
        found = self._cached(("resolve", subject), lambda: self._resolve(subject))
        if isinstance(found, AuthenticationError):
            raise found
        assert isinstance(found, Principal)
        return found

    def _resolve(self, subject: str) -> Principal | AuthenticationError:
        if subject == "":
            return ANONYMOUS
        if subject.startswith(ROBOT_PREFIX):
            robot = self.store.get_robot(subject[len(ROBOT_PREFIX) :])
            if robot is None:
                return AuthenticationError(f"robot account {subject!r} no longer exists")
            if robot.disabled:
                return AuthenticationError(f"robot account {subject!r} is disabled")
            if robot.is_expired(time.time()):
                return AuthenticationError(f"robot account {subject!r} has expired")
            return Principal(Kind.ROBOT, robot.name, robot=robot, account=account_id(robot))
        user = self.store.get_user(subject)
        if user is None:
            return AuthenticationError(f"user {subject!r} no longer exists")
        if user.disabled:
            return AuthenticationError(f"account {subject!r} is disabled")
        return Principal(Kind.USER, user.name, is_admin=user.is_admin, account=account_id(user))

    def actions(self, principal: Principal, repository: str) -> frozenset[Action]:
        """Every action ``principal`` may take on ``repository`` (a repository name, or a project name)."""
        if self.anonymous_push or principal.is_admin:
            return ALL_ACTIONS
        found = self._cached((principal.subject, repository), lambda: self._actions(principal, repository))
        assert isinstance(found, frozenset)
        return found

    def _actions(self, principal: Principal, repository: str) -> frozenset[Action]:
        name = project_of(repository)
        project = self.store.get_project(name)
        if project is None:
            return frozenset()
        granted: frozenset[Action] = _PUBLIC if project.public else frozenset()
        if principal.kind is Kind.USER:
            role = self.store.role_of(principal.name, name)
            if role is not None:
                granted |= ROLE_ACTIONS[role]
        elif principal.robot is not None and principal.robot.covers(repository):
            granted |= principal.robot.permissions
        return granted

    def project_exists(self, name: str) -> bool:
        """Whether project ``name`` exists (cached like every decision)."""
        found = self._cached(("project", name), lambda: self.store.get_project(name) is not None)
        return bool(found)

    def pull_policy(self, repository: str) -> ProjectPolicy:
        """The pull policy of the project holding ``repository`` (cached like every decision; none demands nothing).

        Asked on every manifest GET, so it must cost a dictionary lookup: a change made through this process
        empties the cache at once, one made by another node is seen within ``cache_ttl``.
        """
        name = project_of(repository)

        def load() -> ProjectPolicy:
            project = self.store.get_project(name)
            return _NO_POLICY if project is None else project.policy

        found = self._cached(("pull-policy", name), load)
        assert isinstance(found, ProjectPolicy)
        return found

    def may_create_project(self, principal: Principal) -> bool:
        """Whether ``principal`` may create projects (admins; users too unless that is switched off)."""
        if self.anonymous_push or principal.is_admin:
            return True
        return principal.kind is Kind.USER and self.users_create_projects

    def actions_or_creatable(self, principal: Principal, repository: str) -> frozenset[Action]:
        """``actions``, or what the creator of the missing project would get, if ``principal`` may create it.

        For the token endpoint: a push to a new project is granted when pushing will create the project.
        """
        found = self.actions(principal, repository)
        if found or not self.may_create_project(principal):
            return found
        if not self.project_exists(project_of(repository)):
            return _CREATOR
        return found
