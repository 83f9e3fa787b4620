"""contrib/'s systemd units, run as systemd would run them: the socket handed over by socket activation.

``systemd-socket-activate`` (from the systemd package) listens where ``trustyard-authz.socket`` says (moved
into a scratch folder), and on the first connection starts the service's ``ExecStart`` command line (paths
moved likewise) with ``LISTEN_FDS``/``LISTEN_PID``, exactly as systemd does. The plugin must answer on that
inherited socket, write its spec file pointing at it, and refuse a privileged container under the policy.
"""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTRIB = Path(__file__).parents[2] / "contrib"


def _directive(unit: str, name: str) -> str:
    lines = (CONTRIB / unit).read_text().splitlines()
    (value,) = [line.split("=", 1)[1] for line in lines if line.startswith(f"{name}=")]
    return value


def _post(path: Path, route: str, body: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(30)
        conn.connect(str(path))
        conn.sendall(b"POST %s HTTP/1.1\r\nHost: d\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                     % (route.encode(), len(body), body))  # fmt: skip
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply


def test_socket_activated_service_answers_on_the_inherited_socket(tmp_path: Path) -> None:
    assert shutil.which("systemd-socket-activate"), "systemd-socket-activate is missing: install systemd"
    run = Path(tempfile.mkdtemp(prefix="ty-authz-sd-", dir="/tmp"))
    listen = _directive("trustyard-authz.socket", "ListenStream")
    assert listen == "/run/docker/plugins/trustyard.sock"  # where dockerd finds NAME.sock without a spec file
    sock = run / Path(listen).name
    policy = tmp_path / "authz.toml"
    policy.write_text('version = 1\n[rules]\n"5.11" = "warn"\n')
    moved = {"/etc/trustyard/authz.toml": str(policy), "/etc/docker/plugins": str(tmp_path / "plugins"),
             "/var/log/trustyard/authz.jsonl": str(tmp_path / "authz.jsonl")}  # fmt: skip
    argv = []
    for word in shlex.split(_directive("trustyard-authz.service", "ExecStart")):
        argv += [sys.executable, "-m", "trustyard"] if word == "/usr/local/bin/trustyard" else [moved.get(word, word)]
    check = shlex.split(_directive("trustyard-authz.service", "ExecStartPre"))
    checked = subprocess.run([sys.executable, "-m", "trustyard", *(moved.get(w, w) for w in check[1:])],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert checked.returncode == 0 and "is valid" in checked.stdout, checked.stderr
    proc = subprocess.Popen(["systemd-socket-activate", "-l", str(sock), *argv], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert _post(sock, "/Plugin.Activate", b"{}").endswith(b'{"Implements":["authz"]}')
        spec = tmp_path / "plugins/trustyard.spec"
        assert spec.read_text() == f"unix://{sock}\n"  # written for the socket systemd passed
        body = json.dumps({"Image": "alpine", "HostConfig": {"Privileged": True}}).encode()
        message = json.dumps({"RequestMethod": "POST", "RequestUri": "/v1.41/containers/create",
                              "RequestBody": base64.b64encode(body).decode(),
                              "RequestHeaders": {"Content-Type": "application/json"}}).encode()  # fmt: skip
        reply = _post(sock, "/AuthZPlugin.AuthZReq", message)
        assert b'"Allow":false' in reply and b"[5.5]" in reply, reply
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        shutil.rmtree(run, ignore_errors=True)
    assert proc.returncode == 0, err
    assert not (tmp_path / "plugins/trustyard.spec").exists()
    audit = [json.loads(line) for line in (tmp_path / "authz.jsonl").read_text().splitlines()]
    assert audit[-1]["allow"] is False and "5.5" in audit[-1]["rules"]
