"""Go binaries: the modules compiled into them, from the build information in the ELF file (never run).

Which files: any file whose name has no extension (or ends in ``.exe``), outside the trees that hold only
data (``usr/share``, ``usr/include``, ``etc``, ``var/lib/dpkg``...). Go binaries are named freely and live
anywhere, so the name alone cannot find them; the walker hands each candidate to ``extract``, which keeps
only the build information (a few hundred bytes) of the ELF files that have one and drops everything else,
so no binary is held in memory beyond its own pass.

What is reported per binary: the main module (version ``(devel)`` when built from a checkout), every
dependency module (a replaced module is reported as its replacement), and the standard library as
``stdlib`` at the toolchain's version, which Go's own advisories (and the NVD's ``golang:go``) name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from packageurl import PackageURL

from trustyard.scan.cpe import cpe23
from trustyard.scan.errors import PackageDatabaseError
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.parsers.gobinary import GoBuildInfo, GoModule, parse_modinfo, read_build_info

_DATA_TREES: Final = ("usr/share/", "usr/include/", "etc/", "var/lib/dpkg/", "var/lib/apk/", "var/cache/", "proc/")


def _purl(path: str, version: str | None) -> str:
    namespace, _, name = path.rpartition("/")
    return PackageURL(type="golang", namespace=namespace or None, name=name, version=version).to_string()


def _summary(info: GoBuildInfo) -> bytes:
    """What is kept of a binary: the toolchain version and the module text, re-parsed by ``analyze``."""
    lines = [f"path\t{info.path}"] if info.path else []
    if info.main is not None:
        lines.append(f"mod\t{info.main.path}\t{info.main.version}\t{info.main.sum or ''}")
    for dep in info.deps:
        lines.append(f"dep\t{dep.path}\t{dep.version}\t{dep.sum or ''}")
        if dep.replaced_by is not None:
            lines.append(f"=>\t{dep.replaced_by.path}\t{dep.replaced_by.version}\t{dep.replaced_by.sum or ''}")
    lines += [f"build\t{k}={v}" for k, v in info.settings]
    return json.dumps({"go": info.go_version, "modinfo": "\n".join(lines)}).encode()


class GoBinaryAnalyzer:
    """Modules of Go binaries, read from their build information."""

    name: Final = "go-binary"
    version: Final = 1

    def wants(self, path: str) -> bool:
        """Extension-less (or ``.exe``) files outside data-only trees: the places a binary can be."""
        if path.startswith(_DATA_TREES):
            return False
        base = path.rpartition("/")[2]
        return "." not in base or base.endswith(".exe")

    def extract(self, path: str, data: bytes) -> bytes | None:
        """The build information of a Go ELF binary as a small JSON summary; ``None`` for any other file."""
        info = read_build_info(data)
        return None if info is None else _summary(info)

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """The stdlib, main module and dependencies of each binary, each naming the binary as its evidence."""
        components: list[Component] = []
        for path in sorted(files):
            try:
                summary: Any = json.loads(files[path])
                info = parse_modinfo(str(summary["go"]), str(summary["modinfo"]))
            except (ValueError, KeyError, TypeError) as e:
                raise PackageDatabaseError(f"{path}: unreadable Go build summary: {e}") from e
            components += self._binary(path, info)
        return components

    def _binary(self, path: str, info: GoBuildInfo) -> list[Component]:
        settings = tuple(info.settings)
        found = [
            Component(
                type=ComponentType.GOLANG,
                name="stdlib",
                version=info.go_version,
                purl=_purl("stdlib", info.go_version.removeprefix("go")),
                cpe=cpe23("golang", "go", info.go_version.removeprefix("go")),
                evidence=path,
                found_by=self.name,
            )
        ]
        if info.main is not None:
            version = None if info.main.version == "(devel)" else info.main.version
            extra = (("main_path", info.path),) if info.path else ()
            found.append(self._module(info.main, path, version, extra + settings))
        found += [self._module(d.replaced_by or d, path, (d.replaced_by or d).version, ()) for d in info.deps]
        return found

    def _module(
        self, module: GoModule, path: str, version: str | None, extra: tuple[tuple[str, str], ...]
    ) -> Component:
        sums = (("h1", module.sum),) if module.sum else ()
        return Component(
            type=ComponentType.GOLANG,
            name=module.path,
            version=module.version,
            purl=_purl(module.path, version),
            evidence=path,
            found_by=self.name,
            extra=sums + extra,
        )
