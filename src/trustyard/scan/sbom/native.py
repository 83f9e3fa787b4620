"""trustyard's own JSON report: every component with all it carries, every layer, and the file bill of materials.

This is the format for tools that want everything the indexer knows, in our terms, including what
CycloneDX and SPDX have no field for (per-layer summaries, the SHA-256, mode, owner and set-id bits of every
regular file). ``format_version`` is bumped on any incompatible change.
"""

from __future__ import annotations

import json
from typing import Any, Final

from trustyard.scan.indexer import IndexReport
from trustyard.scan.model import Component

FORMAT_VERSION: Final = 1


def component_dict(component: Component) -> dict[str, Any]:
    """One component as JSON-ready data."""
    return {
        "type": component.type.value,
        "name": component.name,
        "version": component.version,
        "purl": component.purl,
        "cpe": component.cpe,
        "arch": component.arch,
        "licenses": list(component.licenses),
        "layer": str(component.layer) if component.layer is not None else None,
        "source": {"name": component.source_name, "version": component.source_version}
        if component.source_name
        else None,
        "found_by": component.found_by,
        "evidence": component.evidence,
        "paths": list(component.paths),
        "extra": dict(component.extra),
    }


def report_dict(report: IndexReport) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    return {
        "format_version": FORMAT_VERSION,
        "source": report.source,
        "manifest_digest": str(report.manifest_digest) if report.manifest_digest is not None else None,
        "layers": [
            {
                "index": layer.index,
                "digest": str(layer.digest) if layer.digest is not None else None,
                "compressed_size": layer.compressed_size,
                "size": layer.size,
                "entries": layer.entries,
                "whiteouts": layer.whiteouts,
                "cached": layer.cached,
                "components": len(layer.components),
            }
            for layer in report.layers
        ],
        "components": [component_dict(c) for c in report.components],
        "files": [
            {
                "path": f.path,
                "sha256": f.entry.sha256,
                "size": f.entry.size,
                "mode": f"{f.entry.mode:04o}",
                "uid": f.entry.uid,
                "gid": f.entry.gid,
                "setuid": f.entry.is_setuid,
                "setgid": f.entry.is_setgid,
                "layer": str(f.layer) if f.layer is not None else None,
            }
            for f in report.files
        ],
        "warnings": list(report.warnings),
    }


def to_native_json(report: IndexReport) -> str:
    """The report as indented JSON text."""
    return json.dumps(report_dict(report), indent=2) + "\n"
