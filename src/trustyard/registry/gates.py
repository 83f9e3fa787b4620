"""Pull gates: the checks a project's pull policy puts on every manifest GET, one module per concern.

A project can demand that what it serves is signed (content trust) and free of findings at or above a
severity, or scanned at all (``auth.model.ProjectPolicy``). Each demand is a ``PullGate`` living with the part
that knows the answer (``trust.gate``, ``scan.gate``); the registry only asks them, in order, and answers the
first refusal with the OCI ``DENIED`` error. The hot path pays nothing when a project demands nothing:
``ProjectPolicy.gated`` is false and no gate is consulted.

Gates judge manifest GETs only. A HEAD carries no content, only the digest a tag points at, so signing
tools (``trustyard trust sign``, ``docker trust sign``) can still resolve the tag they are about to sign;
blobs are content-addressed and useless without a manifest naming them.

Adding a gate is adding one module that calls ``register`` at import and naming it in ``GATE_MODULES``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from trustyard.auth.model import ProjectPolicy

if TYPE_CHECKING:
    from trustyard.auth.service import AccessControl
    from trustyard.config import Settings
    from trustyard.registry.service import RegistryService

__all__ = [
    "GATE_MODULES",
    "GateContext",
    "Pull",
    "PullGate",
    "Refusal",
    "build_gates",
    "first_refusal",
    "register",
]


@dataclass(frozen=True, slots=True)
class Pull:
    """One manifest GET about to be answered: what was asked, what it resolved to, the project's demands."""

    repository: str
    reference: str
    """The tag or digest as the client asked for it."""
    digest: str
    """The digest of the manifest about to be served (for an old client, the platform image of an index)."""
    media_type: str
    policy: ProjectPolicy
    subject: str
    """Who pulls (the token subject; empty for anonymous), for the audit log and messages."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a gate refuses a pull: ``message`` is what the client shows, ``detail`` goes into the OCI error."""

    gate: str
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)


class PullGate(Protocol):
    """One demand a project's policy can make of a pull.

    ``applies`` must be a cheap look at the policy; ``check`` may read the database and is called in a worker
    thread. A gate that cannot decide (its data is unavailable) refuses: a policy that demands something is
    never satisfied by accident.

    A pull by digest of a manifest that a satisfying manifest names (the platform images of a signed index,
    which ``docker pull`` fetches by digest after resolving the tag) is judged by what names it, as a client
    resolving the tag would.
    """

    name: str

    def applies(self, policy: ProjectPolicy) -> bool:
        """Whether ``policy`` asks this gate anything."""
        ...

    def check(self, pull: Pull) -> Refusal | None:
        """``None`` to let the pull through, else the refusal."""
        ...


@dataclass(frozen=True, slots=True)
class GateContext:
    """What a gate may be built from: the settings and the running registry's collaborators."""

    settings: Settings
    registry: RegistryService
    access: AccessControl


GateFactory = Callable[[GateContext], PullGate]

GATE_MODULES: Final[tuple[str, ...]] = ("trustyard.trust.gate", "trustyard.scan.gate")
"""Modules whose import registers a gate, in the order their gates are asked."""

_FACTORIES: dict[str, GateFactory] = {}


def register(name: str) -> Callable[[GateFactory], GateFactory]:
    """Class or function decorator: make ``name``'s gate part of every registry built afterwards."""

    def add(factory: GateFactory) -> GateFactory:
        _FACTORIES[name] = factory
        return factory

    return add


def build_gates(context: GateContext, modules: Sequence[str] = GATE_MODULES) -> tuple[PullGate, ...]:
    """Every registered gate, built for one running registry, in ``modules`` order."""
    for module in modules:
        importlib.import_module(module)
    return tuple(factory(context) for factory in _FACTORIES.values())


def first_refusal(gates: Sequence[PullGate], pull: Pull) -> Refusal | None:
    """The first gate's refusal of ``pull``, or ``None`` when every gate that applies lets it through."""
    for gate in gates:
        if gate.applies(pull.policy):
            refused = gate.check(pull)
            if refused is not None:
                return refused
    return None
