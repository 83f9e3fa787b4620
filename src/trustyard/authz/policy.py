"""The plugin's policy: which rules refuse, which only warn, who is excepted, and which endpoints are closed.

Format: TOML, read with the standard library's ``tomllib`` (no extra dependency, the same format as
trustyard's ``--config``). YAML was the alternative and is worse here: rule ids are numbers with dots, and YAML
reads an unquoted ``5.10`` as the float ``5.1`` (and ``off``/``no`` as booleans), so a policy could silently
name the wrong rule; TOML requires ``"5.10"`` to be quoted as a key. The file is validated in full (unknown
keys, unknown rule ids, empty user names are errors) before the plugin answers anything::

    version = 1

    [rules]                    # rule id -> "deny" | "warn" | "off"; rules not named keep their default
    "5.11" = "deny"            # require a memory limit
    "5.30" = "off"

    [groups]                   # group -> user names (the CN of each user's TLS client certificate)
    operators = ["alice", "bob"]

    [identity]
    groups_from_ou = false     # true: the client certificate's OU values are groups too (identity.py)

    [[exception]]              # these users or groups may break these rules ("*": every rule)
    users = ["ci-builder"]
    groups = ["operators"]     # optional; at least one of users/groups
    rules = ["5.5", "5.10"]
    reason = "builds need host networking"

    [[deny]]                   # refuse an endpoint outright (glob over the path without /v1.xx)
    path = "/plugins/*"
    methods = ["POST"]         # optional; default every method
    exempt_users = ["admin"]   # optional; also users, groups, exempt_groups
    message = "plugins are installed by the operators"

    [images]                   # image rules (images.py), each off unless set here
    allowed_registries = ["registry.example:5000", "docker.io"]   # "alpine" is docker.io/library/alpine
    require_signed = true      # signed in trustyard's trust service
    max_severity = "high"      # refuse a finding of high or critical
    require_pull_allowed = true  # the registry's project pull gates must let it be pulled
    unscanned = "refuse"       # or "allow"
    on_unavailable = "refuse"  # trustyard unreachable; or per rule: {"image.severity" = "allow"}

    [trustyard]                # where the image rules ask (verdicts.py)
    url = "https://registry.example:5000"        # or TRUSTYARD_AUTHZ_REGISTRY_URL / --registry-url
    credentials_file = "/etc/trustyard/authz.credentials"  # NAME:SECRET of a robot with pull permission
    ca_file = "/etc/trustyard/ca.pem"            # optional; timeout = 5, cache_ttl = 30 (seconds)

Without a file the default policy applies: every CIS 5.x container rule of ``trustyard.policy`` is evaluated
on ``POST /containers/create``; those that break a container's isolation from the host refuse, the hygiene
rules (limits, read-only root, health checks, ...) only warn in the log — they would refuse a plain
``docker run alpine``. The policy is data here; a Rego or CEL evaluator would be another source of ``Policy``.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trustyard.authz.endpoint import Endpoint
from trustyard.authz.errors import PolicyFileError
from trustyard.authz.identity import Principal
from trustyard.authz.images import IMAGE_RULES, TRUSTYARD_RULES, ImageRules
from trustyard.authz.verdicts import TrustyardLink
from trustyard.policy import RULES
from trustyard.scan.findings import Level


class Mode(StrEnum):
    """What a failing rule does."""

    DENY = "deny"
    WARN = "warn"
    OFF = "off"


EXEC_RULES: Final = MappingProxyType(
    {
        "5.23": "Ensure that docker exec commands are not used with the privileged option",
        "5.24": "Ensure that docker exec commands are not used with the user=root option",
    }
)
"""The two CIS rules about ``docker exec``: judged on the exec-create request, not on a container."""

RULE_TITLES: Final = MappingProxyType(
    {**{r.id: r.title for r in RULES if not r.needs_processes}, **EXEC_RULES, **IMAGE_RULES}
)
"""Every rule the plugin can apply (5.7 needs a running container's processes, so it is not one of them)."""

_WARN_ONLY: Final = frozenset(
    {"5.3", "5.8", "5.9", "5.11", "5.12", "5.13", "5.14", "5.15", "5.19", "5.26", "5.27", "5.29", "5.30"}
)
DEFAULT_MODES: Final = MappingProxyType(
    {rule: Mode.WARN if rule in _WARN_ONLY else Mode.DENY for rule in RULE_TITLES if rule not in IMAGE_RULES}
)
"""The built-in policy: isolation-breaking rules refuse, hygiene rules warn; image rules are off until configured."""

DEFAULT_MAX_BODY: Final = 1024 * 1024
"""dockerd forwards bodies below 1 MiB only; a larger one never reaches a plugin whole."""


@dataclass(frozen=True, slots=True)
class RuleException:
    """Users and groups allowed to break some rules (``"*"`` in ``rules``: all of them)."""

    users: frozenset[str]
    rules: frozenset[str]
    reason: str = ""
    groups: frozenset[str] = frozenset()

    def covers(self, who: Principal, rule: str) -> bool:
        """True when ``who`` is excepted from ``rule``; the anonymous user ``""`` never is."""
        return who.is_any(self.users, self.groups) and ("*" in self.rules or rule in self.rules)


@dataclass(frozen=True, slots=True)
class EndpointDeny:
    """An endpoint refused to everyone but the exempt users and groups (or only to ``users``/``groups`` when given).

    The anonymous caller is never exempt, and is refused by an entry restricted to named users or groups only
    when it would be refused without that restriction too: ``users``/``groups`` narrow who is refused.
    """

    path: str
    methods: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    exempt_users: frozenset[str] = frozenset()
    message: str = ""
    groups: frozenset[str] = frozenset()
    exempt_groups: frozenset[str] = frozenset()

    def refuses(self, who: Principal, endpoint: Endpoint) -> bool:
        """True when this entry refuses ``endpoint`` for ``who``."""
        if self.methods and endpoint.method not in self.methods:
            return False
        if not fnmatch.fnmatchcase(endpoint.path, self.path):
            return False
        if (self.users or self.groups) and not (who.name in self.users or who.groups & self.groups):
            return False
        return not who.is_any(self.exempt_users, self.exempt_groups)


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded policy; ``Policy()`` is the built-in default."""

    modes: Mapping[str, Mode] = field(default_factory=lambda: DEFAULT_MODES)
    exceptions: tuple[RuleException, ...] = ()
    denies: tuple[EndpointDeny, ...] = ()
    max_body: int = DEFAULT_MAX_BODY
    source: str = "built-in default"
    groups: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    groups_from_ou: bool = False
    images: ImageRules = field(default_factory=ImageRules)
    trustyard: TrustyardLink = field(default_factory=TrustyardLink)

    def mode(self, rule: str) -> Mode:
        """The mode of ``rule``."""
        return self.modes.get(rule, Mode.OFF)

    def excepted(self, who: Principal, rule: str) -> RuleException | None:
        """The exception that lets ``who`` break ``rule``, if any."""
        return next((e for e in self.exceptions if e.covers(who, rule)), None)

    @classmethod
    def load(cls, path: Path) -> Policy:
        """Read and validate a TOML policy file; raise ``PolicyFileError`` saying what is wrong and where."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise PolicyFileError(f"cannot read policy {path}: {e.strerror or e}") from e
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise PolicyFileError(f"policy {path} is not valid TOML: {e}") from e
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, object], *, source: str = "<dict>") -> Policy:
        """Validate a parsed policy document."""
        try:
            raw = _PolicyFile.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise PolicyFileError(f"policy {source}: {where}: {err['msg']}") from e
        images = raw.images.rules()
        modes = dict(DEFAULT_MODES)
        modes.update(dict.fromkeys(images.active, Mode.DENY))
        modes.update({rule: Mode(mode) for rule, mode in raw.rules.items() if rule not in IMAGE_RULES or rule in modes})
        return cls(
            modes=MappingProxyType(modes),
            exceptions=tuple(
                RuleException(frozenset(e.users), frozenset(e.rules), e.reason, frozenset(e.groups))
                for e in raw.exception
            ),
            denies=tuple(
                EndpointDeny(
                    d.path,
                    frozenset(m.upper() for m in d.methods),
                    frozenset(d.users),
                    frozenset(d.exempt_users),
                    d.message,
                    frozenset(d.groups),
                    frozenset(d.exempt_groups),
                )
                for d in raw.deny
            ),
            max_body=raw.limits.max_body,
            source=source,
            groups=MappingProxyType({name: frozenset(users) for name, users in raw.groups.items()}),
            groups_from_ou=raw.identity.groups_from_ou,
            images=images,
            trustyard=TrustyardLink(
                url=raw.trustyard.url,
                registry_host=raw.trustyard.registry_host,
                credentials_file=Path(raw.trustyard.credentials_file) if raw.trustyard.credentials_file else None,
                ca_file=Path(raw.trustyard.ca_file) if raw.trustyard.ca_file else None,
                timeout=raw.trustyard.timeout,
                cache_ttl=raw.trustyard.cache_ttl,
            ),
        )


def _known_rule(rule: str) -> str:
    if rule not in RULE_TITLES:
        raise ValueError(f"unknown rule id {rule!r} (known: {', '.join(RULE_TITLES)})")
    return rule


def _user_names(users: list[str]) -> list[str]:
    if any(not u for u in users):
        raise ValueError("an empty user name would match every unauthenticated request")
    return users


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _group_names(groups: list[str]) -> list[str]:
    if any(not g for g in groups):
        raise ValueError("group names must not be empty")
    return groups


class _ExceptionEntry(_Strict):
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    rules: list[str] = Field(min_length=1)
    reason: str = ""

    _users = field_validator("users")(_user_names)
    _groups = field_validator("groups")(_group_names)

    @model_validator(mode="after")
    def _someone(self) -> _ExceptionEntry:
        if not self.users and not self.groups:
            raise ValueError("an exception names at least one user or group")
        return self

    @field_validator("rules")
    @classmethod
    def _rules(cls, rules: list[str]) -> list[str]:
        return [r if r == "*" else _known_rule(r) for r in rules]


class _DenyEntry(_Strict):
    path: str = Field(pattern=r"^/")
    methods: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    exempt_users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    exempt_groups: list[str] = Field(default_factory=list)
    message: str = ""

    _users = field_validator("users", "exempt_users")(_user_names)
    _groups = field_validator("groups", "exempt_groups")(_group_names)


class _Limits(_Strict):
    max_body: int = Field(default=DEFAULT_MAX_BODY, gt=0, le=DEFAULT_MAX_BODY)


class _Identity(_Strict):
    groups_from_ou: bool = False


_Choice = Literal["refuse", "allow"]


class _Images(_Strict):
    allowed_registries: list[str] | None = None
    require_signed: bool = False
    max_severity: Literal["low", "medium", "high", "critical"] | None = None
    require_pull_allowed: bool = False
    unscanned: _Choice = "refuse"
    on_unavailable: _Choice | dict[str, _Choice] = "refuse"

    @field_validator("allowed_registries")
    @classmethod
    def _hosts(cls, hosts: list[str] | None) -> list[str] | None:
        if hosts is not None and any(not h or "/" in h or h != h.strip() for h in hosts):
            raise ValueError("registries are host names, with a port if any (docker.io, registry.example:5000)")
        return hosts

    @field_validator("on_unavailable")
    @classmethod
    def _per_rule(cls, value: _Choice | dict[str, _Choice]) -> _Choice | dict[str, _Choice]:
        if isinstance(value, dict):
            for rule in value:
                if rule not in TRUSTYARD_RULES:
                    raise ValueError(f"on_unavailable names {rule!r}: only {', '.join(TRUSTYARD_RULES)} ask trustyard")
        return value

    def rules(self) -> ImageRules:
        choices = self.on_unavailable
        per_rule = choices if isinstance(choices, dict) else dict.fromkeys(TRUSTYARD_RULES, choices)
        return ImageRules(
            allowed_registries=frozenset(self.allowed_registries) if self.allowed_registries is not None else None,
            require_signed=self.require_signed,
            max_severity=Level(self.max_severity) if self.max_severity else None,
            require_pull_allowed=self.require_pull_allowed,
            unscanned=self.unscanned,
            on_unavailable=MappingProxyType(dict(per_rule)),
        )


class _Trustyard(_Strict):
    url: str | None = Field(default=None, pattern=r"^https?://[^/?#]+/?$")
    registry_host: str | None = Field(default=None, pattern=r"^[^/\s]+$")
    credentials_file: str | None = None
    ca_file: str | None = None
    timeout: float = Field(default=5.0, gt=0, le=60)
    cache_ttl: float = Field(default=30.0, ge=0, le=3600)


class _PolicyFile(_Strict):
    version: Literal[1] = 1
    rules: dict[str, Literal["deny", "warn", "off"]] = Field(default_factory=dict)
    exception: list[_ExceptionEntry] = Field(default_factory=list)
    deny: list[_DenyEntry] = Field(default_factory=list)
    limits: _Limits = Field(default_factory=_Limits)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    identity: _Identity = Field(default_factory=_Identity)
    images: _Images = Field(default_factory=_Images)
    trustyard: _Trustyard = Field(default_factory=_Trustyard)

    @field_validator("groups")
    @classmethod
    def _group_members(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        _group_names(list(groups))
        for users in groups.values():
            _user_names(users)
        return groups

    @field_validator("rules")
    @classmethod
    def _rule_ids(cls, rules: dict[str, str]) -> dict[str, str]:
        for rule in rules:
            _known_rule(rule)
        return rules
