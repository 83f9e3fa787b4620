"""Vulnerability reports of a scan: trustyard JSON, SARIF 2.1.0 and CycloneDX 1.6 with ``vulnerabilities``.

- JSON: every finding with all it carries (ids, package, versions, status, ratings, the VEX or allowlist mark,
  layer and paths), the notes of the match and the store's data times; ``format_version`` bumps on change.
- SARIF 2.1.0 (OASIS, https://docs.oasis-open.org/sarif/sarif/v2.1.0/): one rule per advisory id, one result per
  finding, located at the component's evidence file; ``security-severity`` (the CVSS-like number GitHub code
  scanning sorts by) on each rule; a marked finding carries a SARIF ``suppression`` instead of disappearing.
- CycloneDX 1.6: the bill of materials from ``sbom/cyclonedx.build_bom`` (the same bom-refs as
  ``trustyard sbom``), plus one ``vulnerability`` per finding whose ``affects`` names the component's bom-ref;
  VEX and allowlist marks become its ``analysis``. Serialised by cyclonedx-python-lib, never by hand.

Not here: the table (the CLI's), matching, VEX.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from trustyard import __version__
from trustyard.scan.findings import Finding, Level, Mark
from trustyard.scan.indexer import IndexReport

FORMAT_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What one scan produced: the index, the findings (already marked), notes and warnings, the store's age."""

    index: IndexReport
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    data_times: tuple[tuple[str, str | None], ...] = ()


def _layer_index(report: IndexReport) -> dict[str, int]:
    return {str(s.digest): s.index for s in report.layers if s.digest is not None}


def finding_dict(finding: Finding, layers: dict[str, int]) -> dict[str, Any]:
    """One finding as JSON-ready data."""
    c = finding.component
    layer = str(c.layer) if c.layer is not None else None
    mark = finding.suppression
    return {
        "id": finding.id,
        "aliases": list(finding.aliases),
        "package": {"type": c.type.value, "name": c.name, "version": c.version, "purl": c.purl},
        "matched_package": finding.package,
        "installed_version": finding.version,
        "fixed_versions": list(finding.fixed_versions),
        "status": finding.status.value,
        "severity": finding.severity.value,
        "ratings": [
            {"method": r.method, "severity": r.level.value, "score": r.score, "vector": r.vector, "source": r.source}
            for r in finding.ratings
        ],
        "summary": finding.summary,
        "references": list(finding.references),
        "sources": [{"source": s, "id": i} for s, i in finding.sources],
        "layer": {"digest": layer, "index": layers.get(layer) if layer else None},
        "paths": list(c.paths[:20]),
        "suppressed": None
        if mark is None
        else {
            "state": mark.mark.value,
            "justification": mark.justification,
            "detail": mark.detail,
            "origin": mark.origin,
            "expires": mark.expires,
        },
    }


def to_json(scan: ScanReport) -> str:
    """trustyard's own JSON report."""
    layers = _layer_index(scan.index)
    body = {
        "format_version": FORMAT_VERSION,
        "source": scan.index.source,
        "manifest_digest": str(scan.index.manifest_digest) if scan.index.manifest_digest else None,
        "findings": [finding_dict(f, layers) for f in scan.findings],
        "notes": list(scan.notes),
        "warnings": list(scan.warnings),
        "data": [{"source": s, "data_time": t} for s, t in scan.data_times],
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


# --- SARIF -------------------------------------------------------------------------------------------------

_SARIF_LEVEL = {
    Level.CRITICAL: "error",
    Level.HIGH: "error",
    Level.MEDIUM: "warning",
    Level.LOW: "note",
    Level.UNKNOWN: "note",
}
# GitHub code scanning reads rules' properties.security-severity: >= 9 critical, >= 7 high, >= 4 medium, else low.
_SECURITY_SEVERITY = {
    Level.CRITICAL: "9.5",
    Level.HIGH: "8.0",
    Level.MEDIUM: "5.5",
    Level.LOW: "2.0",
    Level.UNKNOWN: "0.0",
}


def _security_severity(findings: Sequence[Finding]) -> str:
    scores = [r.score for f in findings for r in f.ratings if r.score is not None]
    if scores:
        return f"{max(scores):.1f}"
    return _SECURITY_SEVERITY[max((f.severity for f in findings), key=lambda lv: lv.rank)]


def to_sarif(scan: ScanReport) -> str:
    """SARIF 2.1.0: one run, one rule per advisory id, one result per finding."""
    by_rule: dict[str, list[Finding]] = {}
    for f in scan.findings:
        by_rule.setdefault(f.id, []).append(f)
    rule_ids = sorted(by_rule)
    rules = []
    for rule_id in rule_ids:
        group = by_rule[rule_id]
        first = group[0]
        worst = max((f.severity for f in group), key=lambda lv: lv.rank)
        rule: dict[str, Any] = {
            "id": rule_id,
            "name": rule_id.replace("-", ""),
            "shortDescription": {"text": first.summary or rule_id},
            "fullDescription": {"text": first.summary or rule_id},
            "defaultConfiguration": {"level": _SARIF_LEVEL[worst]},
            "properties": {
                "tags": ["vulnerability", "security", worst.value],
                "security-severity": _security_severity(group),
                "aliases": list(first.aliases),
            },
        }
        if first.references:
            rule["helpUri"] = first.references[0]
        rule["help"] = {"text": "\n".join(first.references) or rule_id}
        rules.append(rule)
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    results = []
    for f in scan.findings:
        fixed = ", ".join(f.fixed_versions) or "none"
        text = (
            f"{f.package} {f.version} is affected by {f.id} ({f.severity.value}); status {f.status.value}, "
            f"fixed in: {fixed}. Installed as {f.component.name} {f.component.version}."
        )
        result: dict[str, Any] = {
            "ruleId": f.id,
            "ruleIndex": index[f.id],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": text},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": {"uri": (f.component.evidence or f.component.name)}},
                    "message": {"text": f"{f.component.name}@{f.component.version}"},
                }
            ],
            "partialFingerprints": {"trustyard/v1": f"{f.id}:{f.component.type.value}:{f.component.name}"},
            "properties": {"fixed_versions": list(f.fixed_versions), "status": f.status.value},
        }
        if f.suppression is not None:
            s = f.suppression
            why = ": ".join(x for x in (s.mark.value, s.justification, s.detail) if x)
            result["suppressions"] = [{"kind": "external", "status": "accepted", "justification": why}]
        results.append(result)
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "trustyard",
                        "version": __version__,
                        "informationUri": "https://github.com/trustyard/trustyard",
                        "rules": rules,
                    }
                },
                "results": results,
                "properties": {"image": scan.index.source},
            }
        ],
    }
    return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"


# --- CycloneDX ---------------------------------------------------------------------------------------------


def to_cyclonedx(scan: ScanReport) -> str:
    """CycloneDX 1.6 JSON: the SBOM and one vulnerability per finding, ``affects`` -> the component's bom-ref."""
    from cyclonedx.exception import CycloneDxException
    from cyclonedx.model import XsUri
    from cyclonedx.model.impact_analysis import (
        ImpactAnalysisAffectedStatus,
        ImpactAnalysisJustification,
        ImpactAnalysisState,
    )
    from cyclonedx.model.vulnerability import (
        BomTarget,
        BomTargetVersionRange,
        Vulnerability,
        VulnerabilityAnalysis,
        VulnerabilityRating,
        VulnerabilityReference,
        VulnerabilityScoreSource,
        VulnerabilitySeverity,
        VulnerabilitySource,
    )
    from cyclonedx.output.json import JsonV1Dot6

    from trustyard.scan.errors import SbomError
    from trustyard.scan.sbom.cyclonedx import build_bom, component_ref

    severities = {
        Level.CRITICAL: VulnerabilitySeverity.CRITICAL,
        Level.HIGH: VulnerabilitySeverity.HIGH,
        Level.MEDIUM: VulnerabilitySeverity.MEDIUM,
        Level.LOW: VulnerabilitySeverity.LOW,
        Level.UNKNOWN: VulnerabilitySeverity.UNKNOWN,
    }
    methods = {"CVSS_V3": VulnerabilityScoreSource.CVSS_V3_1, "CVSS_V4": VulnerabilityScoreSource.CVSS_V4}
    justifications = {j.value: j for j in ImpactAnalysisJustification}
    # OpenVEX justifications -> CycloneDX's (the CycloneDX VEX guide's mapping)
    openvex = {
        "component_not_present": ImpactAnalysisJustification.CODE_NOT_PRESENT,
        "vulnerable_code_not_present": ImpactAnalysisJustification.CODE_NOT_PRESENT,
        "vulnerable_code_not_in_execute_path": ImpactAnalysisJustification.CODE_NOT_REACHABLE,
        "vulnerable_code_cannot_be_controlled_by_adversary": ImpactAnalysisJustification.PROTECTED_AT_RUNTIME,
        "inline_mitigations_already_exist": ImpactAnalysisJustification.PROTECTED_BY_MITIGATING_CONTROL,
    }
    bom = build_bom(scan.index)
    refs = {c: component_ref(i) for i, c in enumerate(scan.index.components)}
    for n, f in enumerate(scan.findings):
        ref = refs.get(f.component)
        if ref is None:
            continue
        ratings = [
            VulnerabilityRating(
                score=Decimal(str(r.score)) if r.score is not None else None,
                severity=severities[r.level],
                method=methods.get(r.method, VulnerabilityScoreSource.OTHER),
                vector=r.vector,
            )
            for r in f.ratings
        ] or [VulnerabilityRating(severity=severities[f.severity])]
        analysis = None
        if f.suppression is not None:
            s = f.suppression
            state = {
                Mark.NOT_AFFECTED: ImpactAnalysisState.NOT_AFFECTED,
                Mark.FIXED: ImpactAnalysisState.RESOLVED,
                Mark.ACCEPTED: ImpactAnalysisState.EXPLOITABLE,
            }[s.mark]
            just = openvex.get(s.justification) or justifications.get(s.justification)
            detail = "; ".join(x for x in (s.justification, s.detail, f"from {s.origin}") if x)
            if s.mark is Mark.ACCEPTED:
                detail = f"accepted risk{f' until {s.expires}' if s.expires else ''}: {detail}"
            analysis = VulnerabilityAnalysis(state=state, justification=just, detail=detail)
        source_url = f.references[0] if f.references else None
        vuln = Vulnerability(
            bom_ref=f"vuln-{n}",
            id=f.id,
            source=VulnerabilitySource(name=f.sources[0][0], url=XsUri(source_url) if source_url else None),
            references=[VulnerabilityReference(id=a, source=VulnerabilitySource(name="alias")) for a in f.aliases],
            ratings=ratings,
            description=f.summary or None,
            recommendation=f"Upgrade {f.package} to {' or '.join(f.fixed_versions)}" if f.fixed_versions else None,
            analysis=analysis,
            affects=[
                BomTarget(
                    ref=ref,
                    versions=[
                        BomTargetVersionRange(version=f.component.version, status=ImpactAnalysisAffectedStatus.AFFECTED)
                    ],
                )
            ],
        )
        bom.vulnerabilities.add(vuln)
    try:
        return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"
    except CycloneDxException as e:
        raise SbomError(f"cannot build the CycloneDX document: {e}") from e


__all__ = ["FORMAT_VERSION", "ScanReport", "finding_dict", "to_cyclonedx", "to_json", "to_sarif"]
