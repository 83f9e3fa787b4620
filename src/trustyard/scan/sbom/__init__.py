"""Bills of materials from an ``IndexReport``: CycloneDX 1.6 JSON, SPDX 2.3 JSON and trustyard's own JSON.

Each format is one module that turns the report into the field's library model (cyclonedx-python-lib,
spdx-tools) and lets that library serialise and validate it: we never write CycloneDX or SPDX by hand, so a
document we emit is one the projects' own tools accept. ``render`` is the one entry point the CLI (and,
later, the registry's SBOM referrers) call. The writers are imported when first used: the two libraries take
a second to import, which commands that write no SBOM should not pay.
"""

from __future__ import annotations

from enum import StrEnum

from trustyard.scan.indexer import IndexReport


class SbomFormat(StrEnum):
    """The document formats ``render`` writes (``table`` is the CLI's own, not a document)."""

    CYCLONEDX_JSON = "cyclonedx-json"
    SPDX_JSON = "spdx-json"
    JSON = "json"


def render(report: IndexReport, fmt: SbomFormat) -> str:
    """The document for ``report`` in ``fmt``; raises ``SbomError`` when the library rejects what we built."""
    if fmt is SbomFormat.CYCLONEDX_JSON:
        from trustyard.scan.sbom.cyclonedx import to_cyclonedx_json

        return to_cyclonedx_json(report)
    if fmt is SbomFormat.SPDX_JSON:
        from trustyard.scan.sbom.spdx import to_spdx_json

        return to_spdx_json(report)
    from trustyard.scan.sbom.native import to_native_json

    return to_native_json(report)


__all__ = ["SbomFormat", "render"]
