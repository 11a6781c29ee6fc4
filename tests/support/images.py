# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real test images: OCI layouts built on disk, pushed to a registry with skopeo.

Every layer is a real gzip tar whose content follows from a seed and a size, so the same
arguments always give the same digests. Configs carry ``rootfs.diff_ids`` (sha256 of the
uncompressed tar), manifests and indexes are written once and never re-serialised.

Byte preservation through ``skopeo copy`` (skopeo 1.9.3, containers/image 5.23), found by trying:

* ``--preserve-digests`` stops skopeo from editing manifests or recompressing layers, and
  ``--all`` copies every instance of an index or manifest list.
* skopeo skips a layout entry whose ``index.json`` descriptor has a Docker media type when it
  is picked by name: ``oci:<dir>:<name>`` fails with 'no descriptor found for reference'.
  Picked without a name (``oci:<dir>``) the single entry is taken as it is, and the Docker
  manifest or manifest list is pushed byte for byte. So each image gets its own layout
  directory holding exactly one entry, without an ``org.opencontainers.image.ref.name``.
* Layers must really be gzip: skopeo sniffs the bytes and recompresses a non-gzip body that
  claims a gzip media type (transport.md section 1.9), which changes every digest.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import random
import subprocess
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Protocol

from ansible_collections.airgap.hangar.plugins.module_utils import media_types as mt

SKOPEO = "skopeo"
SKOPEO_TIMEOUT = 600  # seconds; a 1 GiB benchmark push takes well under a minute here
DEFAULT_LAYER_SIZES = (4096,)
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/s390x")
KINDS = ("docker", "oci", "docker-list", "oci-index")

IN_TOTO = "application/vnd.in-toto+json"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v0.2"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_KEY = "dev.cosignproject.cosign/signature"

_MEDIA_TYPES = {
    # kind: (top media type, image manifest type, config type, layer type)
    "docker": (mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG, mt.DOCKER_LAYER),
    "oci": (mt.OCI_MANIFEST, mt.OCI_MANIFEST, mt.OCI_CONFIG, mt.OCI_LAYER),
    "docker-list": (mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG, mt.DOCKER_LAYER),
    "oci-index": (mt.OCI_INDEX, mt.OCI_MANIFEST, mt.OCI_CONFIG, mt.OCI_LAYER),
}


class ImageBuildError(Exception):
    """A test image could not be built, pushed or read back."""


class Target(Protocol):
    """What :func:`push_image` needs from a registry (``RegistryServer`` provides it)."""

    host: str

    def skopeo_args(self, prefix: str) -> list[str]: ...


@dataclass(frozen=True)
class Descriptor:
    """A blob or manifest as a parent refers to it."""

    media_type: str
    digest: str
    size: int

    def to_json(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass
class BuiltImage:
    """An image written as a one-entry OCI layout, ready for :func:`push_image`."""

    layout_dir: Path
    name: str
    kind: str
    media_type: str
    digest: str
    raw: bytes
    platform_digests: dict[str, str] = field(default_factory=dict)
    attestation_digests: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)
    blobs: list[Descriptor] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.raw)

    def describe(self) -> dict[str, Any]:
        """Plain data for JSON/YAML files: digests, media type and platforms."""
        return {
            "digest": self.digest,
            "media_type": self.media_type,
            "kind": self.kind,
            "platforms": dict(self.platform_digests),
            "attestations": dict(self.attestation_digests),
            "blobs": [blob.digest for blob in self.blobs],
        }


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def encode_json(document: dict[str, Any]) -> bytes:
    """Serialise a manifest, index or config the way these fixtures always do.

    Indented on purpose: a tool that re-serialises JSON it should copy changes the digest.
    """
    return json.dumps(document, indent=2).encode()


def split_platform(platform: str) -> dict[str, str]:
    """Turn ``os/arch[/variant]`` into an OCI platform object."""
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageBuildError(
            f"platform {platform!r} is not os/architecture[/variant]; use e.g. 'linux/arm64/v8'"
        )
    result = {"architecture": parts[1], "os": parts[0]}
    if len(parts) == 3:
        result["variant"] = parts[2]
    return result


class _Layout:
    """An OCI image layout directory that receives content-addressed blobs."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.blob_dir = self.directory / "blobs" / "sha256"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        (self.directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def put(self, data: bytes, media_type: str) -> Descriptor:
        digest = sha256_digest(data)
        (self.blob_dir / digest.split(":", 1)[1]).write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def adopt(self, temp_path: Path, digest: str) -> None:
        os.replace(temp_path, self.blob_dir / digest.split(":", 1)[1])

    def write_index(self, top: Descriptor) -> None:
        # No ref.name annotation: skopeo only takes Docker media types from an unnamed entry.
        index = {"schemaVersion": 2, "manifests": [top.to_json()]}
        (self.directory / "index.json").write_bytes(encode_json(index))


class _SeededReader:
    """Deterministic pseudo-random bytes of a fixed length, read like a file."""

    def __init__(self, seed: str, size: int) -> None:
        self._random = random.Random(seed)
        self._left = size

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > self._left:
            size = self._left
        self._left -= size
        return self._random.randbytes(size)


class _HashingWriter:
    """Pass writes on to *sink* while hashing and counting them."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def _tar_member(name: str, size: int) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size = size
    member.mode = 0o644
    member.mtime = 0
    member.uname = member.gname = "root"
    return member


def write_layer(
    layout: _Layout, seed: str, size: int, media_type: str, gzip_level: int = 1
) -> tuple[Descriptor, str]:
    """Write a gzip tar layer holding *size* seeded bytes; return it and its diff_id."""
    handle, temp_name = tempfile.mkstemp(dir=layout.blob_dir, prefix=".layer-")
    with os.fdopen(handle, "wb") as raw_file:
        compressed = _HashingWriter(raw_file)
        # mtime=0 and no file name keep the gzip header, and so the digest, reproducible.
        with gzip.GzipFile(
            filename="", mode="wb", fileobj=compressed, compresslevel=gzip_level, mtime=0
        ) as gz:
            uncompressed = _HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.USTAR_FORMAT) as tar:
                name = "data/" + hashlib.sha256(seed.encode()).hexdigest()[:16] + ".bin"
                tar.addfile(_tar_member(name, size), _SeededReader(seed, size))

    layout.adopt(Path(temp_name), compressed.digest)
    return Descriptor(media_type, compressed.digest, compressed.size), uncompressed.digest


def _config_document(platform: dict[str, str], diff_ids: list[str], seed: str) -> dict[str, Any]:
    return {
        "architecture": platform["architecture"],
        "os": platform["os"],
        **({"variant": platform["variant"]} if "variant" in platform else {}),
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": [f"HANGAR_TEST_SEED={seed}"], "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "airgap.hangar tests"}],
    }


def _manifest_document(media_type: str, config: Descriptor, layers: list[dict]) -> bytes:
    return encode_json(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": config.to_json(),
            "layers": layers,
        }
    )


@dataclass
class _Builder:
    """Accumulates the blobs and manifests of one image while it is written."""

    layout: _Layout
    kind: str
    seed: str
    gzip_level: int
    manifests: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, Descriptor] = field(default_factory=dict)

    def blob(self, descriptor: Descriptor) -> Descriptor:
        self.blobs.setdefault(descriptor.digest, descriptor)
        return descriptor

    def manifest(self, raw: bytes, media_type: str) -> Descriptor:
        descriptor = self.layout.put(raw, media_type)
        self.manifests[descriptor.digest] = raw
        return descriptor

    def image(self, platform: str, layer_sizes: list[int]) -> Descriptor:
        unused_index_type, manifest_type, config_type, layer_type = _MEDIA_TYPES[self.kind]
        layers, diff_ids = [], []
        for position, size in enumerate(layer_sizes):
            layer_seed = f"{self.seed}/{platform}/{position}/{size}"
            layer, diff_id = write_layer(self.layout, layer_seed, size, layer_type, self.gzip_level)
            layers.append(self.blob(layer).to_json())
            diff_ids.append(diff_id)

        config_raw = encode_json(_config_document(split_platform(platform), diff_ids, self.seed))
        config = self.blob(self.layout.put(config_raw, config_type))
        return self.manifest(_manifest_document(manifest_type, config, layers), manifest_type)

    def attestation(self, subject: Descriptor, platform: str) -> Descriptor:
        # Shaped like BuildKit's provenance: an OCI image of platform unknown/unknown whose only
        # layer is an in-toto statement about the subject manifest.
        statement = {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": SLSA_PROVENANCE,
            "subject": [{"name": platform, "digest": {"sha256": subject.digest.split(":")[1]}}],
            "predicate": {"builder": {"id": "airgap.hangar tests"}, "seed": self.seed},
        }
        layer = self.blob(self.layout.put(encode_json(statement), IN_TOTO))
        unknown = {"architecture": "unknown", "os": "unknown"}
        config_raw = encode_json(_config_document(unknown, [layer.digest], self.seed))
        config = self.blob(self.layout.put(config_raw, mt.OCI_CONFIG))
        layers = [layer.to_json(annotations={"in-toto.io/predicate-type": SLSA_PROVENANCE})]
        return self.manifest(_manifest_document(mt.OCI_MANIFEST, config, layers), mt.OCI_MANIFEST)


def _index_entries(
    builder: _Builder, platforms: list[str], layer_sizes: list[int], attestation: bool
) -> tuple[list[dict], dict[str, str], dict[str, str]]:
    entries, platform_digests, attestation_digests = [], {}, {}
    for platform in platforms:
        child = builder.image(platform, layer_sizes)
        entries.append(child.to_json(platform=split_platform(platform)))
        platform_digests[platform] = child.digest

    for platform in platforms if attestation else []:
        subject_digest = platform_digests[platform]
        subject_size = len(builder.manifests[subject_digest])
        subject = Descriptor(mt.OCI_MANIFEST, subject_digest, subject_size)
        statement = builder.attestation(subject, platform)
        annotations = {
            mt.ATTESTATION_TYPE_KEY: mt.ATTESTATION_TYPE,
            mt.ATTESTATION_SUBJECT_KEY: subject_digest,
        }
        platform_unknown = {"architecture": "unknown", "os": "unknown"}
        entries.append(statement.to_json(platform=platform_unknown, annotations=annotations))
        attestation_digests[platform] = statement.digest
    return entries, platform_digests, attestation_digests


def _check_build_args(kind: str, platforms: list[str], attestation: bool) -> None:
    if kind not in KINDS:
        raise ImageBuildError(f"image kind {kind!r} is unknown; use one of {', '.join(KINDS)}")
    if kind in ("docker", "oci") and len(platforms) != 1:
        raise ImageBuildError(
            f"a single {kind} manifest has one platform, got {platforms}; "
            "use kind 'docker-list' or 'oci-index' for several"
        )
    if attestation and kind != "oci-index":
        raise ImageBuildError(
            f"attestation manifests need an OCI index, not kind {kind!r}; use kind 'oci-index'"
        )


def build_image(
    layout_dir: Path,
    name: str,
    *,
    platforms: list[str] | tuple[str, ...] | None = None,
    kind: str = "oci-index",
    layer_sizes: list[int] | tuple[int, ...] = DEFAULT_LAYER_SIZES,
    seed: str | int = 0,
    attestation: bool = False,
    gzip_level: int = 1,
) -> BuiltImage:
    """Write image *name* as an OCI layout under ``layout_dir/name`` and describe it.

    Single manifests default to linux/amd64, indexes and lists to amd64, arm64/v8 and s390x.
    The same arguments always give the same digests; change *seed* for different content.
    """
    if platforms is None:
        platforms = ["linux/amd64"] if kind in ("docker", "oci") else list(DEFAULT_PLATFORMS)
    platforms = list(platforms)
    _check_build_args(kind, platforms, attestation)
    layout = _Layout(Path(layout_dir) / name)
    builder = _Builder(layout, kind, f"{name}/{seed}", gzip_level)
    top_type = _MEDIA_TYPES[kind][0]

    if kind in ("docker", "oci"):
        top = builder.image(platforms[0], list(layer_sizes))
        platform_digests, attestation_digests = {platforms[0]: top.digest}, {}
    else:
        entries, platform_digests, attestation_digests = _index_entries(
            builder, platforms, list(layer_sizes), attestation
        )
        index = {"schemaVersion": 2, "mediaType": top_type, "manifests": entries}
        top = builder.manifest(encode_json(index), top_type)

    layout.write_index(top)
    return BuiltImage(
        layout_dir=layout.directory,
        name=name,
        kind=kind,
        media_type=top_type,
        digest=top.digest,
        raw=builder.manifests[top.digest],
        platform_digests=platform_digests,
        attestation_digests=attestation_digests,
        manifests=dict(builder.manifests),
        blobs=list(builder.blobs.values()),
    )


def signature_tag(digest: str) -> str:
    """The tag cosign stores a signature of *digest* under: ``sha256-<hex>.sig``."""
    algorithm, unused_colon, hex_part = digest.partition(":")
    return f"{algorithm}-{hex_part}.sig"


def build_signature(
    layout_dir: Path, name: str, subject_digest: str, docker_reference: str,
    sign: Callable[[bytes], bytes] | None = None,
) -> BuiltImage:
    """Write a cosign signature manifest for *subject_digest*.

    *sign* turns the payload into signature bytes (a cosign private key's signature); without
    it the signature is shaped like one but signed by nobody.
    """
    layout = _Layout(Path(layout_dir) / name)
    builder = _Builder(layout, "oci", f"{name}/{subject_digest}", 1)
    payload = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": subject_digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    payload_raw = encode_json(payload)
    layer = builder.blob(layout.put(payload_raw, COSIGN_SIMPLESIGNING))
    raw_signature = sign(payload_raw) if sign else hashlib.sha256(payload_raw).digest()
    encoded = base64.b64encode(raw_signature).decode()
    layers = [layer.to_json(annotations={COSIGN_SIGNATURE_KEY: encoded})]
    config_raw = encode_json(_config_document({"architecture": "", "os": ""}, [layer.digest], name))
    config = builder.blob(layout.put(config_raw, mt.OCI_CONFIG))
    top = builder.manifest(_manifest_document(mt.OCI_MANIFEST, config, layers), mt.OCI_MANIFEST)
    layout.write_index(top)
    return BuiltImage(
        layout_dir=layout.directory,
        name=name,
        kind="oci",
        media_type=mt.OCI_MANIFEST,
        digest=top.digest,
        raw=builder.manifests[top.digest],
        manifests=dict(builder.manifests),
        blobs=list(builder.blobs.values()),
    )


def run_skopeo(args: list[str], *, timeout: float = SKOPEO_TIMEOUT) -> bytes:
    """Run skopeo with a throwaway policy check; raise :class:`ImageBuildError` on failure."""
    command = [SKOPEO, "--insecure-policy", *args]
    result = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise ImageBuildError(f"skopeo {args[0]} failed (exit {result.returncode}): {stderr}")
    return result.stdout


def push_image(built: BuiltImage, registry: Target, repository: str, tag: str) -> str:
    """Copy *built* to ``registry/repository:tag`` byte for byte and return its digest."""
    destination = f"docker://{registry.host}/{repository}:{tag}"
    with tempfile.TemporaryDirectory(prefix="hangar-push-") as scratch:
        digest_file = Path(scratch) / "digest"
        args = ["copy", "--quiet", "--all", "--preserve-digests", f"--digestfile={digest_file}"]
        run_skopeo([*args, *registry.skopeo_args("dest"), f"oci:{built.layout_dir}", destination])
        pushed = digest_file.read_text().strip()

    if pushed != built.digest:
        raise ImageBuildError(
            f"skopeo pushed {destination} as {pushed}, not as the built {built.digest}: "
            f"it rewrote the manifest; check the layout in {built.layout_dir}"
        )
    return pushed


def inspect_raw(registry: Target, repository: str, reference: str) -> bytes:
    """Fetch the raw manifest or index of ``repository:tag`` or ``repository@digest``."""
    separator = "@" if reference.startswith("sha256:") else ":"
    source = f"docker://{registry.host}/{repository}{separator}{reference}"
    return run_skopeo(["inspect", "--raw", *registry.skopeo_args(""), source])


STANDARD_IMAGES: tuple[dict[str, Any], ...] = (
    {"repository": "library/alpine", "tag": "3.20", "kind": "docker-list"},
    {"repository": "library/busybox", "tag": "1.36", "kind": "oci-index"},
    {"repository": "library/hello", "tag": "v2", "kind": "docker"},
    {"repository": "library/hello", "tag": "oci", "kind": "oci"},
    {"repository": "library/attested", "tag": "1.0", "kind": "oci-index", "attestation": True},
)
SIGNED_IMAGE = "library/hello:v2"


SEED_WORKERS = 4  # skopeo pushes of the standard set run side by side


def _standard_entry(registry: Target, repository: str, tag: str, built: BuiltImage) -> dict:
    return {
        "repository": repository,
        "tag": tag,
        "reference": f"{registry.host}/{repository}:{tag}",
        "by_digest": f"{registry.host}/{repository}@{built.digest}",
        **built.describe(),
    }


def build_standard_images(layouts: Path) -> list[tuple[str, str, BuiltImage]]:
    """Build the standard set as (repository, tag, image), the signature last."""
    built = []
    for spec in STANDARD_IMAGES:
        repository, tag = spec["repository"], spec["tag"]
        image = build_image(
            layouts,
            f"{repository.replace('/', '_')}_{tag}",
            kind=spec["kind"],
            attestation=spec.get("attestation", False),
            seed=f"{repository}:{tag}",
        )
        built.append((repository, tag, image))

    signed_repository = SIGNED_IMAGE.split(":", maxsplit=1)[0]
    signed = next(image for repo, tag, image in built if f"{repo}:{tag}" == SIGNED_IMAGE)
    # The signed identity leaves out the registry host so that every digest of the standard
    # set is the same on every run and every port.
    signature = build_signature(layouts, "signature", signed.digest, signed_repository)
    built.append((signed_repository, signature_tag(signed.digest), signature))
    return built


def seed_standard_images(registry: Target, workdir: Path | None = None) -> dict[str, dict]:
    """Push the fixed image set many tests share; return it keyed by ``repository:tag``.

    ``library/alpine:3.20`` Docker manifest list, ``library/busybox:1.36`` OCI index (both
    linux/amd64, linux/arm64/v8, linux/s390x), ``library/hello:v2`` Docker v2 schema 2,
    ``library/hello:oci`` OCI manifest, ``library/attested:1.0`` OCI index with BuildKit
    attestation manifests, and ``library/hello:sha256-<hex>.sig``, a cosign-style signature of
    ``library/hello:v2`` (its entry's ``signs`` field names the signed digest).
    """
    with tempfile.TemporaryDirectory(prefix="hangar-images-", dir=workdir) as layouts:
        built = build_standard_images(Path(layouts))
        with ThreadPoolExecutor(max_workers=SEED_WORKERS) as pool:
            pushes = [
                pool.submit(push_image, image, registry, repo, tag) for repo, tag, image in built
            ]
            for push in pushes:
                push.result()

    seeded = {
        f"{repo}:{tag}": _standard_entry(registry, repo, tag, image) for repo, tag, image in built
    }
    signature_key = f"{built[-1][0]}:{built[-1][1]}"
    seeded[signature_key]["signs"] = seeded[SIGNED_IMAGE]["digest"]
    return seeded
