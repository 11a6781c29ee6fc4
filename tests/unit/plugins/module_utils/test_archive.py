# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests of the Hangar archive reader/writer and index model, on archives built in tmp_path."""

from __future__ import annotations

import gzip
import datetime
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import threading
import time
import warnings
import zipfile

import pytest

from ansible_collections.airgap.hangar.plugins.module_utils import archive
from ansible_collections.airgap.hangar.plugins.module_utils.archive import (
    ArchiveDigestError,
    ArchiveError,
    ArchiveFormatError,
    ArchiveMissingBlobError,
    ArchiveReader,
    ArchiveSpaceError,
    ArchiveWriter,
    blob_member_name,
    ensure_free_space,
    layout_member_names,
    recover_archive,
)
from ansible_collections.airgap.hangar.plugins.module_utils.archive_index import (
    SOURCE_INDEX_KEY,
    ArchiveIndex,
    ImageEntry,
    ImageSpec,
    SourceIndex,
    format_index_time,
)
from ansible_collections.airgap.hangar.plugins.module_utils.media_types import (
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
)

MiB = 1 << 20


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha256(path) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class FakeImage:
    """Random layers, a config and a manifest for one platform, plus their index spec."""

    def __init__(self, arch: str = "amd64", layer_sizes=(2000, 3000), media_type=OCI_MANIFEST):
        self.layers = [os.urandom(size) for size in layer_sizes]
        self.config = json.dumps({"architecture": arch, "os": "linux"}).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": OCI_CONFIG, "digest": digest_of(self.config),
                       "size": len(self.config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)}
                       for layer in self.layers],
        }
        self.manifest = json.dumps(manifest, indent=3).encode()
        self.digest = digest_of(self.manifest)
        self.spec = ImageSpec(
            digest=self.digest, media_type=media_type, arch=arch, os="linux",
            variant="v8" if arch == "arm64" else "",
            layers=[digest_of(layer) for layer in self.layers], config=digest_of(self.config),
        )

    @property
    def blobs(self) -> dict:
        blobs = {digest_of(blob): blob for blob in [self.config, *self.layers]}
        blobs[self.digest] = self.manifest
        return blobs

    def store(self, writer: ArchiveWriter) -> None:
        for layer in self.layers:
            writer.add_blob(digest_of(layer), len(layer), iter([layer[:700], layer[700:]]))
        writer.add_blob(digest_of(self.config), len(self.config), io.BytesIO(self.config))
        writer.add_platform_manifest(self.digest, self.manifest)


def attestation_for(image: FakeImage) -> FakeImage:
    attestation = FakeImage(arch="unknown", layer_sizes=(500,))
    attestation.spec.os = "unknown"
    attestation.spec.annotations = {
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": image.digest,
    }
    return attestation


def save(path, entries) -> None:
    """Write an archive holding ``entries``: (source, tag, [FakeImage, ...]) triples."""
    with ArchiveWriter(path) as writer:
        for source, tag, images in entries:
            for image in images:
                image.store(writer)
            writer.add_image(ImageEntry.build(source, tag, [image.spec for image in images]))
        writer.commit()


@pytest.fixture
def two_images(tmp_path):
    """An archive with a two-platform image (plus attestation) and a single-platform image."""
    amd64, arm64, single = FakeImage("amd64"), FakeImage("arm64"), FakeImage("amd64")
    attestation = attestation_for(amd64)
    path = tmp_path / "saved.zip"
    save(path, [
        ("docker.io/library/nginx", "1.22", [amd64, arm64, attestation]),
        ("quay.io/skopeo/stable", "v1", [single]),
    ])
    blobs = {}
    for image in (amd64, arm64, attestation, single):
        blobs.update(image.blobs)
    return path, blobs


def unzip_test(path) -> str:
    if not shutil.which("unzip"):
        pytest.skip("unzip is not installed (apt-get install unzip)")
    result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def member_data_offset(path, name: str) -> int:
    with zipfile.ZipFile(path) as archive_zip:
        info = archive_zip.getinfo(name)
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


def flip_byte(path, offset: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        value = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([value ^ 0x01]))


# --- round trips ----------------------------------------------------------------------------


def test_archive_round_trip_keeps_entries_and_blobs(two_images):
    path, blobs = two_images

    reader = ArchiveReader(path)

    assert [entry.reference for entry in reader.images] == [
        "docker.io/library/nginx:1.22", "quay.io/skopeo/stable:v1",
    ]
    assert reader.images[0].arch_list == ["amd64", "arm64", "unknown"]
    assert reader.images[0].os_list == ["linux", "unknown"]
    for digest, data in blobs.items():
        assert reader.read_blob(digest) == data
        with reader.open_blob(digest, size=len(data)) as blob:
            assert blob.read() == data
    for entry in reader.images:
        reader.check_image(entry)
        for spec in entry.specs:
            descriptor = reader.read_layout_descriptor(spec.digest)
            assert descriptor == {"mediaType": OCI_MANIFEST, "digest": spec.digest,
                                  "size": len(blobs[spec.digest])}


def test_archive_unzip_t_accepts_written_archive(two_images):
    path, blobs = two_images

    output = unzip_test(path)

    assert "No errors detected" in output
    assert output.count("OK") == len(blobs) + 2 * 4 + 1


def test_archive_members_are_stored_0644_with_one_index_json_last(two_images):
    path = two_images[0]

    with zipfile.ZipFile(path) as archive_zip:
        infos = archive_zip.infolist()

    assert [info.filename for info in infos].count("index.json") == 1
    assert infos[-1].filename == "index.json"
    assert {info.compress_type for info in infos} == {zipfile.ZIP_STORED}
    assert {info.external_attr >> 16 for info in infos} == {stat.S_IFREG | 0o644}
    assert {info.create_system for info in infos} == {3}
    assert not any(info.filename.endswith("/") for info in infos)
    # Sizes and CRC sit in the local header; no data descriptor follows the data.
    assert not any(info.flag_bits & 0x08 for info in infos)


def test_archive_layout_members_match_hangar_bytes(two_images):
    path, blobs = two_images
    reader = ArchiveReader(path)
    spec = reader.images[1].specs[0]
    index_name, layout_name = layout_member_names(spec.digest)

    with zipfile.ZipFile(path) as archive_zip:
        layout_index = archive_zip.read(index_name)
        oci_layout = archive_zip.read(layout_name)

    assert oci_layout == b'{"imageLayoutVersion":"1.0.0"}'
    assert layout_index == (
        b'{"schemaVersion":2,"manifests":[{"mediaType":"' + OCI_MANIFEST.encode()
        + b'","digest":"' + spec.digest.encode() + b'","size":'
        + str(len(blobs[spec.digest])).encode() + b"}]}"
    )


def test_archive_zip64_records_read_back_when_forced(tmp_path, monkeypatch):
    # Lowering the thresholds makes every size, offset and count take the ZIP64 path that a
    # >4 GiB member or a 65535-member archive takes, while the archive stays a few KiB.
    monkeypatch.setattr(archive, "_ZIP64_LIMIT", 0)
    monkeypatch.setattr(archive, "_ZIP64_COUNT_LIMIT", 0)
    image = FakeImage()
    path = tmp_path / "zip64.zip"
    save(path, [("docker.io/library/nginx", "1.22", [image])])
    extra = os.urandom(100)
    with ArchiveWriter(path, append=True) as writer:
        writer.add_blob(digest_of(extra), len(extra), extra)
        writer.commit()

    raw = path.read_bytes()
    with zipfile.ZipFile(path) as archive_zip:
        assert archive_zip.testzip() is None
        assert archive_zip.read(blob_member_name(digest_of(extra))) == extra
    reader = ArchiveReader(path)

    assert b"PK\x06\x06" in raw and b"PK\x06\x07" in raw
    assert struct.unpack("<I", raw[-6:-2])[0] == 0xFFFFFFFF  # end record offset field maxed
    assert "No errors detected" in unzip_test(path)
    assert reader.read_blob(image.digest) == image.manifest
    assert reader.read_blob(digest_of(extra)) == extra
    assert reader.images[0].specs == [image.spec]


GO_READER = """
package main

import (
    "archive/zip"
    "fmt"
    "io"
    "os"
)

func main() {
    r, err := zip.OpenReader(os.Args[1])
    if err != nil {
        panic(err)
    }
    for i := range r.File {
        f := r.File[i]
        rc, err := f.Open()
        if err != nil {
            panic(err)
        }
        n, err := io.Copy(io.Discard, rc)
        if err != nil {
            panic(fmt.Sprintf("%s: %v", f.Name, err))
        }
        fmt.Printf("%s %d %v %d\\n", f.Name, n, f.Mode(), f.Method)
    }
}
"""


@pytest.mark.parametrize("forced_zip64", [False, True], ids=["plain", "zip64"])
def test_archive_go_archive_zip_reads_written_archive(tmp_path, monkeypatch, forced_zip64):
    if not shutil.which("go"):
        pytest.skip("Go is not installed (apt-get install golang-go); Hangar reads with Go")
    if forced_zip64:
        monkeypatch.setattr(archive, "_ZIP64_LIMIT", 0)
        monkeypatch.setattr(archive, "_ZIP64_COUNT_LIMIT", 0)
    image = FakeImage()
    path = tmp_path / "saved.zip"
    save(path, [("docker.io/library/nginx", "1.22", [image])])
    program = tmp_path / "read.go"
    program.write_text(GO_READER)

    result = subprocess.run(
        ["go", "run", str(program), str(path)], capture_output=True, text=True, check=False,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "off"},
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert f"{blob_member_name(image.digest)} {len(image.manifest)} -rw-r--r-- 0" in lines
    assert lines[-2].startswith("index.json ")


# --- index model ----------------------------------------------------------------------------


def test_index_to_json_uses_hangar_keys_order_and_omits_empty_values():
    spec = ImageSpec(
        digest="sha256:" + "b" * 64, media_type=DOCKER_MANIFEST, arch="arm64", os="linux",
        variant="v8", layers=["sha256:" + "c" * 64], config="sha256:" + "d" * 64,
        annotations={"z": "1", "a": "2"},
    )
    index = ArchiveIndex(
        images=[ImageEntry.build("docker.io/library/nginx", "1.22", [spec])],
        time="2025-02-13T18:56:27.811246587+08:00",
    )

    text = index.to_json()

    assert text == (
        '{"list":[{"source":"docker.io/library/nginx","tag":"1.22","archList":["arm64"],'
        '"osList":["linux"],"images":[{"arch":"arm64","os":"linux","variant":"v8",'
        f'"mediaType":"{DOCKER_MANIFEST}","layers":["sha256:{"c" * 64}"],'
        f'"config":"sha256:{"d" * 64}","digest":"sha256:{"b" * 64}",'
        '"annotations":{"a":"2","z":"1"}}]}],"version":"v1.2.0",'
        '"time":"2025-02-13T18:56:27.811246587+08:00"}'
    )


def test_index_to_json_of_empty_index_matches_hangar_archive_init():
    index = ArchiveIndex(time="2025-02-13T18:56:27Z")

    assert index.to_json() == '{"version":"v1.2.0","time":"2025-02-13T18:56:27Z"}'


def test_index_from_json_keeps_unknown_keys_and_source_index_on_rewrite():
    digest = "sha256:" + "a" * 64
    text = json.dumps({
        "list": [{
            "source": "docker.io/library/nginx", "tag": "1.22", "future": [1],
            "images": [{"arch": "amd64", "os": "linux", "digest": digest, "newField": "x"}],
            SOURCE_INDEX_KEY: {"mediaType": OCI_INDEX, "digest": digest, "size": 10},
        }],
        "version": "v1.3.0", "time": "2025-02-13T18:56:27Z", "top": {"k": "v"},
    })

    index = ArchiveIndex.from_json(text)
    again = json.loads(index.to_json())

    assert index.images[0].source_index == SourceIndex(OCI_INDEX, digest, 10)
    assert again["top"] == {"k": "v"}
    assert again["version"] == "v1.3.0"
    assert again["list"][0]["future"] == [1]
    assert again["list"][0]["images"][0]["newField"] == "x"
    assert again["list"][0][SOURCE_INDEX_KEY] == {
        "mediaType": OCI_INDEX, "digest": digest, "size": 10,
    }


@pytest.mark.parametrize("moment, expected", [
    (datetime.datetime(2025, 2, 13, 18, 56, 27, 811246,
                       datetime.timezone(datetime.timedelta(hours=8))),
     "2025-02-13T18:56:27.811246+08:00"),
    (datetime.datetime(2025, 2, 13, 18, 56, 27, 500000, datetime.timezone.utc),
     "2025-02-13T18:56:27.5Z"),
    (datetime.datetime(2025, 2, 13, 18, 56, 27, 0,
                       datetime.timezone(-datetime.timedelta(hours=5, minutes=30))),
     "2025-02-13T18:56:27-05:30"),
], ids=["offset", "utc", "negative-whole-second"])
def test_index_time_formats_like_go_rfc3339nano(moment, expected):
    assert format_index_time(moment) == expected


@pytest.mark.parametrize("version", ["v1.2.0", "1.2.0", "v1.10.0", "v99.99.99"])
def test_index_from_json_accepts_version_when_not_older(version):
    index = ArchiveIndex.from_json(json.dumps({"version": version, "time": "2025-01-01T00:00:00Z"}))

    assert index.version == version


def test_select_specs_keeps_attestations_of_kept_platforms_only():
    amd64, arm64 = FakeImage("amd64"), FakeImage("arm64")
    chart = ImageSpec(digest="sha256:" + "e" * 64)
    amd64_att, arm64_att = attestation_for(amd64), attestation_for(arm64)
    entry = ImageEntry.build("docker.io/library/nginx", "1", [
        amd64.spec, arm64.spec, amd64_att.spec, arm64_att.spec, chart,
    ])

    assert entry.select_specs(arches=["amd64"], oses=["linux"]) == [
        amd64.spec, chart, amd64_att.spec,
    ]
    assert entry.select_specs(arches=["amd64"], provenance=False) == [amd64.spec, chart]
    assert entry.select_specs() == [amd64.spec, arm64.spec, chart, amd64_att.spec, arm64_att.spec]


# --- append ---------------------------------------------------------------------------------


def test_writer_append_keeps_old_content_and_one_index(two_images):
    path, blobs = two_images
    before = ArchiveReader(path)
    image = FakeImage("s390x")

    with ArchiveWriter(path, append=True) as writer:
        assert writer.has_blob(next(iter(blobs)))
        image.store(writer)
        writer.add_image(ImageEntry.build("docker.io/library/busybox", "1", [image.spec]))
        writer.commit()
    after = ArchiveReader(path)

    assert [entry.reference for entry in after.images] == [
        "docker.io/library/nginx:1.22", "quay.io/skopeo/stable:v1",
        "docker.io/library/busybox:1",
    ]
    assert (after.index.time, after.index.version) == (before.index.time, before.index.version)
    assert after.names()[:-1] == [name for name in before.names() if name != "index.json"] + [
        blob_member_name(digest_of(layer)) for layer in image.layers
    ] + [blob_member_name(digest_of(image.config)), blob_member_name(image.digest),
         *layout_member_names(image.digest)]
    assert after.names().count("index.json") == 1
    for digest, data in {**blobs, **image.blobs}.items():
        assert after.read_blob(digest) == data
    assert not os.path.exists(str(path) + archive.JOURNAL_SUFFIX)
    assert "No errors detected" in unzip_test(path)


def test_writer_replace_image_drops_every_entry_with_the_same_tag(two_images):
    path = two_images[0]
    image = FakeImage()
    entry = ImageEntry.build("quay.io/skopeo/stable", "v1", [image.spec])

    with ArchiveWriter(path, append=True) as writer:
        image.store(writer)
        writer.add_image(entry)
        writer.replace_image(entry)
        writer.commit()

    assert [spec.digest for e in ArchiveReader(path).images for spec in e.specs][-1:] == [
        image.digest
    ]
    assert [e.reference for e in ArchiveReader(path).images] == [
        "docker.io/library/nginx:1.22", "quay.io/skopeo/stable:v1",
    ]


def test_writer_abort_of_append_restores_archive_bytes(two_images):
    path = two_images[0]
    original = file_sha256(path)
    data = os.urandom(5000)

    with ArchiveWriter(path, append=True) as writer:
        writer.add_blob(digest_of(data), len(data), data)

    assert file_sha256(path) == original
    assert not os.path.exists(str(path) + archive.JOURNAL_SUFFIX)


def test_writer_append_fails_while_another_append_runs(two_images):
    path = two_images[0]

    with ArchiveWriter(path, append=True):
        with pytest.raises(ArchiveError, match="being appended to by another process"):
            ArchiveWriter(path, append=True)
        with pytest.raises(ArchiveError, match="being appended to by another process"):
            ArchiveReader(path)


CHILD_APPEND = """
import os, signal, sys, time, hashlib
from ansible_collections.airgap.hangar.plugins.module_utils.archive import ArchiveWriter

path, kill_at = sys.argv[1], sys.argv[2]

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

def slow_chunks(data):
    for start in range(0, len(data), 256 * 1024):
        yield data[start:start + 256 * 1024]
        if start == 4 * 256 * 1024:
            print("writing", flush=True)
        time.sleep(0.02)

if kill_at == "journal":
    os.replace = die
writer = ArchiveWriter(path, append=True)
data = bytes(range(256)) * (32 * 1024)  # 8 MiB
digest = "sha256:" + hashlib.sha256(data).hexdigest()
if kill_at == "blob":
    writer.add_blob(digest, len(data), slow_chunks(data))
writer.add_blob(digest, len(data), data)
if kill_at == "fsync":
    os.fsync = die
if kill_at == "unlink":
    os.unlink = die
writer.commit()
print("committed", flush=True)
"""


def run_killed_append(tmp_path, path, kill_at: str) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD_APPEND)
    child = subprocess.Popen(
        [sys.executable, str(script), str(path), kill_at],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    if kill_at == "blob":
        assert child.stdout.readline() == "writing\n"
        child.kill()
    output = child.communicate(timeout=30)[0]
    assert child.returncode == -9
    assert "committed" not in output


@pytest.mark.parametrize("kill_at", ["journal", "blob", "fsync", "unlink"])
@pytest.mark.parametrize("opener", ["reader", "appender"])
def test_writer_append_killed_leaves_previous_archive(two_images, tmp_path, kill_at, opener):
    path, blobs = two_images
    original = file_sha256(path)

    run_killed_append(tmp_path, path, kill_at)
    damaged = file_sha256(path) != original
    if opener == "reader":
        reader = ArchiveReader(path)
        assert file_sha256(path) == original
        assert len(reader.images) == 2
    data = os.urandom(3000)
    with ArchiveWriter(path, append=True) as writer:
        writer.add_blob(digest_of(data), len(data), data)
        writer.commit()
    reader = ArchiveReader(path)

    # Killed mid-blob or in commit, the old index and central directory were overwritten.
    assert damaged == (kill_at != "journal")
    assert reader.names().count("index.json") == 1
    assert reader.read_blob(digest_of(data)) == data
    for digest, content in blobs.items():
        assert reader.read_blob(digest) == content
    assert [entry.reference for entry in reader.images] == [
        "docker.io/library/nginx:1.22", "quay.io/skopeo/stable:v1",
    ]
    assert sorted(os.listdir(tmp_path)) == ["child.py", "saved.zip"]


def test_recover_archive_reports_nothing_to_do_without_journal(two_images):
    path = two_images[0]

    assert recover_archive(path) is False


def test_writer_append_reads_archive_laid_out_like_hangar_v1_9(tmp_path):
    path, image = hangar_v1_9_archive(tmp_path)
    extra = os.urandom(4000)

    with ArchiveWriter(path, append=True) as writer:
        writer.add_blob(digest_of(extra), len(extra), extra)
        writer.commit()
    reader = ArchiveReader(path)

    assert reader.read_blob(digest_of(extra)) == extra
    for digest, data in image.blobs.items():
        assert reader.read_blob(digest) == data
    assert "share/" in reader.names()
    assert "No errors detected" in unzip_test(path)


# --- writer checks and clean-up -------------------------------------------------------------


def test_writer_add_blob_drops_member_when_digest_mismatches(tmp_path):
    path = tmp_path / "saved.zip"
    good, bad = os.urandom(3000), os.urandom(3000)

    with ArchiveWriter(path) as writer:
        with pytest.raises(ArchiveDigestError, match="content with digest") as caught:
            writer.add_blob(digest_of(good), len(good), bad)
        with pytest.raises(ArchiveDigestError, match="more than the 10 bytes"):
            writer.add_blob(digest_of(good), 10, good)
        with pytest.raises(ArchiveDigestError, match="2999 bytes, not 3000"):
            writer.add_blob(digest_of(good), len(good), good[:-1])
        assert not writer.has_blob(digest_of(good))
        writer.add_blob(digest_of(bad), len(bad), bad)
        writer.commit()
    reader = ArchiveReader(path)

    assert str(path) in str(caught.value)
    assert reader.names() == [blob_member_name(digest_of(bad)), "index.json"]
    assert not reader.has_blob(digest_of(good))
    assert "No errors detected" in unzip_test(path)


def test_writer_add_blob_drops_member_when_source_fails(tmp_path):
    path = tmp_path / "saved.zip"
    data = os.urandom(3 * MiB)

    def broken_download():
        yield data[:MiB]
        raise ConnectionError("connection reset by registry")

    with ArchiveWriter(path) as writer:
        with pytest.raises(ConnectionError):
            writer.add_blob(digest_of(data), len(data), broken_download())
        writer.add_blob(digest_of(data), len(data), data)
        writer.commit()

    assert ArchiveReader(path).read_blob(digest_of(data), limit=len(data)) == data
    assert path.stat().st_size < len(data) + 4096


def test_writer_add_image_refuses_entry_with_unstored_members(tmp_path):
    image = FakeImage()

    with ArchiveWriter(tmp_path / "saved.zip") as writer:
        writer.add_platform_manifest(image.digest, image.manifest)
        with pytest.raises(ArchiveMissingBlobError, match="not stored yet, first share/sha256/"):
            writer.add_image(ImageEntry.build("docker.io/library/nginx", "1", [image.spec]))


def test_writer_add_platform_manifest_refuses_bytes_of_another_digest(tmp_path):
    image = FakeImage()

    with ArchiveWriter(tmp_path / "saved.zip") as writer:
        with pytest.raises(ArchiveDigestError, match="nothing was stored"):
            writer.add_platform_manifest(image.digest, image.manifest + b" ")
        assert not writer.has_blob(image.digest)


def test_writer_abort_or_exception_leaves_no_file(tmp_path):
    path = tmp_path / "saved.zip"
    data = os.urandom(1000)

    with ArchiveWriter(path) as writer:
        writer.add_blob(digest_of(data), len(data), data)
    with pytest.raises(RuntimeError):
        with ArchiveWriter(path) as writer:
            writer.add_blob(digest_of(data), len(data), data)
            raise RuntimeError("engine failed")

    assert os.listdir(tmp_path) == []


def test_writer_replaces_existing_destination_only_on_commit(two_images):
    path = two_images[0]
    image = FakeImage()

    with ArchiveWriter(path) as writer:
        image.store(writer)
        writer.add_image(ImageEntry.build("docker.io/library/nginx", "new", [image.spec]))
        assert len(ArchiveReader(path).images) == 2
        writer.commit()

    assert [entry.reference for entry in ArchiveReader(path).images] == [
        "docker.io/library/nginx:new"
    ]
    assert os.listdir(path.parent) == ["saved.zip"]


def test_writer_removes_temp_files_of_dead_writers(tmp_path):
    path = tmp_path / "saved.zip"
    stale = tmp_path / ".saved.zip.0123456789ab.hangar-tmp"
    stale.write_bytes(b"partial save")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    with ArchiveWriter(path) as writer:
        writer.commit()

    assert os.listdir(tmp_path) == ["saved.zip"]


def test_writer_copy_image_from_keeps_only_requested_images(two_images):
    path, blobs = two_images
    old = ArchiveReader(path)
    kept = old.images[1]

    with ArchiveWriter(path) as writer:
        writer.copy_image_from(old, kept)
        writer.commit()
    new = ArchiveReader(path)

    assert [entry.to_dict() for entry in new.images] == [kept.to_dict()]
    assert len(new.names()) == len(kept.specs[0].blob_digests()) + 2 + 1
    for digest in kept.iter_blob_digests():
        assert new.read_blob(digest) == blobs[digest]


def test_writer_stores_source_index_blob_and_key(tmp_path):
    path = tmp_path / "saved.zip"
    image = FakeImage()
    top = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)},
    ]}).encode()
    source_index = SourceIndex(OCI_INDEX, digest_of(top), len(top))

    with ArchiveWriter(path) as writer:
        image.store(writer)
        with pytest.raises(ArchiveFormatError, match="not a platform manifest"):
            writer.add_platform_manifest(digest_of(top), top)
        writer.add_blob(digest_of(top), len(top), top)
        writer.add_image(ImageEntry.build("docker.io/library/nginx", "1", [image.spec],
                                          source_index=source_index))
        writer.commit()
    reader = ArchiveReader(path)

    assert reader.images[0].source_index == source_index
    assert reader.read_blob(source_index.digest) == top


def fill_slot(writer, blob, chunk=65_536, digest=None):
    with writer.reserve_blob(digest or digest_of(blob), len(blob)) as slot:
        for start in range(0, len(blob), chunk):
            slot.write(blob[start:start + chunk])


def test_writer_parallel_slots_are_all_stored_and_pass_unzip(tmp_path):
    path = tmp_path / "saved.zip"
    blobs = [os.urandom(200_000 + n) for n in range(8)]

    with ArchiveWriter(path) as writer:
        threads = [threading.Thread(target=fill_slot, args=(writer, blob)) for blob in blobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        writer.commit()
    reader = ArchiveReader(path)

    assert all(reader.read_blob(digest_of(blob)) == blob for blob in blobs)
    assert "No errors detected" in unzip_test(path)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None


def test_writer_reserve_of_a_stored_blob_gives_none(tmp_path):
    blob = os.urandom(1000)

    with ArchiveWriter(tmp_path / "saved.zip") as writer:
        fill_slot(writer, blob)

        assert writer.reserve_blob(digest_of(blob), len(blob)) is None


def test_writer_closes_the_gap_of_a_failed_slot(tmp_path):
    path = tmp_path / "saved.zip"
    first, failing, last = (os.urandom(300_000 + n) for n in range(3))

    with ArchiveWriter(path) as writer:
        fill_slot(writer, first)
        broken = writer.reserve_blob(digest_of(failing), len(failing))
        fill_slot(writer, last)
        with pytest.raises(ConnectionResetError):
            with broken:
                broken.write(failing[:1000])
                raise ConnectionResetError("registry closed the connection")
        writer.commit()
    reader = ArchiveReader(path)

    assert reader.read_blob(digest_of(first)) == first
    assert reader.read_blob(digest_of(last)) == last
    assert not reader.has_blob(digest_of(failing))
    # Without the failed blob's room: the members and the central directory follow each other.
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        stored = sum(len(info.FileHeader()) + info.file_size for info in archive.infolist())
        assert os.path.getsize(path) < stored + 2000


def test_append_closes_the_gap_of_a_failed_slot_and_keeps_old_members(two_images):
    path, blobs = two_images
    failing, kept = os.urandom(100_000), os.urandom(120_000)

    with ArchiveWriter(path, append=True) as writer:
        broken = writer.reserve_blob(digest_of(failing), len(failing))
        fill_slot(writer, kept)
        with pytest.raises(ConnectionResetError):
            with broken:
                raise ConnectionResetError("registry closed the connection")
        writer.commit()
    after = ArchiveReader(path)

    assert after.read_blob(digest_of(kept)) == kept
    assert not after.has_blob(digest_of(failing))
    for digest, data in blobs.items():
        assert after.read_blob(digest) == data
    assert "No errors detected" in unzip_test(path)
    assert os.path.getsize(path) < 100_000 + sum(map(len, blobs.values())) + len(kept)


def test_writer_slot_rejects_wrong_content_and_keeps_nothing(tmp_path):
    path = tmp_path / "saved.zip"
    blob = os.urandom(10_000)

    with ArchiveWriter(path) as writer:
        with pytest.raises(ArchiveDigestError, match="content with digest"):
            fill_slot(writer, blob[:-1] + b"x", digest=digest_of(blob))
        writer.commit()

    assert not ArchiveReader(path).has_blob(digest_of(blob))


def test_writer_slot_stops_before_writing_past_its_size(tmp_path):
    blob = os.urandom(10_000)

    with ArchiveWriter(tmp_path / "saved.zip") as writer:
        with pytest.raises(ArchiveDigestError, match="more than the 10000 bytes"):
            with writer.reserve_blob(digest_of(blob), len(blob)) as slot:
                slot.write(blob + b"tail")


def test_writer_commit_refuses_while_a_slot_is_open(tmp_path):
    blob = os.urandom(1000)

    with ArchiveWriter(tmp_path / "saved.zip") as writer:
        slot = writer.reserve_blob(digest_of(blob), len(blob))

        with pytest.raises(ArchiveError, match="1 blob\\(s\\) are still being written"):
            writer.commit()
        slot.write(blob)


def test_ensure_free_space_raises_when_file_system_is_short(tmp_path):
    free = shutil.disk_usage(tmp_path).free

    ensure_free_space(str(tmp_path), 1)
    with pytest.raises(ArchiveSpaceError, match=f"not enough space in {tmp_path}"):
        ensure_free_space(str(tmp_path), free + (1 << 40))


@pytest.fixture
def tiny_file_system(tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 1 MiB tmpfs needs root")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                            capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {result.stderr!r}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_writer_out_of_space_raises_space_error_and_leaves_no_file(tiny_file_system):
    path = tiny_file_system / "saved.zip"
    data = os.urandom(2 * MiB)

    with ArchiveWriter(path) as writer:
        with pytest.raises(ArchiveSpaceError, match=f"no space left .* {path}") as caught:
            writer.add_blob(digest_of(data), len(data), data)
        with pytest.raises(ArchiveError, match="already committed or aborted"):
            writer.commit()

    assert "partial archive was removed" in str(caught.value)
    assert os.listdir(tiny_file_system) == []


def test_slot_out_of_space_raises_space_error_and_leaves_no_file(tiny_file_system):
    path = tiny_file_system / "saved.zip"
    data = os.urandom(2 * MiB)

    with ArchiveWriter(path) as writer:
        with pytest.raises(ArchiveSpaceError, match=f"no space left .* {path} while writing"):
            fill_slot(writer, data, chunk=MiB)

    assert os.listdir(tiny_file_system) == []


def test_writer_append_out_of_space_restores_archive(tiny_file_system):
    path = tiny_file_system / "saved.zip"
    save(path, [("docker.io/library/nginx", "1", [FakeImage()])])
    original = file_sha256(path)
    data = os.urandom(2 * MiB)

    with ArchiveWriter(path, append=True) as writer:
        with pytest.raises(ArchiveSpaceError, match="restored to its content before the append"):
            writer.add_blob(digest_of(data), len(data), data)

    assert file_sha256(path) == original
    assert os.listdir(tiny_file_system) == ["saved.zip"]
    assert len(ArchiveReader(path).images) == 1


# --- reader checks --------------------------------------------------------------------------


def test_reader_open_blob_raises_at_eof_when_a_byte_flipped(tmp_path):
    path = tmp_path / "saved.zip"
    image = FakeImage(layer_sizes=(3 * MiB,))
    save(path, [("docker.io/library/nginx", "1", [image])])
    layer_digest = digest_of(image.layers[0])
    name = blob_member_name(layer_digest)
    flip_byte(path, member_data_offset(path, name) + 10)
    received = []

    with ArchiveReader(path).open_blob(layer_digest) as blob:
        with pytest.raises(ArchiveDigestError, match=f"member {name} is corrupt") as caught:
            while True:
                chunk = blob.read(MiB)
                if not chunk:
                    break
                received.append(chunk)

    assert sum(map(len, received)) == 2 * MiB
    assert str(path) in str(caught.value)


def test_reader_blob_reports_size_to_requests_body_length(two_images):
    requests_utils = pytest.importorskip("requests.utils")
    path, blobs = two_images
    digest, data = max(blobs.items(), key=lambda item: len(item[1]))

    with ArchiveReader(path).open_blob(digest) as blob:
        assert requests_utils.super_len(blob) == len(data)
        blob.read(100)
        assert blob.tell() == 100
        assert requests_utils.super_len(blob) == len(data) - 100


def test_reader_rejects_blob_size_differing_from_descriptor(two_images):
    path, blobs = two_images
    digest, data = next(iter(blobs.items()))

    with pytest.raises(ArchiveDigestError, match=f"descriptor of {digest} says {len(data) + 1}"):
        ArchiveReader(path).open_blob(digest, size=len(data) + 1)


@pytest.mark.parametrize("keep", [0.5, 0.99], ids=["half", "end-record-cut"])
def test_reader_rejects_truncated_archive(two_images, keep):
    path = two_images[0]
    with open(path, "r+b") as handle:
        handle.truncate(int(path.stat().st_size * keep))

    with pytest.raises(ArchiveFormatError, match=f"archive {path} is truncated"):
        ArchiveReader(path)


def test_reader_rejects_damaged_central_directory(two_images):
    path = two_images[0]
    raw = path.read_bytes()
    flip_byte(path, raw.rindex(b"PK\x01\x02") + 1)

    with pytest.raises(ArchiveFormatError, match="bad central directory signature"):
        ArchiveReader(path)


def test_reader_rejects_overlapping_members(tmp_path):
    path = tmp_path / "saved.zip"
    save(path, [])
    first, second = os.urandom(100), os.urandom(100)
    with ArchiveWriter(path, append=True) as writer:
        writer.add_blob(digest_of(first), 100, first)
        writer.add_blob(digest_of(second), 100, second)
        writer.commit()
    raw = bytearray(path.read_bytes())
    records = [match.start() for match in re.finditer(b"PK\x01\x02", raw)]
    raw[records[1] + 42:records[1] + 46] = raw[records[0] + 42:records[0] + 46]
    path.write_bytes(bytes(raw))

    with pytest.raises(ArchiveFormatError, match="overlaps the next member"):
        ArchiveReader(path)


def write_crafted(path, members, index=None) -> None:
    """A zip made with zipfile holding ``members`` ((ZipInfo or name, data)) and an index."""
    index = index or {"version": "v1.2.0", "time": "2025-01-01T00:00:00Z"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names on purpose
        with zipfile.ZipFile(path, "w") as crafted:
            for info, data in members:
                crafted.writestr(info, data)
            crafted.writestr("index.json", json.dumps(index))


def symlink_member():
    info = zipfile.ZipInfo("share/sha256/" + "a" * 64)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("members, reason", [
    ([("../evil", b"x")], "contains '..'"),
    ([("share/../../evil", b"x")], "contains '..'"),
    ([("/etc/cron.d/evil", b"x")], "is absolute"),
    ([("C:/evil", b"x")], "is absolute"),
    ([("share\\sha256\\evil", b"x")], "contains a backslash"),
    ([("share//evil", b"x")], "empty or '.' path component"),
    ([(symlink_member(), b"/etc/passwd")], "is a symbolic link"),
    ([("index.json", b"{}")], "has the member index.json twice"),
    ([("share/x", b"1"), ("share/x", b"2")], "has the member share/x twice"),
], ids=["zip-slip", "zip-slip-nested", "absolute", "drive", "backslash", "empty-part",
        "symlink", "duplicate-index", "duplicate-blob"])
def test_reader_rejects_crafted_member(tmp_path, members, reason):
    path = tmp_path / "crafted.zip"
    write_crafted(path, members)

    with pytest.raises(ArchiveFormatError, match=reason) as caught:
        ArchiveReader(path)

    assert str(path) in str(caught.value)


def test_reader_rejects_member_name_with_nul_byte(tmp_path):
    path = tmp_path / "crafted.zip"
    write_crafted(path, [("share/sha256/evilXname", b"x")])
    path.write_bytes(path.read_bytes().replace(b"evilXname", b"evil\x00name"))

    with pytest.raises(ArchiveFormatError, match="NUL byte"):
        ArchiveReader(path)


def test_reader_rejects_zip_without_index(tmp_path):
    path = tmp_path / "crafted.zip"
    with zipfile.ZipFile(path, "w") as crafted:
        crafted.writestr("saved-images-list.json", "{}")

    with pytest.raises(ArchiveFormatError, match="has no index.json at its root"):
        ArchiveReader(path)


@pytest.mark.parametrize("version, message", [
    ("v1.1.0", "this tool does not support index version v1.1.0"),
    ("v1.2.0-rc1", "this tool does not support index version v1.2.0-rc1"),
    ("", "failed to compare index version: version is empty string"),
    ("latest", "failed to compare index version: 'latest' is not a semantic version"),
])
def test_reader_rejects_index_version_with_hangar_message(tmp_path, version, message):
    path = tmp_path / "old.zip"
    write_crafted(path, [], {"version": version, "time": "2025-01-01T00:00:00Z"})

    with pytest.raises(ArchiveFormatError, match=message) as caught:
        ArchiveReader(path)

    assert f"archive {path} member index.json" in str(caught.value)


@pytest.mark.parametrize("digest", [
    "sha256:../../etc/passwd",
    "sha256:" + "A" * 64,
    "md5:" + "a" * 32,
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 64 + "\n",
])
def test_reader_rejects_bad_digest_in_index(tmp_path, digest):
    path = tmp_path / "crafted.zip"
    entry = {"source": "docker.io/library/nginx", "tag": "1",
             "images": [{"arch": "amd64", "os": "linux", "digest": "sha256:" + "b" * 64,
                         "layers": ["sha256:" + "c" * 64, digest]}]}
    write_crafted(path, [], {"list": [entry], "version": "v1.2.0"})

    with pytest.raises(ArchiveFormatError, match=r"list\[0\] \(docker.io/library/nginx:1\) "
                                                 r"images\[0\] key 'layers' item 1"):
        ArchiveReader(path)


def test_reader_reports_missing_blob_with_member_name(two_images, tmp_path):
    path = two_images[0]
    reader = ArchiveReader(path)
    entry = reader.images[1]
    lacking = tmp_path / "lacking.zip"
    layer_name = blob_member_name(entry.specs[0].layers[0])
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(lacking, "w") as target:
        for info in source.infolist():
            if info.filename != layer_name:
                target.writestr(info, source.read(info))

    reader = ArchiveReader(lacking)

    assert reader.missing_members(entry) == [layer_name]
    with pytest.raises(ArchiveMissingBlobError,
                       match=f"lacks blob {entry.specs[0].layers[0]} of "):
        reader.check_image(reader.images[1])
    with pytest.raises(ArchiveMissingBlobError, match=f"has no member {layer_name}"):
        reader.open_blob(entry.specs[0].layers[0])


def test_reader_reads_deflated_members(two_images, tmp_path):
    path, blobs = two_images
    deflated = tmp_path / "deflated.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(deflated, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info), zipfile.ZIP_DEFLATED)

    reader = ArchiveReader(deflated)

    assert len(reader.images) == 2
    for digest, data in blobs.items():
        with reader.open_blob(digest) as blob:
            assert blob.read(len(data) + 10) == data


class Unseekable(io.RawIOBase):
    """Makes zipfile write data descriptors, as Go's zip writer (Hangar) does."""

    def __init__(self, handle):
        super().__init__()
        self.handle = handle

    def writable(self):
        return True

    def write(self, data):
        return self.handle.write(data)


def hangar_v1_9_archive(tmp_path):
    """An archive laid out as Hangar v1.7-v1.9.1 writes it: MS-DOS host, attributes 0, data
    descriptors, directory entries, per-image members first and index.json last."""
    image = FakeImage(media_type=DOCKER_MANIFEST)
    hex_ = image.digest.split(":")[1]
    layout = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": image.digest, "size": len(image.manifest)},
    ]}, separators=(",", ":"))
    index = {"list": [{"source": "docker.io/hxstarrys/manifest-v2", "tag": "latest",
                       "archList": ["amd64"], "osList": ["linux"], "images": [{
                           "arch": "amd64", "os": "linux", "mediaType": DOCKER_MANIFEST,
                           "layers": image.spec.layers, "config": image.spec.config,
                           "digest": image.digest}]}],
             "version": "v1.2.0", "time": "2025-02-13T18:56:27.811246587+08:00"}
    members = [(f"{hex_}/", b""), (f"{hex_}/index.json", layout.encode()),
               (f"{hex_}/oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
               ("share/", b""), ("share/sha256/", b"")]
    members += [(blob_member_name(digest), data) for digest, data in image.blobs.items()]
    members.append(("index.json", json.dumps(index, separators=(",", ":")).encode()))

    path = tmp_path / "hangar.zip"
    with open(path, "wb") as handle, zipfile.ZipFile(Unseekable(handle), "w") as written:
        for name, data in members:
            info = zipfile.ZipInfo(name, (2025, 2, 13, 18, 56, 26))
            info.create_system, info.create_version = 0, 20
            info.external_attr = 0x10 if name.endswith("/") else 0
            written.writestr(info, data)
    return path, image


def test_reader_reads_archive_laid_out_like_hangar_v1_9(tmp_path):
    path, image = hangar_v1_9_archive(tmp_path)
    with zipfile.ZipFile(path) as written:
        assert all(info.flag_bits & 0x08 for info in written.infolist())

    reader = ArchiveReader(path)

    entry = reader.images[0]
    assert entry.reference == "docker.io/hxstarrys/manifest-v2:latest"
    assert (entry.registry, entry.project, entry.name) == ("docker.io", "hxstarrys", "manifest-v2")
    assert reader.index.time == "2025-02-13T18:56:27.811246587+08:00"
    assert reader.missing_members(entry) == []
    assert reader.read_layout_descriptor(image.digest)["mediaType"] == DOCKER_MANIFEST
    for digest, data in image.blobs.items():
        assert reader.read_blob(digest) == data


def test_reader_names_old_tar_gz_archives(tmp_path):
    old = tmp_path / "saved-images.tar.gz"
    with gzip.open(old, "wb") as handle:
        handle.write(b"saved-image-cache/saved-images-list.json")

    with pytest.raises(ArchiveFormatError, match="is a gzip file, not a zip: Hangar v1.6"):
        ArchiveReader(str(old))


def test_add_blob_trusted_checks_size_but_not_digest(tmp_path):
    data = os.urandom(2000)
    dest = tmp_path / "trusted.zip"

    with ArchiveWriter(str(dest)) as writer:
        with pytest.raises(ArchiveDigestError, match="1999 bytes, not 2000"):
            writer.add_blob(digest_of(data), len(data), data[:-1], trusted=True)
        assert not writer.has_blob(digest_of(data))
        assert writer.add_blob(digest_of(data), len(data), data, trusted=True)
        writer.commit()

    with ArchiveReader(str(dest)) as reader:
        assert reader.read_blob(digest_of(data), limit=4096) == data
