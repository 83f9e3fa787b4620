"""The role -> action table, checked cell by cell against Harbor's role model written out independently here.

Not here: how a user comes to have a role (``test_store.py``).
"""

from __future__ import annotations

import itertools

import pytest

from trustyard.auth.model import Action, Role
from trustyard.auth.roles import ROLE_ACTIONS, allows, highest

A = Action
# Harbor's "User Permissions By Role", row by row: what each role may do; everything else it may not.
EXPECTED: dict[Role, set[Action]] = {
    Role.LIMITED_GUEST: {A.PULL},
    Role.GUEST: {A.PULL, A.LIST},
    Role.DEVELOPER: {A.PULL, A.LIST, A.PUSH},
    Role.MAINTAINER: {A.PULL, A.LIST, A.PUSH, A.DELETE, A.MANAGE_TAGS},
    Role.PROJECT_ADMIN: {A.PULL, A.LIST, A.PUSH, A.DELETE, A.MANAGE_TAGS, A.MANAGE_MEMBERS, A.MANAGE_ROBOTS},
}

CELLS = [pytest.param(role, action, id=f"{role}-{action}") for role in Role for action in Action]


def test_the_table_covers_every_role() -> None:
    assert set(ROLE_ACTIONS) == set(Role) == set(EXPECTED)


@pytest.mark.parametrize(("role", "action"), CELLS)
def test_role_allows_exactly_harbors_actions(role: Role, action: Action) -> None:
    assert allows(role, action) is (action in EXPECTED[role])


def test_each_role_includes_the_one_below() -> None:
    order = [Role.LIMITED_GUEST, Role.GUEST, Role.DEVELOPER, Role.MAINTAINER, Role.PROJECT_ADMIN]
    for lower, higher in itertools.pairwise(order):
        assert ROLE_ACTIONS[lower] < ROLE_ACTIONS[higher]


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        pytest.param([], None, id="none"),
        pytest.param([Role.GUEST], Role.GUEST, id="one"),
        pytest.param([Role.GUEST, Role.MAINTAINER, Role.DEVELOPER], Role.MAINTAINER, id="maintainer-wins"),
        pytest.param([Role.LIMITED_GUEST, Role.GUEST], Role.GUEST, id="guest-over-limited"),
        pytest.param([Role.PROJECT_ADMIN, Role.DEVELOPER], Role.PROJECT_ADMIN, id="admin-wins"),
    ],
)
def test_highest_role_wins(roles: list[Role], expected: Role | None) -> None:
    assert highest(roles) == expected
