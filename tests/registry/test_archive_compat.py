# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Format compatibility of Hangar archives with containers/image, the library Hangar uses.

Two directions: every platform directory of an archive hangar_save wrote is an OCI layout that
skopeo copies to a registry at the same digest once unzipped; and an archive put together by
hand from layouts skopeo wrote, arranged and zipped the way Hangar v1.9 does, loads with
hangar_load. Modules run through ``ansible localhost -m``, as users run them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

import ansible_collections.airgap.hangar.plugins.module_utils.errors as errors_module
from ansible_collections.airgap.hangar.plugins.module_utils.archive import ArchiveReader
from ansible_collections.airgap.hangar.plugins.module_utils.archive_compose import verify_archive
from tests.support.images import inspect_raw, run_skopeo

pytestmark = [
    pytest.mark.skopeo,
    pytest.mark.skipif(shutil.which("unzip") is None,
                       reason="unzip is not installed; apt-get install unzip to run this test"),
]

COLLECTIONS_ROOT = str(Path(errors_module.__file__).parents[5])
MODULE_TIMEOUT = 300  # seconds for one ansible run; a hung module fails the test
SKOPEO_WORKERS = 4
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = ", ".join((
    OCI_INDEX,
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
ATTESTATION_TYPE = "vnd.docker.reference.type"
# Images of the standard set in the hand-built archive: a Docker list, an OCI index, a single
# Docker manifest and an OCI index with attestations.
HAND_BUILT = ("library/alpine:3.20", "library/busybox:1.36", "library/hello:v2",
              "library/attested:1.0")
# Hangar v1.7 to v1.9.1 also wrote directory entries; readers must skip them.
HANGAR_TIME = (2025, 2, 13, 18, 56, 26)


def run_module(module: str, args: dict, workdir: Path) -> dict:
    """Run ``ansible localhost -m airgap.hangar.<module>`` and return its result."""
    tree = workdir / f"tree-{module}"
    binary = Path(sys.executable).with_name("ansible")
    command = [str(binary) if binary.exists() else "ansible", "localhost",
               "-m", f"airgap.hangar.{module}", "-a", json.dumps(args),
               "-e", f"ansible_python_interpreter={sys.executable}", "--tree", str(tree)]
    # No credentials of the person running the tests may reach a test registry.
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_ROOT,
           "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_NOCOLOR": "true",
           "DOCKER_CONFIG": "/nonexistent-docker-config", "XDG_RUNTIME_DIR": "",
           "XDG_CONFIG_HOME": "/nonexistent-config-home"}
    process = subprocess.run(command, capture_output=True, text=True, env=env,
                             timeout=MODULE_TIMEOUT, check=False)
    result_file = tree / "localhost"
    assert result_file.exists(), (
        f"{module} left no result (exit {process.returncode}):\n{process.stdout[-3000:]}"
        f"\n{process.stderr[-3000:]}")
    return json.loads(result_file.read_text())


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def save_standard_images(registry, keys, archive: Path, workdir: Path) -> dict:
    result = run_module("hangar_save", {
        "images": list(keys), "src_registry": f"http://{registry.host}", "arch": ["*"],
        "dest": str(archive),
    }, workdir)
    assert not result.get("failed"), result.get("msg")
    return result


def raw_manifest(registry, repository: str, reference: str) -> bytes:
    """The manifest bytes the registry serves; plain requests, faster than a skopeo run each."""
    answer = requests.get(f"{registry.url}/v2/{repository}/manifests/{reference}",
                          headers={"Accept": MANIFEST_TYPES}, timeout=30)
    answer.raise_for_status()
    return answer.content


def platform_digests(entry: dict) -> list:
    """Platform and attestation manifest digests of a seeded image, in index order."""
    return list(entry["platforms"].values()) + list(entry["attestations"].values())


def copy_layout(extracted: Path, hex_digest: str, destination) -> str:
    """skopeo-copy one unzipped platform directory to ``destination``; return the digest."""
    digest_file = extracted / f"{hex_digest}.digest"
    run_skopeo(["copy", "--quiet", "--preserve-digests", f"--digestfile={digest_file}",
                f"--src-shared-blob-dir={extracted / 'share'}",
                *destination.skopeo_args("dest"), f"oci:{extracted / hex_digest}",
                f"docker://{destination.host}/compat/layout:p-{hex_digest[:16]}"])
    return digest_file.read_text().strip()


def test_archive_platform_directories_copy_with_skopeo_at_their_digest(
        registry_plain, seed, tmp_registry, tmp_path):
    images = seed(registry_plain)
    keys = ("library/alpine:3.20", "library/busybox:1.36", "library/hello:v2",
            "library/hello:oci", "library/attested:1.0")
    archive = tmp_path / "standard.zip"
    save_standard_images(registry_plain, keys, archive, tmp_path)
    extracted = tmp_path / "extracted"
    subprocess.run(["unzip", "-q", str(archive), "-d", str(extracted)], check=True)
    destination = tmp_registry("plain")

    layouts = sorted(path.parent.name for path in extracted.glob("*/oci-layout"))
    with ThreadPoolExecutor(max_workers=SKOPEO_WORKERS) as pool:
        copied = dict(zip(layouts, pool.map(
            lambda hex_digest: copy_layout(extracted, hex_digest, destination), layouts)))

    expected = {digest for key in keys for digest in platform_digests(images[key])}
    assert {f"sha256:{hex_digest}" for hex_digest in layouts} == expected
    for hex_digest, digest in copied.items():
        assert digest == f"sha256:{hex_digest}"
        assert sha256_of(raw_manifest(destination, "compat/layout", digest)) == digest


def skopeo_layout(registry, repository: str, digest: str, workdir: Path) -> None:
    """Write platform manifest ``digest`` as ``workdir/<hex>`` with blobs in ``workdir/share``."""
    hex_digest = digest.split(":", 1)[1]
    run_skopeo(["copy", "--quiet", "--preserve-digests", *registry.skopeo_args("src"),
                f"--dest-shared-blob-dir={workdir / 'share'}",
                f"docker://{registry.host}/{repository}@{digest}", f"oci:{workdir / hex_digest}"])


def blob(workdir: Path, digest: str) -> bytes:
    return (workdir / "share" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def spec_for(workdir: Path, descriptor: dict) -> dict:
    """The Hangar index spec of one platform manifest, platform taken from its descriptor."""
    manifest = json.loads(blob(workdir, descriptor["digest"]))
    platform = descriptor.get("platform") or {}
    spec = {
        "arch": platform.get("architecture", ""),
        "os": platform.get("os", ""),
        "variant": platform.get("variant", ""),
        "mediaType": descriptor["mediaType"],
        "layers": [layer["digest"] for layer in manifest["layers"]],
        "config": manifest["config"]["digest"],
        "digest": descriptor["digest"],
        "annotations": descriptor.get("annotations", {}),
    }
    return {key: value for key, value in spec.items() if value}


def top_descriptors(registry, key: str) -> list:
    """The platform descriptors of a seeded tag; a single manifest is its own descriptor,
    its platform filled in from its config by :func:`fill_single_platform`."""
    repository, tag = key.split(":")
    raw = inspect_raw(registry, repository, tag)
    document = json.loads(raw)
    if "manifests" in document:
        return document["manifests"]
    return [{"mediaType": document["mediaType"], "digest": sha256_of(raw), "size": len(raw)}]


def fill_single_platform(workdir: Path, descriptor: dict) -> None:
    if "platform" not in descriptor:
        manifest = json.loads(blob(workdir, descriptor["digest"]))
        config = json.loads(blob(workdir, manifest["config"]["digest"]))
        descriptor["platform"] = {"architecture": config["architecture"], "os": config["os"]}


def hangar_index(registry, keys, workdir: Path) -> dict:
    """Write every platform of ``keys`` with skopeo and describe them as Hangar's index does."""
    descriptors = {key: top_descriptors(registry, key) for key in keys}
    copies = [(key.split(":")[0], descriptor["digest"])
              for key in keys for descriptor in descriptors[key]]
    with ThreadPoolExecutor(max_workers=SKOPEO_WORKERS) as pool:
        list(pool.map(lambda copy: skopeo_layout(registry, *copy, workdir), copies))

    entries = []
    for key in keys:
        repository, tag = key.split(":")
        for descriptor in descriptors[key]:
            fill_single_platform(workdir, descriptor)
        specs = [spec_for(workdir, descriptor) for descriptor in descriptors[key]]
        entries.append({
            "source": f"{registry.host}/{repository}",
            "tag": tag,
            "archList": sorted({spec["arch"] for spec in specs}),
            "osList": sorted({spec["os"] for spec in specs}),
            "images": specs,
        })
    return {"list": entries, "version": "v1.2.0", "time": "2025-02-13T18:56:27.811246587+08:00"}


def add_directory(archive: zipfile.ZipFile, name: str, written: set) -> None:
    if name not in written:
        written.add(name)
        archive.writestr(hangar_member(name), b"")


def hangar_member(name: str) -> zipfile.ZipInfo:
    """A member as Go's zip writer makes it for Hangar: stored, MS-DOS host, no attributes."""
    info = zipfile.ZipInfo(name, HANGAR_TIME)
    info.create_system = 0
    info.external_attr = 0
    info.compress_type = zipfile.ZIP_STORED
    return info


def zip_like_hangar(workdir: Path, index: dict, archive_path: Path) -> None:
    """Zip the layouts with directory entries, platform directories first, index.json last."""
    written: set = set()
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_STORED) as archive:
        for layout in sorted(workdir.glob("*/oci-layout")):
            hex_digest = layout.parent.name
            add_directory(archive, f"{hex_digest}/", written)
            add_directory(archive, f"{hex_digest}/blobs/", written)
            for name in ("index.json", "oci-layout"):
                archive.writestr(hangar_member(f"{hex_digest}/{name}"),
                                 (layout.parent / name).read_bytes())
        add_directory(archive, "share/", written)
        add_directory(archive, "share/sha256/", written)
        for path in sorted((workdir / "share" / "sha256").iterdir()):
            archive.writestr(hangar_member(f"share/sha256/{path.name}"), path.read_bytes())
        archive.writestr(hangar_member("index.json"),
                         json.dumps(index, separators=(",", ":")).encode())


def test_hand_built_hangar_archive_loads_with_the_source_platform_digests(
        registry_plain, seed, tmp_registry, tmp_path):
    images = seed(registry_plain)
    layouts = tmp_path / "layouts"
    layouts.mkdir()
    archive = tmp_path / "hand-built.zip"
    zip_like_hangar(layouts, hangar_index(registry_plain, HAND_BUILT, layouts), archive)
    with ArchiveReader(str(archive)) as reader:
        assert verify_archive(reader) == []
    destination = tmp_registry("plain")

    result = run_module("hangar_load", {
        "src": str(archive), "dest_registry": f"http://{destination.host}", "arch": ["*"],
    }, tmp_path)

    assert not result.get("failed"), result.get("msg")
    assert [image["action"] for image in result["images"]] == ["copied"] * len(HAND_BUILT)
    for key in HAND_BUILT:
        repository, tag = key.split(":")
        loaded = json.loads(raw_manifest(destination, repository, tag))
        assert loaded["mediaType"] == OCI_INDEX
        assert [item["digest"] for item in loaded["manifests"]] == platform_digests(images[key])
        attestations = [item for item in loaded["manifests"]
                        if item.get("annotations", {}).get(ATTESTATION_TYPE)]
        assert len(attestations) == len(images[key]["attestations"])
        for item in loaded["manifests"]:
            assert sha256_of(raw_manifest(destination, repository, item["digest"])) \
                == item["digest"]
