# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load with faults: 20 images of 3 platforms mirrored with 8 jobs through flaky links.

One proxy resets 5 % of the blob downloads, another 5 % of the blob uploads, both with seeded
draws, so the same blobs fail on every run. Every image must arrive with the digest of its
source, as skopeo reads it at the destination.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.reliability.conftest import push_blob, push_manifest
from tests.support.images import BuiltImage, build_image, inspect_raw

IMAGES = 20
PLATFORMS = ("linux/amd64", "linux/arm64/v8", "linux/s390x")
FAULT_RATE = 0.05


def push_built(registry, built: BuiltImage, repository: str, tag: str) -> None:
    """Push a built image over plain HTTP: blobs, platform manifests, then the tagged index."""
    for blob in built.blobs:
        data = (built.layout_dir / "blobs" / "sha256" / blob.digest.split(":")[1]).read_bytes()
        push_blob(registry, repository, data)
    for digest, raw in built.manifests.items():
        if digest != built.digest:
            push_manifest(registry, repository, digest, raw, json.loads(raw)["mediaType"])
    push_manifest(registry, repository, tag, built.raw, built.media_type)


def test_mirror_of_20_multi_platform_images_survives_5_percent_resets(
        tmp_registry, fault_proxy, run_module, tmp_path):
    source, dest = tmp_registry("plain"), tmp_registry("plain")
    built = [build_image(tmp_path / "layouts", f"image-{number:02d}", platforms=PLATFORMS,
                         layer_sizes=(2048,), seed=number) for number in range(IMAGES)]
    for image in built:
        push_built(source, image, f"load/{image.name}", "1.0")
    downloads = fault_proxy(source, name="downloads")
    downloads.arm("reset", method="GET", path="/blobs/sha256:", probability=FAULT_RATE, seed=7)
    uploads = fault_proxy(dest, name="uploads")
    uploads.arm("reset", method="PUT", path="/blobs/uploads/", direction="request",
                probability=FAULT_RATE, seed=11)

    outcome = run_module("hangar_mirror", images=[f"load/{i.name}:1.0" for i in built],
                         src_registry=downloads.url, dest_registry=uploads.url, arch=["*"],
                         jobs=8)

    assert not outcome.failed, outcome.msg
    assert outcome.result["summary"]["copied"] == IMAGES
    assert faults(downloads) > 0 and faults(uploads) > 0
    with ThreadPoolExecutor(4) as pool:
        copies = list(pool.map(lambda i: inspect_raw(dest, f"load/{i.name}", "1.0"), built))
    assert [raw == image.raw for raw, image in zip(copies, built)] == [True] * IMAGES


def faults(proxy) -> int:
    return sum(1 for record in proxy.requests if record.fault == "reset")
