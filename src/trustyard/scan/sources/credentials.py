"""Registry credentials for ``docker://`` sources: ``--creds``, else the auth files podman, skopeo and docker write.

The files are read in the order containers-auth.json(5) gives (the first file with an entry for the registry
wins): ``$REGISTRY_AUTH_FILE`` (or ``--authfile``), else ``$XDG_RUNTIME_DIR/containers/auth.json``; then
``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config/...``); then the docker CLI's
``$DOCKER_CONFIG/config.json`` (``~/.docker/config.json``). Within a file, the most specific key wins:
``host/ns/repo``, then ``host/ns``, then ``host``; keys written as URLs (``https://host/v1/``, as the docker CLI
writes them) match their host, and ``docker.io`` matches the docker CLI's ``https://index.docker.io/v1/``.

Only ``auth`` entries (base64 of ``user:password``) are used. Credential helpers (``credHelpers``,
``credsStore``) and identity tokens are not run or used: an image that needs them is read anonymously, and a
registry that refuses says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from trustyard.scan.errors import SourceError

DOCKER_HUB: Final = "docker.io"
_DOCKER_HUB_KEYS: Final = ("index.docker.io", "registry-1.docker.io")
_MAX_AUTH_FILE: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Credentials:
    """A user name and password (or token) for a registry; the password never appears in ``repr``."""

    username: str
    password: str

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """``USER:PASSWORD`` as skopeo's ``--creds`` takes it (the password may contain ``:``)."""
        username, sep, password = text.partition(":")
        if not sep or not username:
            raise SourceError("credentials are USER:PASSWORD")
        return cls(username, password)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"


def auth_files(env: Mapping[str, str], authfile: Path | None = None) -> list[Path]:
    """The auth files to look in, first to last (containers-auth.json(5) order, then the docker CLI's)."""
    home = Path(env.get("HOME") or Path.home())
    files: list[Path] = []
    if authfile is not None:
        files.append(authfile)
    elif env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    elif env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    else:
        files.append(Path(f"/run/containers/{os.getuid()}/auth.json"))
    files.append(Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "containers" / "auth.json")
    files.append(
        Path(env["DOCKER_CONFIG"]) / "config.json" if env.get("DOCKER_CONFIG") else home / ".docker" / "config.json"
    )
    return files


def _normal_key(key: str) -> str:
    """``https://host/v1/`` -> ``host``; ``host/ns/repo`` stays; Docker Hub's legacy names -> ``docker.io``."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :].split("/", 1)[0]
            break
    key = key.rstrip("/")
    host, slash, path = key.partition("/")
    if host in _DOCKER_HUB_KEYS:
        host = DOCKER_HUB
    return host + slash + path


def _candidates(host: str, repository: str) -> Iterator[str]:
    """``host/a/b``, ``host/a``, ``host``: most specific first."""
    parts = repository.split("/")
    for n in range(len(parts), 0, -1):
        yield f"{host}/{'/'.join(parts[:n])}"
    yield host


def _decode(entry: object, where: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    auth = entry.get("auth")
    if not isinstance(auth, str) or not auth:
        return None
    try:
        text = base64.b64decode(auth, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise SourceError(f"{where}: an 'auth' entry is not base64 of USER:PASSWORD") from e
    return Credentials.parse(text)


def read_config_file(path: Path, what: str, limit: int = 1 << 20) -> bytes | None:
    """A small configuration file (an auth file, registries.conf) as bytes; ``None`` when it does not exist.

    Refused past ``limit`` bytes: these files are a few kilobytes, and a huge one is not what its name says.
    """
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise SourceError(f"cannot read the {what} {path}: {e.strerror}") from e
    if len(raw) > limit:
        raise SourceError(f"{path} is larger than {limit} bytes; not a {what}")
    return raw


def _entries(path: Path) -> dict[str, object]:
    raw = read_config_file(path, "auth file", _MAX_AUTH_FILE)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SourceError(f"{path} is not valid JSON: {e}") from e
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return {}
    return {_normal_key(str(k)): v for k, v in auths.items()}


def find_credentials(
    host: str, repository: str, *, env: Mapping[str, str] | None = None, authfile: Path | None = None
) -> Credentials | None:
    """The stored login for ``repository`` on ``host`` (``host`` as written in the image name), if any."""
    env = os.environ if env is None else env
    host = _normal_key(host)
    for path in auth_files(env, authfile):
        entries = _entries(path)
        for key in _candidates(host, repository):
            if key in entries:
                found = _decode(entries[key], str(path))
                if found is not None:
                    return found
    return None
