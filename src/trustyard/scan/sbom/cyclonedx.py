"""CycloneDX 1.6 JSON through cyclonedx-python-lib: the image as the BOM's subject, one component per package.

Mapping (CycloneDX 1.6 JSON schema): the image is ``metadata.component`` (type ``container``, version = the
manifest digest when there is one); each package is a component of type ``library`` (``operating-system``
for the distribution) with its purl, CPE and licenses; a Maven ``group:artifact`` name is split into
``group`` and ``name``; the paths that hold it are ``evidence.occurrences``; the introducing layer, source
package and analyzer are ``properties`` (``sbom/common.py``). The dependency graph is flat (the image
depends on every component): the indexer does not yet know which package needs which.

The document is serialised by the library from its typed model. ``validate`` checks a document against
the 1.6 schema with the library's strict validator; it is not run on every write because importing the
validator (jsonschema with its format checkers) costs about two seconds, more than indexing a small image,
so the tests validate every document shape we write instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.exception import CycloneDxException
from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component as CdxComponent
from cyclonedx.model.component import ComponentType as CdxType
from cyclonedx.model.component_evidence import ComponentEvidence, Occurrence
from cyclonedx.model.license import License
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from trustyard import __version__
from trustyard.scan.errors import SbomError
from trustyard.scan.indexer import IndexReport
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.sbom.common import properties

_LICENSES = LicenseFactory()


def _licenses(values: Iterable[str]) -> list[License]:
    """One SPDX expression, id or free name as the library judges it; several as ids or names (never an
    expression among others, which the schema forbids)."""
    values = [v for v in values if v.strip()]
    if len(values) == 1:
        return [_LICENSES.make_from_string(values[0])]
    found: list[License] = []
    for value in values:
        try:
            found.append(_LICENSES.make_with_id(value))
        except CycloneDxException:
            found.append(_LICENSES.make_with_name(value))
    return found


def _component(component: Component, ref: str) -> CdxComponent:
    group, name = None, component.name
    if component.type is ComponentType.MAVEN and ":" in component.name:
        group, _, name = component.name.partition(":")
    occurrences = [Occurrence(location=p) for p in dict.fromkeys(component.paths)]
    return CdxComponent(
        name=name,
        group=group,
        version=component.version or None,
        type=CdxType.OPERATING_SYSTEM if component.type is ComponentType.OS else CdxType.LIBRARY,
        bom_ref=ref,
        purl=PackageURL.from_string(component.purl) if component.purl else None,
        cpe=component.cpe,
        licenses=_licenses(component.licenses),
        properties=[Property(name=k, value=v) for k, v in properties(component)],
        evidence=ComponentEvidence(occurrences=occurrences) if occurrences else None,
    )


def component_ref(index: int) -> str:
    """The bom-ref of the ``index``-th component of a report: the vulnerability report's ``affects`` use it too."""
    return f"component-{index}"


def build_bom(report: IndexReport) -> Bom:
    """The library's model of the BOM for ``report``."""
    bom = Bom()
    image = CdxComponent(
        name=report.source,
        version=str(report.manifest_digest) if report.manifest_digest is not None else None,
        type=CdxType.CONTAINER,
        bom_ref="image",
    )
    bom.metadata.component = image
    bom.metadata.tools.components.add(CdxComponent(name="trustyard", version=__version__, type=CdxType.APPLICATION))
    components = [_component(c, component_ref(i)) for i, c in enumerate(report.components)]
    for c in components:
        bom.components.add(c)
    bom.register_dependency(image, components)
    return bom


def to_cyclonedx_json(report: IndexReport) -> str:
    """The CycloneDX 1.6 JSON document."""
    try:
        return JsonV1Dot6(build_bom(report)).output_as_string(indent=2) + "\n"
    except CycloneDxException as e:
        raise SbomError(f"cannot build the CycloneDX document: {e}") from e


def validate(text: str) -> None:
    """Check a CycloneDX JSON document against the 1.6 schema (strict: no unknown properties); ``SbomError``."""
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise SbomError(f"the CycloneDX document does not validate: {error}")
