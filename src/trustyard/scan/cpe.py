"""CPE 2.3 names for components, by a deliberately simple rule (NISTIR 7695, "formatted string binding").

The rule, for an OS package: vendor = product = the *source* package name, lower-cased; version = the
upstream part of the source version (dpkg: no epoch, nothing after the last ``-``; apk: no ``-rN``; rpm: the
version without its release). Source rather than binary names, because the NVD names products after the
upstream project (``libssl3`` and ``openssl`` are both built from ``openssl`` -> ``cpe:2.3:a:openssl:openssl``).
For the Go standard library the rule is ``golang:go`` and the toolchain version without ``go``.

This is a guess, as every CPE derived from a package is (Syft and Trivy guess too, with larger tables):
vendor and product agree with the NVD for many upstream projects (openssl, bash, curl, zlib is ``zlib:zlib``)
and not for others (``gnu:glibc`` is built from source ``glibc``). Vulnerability matching should prefer the
purl and the distribution's own advisories; the CPE is for tools that only speak CPE.

Not here: CPEs for language packages (their purl is exact; CPE dictionaries for them are sparse).
"""

from __future__ import annotations

import re
from typing import Final

_UNRESERVED: Final = re.compile(r"[A-Za-z0-9._-]")
_APK_RELEASE: Final = re.compile(r"-r\d+$")


def _escape(value: str) -> str:
    """A CPE 2.3 formatted-string component: every character but ``A-Za-z0-9._-`` backslash-escaped."""
    return "".join(c if _UNRESERVED.fullmatch(c) else f"\\{c}" for c in value)


def cpe23(vendor: str, product: str, version: str) -> str | None:
    """``cpe:2.3:a:VENDOR:PRODUCT:VERSION:*:*:*:*:*:*:*``; ``None`` when a part is empty."""
    if not vendor or not product or not version:
        return None
    parts = (_escape(vendor.lower()), _escape(product.lower()), _escape(version))
    return "cpe:2.3:a:{}:{}:{}:*:*:*:*:*:*:*".format(*parts)


def upstream_version(version: str, scheme: str) -> str:
    """The upstream part of an OS package version (``scheme``: ``deb``, ``apk`` or ``rpm``)."""
    if scheme == "apk":
        return _APK_RELEASE.sub("", version)
    if ":" in version:  # the epoch
        version = version.partition(":")[2]
    if "-" in version:  # the Debian revision, the rpm release
        version = version.rpartition("-")[0]
    return version


def os_package_cpe(source_name: str | None, source_version: str | None, scheme: str) -> str | None:
    """The CPE of an OS package from its source package (see the module docstring for the rule)."""
    if not source_name or not source_version:
        return None
    return cpe23(source_name, source_name, upstream_version(source_version, scheme))
