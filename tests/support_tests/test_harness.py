# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test harness itself, against real docker-registry and skopeo on loopback."""

from __future__ import annotations

import gzip
import io
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import requests
import yaml
from cryptography import x509

from tests.support import (
    RegistryServer,
    TokenServer,
    TokenUser,
    build_image,
    build_signature,
    free_port,
    generate_certs,
    inspect_raw,
    push_image,
    signature_tag,
)
from tests.support.images import COSIGN_SIMPLESIGNING, IN_TOTO, ImageBuildError, sha256_digest
from tests.support.ports import is_bindable
from tests.support.registry import SERVICE, parse_access_line, pid_alive
from tests.support.token_server import REGISTRY_LEEWAY

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ALL_MANIFEST_TYPES = ", ".join(
    [
        OCI_INDEX,
        DOCKER_LIST,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def _token(registry: RegistryServer, scopes: list[str], auth: tuple | None) -> requests.Response:
    assert registry.token_server is not None
    return requests.get(
        registry.token_server.realm,
        params={"service": SERVICE, "scope": scopes},
        auth=auth,
        **registry.request_kwargs(),
    )


def _get_manifest(registry: RegistryServer, repository: str, reference: str, token: str):
    return requests.get(
        f"{registry.url}/v2/{repository}/manifests/{reference}",
        headers={"Authorization": f"Bearer {token}", "Accept": ALL_MANIFEST_TYPES},
        **registry.request_kwargs(),
    )


def _blob_bytes(layout_dir: Path, digest: str) -> bytes:
    return (layout_dir / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()


# ports and certificates


def test_free_port_hands_out_distinct_bindable_ports_when_called_repeatedly() -> None:
    ports = [free_port() for unused_round in range(20)]

    assert len(set(ports)) == 20
    assert all(is_bindable(port) for port in ports)


def test_generate_certs_names_loopback_in_server_certificate_when_called(tmp_path: Path) -> None:
    bundle = generate_certs(tmp_path)

    server = x509.load_pem_x509_certificate(bundle.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(bundle.ca_cert.read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    server.verify_directly_issued_by(ca)
    x509.load_pem_x509_certificate(bundle.client_cert.read_bytes()).verify_directly_issued_by(ca)


# registry modes


@pytest.mark.parametrize("fixture", ["registry_plain", "registry_tls", "registry_mtls"])
def test_registry_answers_200_when_no_credentials_needed(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    registry: RegistryServer = request.getfixturevalue(fixture)

    answer = requests.get(f"{registry.url}/v2/", **registry.request_kwargs())

    assert answer.status_code == 200
    assert answer.headers["Docker-Distribution-Api-Version"] == "registry/2.0"


def test_registry_serves_https_when_mode_tls(registry_tls: RegistryServer) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{registry_tls.url}/v2/", timeout=5)

    assert registry_tls.url.startswith("https://127.0.0.1:")


@pytest.mark.parametrize("fixture", ["registry_basic", "registry_basic_http"])
def test_registry_challenges_basic_when_mode_uses_htpasswd(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    registry: RegistryServer = request.getfixturevalue(fixture)
    url = f"{registry.url}/v2/"

    anonymous = requests.get(url, **registry.request_kwargs())
    wrong = requests.get(url, auth=(registry.username, "wrong"), **registry.request_kwargs())
    credentials = (registry.username, registry.password)
    right = requests.get(url, auth=credentials, **registry.request_kwargs())

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="airgap.hangar"'
    assert wrong.status_code == 401
    assert right.status_code == 200


def test_registry_challenges_bearer_when_mode_token(registry_token: RegistryServer) -> None:
    answer = requests.get(f"{registry_token.url}/v2/", **registry_token.request_kwargs())

    assert answer.status_code == 401
    assert registry_token.token_server is not None
    expected = f'Bearer realm="{registry_token.token_server.realm}",service="{SERVICE}"'
    assert answer.headers["WWW-Authenticate"] == expected


def test_registry_fails_handshake_when_mtls_client_sends_no_certificate(
    registry_mtls: RegistryServer,
) -> None:
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(f"{registry_mtls.url}/v2/", verify=str(registry_mtls.ca_path), timeout=5)


def test_tmp_registry_applies_extra_config_when_given(tmp_registry) -> None:
    registry = tmp_registry("plain", extra_config={"http": {"relativeurls": True}})

    upload = requests.post(f"{registry.url}/v2/extra/blobs/uploads/", **registry.request_kwargs())

    assert upload.status_code == 202
    assert upload.headers["Location"].startswith("/v2/extra/blobs/uploads/")
    assert "relativeurls: true" in registry.config_path.read_text()


@pytest.mark.registry
def test_registry_stop_ends_process_and_removes_workdir_when_stopped() -> None:
    registry = RegistryServer("plain").start()
    pid, workdir = registry.pid, registry.workdir

    registry.stop()

    assert pid is not None and not pid_alive(pid)
    assert workdir is not None and not workdir.exists()


# token flow by hand


def test_token_lets_hangar_pull_manifest_when_scope_granted(
    registry_token: RegistryServer, seed
) -> None:
    hello = seed(registry_token)["library/hello:v2"]
    scope = "repository:library/hello:pull,push"

    answer = _token(registry_token, [scope], (registry_token.username, registry_token.password))
    token = answer.json()["token"]
    manifest = _get_manifest(registry_token, "library/hello", "v2", token)

    assert answer.status_code == 200
    assert answer.json()["access_token"] == token
    assert registry_token.token_server.requests[-1].granted == [
        {"type": "repository", "name": "library/hello", "actions": ["pull", "push"]}
    ]
    assert manifest.status_code == 200
    assert sha256_digest(manifest.content) == hello["digest"]


def test_token_server_answers_401_when_password_wrong(registry_token: RegistryServer) -> None:
    answer = _token(registry_token, ["repository:library/hello:pull"], ("hangar", "wrong"))

    assert answer.status_code == 401
    recorded = registry_token.token_server.requests[-1]
    assert (recorded.user, recorded.status, recorded.granted) == ("hangar", 401, [])


def test_token_for_reader_cannot_start_upload_when_push_requested(
    registry_token: RegistryServer,
) -> None:
    scope = "repository:library/reader-push:pull,push"
    credentials = (registry_token.reader_username, registry_token.reader_password)

    token = _token(registry_token, [scope], credentials).json()["token"]
    upload = requests.post(
        f"{registry_token.url}/v2/library/reader-push/blobs/uploads/",
        headers={"Authorization": f"Bearer {token}"},
        **registry_token.request_kwargs(),
    )

    assert registry_token.token_server.requests[-1].granted == [
        {"type": "repository", "name": "library/reader-push", "actions": ["pull"]}
    ]
    assert upload.status_code in (401, 403)
    assert 'error="insufficient_scope"' in upload.headers["WWW-Authenticate"]


def test_token_for_anonymous_grants_nothing_when_no_public_repos(
    registry_token: RegistryServer, seed
) -> None:
    seed(registry_token)

    token = _token(registry_token, ["repository:library/hello:pull"], None).json()["token"]
    manifest = _get_manifest(registry_token, "library/hello", "v2", token)

    recorded = registry_token.token_server.requests[-1]
    assert (recorded.user, recorded.granted) == (None, [])
    assert manifest.status_code == 401


def test_token_for_anonymous_grants_pull_when_repository_public(tmp_registry) -> None:
    registry = tmp_registry("token", public_repos="library/*")

    granted = registry.token_server.grant(
        None, ["repository:library/hello:pull,push", "repository:team/app:pull"]
    )

    assert granted == [{"type": "repository", "name": "library/hello", "actions": ["pull"]}]


def test_registry_rejects_token_when_expired_beyond_leeway(registry_token: RegistryServer) -> None:
    access = [{"type": "repository", "name": "library/expiry", "actions": ["pull"]}]
    server = registry_token.token_server
    expired = server.issue("hangar", access, expires_in=-(REGISTRY_LEEWAY + 10))
    within_leeway = server.issue("hangar", access, expires_in=-(REGISTRY_LEEWAY // 2))

    rejected = _get_manifest(registry_token, "library/expiry", "latest", expired)
    accepted = _get_manifest(registry_token, "library/expiry", "latest", within_leeway)

    assert rejected.status_code == 401
    assert 'error="invalid_token"' in rejected.headers["WWW-Authenticate"]
    # Past exp but inside the leeway: authorised, so the registry looks the tag up (404).
    assert accepted.status_code == 404


def test_token_server_refreshes_token_when_oauth_post_used(registry_token: RegistryServer) -> None:
    form = {
        "grant_type": "password",
        "service": SERVICE,
        "client_id": "airgap.hangar-tests",
        "scope": "repository:library/hello:pull",
        "username": registry_token.username,
        "password": registry_token.password,
        "access_type": "offline",
    }
    realm = registry_token.token_server.realm

    first = requests.post(realm, data=form, **registry_token.request_kwargs())
    refresh_token = first.json()["refresh_token"]
    refresh = {**form, "grant_type": "refresh_token", "refresh_token": refresh_token}
    del refresh["password"]
    second = requests.post(realm, data=refresh, **registry_token.request_kwargs())

    assert first.status_code == 200
    assert second.status_code == 200
    recorded = registry_token.token_server.requests[-1]
    assert (recorded.method, recorded.grant_type) == ("POST", "refresh_token")
    assert recorded.user == "hangar"
    assert recorded.granted == [
        {"type": "repository", "name": "library/hello", "actions": ["pull"]}
    ]


def test_token_server_answers_404_to_post_when_oauth_post_disabled(tmp_path: Path) -> None:
    bundle = generate_certs(tmp_path)
    server = TokenServer(
        signing_cert=bundle.signing_cert,
        signing_key=bundle.signing_key,
        service="svc",
        issuer="iss",
        users={"hangar": TokenUser("pw", ("pull", "push"))},
        oauth_post=False,
    )

    with server:
        post = requests.post(server.realm, data={"grant_type": "password"}, timeout=5)
        get = requests.get(
            server.realm, params={"service": "svc"}, auth=("hangar", "pw"), timeout=5
        )

    assert post.status_code == 404
    assert get.status_code == 200
    assert server.url.startswith("http://")


def test_token_server_records_no_password_when_requests_logged(
    registry_token: RegistryServer,
) -> None:
    _token(registry_token, ["repository:library/hello:pull"], ("hangar", "not-the-password"))
    _token(registry_token, ["repository:library/hello:pull"], ("hangar", registry_token.password))

    record_file = registry_token.workdir / "token-requests.jsonl"
    recorded = repr(registry_token.token_server.requests) + record_file.read_text()
    assert "not-the-password" not in recorded
    assert registry_token.password not in recorded
    assert '"user": "hangar"' in record_file.read_text()


# images


@pytest.mark.skopeo
@pytest.mark.parametrize(
    ("kind", "media_type"),
    [
        ("docker", "application/vnd.docker.distribution.manifest.v2+json"),
        ("oci", "application/vnd.oci.image.manifest.v1+json"),
        ("docker-list", DOCKER_LIST),
        ("oci-index", OCI_INDEX),
    ],
)
def test_push_image_keeps_digest_when_shape_pushed(
    kind: str, media_type: str, registry_plain: RegistryServer, tmp_path: Path
) -> None:
    built = build_image(tmp_path, kind, kind=kind, seed="shape")
    repository = f"shapes/{kind}"

    push_image(built, registry_plain, repository, "v1")
    raw = inspect_raw(registry_plain, repository, "v1")

    assert raw == built.raw
    assert sha256_digest(raw) == built.digest
    assert json.loads(raw)["mediaType"] == media_type
    for platform_digest in built.platform_digests.values():
        child = inspect_raw(registry_plain, repository, platform_digest)
        assert sha256_digest(child) == platform_digest


def test_build_image_lists_three_platforms_when_index_built(tmp_path: Path) -> None:
    built = build_image(tmp_path, "list", kind="docker-list")

    platforms = [entry["platform"] for entry in json.loads(built.raw)["manifests"]]

    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
        {"architecture": "s390x", "os": "linux"},
    ]
    assert list(built.platform_digests) == ["linux/amd64", "linux/arm64/v8", "linux/s390x"]


def test_build_image_writes_real_gzip_layers_when_sizes_given(tmp_path: Path) -> None:
    built = build_image(tmp_path, "layers", kind="oci", layer_sizes=[1000, 70000], seed=7)

    manifest = json.loads(built.raw)
    config = json.loads(_blob_bytes(built.layout_dir, manifest["config"]["digest"]))
    diff_ids = config["rootfs"]["diff_ids"]
    for layer, diff_id, size in zip(manifest["layers"], diff_ids, [1000, 70000]):
        compressed = _blob_bytes(built.layout_dir, layer["digest"])
        tar_bytes = gzip.decompress(compressed)
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            members = tar.getmembers()
        assert sha256_digest(compressed) == layer["digest"]
        assert len(compressed) == layer["size"]
        assert sha256_digest(tar_bytes) == diff_id
        assert [member.size for member in members] == [size]


def test_build_image_repeats_digest_when_seed_same(tmp_path: Path) -> None:
    first = build_image(tmp_path / "a", "img", kind="oci-index", seed="same")
    second = build_image(tmp_path / "b", "img", kind="oci-index", seed="same")
    other = build_image(tmp_path / "c", "img", kind="oci-index", seed="other")

    assert first.digest == second.digest
    assert first.digest != other.digest
    assert len(set(first.platform_digests.values())) == 3


def test_build_image_refuses_attestation_when_kind_not_oci_index(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="attestation manifests need an OCI index"):
        build_image(tmp_path, "bad", kind="docker-list", attestation=True)


@pytest.mark.skopeo
def test_build_image_adds_attestation_manifests_when_asked(
    registry_plain: RegistryServer, tmp_path: Path
) -> None:
    built = build_image(tmp_path, "attested", kind="oci-index", attestation=True)

    push_image(built, registry_plain, "shapes/attested", "1.0")
    index = json.loads(inspect_raw(registry_plain, "shapes/attested", "1.0"))
    attestations = [m for m in index["manifests"] if m["platform"]["os"] == "unknown"]
    first = attestations[0]
    statement = json.loads(inspect_raw(registry_plain, "shapes/attested", first["digest"]))

    assert len(attestations) == 3
    assert first["platform"] == {"architecture": "unknown", "os": "unknown"}
    assert first["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
    amd64 = built.platform_digests["linux/amd64"]
    assert first["annotations"]["vnd.docker.reference.digest"] == amd64
    assert [layer["mediaType"] for layer in statement["layers"]] == [IN_TOTO]


@pytest.mark.skopeo
def test_build_signature_pushes_cosign_tag_when_digest_given(
    registry_plain: RegistryServer, tmp_path: Path
) -> None:
    subject = build_image(tmp_path, "subject", kind="docker")
    push_image(subject, registry_plain, "shapes/signed", "v1")
    signature = build_signature(tmp_path, "sig", subject.digest, "shapes/signed")
    tag = signature_tag(subject.digest)

    push_image(signature, registry_plain, "shapes/signed", tag)
    raw = inspect_raw(registry_plain, "shapes/signed", tag)

    assert tag == "sha256-" + subject.digest.split(":")[1] + ".sig"
    assert sha256_digest(raw) == signature.digest
    assert [layer["mediaType"] for layer in json.loads(raw)["layers"]] == [COSIGN_SIMPLESIGNING]


@pytest.mark.skopeo
def test_push_image_raises_when_pushed_digest_differs(
    registry_plain: RegistryServer, tmp_path: Path
) -> None:
    built = build_image(tmp_path, "tampered", kind="oci")
    built.digest = "sha256:" + "0" * 64

    with pytest.raises(ImageBuildError, match="not as the built sha256:0000"):
        push_image(built, registry_plain, "shapes/tampered", "v1")


@pytest.mark.parametrize(
    "fixture",
    ["registry_tls", "registry_basic", "registry_basic_http", "registry_token", "registry_mtls"],
)
def test_seed_pushes_every_standard_tag_when_registry_needs_tls_or_auth(
    fixture: str, request: pytest.FixtureRequest, seed
) -> None:
    registry: RegistryServer = request.getfixturevalue(fixture)

    seeded = seed(registry)

    assert len(seeded) == 6
    for entry in seeded.values():
        raw = inspect_raw(registry, entry["repository"], entry["tag"])
        assert sha256_digest(raw) == entry["digest"], entry["reference"]


def test_seed_describes_standard_set_when_pushed(registry_plain: RegistryServer, seed) -> None:
    seeded = seed(registry_plain)

    hello = seeded["library/hello:v2"]
    signature_key = "library/hello:" + signature_tag(hello["digest"])
    assert seeded["library/alpine:3.20"]["media_type"] == DOCKER_LIST
    assert seeded["library/busybox:1.36"]["media_type"] == OCI_INDEX
    assert list(seeded["library/busybox:1.36"]["platforms"]) == [
        "linux/amd64",
        "linux/arm64/v8",
        "linux/s390x",
    ]
    assert len(seeded["library/attested:1.0"]["attestations"]) == 3
    assert seeded[signature_key]["signs"] == hello["digest"]


# access log


@pytest.mark.skopeo
def test_access_log_shows_manifest_put_when_image_pushed(
    registry_plain: RegistryServer, tmp_path: Path
) -> None:
    built = build_image(tmp_path, "logged", kind="docker")
    mark = registry_plain.log_mark()

    push_image(built, registry_plain, "logs/pushed", "v1")
    entries = registry_plain.requests_since(mark)

    manifest_puts = [e for e in entries if e.method == "PUT" and "/manifests/" in e.path]
    assert [(e.path, e.status) for e in manifest_puts] == [("/v2/logs/pushed/manifests/v1", 201)]
    assert all(e.path.startswith("/v2/") for e in entries)


def test_requests_since_sees_no_write_when_only_reading(
    registry_plain: RegistryServer, seed
) -> None:
    seed(registry_plain)
    mark = registry_plain.log_mark()

    inspect_raw(registry_plain, "library/hello", "v2")
    entries = registry_plain.requests_since(mark)

    assert entries
    assert not [e for e in entries if e.is_write]
    assert ("GET", "/v2/library/hello/manifests/v2", 200) in [
        (e.method, e.path, e.status) for e in entries
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '127.0.0.1 - - [03/Dec/2026:19:06:55 +0000] "PATCH /v2/a/b/blobs/uploads/u?_state=x '
            'HTTP/1.1" 202 0 "" "skopeo/1.9.3 \\"quoted\\""',
            ("PATCH", "/v2/a/b/blobs/uploads/u", "_state=x", 202, 0),
        ),
        (
            '127.0.0.1 - - [03/Dec/2026:19:06:55 +0000] "GET /v2/ HTTP/1.1" 401 87',
            ("GET", "/v2/", "", 401, 87),
        ),
    ],
)
def test_parse_access_line_reads_method_path_status_when_combined_format(
    line: str, expected: tuple
) -> None:
    entry = parse_access_line(line)

    assert entry is not None
    assert (entry.method, entry.path, entry.query, entry.status, entry.size) == expected


def test_parse_access_line_skips_line_when_registry_message() -> None:
    line = (
        'time="2026-12-03T19:06:55Z" level=info msg="response completed" '
        'http.request.method=GET http.request.uri="/v2/" http.response.status=200'
    )

    assert parse_access_line(line) is None


# command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.support", *args],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


@pytest.mark.registry
@pytest.mark.skopeo
def test_cli_round_trip_leaves_no_process_when_stopped(tmp_path: Path) -> None:
    started = _cli("start", "--mode", "basic", "--state-dir", str(tmp_path), "--name", "src")
    state = json.loads((tmp_path / "src.json").read_text())
    variables = yaml.safe_load((tmp_path / "src.yml").read_text())
    seeded = _cli("seed", "--state-dir", str(tmp_path), "--name", "src")
    images = json.loads((tmp_path / "src-images.json").read_text())
    answer = requests.get(
        f"{variables['src_url']}/v2/library/hello/manifests/v2",
        auth=(variables["src_username"], variables["src_password"]),
        headers={"Accept": ALL_MANIFEST_TYPES},
        verify=variables["src_ca_path"],
        timeout=10,
    )
    stopped = _cli("stop", "--state-dir", str(tmp_path))

    assert (started.returncode, seeded.returncode, stopped.returncode) == (0, 0, 0), (
        started.stderr + seeded.stderr + stopped.stderr
    )
    assert variables["src_registry"] == state["registry"]
    assert yaml.safe_load((tmp_path / "src-images.yml").read_text())["src_images"] == images
    assert sha256_digest(answer.content) == images["library/hello:v2"]["digest"]
    assert not pid_alive(state["pid"])
    assert not pid_alive(state["registry_pid"])
    assert not (tmp_path / "src.json").exists()


@pytest.mark.registry
def test_cli_stop_kills_registry_when_supervisor_was_killed(tmp_path: Path) -> None:
    started = _cli("start", "--mode", "plain", "--state-dir", str(tmp_path))
    state = json.loads((tmp_path / "plain.json").read_text())
    os.kill(state["pid"], signal.SIGKILL)

    stopped = _cli("stop", "--state-dir", str(tmp_path), "--name", "plain", "--purge")

    assert (started.returncode, stopped.returncode) == (0, 0), started.stderr + stopped.stderr
    assert not pid_alive(state["registry_pid"])
    assert not (tmp_path / "plain").exists()


def test_cli_start_refuses_name_when_not_an_ansible_identifier(tmp_path: Path) -> None:
    result = _cli("start", "--mode", "plain", "--state-dir", str(tmp_path), "--name", "my-reg")

    assert result.returncode == 1
    assert "cannot prefix Ansible variables" in result.stderr
