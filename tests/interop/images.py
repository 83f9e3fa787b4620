"""OCI image layouts for interop tests, read from ../shared/images or built in plain Python.

Builds images the way notes/real-peers.md §2c does: deterministic PAX tar layers, gzip with mtime 0 (so
skopeo passes them through byte for byte), a config whose `rootfs.diff_ids` are the digests of the
uncompressed tars, a manifest, and an `index.json` naming each manifest with
`org.opencontainers.image.ref.name`. Reads layouts back into `OciImage` records (manifest bytes and digests)
so that tests can compare what a registry returns with what went in.

Not here: pushing or pulling (clients.py) and the registry protocol (registry_api.py). The shared fixtures
are read-only: nothing here writes into them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import random
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
EPOCH_2024 = 1704067200

SHARED_IMAGES = Path(os.environ.get("TRUSTYARD_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared")) / "images"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def sha256_digest(data: bytes) -> str:
    """`sha256:<hex>` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str:
    """`sha256:<hex>` of a file's content, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (the fields the tests use)."""

    media_type: str
    digest: str
    size: int

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Descriptor:
        """Parse a descriptor object of a manifest."""
        return cls(media_type=str(obj["mediaType"]), digest=str(obj["digest"]), size=int(obj["size"]))

    def to_json(self) -> dict[str, Any]:
        """The descriptor as it appears in a manifest."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class OciImage:
    """One image manifest inside an OCI layout, with the manifest's exact bytes."""

    layout: Path
    ref: str
    manifest: bytes
    config: Descriptor
    layers: tuple[Descriptor, ...]
    # a skopeo `dir:` copy keeps blobs as <hex> files beside manifest.json instead of blobs/<alg>/<hex>
    flat: bool = False

    @property
    def manifest_digest(self) -> str:
        """Digest of the manifest bytes (what a registry reports as Docker-Content-Digest)."""
        return sha256_digest(self.manifest)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config and layers, in manifest order."""
        return (self.config, *self.layers)

    @property
    def total_size(self) -> int:
        """Bytes a push uploads: manifest, config and layers."""
        return len(self.manifest) + sum(b.size for b in self.blobs)

    @property
    def transport(self) -> str:
        """The image as a containers/image reference: `oci:LAYOUT:REF`."""
        return f"oci:{self.layout}:{self.ref}"

    def blob_path(self, digest: str) -> Path:
        """Where a blob of this image lives in its layout."""
        algorithm, hex_ = digest.split(":", 1)
        return self.layout / hex_ if self.flat else self.layout / "blobs" / algorithm / hex_

    def mismatched_blobs(self) -> list[str]:
        """Blobs of this image whose file is missing or does not hash to its digest."""
        bad = []
        for blob in self.blobs:
            path = self.blob_path(blob.digest)
            if not path.exists() or path.stat().st_size != blob.size or file_digest(path) != blob.digest:
                bad.append(blob.digest)
        return bad


@dataclass(frozen=True)
class OciIndex:
    """An image index inside an OCI layout, with its exact bytes and the images it names."""

    layout: Path
    ref: str
    body: bytes
    images: tuple[OciImage, ...]

    @property
    def digest(self) -> str:
        """Digest of the index bytes."""
        return sha256_digest(self.body)

    @property
    def transport(self) -> str:
        """The index as a containers/image reference: `oci:LAYOUT:REF`."""
        return f"oci:{self.layout}:{self.ref}"


def parse_manifest(layout: Path, ref: str, manifest: bytes, *, flat: bool = False) -> OciImage:
    """An `OciImage` from the bytes of an image manifest."""
    body = json.loads(manifest)
    if body.get("mediaType", OCI_MANIFEST) not in (
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.v2+json",
    ):
        raise ValueError(f"{layout}:{ref} is not an image manifest: {body.get('mediaType')}")
    return OciImage(
        layout=layout,
        ref=ref,
        manifest=manifest,
        config=Descriptor.from_json(body["config"]),
        layers=tuple(Descriptor.from_json(layer) for layer in body["layers"]),
        flat=flat,
    )


def read_dir_copy(path: Path) -> OciImage:
    """The image a `skopeo copy … dir:PATH` wrote."""
    return parse_manifest(path, "dir", (path / "manifest.json").read_bytes(), flat=True)


def read_layout(layout: Path) -> list[OciImage]:
    """Every image manifest named in a layout's index.json, in index order."""
    index = json.loads((layout / "index.json").read_bytes())
    images = []
    for entry in index["manifests"]:
        desc = Descriptor.from_json(entry)
        if desc.media_type != OCI_MANIFEST:
            continue
        ref = entry.get("annotations", {}).get(REF_NAME, desc.digest)
        manifest = (layout / "blobs" / desc.digest.replace(":", "/", 1)).read_bytes()
        if sha256_digest(manifest) != desc.digest:
            raise ValueError(f"{layout}: manifest {desc.digest} does not match its bytes")
        images.append(parse_manifest(layout, ref, manifest))
    return images


# A shell command for the shared Alpine application image and its output when all three layers applied:
# release of the base layer; files deleted by whiteouts of layer 3; the npm package its opaque dir replaced.
ALPINE_CHECK = (
    "cat /etc/alpine-release"
    "; test -e /etc/motd || echo no-motd"
    "; test -e /usr/local/lib/python3.11/site-packages/itsdangerous.py || echo no-itsdangerous"
    '; grep -o \'"version": *"[^"]*"\' /app/node_modules/minimist/package.json'
)
ALPINE_EXPECTED = ["3.20.3", "no-motd", "no-itsdangerous", '"version": "1.2.6"']


def shared_layouts(root: Path = SHARED_IMAGES) -> list[Path]:
    """The OCI image layouts among the shared fixtures (directories holding an `oci-layout` file)."""
    return sorted(p.parent for p in root.glob("*/oci-layout"))


def shared_multilayer_images(root: Path = SHARED_IMAGES) -> list[OciImage]:
    """Every image with more than one layer in the shared OCI layouts (there must be at least one)."""
    found = [img for layout in shared_layouts(root) for img in read_layout(layout) if len(img.layers) > 1]
    if not found:
        raise FileNotFoundError(f"no multi-layer OCI layout under {root}")
    return found


# -- building ----------------------------------------------------------------------------------------------


def tar_bytes(files: Mapping[str, bytes], *, mode: int = 0o644) -> bytes:
    """A deterministic PAX tar of regular files (parents added as directories), owners 0:0."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name in sorted(files):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    info.mtime = EPOCH_2024
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = mode
            info.mtime = EPOCH_2024
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


@dataclass(frozen=True)
class Layer:
    """A compressed layer blob with the digest of its uncompressed tar."""

    blob: bytes
    diff_id: str

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], *, mode: int = 0o644, level: int = 1) -> Layer:
        """A gzip layer holding `files` (gzip mtime 0; level 1 by default: tests need speed, not ratio)."""
        tar = tar_bytes(files, mode=mode)
        return cls(blob=gzip.compress(tar, compresslevel=level, mtime=0), diff_id=sha256_digest(tar))

    @classmethod
    def random(cls, seed: str, size: int) -> Layer:
        """A layer with one file of `size` pseudo-random bytes, the same bytes for the same seed.

        Random bytes do not compress: gzip level 0 (stored blocks) makes a valid gzip layer at copy speed.
        """
        data = random.Random(seed).randbytes(size)
        return cls.from_files({f"data/{seed}.bin": data}, level=0)

    @property
    def descriptor(self) -> Descriptor:
        """The layer's descriptor."""
        return Descriptor(OCI_LAYER_GZIP, sha256_digest(self.blob), len(self.blob))


class LayoutBuilder:
    """Writes images into one OCI layout directory (created if missing)."""

    def __init__(self, layout: Path) -> None:
        self.layout = layout
        (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        index = layout / "index.json"
        if not index.exists():
            index.write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}))

    def put_blob(self, data: bytes) -> str:
        """Store bytes as a blob; returns the digest."""
        digest = sha256_digest(data)
        path = self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]
        if not path.exists():
            path.write_bytes(data)
        return digest

    def put_stream(self, chunks: Iterable[bytes]) -> Descriptor:
        """Store a blob given as chunks (constant memory); returns its gzip-layer descriptor."""
        tmp = self.layout / "blobs" / f".incoming-{os.getpid()}"
        h = hashlib.sha256()
        size = 0
        with tmp.open("wb") as f:
            for chunk in chunks:
                h.update(chunk)
                size += len(chunk)
                f.write(chunk)
        digest = "sha256:" + h.hexdigest()
        tmp.rename(self.layout / "blobs" / "sha256" / h.hexdigest())
        return Descriptor(OCI_LAYER_GZIP, digest, size)

    def add_image(
        self,
        ref: str,
        layers: Iterable[tuple[Descriptor, str]],
        *,
        cmd: list[str] | None = None,
        labels: Mapping[str, str] | None = None,
        architecture: str = "amd64",
    ) -> OciImage:
        """Write config and manifest for already stored layers `(descriptor, diff_id)`; name it `ref`."""
        layers = list(layers)
        config_body: dict[str, Any] = {
            "created": "2024-01-01T00:00:00Z",
            "architecture": architecture,
            "os": "linux",
            "config": {"Env": [PATH_ENV], "Cmd": cmd or ["/bin/sh"], "Labels": dict(labels or {})},
            "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
            "history": [
                {"created": "2024-01-01T00:00:00Z", "created_by": f"trustyard test layer {i}"}
                for i in range(len(layers))
            ],
        }
        config = json.dumps(config_body, indent=1, sort_keys=True).encode()
        config_desc = Descriptor(OCI_CONFIG, self.put_blob(config), len(config))
        manifest_body = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [desc.to_json() for desc, _ in layers],
        }
        manifest = json.dumps(manifest_body, indent=1).encode()
        self._name(ref, OCI_MANIFEST, manifest, {"architecture": architecture, "os": "linux"})
        return parse_manifest(self.layout, ref, manifest)

    def add_index(self, ref: str, images: Iterable[tuple[OciImage, str]]) -> OciIndex:
        """Write an image index of `(image, architecture)` (images of this layout); name it `ref`."""
        images = list(images)
        body = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": image.manifest_digest,
                    "size": len(image.manifest),
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for image, arch in images
            ],
        }
        index = json.dumps(body, indent=1).encode()
        self._name(ref, OCI_INDEX, index, None)
        return OciIndex(layout=self.layout, ref=ref, body=index, images=tuple(image for image, _ in images))

    def _name(self, ref: str, media_type: str, content: bytes, platform: Mapping[str, str] | None) -> None:
        """Store `content` as a blob and name it `ref` in index.json (replacing an older entry)."""
        entry: dict[str, Any] = {"mediaType": media_type, "digest": self.put_blob(content), "size": len(content)}
        if platform is not None:
            entry["platform"] = dict(platform)
        entry["annotations"] = {REF_NAME: ref}
        index_path = self.layout / "index.json"
        index = json.loads(index_path.read_bytes())
        index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != ref]
        index["manifests"].append(entry)
        index_path.write_text(json.dumps(index, indent=1))

    def add_layers_image(self, ref: str, layers: Iterable[Layer], **kwargs: Any) -> OciImage:
        """Store `layers` and write an image of them."""
        stored = []
        for layer in layers:
            self.put_blob(layer.blob)
            stored.append((layer.descriptor, layer.diff_id))
        return self.add_image(ref, stored, **kwargs)


def random_image(
    layout: Path, ref: str, *, seed: str, layer_sizes: Iterable[int], shared: Iterable[Layer] = ()
) -> OciImage:
    """An image of `shared` layers then one random layer per size (pseudo-random, reproducible by seed)."""
    layers = [*shared, *(Layer.random(f"{seed}-{i}", size) for i, size in enumerate(layer_sizes))]
    return LayoutBuilder(layout).add_layers_image(ref, layers, labels={"org.trustyard.test.seed": seed})


def _gzip_stream(source: IO[bytes], on_plain: Callable[[bytes], object]) -> Iterator[bytes]:
    """Gzip (level 1, mtime 0) a stream in constant memory; `on_plain` sees every uncompressed chunk."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as gz:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            on_plain(chunk)
            gz.write(chunk)
            if out.tell():
                yield out.getvalue()
                out.seek(0)
                out.truncate()
    yield out.getvalue()


def debian_image(layout: Path, ref: str = "debian-bookworm:1", root: Path = SHARED_IMAGES) -> OciImage:
    """Debian 12 minbase (the shared rootfs.tar.xz, recompressed to gzip) plus a small second layer."""
    diff_hash = hashlib.sha256()
    builder = LayoutBuilder(layout)
    with lzma.open(root / "debian-bookworm-minbase" / "rootfs.tar.xz", "rb") as xz:
        base = builder.put_stream(_gzip_stream(xz, diff_hash.update))
    base_diff_id = "sha256:" + diff_hash.hexdigest()
    marker = Layer.from_files({"etc/trustyard-test.txt": b"hello from layer 2\n"})
    builder.put_blob(marker.blob)
    return builder.add_image(ref, [(base, base_diff_id), (marker.descriptor, marker.diff_id)], cmd=["/bin/bash"])
