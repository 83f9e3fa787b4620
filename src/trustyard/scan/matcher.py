"""Matching: a bill of materials in, findings out, from the local vulnerability store alone.

The input is the components of an ``IndexReport`` (index once, match often: no layer is read here, so a
stored inventory can be matched again whenever the advisory data changes). For each component a
``PackageMatcher`` (claircore's shape) says which (ecosystem, package name, version) to ask the store about:
- OS packages ask their *distribution's* data, by the name the distribution's advisories use: a deb by its
  source package and source version against ``Debian:<release>`` (the Debian tracker's entries, and osv.dev's
  Debian records where imported); an apk by its origin against ``Alpine:v<branch>``; an rpm by binary and
  source name against its distribution's OSV ecosystem (Red Hat, Rocky, Alma, CBL-Mariner, ...), as far as
  such data is in the store. The release comes from the image's os-release, or for rpm images without one
  from the distribution's ``*-release`` package.
- Language packages ask their ecosystem's OSV data (PyPI, npm, Go, Maven, crates.io for cargo) with the
  ecosystem's version rules (``vulndb/ranges.py``). A PyPI or npm package whose metadata file belongs to an OS
  package is left to the distribution's data: distributions patch such packages in place without changing the
  upstream version their metadata claims (Debian's python3-urllib3 1.26.12-1+deb12u4 has both CVE-2023-43804
  and CVE-2023-45803 fixed, yet says 1.26.12). Go and Java binaries owned by OS packages are still matched: the
  toolchain's standard library is linked into them, and a distribution's fix to the toolchain does not reach a
  binary until rebuilt.

Every stored entry that names the package and whose ranges contain the version is a hit; withdrawn
advisories never hit, and an entry the distribution says is ``not-affected`` has no range to hit. Hits for one
component are merged into one finding per vulnerability: two hits are the same vulnerability when their ids
or aliases meet (union-find over the ids, so PYSEC-x = CVE-y = GHSA-z chains merge). The finding's id is the
distribution's own id when distribution data matched, else the ecosystem database's (PYSEC, GO, RUSTSEC,
GHSA) before a bare CVE.

A component with a CPE (``scan/cpe.py``) is also matched against the NVD's entries (ecosystem ``CPE``, named
``part:vendor:product``), unless its distribution's own data is in the store: distributions backport fixes
without changing the upstream version the CPE carries, so the NVD would report CVEs the distribution fixed.
An NVD hit merges with the ecosystem's finding of the same CVE through the aliases (``GO-2023-1751`` names
``CVE-2023-24539``).

Not here: VEX and the allowlist (``scan/vex.py``, applied afterwards), report formats (``scan/vulnreport.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from trustyard.scan.findings import Finding, FindingStatus, Level, Rating, level_of_word, overall, rate_vector
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.versions import VersionError
from trustyard.scan.vulndb.model import Advisory, EventKind, Status
from trustyard.scan.vulndb.ranges import UnevaluableRangeError, affected_by, in_range, version_parser
from trustyard.scan.vulndb.sources.debian import RELEASE_NUMBERS
from trustyard.scan.vulndb.sources.nvd import ECOSYSTEM as CPE_ECOSYSTEM
from trustyard.scan.vulndb.sources.nvd import product_key
from trustyard.scan.vulndb.store import StoredAffected, VulnerabilityStore


@dataclass(frozen=True, slots=True)
class Distro:
    """The image's distribution: os-release ``ID``, ``VERSION_ID`` and codename (any may be empty)."""

    id: str
    version: str = ""
    codename: str = ""


@dataclass(frozen=True, slots=True)
class Query:
    """One store lookup for a component: ecosystem, the package name advisories use, the version to compare.

    ``distro`` says whether the answers are the distribution's own data (they decide the finding's id,
    status and severity first).
    """

    ecosystem: str
    name: str
    version: str
    distro: bool = False


@dataclass(frozen=True, slots=True)
class MatchContext:
    """What a package matcher may know beyond the component: the distribution and the OS-owned file paths."""

    distro: Distro | None
    os_owned: frozenset[str] = frozenset()


class PackageMatcher(Protocol):
    """Which store lookups a kind of component needs. ``queries`` returns none for components it cannot place;
    ``skip_reason`` then says why, for the report's notes."""

    name: str

    def handles(self, component: Component) -> bool:
        """Whether this matcher is the one for ``component``."""
        ...

    def queries(self, component: Component, context: MatchContext) -> Sequence[Query]:
        """The lookups for one component; empty when it cannot be matched (see ``skip_reason``)."""
        ...

    def skip_reason(self, component: Component, context: MatchContext) -> str:
        """Why ``queries`` returned nothing for ``component``."""
        ...


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


class DebMatcher:
    """dpkg packages by source package and source version, against ``Debian:<n>`` or ``Ubuntu:<n>`` data."""

    name = "deb"

    def handles(self, component: Component) -> bool:
        """Debian packages."""
        return component.type is ComponentType.DEB

    @staticmethod
    def ecosystems(distro: Distro | None) -> list[str]:
        """The OSV ecosystem names of the image's release (the tracker source uses the same)."""
        if distro is None:
            return []
        if distro.id == "debian":
            release = distro.version.split(".")[0] or RELEASE_NUMBERS.get(distro.codename, distro.codename)
            return [f"Debian:{release}"] if release else []
        if distro.id == "ubuntu" and distro.version:
            return [f"Ubuntu:{distro.version}", f"Ubuntu:{distro.version}:LTS"]
        return []

    def queries(self, component: Component, context: MatchContext) -> Sequence[Query]:
        """One lookup per ecosystem name of the release, by source package."""
        name = component.source_name or component.name
        version = component.source_version or component.version
        return [Query(e, name, version, distro=True) for e in self.ecosystems(context.distro)]

    def skip_reason(self, component: Component, context: MatchContext) -> str:
        """No Debian or Ubuntu release known."""
        return f"deb packages of {_describe(context.distro)} have no advisory ecosystem"


class ApkMatcher:
    """apk packages by origin against ``Alpine:v<major.minor>`` (secdb and osv.dev's Alpine records)."""

    name = "apk"

    def handles(self, component: Component) -> bool:
        """Alpine-format packages."""
        return component.type is ComponentType.APK

    @staticmethod
    def ecosystems(distro: Distro | None) -> list[str]:
        """``Alpine:v3.20`` for Alpine 3.20.3; Wolfi and Chainguard have one rolling ecosystem each."""
        if distro is None:
            return []
        if distro.id == "alpine" and distro.version:
            return [f"Alpine:v{_major_minor(distro.version)}"]
        if distro.id == "wolfi":
            return ["Wolfi"]
        if distro.id == "chainguard":
            return ["Chainguard"]
        return []

    def queries(self, component: Component, context: MatchContext) -> Sequence[Query]:
        """One lookup by origin (secfixes name the origin package)."""
        name = component.source_name or component.name
        return [Query(e, name, component.version, distro=True) for e in self.ecosystems(context.distro)]

    def skip_reason(self, component: Component, context: MatchContext) -> str:
        """No Alpine branch known."""
        return f"apk packages of {_describe(context.distro)} have no advisory ecosystem"


_RPM_ECOSYSTEMS = {
    "rhel": ("Red Hat", "major"),
    "rocky": ("Rocky Linux", "major"),
    "almalinux": ("AlmaLinux", "major"),
    "mariner": ("CBL-Mariner", "full"),
    "azurelinux": ("Azure Linux", "full"),
    "photon": ("Photon OS", "full"),
    "openeuler": ("openEuler", "full"),
}


class RpmMatcher:
    """rpm packages against their distribution's OSV ecosystem, by binary and by source package name."""

    name = "rpm"

    def handles(self, component: Component) -> bool:
        """RPM packages."""
        return component.type is ComponentType.RPM

    @staticmethod
    def ecosystems(distro: Distro | None) -> list[str]:
        """``CBL-Mariner:2.0``, ``AlmaLinux:9``, ...; Red Hat's OSV data carries no release in the name."""
        if distro is None or distro.id not in _RPM_ECOSYSTEMS:
            return []
        base, part = _RPM_ECOSYSTEMS[distro.id]
        if distro.id == "rhel":
            return [base]
        version = distro.version.split(".")[0] if part == "major" else distro.version
        return [f"{base}:{version}"] if version else []

    def queries(self, component: Component, context: MatchContext) -> Sequence[Query]:
        """Lookups by binary name and (when it differs) source name; advisories of rpm distros use either."""
        names = dict.fromkeys(n for n in (component.name, component.source_name) if n)
        return [Query(e, n, component.version, distro=True) for e in self.ecosystems(context.distro) for n in names]

    def skip_reason(self, component: Component, context: MatchContext) -> str:
        """No rpm distribution known."""
        return f"rpm packages of {_describe(context.distro)} have no advisory ecosystem"


_LANGUAGE_ECOSYSTEMS = {
    ComponentType.PYPI: "PyPI",
    ComponentType.NPM: "npm",
    ComponentType.GOLANG: "Go",
    ComponentType.MAVEN: "Maven",
    ComponentType.CARGO: "crates.io",
}
# Interpreted packages a distribution patches in place (the metadata keeps the upstream version).
_DISTRO_PATCHED = frozenset({ComponentType.PYPI, ComponentType.NPM})


class LanguageMatcher:
    """Language packages against their ecosystem's OSV data, unless an OS package owns them (see the module)."""

    name = "language"

    def handles(self, component: Component) -> bool:
        """PyPI, npm, Go, Maven and cargo (crates.io) components."""
        return component.type in _LANGUAGE_ECOSYSTEMS

    @staticmethod
    def _unusable_version(component: Component) -> bool:
        return not component.version or component.version == "(devel)"

    def _owned(self, component: Component, context: MatchContext) -> bool:
        return component.type in _DISTRO_PATCHED and _normal(component.evidence) in context.os_owned

    def queries(self, component: Component, context: MatchContext) -> Sequence[Query]:
        """One lookup in the component's ecosystem."""
        if self._unusable_version(component) or self._owned(component, context):
            return []
        return [Query(_LANGUAGE_ECOSYSTEMS[component.type], component.name, component.version)]

    def skip_reason(self, component: Component, context: MatchContext) -> str:
        """A version that cannot be compared, or a file an OS package owns."""
        if self._unusable_version(component):
            return f"{component.name}: version {component.version or 'unknown'!r} cannot be compared"
        return f"{component.name} {component.version}: installed by an OS package, left to the distribution's data"


class OsMatcher:
    """The operating-system component itself matches nothing; its packages do."""

    name = "os"

    def handles(self, component: Component) -> bool:
        """The os-release component."""
        return component.type is ComponentType.OS

    def queries(self, component: Component, context: MatchContext) -> Sequence[Query]:
        """None."""
        return []

    def skip_reason(self, component: Component, context: MatchContext) -> str:
        """Not a package."""
        return ""


MATCHERS: tuple[PackageMatcher, ...] = (DebMatcher(), ApkMatcher(), RpmMatcher(), LanguageMatcher(), OsMatcher())


def _describe(distro: Distro | None) -> str:
    if distro is None:
        return "an unknown distribution (no os-release)"
    return f"{distro.id} {distro.version or distro.codename}".strip()


def _normal(path: str) -> str:
    return path.removeprefix("./").lstrip("/")


# A distribution without os-release in the image is known by the package that owns /etc/os-release.
_RELEASE_PACKAGES = {"mariner-release": "mariner", "azurelinux-release": "azurelinux"}


def find_distro(components: Iterable[Component]) -> Distro | None:
    """The distribution from the os-release component, else from an rpm ``*-release`` package."""
    fallback: Distro | None = None
    for c in components:
        if c.type is ComponentType.OS:
            extra = dict(c.extra)
            return Distro(c.name, c.version, extra.get("codename", ""))
        if c.type is ComponentType.RPM and c.name in _RELEASE_PACKAGES and fallback is None:
            version = c.version.split(":", 1)[-1].rsplit("-", 1)[0]
            fallback = Distro(_RELEASE_PACKAGES[c.name], version)
    return fallback


# --- advisory details --------------------------------------------------------------------------------------


class _Reference(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    url: str


class _DatabaseSpecific(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    severity: str | None = None


class _OsvExtras(BaseModel):
    """The parts of an OSV record the store has no column for: references and GHSA's own severity word."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    references: list[_Reference] = []
    database_specific: _DatabaseSpecific | None = None


@dataclass(frozen=True, slots=True)
class _Details:
    advisory: Advisory
    references: tuple[str, ...]
    ratings: tuple[Rating, ...]


def _details(advisory: Advisory) -> _Details:
    """References and ratings of an advisory: record-level vectors, and from OSV records their references."""
    ratings = [r for s in advisory.severity if (r := rate_vector(s.type, s.score, advisory.source)) is not None]
    refs: list[str] = []
    if advisory.source == "osv":
        try:
            extras = _OsvExtras.model_validate(json.loads(advisory.raw))
        except (ValidationError, ValueError):
            extras = _OsvExtras()
        refs = [r.url for r in extras.references]
        word = extras.database_specific.severity if extras.database_specific else None
        if word:
            ratings.append(Rating("GHSA", level_of_word(word), source=advisory.source))
        refs.insert(0, f"https://osv.dev/vulnerability/{advisory.id}")
    elif advisory.source == "debian":
        refs = [f"https://security-tracker.debian.org/tracker/{advisory.id}"]
    elif advisory.source.startswith("alpine"):
        refs = [f"https://security.alpinelinux.org/vuln/{advisory.id}"]
    elif advisory.source == "nvd":
        try:
            extras = _OsvExtras.model_validate(json.loads(advisory.raw))  # the NVD's references have a url too
        except (ValidationError, ValueError):
            extras = _OsvExtras()
        refs = [f"https://nvd.nist.gov/vuln/detail/{advisory.id}", *(r.url for r in extras.references)]
    return _Details(advisory, tuple(dict.fromkeys(refs)), tuple(ratings))


# --- matching ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Hit:
    """One advisory whose entry for the package contains the version."""

    source: str
    advisory_id: str
    query: Query
    fixed: tuple[str, ...]
    status: Status | None
    entry_ratings: tuple[Rating, ...]


@dataclass
class _Shared:
    """What every ``Matcher`` of one open store computes alike: hits per lookup, advisory details, which
    ecosystems have data. Kept in ``VulnerabilityStore.memo``, which an import into that store empties."""

    hits: dict[Query, tuple[_Hit, ...]] = field(default_factory=dict)
    details: dict[tuple[str, str], _Details | None] = field(default_factory=dict)
    has: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The findings of one bill of materials, and notes on what could not be matched (and why)."""

    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    distro: Distro | None = None


_STATUS = {
    Status.UNFIXED: FindingStatus.UNFIXED,
    Status.NO_DSA: FindingStatus.NO_DSA,
    Status.IGNORED: FindingStatus.IGNORED,
    Status.POSTPONED: FindingStatus.POSTPONED,
    Status.END_OF_LIFE: FindingStatus.END_OF_LIFE,
    Status.UNDETERMINED: FindingStatus.UNDETERMINED,
}

_ID_PREFERENCE = ("PYSEC", "GO", "RUSTSEC", "GHSA", "DSA", "DLA", "ALSA", "RHSA")


def _id_rank(advisory_id: str) -> tuple[int, str]:
    prefix = advisory_id.split("-", 1)[0]
    if prefix in _ID_PREFERENCE:
        return (_ID_PREFERENCE.index(prefix), advisory_id)
    if prefix == "CVE":
        return (len(_ID_PREFERENCE) + 1, advisory_id)
    return (len(_ID_PREFERENCE), advisory_id)


class _UnionFind:
    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self._parent.setdefault(x, x)
        while self._parent[x] != x:
            self._parent[x] = self._parent[self._parent[x]]
            x = self._parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)


def _fixed_in_matching_ranges(entry: StoredAffected, version: str) -> list[str]:
    """The ``fixed`` versions above ``version`` in the ranges that contain it: the upgrades that help (Go's
    ``fixed 1.19.10`` of an older branch is no answer for go1.20.4, its ``fixed 1.20.5`` is)."""
    fixed: list[str] = []
    for rng in entry.affected.ranges:
        try:
            inside = in_range(rng, entry.affected.ecosystem, version)
        except UnevaluableRangeError:
            continue
        if inside:
            fixed += [e.version for e in rng.events if e.kind is EventKind.FIXED and _above(entry, e.version, version)]
    return fixed


def _above(entry: StoredAffected, candidate: str, version: str) -> bool:
    """Whether ``candidate`` is newer than ``version`` by the ecosystem's rules (kept when they cannot say)."""
    try:
        parse = version_parser(entry.affected.ecosystem)
        return bool(parse(candidate) > parse(version))
    except VersionError:
        return True


def _sorted_versions(ecosystem: str, versions: Iterable[str]) -> tuple[str, ...]:
    unique = list(dict.fromkeys(versions))
    try:
        return tuple(sorted(unique, key=version_parser(ecosystem)))
    except VersionError:
        return tuple(sorted(unique))


class Matcher:
    """Matches components against one store. Cheap to build; ``match`` may be called for many inventories.

    Store lookups and advisory details are cached for the matcher's lifetime, so inventories sharing a base
    image ask the store once per package.
    """

    def __init__(self, store: VulnerabilityStore, *, matchers: Sequence[PackageMatcher] = MATCHERS) -> None:
        self._store = store
        self._matchers = tuple(matchers)
        self._entries: dict[tuple[str, str], list[StoredAffected]] = {}
        shared = store.memo.get(_Shared)
        if not isinstance(shared, _Shared):
            shared = store.memo[_Shared] = _Shared()
        self._shared = shared
        self._details = shared.details
        self._has = shared.has

    def _lookup(self, ecosystem: str, name: str) -> list[StoredAffected]:
        key = (ecosystem, name)
        if key not in self._entries:
            self._entries[key] = self._store.affected_by_package(ecosystem, name)
        return self._entries[key]

    def _advisory(self, source: str, advisory_id: str) -> _Details | None:
        key = (source, advisory_id)
        if key not in self._details:
            advisory = self._store.advisory(source, advisory_id)
            self._details[key] = None if advisory is None else _details(advisory)
        return self._details[key]

    def _has_ecosystem(self, ecosystem: str) -> bool:
        if ecosystem not in self._has:
            self._has[ecosystem] = self._store.has_ecosystem(ecosystem)
        return self._has[ecosystem]

    def match(self, components: Sequence[Component]) -> MatchResult:
        """Every finding of ``components`` (an ``IndexReport``'s), worst first, and notes on what was skipped."""
        distro = find_distro(components)
        owned = frozenset(_normal(f.path) for c in components if c.type in _OS_TYPES for f in c.files)
        context = MatchContext(distro, owned)
        findings: list[Finding] = []
        notes: dict[str, None] = {}
        missing: dict[str, None] = {}
        for component in components:
            matcher = next((m for m in self._matchers if m.handles(component)), None)
            if matcher is None:
                notes[f"{component.type.value} {component.name}: no matcher for this kind of component"] = None
                continue
            queries = list(matcher.queries(component, context))
            for q in queries:
                if q.distro and not self._has_ecosystem(q.ecosystem):
                    missing[q.ecosystem] = None
            queries += self._cpe_queries(component, queries)
            if not queries:
                reason = matcher.skip_reason(component, context)
                if reason:
                    notes[reason] = None
                continue
            findings += self._component_findings(component, queries)
        for ecosystem in missing:
            notes[f"the store has no advisories for {ecosystem}: its packages were not checked"] = None
        findings.sort(key=lambda f: (-f.severity.rank, f.package, f.version, f.id))
        return MatchResult(tuple(findings), tuple(notes), distro)

    def _cpe_queries(self, component: Component, queries: Sequence[Query]) -> list[Query]:
        """The NVD lookup of a component with a CPE, unless its distribution's data is in the store."""
        if not component.cpe or not self._has_ecosystem(CPE_ECOSYSTEM):
            return []
        if any(q.distro and self._has_ecosystem(q.ecosystem) for q in queries):
            return []
        try:
            name, version = product_key(component.cpe)
        except ValueError:
            return []
        return [] if version in ("*", "-") else [Query(CPE_ECOSYSTEM, name, version)]

    def _hits(self, query: Query) -> tuple[_Hit, ...]:
        """The hits of one lookup: computed once per open store (every inventory of a re-check that holds the
        same package at the same version asks the same question), the lookup itself made every time, because a
        ``RecordingStore`` records it as the inventory's re-check index."""
        entries = self._lookup(query.ecosystem, query.name)
        found = self._shared.hits.get(query)
        if found is None:
            found = self._shared.hits[query] = self._evaluate(query, entries)
        return found

    def _evaluate(self, query: Query, stored: list[StoredAffected]) -> tuple[_Hit, ...]:
        grouped: dict[tuple[str, str], list[StoredAffected]] = {}
        for entry in stored:
            if not entry.withdrawn:
                grouped.setdefault((entry.source, entry.advisory_id), []).append(entry)
        hits = []
        for (source, advisory_id), entries in grouped.items():
            if not affected_by([e.affected for e in entries], query.version).affected:
                continue
            fixed = [v for e in entries for v in _fixed_in_matching_ranges(e, query.version)]
            status = next((e.affected.status for e in entries if e.affected.status is not None), None)
            ratings = []
            for e in entries:
                for s in e.affected.severity:
                    if s.type == "DEBIAN_URGENCY":
                        ratings.append(Rating(s.type, level_of_word(s.score), source=source))
                    elif (r := rate_vector(s.type, s.score, source)) is not None:
                        ratings.append(r)
            hits.append(_Hit(source, advisory_id, query, tuple(fixed), status, tuple(ratings)))
        return tuple(hits)

    def _component_findings(self, component: Component, queries: Sequence[Query]) -> list[Finding]:
        hits = [h for q in queries for h in self._hits(q)]
        if not hits:
            return []
        uf = _UnionFind()
        details: dict[tuple[str, str], _Details | None] = {}
        for h in hits:
            d = details[(h.source, h.advisory_id)] = self._advisory(h.source, h.advisory_id)
            for alias in d.advisory.aliases if d else ():
                uf.union(h.advisory_id, alias)
            uf.find(h.advisory_id)
        groups: dict[str, list[_Hit]] = {}
        for h in hits:
            groups.setdefault(uf.find(h.advisory_id), []).append(h)
        return [self._finding(component, group, details) for group in groups.values()]

    def _finding(
        self, component: Component, hits: list[_Hit], details: dict[tuple[str, str], _Details | None]
    ) -> Finding:
        distro_hits = [h for h in hits if h.query.distro]
        lead = distro_hits or hits
        primary = min((h.advisory_id for h in lead), key=_id_rank)
        ids: dict[str, None] = {}
        summary = ""
        references: dict[str, None] = {}
        ratings: list[Rating] = []
        for h in sorted(hits, key=lambda h: (not h.query.distro, _id_rank(h.advisory_id))):
            ids[h.advisory_id] = None
            ratings += h.entry_ratings
            d = details[(h.source, h.advisory_id)]
            if d is None:
                continue
            ids.update(dict.fromkeys(d.advisory.aliases))
            summary = summary or d.advisory.summary or _first_line(d.advisory.details)
            references.update(dict.fromkeys(d.references))
            ratings += d.ratings
        query = lead[0].query
        fixed = _sorted_versions(query.ecosystem, (v for h in lead for v in h.fixed))
        status = _status(lead, fixed)
        return Finding(
            id=primary,
            aliases=tuple(sorted(i for i in ids if i != primary)),
            component=component,
            package=component.name if query.ecosystem == CPE_ECOSYSTEM else query.name,
            version=query.version,
            fixed_versions=fixed,
            status=status,
            severity=overall(tuple(ratings)),
            ratings=tuple(dict.fromkeys(ratings)),
            summary=summary,
            references=tuple(references),
            sources=tuple(sorted({(h.source, h.advisory_id) for h in hits})),
        )


_OS_TYPES = frozenset({ComponentType.DEB, ComponentType.APK, ComponentType.RPM})


def _status(hits: Sequence[_Hit], fixed: tuple[str, ...]) -> FindingStatus:
    """A fixed version wins; else the distribution's reason for having none; else plain ``affected``."""
    if fixed:
        return FindingStatus.FIXED
    for h in hits:
        if h.status in _STATUS:
            return _STATUS[h.status]
    return FindingStatus.AFFECTED


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().split("\n", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def worst(findings: Iterable[Finding]) -> Level | None:
    """The highest severity among findings that still count (not suppressed), or ``None`` if there are none."""
    levels = [f.severity for f in findings if not f.is_suppressed]
    return max(levels, key=lambda lv: lv.rank) if levels else None


__all__ = [
    "MATCHERS",
    "ApkMatcher",
    "DebMatcher",
    "Distro",
    "LanguageMatcher",
    "MatchContext",
    "MatchResult",
    "Matcher",
    "PackageMatcher",
    "Query",
    "RpmMatcher",
    "find_distro",
    "worst",
]
