"""Repository names, tags and references, checked against the OCI distribution spec's grammar.

The regular expressions are those of distribution-spec v1.1 "Pulling manifests"; they are compiled once and
always applied with ``fullmatch`` (``$`` would also match before a trailing newline).
A name that passes cannot contain ``..``, empty components, upper case or anything that could escape a path.
"""

from __future__ import annotations

import re
from typing import Final

from trustyard.errors import TrustyardError

_NAME: Final = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*")
_TAG: Final = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_DIGEST_SHAPE: Final = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
MAX_NAME_LENGTH: Final = 255


class InvalidReferenceError(TrustyardError):
    """A repository name or tag outside the spec's grammar."""


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise ``InvalidReferenceError``."""
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise InvalidReferenceError(f"invalid repository name {name[:100]!r}")
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid tag, else raise ``InvalidReferenceError``."""
    if not _TAG.fullmatch(tag):
        raise InvalidReferenceError(f"invalid tag {tag[:140]!r}")
    return tag


def is_tag(reference: str) -> bool:
    """Whether ``reference`` has the shape of a tag."""
    return bool(_TAG.fullmatch(reference))


def is_digest(reference: str) -> bool:
    """Whether ``reference`` has the shape of a digest (validity is checked by ``Digest.parse``)."""
    return ":" in reference and bool(_DIGEST_SHAPE.fullmatch(reference))
