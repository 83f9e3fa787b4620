"""The pieces of the ``docker://`` source that need no registry: names, auth files, challenges, blob checks."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustyard.oci.digest import Digest
from trustyard.scan.errors import SourceError
from trustyard.scan.sources import Credentials, DockerReference, PlatformSpec, open_source
from trustyard.scan.sources.credentials import find_credentials
from trustyard.scan.sources.distribution import VerifiedBlob, is_loopback, parse_challenge
from trustyard.scan.sources.registries_conf import is_insecure

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "host", "repository", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", "latest", None),
        ("alpine:3.20", "docker.io", "library/alpine", "3.20", None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("127.0.0.1:5000/a/b:1", "127.0.0.1:5000", "a/b", "1", None),
        (f"quay.io/x/y@sha256:{HEX}", "quay.io", "x/y", None, f"sha256:{HEX}"),
        (f"host:5000/y:t@sha256:{HEX}", "host:5000", "y", "t", f"sha256:{HEX}"),
        ("[::1]:5000/a", "[::1]:5000", "a", "latest", None),
    ],
)
def test_reference_names_as_skopeo(text: str, host: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = DockerReference.parse(text)
    assert (ref.host, ref.repository, ref.tag) == (host, repository, tag)
    assert (str(ref.digest) if ref.digest else None) == digest


@pytest.mark.parametrize(
    "text",
    ["host.io/UPPER", "host.io/a:bad tag", "a@sha256:short", "host.io/a/../b", "bad host.io/a", "-x.io/a", "h.io:/a"],
)
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(SourceError):
        DockerReference.parse(text)


def test_docker_hub_endpoint() -> None:
    assert DockerReference.parse("alpine").endpoint == "registry-1.docker.io"
    assert DockerReference.parse("ghcr.io/a/b").endpoint == "ghcr.io"


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_auth_files_in_order_and_most_specific_key_first(tmp_path: Path) -> None:
    runtime, docker = tmp_path / "run", tmp_path / "home" / ".docker"
    (runtime / "containers").mkdir(parents=True)
    docker.mkdir(parents=True)
    (runtime / "containers" / "auth.json").write_text(
        json.dumps({"auths": {"reg.io": _auth("host", "1"), "reg.io/team/app": _auth("repo", "2")}})
    )
    (docker / "config.json").write_text(
        json.dumps(
            {"auths": {"https://index.docker.io/v1/": _auth("hub", "3"), "http://other.io/v1/": _auth("o", "4")}}
        )
    )
    env = {"HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": str(runtime)}
    assert find_credentials("reg.io", "team/app", env=env) == Credentials("repo", "2")
    assert find_credentials("reg.io", "team/other", env=env) == Credentials("host", "1")
    assert find_credentials("docker.io", "library/alpine", env=env) == Credentials("hub", "3")
    assert find_credentials("other.io", "x", env=env) == Credentials("o", "4")
    assert find_credentials("nowhere.io", "x", env=env) is None
    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "missing.json")  # replaces the runtime file; docker's still counts
    assert find_credentials("reg.io", "team/app", env=env) is None
    assert find_credentials("other.io", "x", env=env) == Credentials("o", "4")


def test_a_broken_auth_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "auth.json"
    bad.write_text("{not json")
    with pytest.raises(SourceError, match="not valid JSON"):
        find_credentials("reg.io", "a", env={"HOME": str(tmp_path)}, authfile=bad)
    bad.write_text(json.dumps({"auths": {"reg.io": {"auth": "!!!"}}}))
    with pytest.raises(SourceError, match="not base64"):
        find_credentials("reg.io", "a", env={"HOME": str(tmp_path)}, authfile=bad)


def test_credentials_never_show_the_password() -> None:
    creds = Credentials.parse("me:pa:ss")
    assert creds.password == "pa:ss"
    assert "pa:ss" not in repr(creds)
    with pytest.raises(SourceError):
        Credentials.parse("nopassword")


def test_challenges() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:a/b:pull",
    }
    assert parse_challenge('Basic realm="a \\"quoted\\" realm"') == ("basic", {"realm": 'a "quoted" realm'})
    assert parse_challenge("") == ("", {})


@given(st.text(max_size=300))
def test_challenge_parser_never_fails(header: str) -> None:
    scheme, params = parse_challenge(header)
    assert scheme == scheme.lower()
    assert all(isinstance(v, str) for v in params.values())


@pytest.mark.parametrize(("host", "loopback"), [("localhost:5000", True), ("127.0.0.1", True), ("[::1]:5000", True),
                                                ("10.0.0.1:5000", False), ("registry.io", False)])  # fmt: skip
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _blob(data: bytes, digest: Digest, size: int | None, chunk: int = 7) -> VerifiedBlob:
    return VerifiedBlob(iter([data[i : i + chunk] for i in range(0, len(data), chunk)]), digest, size, "test")


def test_verified_blob_passes_the_right_bytes_and_refuses_others() -> None:
    data = bytes(range(256)) * 5
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    blob = _blob(data, digest, len(data))
    assert b"".join(iter(lambda: blob.read(100), b"")) == data
    with pytest.raises(SourceError, match="refused"):
        _blob(data[:-1] + b"x", digest, len(data)).read()
    with pytest.raises(SourceError, match="more than"):
        _blob(data + b"extra", digest, len(data)).read()
    with pytest.raises(SourceError, match="not 1280"):
        _blob(data[:-3], digest, len(data)).read()


def test_platforms() -> None:
    assert str(PlatformSpec.parse("linux/arm/v7")) == "linux/arm/v7"
    assert PlatformSpec.parse("linux/amd64") == PlatformSpec()
    for bad in ("linux", "linux//", "a/b/c/d"):
        with pytest.raises(SourceError):
            PlatformSpec.parse(bad)


def test_registries_conf_insecure_entries(tmp_path: Path) -> None:
    main = tmp_path / "registries.conf"
    main.write_text(
        'unqualified-search-registries = []\n[registries.insecure]\nregistries = ["old.example:5000"]\n'
        '[[registry]]\nlocation = "reg.example"\ninsecure = true\n'
        '[[registry]]\nprefix = "reg.example/secure"\nlocation = "reg.example/secure"\ninsecure = false\n'
        '[[registry]]\nlocation = "*.lab.example"\ninsecure = true\n'
    )
    home = tmp_path / "home"
    (home / ".config" / "containers" / "registries.conf.d").mkdir(parents=True)
    (home / ".config" / "containers" / "registries.conf").write_text(main.read_text())
    (home / ".config" / "containers" / "registries.conf.d" / "50-override.conf").write_text(
        '[[registry]]\nlocation = "old.example:5000"\ninsecure = false\n'
    )
    env = {"HOME": str(home)}
    assert is_insecure("reg.example", "team/app", env)
    assert not is_insecure("reg.example", "secure/app", env)  # the longer prefix decides
    assert is_insecure("a.lab.example", "x", env)
    assert not is_insecure("lab.example.com", "x", env)
    assert not is_insecure("old.example:5000", "x", env)  # the user file's drop-in overrides it
    env = {"CONTAINERS_REGISTRIES_CONF": str(main)}  # only that file
    assert is_insecure("old.example:5000", "x", env)
    main.write_text("not [toml")
    with pytest.raises(SourceError, match="not valid TOML"):
        is_insecure("reg.example", "x", env)


def test_a_registry_that_does_not_answer_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match=r"cannot reach the registry 127\.0\.0\.1:1\b"):
        open_source("docker://127.0.0.1:1/a/b:1")
    with pytest.raises(SourceError, match=r"cannot reach the registry 127\.0\.0\.1:99999"):
        open_source("docker://127.0.0.1:99999/a/b:1")  # a port no socket can have
