"""The table of binary classifiers: which native components can be named, and by which bytes, in an ELF file.

Each classifier says which files it looks at and how it finds the version inside them:

- ``names``: shell patterns over the file's base name (``libcrypto.so*``); a file so named is always searched;
- ``anywhere``: the signature is searched for in *every* ELF file, which is what finds a statically linked
  library or a renamed program. Only for distinctive banners (fixed words around the version) of what is
  commonly vendored, linked statically or copied (OpenSSL, zlib, curl, BusyBox, Node.js, nginx, bash): each
  costs a search of every ELF file. A bare version between NUL bytes (sqlite, python, perl, redis) is never
  trusted outside files named for the component, and glibc, PostgreSQL and memcached are looked for where
  they are named;
- ``needle``: a literal that every match contains, found with ``bytes.find`` (fast) before the regular
  expression is tried in a window around it; classifiers without one search with the expression directly;
- ``pattern``: the regular expression, with a ``version`` group; it always ends in fixed context (a space, a
  NUL, a date), so that a match cannot be a version cut short at the end of a chunk;
- ``name_version``: for programs whose file name carries the version (``python3.11``), the match must agree;
- ``linked``: shell patterns over the shared libraries (``DT_NEEDED``) of the component: a program that loads
  ``libssl.so.3`` at run time carries OpenSSL's version text only because its build read the header (nginx
  prints "built with OpenSSL 3.0.x"), so in a file that needs one of these the signature names nothing.

The signatures were read off real Debian 12 binaries (the test set-up downloads them: tests/scan/test_binary.py)
and follow the strings upstream compiles in: OpenSSL's ``OPENSSL_VERSION_TEXT``, zlib's ``deflate_copyright``,
glibc's ``banner``, BusyBox's ``BB_BANNER``, bash's ``sccsid``, libcurl's DICT ``CLIENT`` line, nginx's
``NGINX_VER``, PostgreSQL's ``PG_VERSION_STR``.

The purl is ``pkg:generic/NAME@VERSION`` (the purl spec's type for software with no package manager); the
CPE uses the NVD's vendor and product for the project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Classifier:
    """One component's signature; see the module docstring for each field."""

    name: str
    vendor: str
    product: str
    pattern: re.Pattern[bytes]
    names: tuple[str, ...] = ()
    needle: bytes | None = None
    anywhere: bool = False
    name_version: re.Pattern[str] | None = None
    linked: tuple[str, ...] = ()


def _rx(pattern: bytes) -> re.Pattern[bytes]:
    return re.compile(pattern, re.DOTALL)


_V3: Final = rb"(?P<version>[0-9]+\.[0-9]+\.[0-9]+)"
_NUL_V3: Final = rb"\x00(?P<version>[0-9]{1,2}\.[0-9]{1,3}\.[0-9]{1,3})\x00"

CLASSIFIERS: Final[tuple[Classifier, ...]] = (
    Classifier(
        "openssl",
        "openssl",
        "openssl",
        _rx(
            rb"OpenSSL (?P<version>[0-9]+\.[0-9]+\.[0-9]+[a-z]{0,2})(?:-[a-z0-9]+)? +[0-9]{1,2} [A-Z][a-z]{2} [0-9]{4}"
        ),
        names=("libcrypto.so*", "libssl.so*", "openssl"),
        needle=b"OpenSSL ",
        anywhere=True,
        linked=("libcrypto.so*", "libssl.so*"),
    ),
    Classifier(
        "zlib",
        "zlib",
        "zlib",
        _rx(rb"deflate (?P<version>[0-9]+\.[0-9]+(?:\.[0-9]+){0,2}(?:\.[0-9]*-motley)?) Copyright "),
        names=("libz.so*",),
        needle=b"deflate ",
        anywhere=True,
        linked=("libz.so*",),
    ),
    Classifier(
        "libcurl",
        "haxx",
        "libcurl",
        _rx(rb"CLIENT libcurl " + _V3 + rb"(?:-DEV)?\r\n"),
        names=("libcurl*.so*",),
        needle=b"CLIENT libcurl ",
        anywhere=True,
        linked=("libcurl*.so*",),
    ),
    Classifier(
        "curl",
        "haxx",
        "curl",
        _rx(rb"\x00curl " + _V3 + rb"(?:-DEV)? \([a-zA-Z0-9_.-]+\) %s"),
        names=("curl",),
        needle=b"\x00curl ",
        anywhere=True,
    ),
    Classifier(
        "busybox",
        "busybox",
        "busybox",
        _rx(rb"BusyBox v" + _V3 + rb"(?:\.[a-z0-9]+)?[ .\x00-]"),
        names=("busybox",),
        needle=b"BusyBox v",
        anywhere=True,
    ),
    Classifier(
        "sqlite",
        "sqlite",
        "sqlite",
        _rx(rb"\x00(?P<version>3\.[0-9]{1,2}\.[0-9]{1,2}(?:\.[0-9]{1,2})?)\x00"),
        names=("libsqlite3.so*", "sqlite3"),
    ),
    Classifier(
        "glibc",
        "gnu",
        "glibc",
        _rx(
            rb"GNU C Library \([^)\x00]{0,80}\) (?:stable |development )?release version "
            rb"(?P<version>[0-9]+\.[0-9]+(?:\.[0-9]+)?)[.,\x00\n]"
        ),
        names=("libc.so.6", "libc-*.so"),
        needle=b"GNU C Library ",
    ),
    Classifier(
        "python",
        "python_software_foundation",
        "python",
        _rx(rb"\x00(?P<version>[23]\.[0-9]{1,2}\.[0-9]{1,2}(?:(?:a|b|rc)[0-9]{1,2})?\+?)\x00"),
        names=("python[23]*", "libpython[23]*.so*"),
        name_version=re.compile(r"python([23]\.[0-9]{1,2})"),
    ),
    Classifier(
        "node",
        "nodejs",
        "node.js",
        _rx(rb"node\.js/v" + _V3 + rb"[^0-9.]"),
        names=("node", "nodejs", "libnode.so*"),
        needle=b"node.js/v",
        anywhere=True,
        linked=("libnode.so*",),
    ),
    Classifier(
        "nginx",
        "f5",
        "nginx",
        _rx(rb"nginx version: nginx/" + _V3 + rb"[^0-9.]"),
        names=("nginx",),
        needle=b"nginx version: ",
        anywhere=True,
    ),
    Classifier(
        "redis",
        "redis",
        "redis",
        _rx(
            rb"\x00(?P<version>[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,3})\x00"
            rb"(?:c11-builtin|sync-builtin|pthread-mutex|atomic-builtin)\x00"
        ),
        names=("redis-server", "redis-check-rdb", "redis-check-aof", "redis-sentinel", "redis-cli"),
    ),
    Classifier(
        "bash",
        "gnu",
        "bash",
        _rx(rb"@\(#\)Bash version " + _V3 + rb"\([0-9]+\) release"),
        names=("bash",),
        needle=b"@(#)Bash version ",
        anywhere=True,
    ),
    Classifier(
        "perl",
        "perl",
        "perl",
        _rx(rb"\x00v(?P<version>5\.[0-9]{1,2}\.[0-9]{1,2})\x00"),
        names=("perl", "perl5*", "libperl.so*"),
    ),
    Classifier(
        "postgresql",
        "postgresql",
        "postgresql",
        _rx(
            rb"\x00PostgreSQL (?P<version>[0-9]+(?:\.[0-9]+){1,2})(?: \([^)\x00]{0,80}\))? on "
            rb"[a-zA-Z0-9_]+-[a-zA-Z0-9_.-]+, compiled by "
        ),
        names=("postgres", "postmaster"),
        needle=b", compiled by ",
    ),
    Classifier(
        "memcached",
        "memcached",
        "memcached",
        _rx(rb"\x00memcached " + _V3 + rb"\n?\x00"),
        names=("memcached",),
        needle=b"\x00memcached ",
    ),
    Classifier(
        "haproxy",
        "haproxy",
        "haproxy",
        _rx(rb"\x00 version " + _V3 + rb"(?:-[a-zA-Z0-9+~.]{1,40})?, released [0-9]{4}/[0-9]{2}/[0-9]{2}\x00"),
        names=("haproxy",),
        needle=b", released ",
    ),
    Classifier(
        "httpd",
        "apache",
        "http_server",
        _rx(rb"\x00Apache/" + _V3 + rb"(?: \([^)\x00]{0,40}\))?\x00"),
        names=("httpd", "apache2"),
        needle=b"\x00Apache/",
    ),
)
"""Searched in this order; every classifier reports at most one version per file (its first match)."""

WINDOW: Final = 256
"""How far a match may reach either side of its needle; every pattern above fits (a needle-less match too)."""
