"""``trustyard serve`` as a process: TLS, JSON logs, graceful shutdown, unreachable database."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.processes import free_port


def _wait(url: str, proc: subprocess.Popen[bytes], **kwargs: object) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            return httpx.get(url, timeout=2, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not answer in 30 s")


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_tls_serves_https_and_logs_json(
    tmp_path: Path, tls_pair: tuple[Path, Path], serve: list[subprocess.Popen[bytes]]
) -> None:
    cert, key = tls_pair
    port = free_port()
    log = tmp_path / "log"
    env = dict(os.environ, TRUSTYARD_ADMIN_PASSWORD="tls-admin-pw")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["trustyard", "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d"),
             "--tls-cert", str(cert), "--tls-key", str(key)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    serve.append(proc)
    ca = ssl.create_default_context(cafile=str(cert))
    r = _wait(f"https://127.0.0.1:{port}/v2/", proc, verify=ca)
    assert r.status_code == 401  # authentication is required out of the box; the realm keeps the scheme
    assert r.headers["www-authenticate"] == (f'Bearer realm="https://127.0.0.1:{port}/auth/token",service="trustyard"')
    r = httpx.get(f"https://127.0.0.1:{port}/v2/", verify=ca, auth=("admin", "tls-admin-pw"), timeout=10)
    assert r.status_code == 200
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{port}/v2/", timeout=5)  # an unknown CA is refused by the client
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    requests = [e for e in entries if e["msg"] == "request" and e["path"] == "/v2/"]
    assert [(e["method"], e["status"]) for e in requests] == [("GET", 401), ("GET", 200)]
    assert "tls-admin-pw" not in log.read_text()  # secrets are never logged
    assert any(e["msg"] == "registry ready" for e in entries)


def test_tls_needs_both_files(tmp_path: Path, tls_pair: tuple[Path, Path]) -> None:
    cert, _ = tls_pair
    proc = subprocess.run(
        ["trustyard", "serve", "--data-dir", str(tmp_path / "d"), "--tls-cert", str(cert)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "--tls-cert and --tls-key go together" in proc.stderr


def test_unreachable_database_is_one_clean_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["trustyard", "serve", "--data-dir", str(tmp_path / "d"), "--database-url",
         "postgresql://someone:hunter2@127.0.0.1:1/none"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "cannot migrate database" in proc.stderr
    assert "hunter2" not in proc.stderr  # the password is redacted
    assert "Traceback" not in proc.stderr


def test_environment_configures_serve(tmp_path: Path, serve: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    env = dict(os.environ, TRUSTYARD_LISTEN=f"127.0.0.1:{port}", TRUSTYARD_DATA_DIR=str(tmp_path / "envdata"))
    env.pop("TRUSTYARD_ADMIN_PASSWORD", None)
    proc = subprocess.Popen(["trustyard", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    serve.append(proc)
    assert _wait(f"http://127.0.0.1:{port}/v2/", proc).status_code == 401
    assert (tmp_path / "envdata" / "trustyard.db").is_file()
    assert (tmp_path / "envdata" / "blobs").is_dir()


def _start(argv: list[str], env: dict[str, str], err: Path) -> subprocess.Popen[bytes]:
    with err.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=out)


def test_first_start_creates_admin_with_a_password_printed_once(
    tmp_path: Path, serve: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    data = tmp_path / "d"
    env = {k: v for k, v in os.environ.items() if k != "TRUSTYARD_ADMIN_PASSWORD"}
    argv = ["trustyard", "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data), "--log-format", "text"]
    proc = _start(argv, env, tmp_path / "first.err")
    serve.append(proc)
    _wait(f"http://127.0.0.1:{port}/v2/", proc)
    first = (tmp_path / "first.err").read_text()
    assert "created the administrator 'admin'" in first
    password = first.split("shown this once:", 1)[1].split()[0]
    assert first.count(password) == 1  # printed once, never logged
    base = f"http://127.0.0.1:{port}/v2/"
    assert httpx.get(base, auth=("admin", password), timeout=10).status_code == 200
    assert httpx.get(base, auth=("admin", password + "x"), timeout=10).status_code == 401
    key = data / "auth" / "token-signing-key.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    again = _start(argv, env, tmp_path / "second.err")
    serve.append(again)
    _wait(base, again)
    assert httpx.get(base, auth=("admin", password), timeout=10).status_code == 200
    assert "created the administrator" not in (tmp_path / "second.err").read_text()


def test_scheduled_gc_collects_online(tmp_path: Path, serve: list[subprocess.Popen[bytes]]) -> None:
    """``serve --gc-interval`` runs the collector inside the server: an unreferenced blob older than the
    grace period disappears while a tagged image's blobs stay."""
    port = free_port()
    env = dict(os.environ, TRUSTYARD_GC_GRACE_PERIOD="2", TRUSTYARD_ADMIN_PASSWORD="gc-admin")  # 2 s: time to push
    proc = subprocess.Popen(
        ["trustyard", "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d"),
         "--gc-interval", "0.5"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    serve.append(proc)
    base = f"http://127.0.0.1:{port}"
    _wait(f"{base}/v2/", proc)
    with httpx.Client(base_url=base, timeout=10, auth=("admin", "gc-admin")) as http:

        def push_blob(data: bytes) -> str:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            r = http.post("/v2/gc/test/blobs/uploads/", params={"digest": digest}, content=data)
            assert r.status_code == 201, r.text
            return digest

        config = push_blob(b'{"architecture":"amd64","os":"linux"}')
        layer = push_blob(b"layer bytes")
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 37},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 11}],
            }
        ).encode()
        r = http.put(
            "/v2/gc/test/manifests/v1",
            content=manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 201, r.text
        stray = push_blob(b"nobody references me")
        deadline = time.monotonic() + 30
        while http.head(f"/v2/gc/test/blobs/{stray}").status_code == 200:
            assert time.monotonic() < deadline, "the scheduled collection never removed the stray blob"
            time.sleep(0.2)
        assert http.head(f"/v2/gc/test/blobs/{stray}").status_code == 404
        for digest in (config, layer):
            assert http.get(f"/v2/gc/test/blobs/{digest}").status_code == 200
        assert http.get("/v2/gc/test/manifests/v1").content == manifest
