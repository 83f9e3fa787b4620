"""The trust service's error family, shaped as notary-server's errors so that the real client reads them.

notary-server answers every failure with a docker-distribution envelope ``{"errors":[{code,message,detail}]}``;
the ``notary`` client parses ``errors[0].detail`` of a 400 as ``{"Name": "ErrBad…", "Error": {"Msg": …}}``
(``tuf/validation/errors.go``) and prints the message, so the code, message and detail shape here are the
protocol, not decoration (notes/notary-v1.md section 3). Nothing here knows about HTTP beyond the status.
"""

from __future__ import annotations

from typing import Any

from trustyard.errors import TrustyardError

__all__ = [
    "BadHierarchyError",
    "BadRootError",
    "BadSnapshotError",
    "BadTargetsError",
    "InvalidRoleError",
    "InvalidUpdateError",
    "MalformedJSONError",
    "MalformedUploadError",
    "MetadataNotFoundError",
    "TrustError",
    "ValidationFailedError",
    "VersionError",
]


class TrustError(TrustyardError):
    """Root of the trust family: a notary error code, its fixed message, its HTTP status and its detail."""

    code = "UNKNOWN"
    status = 500
    public_message = "Unknown error."

    def detail(self) -> Any:
        """The ``detail`` member of the error envelope; notary-server sends ``{}`` when it has nothing to add."""
        return {}


class MetadataNotFoundError(TrustError):
    """A role, version or checksum that is not stored: the client's ``ErrMetaNotFound`` (a new repository)."""

    code = "METADATA_NOT_FOUND"
    status = 404
    public_message = "You have requested metadata that does not exist."


class VersionError(TrustError):
    """A role uploaded at a version not above the stored one (a replay or rollback of an upload)."""

    code = "VERSION"
    status = 400
    public_message = "A newer version of metadata is already available."


class MalformedJSONError(TrustError):
    """A part whose bytes are not metadata JSON of the expected shape."""

    code = "MALFORMED_JSON"
    status = 400
    public_message = "JSON sent by the client could not be parsed by the server"

    def detail(self) -> Any:
        """notary-server sends no detail here; ``None`` tells the edge to leave the member out."""
        return None


class MalformedUploadError(TrustError):
    """A POST body that is not the multipart form the client sends."""

    code = "MALFORMED_UPLOAD"
    status = 400
    public_message = "The body of your request is malformed."


class InvalidRoleError(TrustError):
    """A part or path naming something that is not a TUF role; the detail is the role name."""

    code = "INVALID_ROLE"
    status = 400
    public_message = "The role you are attempting to operate on is invalid."

    def __init__(self, role: str) -> None:
        super().__init__(f"invalid role {role!r}")
        self.role = role

    def detail(self) -> Any:
        """The offending role name, as notary-server sends it."""
        return self.role


class InvalidUpdateError(TrustError):
    """An update refused by validation; subclasses name the Go error type the client decodes."""

    code = "INVALID_UPDATE"
    status = 400
    public_message = "Update sent by the client is invalid."
    go_name = "ErrValidation"

    def detail(self) -> Any:
        """``{"Name": <Go type>, "Error": {"Msg": …}}``: what ``notary`` turns back into its own error."""
        return {"Name": self.go_name, "Error": {"Msg": self.message}}


class ValidationFailedError(InvalidUpdateError):
    """A generic validation failure (``ErrValidation``), e.g. no root at all for a new repository."""

    go_name = "ErrValidation"


class BadRootError(InvalidUpdateError):
    """The root is not acceptable: signatures, version, certificate, expiry (``ErrBadRoot``)."""

    go_name = "ErrBadRoot"


class BadTargetsError(InvalidUpdateError):
    """A targets or delegation role is not acceptable (``ErrBadTargets``)."""

    go_name = "ErrBadTargets"


class BadSnapshotError(InvalidUpdateError):
    """The snapshot does not verify or does not describe the repository (``ErrBadSnapshot``)."""

    go_name = "ErrBadSnapshot"


class BadHierarchyError(InvalidUpdateError):
    """A role whose parent does not delegate to it, or a missing snapshot (``ErrBadHierarchy``)."""

    go_name = "ErrBadHierarchy"

    def __init__(self, message: str, *, missing: str = "") -> None:
        super().__init__(message)
        self.missing = missing

    def detail(self) -> Any:
        """Go's ``ErrBadHierarchy`` also carries the missing role."""
        return {"Name": self.go_name, "Error": {"Missing": self.missing, "Msg": self.message}}
