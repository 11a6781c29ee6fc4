# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network and registry faults, injected by the fault proxy between a module and a registry.

Each test arms one fault, runs a module for real and checks what a user would check: the
task's message, the digests at the destination, the tags there, and in the proxy's log what
the module sent (Range requests, retries, restarted uploads, credentials or not).
"""

from __future__ import annotations

import base64
import email.utils
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.airgap.hangar.plugins.module_utils import media_types as mt
from ansible_collections.airgap.hangar.plugins.module_utils.credentials import CredentialStore
from ansible_collections.airgap.hangar.plugins.module_utils.registry import RegistryClient
from ansible_collections.airgap.hangar.plugins.module_utils.transport import TransportSettings
from tests.reliability.conftest import (
    blob_digest,
    head_digest,
    leftovers,
    module_env,
    push_blob,
    push_manifest,
    requests_for,
    skopeo_copy,
    skopeo_digest,
)
from tests.support.ports import free_port

WRONG_DIGEST = "sha256:" + "0" * 64
NON_DISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def mirror_args(source: str, dest: str, project: str, *images: str, **options) -> dict:
    return dict(images=list(images), src_registry=source, dest_registry=dest,
                dest_project=project, arch=["*"], **options)


# -- broken downloads resume, broken uploads restart --------------------------------------


@pytest.mark.parametrize("fault", ["truncate", "reset"])
def test_mirror_resumes_download_with_range_when_blob_body_breaks(
        source, big_image, dest_registry, fault_proxy, run_module, project, fault):
    layer = big_image["layer"]
    proxy = fault_proxy(source[0])
    # Past the first 1 MiB read, so the client holds whole reads when the body breaks.
    proxy.arm(fault, method="GET", path=f"/blobs/{layer}", first_n=1, offset=1_200_000)

    outcome = run_module("hangar_mirror", **mirror_args(
        proxy.url, dest_registry.url, project, big_image["reference"]))

    assert not outcome.failed, outcome.msg
    gets = requests_for(proxy, "GET", f"/blobs/{layer}")
    assert [get.fault for get in gets] == [fault, None]
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", gets[1].range).group(1))
    assert 1 << 20 <= resumed_at <= 1_200_000
    assert gets[1].status == 206
    assert blob_digest(dest_registry, f"{project}/big", layer) == layer
    assert skopeo_digest(dest_registry, f"{project}/big", "1") == big_image["digest"]


@pytest.mark.parametrize("fault, options", [
    ("reset", {"direction": "request"}),
    ("status", {"status": 503}),
], ids=["reset", "503"])
def test_mirror_restarts_upload_session_when_blob_upload_fails(
        source, dest_registry, fault_proxy, run_module, project, fault, options):
    registry, images = source
    proxy = fault_proxy(dest_registry)
    proxy.arm(fault, method="PUT", path="/blobs/uploads/", first_n=1, **options)

    outcome = run_module("hangar_mirror", **mirror_args(
        registry.url, proxy.url, project, "library/hello:oci"))

    assert not outcome.failed, outcome.msg
    blobs = len(images["library/hello:oci"]["blobs"])
    sessions = requests_for(proxy, "POST", f"/v2/{project}/hello/blobs/uploads/")
    uploads = requests_for(proxy, "PUT", f"/v2/{project}/hello/blobs/uploads/")
    assert len(sessions) == len(uploads) == blobs + 1
    assert [upload.fault for upload in uploads].count(fault) == 1
    assert head_digest(dest_registry, f"{project}/hello", "oci") == \
        images["library/hello:oci"]["digest"]


# -- busy registries: retries with backoff and Retry-After ----------------------------------


def test_inspect_waits_retry_after_when_registry_answers_429(source, fault_proxy, run_module):
    registry, images = source
    proxy = fault_proxy(registry)
    proxy.arm("status", status=429, retry_after="1", method="GET", path="/manifests/v2",
              first_n=2)

    outcome = run_module("hangar_inspect", image=f"{proxy.url}/library/hello:v2")

    assert outcome.result["digest"] == images["library/hello:v2"]["digest"]
    gets = requests_for(proxy, "GET", "/manifests/v2")
    assert [get.status for get in gets] == [429, 429, 200]
    assert gets[1].started - gets[0].started >= 1.0
    assert gets[2].started - gets[0].started >= 2.0


def test_client_waits_until_retry_after_date_when_registry_answers_429(source, fault_proxy):
    registry, images = source
    proxy = fault_proxy(registry)
    # HTTP dates have whole seconds: this one is 2 to 3 s away when the client reads it.
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    proxy.arm("status", status=429, retry_after=when, method="GET", path="/manifests/v2",
              first_n=1)
    settings = TransportSettings(retries=2, retry_delay=0.01)
    client = RegistryClient(f"http://{proxy.host}", settings=settings,
                            credentials=CredentialStore(search_defaults=False))

    digest = client.get_manifest("library/hello", "v2").digest

    assert digest == images["library/hello:v2"]["digest"]
    gets = requests_for(proxy, "GET", "/manifests/v2")
    assert [get.status for get in gets] == [429, 200]
    assert gets[1].started - gets[0].started >= 1.5


@pytest.mark.parametrize("status", [500, 502, 503])
def test_inspect_retries_when_registry_answers_server_error(
        source, fault_proxy, run_module, status):
    registry, images = source
    proxy = fault_proxy(registry)
    proxy.arm("status", status=status, method="GET", path="/manifests/oci", first_n=1)

    outcome = run_module("hangar_inspect", image=f"{proxy.url}/library/hello:oci")

    assert outcome.result["digest"] == images["library/hello:oci"]["digest"]
    gets = requests_for(proxy, "GET", "/manifests/oci")
    assert [get.status for get in gets] == [status, 200]
    # The first backoff is half to all of the 1 s retry delay.
    assert gets[1].started - gets[0].started >= 0.5


def test_mirror_reports_rate_limit_when_429_persists(
        source, dest_registry, fault_proxy, run_module, project):
    proxy = fault_proxy(source[0])
    proxy.arm("status", status=429, retry_after="1", method="GET", path="/manifests/")

    outcome = run_module("hangar_mirror", retries=2, **mirror_args(
        proxy.url, dest_registry.url, project, "library/hello:v2"))

    assert outcome.failed
    assert f"rate limited by {proxy.host} (429 TOOMANYREQUESTS" in outcome.msg
    assert "after 2 retries" in outcome.msg
    assert len(requests_for(proxy, "GET", "/manifests/")) == 3
    assert head_digest(dest_registry, f"{project}/hello", "v2") is None


def test_mirror_names_blob_and_status_when_5xx_persists(
        source, dest_registry, fault_proxy, run_module, project):
    registry, images = source
    config = images["library/hello:v2"]["blobs"][-1]
    proxy = fault_proxy(registry)
    proxy.arm("status", status=503, method="GET", path="/blobs/sha256:")

    outcome = run_module("hangar_mirror", retries=1, **mirror_args(
        proxy.url, dest_registry.url, project, "library/hello:v2"))

    assert outcome.failed
    assert f"fetching blob {proxy.host}/library/hello@{config}: 503 UNAVAILABLE" in outcome.msg
    assert len(requests_for(proxy, "GET", f"/blobs/{config}")) == 2


# -- stalls end at the timeout ---------------------------------------------------------------


@pytest.mark.parametrize("path, wording", [
    ("/manifests/", "stopped sending the manifest of"),
    ("/blobs/sha256:", "stalled at byte 0 (1 attempts): no data for 1 s"),
], ids=["manifest", "blob"])
def test_mirror_stall_ends_at_timeout_naming_host_and_option(
        source, dest_registry, fault_proxy, run_module, project, path, wording):
    proxy = fault_proxy(source[0])
    proxy.arm("stall", method="GET", path=path, delay=60)

    outcome = run_module("hangar_mirror", timeout=1, retries=0, **mirror_args(
        proxy.url, dest_registry.url, project, "library/hello:v2"))

    assert outcome.failed
    assert proxy.host in outcome.msg and wording in outcome.msg
    assert "raise the timeout option" in outcome.msg
    # The stall lasts a minute; only the 1 s timeout can have ended the run this early.
    assert outcome.seconds < 30


# -- corrupt content is never pushed ---------------------------------------------------------


def test_mirror_fails_only_the_corrupt_image_and_keeps_its_old_tag(
        source, dest_registry, fault_proxy, run_module, project):
    registry, images = source
    skopeo_copy(registry, "library/hello:oci", dest_registry, f"{project}/hello:v2")
    layer = images["library/hello:v2"]["blobs"][0]
    proxy = fault_proxy(registry)
    proxy.arm("corrupt", method="GET", path=f"/blobs/{layer}")

    outcome = run_module("hangar_mirror", **mirror_args(
        proxy.url, dest_registry.url, project, "library/hello:v2", "library/busybox:1.36"))

    assert outcome.failed
    assert outcome.msg.startswith("1 of 2 images failed")
    assert f"digest did not match for blob {layer}" in outcome.image("hello")["error"]
    assert outcome.image("busybox")["action"] == "copied"
    assert head_digest(dest_registry, f"{project}/hello", "v2") == \
        images["library/hello:oci"]["digest"]
    assert skopeo_digest(dest_registry, f"{project}/busybox", "1.36") == \
        images["library/busybox:1.36"]["digest"]


def test_save_stores_only_the_images_whose_blobs_verify(source, fault_proxy, run_module,
                                                        tmp_path):
    registry, images = source
    layer = images["library/hello:v2"]["blobs"][0]
    proxy = fault_proxy(registry)
    proxy.arm("corrupt", method="GET", path=f"/blobs/{layer}")
    dest = tmp_path / "images.zip"

    outcome = run_module("hangar_save", images=["library/hello:v2", "library/hello:oci"],
                         src_registry=proxy.url, dest=str(dest))

    assert outcome.msg.startswith("1 of 2 images failed")
    assert f"digest did not match for blob {layer}" in outcome.image("hello:v2")["error"]
    info = run_module("hangar_archive_info", path=str(dest), verify=True)
    assert info.result["valid"]
    assert [image["tag"] for image in info.result["images"]] == ["oci"]
    assert leftovers(tmp_path) == []


def test_mirror_refuses_manifests_that_do_not_match_their_digest(
        source, dest_registry, fault_proxy, run_module, project):
    registry, images = source
    child = images["library/busybox:1.36"]["platforms"]["linux/s390x"]
    proxy = fault_proxy(registry)
    proxy.arm("corrupt", method="GET", path=f"/manifests/{child}")
    proxy.arm("header", method="GET", path="/alpine/manifests/3.20",
              headers={"Docker-Content-Digest": WRONG_DIGEST})

    outcome = run_module("hangar_mirror", **mirror_args(
        proxy.url, dest_registry.url, project, "library/busybox:1.36", "library/alpine:3.20"))

    assert outcome.msg.startswith("2 of 2 images failed")
    assert "manifest does not match the digest asked for: " \
        f"{proxy.host}/library/busybox@{child} hashes to" in outcome.image("busybox")["error"]
    assert f"but the registry announced {WRONG_DIGEST}" in outcome.image("alpine")["error"]
    assert head_digest(dest_registry, f"{project}/busybox", "1.36") is None
    assert head_digest(dest_registry, f"{project}/alpine", "3.20") is None


@pytest.mark.parametrize("delta, wording", [
    (16, "more than the {size} bytes announced"),
    (-16, "{short} bytes, expected {size}"),
], ids=["longer", "shorter"])
def test_mirror_refuses_blob_whose_size_differs_from_descriptor(
        source, big_image, dest_registry, fault_proxy, run_module, project, delta, wording):
    layer, size = big_image["layer"], big_image["layer_size"]
    proxy = fault_proxy(source[0])
    proxy.arm("resize", method="GET", path=f"/blobs/{layer}", size_delta=delta)

    outcome = run_module("hangar_mirror", **mirror_args(
        proxy.url, dest_registry.url, project, big_image["reference"]))

    assert outcome.failed
    assert f"digest did not match for blob {layer}" in outcome.msg
    assert wording.format(size=size, short=size + delta) in outcome.msg
    assert head_digest(dest_registry, f"{project}/big", "1") is None


def test_mirror_names_blob_when_registry_rejects_its_digest(
        source, dest_registry, fault_proxy, run_module, project):
    registry, images = source
    proxy = fault_proxy(dest_registry)
    proxy.arm("corrupt", method="PUT", path="/blobs/uploads/", direction="request")

    outcome = run_module("hangar_mirror", **mirror_args(
        registry.url, proxy.url, project, "library/hello:v2"))

    assert outcome.failed
    assert re.search(rf"finishing upload of {proxy.host}/{project}/hello@sha256:[0-9a-f]{{64}}: "
                     r"400 DIGEST_INVALID", outcome.msg), outcome.msg
    assert head_digest(dest_registry, f"{project}/hello", "v2") is None


def test_mirror_reports_blob_unknown_when_registry_lost_an_upload(
        source, dest_registry, fault_proxy, run_module, project):
    proxy = fault_proxy(dest_registry)
    # The upload "succeeds" at the proxy, so the registry never holds the blobs.
    proxy.arm("respond", method="PUT", path="/blobs/uploads/", status=201)

    outcome = run_module("hangar_mirror", **mirror_args(
        source[0].url, proxy.url, project, "library/hello:v2"))

    assert outcome.failed
    assert f"pushing manifest to {proxy.host}/{project}/hello:v2: 400 MANIFEST_BLOB_UNKNOWN" \
        in outcome.msg
    assert head_digest(dest_registry, f"{project}/hello", "v2") is None


# -- unreachable registries -----------------------------------------------------------------


@pytest.mark.parametrize("image, wording", [
    (f"127.0.0.1:{free_port()}/library/hello:v2", "Connection refused"),
    # Without a resolver at all the lookup fails "temporarily" instead.
    ("registry.hangar-test.invalid/library/hello:v2",
     "Name or service not known|Temporary failure in name resolution"),
], ids=["refused", "unresolvable"])
def test_inspect_names_host_when_registry_cannot_be_reached(run_module, image, wording):
    host = image.split("/", 1)[0]

    outcome = run_module("hangar_inspect", image=image, retries=0)

    assert outcome.failed
    assert outcome.msg.startswith(f"cannot reach {host} (GET https://{host}/v2/)")
    assert re.search(wording, outcome.msg)


# -- credentials stay with their registry ---------------------------------------------------


def basic_authorization(registry) -> str:
    pair = f"{registry.username}:{registry.password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def bearer_authorization(registry) -> str:
    access = [{"type": "repository", "name": "library/busybox", "actions": ["pull"]}]
    return "Bearer " + registry.token_server.issue(registry.username, access)


@pytest.mark.parametrize("registry_fixture, authorization", [
    ("registry_basic", basic_authorization),
    ("registry_token", bearer_authorization),
], ids=["basic", "bearer"])
def test_mirror_never_sends_credentials_to_the_redirect_host(
        request, seed, dest_registry, fault_proxy, run_module, project, registry_fixture,
        authorization):
    registry = request.getfixturevalue(registry_fixture)
    images = seed(registry)
    # The trap plays object storage: it fetches with its own credentials, as a signed URL
    # would, and records whether the client brought any.
    trap = fault_proxy(registry, upstream_authorization=authorization(registry), name="trap")
    proxy = fault_proxy(registry)
    proxy.arm("redirect", method="GET", path="/blobs/sha256:", location=trap.url)

    outcome = run_module("hangar_mirror", src_username=registry.username,
                         src_password=registry.password, ca_path=str(registry.ca_path),
                         **mirror_args(proxy.url, dest_registry.url, project,
                                       "library/busybox:1.36"))

    assert not outcome.failed, outcome.msg
    redirected = [r for r in proxy.requests if r.status == 307]
    assert redirected and all(r.authorization for r in redirected)
    assert len(trap.requests) == len(redirected)
    assert not any(r.authorization for r in trap.requests)
    assert skopeo_digest(dest_registry, f"{project}/busybox", "1.36") == \
        images["library/busybox:1.36"]["digest"]


def test_mirror_never_fetches_foreign_layer_urls(tmp_registry, fault_proxy, run_module):
    # distribution takes layer URLs only from manifests when an allow pattern is configured.
    allow_urls = {"validation": {"manifests": {"urls": {"allow": ["^https?://"]}}}}
    registry = tmp_registry("plain", extra_config=allow_urls)
    dest = tmp_registry("plain", extra_config=allow_urls)
    trap = fault_proxy(None, name="trap")
    digest = push_foreign_layer_image(registry, "reliability/foreign", "1", trap.url)

    outcome = run_module("hangar_mirror", **mirror_args(
        registry.url, dest.url, "copy", "reliability/foreign:1"))

    assert not outcome.failed, outcome.msg
    assert outcome.image("foreign")["blobs_copied"] == 2
    assert trap.requests == []
    assert head_digest(dest, "copy/foreign", "1") == digest


def push_foreign_layer_image(registry, repository: str, tag: str, trap_url: str) -> str:
    """An OCI image whose second layer is non-distributable and lives at a URL on the trap."""
    layer = push_blob(registry, repository, b"\x1f\x8b" + b"layer" * 100)
    config = push_blob(registry, repository, json.dumps(
        {"architecture": "amd64", "os": "linux",
         "rootfs": {"type": "layers", "diff_ids": [WRONG_DIGEST, WRONG_DIGEST]}}).encode())
    foreign = {"mediaType": NON_DISTRIBUTABLE, "digest": "sha256:" + "1" * 64, "size": 42,
               "urls": [f"{trap_url}/layers/foreign.tar.gz"]}
    manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, **config},
                "layers": [{"mediaType": mt.OCI_LAYER, **layer}, foreign]}
    return push_manifest(registry, repository, tag, json.dumps(manifest).encode(),
                         mt.OCI_MANIFEST)


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/airgap.hangar.hangar:
      certs_dir: "{certs_dir}"
  tasks:
    - name: Mirror from a Bearer-token registry to a Basic-auth registry
      airgap.hangar.hangar_mirror:
        images: [library/hello:v2]
        src_registry: "{token_host}"
        src_username: "{token_user}"
        src_password: "{token_password}"
        dest_registry: "{basic_host}"
        dest_username: "{basic_user}"
        dest_password: "{basic_password}"
        dest_project: "{project}"
    - name: Inspect with credentials from an auth file
      airgap.hangar.hangar_inspect:
        image: "{basic_host}/{project}/hello:v2"
        auth_file: "{auth_file}"
    - name: Fail with a wrong password
      airgap.hangar.hangar_mirror:
        images: [library/hello:oci]
        src_registry: "{token_host}"
        src_username: "{token_user}"
        src_password: "{wrong_password}"
        dest_registry: "{basic_host}"
        dest_project: "{project}"
      ignore_errors: true
"""


def test_no_secret_appears_in_verbose_ansible_output(
        registry_token, registry_basic, seed, tmp_path, monkeypatch, project):
    seed(registry_token)
    seed(registry_basic)
    issued = record_issued_tokens(registry_token, monkeypatch)
    secrets = {
        "token registry password": registry_token.password,
        "basic registry password": registry_basic.password,
        "wrong password": "Wr0ng-" + registry_token.password,
        "base64 user:password (token)": basic_authorization(registry_token).split()[1],
        "base64 user:password (basic)": basic_authorization(registry_basic).split()[1],
    }

    process = run_playbook(tmp_path, PLAYBOOK.format(
        certs_dir=certs_dir(tmp_path, registry_token, registry_basic),
        token_host=registry_token.host, token_user=registry_token.username,
        token_password=registry_token.password, basic_host=registry_basic.host,
        basic_user=registry_basic.username, basic_password=registry_basic.password,
        wrong_password=secrets["wrong password"], project=project,
        auth_file=registry_basic.auth_file))

    output = process.stdout + process.stderr
    assert "ok=3" in output and "ignored=1" in output, output[-3000:]
    assert issued, "the mirror must have used Bearer tokens"
    secrets.update({f"bearer token {number}": token for number, token in enumerate(issued)})
    assert [name for name, value in secrets.items() if value in output] == []
    assert not JWT.search(output)


def record_issued_tokens(registry, monkeypatch) -> list:
    """Keep every token the token server hands out (it never logs them itself)."""
    issued: list = []
    issue = registry.token_server.issue

    def recording_issue(*args, **kwargs) -> str:
        token = issue(*args, **kwargs)
        issued.append(token)
        return token

    monkeypatch.setattr(registry.token_server, "issue", recording_issue)
    return issued


def certs_dir(tmp_path: Path, *registries) -> Path:
    """A certs.d directory trusting the CA of every registry, one subdirectory per host."""
    directory = tmp_path / "certs.d"
    for registry in registries:
        (directory / registry.host).mkdir(parents=True)
        shutil.copy(registry.ca_path, directory / registry.host / "ca.crt")
    return directory


def run_playbook(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(text)
    binary = Path(sys.executable).with_name("ansible-playbook")
    return subprocess.run(
        [str(binary) if binary.exists() else "ansible-playbook", "-vvv", "--diff", "-i",
         "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         str(playbook)], capture_output=True, text=True, timeout=300, check=False,
        env=module_env())


# -- disk full -------------------------------------------------------------------------------


def test_save_fails_before_writing_when_file_system_is_too_small(
        source, big_image, small_fs, run_module):
    directory = small_fs("1m")
    dest = directory / "images.zip"

    outcome = run_module("hangar_save", images=[big_image["reference"]],
                         src_registry=source[0].url, dest=str(dest))

    assert outcome.failed
    assert f"not enough space in {directory}: the archive needs about" in outcome.msg
    assert list(directory.iterdir()) == []


def test_save_cleans_up_when_disk_fills_during_download(
        source, big_image, small_fs, fault_proxy, run_module, tmp_path):
    directory = small_fs("24m")
    dest = directory / "images.zip"
    proxy = fault_proxy(source[0])
    proxy.arm("hold", method="GET", path=f"/blobs/{big_image['layer']}")
    log = tmp_path / "save.log"

    process = run_module.start("hangar_save", log, images=[big_image["reference"]],
                               src_registry=proxy.url, dest=str(dest))
    proxy.wait_for(lambda log: any(r.fault == "hold" for r in log))
    fill(directory, leave=64 * 1024)
    proxy.release()
    process.wait(timeout=120)

    result = json.loads(log.read_text())
    assert result["failed"]
    assert f"no space left on the file system of {directory}" in result["msg"]
    assert leftovers(directory) == []
    # Every image failed, so no archive stands under the final name to look finished.
    assert not dest.exists()


def fill(directory: Path, leave: int) -> None:
    """Fill ``directory``'s file system until only ``leave`` bytes are free."""
    with open(directory / "filler", "wb") as handle:
        while shutil.disk_usage(directory).free > leave:
            handle.write(b"\0" * min(1 << 20, shutil.disk_usage(directory).free - leave))
            handle.flush()
