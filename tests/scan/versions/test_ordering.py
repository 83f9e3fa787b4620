"""Version ordering per ecosystem: each scheme's edge cases as named tables, and the total-order laws.

The tables are the cases each ecosystem's own documentation and tools spell out (deb-version(7), rpm's
rpmvercmp tests, apk-tools' version tests, PEP 440, semver.org, Maven's version order specification). The
property tests check that every scheme is a total order consistent with equality and hashing, on versions
drawn from each scheme's grammar, and that malformed input raises ``VersionError`` and nothing else.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustyard.scan.versions import SCHEMES, VersionError, scheme_for

# (scheme, a, b, expected sign of compare(a, b))
CASES: list[tuple[str, str, str, int]] = [
    # dpkg: deb-version(7)
    ("dpkg", "1.0~rc1", "1.0", -1),
    ("dpkg", "1:0.9", "2.0", 1),
    ("dpkg", "1.0", "1.0-0", 0),
    ("dpkg", "1.0", "1.00", 0),
    ("dpkg", "1.0~~", "1.0~", -1),
    ("dpkg", "1.0~", "1.0", -1),
    ("dpkg", "1.0", "1.0a", -1),
    ("dpkg", "1.0a", "1.0+", -1),  # letters before symbols
    ("dpkg", "1.0", "1.0.1", -1),
    ("dpkg", "1.0-1", "1.0-1~bpo1", 1),
    ("dpkg", "2.5.0-1+deb12u2", "2.5.0-1+deb12u5", -1),
    ("dpkg", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2", -1),
    ("dpkg", "10.42-1", "10.42-1+deb12u2", -1),
    ("dpkg", "3:3.2.25-0+deb12u3", "3:3.2.25-0+deb12u7", -1),
    ("dpkg", "1.2.3-1", "1.2.3-10", -1),
    ("dpkg", "0:1.0", "1.0", 0),
    ("dpkg", "1.0-a", "1.0-1", 1),
    ("dpkg", "4.17.21+dfsg+~cs8.31.198.20210220-9", "4.17.21+dfsg+~cs8.31.198.20210220-9+deb12u1", -1),
    # rpm: rpmvercmp
    ("rpm", "1.0^git1", "1.0", 1),
    ("rpm", "1.0~rc1", "1.0", -1),
    ("rpm", "1.0^git1", "1.0.1", -1),
    ("rpm", "1.0^git1", "1.0^git2", -1),
    ("rpm", "1.0~rc1^git1", "1.0~rc1", 1),
    ("rpm", "1.0~rc1^git1", "1.0", -1),
    ("rpm", "1.0", "1.0", 0),
    ("rpm", "1.0", "2.0", -1),
    ("rpm", "2.0.1", "2.0", 1),
    ("rpm", "2.0.1a", "2.0.1", 1),
    ("rpm", "5.5p1", "5.5p2", -1),
    ("rpm", "5.5p10", "5.5p1", 1),
    ("rpm", "10xyz", "10.1xyz", -1),
    ("rpm", "xyz10", "xyz10.1", -1),
    ("rpm", "xyz.4", "8", -1),
    ("rpm", "1b.fc17", "1.fc17", -1),
    ("rpm", "1.01", "1.1", 0),
    ("rpm", "1_0", "1.0", 0),
    ("rpm", "a", "1", -1),
    ("rpm", "1:1.0-1", "2.0-1", 1),
    ("rpm", "1.0-1", "1.0-2", -1),
    ("rpm", "1.0", "1.0-1", -1),
    ("rpm", "2.35-2.cm2", "2.35-3.cm2", -1),
    # apk: apk-tools
    ("apk", "1.2.3_rc1", "1.2.3", -1),
    ("apk", "1.2.3", "1.2.3_p1", -1),
    ("apk", "1.0-r10", "1.0-r9", 1),
    ("apk", "1.0_alpha", "1.0_beta", -1),
    ("apk", "1.0_beta", "1.0_pre", -1),
    ("apk", "1.0_pre", "1.0_rc", -1),
    ("apk", "1.0_rc1", "1.0_rc2", -1),
    ("apk", "1.0_p1", "1.0-r1", 1),
    ("apk", "1.0", "1.0-r1", -1),
    ("apk", "1.0-r0", "1.0", 1),
    ("apk", "1.0a", "1.0", 1),
    ("apk", "1.0a", "1.0b", -1),
    ("apk", "1.0a", "1.0.1", -1),
    ("apk", "1.01", "1.1", -1),
    ("apk", "1.001", "1.01", -1),
    ("apk", "1.1.22-r2", "1.1.22-r3", -1),
    ("apk", "1.1.1c-r0", "1.1.1d-r0", -1),
    ("apk", "2.2.7-r0", "2.2.7-r1", -1),
    ("apk", "1.0_cvs", "1.0_svn", -1),
    ("apk", "1.0_git1", "1.0_hg1", -1),
    ("apk", "1.0_hg1", "1.0_p1", -1),
    ("apk", "1.0_alpha1_p1", "1.0_alpha1", 1),
    ("apk", "2.0", "1.9.9", 1),
    ("apk", "8.2.01", "8.2.001", 1),
    ("apk", "0.1.0_alpha_pre2", "0.1.0_alpha", -1),
    ("apk", "1.7", "1.7b", -1),
    ("apk", "1.0_p10-r0", "1.0_p9-r0", 1),
    # PEP 440 (packaging)
    ("pep440", "1.0rc1", "1.0", -1),
    ("pep440", "1.0.dev1", "1.0a1", -1),
    ("pep440", "1.0", "1.0.post1", -1),
    ("pep440", "1.0", "1.0.0", 0),
    ("pep440", "1!0.1", "2.0", 1),
    ("pep440", "1.0+local", "1.0", 1),
    ("pep440", "2.2", "2.2.0", 0),
    # semver.org section 11
    ("semver", "1.0.0-alpha", "1.0.0-alpha.1", -1),
    ("semver", "1.0.0-alpha.1", "1.0.0-alpha.beta", -1),
    ("semver", "1.0.0-alpha.beta", "1.0.0-beta", -1),
    ("semver", "1.0.0-beta", "1.0.0-beta.2", -1),
    ("semver", "1.0.0-beta.2", "1.0.0-beta.11", -1),
    ("semver", "1.0.0-beta.11", "1.0.0-rc.1", -1),
    ("semver", "1.0.0-rc.1", "1.0.0", -1),
    ("semver", "1.0.0+build.1", "1.0.0+build.2", 0),
    ("semver", "2.0.0", "10.0.0", -1),
    ("npm", "v4.17.15", "4.17.20", -1),
    ("npm", "=1.2.0", "1.2.0", 0),
    # Go modules: pseudo-versions, +incompatible, toolchains as Go's advisories name them
    ("go", "v0.0.0-20200622213623-75b288015ac9", "v0.0.0-20201216223049-8b5274cf687f", -1),
    ("go", "v0.0.0-20200622213623-75b288015ac9", "0.1.0", -1),
    ("go", "v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4", -1),
    ("go", "v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3", 1),
    ("go", "v2.0.0+incompatible", "2.0.0", 0),
    ("go", "go1.19.8", "1.20.0-0", -1),
    ("go", "go1.21rc2", "1.21.0", -1),
    ("go", "go1.21rc2", "1.21.0-rc.2", 0),
    ("go", "go1.21", "1.21.0", 0),
    ("go", "1.20.0-0", "1.20.0", -1),
    # Maven: the version order specification
    ("maven", "1", "1.1", -1),
    ("maven", "1-snapshot", "1", -1),
    ("maven", "1", "1-sp", -1),
    ("maven", "1-foo2", "1-foo10", -1),
    ("maven", "1.foo", "1-foo", 0),
    ("maven", "1.foo.2", "1-foo.2", -1),  # a qualifier followed by "." stays in its list: [1, foo, 2] < [1, [foo, 2]]
    ("maven", "1-foo", "1-1", -1),
    ("maven", "1-1", "1.1", -1),
    ("maven", "1.ga", "1-ga", 0),
    ("maven", "1-ga", "1-0", 0),
    ("maven", "1-0", "1.0", 0),
    ("maven", "1.0", "1", 0),
    ("maven", "1-a1", "1-alpha-1", 0),
    ("maven", "1-cr1", "1-rc-1", 0),
    ("maven", "1.0-alpha1", "1.0-beta1", -1),
    ("maven", "1.0-milestone1", "1.0-rc1", -1),
    ("maven", "1.0-rc1", "1.0-SNAPSHOT", -1),
    ("maven", "1.0", "1.0-sp1", -1),
    ("maven", "1.0-sp1", "1.0-abc", -1),
    ("maven", "1.2.17", "1.2.17.1", -1),
    ("maven", "1.0-release", "1.0", 0),
    ("maven", "1.0-final", "1.0", 0),
    ("maven", "1-0.1", "1", 1),  # MNG-6964: the whole list compares with null, not its first item
]


@pytest.mark.parametrize(("scheme", "a", "b", "expected"), CASES, ids=[f"{s}:{a}<>{b}" for s, a, b, _ in CASES])
def test_edge_cases(scheme: str, a: str, b: str, expected: int) -> None:
    s = SCHEMES[scheme]
    assert s.compare(a, b) == expected
    assert s.compare(b, a) == -expected
    if expected == 0:
        assert hash(s.parse(a)) == hash(s.parse(b))


MALFORMED: list[tuple[str, str]] = [
    ("dpkg", "a:1.0"),
    ("dpkg", "1.0-"),
    ("dpkg", "-1"),
    ("dpkg", "1.0 1"),
    ("dpkg", "1.0_1"),
    ("dpkg", "1:1.0-a_b"),
    ("dpkg", "1:2"[:0]),
    ("rpm", "x:1.0"),
    ("rpm", "1.0-"),
    ("rpm", "1.0/2"),
    ("apk", "1.0_foo"),
    ("apk", "a1.0"),
    ("apk", "1.0-r"),
    ("apk", "1.0ab"),
    ("apk", "1..0"),
    ("apk", "1.0-r1-r2"),
    ("apk", "1.0-r1_p1"),
    ("pep440", "1.0-beta-x"),
    ("pep440", "not a version"),
    ("semver", "1.0"),
    ("semver", "01.0.0"),
    ("semver", "1.0.0-01"),
    ("semver", "v1.0.0"),
    ("npm", "1.x"),
    ("go", "vx.y.z"),
    ("maven", ""),
    ("maven", "1.0 beta"),
]


@pytest.mark.parametrize(("scheme", "text"), MALFORMED, ids=[f"{s}:{t!r}" for s, t in MALFORMED])
def test_malformed_versions_raise_version_error(scheme: str, text: str) -> None:
    with pytest.raises(VersionError, match=r"invalid \S+ version"):
        SCHEMES[scheme].parse(text)


def test_scheme_for_ecosystems() -> None:
    assert scheme_for("Debian:12").name == "dpkg"
    assert scheme_for("Alpine:v3.10").name == "apk"
    assert scheme_for("PyPI").name == "pep440"
    assert scheme_for("Go").name == "go"
    assert scheme_for("crates.io").name == "semver"
    assert scheme_for("deb").name == "dpkg"
    with pytest.raises(VersionError, match="no version rules"):
        scheme_for("Hackage")


# --- strategies: versions drawn from each scheme's grammar, biased toward the characters that matter -------

_num = st.integers(min_value=0, max_value=20).map(str)


def _joined(parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[str]:
    return parts.map("".join)


_dpkg_chunk = st.one_of(_num, st.sampled_from([".", "~", "+", "a", "b", "z", "~rc", "+deb", ".0", "00"]))
_dpkg = st.builds(
    lambda e, u, r: f"{e}{u}{r}",
    st.sampled_from(["", "0:", "1:", "2:"]),
    st.builds(lambda d, rest: d + rest, _num, _joined(st.lists(_dpkg_chunk, max_size=6))),
    st.one_of(st.just(""), st.builds(lambda r: "-" + r, _joined(st.lists(_dpkg_chunk, min_size=1, max_size=4)))),
).filter(lambda v: not v.endswith("-"))

_rpm_chunk = st.one_of(_num, st.sampled_from([".", "~", "^", "_", "+", "a", "b", "git", "rc", "p", "fc", "0"]))
_rpm = st.builds(
    lambda e, v, r: f"{e}{v}{r}",
    st.sampled_from(["", "0:", "1:"]),
    st.builds(lambda d, rest: d + rest, _num, _joined(st.lists(_rpm_chunk, max_size=6))),
    st.one_of(st.just(""), st.builds(lambda r: "-" + r, _joined(st.lists(_rpm_chunk, min_size=1, max_size=4)))),
)

_apk = st.builds(
    lambda first, dots, letter, suffixes, rev: f"{first}{dots}{letter}{suffixes}{rev}",
    _num,
    _joined(
        st.lists(st.builds(lambda d: "." + d, st.one_of(_num, st.sampled_from(["0", "00", "01", "001"]))), max_size=3)
    ),
    st.sampled_from(["", "a", "b", "z"]),
    _joined(
        st.lists(
            st.builds(
                lambda s, n: f"_{s}{n}",
                st.sampled_from(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]),
                st.one_of(st.just(""), _num),
            ),
            max_size=2,
        )
    ),
    st.one_of(st.just(""), st.builds(lambda n: "-r" + n, _num)),
)

_pep440 = st.builds(
    lambda epoch, rel, pre, post, dev, local: f"{epoch}{rel}{pre}{post}{dev}{local}",
    st.sampled_from(["", "1!"]),
    st.lists(_num, min_size=1, max_size=4).map(".".join),
    st.one_of(st.just(""), st.builds(lambda k, n: k + n, st.sampled_from(["a", "b", "rc"]), _num)),
    st.one_of(st.just(""), st.builds(lambda n: ".post" + n, _num)),
    st.one_of(st.just(""), st.builds(lambda n: ".dev" + n, _num)),
    st.one_of(st.just(""), st.builds(lambda n: "+local." + n, _num)),
)

_ident = st.one_of(_num, st.sampled_from(["alpha", "beta", "rc", "x-y", "0a"]))
_semver = st.builds(
    lambda a, b, c, pre, build: f"{a}.{b}.{c}{pre}{build}",
    _num,
    _num,
    _num,
    st.one_of(st.just(""), st.lists(_ident, min_size=1, max_size=3).map(lambda p: "-" + ".".join(p))),
    st.one_of(st.just(""), st.builds(lambda n: "+b" + n, _num)),
)
_go = st.one_of(
    _semver.map(lambda v: "v" + v),
    st.builds(
        lambda a, b, ts: f"v{a}.{b}.0-{ts}-abcdef012345",
        _num,
        _num,
        st.integers(20180101000000, 20251231235959).map(str),
    ),
    st.builds(
        lambda m, p, pre: f"go1.{m}{p}{pre}",
        _num,
        st.sampled_from(["", ".0", ".3"]),
        st.sampled_from(["", "rc1", "beta2"]),
    ),
)

_maven_chunk = st.one_of(
    _num,
    st.sampled_from(
        [".", "-", "alpha", "a", "beta", "b", "m", "rc", "cr", "snapshot", "ga", "final", "sp", "foo", "0"]
    ),
)
_maven = st.builds(lambda d, rest: d + rest, _num, _joined(st.lists(_maven_chunk, max_size=6)))

STRATEGIES = {
    "dpkg": _dpkg,
    "rpm": _rpm,
    "apk": _apk,
    "pep440": _pep440,
    "semver": _semver,
    "npm": _semver,
    "go": _go,
    "maven": _maven,
}

_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@pytest.mark.parametrize("scheme", sorted(STRATEGIES))
def test_total_order(scheme: str) -> None:
    """Antisymmetry, transitivity and consistency with ``==`` and ``hash``, on three versions at a time."""
    s = SCHEMES[scheme]

    @_settings
    @given(STRATEGIES[scheme], STRATEGIES[scheme], STRATEGIES[scheme])
    def check(a: str, b: str, c: str) -> None:
        pa, pb, pc = s.parse(a), s.parse(b), s.parse(c)
        ab, ba = s.compare(a, b), s.compare(b, a)
        assert ab == -ba
        assert (ab == 0) == (pa == pb)
        if pa == pb:
            assert hash(pa) == hash(pb)
        assert s.compare(a, a) == 0
        ordered = sorted([pa, pb, pc])
        assert ordered[0] <= ordered[1] <= ordered[2]
        assert ordered[0] <= ordered[2]
        bc = s.compare(b, c)
        if ab <= 0 and bc <= 0:
            assert s.compare(a, c) <= 0
        if ab == 0 and bc == 0:
            assert s.compare(a, c) == 0

    check()


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_fuzzed_text_parses_or_raises_version_error(scheme: str) -> None:
    """Any string whatever: a parsed version, or ``VersionError``; never another exception."""
    s = SCHEMES[scheme]

    @settings(max_examples=400, deadline=None)
    @given(st.one_of(st.text(max_size=30), STRATEGIES[scheme].map(lambda v: v[::-1]), st.binary(max_size=10)))
    def check(text: str | bytes) -> None:
        with contextlib.suppress(VersionError):
            s.parse(text)  # type: ignore[arg-type]

    check()
