"""Section 2 of the CIS Docker Benchmark: the daemon's configuration, from ``daemon.json`` and its command line.

Each check is a function of ``DaemonSettings`` (``daemonconfig.py``), which already merges the two sources and
fills in dockerd's defaults — so an unset ``icc`` is judged as dockerd would run it (enabled), not skipped.
Checks 2.1 and 2.17 are manual in the benchmark: they report INFO or NOTE, never WARN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from trustyard.bench.base import CheckResult, FunctionCheck, info, passed, warned
from trustyard.bench.context import BenchContext
from trustyard.bench.daemonconfig import DaemonSettings

_LOCAL_LOG_DRIVERS: Final = frozenset({"json-file", "local", "none", ""})


def _on(decide: Callable[[DaemonSettings], CheckResult]) -> Callable[[BenchContext], CheckResult]:
    def run(context: BenchContext) -> CheckResult:
        return decide(context.daemon())

    run.__doc__ = decide.__doc__
    return run


def non_root(d: DaemonSettings) -> CheckResult:
    """2.1: a daemon running as root makes every daemon bug a root compromise; rootless mode avoids that."""
    if d.rootless:
        return passed("the daemon runs rootless")
    return info("the daemon runs as root; consider rootless mode")


def icc(d: DaemonSettings) -> CheckResult:
    """2.2: with inter-container communication on, every container on docker0 can reach every other."""
    return (
        passed("icc is disabled")
        if not d.icc
        else warned("icc is enabled (containers on the default bridge talk freely)")
    )


def log_level(d: DaemonSettings) -> CheckResult:
    """2.3: 'info' records what an investigation needs; 'debug' records too much, warn/error too little."""
    if d.log_level == "info":
        return passed("log level is info")
    return warned(f"log level is {d.log_level}", [d.log_level])


def iptables(d: DaemonSettings) -> CheckResult:
    """2.4: letting Docker manage iptables keeps the firewall consistent with the containers' networking."""
    return passed("Docker manages iptables") if d.iptables else warned("iptables management is disabled")


def insecure_registries(d: DaemonSettings) -> CheckResult:
    """2.5: an insecure registry is pulled from without TLS verification, so anyone on the path can swap images."""
    if d.insecure_registries:
        return warned("insecure registries configured", list(d.insecure_registries))
    return passed("no insecure registries")


def aufs(d: DaemonSettings) -> CheckResult:
    """2.6: aufs is unmaintained and was removed from the kernel and from Docker."""
    if d.storage_driver == "aufs":
        return warned("the aufs storage driver is in use")
    return passed(f"storage driver: {d.storage_driver or 'default'}")


def tls(d: DaemonSettings) -> CheckResult:
    """2.7: a TCP socket without TLS client verification gives root on the host to anyone who can connect."""
    tcp = d.tcp_hosts
    if not tcp:
        return info("the daemon does not listen on TCP")
    missing = [
        n
        for n, v in (
            ("tlsverify", d.tlsverify),
            ("tlscacert", d.tlscacert),
            ("tlscert", d.tlscert),
            ("tlskey", d.tlskey),
        )
        if not v
    ]
    if missing:
        return warned(f"TCP listener without full TLS client verification (missing: {', '.join(missing)})", list(tcp))
    return passed("TCP listener requires TLS client certificates", list(tcp))


def default_ulimit(d: DaemonSettings) -> CheckResult:
    """2.8: a daemon-wide default ulimit bounds the containers nobody set limits for (manual)."""
    if d.default_ulimits:
        return passed("default ulimits configured", list(d.default_ulimits))
    return info("no default ulimits configured")


def userns(d: DaemonSettings) -> CheckResult:
    """2.9: user-namespace remapping makes root inside a container an unprivileged user outside."""
    return passed(f"userns-remap: {d.userns_remap}") if d.userns_remap else warned("user namespace remapping is off")


def cgroup(d: DaemonSettings) -> CheckResult:
    """2.10: a non-default cgroup parent must be a deliberate choice; confirm it."""
    if d.cgroup_parent:
        return info(f"daemon cgroup parent is {d.cgroup_parent}; confirm it is intended", [d.cgroup_parent])
    return passed("default cgroup parent")


def base_device_size(d: DaemonSettings) -> CheckResult:
    """2.11: growing the devicemapper base device enlarges every container's file system for no reason."""
    sizes = [o for o in d.storage_opts if o.startswith("dm.basesize")]
    return warned("base device size changed", sizes) if sizes else passed("base device size not changed")


def authorization(d: DaemonSettings) -> CheckResult:
    """2.12: without an authorization plugin every client of the socket may do everything."""
    if d.authorization_plugins:
        return passed("authorization plugins configured", list(d.authorization_plugins))
    return warned("no authorization plugin")


def remote_logging(d: DaemonSettings) -> CheckResult:
    """2.13: logs kept only on the host are lost with it, and can be changed by whoever takes it."""
    if d.log_driver in _LOCAL_LOG_DRIVERS:
        return warned(f"containers log locally ({d.log_driver or 'json-file'})")
    return passed(f"log driver {d.log_driver}")


def no_new_privileges(d: DaemonSettings) -> CheckResult:
    """2.14: the daemon-wide default stops setuid binaries raising privileges in every container."""
    return (
        passed("no-new-privileges by default")
        if d.no_new_privileges
        else warned("no-new-privileges is not the default")
    )


def live_restore(d: DaemonSettings) -> CheckResult:
    """2.15: live restore keeps containers running while the daemon is upgraded or restarted."""
    return passed("live restore enabled") if d.live_restore else warned("live restore is not enabled")


def userland_proxy(d: DaemonSettings) -> CheckResult:
    """2.16: the userland proxy is a process per published port; hairpin NAT does the same in the kernel."""
    return passed("userland proxy disabled") if not d.userland_proxy else warned("userland proxy is enabled")


def seccomp_profile(d: DaemonSettings) -> CheckResult:
    """2.17: a site seccomp profile can be stricter than Docker's default (manual)."""
    if d.seccomp_profile:
        return passed(f"daemon seccomp profile: {d.seccomp_profile}")
    return info("the default seccomp profile applies")


def experimental(d: DaemonSettings) -> CheckResult:
    """2.18: experimental features carry no stability or security promise."""
    return warned("experimental features are enabled") if d.experimental else passed("experimental features are off")


def _check(
    check_id: str,
    title: str,
    decide: Callable[[DaemonSettings], CheckResult],
    remediation: str,
    *,
    scored: bool = True,
    level: int = 1,
) -> FunctionCheck:
    return FunctionCheck(check_id, title, "2", remediation, _on(decide), scored=scored, level=level)


CHECKS: Final = (
    _check(
        "2.1",
        "Run the Docker daemon as a non-root user, if possible",
        non_root,
        "Consider rootless mode (dockerd-rootless-setuptool.sh install) where its limits are acceptable.",
        scored=False,
        level=2,
    ),
    _check(
        "2.2",
        "Ensure network traffic is restricted between containers on the default bridge",
        icc,
        'Set "icc": false in daemon.json and connect containers that must talk over user-defined networks.',
    ),
    _check(
        "2.3",
        "Ensure the logging level is set to 'info'",
        log_level,
        'Set "log-level": "info" in daemon.json (or remove the setting).',
    ),
    _check(
        "2.4",
        "Ensure Docker is allowed to make changes to iptables",
        iptables,
        'Remove "iptables": false from daemon.json (and --iptables=false from the command line).',
    ),
    _check(
        "2.5",
        "Ensure insecure registries are not used",
        insecure_registries,
        'Give every registry a TLS certificate and remove it from "insecure-registries".',
    ),
    _check("2.6", "Ensure aufs storage driver is not used", aufs, "Move to the overlay2 storage driver."),
    _check(
        "2.7",
        "Ensure TLS authentication for Docker daemon is configured",
        tls,
        'On TCP, set "tlsverify": true with "tlscacert", "tlscert" and "tlskey", and issue client certificates.',
    ),
    _check(
        "2.8",
        "Ensure the default ulimit is configured appropriately",
        default_ulimit,
        'Set "default-ulimits" in daemon.json to the limits containers should get unless they ask otherwise.',
        scored=False,
    ),
    _check(
        "2.9",
        "Enable user namespace support",
        userns,
        'Set "userns-remap": "default" (or a dedicated user) in daemon.json.',
        level=2,
    ),
    _check(
        "2.10",
        "Ensure the default cgroup usage has been confirmed",
        cgroup,
        'Remove "cgroup-parent" from the daemon configuration unless a separate cgroup is intended.',
        level=2,
    ),
    _check(
        "2.11",
        "Ensure base device size is not changed until needed",
        base_device_size,
        "Remove dm.basesize from the storage options unless containers need the larger size.",
        level=2,
    ),
    _check(
        "2.12",
        "Ensure that authorization for Docker client commands is enabled",
        authorization,
        'Install an authorization plugin (trustyard authz, for one) and list it in "authorization-plugins".',
        level=2,
    ),
    _check(
        "2.13",
        "Ensure centralized and remote logging is configured",
        remote_logging,
        'Set "log-driver" to one that ships logs off the host (remote syslog, fluentd, gelf, forwarded journald ...).',
        level=2,
    ),
    _check(
        "2.14",
        "Ensure containers are restricted from acquiring new privileges",
        no_new_privileges,
        'Set "no-new-privileges": true in daemon.json.',
    ),
    _check(
        "2.15",
        "Ensure live restore is enabled",
        live_restore,
        'Set "live-restore": true in daemon.json (not with swarm mode).',
    ),
    _check("2.16", "Ensure Userland Proxy is Disabled", userland_proxy, 'Set "userland-proxy": false in daemon.json.'),
    _check(
        "2.17",
        "Ensure that a daemon-wide custom seccomp profile is applied if appropriate",
        seccomp_profile,
        'Where the default is too broad, write a profile and set "seccomp-profile" to its path.',
        scored=False,
        level=2,
    ),
    _check(
        "2.18",
        "Ensure that experimental features are not implemented in production",
        experimental,
        'Remove "experimental": true from daemon.json on production hosts.',
    ),
)

__all__ = ["CHECKS"]
