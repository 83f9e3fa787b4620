"""Scope parsing, intersection and rendering (distribution spec/auth/scope.md, token.md, jwt.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustyard.auth.errors import AuthError
from trustyard.auth.scopes import (
    InvalidScopeError,
    Scope,
    bearer_challenge,
    from_access_claim,
    intersect,
    parse_scope,
    parse_scopes,
    to_access_claim,
)

VALID = {
    "pull-push": ("repository:library/nginx:pull,push", Scope.of("repository", "library/nginx", "pull", "push")),
    "wildcard": ("repository:foo:*", Scope.of("repository", "foo", "*")),
    "catalog": ("registry:catalog:*", Scope.of("registry", "catalog", "*")),
    "resource-class": ("repository(plugin):vieux/sshfs:pull", Scope.of("repository(plugin)", "vieux/sshfs", "pull")),
    "registry-path": (
        "repository:registry.example.com/team/app:pull",
        Scope.of("repository", "registry.example.com/team/app", "pull"),
    ),
    "separators": ("repository:a_b/c__d/e--f.g:delete", Scope.of("repository", "a_b/c__d/e--f.g", "delete")),
}

MALFORMED = {
    "empty": "",
    "no-actions": "repository:foo",
    "empty-actions": "repository:foo:",
    "empty-action": "repository:foo:pull,,push",
    "empty-name": "repository::pull",
    "empty-type": ":foo:pull",
    "upper-case-name": "repository:Library/nginx:pull",
    "dot-dot": "repository:library/../etc:pull",
    "encoded-slash": "repository:library%2Fnginx:pull",
    "leading-slash": "repository:/library:pull",
    "trailing-slash": "repository:library/:pull",
    "host-with-port": "repository:localhost:5000/foo:pull",
    "upper-case-action": "repository:foo:PULL",
    "action-with-digit": "repository:foo:pull1",
    "upper-case-type": "Repository:foo:pull",
    "newline": "repository:foo:pull\n",
    "too-long": "repository:" + "a" * 400 + ":pull",
}


@pytest.mark.parametrize(("text", "expected"), VALID.values(), ids=VALID.keys())
def test_parse_valid(text: str, expected: Scope) -> None:
    scope = parse_scope(text)
    assert scope == expected
    assert str(scope) == text


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_parse_malformed(text: str) -> None:
    with pytest.raises(InvalidScopeError):
        parse_scope(text)


def test_malformed_scope_is_an_auth_error() -> None:
    assert issubclass(InvalidScopeError, AuthError)


def test_render_sorts_actions() -> None:
    assert str(parse_scope("repository:foo:push,pull,push")) == "repository:foo:pull,push"


def test_parse_scopes_space_separated_and_repeated_merge() -> None:
    scopes = parse_scopes(["repository:a:pull repository:b:push", "repository:a:push", "registry:catalog:*"])
    assert scopes == [
        Scope.of("repository", "a", "pull", "push"),
        Scope.of("repository", "b", "push"),
        Scope.of("registry", "catalog", "*"),
    ]


def test_parse_scopes_empty() -> None:
    assert parse_scopes([]) == []
    assert parse_scopes([""]) == []


def test_parse_scopes_caps_the_count() -> None:
    with pytest.raises(InvalidScopeError):
        parse_scopes([" ".join(f"repository:r{i}:pull" for i in range(65))])


def test_intersect_scope_escalation_push_with_pull_only() -> None:
    requested = parse_scopes(["repository:library/nginx:pull,push"])
    granted = intersect(requested, [Scope.of("repository", "library/nginx", "pull")])
    assert granted == [Scope.of("repository", "library/nginx", "pull")]


def test_intersect_drops_resources_with_nothing_granted() -> None:
    requested = parse_scopes(["repository:a:push repository:b:pull"])
    assert intersect(requested, [Scope.of("repository", "b", "pull")]) == [Scope.of("repository", "b", "pull")]
    assert intersect(requested, []) == []


def test_intersect_allowed_wildcard_covers_everything() -> None:
    requested = parse_scopes(["repository:a:pull,push,delete"])
    assert intersect(requested, [Scope.of("repository", "a", "*")]) == requested


def test_intersect_requested_wildcard_needs_allowed_wildcard() -> None:
    requested = parse_scopes(["repository:a:*"])
    assert intersect(requested, [Scope.of("repository", "a", "pull", "push", "delete")]) == []


def test_intersect_does_not_mix_types_or_names() -> None:
    requested = parse_scopes(["registry:catalog:* repository:ab:pull"])
    allowed = [Scope.of("repository", "catalog", "*"), Scope.of("repository", "a", "pull")]
    assert intersect(requested, allowed) == []


def test_intersect_unites_allowed_entries() -> None:
    requested = parse_scopes(["repository:a:pull,push"])
    allowed = [Scope.of("repository", "a", "pull"), Scope.of("repository", "a", "push")]
    assert intersect(requested, allowed) == requested


def test_bearer_challenge_as_in_the_spec() -> None:
    challenge = bearer_challenge(
        realm="https://auth.docker.io/token",
        service="registry.docker.io",
        scopes=[parse_scope("repository:samalba/my-app:pull,push")],
    )
    assert challenge == (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:samalba/my-app:pull,push"'
    )


def test_bearer_challenge_several_scopes_and_error() -> None:
    challenge = bearer_challenge(
        realm="https://r/token",
        service="r",
        scopes=parse_scopes(["repository:a:pull", "repository:b:push"]),
        error="insufficient_scope",
    )
    assert challenge == (
        'Bearer realm="https://r/token",service="r",scope="repository:a:pull repository:b:push",'
        'error="insufficient_scope"'
    )


def test_bearer_challenge_without_scope_and_quoting() -> None:
    assert bearer_challenge(realm='a"b\\c', service="s") == 'Bearer realm="a\\"b\\\\c",service="s"'


def test_bearer_challenge_refuses_header_injection() -> None:
    with pytest.raises(InvalidScopeError):
        bearer_challenge(realm="https://r/token\r\nSet-Cookie: x=y", service="s")


def test_access_claim_shape() -> None:
    claim = to_access_claim([parse_scope("repository:samalba/my-app:push,pull")])
    assert claim == [{"type": "repository", "name": "samalba/my-app", "actions": ["pull", "push"]}]


@pytest.mark.parametrize(
    "claim",
    [
        None,
        {"type": "repository"},
        [["repository", "a", ["pull"]]],
        [{"type": "repository", "name": "a"}],
        [{"type": "repository", "name": "a", "actions": "pull"}],
        [{"type": "repository", "name": "a", "actions": [1]}],
        [{"type": "repository", "name": "a", "actions": ["pull"], "extra": 1}],
        [{"type": "repository", "name": "../a", "actions": ["pull"]}],
        [{"type": "repository", "name": "a", "actions": []}],
    ],
)
def test_access_claim_malformed(claim: object) -> None:
    with pytest.raises(InvalidScopeError):
        from_access_claim(claim)


_ALNUM = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_SEPARATOR = st.sampled_from([".", "_", "__", "-", "--"])
_COMPONENT = st.builds(
    lambda first, rest: first + "".join(sep + part for sep, part in rest),
    _ALNUM,
    st.lists(st.tuples(_SEPARATOR, _ALNUM), max_size=2),
)
_ACTIONS = st.sampled_from(["pull", "push", "delete", "*"]) | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6
)
scopes = st.builds(
    Scope,
    type=st.sampled_from(["repository", "registry", "repository(plugin)"]) | _ALNUM,
    name=st.lists(_COMPONENT, min_size=1, max_size=4).map("/".join),
    actions=st.frozensets(_ACTIONS, min_size=1, max_size=4),
)


@given(scopes)
def test_property_parse_render_round_trip(scope: Scope) -> None:
    assert parse_scope(str(scope)) == scope
    assert str(parse_scope(str(scope))) == str(scope)


@given(st.lists(scopes, max_size=6, unique_by=lambda s: (s.type, s.name)))
def test_property_request_and_access_claim_round_trip(many: list[Scope]) -> None:
    assert parse_scopes([" ".join(str(s) for s in many)]) == many
    assert from_access_claim(to_access_claim(many)) == many


@given(st.lists(scopes, max_size=5), st.lists(scopes, max_size=5))
def test_property_intersect_never_grants_more_than_asked(requested: list[Scope], allowed: list[Scope]) -> None:
    result = intersect(requested, allowed)
    assert len({(g.type, g.name) for g in result}) == len(result)
    for granted in result:
        asked = [s for s in requested if (s.type, s.name) == (granted.type, granted.name)]
        may = [a for a in allowed if (a.type, a.name) == (granted.type, granted.name)]
        assert asked and may
        assert granted.actions <= frozenset().union(*(s.actions for s in asked))
        if not any("*" in a.actions for a in may):
            assert granted.actions <= frozenset().union(*(a.actions for a in may))
