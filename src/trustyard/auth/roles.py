"""What each project role may do: one table, Harbor's role model.

Harbor's roles ("User Permissions By Role" in the Harbor documentation, ``src/common/rbac/project`` in its
source), reduced to the registry actions trustyard has:

=================  =====  =====  =====  ======  ===========  ==============  =============
role               pull   list   push   delete  manage_tags  manage_members  manage_robots
=================  =====  =====  =====  ======  ===========  ==============  =============
limited_guest      yes    -      -      -       -            -               -
guest              yes    yes    -      -       -            -               -
developer          yes    yes    yes    -       -            -               -
maintainer         yes    yes    yes    yes     yes          -               -
project_admin      yes    yes    yes    yes     yes          yes             yes
=================  =====  =====  =====  ======  ===========  ==============  =============

Each role includes everything of the role below it. A limited guest may pull what it is told the name of but
cannot list the project's repositories or tags. System administrators (``User.is_admin``) may do everything
in every project; that rule lives with the permission checks, not here. Anyone may pull and list in a
public project; that is a property of the project, not a role.

Not here: robot accounts, whose actions are chosen one by one (``model.ROBOT_ACTIONS``).
"""

from __future__ import annotations

from types import MappingProxyType

from trustyard.auth.model import Action, Role

_GUEST = frozenset({Action.PULL, Action.LIST})
_DEVELOPER = _GUEST | {Action.PUSH}
_MAINTAINER = _DEVELOPER | {Action.DELETE, Action.MANAGE_TAGS}
_PROJECT_ADMIN = _MAINTAINER | {Action.MANAGE_MEMBERS, Action.MANAGE_ROBOTS}

ROLE_ACTIONS: MappingProxyType[Role, frozenset[Action]] = MappingProxyType(
    {
        Role.LIMITED_GUEST: frozenset({Action.PULL}),
        Role.GUEST: _GUEST,
        Role.DEVELOPER: _DEVELOPER,
        Role.MAINTAINER: _MAINTAINER,
        Role.PROJECT_ADMIN: _PROJECT_ADMIN,
    }
)
"""Role -> the actions it allows in its project (the table above)."""

_RANK = {role: rank for rank, role in enumerate(reversed(Role))}  # limited_guest 0 ... project_admin 4


def allows(role: Role, action: Action) -> bool:
    """Whether ``role`` may do ``action`` in its project."""
    return action in ROLE_ACTIONS[role]


def highest(roles: set[Role] | frozenset[Role] | list[Role]) -> Role | None:
    """The most powerful of ``roles`` (a user's direct and team roles combine this way), ``None`` if empty."""
    return max(roles, key=_RANK.__getitem__, default=None)
