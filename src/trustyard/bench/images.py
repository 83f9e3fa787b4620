"""Section 4 of the CIS Docker Benchmark and Dockle's image checkpoints, on images read without an engine.

Each check judges every ``--image`` (``imagefacts.py``: configuration, history, merged file system) and folds
the findings into one result naming the image of each. The same decision serves a CIS 4.x check and the
Dockle checkpoint that implements it (CIS-DI-0001 is 4.1, ...); the Dockle checkpoints are listed in their own
section (``dockle``) and are not scored, so docker-bench-security's score is unchanged by them.

The Dockerfile is judged through the history the build left in the image (``created_by``): what ran, not the
file itself. Not here: content trust for pulls beyond the ``DOCKER_CONTENT_TRUST`` setting of the bench's own
environment (4.5, as docker-bench-security reads it), trusted bases and package choices (manual: NOTE).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

from trustyard.bench.base import CheckResult, FunctionCheck, InputUnavailable, info, manual, passed, warned
from trustyard.bench.context import BenchContext
from trustyard.bench.imagefacts import ImageConfigFacts, ImageFacts

Finder = Callable[[ImageFacts], list[str]]
SECRET_NAME: Final = re.compile(
    r"(?i)(passw(or)?d|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth[_-]?key)"
)
SENSITIVE_VOLUMES: Final = ("/sys", "/dev", "/proc")
_UPDATE: Final = re.compile(r"\b(apt-get|apt|yum|dnf|zypper|apk)\s+(-\S+\s+)*update\b")
_INSTALL: Final = re.compile(r"\b(apt-get|apt|yum|dnf|zypper|apk)\s+(-\S+\s+)*(install|add|upgrade)\b")
_ADD: Final = re.compile(r"(?:#\(nop\)\s*)?\bADD\b\s+(?!file:|dir:)(.+)")
_APT_INSTALL: Final = re.compile(r"\bapt(-get)?\s+(-\S+\s+)*install\b")


def _config(image: ImageFacts) -> ImageConfigFacts:
    if image.config is None:
        raise InputUnavailable(f"{image.name} has no image configuration")
    return image.config


def _run_steps(image: ImageFacts) -> list[str]:
    return [h for h in _config(image).history if "#(nop)" not in h]


def _over_images(
    finder: Finder, failing: str, passing: str, *, warn: bool = True
) -> Callable[[BenchContext], CheckResult]:
    """A decision that applies ``finder`` to every image: WARN (or INFO) naming what it found, else PASS."""

    def decide(context: BenchContext) -> CheckResult:
        found: list[str] = []
        skipped: list[str] = []
        for image in context.image_facts():
            try:
                found += [f"{image.name}: {item}" for item in finder(image)]
            except InputUnavailable as e:
                skipped.append(e.message)
        if found:
            return (warned if warn else info)(failing, found)
        if skipped:
            return info("not decided for every image", skipped)
        return passed(passing)

    return decide


def root_user(image: ImageFacts) -> list[str]:
    """4.1: an image that runs as root makes every container of it run as root unless told otherwise."""
    user = _config(image).user
    return [f"user {user or 'not set (root)'}"] if user.split(":")[0] in ("", "root", "0") else []


def no_healthcheck(image: ImageFacts) -> list[str]:
    """4.6: without HEALTHCHECK the engine cannot tell a hung service from a working one."""
    return [] if _config(image).healthcheck else ["no HEALTHCHECK"]


def update_alone(image: ImageFacts) -> list[str]:
    """4.7: a cached ``update`` layer alone freezes package lists; later installs get stale packages."""
    return [step for step in _run_steps(image) if _UPDATE.search(step) and not _INSTALL.search(step)]


def setuid_files(image: ImageFacts) -> list[str]:
    """4.8: setuid/setgid programs are the usual way from a process in a container to root in it."""
    return [f"setuid {p}" for p in image.setuid] + [f"setgid {p}" for p in image.setgid]


def add_instructions(image: ImageFacts) -> list[str]:
    """4.9: ADD fetches URLs and unpacks archives implicitly; COPY does only what it says."""
    found = []
    for step in _config(image).history:
        match = _ADD.search(step)
        if match and "#(nop)" in step:
            found.append(step.strip())
    return found


def secrets(image: ImageFacts) -> list[str]:
    """4.10: secrets in ENV or in files of an image are readable by everyone who can pull it."""
    config = _config(image) if image.config is not None else None
    found = []
    for env in config.env if config else ():
        key, _, value = env.partition("=")
        if value and SECRET_NAME.search(key):
            found.append(f"ENV {key}")
    found += [f"credential file {p}" for p in image.credential_files]
    return found


def content_trust(context: BenchContext) -> CheckResult:
    """4.5: with content trust on, the docker client pulls only signed tags."""
    if context.environ.get("DOCKER_CONTENT_TRUST") == "1":
        return passed("DOCKER_CONTENT_TRUST=1")
    return warned("Docker content trust is not enabled (DOCKER_CONTENT_TRUST is not 1)")


def sudo(image: ImageFacts) -> list[str]:
    """DKL-DI-0001: sudo in a build step means the image expects to change users with root's help."""
    return [s for s in _run_steps(image) if re.search(r"\bsudo\b", s)]


def sensitive_volumes(image: ImageFacts) -> list[str]:
    """DKL-DI-0002: a VOLUME on /sys, /dev or /proc invites a host mount there."""
    return [
        f"VOLUME {v}" for v in _config(image).volumes if any(v == d or v.startswith(d + "/") for d in SENSITIVE_VOLUMES)
    ]


def dist_upgrade(image: ImageFacts) -> list[str]:
    """DKL-DI-0003: dist-upgrade changes the distribution under the image's feet; rebuild from a newer base."""
    return [s for s in _run_steps(image) if re.search(r"\bdist-upgrade\b", s)]


def apk_cache(image: ImageFacts) -> list[str]:
    """DKL-DI-0004: ``apk add`` without --no-cache leaves the package index in the layer."""
    return [s for s in _run_steps(image) if re.search(r"\bapk\s+(-\S+\s+)*add\b", s) and "--no-cache" not in s]


def apt_cache(image: ImageFacts) -> list[str]:
    """DKL-DI-0005: apt lists left in the installing layer add megabytes no container uses."""
    return [s for s in _run_steps(image) if _APT_INSTALL.search(s) and "/var/lib/apt/lists" not in s]


def latest_tag(image: ImageFacts) -> list[str]:
    """DKL-DI-0006: ``latest`` names no version; what it names changes with every push."""
    if image.tag is None:
        raise InputUnavailable(f"{image.name} names no tag")
    return [f"tag {image.tag}"] if image.tag == "latest" else []


def _records(text: str | None) -> list[list[str]]:
    return [line.split(":") for line in (text or "").splitlines() if line and not line.startswith("#")]


def empty_passwords(image: ImageFacts) -> list[str]:
    """DKL-LI-0001: an account with an empty password lets anyone in the container become it."""
    if image.shadow is None and image.passwd is None:
        raise InputUnavailable(f"{image.name} has no /etc/shadow or /etc/passwd")
    found = [f"{r[0]} (shadow)" for r in _records(image.shadow) if len(r) > 1 and r[1] == ""]
    found += [f"{r[0]} (passwd)" for r in _records(image.passwd) if len(r) > 1 and r[1] == ""]
    return found


def _duplicates(pairs: Iterable[tuple[str, str]], kind: str) -> list[str]:
    seen: dict[str, list[str]] = {}
    for name, number in pairs:
        seen.setdefault(number, []).append(name)
    return [f"{kind} {number}: {', '.join(names)}" for number, names in seen.items() if len(names) > 1]


def duplicate_ids(image: ImageFacts) -> list[str]:
    """DKL-LI-0002: two accounts with one UID (or groups with one GID) are one identity under two names."""
    if image.passwd is None:
        raise InputUnavailable(f"{image.name} has no /etc/passwd")
    found = _duplicates(((r[0], r[2]) for r in _records(image.passwd) if len(r) > 2), "UID")
    found += _duplicates(((r[0], r[2]) for r in _records(image.group) if len(r) > 2), "GID")
    return found


def unnecessary_files(image: ImageFacts) -> list[str]:
    """DKL-LI-0003: editor and version-control leftovers only get in by copying a working tree, secrets and all."""
    return list(image.unnecessary_files)


def _image_check(
    check_id: str,
    title: str,
    section: str,
    finder: Finder,
    failing: str,
    passing: str,
    remediation: str,
    *,
    scored: bool,
    warn: bool = True,
) -> FunctionCheck:
    return FunctionCheck(
        check_id, title, section, remediation, _over_images(finder, failing, passing, warn=warn), scored=scored
    )


_R41: Final = "Create a user in the Dockerfile (RUN useradd ...) and switch to it with USER."
_R46: Final = "Add a HEALTHCHECK instruction that exercises the service."
_R47: Final = "Run the update and the install in one RUN instruction (apt-get update && apt-get install ...)."
_R48: Final = "Remove the setuid/setgid bits the application does not need (chmod u-s,g-s) in the Dockerfile."
_R49: Final = "Use COPY for local files; fetch remote files in a RUN step that verifies them."
_R410: Final = "Pass secrets at run time (build secrets, mounted files, a secret store), never in ENV or image files."
_R45: Final = "Set DOCKER_CONTENT_TRUST=1 in the environment of the docker client (and sign the images pushed)."

CHECKS: Final = (
    _image_check(
        "4.1",
        "Ensure that a user for the container has been created",
        "4",
        root_user,
        "images run as root",
        "images run as a non-root user",
        _R41,
        scored=True,
    ),
    FunctionCheck(
        "4.2",
        "Ensure that containers use only trusted base images",
        "4",
        "Build only from base images of known origin, pinned by digest and verified.",
        manual("compare each image's base with the site's list of trusted images"),
        scored=False,
    ),
    FunctionCheck(
        "4.3",
        "Ensure that unnecessary packages are not installed in the container",
        "4",
        "Install only what the application needs (slim or distroless bases, --no-install-recommends).",
        manual("review each image's package list (trustyard sbom)"),
        scored=False,
    ),
    FunctionCheck(
        "4.4",
        "Ensure images are scanned and rebuilt to include security patches",
        "4",
        "Scan images regularly (trustyard scan) and rebuild them on patched bases.",
        manual("scan the images and rebuild those with fixes available"),
        scored=False,
    ),
    FunctionCheck("4.5", "Ensure Content trust for Docker is Enabled", "4", _R45, content_trust),
    _image_check(
        "4.6",
        "Ensure that HEALTHCHECK instructions have been added to container images",
        "4",
        no_healthcheck,
        "images without HEALTHCHECK",
        "every image has a HEALTHCHECK",
        _R46,
        scored=True,
    ),
    _image_check(
        "4.7",
        "Ensure update instructions are not used alone in the Dockerfile",
        "4",
        update_alone,
        "update run alone in a build step",
        "no lone update steps",
        _R47,
        scored=False,
    ),
    _image_check(
        "4.8",
        "Ensure setuid and setgid permissions are removed",
        "4",
        setuid_files,
        "setuid/setgid files",
        "no setuid or setgid files",
        _R48,
        scored=False,
        warn=False,
    ),
    _image_check(
        "4.9",
        "Ensure that COPY is used instead of ADD in Dockerfiles",
        "4",
        add_instructions,
        "ADD instructions in the history",
        "no ADD instructions",
        _R49,
        scored=False,
    ),
    _image_check(
        "4.10",
        "Ensure secrets are not stored in Dockerfiles",
        "4",
        secrets,
        "possible secrets in the image",
        "no secrets found in ENV or credential files",
        _R410,
        scored=False,
    ),
    FunctionCheck(
        "4.11",
        "Ensure only verified packages are installed",
        "4",
        "Install packages only from repositories whose signatures the package manager verifies.",
        manual("check that every package source is signed and verified"),
        scored=False,
    ),
    FunctionCheck(
        "4.12",
        "Ensure all signed artifacts are validated",
        "4",
        "Verify the signatures of every artifact the build downloads.",
        manual("check that the build verifies what it downloads"),
        scored=False,
    ),
    # Dockle's checkpoints: the same decisions where they match a CIS check, and Dockle's own
    _image_check(
        "CIS-DI-0001",
        "Create a user for the container",
        "dockle",
        root_user,
        "images run as root",
        "images run as a non-root user",
        _R41,
        scored=False,
    ),
    FunctionCheck("CIS-DI-0005", "Enable Content trust for Docker", "dockle", _R45, content_trust, scored=False),
    _image_check(
        "CIS-DI-0006",
        "Add HEALTHCHECK instruction to the container image",
        "dockle",
        no_healthcheck,
        "images without HEALTHCHECK",
        "every image has a HEALTHCHECK",
        _R46,
        scored=False,
    ),
    _image_check(
        "CIS-DI-0007",
        "Do not use update instructions alone in the Dockerfile",
        "dockle",
        update_alone,
        "update run alone in a build step",
        "no lone update steps",
        _R47,
        scored=False,
    ),
    _image_check(
        "CIS-DI-0008",
        "Confirm safety of setuid/setgid files",
        "dockle",
        setuid_files,
        "setuid/setgid files",
        "no setuid or setgid files",
        _R48,
        scored=False,
        warn=False,
    ),
    _image_check(
        "CIS-DI-0009",
        "Use COPY instead of ADD in Dockerfile",
        "dockle",
        add_instructions,
        "ADD instructions in the history",
        "no ADD instructions",
        _R49,
        scored=False,
    ),
    _image_check(
        "CIS-DI-0010",
        "Do not store credential in environment variables/files",
        "dockle",
        secrets,
        "possible secrets in the image",
        "no secrets found in ENV or credential files",
        _R410,
        scored=False,
    ),
    _image_check(
        "DKL-DI-0001",
        "Avoid sudo command",
        "dockle",
        sudo,
        "sudo used in build steps",
        "no sudo in build steps",
        "Run build steps as root where needed and switch USER afterwards; do not install or call sudo.",
        scored=False,
    ),
    _image_check(
        "DKL-DI-0002",
        "Avoid sensitive directory mounting",
        "dockle",
        sensitive_volumes,
        "volumes on sensitive directories",
        "no volumes on /sys, /dev or /proc",
        "Remove VOLUME instructions on /sys, /dev and /proc.",
        scored=False,
    ),
    _image_check(
        "DKL-DI-0003",
        'Avoid "apt-get dist-upgrade"',
        "dockle",
        dist_upgrade,
        "dist-upgrade in build steps",
        "no dist-upgrade",
        "Rebuild from a newer base image instead of upgrading the distribution in a layer.",
        scored=False,
    ),
    _image_check(
        "DKL-DI-0004",
        'Use "apk add" with --no-cache',
        "dockle",
        apk_cache,
        "apk add without --no-cache",
        "apk add always uses --no-cache",
        "Use apk add --no-cache.",
        scored=False,
    ),
    _image_check(
        "DKL-DI-0005",
        "Clear apt-get caches",
        "dockle",
        apt_cache,
        "apt lists left in the layer",
        "apt lists removed where packages are installed",
        "End the installing RUN step with rm -rf /var/lib/apt/lists/*.",
        scored=False,
    ),
    _image_check(
        "DKL-DI-0006",
        "Avoid latest tag",
        "dockle",
        latest_tag,
        "images tagged latest",
        "no image tagged latest",
        "Tag images with a version (and deploy by digest).",
        scored=False,
    ),
    _image_check(
        "DKL-LI-0001",
        "Avoid empty password",
        "dockle",
        empty_passwords,
        "accounts with an empty password",
        "no account has an empty password",
        "Lock the accounts (passwd -l) or give them a password hash.",
        scored=False,
    ),
    _image_check(
        "DKL-LI-0002",
        "Be unique UID/GROUP",
        "dockle",
        duplicate_ids,
        "duplicate UIDs or GIDs",
        "UIDs and GIDs are unique",
        "Give every account and group its own ID.",
        scored=False,
    ),
    _image_check(
        "DKL-LI-0003",
        "Only put necessary files",
        "dockle",
        unnecessary_files,
        "unnecessary files in the image",
        "no editor or version-control leftovers",
        "Add them to .dockerignore.",
        scored=False,
        warn=False,
    ),
)

__all__ = ["CHECKS"]
