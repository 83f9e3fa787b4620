"""SPDX 2.3 JSON through spdx-tools: one SPDX package for the image, one per component, the image CONTAINS each.

Mapping (SPDX 2.3 specification, clauses 6-7 and 11): the document DESCRIBES the image package (purpose
``CONTAINER``); every component is a package (purpose ``LIBRARY``, ``OPERATING-SYSTEM`` for the
distribution) with ``versionInfo``, the purl as a ``PACKAGE-MANAGER``/``purl`` external reference and the
CPE as a ``SECURITY``/``cpe23Type`` one, ``sourceInfo`` naming the source package, and a comment carrying
the introducing layer, the analyzer and the paths. A declared license that is a valid SPDX expression is
``licenseDeclared``; anything else (``GPLv3+`` from an rpm header, a classifier name) is NOASSERTION with the
original text in ``licenseComments``, as the specification asks instead of inventing identifiers.

Files are not SPDX ``File`` elements: SPDX 2.3 requires a SHA-1 for each and the walker computes SHA-256
only; the file bill of materials is in trustyard's own JSON. The document is validated by spdx-tools before
it is written; a validation message is an ``SbomError``.
"""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime
from typing import Final

from license_expression import ExpressionError, LicenseExpression
from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.model import (
    Actor,
    ActorType,
    CreationInfo,
    Document,
    ExternalPackageRef,
    ExternalPackageRefCategory,
    Package,
    PackagePurpose,
    Relationship,
    RelationshipType,
    SpdxNoAssertion,
)
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

from trustyard import __version__
from trustyard.scan.errors import SbomError
from trustyard.scan.indexer import IndexReport
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.sbom.common import properties

SPDX_VERSION: Final = "SPDX-2.3"
NAMESPACE_BASE: Final = "https://spdx.org/spdxdocs/trustyard"
_ID_UNSAFE: Final = re.compile(r"[^A-Za-z0-9.-]+")


def _spdx_id(index: int, name: str) -> str:
    """``SPDXRef-Package-N-NAME``: unique by index, readable by name, only the characters SPDX allows."""
    return f"SPDXRef-Package-{index}-{_ID_UNSAFE.sub('-', name).strip('-')[:60] or 'x'}"


def _declared(licenses: tuple[str, ...]) -> tuple[LicenseExpression | SpdxNoAssertion, str | None]:
    """The declared license as a validated SPDX expression, or NOASSERTION and the original text."""
    text = " AND ".join(f"({v})" if len(licenses) > 1 else v for v in licenses if v.strip())
    if not text:
        return SpdxNoAssertion(), None
    info = spdx_licensing.validate(text)
    if info.errors or info.invalid_symbols:
        return SpdxNoAssertion(), f"declared license, not an SPDX expression: {text}"
    try:
        return spdx_licensing.parse(text, validate=True), None
    except ExpressionError:
        return SpdxNoAssertion(), f"declared license, not an SPDX expression: {text}"


def _package(component: Component, spdx_id: str) -> Package:
    refs = []
    if component.purl:
        refs.append(ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", component.purl))
    if component.cpe:
        refs.append(ExternalPackageRef(ExternalPackageRefCategory.SECURITY, "cpe23Type", component.cpe))
    declared, license_comment = _declared(component.licenses)
    facts = [f"{k.removeprefix('trustyard:')}: {v}" for k, v in properties(component)]
    paths = list(dict.fromkeys(component.paths))
    if paths:
        facts.append("paths: " + ", ".join(paths))
    source = None
    if component.source_name:
        source = f"built from source package {component.source_name} {component.source_version or ''}".rstrip()
    return Package(
        spdx_id=spdx_id,
        name=component.name,
        download_location=SpdxNoAssertion(),
        version=component.version or None,
        files_analyzed=False,
        license_concluded=SpdxNoAssertion(),
        license_declared=declared,
        license_comment=license_comment,
        copyright_text=SpdxNoAssertion(),
        source_info=source,
        comment="; ".join(facts) or None,
        external_references=refs,
        primary_package_purpose=PackagePurpose.OPERATING_SYSTEM
        if component.type is ComponentType.OS
        else PackagePurpose.LIBRARY,
    )


def build_document(report: IndexReport, *, created: datetime | None = None) -> Document:
    """The spdx-tools model of the document for ``report``."""
    creation = CreationInfo(
        spdx_version=SPDX_VERSION,
        spdx_id="SPDXRef-DOCUMENT",
        name=report.source,
        document_namespace=f"{NAMESPACE_BASE}-{uuid.uuid4()}",
        creators=[Actor(ActorType.TOOL, f"trustyard-{__version__}")],
        created=(created or datetime.now(UTC)).replace(microsecond=0, tzinfo=None),
    )
    image = Package(
        spdx_id="SPDXRef-Image",
        name=report.source,
        download_location=SpdxNoAssertion(),
        version=str(report.manifest_digest) if report.manifest_digest is not None else None,
        files_analyzed=False,
        primary_package_purpose=PackagePurpose.CONTAINER,
    )
    packages = [_package(c, _spdx_id(i, c.name)) for i, c in enumerate(report.components)]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, image.spdx_id)]
    relationships += [Relationship(image.spdx_id, RelationshipType.CONTAINS, p.spdx_id) for p in packages]
    return Document(creation_info=creation, packages=[image, *packages], relationships=relationships)


def to_spdx_json(report: IndexReport) -> str:
    """The SPDX 2.3 JSON document, validated by spdx-tools."""
    document = build_document(report)
    messages = validate_full_spdx_document(document, SPDX_VERSION)
    if messages:
        raise SbomError(f"the SPDX document does not validate: {messages[0].validation_message}")
    out = io.StringIO()
    write_document_to_stream(document, out, validate=False)
    return out.getvalue() + "\n"
