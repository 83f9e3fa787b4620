"""Which registries the user marked insecure in containers-registries.conf(5), as skopeo and podman read it.

skopeo's ``--tls-verify`` defaults to verifying "unless the target registry is listed as an insecure registry
in containers-registries.conf"; the ``docker://`` source does the same. Files: ``$CONTAINERS_REGISTRIES_CONF``
alone when set, else ``~/.config/containers/registries.conf`` when it exists, else
``/etc/containers/registries.conf``, each followed by the drop-ins of its ``registries.conf.d/`` folder in name
order (a later file's entry for a location replaces an earlier one's). Both formats are read: v2
``[[registry]]`` tables (``location`` or ``prefix``, ``insecure``; ``*.example.com`` wildcards) and v1
``[registries.insecure] registries = [...]``. The longest matching prefix decides, as in containers/image.

Not here: mirrors, blocked registries and short-name aliases (an image name here is always fully qualified).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from trustyard.scan.errors import SourceError
from trustyard.scan.sources.credentials import read_config_file

SYSTEM_FILE: Final = Path("/etc/containers/registries.conf")


def config_files(env: Mapping[str, str]) -> list[Path]:
    """The registries.conf files to read, in order."""
    if env.get("CONTAINERS_REGISTRIES_CONF"):
        return [Path(env["CONTAINERS_REGISTRIES_CONF"])]
    home = Path(env.get("HOME") or Path.home())
    user = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "containers" / "registries.conf"
    main = user if user.exists() else SYSTEM_FILE
    drop_ins = Path(f"{main}.d")
    return [main, *sorted(drop_ins.glob("*.conf"))] if drop_ins.is_dir() else [main]


def _read(path: Path) -> dict[str, Any]:
    raw = read_config_file(path, "registries.conf")
    if raw is None:
        return {}
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise SourceError(f"{path} is not valid TOML: {e}") from e


def insecure_prefixes(env: Mapping[str, str] | None = None) -> dict[str, bool]:
    """Every configured location (or prefix) and whether it is insecure."""
    env = os.environ if env is None else env
    found: dict[str, bool] = {}
    for path in config_files(env):
        document = _read(path)
        registries = document.get("registries")
        if isinstance(registries, dict):  # v1
            insecure = registries.get("insecure")
            names = insecure.get("registries") if isinstance(insecure, dict) else None
            for name in names if isinstance(names, list) else ():
                if isinstance(name, str):
                    found[name] = True
        entries = document.get("registry")
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict):
                continue
            prefix = entry.get("prefix") or entry.get("location")
            if isinstance(prefix, str) and prefix:
                found[prefix] = entry.get("insecure") is True
    return found


def _matches(prefix: str, reference: str) -> bool:
    if prefix.startswith("*."):
        host = reference.split("/", 1)[0]
        return host.endswith(prefix[1:])
    return reference == prefix or reference.startswith(prefix + "/")


def is_insecure(host: str, repository: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether registries.conf marks ``host/repository`` insecure (the longest matching prefix decides)."""
    reference = f"{host}/{repository}"
    matching = [(len(p), insecure) for p, insecure in insecure_prefixes(env).items() if _matches(p, reference)]
    return max(matching)[1] if matching else False
