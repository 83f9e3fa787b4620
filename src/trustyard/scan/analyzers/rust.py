"""Rust crates: from binaries built with cargo-auditable (their ``.dep-v0`` section) and from ``Cargo.lock``.

Which files: ``Cargo.lock`` anywhere, and every file the Go analyzer would look at as a possible binary
(extension-less, outside data-only trees). Like the Go analyzer this one is an extractor: while a layer
streams it keeps only the inflated dependency JSON of binaries that carry one (a few kilobytes), never the
binary, and a lock file as it is. A binary without the section yields nothing: Rust does not otherwise record
its crates, and guessing them from symbol names is not identification.

Each crate is reported with ``pkg:cargo/NAME@VERSION`` (the purl type advisories use, OSV's ``crates.io``
ecosystem) and its source; crates compiled only for the build (``kind: build``: build scripts, proc-macros)
are reported too, marked ``dependency_kind=build``, since they ran on the build machine.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Final

from packageurl import PackageURL

from trustyard.scan.analyzers.go import GoBinaryAnalyzer
from trustyard.scan.model import Component, ComponentType
from trustyard.scan.parsers.rust import Crate, parse_audit_json, parse_cargo_lock, read_audit_data

LOCK_FILE: Final = "Cargo.lock"
_LOCK_MARKER: Final = b"lock\0"
_AUDIT_MARKER: Final = b"audit\0"


class RustAnalyzer:
    """Crates in cargo-auditable binaries and Cargo.lock files."""

    name: Final = "rust-cargo"
    version: Final = 1

    def __init__(self) -> None:
        self._binaries = GoBinaryAnalyzer()  # the same notion of "a file that may be a binary"

    def wants(self, path: str) -> bool:
        """``Cargo.lock`` files, and possible binaries."""
        return posixpath.basename(path) == LOCK_FILE or self._binaries.wants(path)

    def extract(self, path: str, data: bytes) -> bytes | None:
        """A lock file as it is; a binary's inflated ``.dep-v0`` JSON; ``None`` for anything else."""
        if posixpath.basename(path) == LOCK_FILE:
            return _LOCK_MARKER + data
        audit = read_audit_data(data)
        return None if audit is None else _AUDIT_MARKER + audit

    def analyze(self, files: Mapping[str, bytes]) -> Sequence[Component]:
        """Every crate of every summary, naming the binary or lock file it was read from."""
        components: list[Component] = []
        for path in sorted(files):
            summary = files[path]
            if summary.startswith(_LOCK_MARKER):
                crates = parse_cargo_lock(summary[len(_LOCK_MARKER) :])
            elif summary.startswith(_AUDIT_MARKER):
                crates = parse_audit_json(summary[len(_AUDIT_MARKER) :])
            else:
                continue
            components += [self._component(c, path) for c in crates]
        return components

    def _component(self, crate: Crate, path: str) -> Component:
        extra = [("source", crate.source)] if crate.source else []
        if crate.kind != "runtime":
            extra.append(("dependency_kind", crate.kind))
        if crate.checksum:
            extra.append(("checksum", f"sha256:{crate.checksum}"))
        return Component(
            type=ComponentType.CARGO,
            name=crate.name,
            version=crate.version,
            purl=PackageURL(type="cargo", name=crate.name, version=crate.version).to_string(),
            evidence=path,
            found_by=self.name,
            extra=tuple(extra),
        )
