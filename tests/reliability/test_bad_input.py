# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input: references, registry content, archives, options, credential and TLS settings.

Rows of harbor-security.md section 7.2 are named in the test docstrings. Each test runs a
module for real and checks the message a user reads, and where it matters that nothing was
sent or written.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from ansible_collections.airgap.hangar.plugins.module_utils import media_types as mt
from tests.reliability.conftest import (
    ModuleRunner,
    head_digest,
    push_blob,
    push_manifest,
    requests_for,
    skopeo_copy,
)
from tests.support.fault_proxy import FaultProxy
from tests.support.harbor_server import ADMIN, HarborServer

MISSING = "sha256:" + "0" * 64
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
UNKNOWN_TYPE = "application/vnd.example.thing.v1+json"


# -- references (rows 1, 2) ------------------------------------------------------------------


@pytest.mark.parametrize("reference, wording", [
    ("{host}/Library/Hello:v1", "repository must be lowercase"),
    ("{host}/library/hello:v 1", "it contains whitespace"),
    ("{host}/library/hello@sha256:1234", 'digest "sha256:1234" is invalid'),
    ("{host}/library/hello:" + "t" * 129, "is invalid: use up to 128 of"),
    ("", "it is empty"),
    (":tag", "a path component is empty"),
], ids=["uppercase", "space", "short-digest", "long-tag", "empty", "tag-only"])
def test_inspect_refuses_malformed_reference_before_any_request(
        source, fault_proxy, run_module, reference, wording):
    proxy = fault_proxy(source[0])
    reference = reference.format(host=proxy.host)

    outcome = run_module("hangar_inspect", image=reference)

    assert outcome.failed
    assert outcome.msg.startswith(f'invalid image reference "{reference}"')
    assert wording in outcome.msg
    assert proxy.requests == []


def test_mirror_skips_malformed_list_lines_with_a_warning_each(
        source, dest_registry, fault_proxy, run_module, project, tmp_path):
    proxy = fault_proxy(source[0])
    images_file = tmp_path / "images.txt"
    images_file.write_text("# comment\n\nlibrary/Hello:v1\na b\na b c d\n@@@\n")

    outcome = run_module("hangar_mirror", images_file=str(images_file), src_registry=proxy.url,
                         dest_registry=dest_registry.url, dest_project=project)

    assert not outcome.failed and not outcome.result["changed"]
    assert outcome.result["images"] == []
    assert len(outcome.warnings) == 4
    assert "library/Hello:v1" in outcome.warnings[0] and "line 3" in outcome.warnings[0]
    assert "found 4 columns" in outcome.warnings[2]
    assert proxy.requests == []


def test_save_refuses_image_list_that_is_not_text(source, run_module, tmp_path):
    images_file = tmp_path / "images.txt"
    images_file.write_bytes(b"library/hello:v2\n\xff\xfe\x00binary")

    outcome = run_module("hangar_save", images_file=str(images_file),
                         src_registry=source[0].url, dest=str(tmp_path / "images.zip"))

    assert outcome.failed
    assert outcome.msg.startswith(f'cannot read image list file "{images_file}": it is not UTF-8')
    assert not (tmp_path / "images.zip").exists()


# -- options of the wrong type -----------------------------------------------------------------


@pytest.mark.parametrize("options, wording", [
    ({"jobs": "many"}, "argument 'jobs' is of type"),
    ({"jobs": 0}, "jobs must be between 1 and 20, got 0"),
    ({"timeout": "slow"}, "argument 'timeout' is of type"),
    ({"images": {"nginx": "1.27"}}, "argument 'images' is of type"),
    ({"overwrite": "perhaps"}, "argument 'overwrite' is of type"),
], ids=["jobs-text", "jobs-zero", "timeout-text", "images-dict", "bool-text"])
def test_mirror_refuses_options_of_the_wrong_type_before_any_request(
        source, fault_proxy, run_module, options, wording):
    proxy = fault_proxy(source[0])
    args = dict(images=["library/hello:v2"], src_registry=proxy.url, dest_registry=proxy.url)
    args.update(options)

    outcome = run_module("hangar_mirror", **args)

    assert outcome.failed
    assert wording in outcome.msg
    assert proxy.requests == []


# -- credential files and helpers ------------------------------------------------------------


def test_inspect_explains_auth_file_that_is_a_directory(registry_basic, run_module, tmp_path):
    outcome = run_module("hangar_inspect", image=f"{registry_basic.host}/library/hello:v2",
                         ca_path=str(registry_basic.ca_path), auth_file=str(tmp_path))

    assert outcome.failed
    assert outcome.msg == f"cannot read auth file {tmp_path}: Is a directory"


def test_inspect_hides_content_of_auth_file_that_is_not_json(
        registry_basic, run_module, tmp_path):
    auth_file = tmp_path / "auth.json"
    auth_file.write_text('{"auths": {"registry": {"auth": "c2VjcmV0OnMzY3IzdA=="}}')

    outcome = run_module("hangar_inspect", image=f"{registry_basic.host}/library/hello:v2",
                         ca_path=str(registry_basic.ca_path), auth_file=str(auth_file))

    assert outcome.msg == f"auth file {auth_file} is not valid JSON"
    assert "c2VjcmV0" not in outcome.stdout + outcome.stderr


def test_inspect_hides_decoded_value_of_malformed_auth_entry(
        registry_basic, run_module, tmp_path):
    auth_file = tmp_path / "auth.json"
    encoded = base64.b64encode(b"only-a-s3cret-no-colon").decode()
    auth_file.write_text(json.dumps({"auths": {registry_basic.host: {"auth": encoded}}}))

    outcome = run_module("hangar_inspect", image=f"{registry_basic.host}/library/hello:v2",
                         ca_path=str(registry_basic.ca_path), auth_file=str(auth_file))

    assert outcome.failed
    assert f"the auth entry for {registry_basic.host} in {auth_file} is malformed" in outcome.msg
    assert "s3cret" not in outcome.stdout + outcome.stderr


def test_inspect_names_credential_helper_that_is_not_installed(
        registry_basic, run_module, tmp_path):
    auth_file = tmp_path / "config.json"
    auth_file.write_text(json.dumps({"credsStore": "hangar-missing"}))

    outcome = run_module("hangar_inspect", image=f"{registry_basic.host}/library/hello:v2",
                         ca_path=str(registry_basic.ca_path), auth_file=str(auth_file))

    assert outcome.failed
    assert outcome.msg == (
        f"credential helper docker-credential-hangar-missing (configured in {auth_file} for "
        f"{registry_basic.host}) is not installed or not in PATH")


# -- authentication (rows 17, 18) -----------------------------------------------------------


def test_inspect_asks_for_credentials_when_registry_requires_them(
        registry_basic, seed, run_module):
    seed(registry_basic)

    outcome = run_module("hangar_inspect", image=f"{registry_basic.host}/library/hello:v2",
                         ca_path=str(registry_basic.ca_path))

    assert outcome.failed
    assert f"authentication required by {registry_basic.host}; tried no credentials" \
        in outcome.msg


def test_inspect_rejects_wrong_password_without_showing_it(registry_basic, seed, run_module):
    seed(registry_basic)
    wrong = "Wr0ng-" + registry_basic.password

    outcome = run_module("hangar_inspect", image=f"{registry_basic.host}/library/hello:v2",
                         ca_path=str(registry_basic.ca_path), username="hangar",
                         password=wrong)

    assert outcome.failed
    assert f"authentication required by {registry_basic.host}; tried module options" \
        in outcome.msg
    assert wrong not in outcome.stdout + outcome.stderr


def test_mirror_into_missing_harbor_project_says_to_create_it(
        source, dest_registry, run_module):
    """Row 24, with project creation turned off (rows 19 to 23 and 25: see docs)."""
    with HarborServer(dest_registry.url) as harbor:
        outcome = run_module("hangar_mirror", images=["library/hello:oci"],
                             src_registry=source[0].url, dest_registry=harbor.url,
                             dest_project="ghost", dest_username=ADMIN.name,
                             dest_password=ADMIN.password, create_projects=False)

    assert outcome.failed
    assert f"project ghost not found on {harbor.host}. Create it first (create_projects: " \
        "true does that on Harbor)" in outcome.msg


# -- TLS (rows 26 to 32) ---------------------------------------------------------------------


@pytest.mark.parametrize("fixture, image, options, wording", [
    ("registry_tls", "{host}/library/hello:v2", {},
     "TLS certificate of {host} is not trusted ("),
    # 127.1 is 127.0.0.1 to the resolver but not an address the certificate names.
    ("registry_tls", "127.1:{port}/library/hello:v2", {"ca_path": True},
     "TLS certificate of 127.1:{port} is not valid for the name used (Hostname mismatch"),
    ("registry_mtls", "{host}/library/hello:v2", {"ca_path": True},
     "TLS handshake with {host} failed ("),
    ("registry_plain", "{host}/library/hello:v2", {},
     "server gave HTTP response to HTTPS client: {host} speaks plain HTTP"),
    ("registry_tls", "http://{host}/library/hello:v2", {},
     "HTTP request to an HTTPS server: {host} only speaks HTTPS"),
], ids=["unknown-ca", "name-mismatch", "client-cert-missing", "https-to-http", "http-to-https"])
def test_inspect_explains_tls_problem(request, run_module, fixture, image, options, wording):
    registry = request.getfixturevalue(fixture)
    if options.get("ca_path"):
        options = dict(options, ca_path=str(registry.ca_path))
    names = dict(host=registry.host, port=registry.port)

    outcome = run_module("hangar_inspect", image=image.format(**names), retries=0, **options)

    assert outcome.failed
    assert wording.format(**names) in outcome.msg


def test_inspect_names_missing_key_of_certs_d_client_certificate(
        registry_mtls, run_module, tmp_path):
    host_dir = tmp_path / registry_mtls.host
    host_dir.mkdir()
    shutil.copy(registry_mtls.client_cert, host_dir / "client.cert")

    outcome = run_module("hangar_inspect", image=f"{registry_mtls.host}/library/hello:v2",
                         certs_dir=str(tmp_path), retries=0)

    assert outcome.failed
    assert "missing key client.key for client certificate" in outcome.msg
    assert f"{host_dir}/client.cert" in outcome.msg


def test_inspect_falls_back_to_http_only_when_verification_is_off(source, run_module):
    registry, images = source

    outcome = run_module("hangar_inspect", image=f"{registry.host}/library/hello:v2",
                         validate_certs=False)

    assert outcome.result["digest"] == images["library/hello:v2"]["digest"]


# -- what a registry serves (rows 3, 4, 5, 11) and pages that are no registry -------------------


@dataclass
class ContentRun:
    """One mirror of many bad (and one good) images through a proxy; tests read its result."""

    outcome: object
    proxy: FaultProxy
    dest: object
    project: str
    images: dict
    artifacts: dict


@pytest.fixture(scope="module")
def content_run(registry_plain, seed, dest_registry, tmp_path_factory) -> ContentRun:
    images = seed(registry_plain)
    artifacts = push_artifacts(registry_plain)
    runner = ModuleRunner(tmp_path_factory.mktemp("content-run"))
    with FaultProxy(registry_plain.url) as proxy:
        arm_bad_manifests(proxy)
        lines = ["reliability/schema1:v1", "reliability/unknown:v1", "reliability/ambiguous:v1",
                 "library/hello:v2", "library/hello:nope", "library/nope:v1",
                 f"library/hello@{MISSING}", "library/hello:oci", "reliability/chart:0.1.0",
                 "reliability/artifact:1"]
        outcome = runner("hangar_mirror", images=lines, src_registry=proxy.url,
                         dest_registry=dest_registry.url, dest_project="content",
                         remove_signatures=True)
    return ContentRun(outcome, proxy, dest_registry, "content", images, artifacts)


def arm_bad_manifests(proxy: FaultProxy) -> None:
    schema1 = {"schemaVersion": 1, "name": "reliability/schema1", "tag": "v1",
               "architecture": "amd64", "fsLayers": [], "history": [], "signatures": []}
    unknown = {"schemaVersion": 2, "mediaType": UNKNOWN_TYPE, "layers": []}
    ambiguous = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [], "layers": [],
                 "config": {}}
    for name, document, media_type in (("schema1", schema1, SCHEMA1_SIGNED),
                                       ("unknown", unknown, UNKNOWN_TYPE),
                                       ("ambiguous", ambiguous, mt.OCI_INDEX)):
        proxy.arm("respond", method="GET", path=f"/reliability/{name}/manifests/v1",
                  status=200, headers={"Content-Type": media_type}, body=json.dumps(document))
    proxy.arm("header", method="GET", path="/library/hello/manifests/v2",
              headers={"Content-Type": mt.OCI_MANIFEST})


def push_artifacts(registry) -> dict:
    """A Helm chart and an OCI artifact with an artifactType, each with one layer."""
    pushed = {}
    for repository, tag, config_type, layer_type, extra in (
            ("reliability/chart", "0.1.0", HELM_CONFIG, HELM_CHART, {}),
            ("reliability/artifact", "1", mt.OCI_EMPTY, "application/vnd.example.sbom+json",
             {"artifactType": "application/vnd.example.sbom"})):
        config = push_blob(registry, repository, b"{}")
        layer = push_blob(registry, repository, f"content of {repository}".encode())
        manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, **extra,
                    "config": {"mediaType": config_type, **config},
                    "layers": [{"mediaType": layer_type, **layer}]}
        raw = json.dumps(manifest).encode()
        pushed[repository] = push_manifest(registry, repository, tag, raw, mt.OCI_MANIFEST)
    return pushed


def test_mirror_refuses_schema1_manifest_with_conversion_hint(content_run):
    error = content_run.outcome.image("reliability/schema1")["error"]

    assert "is a Docker schema 1 image, which this collection does not convert yet" in error
    assert "skopeo copy --format v2s2" in error


def test_mirror_refuses_unknown_manifest_media_type(content_run):
    error = content_run.outcome.image("reliability/unknown")["error"]

    assert error.startswith(f'unsupported MIME type "{UNKNOWN_TYPE}" for')


def test_mirror_refuses_ambiguous_manifest(content_run):
    error = content_run.outcome.image("reliability/ambiguous")["error"]

    assert error.endswith("is ambiguous: it has both manifests and layers")


def test_mirror_refuses_manifest_served_with_other_media_type(content_run):
    error = content_run.outcome.image("library/hello:v2")["error"]

    assert f"says mediaType {mt.DOCKER_MANIFEST} but was served as {mt.OCI_MANIFEST}" in error


@pytest.mark.parametrize("line, shown", [
    ("library/hello:nope", "library/hello:nope"),
    ("library/nope:v1", "library/nope:v1"),
    (f"library/hello@{MISSING}", f"library/hello@{MISSING}"),
], ids=["tag", "repository", "digest"])
def test_mirror_reports_missing_image_as_manifest_unknown(content_run, line, shown):
    error = content_run.outcome.image(line)["error"]

    assert error.startswith(f"manifest unknown: {content_run.proxy.host}/{shown} does not exist")


def test_mirror_bad_images_leave_other_images_and_tags_alone(content_run):
    summary = content_run.outcome.result["summary"]

    assert content_run.outcome.msg.startswith("7 of 10 images failed")
    assert summary["copied"] == 3 and summary["failed"] == 7
    assert head_digest(content_run.dest, "content/hello", "oci") == \
        content_run.images["library/hello:oci"]["digest"]
    assert head_digest(content_run.dest, "content/hello", "v2") is None
    assert head_digest(content_run.dest, "content/schema1", "v1") is None


def test_mirror_copies_helm_charts_and_artifacts_whole(content_run):
    for repository, tag in (("chart", "0.1.0"), ("artifact", "1")):
        assert head_digest(content_run.dest, f"content/{repository}", tag) == \
            content_run.artifacts[f"reliability/{repository}"]


def test_mirror_asks_for_every_manifest_type_it_reads(content_run):
    gets = requests_for(content_run.proxy, "GET", "/library/hello/manifests/oci")

    accepted = {value.strip() for get in gets for line in get.accept for value in line.split(",")}
    assert {mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST} <= accepted


def test_inspect_explains_html_page_instead_of_registry(source, fault_proxy, run_module):
    proxy = fault_proxy(source[0])
    proxy.arm("html")

    outcome = run_module("hangar_inspect", image=f"{proxy.url}/library/hello:v2")

    assert outcome.failed
    assert f"http://{proxy.host}/v2/ answered 200 (an HTML page" in outcome.msg
    assert f"{proxy.host} does not look like a registry" in outcome.msg


# -- archives (rows 12 to 16) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_archive(registry_plain, seed, tmp_path_factory) -> Path:
    """A valid archive holding library/hello:v2, saved by hangar_save."""
    seed(registry_plain)
    directory = tmp_path_factory.mktemp("saved-archive")
    runner = ModuleRunner(directory)
    path = directory / "hello.zip"
    outcome = runner("hangar_save", images=["library/hello:v2"], src_registry=registry_plain.url,
                     dest=str(path))
    assert not outcome.failed, outcome.msg
    return path


@dataclass
class Member:
    name: str
    data: bytes
    mode: int = 0o100644


def read_members(path: Path) -> list:
    """The members of a stored-only archive, in order (our own reader is under test)."""
    members, data = [], path.read_bytes()
    position = 0
    while data[position:position + 4] == b"PK\x03\x04":
        fields = struct.unpack("<4sHHHHHIIIHH", data[position:position + 30])
        size, name_len, extra_len = fields[7], fields[9], fields[10]
        start = position + 30 + name_len + extra_len
        name = data[position + 30:position + 30 + name_len].decode()
        members.append(Member(name, data[start:start + size]))
        position = start + size
    return members


def write_zip(path: Path, members: list) -> Path:
    """Write stored members with a ZIP64 end record when there are 65535 or more."""
    body, directory = bytearray(), bytearray()
    for member in members:
        name, crc = member.name.encode(), zlib.crc32(member.data)
        offset = len(body)
        body += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, crc,
                            len(member.data), len(member.data), len(name), 0) + name + member.data
        directory += struct.pack("<4sBBHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 3, 20, 0, 0, 0, 0,
                                 crc, len(member.data), len(member.data), len(name), 0, 0, 0,
                                 0, member.mode << 16, offset) + name
    count, cd_offset = len(members), len(body)
    end = b""
    if count >= 0xFFFF:
        end = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count,
                          len(directory), cd_offset)
        end += struct.pack("<4sIQI", b"PK\x06\x07", 0, cd_offset + len(directory), 1)
    small = min(count, 0xFFFF)
    end += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, small, small, len(directory),
                       cd_offset, 0)
    path.write_bytes(bytes(body + directory + end))
    return path


def rewrite(saved: Path, path: Path, change) -> Path:
    """Write ``path`` with the members of ``saved`` as ``change(members)`` returns them."""
    return write_zip(path, change(read_members(saved)))


def index_of(members: list) -> dict:
    return json.loads(next(m for m in members if m.name == "index.json").data)


def with_index(members: list, index: dict) -> list:
    kept = [m for m in members if m.name != "index.json"]
    return kept + [Member("index.json", json.dumps(index).encode())]


def layer_member(members: list) -> str:
    layer = index_of(members)["list"][0]["images"][0]["layers"][0]
    return "share/sha256/" + layer.split(":", 1)[1]


def test_archive_info_explains_truncated_archive(saved_archive, run_module, tmp_path):
    """Row 12."""
    path = tmp_path / "truncated.zip"
    path.write_bytes(saved_archive.read_bytes()[:saved_archive.stat().st_size // 2])

    outcome = run_module("hangar_archive_info", path=str(path))

    assert outcome.failed
    assert f"archive {path} is truncated or its central directory is damaged" in outcome.msg


def test_archive_info_verify_reports_flipped_byte_in_blob(saved_archive, run_module, tmp_path):
    """Row 13."""
    path = flip_layer_byte(saved_archive, tmp_path / "flipped.zip")
    layer = layer_member(read_members(saved_archive))

    outcome = run_module("hangar_archive_info", path=str(path), verify=True)

    assert outcome.result["valid"] is False
    assert layer in json.dumps(outcome.result["problems"])


def test_load_of_flipped_blob_fails_and_keeps_old_tag(
        source, saved_archive, dest_registry, run_module, project, tmp_path):
    """Row 13: a corrupt image is not pushed and its tag is not touched."""
    registry, images = source
    skopeo_copy(registry, "library/hello:oci", dest_registry, f"{project}/hello:v2")
    path = flip_layer_byte(saved_archive, tmp_path / "flipped.zip")

    outcome = run_module("hangar_load", src=str(path), dest_registry=dest_registry.url,
                         dest_project=project)

    assert outcome.failed
    assert layer_member(read_members(saved_archive)) in outcome.msg
    assert head_digest(dest_registry, f"{project}/hello", "v2") == \
        images["library/hello:oci"]["digest"]


def flip_layer_byte(saved: Path, path: Path) -> Path:
    def change(members: list) -> list:
        name = layer_member(members)
        for member in members:
            if member.name == name:
                data = bytearray(member.data)
                data[len(data) // 2] ^= 0xFF
                member.data = bytes(data)
        return members

    # The CRC-32 is written for the flipped bytes: only the digest can catch the change.
    return rewrite(saved, path, change)


@pytest.mark.parametrize("member, wording", [
    (Member("../evil.txt", b"x"), "member '../evil.txt' contains '..'"),
    (Member("/etc/evil.txt", b"x"), "member '/etc/evil.txt' is absolute"),
    (Member("share\\evil.txt", b"x"), "contains a backslash"),
    (Member("share/link", b"/etc/passwd", 0o120777), "member share/link is a symbolic link"),
    (Member("index.json", b"{}"), "has the member index.json twice"),
], ids=["dot-dot", "absolute", "backslash", "symlink", "duplicate"])
def test_archive_info_refuses_unsafe_member(saved_archive, run_module, tmp_path, member,
                                            wording):
    """Row 14."""
    path = rewrite(saved_archive, tmp_path / "unsafe.zip", lambda members: [member] + members)

    outcome = run_module("hangar_archive_info", path=str(path))

    assert outcome.failed
    assert wording in outcome.msg


def test_archive_info_refuses_overlapping_members(saved_archive, run_module, tmp_path):
    """Row 15: two directory entries pointing at the same data (CVE-2024-0450)."""
    path = rewrite(saved_archive, tmp_path / "overlap.zip", lambda members: members)
    data = bytearray(path.read_bytes())
    first_record = data.index(b"PK\x01\x02")
    second_record = data.index(b"PK\x01\x02", first_record + 4)
    data[second_record + 42:second_record + 46] = data[first_record + 42:first_record + 46]
    path.write_bytes(bytes(data))

    outcome = run_module("hangar_archive_info", path=str(path))

    assert outcome.failed
    assert "overlaps the next member or the central directory" in outcome.msg


def test_archive_info_refuses_index_declared_larger_than_its_cap(
        saved_archive, run_module, tmp_path):
    """Row 15: a member whose declared size is huge is refused before it is read."""
    path = rewrite(saved_archive, tmp_path / "huge.zip", lambda members: members)
    data = bytearray(path.read_bytes())
    record = data.rindex(b"PK\x01\x02")
    data[record + 10:record + 12] = struct.pack("<H", 8)  # deflated, so sizes may differ
    data[record + 24:record + 28] = struct.pack("<I", 1 << 30)
    path.write_bytes(bytes(data))

    outcome = run_module("hangar_archive_info", path=str(path))

    assert outcome.failed
    assert "member index.json is 1.0 GiB, more than the 64.0 MiB expected of it" in outcome.msg


def test_archive_info_reads_archive_of_100k_members_in_bounded_time(
        saved_archive, run_module, tmp_path):
    """Row 15: many members cost directory parsing only, nothing is extracted."""
    padding = [Member(f"pad/{number:06d}", b"") for number in range(100_000)]
    path = rewrite(saved_archive, tmp_path / "many.zip",
                   lambda members: padding + members)

    outcome = run_module("hangar_archive_info", path=str(path))

    assert not outcome.failed, outcome.msg
    assert outcome.result["count"] == 1
    assert outcome.seconds < 30


@pytest.mark.parametrize("change, wording", [
    (lambda index: index["list"][0]["images"][0]["layers"].__setitem__(0, "sha256:../../x"),
     "images[0] key 'layers' item 0"),
    (lambda index: index.__setitem__("version", "v1.1.0"),
     "this tool does not support index version v1.1.0"),
], ids=["digest", "version"])
def test_archive_info_refuses_bad_index(saved_archive, run_module, tmp_path, change, wording):
    """Row 16."""
    def changed(members: list) -> list:
        index = index_of(members)
        change(index)
        return with_index(members, index)

    path = rewrite(saved_archive, tmp_path / "bad-index.zip", changed)

    outcome = run_module("hangar_archive_info", path=str(path))

    assert outcome.failed
    assert f"archive {path} member index.json" in outcome.msg and wording in outcome.msg


def test_load_names_blob_missing_from_archive(saved_archive, dest_registry, run_module,
                                              project, tmp_path):
    """Row 16."""
    name = layer_member(read_members(saved_archive))
    path = rewrite(saved_archive, tmp_path / "lacking.zip",
                   lambda members: [m for m in members if m.name != name])

    outcome = run_module("hangar_load", src=str(path), dest_registry=dest_registry.url,
                         dest_project=project)

    assert outcome.failed
    assert f"lacks blob sha256:{name.rsplit('/', 1)[1]}" in outcome.msg
    assert "the archive is incomplete" in outcome.msg
    assert head_digest(dest_registry, f"{project}/hello", "v2") is None
