"""The inputs of one bench run, each read once and only when a selected check asks for it.

A ``BenchContext`` holds what the user pointed the bench at (a root directory, a daemon.json, a dockerd
command line, an engine, images) and hands each check the typed facts it needs: the host file system under
``root``, the daemon's ``DaemonSettings``, the engine's ``EngineFacts``, the images' ``ImageFacts``. Reading is
lazy and cached, so selecting only section 3 never contacts the engine, and a missing input raises
``InputUnavailable`` for every check that wanted it (the same reason each time, read once).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from trustyard.bench.base import InputUnavailable
from trustyard.bench.daemonconfig import DaemonSettings, load_settings
from trustyard.bench.engine import EngineFacts, default_docker_host, gather
from trustyard.bench.execs import ExecFacts, gather_execs
from trustyard.bench.imagefacts import ImageFacts, load_image
from trustyard.bench.layout import Engine, Layout, detect

T = TypeVar("T")


class _Once(Generic[T]):
    """A value loaded on first use; an ``InputUnavailable`` is remembered and raised again, not retried."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._error: InputUnavailable | None = None
        self._loaded = False

    def get(self, load: Callable[[], T]) -> T:
        if not self._loaded:
            try:
                self._value = load()
            except InputUnavailable as e:
                self._error = e
            self._loaded = True
        if self._error is not None:
            raise self._error
        if self._value is None:  # pragma: no cover - a loader returns a value or raises
            raise InputUnavailable("input could not be read")
        return self._value


@dataclass
class BenchContext:
    """Where the bench looks; ``docker_host`` ``None`` means the usual socket (``engine.default_docker_host``)."""

    root: Path = Path("/")
    daemon_json: Path | None = None
    dockerd_cmdline: str | None = None
    docker_host: str | None = None
    images: tuple[str, ...] = ()
    engine_kind: Engine | None = None
    rootless_user: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _daemon: _Once[DaemonSettings] = field(default_factory=_Once, repr=False)
    _engine: _Once[EngineFacts] = field(default_factory=_Once, repr=False)
    _images: _Once[tuple[ImageFacts, ...]] = field(default_factory=_Once, repr=False)
    _layout: _Once[Layout] = field(default_factory=_Once, repr=False)
    _execs: _Once[ExecFacts] = field(default_factory=_Once, repr=False)

    def path(self, host_path: str) -> Path:
        """``host_path`` (absolute on the audited host) inside ``root``."""
        return self.root / host_path.lstrip("/")

    def layout(self) -> Layout:
        """Where the engine keeps its files (rootful or rootless Docker or podman; ``layout.detect``)."""
        return self._layout.get(lambda: detect(self.root, engine=self.engine_kind, rootless_user=self.rootless_user))

    def daemon(self) -> DaemonSettings:
        """The daemon's effective settings; ``InputUnavailable`` when neither daemon.json nor dockerd is found."""

        def load() -> DaemonSettings:
            default_json, rootless = "/etc/docker/daemon.json", False
            try:
                layout = self.layout()
            except InputUnavailable:
                layout = None
            if layout is not None and layout.rootless and layout.engine is Engine.DOCKER:
                default_json, rootless = layout.path(default_json), True  # the user's daemon.json
            found = load_settings(
                self.root,
                daemon_json=self.daemon_json,
                cmdline=self.dockerd_cmdline,
                rootless=rootless,
                default_json=default_json,
            )
            if found is None:
                raise InputUnavailable(
                    f"no {self.path('/etc/docker/daemon.json')} and no running dockerd under {self.path('/proc')}; "
                    "give --daemon-json or --dockerd-cmdline"
                )
            return found

        return self._daemon.get(load)

    def engine(self) -> EngineFacts:
        """The engine's facts (``InputUnavailable`` when it cannot be reached)."""
        host = self.docker_host or default_docker_host(dict(self.environ))
        return self._engine.get(lambda: gather(host))

    def execs(self) -> ExecFacts:
        """The ``docker exec`` calls the audit log and the engine recorded (``execs.py``)."""
        host = self.docker_host or default_docker_host(dict(self.environ))
        return self._execs.get(lambda: gather_execs(self.root, host))

    def image_facts(self) -> tuple[ImageFacts, ...]:
        """Every ``--image``, read; ``InputUnavailable`` when none was given."""

        def load() -> tuple[ImageFacts, ...]:
            if not self.images:
                raise InputUnavailable("no image given (--image oci:DIR:TAG, docker-archive:FILE, rootfs:DIR)")
            return tuple(load_image(name) for name in self.images)

        return self._images.get(load)
