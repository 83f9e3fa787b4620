"""A real auditd for the tests: the kernel's audit records of the docker CLI, written where the bench reads them.

auditd 3.0 (Debian's ``auditd``) runs in the foreground (``-n``) with a configuration folder of the test's own
(``-c``) that writes the raw log to ``ROOT/var/log/audit/audit.log``; ``watch`` adds a kernel rule such as
``-w /usr/local/bin/docker -p x -k docker`` (the rule the benchmark's audit section asks for, which makes every
docker CLI run an event with its EXECVE record). The kernel's audit state is global to the machine, so ``stop``
deletes the rules it added, stops auditd and puts the enabled flag back as it found it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import IO

from fixtures.dockerd import terminate

READY_TIMEOUT = 30.0


class AuditdError(RuntimeError):
    """auditd or auditctl did not do what the test needs (the message says what to install or check)."""


def _auditctl(*args: str) -> str:
    proc = subprocess.run(["auditctl", *args], capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise AuditdError(f"auditctl {' '.join(args)}: {proc.stderr.strip()} (apt-get install auditd; needs root)")
    return proc.stdout


def _status() -> dict[str, str]:
    return dict(line.split(" ", 1) for line in _auditctl("-s").splitlines() if " " in line)


class Auditd:
    """auditd logging to ``root/var/log/audit/audit.log``; rules added with ``watch`` are removed by ``stop``."""

    def __init__(self, workdir: Path, root: Path) -> None:
        self.conf = workdir / "auditd-conf"
        self.log = root / "var/log/audit/audit.log"
        self._rules: list[tuple[str, ...]] = []
        self._enabled = "0"
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self) -> None:
        """Start auditd and wait until the kernel names it as the audit daemon."""
        (self.conf / "plugins.d").mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        (self.conf / "auditd.conf").write_text(
            f"local_events = yes\nwrite_logs = yes\nlog_file = {self.log}\nlog_format = RAW\nflush = SYNC\n"
            "freq = 0\nmax_log_file = 8\nnum_logs = 2\nmax_log_file_action = ROTATE\nspace_left = 10\n"
            "space_left_action = IGNORE\nadmin_space_left = 5\nadmin_space_left_action = IGNORE\n"
            "disk_full_action = IGNORE\ndisk_error_action = IGNORE\n"
            f"plugin_dir = {self.conf / 'plugins.d'}\nend_of_event_timeout = 2\n"
        )
        self._enabled = _status().get("enabled", "0")
        self._out = (self.conf / "auditd.out").open("ab")
        self._proc = subprocess.Popen(
            ["auditd", "-n", "-c", str(self.conf)], stdout=self._out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while _status().get("pid") != str(self._proc.pid):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AuditdError(f"auditd did not start: {(self.conf / 'auditd.out').read_text()[-2000:]}")
            time.sleep(0.1)

    def watch(self, path: str, permissions: str, key: str) -> None:
        """``auditctl -w PATH -p PERMISSIONS -k KEY``, removed again by ``stop``."""
        rule = ("-w", path, "-p", permissions, "-k", key)
        _auditctl(*rule)
        self._rules.append(rule)

    def flushed(self, text: str) -> None:
        """Wait until ``text`` is in the log (auditd writes each event when it is complete)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not (self.log.is_file() and text in self.log.read_text(errors="replace")):
            if time.monotonic() > deadline:
                raise AuditdError(f"{text!r} never reached {self.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Remove the rules, stop auditd, restore the kernel's enabled flag."""
        for rule in self._rules:
            subprocess.run(["auditctl", "-W", *rule[1:]], capture_output=True, timeout=30, check=False)
        self._rules.clear()
        if self._proc is not None:
            terminate(self._proc)
        if self._out is not None:
            self._out.close()
        subprocess.run(["auditctl", "-e", self._enabled], capture_output=True, timeout=30, check=False)
