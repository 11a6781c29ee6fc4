# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for image reference parsing, registry names and digests."""

from __future__ import annotations

import pytest

from ansible_collections.airgap.hangar.plugins.module_utils.reference import (
    Reference,
    ReferenceError,
    digest_hex,
    normalize_registry,
    parse_reference,
    registry_api_host,
    split_registry_url,
    validate_digest,
)

SHA256 = "sha256:" + "0123456789abcdef" * 4
SHA512 = "sha512:" + "0123456789abcdef" * 8

# text -> (registry, repository, tag, explicit_registry); one row per line of Hangar's table
DECOMPOSITION = [
    pytest.param("nginx:1.22", ("docker.io", "library/nginx", "1.22", False), id="1-segment"),
    pytest.param("nginx", ("docker.io", "library/nginx", "latest", False), id="1-segment-no-tag"),
    pytest.param("reg.io/nginx", ("reg.io", "library/nginx", "latest", True), id="2-dot"),
    pytest.param(
        "127.0.0.1:5000/nginx:1", ("127.0.0.1:5000", "library/nginx", "1", True), id="2-port"
    ),
    pytest.param("localhost/nginx", ("localhost", "library/nginx", "latest", True), id="2-local"),
    pytest.param(
        "cnrancher/hangar:v1.9.0",
        ("docker.io", "cnrancher/hangar", "v1.9.0", False),
        id="2-project",
    ),
    pytest.param(
        "quay.io/skopeo/stable", ("quay.io", "skopeo/stable", "latest", True), id="3-registry"
    ),
    pytest.param("rancher/a/b", ("rancher", "a/b", "latest", True), id="3-always-registry"),
    pytest.param(
        "registry.abc.com/a/b/c/image:latest",
        ("registry.abc.com", "a/b/c/image", "latest", True),
        id="4-registry-nested",
    ),
    pytest.param("a/b/c/image:2", ("docker.io", "a/b/c/image", "2", False), id="4-no-registry"),
    pytest.param(
        "localhost:5000/a/b/c", ("localhost:5000", "a/b/c", "latest", True), id="4-local-port"
    ),
]


@pytest.mark.parametrize(("text", "expected"), DECOMPOSITION)
def test_parse_reference_follows_hangar_table_for_each_segment_count(
    text: str, expected: tuple
) -> None:
    ref = parse_reference(text)

    assert (ref.registry, ref.repository, ref.tag, ref.explicit_registry) == expected


def test_parse_reference_splits_project_and_nested_name() -> None:
    ref = parse_reference("registry.abc.com/a/b/c/image:latest")

    assert ref.project == "a"
    assert ref.name == "b/c/image"
    assert str(ref) == "registry.abc.com/a/b/c/image:latest"


def test_parse_reference_keeps_digest_without_tag_when_pinned() -> None:
    ref = parse_reference(f"nginx@{SHA256}")

    assert ref.tag is None
    assert ref.digest == SHA256
    assert ref.ident == SHA256
    assert str(ref) == f"docker.io/library/nginx@{SHA256}"


def test_parse_reference_keeps_tag_and_digest_when_both_given() -> None:
    ref = parse_reference(f"127.0.0.1:5000/library/x:1.0@{SHA512}")

    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        "127.0.0.1:5000",
        "library/x",
        "1.0",
        SHA512,
    )
    assert ref.ident == SHA512
    assert ref.tag_or_latest == "1.0"


def test_parse_reference_does_not_take_port_for_tag_when_registry_has_port() -> None:
    ref = parse_reference("127.0.0.1:5000/library/x")

    assert ref.registry == "127.0.0.1:5000"
    assert ref.tag == "latest"
    assert ref.ident == "latest"


@pytest.mark.parametrize(
    "text",
    ["index.docker.io/library/nginx", "registry-1.docker.io/library/nginx", "DOCKER.IO/nginx"],
)
def test_parse_reference_normalizes_docker_hub_aliases(text: str) -> None:
    ref = parse_reference(text)

    assert ref == parse_reference("nginx")
    assert str(ref) == "docker.io/library/nginx:latest"
    assert ref.explicit_registry is True


def test_parse_reference_lowercases_registry_host_only() -> None:
    ref = parse_reference("Registry.Example.COM:8443/team/app:V1")

    assert str(ref) == "registry.example.com:8443/team/app:V1"


def test_parse_reference_uses_default_registry_when_text_has_none() -> None:
    ref = parse_reference("team/app", default_registry="127.0.0.1:5000/")

    assert str(ref) == "127.0.0.1:5000/team/app:latest"
    assert ref.explicit_registry is False


def test_parse_reference_accepts_surrounding_whitespace() -> None:
    assert str(parse_reference("  nginx:1\n")) == "docker.io/library/nginx:1"


def test_parse_reference_accepts_bracketed_ipv6_registry() -> None:
    ref = parse_reference("[::1]:5000/library/x:1")

    assert ref.registry == "[::1]:5000"


# text -> words the message must contain besides the quoted text
INVALID = [
    pytest.param("Foo/Bar", "repository must be lowercase", id="uppercase"),
    pytest.param("library/ngi..nx", 'component "ngi..nx" is invalid', id="bad-separator"),
    pytest.param("nginx:", 'the tag after ":" is empty', id="empty-tag"),
    pytest.param("nginx:-x", 'tag "-x" is invalid', id="bad-tag"),
    pytest.param("nginx:" + "a" * 129, "up to 128", id="long-tag"),
    pytest.param("nginx@", 'the digest after "@" is empty', id="empty-digest"),
    pytest.param("nginx@sha256:abc", 'digest "sha256:abc" is invalid', id="short-digest"),
    pytest.param("nginx@md5:" + "a" * 32, "sha256:<64 lowercase hex>", id="bad-algorithm"),
    pytest.param("nginx@" + SHA256.upper(), "lowercase hex", id="uppercase-digest"),
    pytest.param("http://reg.io/x/y", "put it on the *_registry option", id="http-scheme"),
    pytest.param("https://reg.io/x/y", "takes no URL scheme", id="https-scheme"),
    pytest.param("my image", "contains whitespace", id="whitespace"),
    pytest.param("my\timage", "contains whitespace", id="tab"),
    pytest.param("", "it is empty", id="empty"),
    pytest.param("a//b", "path component is empty", id="double-slash"),
    pytest.param("/nginx", "path component is empty", id="leading-slash"),
    pytest.param("a_b/c/d", '"a_b" is not a valid host[:port]', id="3-bad-registry"),
    pytest.param("reg.io:99999/a/b", "port 99999 is out of range", id="bad-port"),
    pytest.param("reg.io/a/" + "b" * 250, "the limit is 255", id="too-long"),
]


@pytest.mark.parametrize(("text", "words"), INVALID)
def test_parse_reference_names_text_and_reason_when_invalid(text: str, words: str) -> None:
    with pytest.raises(ReferenceError) as caught:
        parse_reference(text)

    message = str(caught.value)
    assert message.startswith(f'invalid image reference "{text}": ')
    assert words in message
    assert caught.value.text == text


def test_reference_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match='"Foo/Bar"'):
        parse_reference("Foo/Bar")


def test_reference_rejects_single_component_repository_when_built_directly() -> None:
    with pytest.raises(ReferenceError, match='repository "nginx" needs a project and a name'):
        Reference("docker.io", "nginx", "latest")


def test_reference_normalizes_registry_when_built_directly() -> None:
    ref = Reference("Index.Docker.IO", "library/nginx", "1")

    assert ref.registry == "docker.io"
    assert ref == parse_reference("nginx:1")
    assert hash(ref) == hash(parse_reference("nginx:1"))


def test_reference_equality_ignores_explicit_registry() -> None:
    assert parse_reference("nginx") == parse_reference("docker.io/library/nginx")


def test_reference_with_project_replaces_first_component_only() -> None:
    ref = parse_reference("registry.abc.com/a/b/c/image:1").with_project("mirror")

    assert str(ref) == "registry.abc.com/mirror/b/c/image:1"


@pytest.mark.parametrize("project", ["a/b", "Team", ""])
def test_reference_with_project_names_project_when_invalid(project: str) -> None:
    with pytest.raises(ReferenceError, match=f'invalid project "{project}"'):
        parse_reference("nginx").with_project(project)


def test_reference_with_registry_marks_registry_explicit() -> None:
    ref = parse_reference("nginx").with_registry("127.0.0.1:5000")

    assert str(ref) == "127.0.0.1:5000/library/nginx:latest"
    assert ref.explicit_registry is True


def test_reference_with_registry_refuses_scheme() -> None:
    with pytest.raises(ReferenceError, match='invalid registry "http://r.io": .*without a scheme'):
        parse_reference("nginx").with_registry("http://r.io")


def test_reference_with_tag_drops_digest_so_push_goes_to_tag() -> None:
    ref = parse_reference(f"nginx:1@{SHA256}").with_tag("latest-linux-amd64")

    assert ref.digest is None
    assert ref.ident == "latest-linux-amd64"


def test_reference_with_digest_keeps_tag_and_targets_digest() -> None:
    ref = parse_reference("nginx:1").with_digest(SHA256)

    assert ref.tag == "1"
    assert ref.ident == SHA256


def test_reference_with_digest_names_reference_when_digest_invalid() -> None:
    with pytest.raises(ReferenceError, match='digest "sha256:../x" is invalid'):
        parse_reference("nginx:1").with_digest("sha256:../x")


def test_reference_replace_validates_new_tag() -> None:
    with pytest.raises(ReferenceError, match='tag "a b" is invalid'):
        parse_reference("nginx").replace(tag="a b")


def test_reference_qualified_repository_has_no_tag_or_digest() -> None:
    ref = parse_reference(f"nginx:1@{SHA256}")

    assert ref.qualified_repository == "docker.io/library/nginx"


def test_reference_str_has_no_tag_when_tag_and_digest_are_none() -> None:
    ref = parse_reference("nginx").replace(tag=None)

    assert str(ref) == "docker.io/library/nginx"
    assert ref.ident == "latest"


@pytest.mark.parametrize("digest", [SHA256, SHA512])
def test_validate_digest_returns_text_when_valid(digest: str) -> None:
    assert validate_digest(digest) == digest


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 64 + "/../../etc",
        "sha384:" + "a" * 96,
        "sha512:" + "a" * 64,
        "a" * 64,
        "",
    ],
)
def test_validate_digest_names_text_when_invalid(digest: str) -> None:
    with pytest.raises(ReferenceError) as caught:
        validate_digest(digest)

    assert str(caught.value).startswith(f'invalid digest "{digest}": expected sha256:')


def test_digest_hex_returns_hex_part() -> None:
    assert digest_hex(SHA256) == "0123456789abcdef" * 4


def test_digest_hex_refuses_invalid_digest() -> None:
    with pytest.raises(ReferenceError, match='invalid digest "sha256:xyz"'):
        digest_hex("sha256:xyz")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Registry.Example.com:8443", "registry.example.com:8443"),
        ("127.0.0.1:5000/", "127.0.0.1:5000"),
        ("index.docker.io", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("localhost", "localhost"),
    ],
)
def test_normalize_registry_returns_canonical_host(text: str, expected: str) -> None:
    assert normalize_registry(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("reg.io/path", "without a path"),
        ("https://reg.io", "without a scheme"),
        ("reg_io", "expected host[:port]"),
        ("reg.io:0", "out of range"),
        ("", "expected host[:port]"),
    ],
)
def test_normalize_registry_names_text_when_invalid(text: str, words: str) -> None:
    with pytest.raises(ReferenceError) as caught:
        normalize_registry(text)

    assert str(caught.value).startswith(f'invalid registry "{text}": ')
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://127.0.0.1:5000", ("http", "127.0.0.1:5000")),
        ("HTTPS://Reg.Example.com/", ("https", "reg.example.com")),
        ("registry.example.com:8443", (None, "registry.example.com:8443")),
        ("https://index.docker.io", ("https", "docker.io")),
    ],
)
def test_split_registry_url_separates_scheme_and_host(text: str, expected: tuple) -> None:
    assert split_registry_url(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [("ftp://reg.io", "must be http:// or https://"), ("http://reg.io/v2/", "without a path")],
)
def test_split_registry_url_names_text_when_invalid(text: str, words: str) -> None:
    with pytest.raises(ReferenceError) as caught:
        split_registry_url(text)

    assert str(caught.value).startswith(f'invalid registry "{text}": ')
    assert words in str(caught.value)


def test_registry_api_host_maps_docker_hub_only() -> None:
    assert registry_api_host("docker.io") == "registry-1.docker.io"
    assert registry_api_host("127.0.0.1:5000") == "127.0.0.1:5000"
