"""``docker://HOST/REPO[:TAG|@DIGEST]``: an image in any registry, read over the distribution API, as skopeo names it.

The name follows skopeo's docker transport: ``docker://`` then a Docker reference; a first component without
``.`` or ``:`` that is not ``localhost`` is a Docker Hub repository (``docker://alpine`` is
``docker.io/library/alpine:latest``). Credentials come from ``SourceOptions.credentials`` (``--creds``), else
from the auth files (``credentials.py``); TLS and plain HTTP as ``SourceOptions.tls_verify`` says, or when it
says nothing, as containers-registries.conf(5) marks the registry (``registries_conf.py``).

The manifest a tag names is checked against the registry's ``Docker-Content-Digest``, and a manifest asked
for by digest against that digest; an index is followed to the requested platform (linux/amd64 by default);
the config and every layer are checked against their descriptors while they stream (``distribution.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from trustyard.oci.digest import Digest, DigestError
from trustyard.oci.manifest import ImageManifest, ManifestError, parse_manifest
from trustyard.oci.reference import InvalidReferenceError, validate_name, validate_tag
from trustyard.scan.errors import LayerError, SourceError
from trustyard.scan.layers import Layer, LayerLimits, Reduce, Wants, read_layer
from trustyard.scan.sources.base import (
    MAX_METADATA_SIZE,
    LayerRef,
    ManifestSource,
    SourceOptions,
    manifest_layers,
    parse_diff_ids,
    platform_choice,
)
from trustyard.scan.sources.credentials import DOCKER_HUB, find_credentials
from trustyard.scan.sources.distribution import DistributionClient, VerifiedBlob
from trustyard.scan.sources.registries_conf import is_insecure
from trustyard.scan.sources.registry import IMAGE_CONFIG_TYPES, NotAnImageError

DOCKER_HUB_ENDPOINT: Final = "registry-1.docker.io"
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST: Final = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
"""A registry host as Docker references write it (distribution's reference grammar: domain or [IPv6], port)."""
_MAX_NESTING: Final = 4
_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class DockerReference:
    """A parsed ``docker://`` name: registry host (as written), repository, and a tag or a digest."""

    host: str
    repository: str
    tag: str | None
    digest: Digest | None

    @classmethod
    def parse(cls, text: str) -> DockerReference:
        """``HOST/REPO:TAG``, ``HOST/REPO@sha256:...``, ``REPO`` (Docker Hub); ``SourceError`` when malformed."""
        name, at, digest_text = text.partition("@")
        digest = None
        if at:
            try:
                digest = Digest.parse(digest_text)
            except DigestError as e:
                raise SourceError(f"{text!r}: {e.message}") from e
        tag = None
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            host, repository = first, rest
        else:
            host, repository = DOCKER_HUB, name
        if not _HOST.fullmatch(host):
            raise SourceError(f"docker://{text}: {host!r} is not a registry host name")
        if host == DOCKER_HUB and "/" not in repository:
            repository = f"library/{repository}"
        if tag is None and digest is None:
            tag = "latest"
        try:
            validate_name(repository)
            if tag is not None:
                validate_tag(tag)
        except InvalidReferenceError as e:
            raise SourceError(f"docker://{text}: {e.message}") from e
        return cls(host, repository, tag, digest)

    @property
    def endpoint(self) -> str:
        """The host to connect to (Docker Hub's registry lives at registry-1.docker.io)."""
        return DOCKER_HUB_ENDPOINT if self.host == DOCKER_HUB else self.host

    def __str__(self) -> str:
        tail = f":{self.tag}" if self.tag else ""
        return f"{self.host}/{self.repository}{tail}" + (f"@{self.digest}" if self.digest else "")


def _drain(blob: VerifiedBlob) -> None:
    """Read ``blob`` to its end, where ``VerifiedBlob`` compares the digest (bounded by the descriptor's size)."""
    while blob.read(_CHUNK):
        pass


class DockerRegistrySource(ManifestSource):
    """One image of a registry, read over HTTP(S) without a local copy."""

    def __init__(self, reference: DockerReference, *, name: str, options: SourceOptions) -> None:
        super().__init__(name)
        self._reference = reference
        credentials = options.credentials or find_credentials(
            reference.host, reference.repository, authfile=options.authfile
        )
        tls_verify = options.tls_verify
        if tls_verify is None and is_insecure(reference.host, reference.repository):
            tls_verify = False  # skopeo's default: verify, unless registries.conf lists the registry as insecure
        self._client = DistributionClient(
            reference.endpoint, reference.repository, credentials=credentials, tls_verify=tls_verify
        )
        try:
            self._manifest = self._select(options)
            if self._manifest.config.media_type not in IMAGE_CONFIG_TYPES:
                raise NotAnImageError(
                    f"{name}: not a container image but an artifact (config {self._manifest.config.media_type},"
                    f" artifactType {self._manifest.effective_artifact_type})"
                )
            config = self._client.small_blob(self._manifest.config.digest, MAX_METADATA_SIZE)
            diff_ids = parse_diff_ids(config, "config")
            self.config_blob = config
            """The image configuration, verified against its descriptor (the bench's image checks read it)."""
        except BaseException:
            self._client.close()
            raise
        self._layers = manifest_layers(self._manifest, diff_ids)

    @classmethod
    def open(cls, name: str, rest: str, options: SourceOptions) -> DockerRegistrySource:
        """``docker://REFERENCE`` (``rest`` is ``//REFERENCE``)."""
        if not rest.startswith("//") or len(rest) == 2:
            raise SourceError(f"{name!r}: write docker://HOST/REPOSITORY[:TAG|@DIGEST]")
        return cls(DockerReference.parse(rest[2:]), name=name, options=options)

    def read_layer(self, ref: LayerRef, *, wants: Wants, limits: LayerLimits, reduce: Reduce | None = None) -> Layer:
        """Stream the layer blob from the registry, verified against its descriptor as it passes."""
        if ref.digest is None:  # pragma: no cover - every layer of a manifest has a digest
            raise SourceError(f"layer {ref.index} has no digest")
        with self._client.blob(ref.digest, ref.size) as blob:
            try:
                layer = read_layer(blob, wants=wants, limits=limits, reduce=reduce)
            except LayerError:
                _drain(blob)  # bytes that are not the blob's are a failed download, not a broken layer
                raise
            _drain(blob)  # the walker reads to the end; this only makes sure every byte was verified
        return layer

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def _select(self, options: SourceOptions) -> ImageManifest:
        ref = self._reference
        reference = str(ref.digest) if ref.digest else str(ref.tag)
        expected = ref.digest
        for _ in range(_MAX_NESTING):
            raw, content_type, header = self._client.manifest(reference, MAX_METADATA_SIZE)
            algorithm = expected.algorithm if expected else "sha256"
            actual = Digest.of(raw, algorithm)
            if expected is None and header:
                try:
                    expected = Digest.parse(header)
                except DigestError:
                    expected = None
                if expected is not None and expected.algorithm != algorithm:
                    actual = Digest.of(raw, expected.algorithm)
            if expected is not None and actual != expected:
                raise SourceError(f"{self._name}: the manifest the registry sent hashes to {actual}, not {expected}")
            try:
                found = parse_manifest(raw, content_type, algorithm=actual.algorithm)
            except ManifestError as e:
                raise SourceError(f"{self._name}: {e.message}") from e
            if isinstance(found, ImageManifest):
                return found
            child = platform_choice(found, self._name, options.platform)
            reference, expected = str(child.digest), child.digest
        raise SourceError(f"{self._name}: indexes nested more than {_MAX_NESTING} deep")
