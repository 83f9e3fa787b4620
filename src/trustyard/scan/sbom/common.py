"""What every output format says about a component beyond name and version, computed once here.

``properties`` is the flat list of facts (layer, source package, analyzer, arch, each analyzer's extra
fields) that CycloneDX carries as ``properties`` and SPDX as a package comment, so the two formats can never
disagree about them. Names are namespaced ``trustyard:`` as CycloneDX's property taxonomy asks of tools.
"""

from __future__ import annotations

from trustyard.scan.model import Component


def properties(component: Component) -> list[tuple[str, str]]:
    """The component's facts as ``(trustyard:NAME, value)`` pairs, empty values left out."""
    pairs = [
        ("trustyard:layer", str(component.layer) if component.layer is not None else ""),
        ("trustyard:found-by", component.found_by),
        ("trustyard:arch", component.arch or ""),
        ("trustyard:source-name", component.source_name or ""),
        ("trustyard:source-version", component.source_version or ""),
        *((f"trustyard:{key}", value) for key, value in component.extra),
    ]
    return [(k, v) for k, v in pairs if v]


def display_name(component: Component) -> str:
    """``name@version`` (or just the name when the version is unknown), for messages and comments."""
    return f"{component.name}@{component.version}" if component.version else component.name
