"""The content-trust pull gate: with content trust required, only what is validly signed leaves the registry.

A project whose policy sets ``content_trust`` (``auth.model.ProjectPolicy``) has every manifest GET judged by
``SignedLookup`` (``trust.signed``), which verifies the stored trust data server-side:

- by tag: the tag needs a valid signed target, and its signed digest must be the digest the tag points at now
  (a tag moved by an unsigned push after signing is refused, naming both digests);
- by digest: some valid signed target must name the digest, or name an index that lists it (the platform
  image Docker fetches after resolving a signed multi-platform tag).

The refusal is the registry's OCI ``DENIED`` (``registry.gates``) with a message saying what is unsigned and
how to sign it; trust data that cannot be read refuses too (fail closed).

``report_overwrite`` is the other half of issue 6 item 5: when a push moves a tag that had a valid signed
target to a digest no signed target names, the audit log records ``trust.tag_overwritten`` (the registry's
manifest PUT calls it; the push itself is not refused, as Docker Content Trust does not refuse it either).

Not here: verifying the chain (``trust.signed``), the registry's door (``registry.gates``, its routes).
"""

from __future__ import annotations

import logging
import weakref
from typing import Final

from trustyard.auth.audit import AuditEvent
from trustyard.auth.model import ProjectPolicy
from trustyard.auth.policy import project_of
from trustyard.auth.service import AccessControl
from trustyard.db.engine import Database
from trustyard.oci.reference import is_digest, is_tag
from trustyard.registry.gates import GateContext, Pull, PullGate, Refusal, build_gates, register
from trustyard.registry.metadata import MetadataStore
from trustyard.registry.service import PushedManifest, RegistryService
from trustyard.trust.errors import TrustError
from trustyard.trust.signed import SignedLookup

__all__ = ["NAME", "TrustGate", "gates_of", "put_reporting_overwrites", "report_overwrite"]

NAME: Final = "content-trust"
log = logging.getLogger(__name__)

# per registry, by its database (the access control shares it): what built the gates, and the verdict's gates
_CONTEXTS: weakref.WeakKeyDictionary[Database, GateContext] = weakref.WeakKeyDictionary()
_GATES: weakref.WeakKeyDictionary[Database, tuple[PullGate, ...]] = weakref.WeakKeyDictionary()


@register(NAME)
class TrustGate:
    """Refuses pulls of what has no valid signature, when the project requires content trust."""

    name = NAME

    def __init__(self, context: GateContext) -> None:
        self.lookup = SignedLookup.shared(context.registry.db, context.settings)
        self.meta: MetadataStore = context.registry.meta
        _CONTEXTS[context.registry.db] = context

    def applies(self, policy: ProjectPolicy) -> bool:
        """Only projects that require content trust are asked anything."""
        return policy.content_trust

    def check(self, pull: Pull) -> Refusal | None:
        """``None`` for a signed reference, else why it is refused."""
        repository, reference = pull.repository, pull.reference
        try:
            if is_digest(reference):
                judged = self.lookup.judge_digest(repository, reference)
                current = reference
            else:
                current = pull.digest
                judged = self.lookup.judge_tag(repository, reference, current)
                if not judged.signed and judged.signed_digest is not None:
                    # an old client is served the platform image of a tagged index: judge what the tag names
                    record = self.meta.resolve_tag(repository, reference)
                    if record is not None and record.digest != current:
                        current = record.digest
                        judged = self.lookup.judge_tag(repository, reference, current)
        except TrustError as e:
            message = f"content trust is required in project {project_of(repository)!r}, and {e.message}"
            return Refusal(self.name, message, {"reference": reference})
        if judged.signed:
            return None
        message = (
            f"content trust is required in project {project_of(repository)!r}: {judged.reason}"
            f" (sign it: docker trust sign, notary, or trustyard trust sign)"
        )
        return Refusal(
            self.name, message, {"reference": reference, "digest": current, "signed_digest": judged.signed_digest}
        )


def gates_of(access: AccessControl) -> tuple[PullGate, ...] | None:
    """The pull gates of the registry this access control belongs to (``None``: no registry built them here).

    The verdict endpoint asks the same gates as the registry's door; they are built from the context the
    registry gave this gate's factory, once per registry.
    """
    db = access.store.db
    found = _GATES.get(db)
    if found is None:
        context = _CONTEXTS.get(db)
        if context is None:
            return None
        found = build_gates(context)
        _GATES[db] = found
    return found


def put_reporting_overwrites(
    access: AccessControl,
    service: RegistryService,
    name: str,
    reference: str,
    body: bytes,
    content_type: str | None,
    extra_tags: tuple[str, ...],
    subject: str,
) -> PushedManifest:
    """``RegistryService.put_manifest``, then ``report_overwrite`` for every tag the push moved."""
    tags = ([reference] if is_tag(reference) else []) + list(extra_tags)
    before: dict[str, str | None] = {}
    for tag in tags:
        record = service.meta.resolve_tag(name, tag)
        before[tag] = None if record is None else record.digest
    pushed = service.put_manifest(name, reference, body, content_type, extra_tags)
    lookup = SignedLookup.shared(service.db, access.settings)
    for tag, old in before.items():
        report_overwrite(access, lookup, name, tag, old, pushed.digest, subject)
    return pushed


def report_overwrite(
    access: AccessControl, lookup: SignedLookup, repository: str, tag: str, old: str | None, new: str, subject: str
) -> None:
    """Audit ``trust.tag_overwritten`` when a push moved a validly signed tag to a digest nothing signed names.

    ``old`` is what the tag pointed at before the push. Errors reading trust data are logged, never raised:
    the push has happened and stands.
    """
    if old is None or old == new:
        return
    try:
        before = lookup.judge_tag(repository, tag, old)
        if not before.signed or lookup.judge_digest(repository, new).signed:
            return
    except TrustError as e:
        log.error("cannot tell whether the push to %s:%s overwrote a signed tag: %s", repository, tag, e.message)
        return
    event = AuditEvent(
        subject,
        "trust.tag_overwritten",
        project=project_of(repository),
        repository=repository,
        target=tag,
        detail={
            "signed_digest": old,
            "digest": new,
            "signers": ", ".join(before.signers),
            "reason": f"tag {tag!r} was signed for {old} and now points at unsigned {new}",
        },
    )
    access.audit.record(event)
