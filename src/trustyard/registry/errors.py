"""The registry's exception family: one class per OCI distribution error code.

Raised by the service layer; ``registry.api.errors`` maps each to its HTTP status and the spec's JSON
body (distribution-spec v1.1, "Error Codes"). ``detail`` carries machine-readable context for clients.
"""

from __future__ import annotations

from typing import Any, ClassVar

from trustyard.errors import TrustyardError


class RegistryError(TrustyardError):
    """Base of all registry errors; ``code`` is the OCI error code."""

    code: ClassVar[str] = "UNKNOWN"

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.detail = detail


class BlobUnknownError(RegistryError):
    """The blob is not in the repository."""

    code = "BLOB_UNKNOWN"


class BlobUploadInvalidError(RegistryError):
    """The upload was refused (bad range, bad order)."""

    code = "BLOB_UPLOAD_INVALID"


class RangeInvalidError(BlobUploadInvalidError):
    """A chunk does not start where the upload ends (HTTP 416)."""


class BlobUploadUnknownError(RegistryError):
    """There is no such upload in the repository."""

    code = "BLOB_UPLOAD_UNKNOWN"


class DigestInvalidError(RegistryError):
    """The content does not match the digest given, or the digest is malformed."""

    code = "DIGEST_INVALID"


class ManifestBlobUnknownError(RegistryError):
    """A manifest names a blob or child manifest the repository does not have."""

    code = "MANIFEST_BLOB_UNKNOWN"


class ManifestInvalidError(RegistryError):
    """The manifest is malformed or of an unsupported kind."""

    code = "MANIFEST_INVALID"


class ManifestUnknownError(RegistryError):
    """No manifest of that tag or digest in the repository."""

    code = "MANIFEST_UNKNOWN"


class NameInvalidError(RegistryError):
    """The repository name breaks the spec's grammar."""

    code = "NAME_INVALID"


class NameUnknownError(RegistryError):
    """The repository does not exist."""

    code = "NAME_UNKNOWN"


class SizeInvalidError(RegistryError):
    """Content length does not match, or the content is too large."""

    code = "SIZE_INVALID"


class TooLargeError(SizeInvalidError):
    """The content exceeds a configured limit (HTTP 413)."""


class UnsupportedError(RegistryError):
    """The operation is not supported."""

    code = "UNSUPPORTED"


class UnavailableError(RegistryError):
    """The storage or database failed; the request changed nothing and can be retried."""

    code = "UNAVAILABLE"
