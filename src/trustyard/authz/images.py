"""Image rules: where an image may come from, whether trustyard must have signed it, how bad its findings may be.

Four rules, each on only when the policy's ``[images]`` table configures it (rule ids as in ``[rules]`` and
``[[exception]]``):

- ``image.registry`` (``allowed_registries``): the image's registry host must be listed. Names are read as the
  engine reads them (distribution's ``ParseNormalizedNamed``): the first path component is a registry host only
  if it contains ``.`` or ``:``, is ``localhost``, or has upper case; otherwise the image is on Docker Hub, which
  is ``docker.io`` (``alpine`` is ``docker.io/library/alpine:latest``; ``index.docker.io`` is ``docker.io``).
- ``image.signed`` (``require_signed``): trustyard's trust service must hold a signature for the reference.
- ``image.severity`` (``max_severity``): trustyard's scan of the image must have no finding at or above this
  severity; an image not (yet) scanned follows ``unscanned`` (``refuse`` by default).
- ``image.pull`` (``require_pull_allowed``): the registry's own pull gates (its project's content trust,
  severity threshold, unscanned blocking and allowlist) must let the image be pulled now; a refusal quotes the
  registry's reason. This holds an image pulled before the project's policy was tightened to that policy when
  it is run, and keeps one policy for pulls and runs: the registry's, set by its project administrators.

The last three ask trustyard (``verdicts.py``) about images on trustyard's own registry host; an image from any
other registry cannot have trustyard's signature or scan and fails them. When trustyard cannot be asked, each
rule follows ``on_unavailable`` (``refuse`` by default; ``allow`` lets the request through with a warning in the
audit log). Image IDs (``sha256:…``, 64 hex digits) name no registry and are refused while any rule is on.

Limits: the engine runs its local copy of a tag, which may be older than the registry's (verdicts are for what
the registry holds now); digest references (``name@sha256:…``) avoid that. A short image ID that matches no
name is looked up by the engine among local image IDs, so it is judged as the Docker Hub name it parses as.
Images can also arrive without a pull the plugin sees — ``docker build`` pulls base images inside the engine,
``docker load`` and ``import`` read tarballs — and are judged by their names when run; a site that allows
Docker Hub names can close ``/build`` and ``/images/load`` with ``[[deny]]`` entries.

Not here: asking trustyard (``verdicts.py``), where the rules are configured (``policy.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from trustyard.authz.errors import RequestError
from trustyard.authz.verdicts import ImageVerdict, VerdictSource, VerdictUnavailableError
from trustyard.oci.reference import InvalidReferenceError, is_digest, validate_name, validate_tag
from trustyard.policy import Verdict
from trustyard.scan.findings import Level

IMAGE_RULES: Final = MappingProxyType(
    {
        "image.registry": "Images come only from the allowed registries",
        "image.signed": "Images are signed in trustyard's trust service",
        "image.severity": "Images have no finding at or above the allowed severity",
        "image.pull": "Images are ones the registry's pull gates let be pulled",
    }
)
DOCKER_HUB: Final = "docker.io"
_HUB_ALIASES: Final = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_IMAGE_ID: Final = re.compile(r"(sha256:)?[a-f0-9]{64}")
TRUSTYARD_RULES: Final = ("image.signed", "image.severity", "image.pull")
"""The image rules that ask trustyard, in the order their verdicts are given."""

Choice = Literal["refuse", "allow"]


@dataclass(frozen=True, slots=True)
class ImageName:
    """An image reference as the engine resolves it: registry host, repository path, tag or digest."""

    registry: str
    repository: str
    reference: str

    def __str__(self) -> str:
        sep = "@" if is_digest(self.reference) else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"


def parse_image(text: str, tag: str = "") -> ImageName:
    """Normalise an image reference as dockerd does; ``tag``: the separate ``tag`` of ``POST /images/create``."""
    if not text:
        raise RequestError("no image named")
    if _IMAGE_ID.fullmatch(text):
        raise RequestError(f"image ID {text[:19]}… names no registry: refer to the image by name")
    name, at, digest = text.partition("@")
    if at and not is_digest(digest):
        raise RequestError(f"image {text[:120]!r} is not a valid reference: {digest[:80]!r} is not a digest")
    slash = name.find("/")
    first = name[:slash] if slash >= 0 else ""
    if slash >= 0 and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        registry, path = first, name[slash + 1 :]
    else:
        registry, path = DOCKER_HUB, name
    registry = DOCKER_HUB if registry.lower() in _HUB_ALIASES else registry
    colon = path.rfind(":")
    own_tag = ""
    if colon > path.rfind("/"):
        path, own_tag = path[:colon], path[colon + 1 :]
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    reference = digest or tag or own_tag or "latest"
    try:
        validate_name(path)
        if not is_digest(reference):
            validate_tag(reference)
    except InvalidReferenceError as e:
        raise RequestError(f"image {text[:120]!r} is not a valid reference: {e.message}") from e
    return ImageName(registry, path, reference)


@dataclass(frozen=True, slots=True)
class ImageRules:
    """The ``[images]`` table: which image rules are on, and what trustyard being unreachable means for each."""

    allowed_registries: frozenset[str] | None = None
    require_signed: bool = False
    max_severity: Level | None = None
    require_pull_allowed: bool = False
    unscanned: Choice = "refuse"
    on_unavailable: Mapping[str, Choice] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def active(self) -> tuple[str, ...]:
        """The ids of the rules that are on."""
        on = (
            self.allowed_registries is not None,
            self.require_signed,
            self.max_severity is not None,
            self.require_pull_allowed,
        )
        return tuple(rule for rule, enabled in zip(IMAGE_RULES, on, strict=True) if enabled)

    @property
    def needs_trustyard(self) -> bool:
        """Whether any rule asks trustyard."""
        return any(rule in TRUSTYARD_RULES for rule in self.active)


@dataclass(frozen=True, slots=True)
class ImageJudgement:
    """The image rules' verdicts, and notes for the audit log (rules let through while trustyard was down)."""

    verdicts: list[Verdict]
    notes: tuple[str, ...] = ()


def judge_image(
    image: ImageName, rules: ImageRules, source: VerdictSource | None, trustyard_host: str | None
) -> ImageJudgement:
    """Apply every active image rule to ``image``; asks ``source`` (trustyard at ``trustyard_host``) at most once."""
    verdicts: list[Verdict] = []
    notes: list[str] = []
    if rules.allowed_registries is not None:
        allowed = image.registry in rules.allowed_registries
        why = "" if allowed else f"image {image} comes from {image.registry}, which is not an allowed registry"
        verdicts.append(
            Verdict("image.registry", allowed, why, () if allowed else tuple(sorted(rules.allowed_registries)))
        )
    wanted = [r for r in TRUSTYARD_RULES if r in rules.active]
    if not wanted:
        return ImageJudgement(verdicts, tuple(notes))
    if image.registry != trustyard_host:
        why = f"image {image} is not on trustyard's registry {trustyard_host}, so trustyard cannot vouch for it"
        verdicts += [Verdict(rule, False, why) for rule in wanted]
        return ImageJudgement(verdicts, tuple(notes))
    try:
        if source is None:
            raise VerdictUnavailableError("no trustyard registry is configured for the image rules")
        found = source.verdict(image.repository, image.reference)
    except VerdictUnavailableError as e:
        for rule in wanted:
            if rules.on_unavailable.get(rule, "refuse") == "allow":
                verdicts.append(Verdict(rule, None))
                notes.append(f"{rule}: allowed while trustyard is unavailable ({e.message})")
            else:
                verdicts.append(Verdict(rule, False, f"trustyard could not be asked about {image}: {e.message}"))
        return ImageJudgement(verdicts, tuple(notes))
    if "image.signed" in wanted:
        verdicts.append(_signed(image, found))
    if "image.severity" in wanted and rules.max_severity is not None:
        verdicts.append(_severity(image, found, rules.max_severity, rules.unscanned))
    if "image.pull" in wanted:
        verdicts.append(_pull(image, found))
    return ImageJudgement(verdicts, tuple(notes))


def _signed(image: ImageName, found: ImageVerdict | None) -> Verdict:
    if found is None:
        return Verdict("image.signed", False, f"trustyard has no image {image}")
    if not found.signed:
        return Verdict("image.signed", False, f"image {image} is not signed in trustyard (sign it with notary/DCT)")
    return Verdict("image.signed", True)


def _severity(image: ImageName, found: ImageVerdict | None, limit: Level, unscanned: Choice) -> Verdict:
    status = found.scan.status if found is not None else None
    if found is None or status != "done":
        if unscanned == "allow":
            return Verdict("image.severity", True)
        state = "is not in trustyard" if found is None else f"has no finished scan (scan: {status or 'none'})"
        return Verdict("image.severity", False, f"image {image} {state}; unscanned images are refused")
    worst = _level(found.scan.worst)
    if worst is None or not worst.at_least(limit):
        return Verdict("image.severity", True)
    counts = tuple(
        f"{n} {sev}" for sev, n in found.scan.counts.items() if n and (lv := _level(sev)) and lv.at_least(limit)
    )
    return Verdict(
        "image.severity", False, f"image {image} has findings of severity {worst} (limit: below {limit})", counts
    )


def _pull(image: ImageName, found: ImageVerdict | None) -> Verdict:
    if found is None:
        return Verdict("image.pull", False, f"trustyard has no image {image}")
    if found.pull_allowed is None:  # a registry older than the pull gates' verdict: fail closed
        return Verdict("image.pull", False, f"trustyard's verdict on {image} does not say whether it may be pulled")
    if not found.pull_allowed:
        reason = (found.refusal or "no reason given").rstrip(".")
        return Verdict("image.pull", False, f"trustyard's registry refuses pulls of {image}: {reason}")
    return Verdict("image.pull", True)


def _level(text: str | None) -> Level | None:
    try:
        return Level(text.lower()) if text else None
    except ValueError:
        return Level.CRITICAL  # a severity this plugin does not know is treated as the worst: fail closed
