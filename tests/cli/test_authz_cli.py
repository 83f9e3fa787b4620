"""``trustyard authz`` as a command: check and test offline, and serve on a real socket answering real HTTP."""

from __future__ import annotations

import base64
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner, Result

from trustyard.cli import main

POLICY = (
    '[rules]\n"5.11" = "deny"\n[[deny]]\npath = "/swarm/*"\n'
    '[groups]\nops = ["alice", "bob"]\n[[exception]]\nusers = ["carol"]\ngroups = ["ops"]\nrules = ["5.5"]\n'
)


def _request(privileged: bool) -> str:
    body = json.dumps({"Image": "alpine", "HostConfig": {"Privileged": privileged}}).encode()
    return json.dumps(
        {
            "RequestMethod": "POST",
            "RequestUri": "/v1.41/containers/create",
            "RequestBody": base64.b64encode(body).decode(),
            "RequestHeaders": {"Content-Type": "application/json", "Content-Length": str(len(body))},
        }
    )


def test_check_valid_and_invalid_policies(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(POLICY)
    result = CliRunner().invoke(main, ["authz", "check", "--policy", str(good)])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.output and "deny: * /swarm/*" in result.output
    assert "group ops: alice, bob" in result.output and "exception: carol, group ops may break 5.5" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[rules]\n"5.99" = "deny"\n')
    result = CliRunner().invoke(main, ["authz", "check", "--policy", str(bad)])
    assert result.exit_code == 1 and "unknown rule id" in result.output


def test_test_replays_a_recorded_request(tmp_path: Path) -> None:
    request = tmp_path / "req.json"
    request.write_text(_request(privileged=True))
    result = CliRunner().invoke(main, ["authz", "test", str(request)])
    assert result.exit_code == 3 and json.loads(result.output)["Allow"] is False
    request.write_text(_request(privileged=False))
    result = CliRunner().invoke(main, ["authz", "test", str(request)])
    assert result.exit_code == 0 and "5.11" in json.loads(result.output)["Warnings"]
    policy = tmp_path / "p.toml"
    policy.write_text(POLICY)
    result = CliRunner().invoke(main, ["authz", "test", "--policy", str(policy), str(request)])
    assert result.exit_code == 3 and json.loads(result.output)["Rules"] == ["5.11"]


def test_serve_writes_spec_answers_and_cleans_up(tmp_path: Path) -> None:
    run = Path(tempfile.mkdtemp(prefix="ty-authz-cli-", dir="/tmp"))
    sock_path, plugins = run / "p.sock", tmp_path / "plugins"
    proc = subprocess.Popen(
        [sys.executable, "-m", "trustyard", "authz", "serve", "--socket", str(sock_path), "--name", "t1",
         "--plugin-dir", str(plugins), "--record", str(tmp_path / "recorded")],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        spec = plugins / "t1.spec"
        deadline = time.monotonic() + 30
        while not (spec.exists() and sock_path.exists()) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert spec.read_text() == f"unix://{sock_path}\n"
        assert sock_path.stat().st_mode & 0o077 == 0  # owner only
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(sock_path))
            body = _request(privileged=True).encode()
            conn.sendall(
                b"POST /AuthZPlugin.AuthZReq HTTP/1.1\r\nHost: plugin\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        assert b'"Allow":false' in reply and b"[5.5]" in reply
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        shutil.rmtree(run, ignore_errors=True)
    assert proc.returncode == 0, err
    assert not spec.exists() and not sock_path.exists()
    assert b'"allow":false' in err and b'"rules":["5.4","5.5"' in err  # the audit line on stderr
    (recorded,) = (tmp_path / "recorded").iterdir()  # the message as received, replayable with `authz test`
    assert recorded.name == "0001-POST-v1-41-containers-create.json" and recorded.read_bytes() == body


IMAGE_POLICY = '[images]\nallowed_registries = ["127.0.0.1:5000"]\nrequire_signed = true\nmax_severity = "high"\n'


def test_image_rules_need_trustyards_url(tmp_path: Path) -> None:
    policy = tmp_path / "images.toml"
    policy.write_text(IMAGE_POLICY)
    request = tmp_path / "req.json"
    request.write_text(_request(privileged=False))

    def authz(command: str, *args: str, url: str | None = None) -> Result:
        env = {"TRUSTYARD_AUTHZ_REGISTRY_URL": url} if url else {}
        request_arg = [str(request)] if command == "test" else []
        return CliRunner().invoke(main, ["authz", command, "--policy", str(policy), *args, *request_arg], env=env)

    checked = authz("check")
    assert checked.exit_code == 0 and "images from: 127.0.0.1:5000" in checked.output, checked.output
    assert "must be signed" in checked.output
    missing = authz("test")
    assert missing.exit_code == 1 and "TRUSTYARD_AUTHZ_REGISTRY_URL" in missing.output
    bad = authz("test", url="ftp://x")
    assert bad.exit_code == 1 and "expected http(s)://HOST[:PORT]" in bad.output
    no_file = authz("test", "--credentials-file", str(tmp_path / "none"), url="http://127.0.0.1:5000")
    assert no_file.exit_code == 1 and "cannot read trustyard credentials" in no_file.output
    # image "alpine" is docker.io: refused by the registry rule without asking trustyard
    refused = authz("test", url="http://127.0.0.1:5000")
    assert refused.exit_code == 3 and "image.registry" in json.loads(refused.output)["Rules"]


def test_readme_policy_example_is_valid(tmp_path: Path) -> None:
    """The policy shown in the README's "Guarding the Docker engine" section loads as written."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Guarding the Docker engine") :]
    example = section[section.index("```toml\n") + 8 : section.index("```", section.index("```toml\n") + 8)]
    policy = tmp_path / "authz.toml"
    policy.write_text(example)
    result = CliRunner().invoke(main, ["authz", "check", "--policy", str(policy)])
    assert result.exit_code == 0 and "group operators: alice" in result.output, result.output
