"""Docker Registry token-auth scopes: parsing, intersection, and rendering for challenges and token claims.

Implements the ``scope`` grammar of the distribution token spec (spec/auth/scope.md): ``type:name:actions``,
e.g. ``repository:library/nginx:pull,push``, ``repository:foo:*``, ``registry:catalog:*``; a request may
carry several scopes, space-separated in one parameter or as repeated parameters. Rendering covers the
``WWW-Authenticate: Bearer ...`` challenge (RFC 7235 quoted strings) and the JWT ``access`` claim
(spec/auth/jwt.md).

Not here: deciding what a caller is allowed (that is the role/policy code, which hands ``intersect`` its
``allowed`` list), and HTTP handling.

Docker-style names: Docker Content Trust names trust data by the full image name, so the docker CLI asks for
``repository:127.0.0.1:5000/library/app:pull`` when it talks to the trust server. ``parse_scopes`` takes the
host names this registry answers to (``hosts``); a name that starts with one of them is the repository after
it (the token is issued for that repository, so it opens the registry's and the trust routes' doors alike),
and a name that starts with any other host is refused with a message naming both hosts. Without ``hosts``
every name must be a plain repository name of this registry.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from trustyard.auth.errors import AuthError
from trustyard.oci.reference import MAX_NAME_LENGTH, InvalidReferenceError, validate_name

__all__ = [
    "WILDCARD",
    "ForeignHostError",
    "InvalidScopeError",
    "Scope",
    "bearer_challenge",
    "from_access_claim",
    "intersect",
    "local_name",
    "parse_scope",
    "parse_scopes",
    "to_access_claim",
]

WILDCARD: Final = "*"
_TYPE: Final = re.compile(r"[a-z0-9]+(?:\([a-z0-9]+\))?")
_ACTION: Final = re.compile(r"[a-z]+|\*")
_MAX_SCOPE_LENGTH: Final = MAX_NAME_LENGTH + 128
_MAX_SCOPES: Final = 64
# distribution's reference grammar for the domain of a name: DNS labels or a bracketed IPv6 address, a port
_HOST: Final = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])"
    r"(?::[0-9]{1,5})?"
)


class InvalidScopeError(AuthError):
    """A scope string or ``access`` entry outside the spec's grammar."""


class ForeignHostError(InvalidScopeError):
    """A Docker-style name (``host[:port]/repo``) whose host is not this registry."""


@dataclass(frozen=True)
class Scope:
    """One resource and the actions asked for or granted on it; constructed only valid."""

    type: str
    name: str
    actions: frozenset[str]

    def __post_init__(self) -> None:
        if not _TYPE.fullmatch(self.type):
            raise InvalidScopeError(f"invalid scope resource type {self.type[:40]!r}")
        try:
            validate_name(self.name)
        except InvalidReferenceError as e:
            raise InvalidScopeError(f"invalid scope resource name {self.name[:100]!r}") from e
        if not self.actions:
            raise InvalidScopeError("a scope needs at least one action")
        for action in self.actions:
            if not _ACTION.fullmatch(action):
                raise InvalidScopeError(f"invalid scope action {action[:40]!r}")

    @classmethod
    def of(cls, type: str, name: str, *actions: str) -> Scope:
        """Build a scope from loose actions: ``Scope.of("repository", "foo", "pull", "push")``."""
        return cls(type, name, frozenset(actions))

    def sorted_actions(self) -> list[str]:
        """Actions in a stable order (sorted), as rendered everywhere."""
        return sorted(self.actions)

    def __str__(self) -> str:
        """The spec's string form, ``type:name:a,b``."""
        return f"{self.type}:{self.name}:{','.join(self.sorted_actions())}"


def local_name(name: str, hosts: Collection[str]) -> str:
    """The repository a resource name means on this registry, known by ``hosts`` (lower-case ``host[:port]``).

    ``<one of hosts>/<repo>`` is ``<repo>``; any other name is itself, unless its first component can only be
    a host (a port, or not a repository component), which is another registry's: ``ForeignHostError``. A
    valid repository name that merely looks like a domain (``example.com/app``) stays a repository name, as
    it always has been here. Nothing is validated beyond that; ``Scope`` validates what it is given.
    """
    host, sep, rest = name.partition("/")
    # distribution's rule: a first component is a host if it has a dot, a port or capitals, or is localhost
    looks_like_host = host == "localhost" or host != host.lower() or any(c in host for c in ".:[")
    if not sep or not looks_like_host or not _HOST.fullmatch(host):
        return name
    if host.lower() in hosts:
        return rest
    try:
        validate_name(name)
    except InvalidReferenceError:
        ours = ", ".join(sorted(hosts)) or "(no host names known)"
        raise ForeignHostError(
            f"{name[:200]!r} is repository {rest[:100]!r} on registry {host[:100]!r}; this registry is {ours}"
        ) from None
    return name


def parse_scope(text: str, hosts: Collection[str] = ()) -> Scope:
    """Parse one ``type:name:actions`` string; raise ``InvalidScopeError`` if malformed.

    A ``repository`` name prefixed by one of ``hosts`` names the repository after it (``local_name``).
    """
    if len(text) > _MAX_SCOPE_LENGTH:
        raise InvalidScopeError("scope too long")
    type_, sep1, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep1 or not sep2:
        raise InvalidScopeError(f"invalid scope {text[:100]!r}: expected type:name:actions")
    if type_ == "repository":
        name = local_name(name, hosts)
    return Scope(type_, name, frozenset(actions.split(",")))


def parse_scopes(values: Iterable[str], hosts: Collection[str] = ()) -> list[Scope]:
    """Parse every scope of a request (repeated parameters, each possibly space-separated).

    Scopes on the same resource are merged (actions united); order of first appearance is kept. ``hosts``:
    as for ``parse_scope``.
    """
    merged: dict[tuple[str, str], frozenset[str]] = {}
    for value in values:
        for text in value.split(" "):
            if not text:
                continue
            scope = parse_scope(text, hosts)
            key = (scope.type, scope.name)
            merged[key] = merged.get(key, frozenset()) | scope.actions
            if len(merged) > _MAX_SCOPES:
                raise InvalidScopeError(f"more than {_MAX_SCOPES} scopes in one request")
    return [Scope(t, n, a) for (t, n), a in merged.items()]


def intersect(requested: Sequence[Scope], allowed: Iterable[Scope]) -> list[Scope]:
    """What may be granted: per requested resource, the requested actions that ``allowed`` covers.

    ``*`` in ``allowed`` covers every action; ``*`` in ``requested`` is an action of its own (only an
    allowed ``*`` grants it). Resources with nothing granted are left out, never granted empty. Entries on
    the same resource are united on both sides, so each resource appears at most once in the result.
    """
    permitted = _united(allowed)
    granted: list[Scope] = []
    for (type_, name), asked in _united(requested).items():
        may = permitted.get((type_, name), frozenset())
        actions = asked if WILDCARD in may else asked & may
        if actions:
            granted.append(Scope(type_, name, actions))
    return granted


def _united(scopes: Iterable[Scope]) -> dict[tuple[str, str], frozenset[str]]:
    """Actions per (type, name), united over repeated entries; insertion order is first appearance."""
    united: dict[tuple[str, str], frozenset[str]] = {}
    for scope in scopes:
        key = (scope.type, scope.name)
        united[key] = united.get(key, frozenset()) | scope.actions
    return united


def _quoted(value: str) -> str:
    """An RFC 7230 quoted-string; control characters (header injection) are refused."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidScopeError("control character in a challenge parameter")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_challenge(*, realm: str, service: str, scopes: Sequence[Scope] = (), error: str | None = None) -> str:
    """The ``WWW-Authenticate`` value: ``Bearer realm="...",service="...",scope="a b"[,error="..."]``."""
    params = [f"realm={_quoted(realm)}", f"service={_quoted(service)}"]
    if scopes:
        params.append(f"scope={_quoted(' '.join(str(s) for s in scopes))}")
    if error is not None:
        params.append(f"error={_quoted(error)}")
    return "Bearer " + ",".join(params)


def to_access_claim(scopes: Iterable[Scope]) -> list[dict[str, str | list[str]]]:
    """The JWT ``access`` claim: ``[{"type": ..., "name": ..., "actions": [...]}, ...]``."""
    return [{"type": s.type, "name": s.name, "actions": s.sorted_actions()} for s in scopes]


def from_access_claim(claim: object) -> list[Scope]:
    """Parse an ``access`` claim back into scopes; raise ``InvalidScopeError`` if it is malformed."""
    if not isinstance(claim, list):
        raise InvalidScopeError("access claim is not a list")
    scopes: list[Scope] = []
    for entry in claim:
        if not isinstance(entry, Mapping) or set(entry) != {"type", "name", "actions"}:
            raise InvalidScopeError("access entry must have exactly type, name and actions")
        type_, name, actions = entry["type"], entry["name"], entry["actions"]
        if not isinstance(type_, str) or not isinstance(name, str) or not isinstance(actions, list):
            raise InvalidScopeError("access entry has fields of the wrong type")
        if not all(isinstance(a, str) for a in actions):
            raise InvalidScopeError("access actions must be strings")
        scopes.append(Scope(type_, name, frozenset(actions)))
    return scopes
