"""Wire types shared by every part: digests, media types, manifests, names and references.

Nothing here imports from other trustyard parts; everything here is pure (bytes in, typed objects out).
"""

from trustyard.oci.digest import Digest, DigestError, Hasher
from trustyard.oci.manifest import (
    Descriptor,
    ImageIndex,
    ImageManifest,
    Manifest,
    ManifestError,
    parse_manifest,
)
from trustyard.oci.mediatypes import MediaType
from trustyard.oci.reference import InvalidReferenceError, is_digest, is_tag, validate_name, validate_tag

__all__ = [
    "Descriptor",
    "Digest",
    "DigestError",
    "Hasher",
    "ImageIndex",
    "ImageManifest",
    "InvalidReferenceError",
    "Manifest",
    "ManifestError",
    "MediaType",
    "is_digest",
    "is_tag",
    "parse_manifest",
    "validate_name",
    "validate_tag",
]
