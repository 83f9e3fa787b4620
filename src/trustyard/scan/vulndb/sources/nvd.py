"""The NVD's CVE JSON 2.0 (https://nvd.nist.gov/developers/vulnerabilities): API responses and feed files.

Shape: ``{"format": "NVD_CVE", "version": "2.0", "vulnerabilities": [{"cve": {"id", "published",
"lastModified", "vulnStatus", "descriptions", "metrics", "configurations", "references"}}]}``: the API's
answer to one page, and the yearly feed files, have the same shape, so one parser reads both.

The NVD names what a CVE affects by CPE, not by package: each ``configurations[].nodes[].cpeMatch[]`` entry
with ``vulnerable: true`` gives a CPE pattern (``criteria``) and optional bounds (``versionStartIncluding``,
``versionStartExcluding``, ``versionEndIncluding``, ``versionEndExcluding``). Each becomes an ``Affected`` entry
in the pseudo-ecosystem ``CPE``, named ``part:vendor:product`` (``a:tukaani:xz``), which is how the store
indexes it and how the matcher asks for a component whose CPE ``scan/cpe.py`` derived:
- a criteria with a version (``...:xz:5.6.0:*...``) lists that version (with its ``update`` part, ``1.3-rc1``);
- a criteria with ``*`` and bounds is one range ``introduced``/``introduced_after`` (exclusive start, which
  only the NVD has) up to ``fixed`` (exclusive end) or ``last_affected`` (inclusive end); no bounds at all
  means every version.
Versions are compared by ``parse_version`` below: upstream version strings of every project, so the generic
rule (numbers as numbers, letters before numbers and before the end, ``1.0rc1 < 1.0 < 1.0.1``), not a scheme.

Deliberately loose (stated in the docs): the platform parts of ``AND`` configurations ("running on Fedora 37")
are not checked, the negated nodes are skipped, and hardware (``h``) CPEs are not indexed. The CVSS vectors
(v3.0/v3.1, v4.0, v2) are kept as severities, the NVD's own (``Primary``) before others', each checked with the
``cvss`` library; a vector it refuses is dropped rather than stored. ``raw`` is the ``cve`` object as published.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import total_ordering
from typing import Final

from cvss import CVSS2, CVSS3, CVSS4, CVSSError
from pydantic import BaseModel, ConfigDict, Field

from trustyard.scan.versions import VersionError
from trustyard.scan.vulndb.model import Advisory, Affected, Event, EventKind, Range, Severity
from trustyard.scan.vulndb.sources.base import Document, utc_iso

ECOSYSTEM: Final = "CPE"
"""The store's pseudo-ecosystem of NVD entries; names are ``part:vendor:product``."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _CpeMatch(_Wire):
    vulnerable: bool
    criteria: str = Field(min_length=1)
    versionStartIncluding: str | None = None  # noqa: N815 (the wire's names)
    versionStartExcluding: str | None = None  # noqa: N815
    versionEndIncluding: str | None = None  # noqa: N815
    versionEndExcluding: str | None = None  # noqa: N815


class _Node(_Wire):
    operator: str = "OR"
    negate: bool = False
    cpeMatch: list[_CpeMatch] = []  # noqa: N815


class _Configuration(_Wire):
    nodes: list[_Node] = []


class _CvssData(_Wire):
    vectorString: str  # noqa: N815


class _Metric(_Wire):
    type: str = "Secondary"
    cvssData: _CvssData  # noqa: N815


class _Metrics(_Wire):
    cvssMetricV40: list[_Metric] = []  # noqa: N815
    cvssMetricV31: list[_Metric] = []  # noqa: N815
    cvssMetricV30: list[_Metric] = []  # noqa: N815
    cvssMetricV2: list[_Metric] = []  # noqa: N815


class _Description(_Wire):
    lang: str
    value: str


class _Cve(_Wire):
    id: str = Field(min_length=1)
    published: str | None = None
    lastModified: str  # noqa: N815
    vulnStatus: str | None = None  # noqa: N815
    descriptions: list[_Description] = []
    metrics: _Metrics = _Metrics()
    configurations: list[_Configuration] = []


class _Item(_Wire):
    cve: dict[str, object]


class _Response(_Wire):
    vulnerabilities: list[_Item]


_FIELD = re.compile(r"(?:\\.|[^:\\])+|(?<=:)(?=:)|(?<=:)$")


def split_cpe(cpe: str) -> list[str]:
    """The 13 fields of a CPE 2.3 formatted string (``cpe``, ``2.3``, part, vendor, product, version, ...),
    escapes kept; ``ValueError`` for anything else."""
    fields = [m.group(0) for m in _FIELD.finditer(cpe)]
    if len(fields) != 13 or fields[0] != "cpe" or fields[1] != "2.3" or fields[2] not in ("a", "o", "h"):
        raise ValueError(f"not a CPE 2.3 formatted string: {cpe!r}")
    return fields


def product_key(cpe: str) -> tuple[str, str]:
    """(``part:vendor:product``, version with its update) of a CPE; the version is ``*`` for any."""
    fields = split_cpe(cpe)
    version, update = fields[5], fields[6]
    if update not in ("*", "-", "") and version not in ("*", "-"):
        version = f"{version}-{update}"
    return ":".join(f.lower() for f in fields[2:5]), version.replace("\\", "")


# --- versions ---------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\d+|[A-Za-z]+")


@total_ordering
class CpeVersion:
    """A version as the NVD writes them: digits compare as numbers, letters as words; ``1.0rc1 < 1.0 < 1.0.1``.

    At the first differing token, a word sorts below a number and below the end (pre-releases), and the end
    below a number (``1.0 < 1.0.1``). Separators are ignored (``1.0-rc1 == 1.0.rc1``).
    """

    __slots__ = ("_key", "text")

    def __init__(self, text: str) -> None:
        tokens = _TOKEN.findall(text)
        if not tokens:
            raise VersionError("CPE", text, "no digits or letters to compare")
        self.text = text
        # (0, word) < (1, end) < (2, number): see the class docstring
        self._key = (*((2, int(t), "") if t.isdigit() else (0, 0, t.lower()) for t in tokens), (1, 0, ""))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CpeVersion) and self._key == other._key

    def __lt__(self, other: CpeVersion) -> bool:
        return self._key < other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"CpeVersion({self.text!r})"


def parse_version(text: str) -> CpeVersion:
    """A CPE version for comparison; ``VersionError`` for one with nothing to compare."""
    return CpeVersion(text)


# --- parsing ----------------------------------------------------------------------------------------------


def _affected(match: _CpeMatch) -> Affected | None:
    if not match.vulnerable:
        return None
    name, version = product_key(match.criteria)
    if name.startswith("h:"):
        return None
    if version not in ("*", "-"):
        return Affected(ecosystem=ECOSYSTEM, name=name, versions=(version,))
    events: list[Event] = []
    if match.versionStartIncluding:
        events.append(Event(EventKind.INTRODUCED, match.versionStartIncluding))
    elif match.versionStartExcluding:
        events.append(Event(EventKind.INTRODUCED_AFTER, match.versionStartExcluding))
    else:
        events.append(Event(EventKind.INTRODUCED, "0"))
    if match.versionEndExcluding:
        events.append(Event(EventKind.FIXED, match.versionEndExcluding))
    elif match.versionEndIncluding:
        events.append(Event(EventKind.LAST_AFFECTED, match.versionEndIncluding))
    return Affected(ecosystem=ECOSYSTEM, name=name, ranges=(Range("ECOSYSTEM", tuple(events)),))


_CHECKS = (("CVSS_V4", CVSS4), ("CVSS_V3", CVSS3), ("CVSS_V3", CVSS3), ("CVSS_V2", CVSS2))


def _severities(metrics: _Metrics) -> tuple[Severity, ...]:
    out: list[Severity] = []
    groups = (metrics.cvssMetricV40, metrics.cvssMetricV31, metrics.cvssMetricV30, metrics.cvssMetricV2)
    for (kind, parser), group in zip(_CHECKS, groups, strict=True):
        for metric in sorted(group, key=lambda m: m.type != "Primary"):
            vector = metric.cvssData.vectorString
            try:
                parser(vector)
            except (CVSSError, ValueError, KeyError, IndexError):
                continue  # a vector the cvss library refuses is no severity at all
            severity = Severity(kind, vector)
            if severity not in out:
                out.append(severity)
    return tuple(out)


def parse_cve(data: object) -> Advisory:
    """One ``cve`` object as an ``Advisory`` of source ``nvd``; pydantic's error if it is not one."""
    cve = _Cve.model_validate(data)
    affected: dict[Affected, None] = {}
    for configuration in cve.configurations:
        for node in configuration.nodes:
            if node.negate:
                continue
            for match in node.cpeMatch:
                entry = _affected(match)
                if entry is not None:
                    affected[entry] = None
    details = next((d.value for d in cve.descriptions if d.lang == "en"), "")
    rejected = cve.vulnStatus == "Rejected"
    modified = utc_iso(cve.lastModified)
    return Advisory(
        source=NvdSource.name,
        id=cve.id,
        raw=json.dumps(data, sort_keys=True, separators=(",", ":")).encode(),
        details=details,
        severity=_severities(cve.metrics),
        published=utc_iso(cve.published) if cve.published else None,
        modified=modified,
        withdrawn=modified if rejected else None,
        affected=tuple(affected),
    )


class NvdSource:
    """NVD CVE JSON 2.0: API pages and feed files."""

    name = "nvd"

    def recognizes(self, data: object) -> bool:
        """An object with a ``vulnerabilities`` list whose items hold a ``cve`` (or an empty page of ``NVD_CVE``)."""
        if not isinstance(data, dict) or not isinstance(data.get("vulnerabilities"), list):
            return False
        items = data["vulnerabilities"]
        if not items:
            return data.get("format") == "NVD_CVE"
        return isinstance(items[0], dict) and isinstance(items[0].get("cve"), dict)

    def feed(self, document: Document) -> str:
        """One feed: CVE ids are unique."""
        return self.name

    def parse(self, document: Document) -> Iterator[Advisory]:
        """One advisory per CVE of the page or feed file."""
        _Response.model_validate(document.data)  # the outer shape, before any record is read
        assert isinstance(document.data, dict)
        for item in document.data["vulnerabilities"]:
            yield parse_cve(item["cve"])
