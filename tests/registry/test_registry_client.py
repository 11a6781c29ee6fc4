# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry client against real docker-registry instances: auth, TLS, manifests, blobs."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

from ansible_collections.airgap.hangar.plugins.module_utils import registry as registry_module
from ansible_collections.airgap.hangar.plugins.module_utils.auth import Token
from ansible_collections.airgap.hangar.plugins.module_utils.credentials import (
    CredentialsError,
    CredentialStore,
)
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.registry import (
    AuthenticationRequired,
    ManifestUnknown,
    RegistryClient,
    RegistryError,
    compute_digest,
)
from ansible_collections.airgap.hangar.plugins.module_utils.tls import TlsSettings
from ansible_collections.airgap.hangar.plugins.module_utils.transport import (
    TlsError,
    TransportSettings,
)
from tests.support.images import inspect_raw


def make_client(registry, *, username=None, password=None, auth_file=None, scheme=None,
                validate_certs=True, ca=True, client_pair=False, certs_dir=None, sink=None):
    tls = TlsSettings(
        validate_certs=validate_certs,
        ca_path=str(registry.ca_path) if ca and registry.ca_path else None,
        client_cert=str(registry.client_cert) if client_pair else None,
        client_key=str(registry.client_key) if client_pair else None,
        certs_dir=str(certs_dir) if certs_dir else None,
    )
    store = CredentialStore(username=username, password=password, auth_file=auth_file,
                            search_defaults=False, secret_sink=sink)
    name = f"{scheme}://{registry.host}" if scheme else registry.host
    settings = TransportSettings(tls=tls, timeout=10, retries=1, retry_delay=0.1)
    return RegistryClient(name, credentials=store, settings=settings, secret_sink=sink)


def test_client_digests_equal_skopeo_for_every_shape(registry_plain, seed):
    images = seed(registry_plain)
    client = make_client(registry_plain, scheme="http")
    for key in ("library/alpine:3.20", "library/busybox:1.36", "library/hello:v2",
                "library/hello:oci", "library/attested:1.0"):
        repository, tag = key.split(":")
        manifest = client.get_manifest(repository, tag)
        raw = inspect_raw(registry_plain, repository, tag)
        assert manifest.raw == raw
        assert manifest.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
        assert manifest.digest == images[key]["digest"]


def test_client_reports_manifest_unknown_when_tag_is_missing(registry_plain, seed):
    seed(registry_plain)
    client = make_client(registry_plain, scheme="http")
    with pytest.raises(ManifestUnknown, match=r"manifest unknown: .*library/hello:nope "
                                              r"does not exist"):
        client.get_manifest("library/hello", "nope")
    assert client.head_manifest("library/hello", "nope") is None


def test_client_basic_auth_pulls_with_credentials(registry_basic, seed):
    images = seed(registry_basic)
    client = make_client(registry_basic, username=registry_basic.username,
                         password=registry_basic.password)
    assert client.get_manifest("library/hello", "v2").digest == images["library/hello:v2"]["digest"]


def test_client_basic_auth_without_credentials_names_registry_and_sources(registry_basic, seed):
    seed(registry_basic)
    client = make_client(registry_basic)
    with pytest.raises(AuthenticationRequired) as caught:
        client.get_manifest("library/hello", "v2")
    message = str(caught.value)
    assert f"authentication required by {registry_basic.host}" in message
    assert "no credentials" in message


def test_client_basic_auth_with_wrong_password_fails_without_showing_it(registry_basic, seed):
    seed(registry_basic)
    client = make_client(registry_basic, username="hangar", password="not-the-password")
    with pytest.raises(AuthenticationRequired) as caught:
        client.get_manifest("library/hello", "v2")
    assert "not-the-password" not in str(caught.value)
    assert "module options" in str(caught.value)


def test_client_bearer_token_is_cached_per_scope(registry_token, seed):
    images = seed(registry_token)
    secrets = set()
    client = make_client(registry_token, username=registry_token.username,
                         password=registry_token.password, sink=secrets.add)
    registry_token.token_server.clear_requests()
    for unused_round in range(3):
        assert client.get_manifest("library/alpine", "3.20").digest == \
            images["library/alpine:3.20"]["digest"]
    client.get_manifest("library/busybox", "1.36")
    scopes = [request.scopes for request in registry_token.token_server.requests]
    assert len(scopes) == 2, scopes
    assert registry_token.password in secrets
    assert any(value.count(".") == 2 for value in secrets), "the JWT must be registered as secret"


def test_client_replaces_a_token_the_registry_rejects_as_expired(registry_token, seed):
    images = seed(registry_token)
    client = make_client(registry_token, username=registry_token.username,
                         password=registry_token.password)
    scope = "repository:library/hello:pull"
    # distribution accepts tokens up to 60 s past exp, so the stale one is 120 s past it.
    stale = registry_token.token_server.issue(
        "hangar", [{"type": "repository", "name": "library/hello", "actions": ["pull"]}],
        expires_in=-120)
    client.base_url  # pylint: disable=pointless-statement  # learn the challenge first
    client.auth.tokens.put(frozenset([scope]), Token(stale, time.monotonic() + 300))
    registry_token.token_server.clear_requests()
    assert client.get_manifest("library/hello", "v2").digest == images["library/hello:v2"]["digest"]
    assert [request.scopes for request in registry_token.token_server.requests] == [[scope]]


def test_client_bearer_push_widens_scope_to_pull_push(registry_token, seed):
    seed(registry_token)
    client = make_client(registry_token, username=registry_token.username,
                         password=registry_token.password)
    data = b"widened scope blob"
    digest = compute_digest(data)
    client.get_manifest("library/hello", "v2")
    client.upload_blob("scratch/widen", digest, len(data), lambda offset: [data])
    assert client.blob_size("scratch/widen", digest) == len(data)
    pushed = [r.scopes for r in registry_token.token_server.requests
              if any("scratch/widen" in s for s in r.scopes)]
    assert any("repository:scratch/widen:pull,push" in scopes for scopes in pushed)


def test_client_reader_cannot_push_and_is_told_so(registry_token, seed):
    seed(registry_token)
    client = make_client(registry_token, username=registry_token.reader_username,
                         password=registry_token.reader_password)
    assert client.get_manifest("library/hello", "v2")
    data = b"reader blob"
    with pytest.raises(RegistryError) as caught:
        client.upload_blob("scratch/reader", compute_digest(data), len(data), lambda o: [data])
    assert caught.value.status in (401, 403)
    assert registry_token.host in str(caught.value)


def test_client_token_service_rejects_wrong_password(registry_token, seed):
    seed(registry_token)
    client = make_client(registry_token, username="hangar", password="wrong")
    with pytest.raises(Exception) as caught:
        client.get_manifest("library/hello", "v2")
    assert "refused the credentials" in str(caught.value)
    assert "wrong" not in str(caught.value).replace("wrong password", "")


def test_client_refuses_untrusted_certificate_and_names_the_fix(registry_tls):
    client = make_client(registry_tls, ca=False)
    with pytest.raises(TlsError) as caught:
        client.list_tags("library/hello")
    message = str(caught.value)
    assert "not trusted" in message and "ca_path" in message and registry_tls.host in message


def test_client_trusts_ca_from_certs_d_directory(registry_tls, seed, tmp_path):
    images = seed(registry_tls)
    host_dir = tmp_path / registry_tls.host
    host_dir.mkdir()
    (host_dir / "ca.crt").write_bytes(Path(registry_tls.ca_path).read_bytes())
    client = make_client(registry_tls, ca=False, certs_dir=tmp_path)
    assert client.get_manifest("library/hello", "oci").digest == \
        images["library/hello:oci"]["digest"]


def test_client_without_verification_accepts_unknown_ca(registry_tls, seed):
    seed(registry_tls)
    client = make_client(registry_tls, ca=False, validate_certs=False)
    assert client.get_manifest("library/hello", "oci")
    assert client.base_url.startswith("https://")


def test_client_mtls_needs_client_certificate(registry_mtls, seed):
    images = seed(registry_mtls)
    without = make_client(registry_mtls)
    with pytest.raises(TlsError):
        without.list_tags("library/hello")
    with_pair = make_client(registry_mtls, client_pair=True)
    assert with_pair.get_manifest("library/hello", "v2").digest == \
        images["library/hello:v2"]["digest"]


def test_client_mtls_takes_client_pair_from_certs_d(registry_mtls, seed, tmp_path):
    seed(registry_mtls)
    host_dir = tmp_path / registry_mtls.host
    host_dir.mkdir()
    (host_dir / "ca.crt").write_bytes(Path(registry_mtls.ca_path).read_bytes())
    (host_dir / "client.cert").write_bytes(Path(registry_mtls.client_cert).read_bytes())
    (host_dir / "client.key").write_bytes(Path(registry_mtls.client_key).read_bytes())
    client = make_client(registry_mtls, ca=False, certs_dir=tmp_path)
    assert client.get_manifest("library/hello", "v2")


def test_client_certs_d_key_without_certificate_is_an_error(registry_mtls, tmp_path):
    host_dir = tmp_path / registry_mtls.host
    host_dir.mkdir()
    (host_dir / "client.key").write_bytes(Path(registry_mtls.client_key).read_bytes())
    client = make_client(registry_mtls, certs_dir=tmp_path)
    with pytest.raises(Exception, match="missing client certificate client.cert"):
        client.list_tags("library/hello")


def test_client_falls_back_to_http_only_without_verification(registry_plain, seed):
    images = seed(registry_plain)
    insecure = make_client(registry_plain, validate_certs=False)
    assert insecure.get_manifest("library/hello", "v2").digest == \
        images["library/hello:v2"]["digest"]
    assert insecure.base_url.startswith("http://")
    strict = make_client(registry_plain)
    with pytest.raises(TlsError, match="server gave HTTP response to HTTPS client"):
        strict.list_tags("library/hello")


def test_client_explains_http_request_to_https_server(registry_tls):
    client = make_client(registry_tls, scheme="http")
    with pytest.raises(RegistryError, match="HTTP request to an HTTPS server"):
        client.list_tags("library/hello")


def test_client_upload_mount_and_chunked_upload(tmp_registry, monkeypatch):
    registry = tmp_registry("plain")
    client = make_client(registry, scheme="http")
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = compute_digest(data)
    monkeypatch.setattr(registry_module, "CHUNKED_UPLOAD_THRESHOLD", 1024 * 1024)
    monkeypatch.setattr(registry_module, "UPLOAD_CHUNK", 1024 * 1024)
    pieces = [data[i:i + 100_000] for i in range(0, len(data), 100_000)]
    client.upload_blob("one/repo", digest, len(data), lambda offset: iter(pieces))
    assert b"".join(client.open_blob("one/repo", digest, len(data))) == data
    assert client.blob_size("two/repo", digest) is None
    assert client.mount_blob("two/repo", digest, "one/repo") is True
    assert client.blob_size("two/repo", digest) == len(data)
    patches = [e for e in registry.access_log_lines() if e.method == "PATCH"]
    assert len(patches) == 4


def test_chunked_upload_of_a_short_source_fails_and_leaves_no_blob(tmp_registry, monkeypatch):
    registry = tmp_registry("plain")
    client = make_client(registry, scheme="http")
    data = os.urandom(2 * 1024 * 1024 + 5)
    digest = compute_digest(data)
    monkeypatch.setattr(registry_module, "CHUNKED_UPLOAD_THRESHOLD", 1024 * 1024)
    monkeypatch.setattr(registry_module, "UPLOAD_CHUNK", 1024 * 1024)
    short = data[:-100]

    with pytest.raises(RegistryError, match=f"the source of short/repo@{digest} ended"):
        client.upload_blob("short/repo", digest, len(data), lambda offset: iter([short]))

    assert client.blob_size("short/repo", digest) is None


def test_client_upload_of_wrong_bytes_is_rejected_by_digest(tmp_registry):
    registry = tmp_registry("plain")
    client = make_client(registry, scheme="http")
    digest = compute_digest(b"the real content")
    with pytest.raises(RegistryError) as caught:
        client.upload_blob("bad/repo", digest, 5, lambda offset: [b"other"])
    assert "DIGEST_INVALID" in str(caught.value) or caught.value.status == 400
    assert client.blob_size("bad/repo", digest) is None


def test_client_lists_tags_across_pages(registry_plain, seed, monkeypatch):
    seed(registry_plain)
    monkeypatch.setattr(registry_module, "TAGS_PAGE", 1)
    client = make_client(registry_plain, scheme="http")
    tags = client.list_tags("library/hello")
    assert "v2" in tags and "oci" in tags and len(tags) == len(set(tags))


def write_auth_file(path: Path, host: str, user: str, password: str) -> Path:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return path


def test_client_reads_credentials_from_auth_file(registry_basic, seed, tmp_path):
    images = seed(registry_basic)
    secrets = set()
    auth_file = write_auth_file(tmp_path / "auth.json", registry_basic.host,
                                registry_basic.username, registry_basic.password)
    client = make_client(registry_basic, auth_file=str(auth_file), sink=secrets.add)
    assert client.get_manifest("library/hello", "v2").digest == images["library/hello:v2"]["digest"]
    assert registry_basic.password in secrets


@pytest.mark.parametrize("fixture", ["registry_basic", "registry_token"])
def test_client_uses_the_auth_file_entry_of_the_repository_namespace(
        fixture, request, seed, tmp_path):
    """Per-project robot accounts: host/project entries win over the host entry."""
    registry = request.getfixturevalue(fixture)
    images = seed(registry)
    good = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    wrong = base64.b64encode(f"{registry.username}:wrong-password".encode()).decode()
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {registry.host: {"auth": wrong},
                                               f"{registry.host}/library": {"auth": good}}}))
    client = make_client(registry, auth_file=str(auth_file))

    assert client.get_manifest("library/hello", "v2").digest == \
        images["library/hello:v2"]["digest"]
    # Basic: the registry refuses the host entry; token: its token service does.
    refused = {"registry_basic": f"tried auth file {auth_file}, which it refused",
               "registry_token": f"refused the credentials from auth file {auth_file}"}
    with pytest.raises(HangarError, match=re.escape(refused[fixture])):
        client.get_manifest("other/hello", "v2")


def test_client_reads_credentials_from_docker_config_and_helper(
        registry_basic, seed, tmp_path, monkeypatch):
    seed(registry_basic)
    helper = tmp_path / "bin" / "docker-credential-hangartest"
    helper.parent.mkdir()
    answer = json.dumps({"ServerURL": registry_basic.host, "Username": registry_basic.username,
                         "Secret": registry_basic.password})
    helper.write_text(f"#!/bin/sh\nread server\necho '{answer}'\n")
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(
        json.dumps({"credHelpers": {registry_basic.host: "hangartest"}}))
    monkeypatch.setenv("PATH", f"{helper.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    store = CredentialStore(search_defaults=True)
    credentials = store.lookup(registry_basic.host)
    assert credentials.username == registry_basic.username
    assert credentials.source == "credential helper docker-credential-hangartest"


def test_client_missing_credential_helper_is_a_clear_error(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "doesnotexist"}))
    store = CredentialStore(auth_file=str(config), search_defaults=False)
    with pytest.raises(CredentialsError, match="docker-credential-doesnotexist .* not installed"):
        store.lookup("registry.example.com")


def test_client_unreadable_auth_file_is_a_clear_error(tmp_path):
    config = tmp_path / "auth.json"
    config.write_text("{not json")
    store = CredentialStore(auth_file=str(config), search_defaults=False)
    with pytest.raises(CredentialsError, match=f"auth file {config} is not valid JSON"):
        store.lookup("registry.example.com")
