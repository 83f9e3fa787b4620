"""Deciding one engine request: endpoint refusals, then the container rules on the bodies that carry a container.

``Authorizer`` is the plugin's service layer and is pure apart from its audit log: the HTTP edge hands it
the raw plugin message and sends back the ``Decision``. It never raises and never allows by accident: a message
or body it cannot read, a body missing where a container configuration must be judged (the CVE-2024-41110
shape: ``Content-Length: 0`` on ``POST /containers/create``), a chunked or compressed body (dockerd does not
forward those), a body over the size limit, and any internal error all refuse, with a message naming the cause.

Inspected operations: ``POST /containers/create`` (every container rule of ``trustyard.policy``),
``POST /containers/{id}/update`` (the rules over what an update can change, judged only on the fields it sets)
and ``POST /containers/{id}/exec`` (5.23 privileged, 5.24 user root); with image rules, the image of a create
and of ``POST /images/create?fromImage=`` (a pull; an import names no registry and is judged when run). Every
other endpoint is judged only by the policy's ``[[deny]]`` entries. Responses (``AuthZRes``) are allowed when
readable: no rule looks at them yet. A rule that cannot decide from the request (``Verdict.ok is None``: no
AppArmor profile named, health check left to the image) neither refuses nor warns; the engine's own defaults
apply there.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trustyard.authz.errors import RequestError
from trustyard.authz.identity import Principal, identify
from trustyard.authz.images import ImageJudgement, ImageName, judge_image, parse_image
from trustyard.authz.policy import RULE_TITLES, Mode, Policy
from trustyard.authz.verdicts import VerdictSource
from trustyard.authz.wire import Decision, EngineRequest, parse_message, read_json_body
from trustyard.policy import RULES, ContainerSpec, PolicyError, Verdict

AUDIT_LOGGER: Final = "trustyard.authz.audit"

ENGINE_FIELDS: Final = frozenset(
    {
        "Image", "User", "Healthcheck", "Test", "ExposedPorts", "HostConfig", "NetworkingConfig", "EndpointsConfig",
        "Binds", "Mounts", "Type", "Source", "Target", "ReadOnly", "BindOptions", "Propagation", "Privileged",
        "CapAdd", "CapDrop", "SecurityOpt", "NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode", "Memory",
        "CpuShares", "NanoCpus", "CpuQuota", "ReadonlyRootfs", "PortBindings", "HostIp", "HostPort", "RestartPolicy",
        "Name", "MaximumRetryCount", "Devices", "PathOnHost", "PathInContainer", "Ulimits", "Soft", "Hard",
        "CgroupParent", "PidsLimit",
    }
)  # fmt: skip
"""Every Engine API field name the rules read; Go's decoder matches these case-insensitively, so must we."""

_UPDATE_RULES: Final = {
    "5.11": ("Memory",),
    "5.12": ("CpuShares", "NanoCpus", "CpuQuota"),
    "5.15": ("RestartPolicy",),
    "5.18": ("Devices",),
    "5.25": ("CgroupParent",),
    "5.29": ("PidsLimit",),
}
"""Rules an update can break, with the fields that make it do so; 0 means "unchanged" except for PidsLimit."""

_CONTAINER_RULES: Final = tuple(r for r in RULES if r.id in RULE_TITLES)
_ID = r"[^/]+"
_OPERATIONS: Final = (
    ("create", re.compile(r"/containers/create")),
    ("update", re.compile(rf"/containers/{_ID}/update")),
    ("exec", re.compile(rf"/containers/{_ID}/exec")),
    ("pull", re.compile(r"/images/create")),
)


@dataclass(frozen=True, slots=True)
class _Judged:
    verdicts: list[Verdict]
    target: str
    notes: tuple[str, ...] = ()


class Authorizer:
    """Answers the engine's ``AuthZReq`` and ``AuthZRes`` messages under one ``Policy``; never raises."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        audit: logging.Logger | None = None,
        verdicts: VerdictSource | None = None,
    ) -> None:
        """``verdicts``: where the image rules ask about images (default: the policy's ``[trustyard]``)."""
        self.policy = policy or Policy()
        self._audit = audit or logging.getLogger(AUDIT_LOGGER)
        self._verdicts_source = verdicts if verdicts is not None else self.policy.trustyard.source()
        self._judges: Mapping[str, Callable[[EngineRequest], _Judged]] = {
            "create": self._create,
            "update": self._update,
            "exec": self._exec,
            "pull": self._pull,
        }

    def request(self, message: bytes) -> Decision:
        """Decide an ``AuthZReq`` message (before dockerd handles the call)."""
        return self._guarded("request", message, self.decide)

    def response(self, message: bytes) -> Decision:
        """Decide an ``AuthZRes`` message (after dockerd handled the call): allowed whenever it is readable."""
        return self._guarded("response", message, lambda _req, _who: Decision(True))

    def identify(self, req: EngineRequest) -> Principal:
        """The caller of ``req`` with its groups under this policy; ``RequestError`` for a mismatched certificate."""
        return identify(
            req.user,
            req.authn_method,
            req.peer_certificates,
            self.policy.groups,
            groups_from_ou=self.policy.groups_from_ou,
        )

    def decide(self, req: EngineRequest, who: Principal) -> Decision:
        """The decision on one parsed request; raises ``RequestError``/``PolicyError`` for what cannot be judged."""
        for deny in self.policy.denies:
            if deny.refuses(who, req.endpoint):
                why = deny.message or "this endpoint is closed by the site's policy"
                return Decision(False, f"trustyard: {req.endpoint} refused: {why} (policy: {self.policy.source})")
        operation = next(
            (
                op
                for op, pattern in _OPERATIONS
                if req.endpoint.method == "POST" and pattern.fullmatch(req.endpoint.path)
            ),
            None,
        )
        if operation is None:
            return Decision(True)
        judged = self._judges[operation](req)
        return self._verdicts(who, req, judged)

    def _verdicts(self, who: Principal, req: EngineRequest, judged: _Judged) -> Decision:
        denied: list[Verdict] = []
        warnings: list[str] = list(judged.notes)
        excepted: list[str] = []
        for verdict in judged.verdicts:
            mode = self.policy.mode(verdict.rule)
            if verdict.ok is not False or mode is Mode.OFF:
                continue
            if self.policy.excepted(who, verdict.rule) is not None:
                excepted.append(verdict.rule)
            elif mode is Mode.DENY:
                denied.append(verdict)
            else:
                warnings.append(verdict.rule)
        if not denied:
            return Decision(True, rules=(), warnings=tuple(warnings), excepted=tuple(excepted))
        reasons = "; ".join(
            f"[{v.rule}] {v.details}{': ' + ', '.join(v.items) if v.items else ''} ({RULE_TITLES[v.rule]})"
            for v in denied
        )
        msg = (
            f"trustyard: {req.endpoint} of {judged.target} refused: {reasons}. Change the request, "
            f"or ask the administrators for an exception (policy: {self.policy.source})"
        )
        return Decision(
            False, msg, rules=tuple(v.rule for v in denied), warnings=tuple(warnings), excepted=tuple(excepted)
        )

    def _create(self, req: EngineRequest) -> _Judged:
        data = read_json_body(self._body(req), ENGINE_FIELDS)
        spec = ContainerSpec.from_create(data, name=req.endpoint.param("name"))
        rules = [r for r in _CONTAINER_RULES if self.policy.mode(r.id) is not Mode.OFF]
        verdicts = [r(spec) for r in rules]
        notes: tuple[str, ...] = ()
        if self.policy.images.active:
            judgement = self._image_rules(parse_image(spec.image))
            verdicts += judgement.verdicts
            notes = judgement.notes
        return _Judged(verdicts, f"image {spec.image or '(none)'}", notes)

    def _pull(self, req: EngineRequest) -> _Judged:
        """``POST /images/create?fromImage=NAME&tag=TAG``: the image rules; an import (``fromSrc``) names none."""
        name, tag = req.endpoint.param("fromImage"), req.endpoint.param("tag")
        if not self.policy.images.active or not name:
            return _Judged([], "an import")
        image = parse_image(name, tag)
        last = name.rpartition("/")[2]
        if not tag and ":" not in last and "@" not in name and self.policy.images.needs_trustyard:
            raise RequestError(f"pull of every tag of {image.registry}/{image.repository}: pull one tag or digest")
        judgement = self._image_rules(image)
        return _Judged(judgement.verdicts, f"image {image}", judgement.notes)

    def _image_rules(self, image: ImageName) -> ImageJudgement:
        return judge_image(image, self.policy.images, self._verdicts_source, self.policy.trustyard.host)

    def _update(self, req: EngineRequest) -> _Judged:
        data = read_json_body(self._body(req), ENGINE_FIELDS)
        spec = ContainerSpec.from_create({"HostConfig": data})
        verdicts = []
        for rule_id, fields in _UPDATE_RULES.items():
            values = [data.get(f) for f in fields]
            changes = any(v not in (None, 0) for v in values) or (rule_id == "5.29" and values[0] is not None)
            if changes and self.policy.mode(rule_id) is not Mode.OFF:
                verdicts.append(next(r for r in _CONTAINER_RULES if r.id == rule_id)(spec))
        return _Judged(verdicts, f"container {req.endpoint.path.split('/')[2]}")

    def _exec(self, req: EngineRequest) -> _Judged:
        data = read_json_body(self._body(req), ENGINE_FIELDS)
        try:
            exec_config = _ExecConfig.model_validate(data)
        except ValidationError as e:
            raise RequestError(f"not an exec request: {e.errors()[0]['msg']}") from e
        user = exec_config.user.partition(":")[0]
        root = user in ("root", "0")
        verdicts = [
            Verdict("5.23", not exec_config.privileged, "exec with --privileged" if exec_config.privileged else ""),
            Verdict("5.24", not root, f"exec as user {exec_config.user}" if root else ""),
        ]
        return _Judged(verdicts, f"container {req.endpoint.path.split('/')[2]}")

    def _body(self, req: EngineRequest) -> bytes:
        """The request body to judge, or ``RequestError`` when the engine did not pass all of it."""
        what = str(req.endpoint)
        if "transfer-encoding" in req.headers:
            raise RequestError(f"{what} with a chunked body: the engine does not pass it to plugins, refused")
        encoding = req.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise RequestError(f"{what} with a {encoding}-encoded body cannot be inspected, refused")
        media_type = req.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            raise RequestError(
                f"{what} with Content-Type {media_type or '(none)'}: only application/json bodies reach plugins"
            )
        length = req.headers.get("content-length")
        if not req.body:
            raise RequestError(
                f"{what} reached the plugin without its body (Content-Length: {length or 'none'}): "
                "a container configuration that cannot be inspected is refused (CVE-2024-41110)"
            )
        if length is not None and length.strip() != str(len(req.body)):
            raise RequestError(f"{what}: Content-Length {length} but the engine passed {len(req.body)} bytes")
        if len(req.body) > self.policy.max_body:
            raise RequestError(f"{what}: body of {len(req.body)} bytes exceeds the limit of {self.policy.max_body}")
        return req.body

    def _guarded(self, phase: str, message: bytes, decide: Callable[[EngineRequest, Principal], Decision]) -> Decision:
        req: EngineRequest | None = None
        who: Principal | None = None
        try:
            req = parse_message(message)
            who = self.identify(req)
            decision = decide(req, who)
        except (RequestError, PolicyError) as e:
            decision = Decision(False, f"trustyard: {e.message}", rules=("request",))
        except Exception as e:  # fail closed on our own bugs too; the audit log keeps the traceback
            self._audit.exception("internal error while deciding a %s", phase)
            text = f"trustyard: internal error ({type(e).__name__}); refused"
            decision = Decision(False, text, err=text, rules=("internal",))
        self._log(phase, req, who, decision)
        return decision

    def _log(self, phase: str, req: EngineRequest | None, who: Principal | None, decision: Decision) -> None:
        record: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "phase": phase,
            "user": req.user if req else None,
            "groups": sorted(who.groups) if who else [],
            "authn": req.authn_method if req else None,
            "endpoint": str(req.endpoint) if req else None,
            "uri": req.raw_uri if req else None,
            "allow": decision.allow,
            "rules": list(decision.rules),
            "warnings": list(decision.warnings),
            "excepted": list(decision.excepted),
            "msg": decision.msg,
        }
        level = logging.DEBUG if phase == "response" and decision.allow else logging.INFO
        self._audit.log(level, json.dumps(record, separators=(",", ":")))


class _ExecConfig(BaseModel):
    """The two fields of ``POST /containers/{id}/exec`` the exec rules read (Engine API ``ExecConfig``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    privileged: bool = Field(default=False, alias="Privileged")
    user: str = Field(default="", alias="User")

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


__all__ = ["AUDIT_LOGGER", "ENGINE_FIELDS", "Authorizer"]
