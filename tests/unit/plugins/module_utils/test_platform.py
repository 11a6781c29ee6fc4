# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for platform filtering, helper tags and the index rebuild."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Optional

import pytest

from ansible_collections.airgap.hangar.plugins.module_utils.media_types import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from ansible_collections.airgap.hangar.plugins.module_utils.platform import (
    Platform,
    PlatformError,
    PlatformFilter,
    attestation_tag,
    build_index,
    helper_tag,
    is_attestation,
    is_signature_tag,
    keeps_everything,
    platform_tag,
    select_manifests,
    signature_tags,
)
from ansible_collections.airgap.hangar.plugins.module_utils.reference import ReferenceError

DEFAULT_FILTER = PlatformFilter(["amd64", "arm64"], ["linux"])


def digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def manifest(
    name: str, os: str, arch: str, variant: Optional[str] = None, **extra: Any
) -> Dict[str, Any]:
    platform = {"architecture": arch, "os": os, **extra}
    if variant:
        platform["variant"] = variant
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest(name),
        "size": len(name),
        "platform": platform,
    }


def attestation(name: str, subject: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest(name),
        "size": 500,
        "annotations": {
            "vnd.docker.reference.digest": subject["digest"],
            "vnd.docker.reference.type": "attestation-manifest",
        },
        "platform": {"architecture": "unknown", "os": "unknown"},
    }


AMD64 = manifest("amd64", "linux", "amd64")
ARM64 = manifest("arm64", "linux", "arm64", "v8")
ARMV7 = manifest("armv7", "linux", "arm", "v7")
S390X = manifest("s390x", "linux", "s390x")
WINDOWS = manifest("windows", "windows", "amd64", **{"os.version": "10.0.17763.2114"})
AMD64_ATT = attestation("amd64-att", AMD64)
ARM64_ATT = attestation("arm64-att", ARM64)
S390X_ATT = attestation("s390x-att", S390X)
NO_PLATFORM = {"mediaType": DOCKER_MANIFEST, "digest": digest("bare"), "size": 3}

SOURCE_INDEX = {
    "schemaVersion": 2,
    "mediaType": OCI_INDEX,
    "manifests": [AMD64, ARM64, ARMV7, S390X, WINDOWS, AMD64_ATT, ARM64_ATT, S390X_ATT],
}


def names(descriptors: List[Dict[str, Any]]) -> List[str]:
    by_digest = {
        desc["digest"]: label
        for label, desc in [
            ("amd64", AMD64), ("arm64", ARM64), ("armv7", ARMV7), ("s390x", S390X),
            ("windows", WINDOWS), ("amd64-att", AMD64_ATT), ("arm64-att", ARM64_ATT),
            ("s390x-att", S390X_ATT), ("bare", NO_PLATFORM),
        ]
    }
    return [by_digest.get(desc["digest"], desc["digest"]) for desc in descriptors]


def manifests_of(raw: bytes) -> List[Dict[str, Any]]:
    return json.loads(raw)["manifests"]


def test_platform_str_joins_os_arch_variant() -> None:
    assert str(Platform("linux", "arm64", "v8")) == "linux/arm64/v8"
    assert str(Platform("linux", "amd64")) == "linux/amd64"
    assert str(Platform("windows", "amd64", os_version="10.0.1")) == "windows(10.0.1)/amd64"


def test_platform_from_descriptor_reads_all_fields() -> None:
    platform = Platform.from_descriptor(WINDOWS)

    assert platform == Platform("windows", "amd64", os_version="10.0.17763.2114")


def test_platform_from_descriptor_is_none_without_platform() -> None:
    assert Platform.from_descriptor(NO_PLATFORM) is None


def test_platform_from_config_reads_docker_config_fields() -> None:
    config = {"architecture": "arm", "os": "linux", "variant": "v7", "rootfs": {}}

    assert Platform.from_config(config) == Platform("linux", "arm", "v7")


def test_platform_from_config_fails_when_architecture_missing() -> None:
    with pytest.raises(PlatformError, match="no os or no architecture"):
        Platform.from_config({"os": "linux"})


def test_platform_from_descriptor_fails_when_field_not_string() -> None:
    desc = {"digest": digest("x"), "platform": {"os": "linux", "architecture": ["amd64"]}}

    with pytest.raises(PlatformError, match='"architecture" in the platform of descriptor sha256:'):
        Platform.from_descriptor(desc)


def test_platform_as_dict_orders_keys_and_drops_empty_fields() -> None:
    platform = Platform("windows", "amd64", os_version="10.0", os_features=("win32k",))

    assert list(platform.as_dict().items()) == [
        ("architecture", "amd64"),
        ("os", "windows"),
        ("os.version", "10.0"),
        ("os.features", ["win32k"]),
    ]


def test_platform_same_as_ignores_variant_for_arm64_only() -> None:
    assert Platform("linux", "arm64", "v8").same_as(Platform("linux", "arm64"))
    assert not Platform("linux", "arm", "v7").same_as(Platform("linux", "arm", "v6"))
    assert not Platform("linux", "amd64").same_as(Platform("linux", "arm64"))


@pytest.mark.parametrize(
    ("flt", "platform", "expected"),
    [
        pytest.param(DEFAULT_FILTER, Platform("linux", "amd64"), True, id="listed"),
        pytest.param(DEFAULT_FILTER, Platform("linux", "s390x"), False, id="other-arch"),
        pytest.param(DEFAULT_FILTER, Platform("windows", "amd64"), False, id="other-os"),
        pytest.param(DEFAULT_FILTER, Platform("linux", "arm64", "v8"), True, id="variant-ignored"),
        pytest.param(PlatformFilter(["arm"], ["linux"]), Platform("linux", "arm", "v6"), True,
                     id="arm-keeps-every-variant"),
        pytest.param(PlatformFilter(["*"], ["linux"]), Platform("linux", "s390x"), True,
                     id="any-arch"),
        pytest.param(PlatformFilter(["amd64"], ["*"]), Platform("windows", "amd64"), True,
                     id="any-os"),
        pytest.param(PlatformFilter([" AMD64 "], ["Linux"]), Platform("linux", "amd64"), True,
                     id="case-and-space"),
        pytest.param(DEFAULT_FILTER, Platform("", "amd64"), True, id="empty-os-passes"),
    ],
)
def test_platform_filter_matches(flt: PlatformFilter, platform: Platform, expected: bool) -> None:
    assert flt.matches(platform) is expected


def test_is_attestation_reads_buildkit_annotation() -> None:
    assert is_attestation(AMD64_ATT)
    assert not is_attestation(AMD64)
    assert not is_attestation({"annotations": "not-a-map"})


def test_select_manifests_keeps_filtered_platforms_and_their_attestations() -> None:
    selected = select_manifests(SOURCE_INDEX, DEFAULT_FILTER, provenance=True)

    assert names(selected) == ["amd64", "arm64", "amd64-att", "arm64-att"]


def test_select_manifests_drops_attestations_without_provenance() -> None:
    selected = select_manifests(SOURCE_INDEX, DEFAULT_FILTER, provenance=False)

    assert names(selected) == ["amd64", "arm64"]


def test_select_manifests_keeps_everything_with_wildcards() -> None:
    flt = PlatformFilter(["*"], ["*"])

    selected = select_manifests(SOURCE_INDEX, flt, provenance=True)

    assert names(selected) == names(SOURCE_INDEX["manifests"])
    assert keeps_everything(SOURCE_INDEX, selected)


def test_select_manifests_skips_descriptors_without_platform() -> None:
    index = {"mediaType": DOCKER_MANIFEST_LIST, "manifests": [NO_PLATFORM, AMD64]}

    selected = select_manifests(index, PlatformFilter(["*"], ["*"]), provenance=True)

    assert names(selected) == ["amd64"]
    assert not keeps_everything(index, selected)


def test_select_manifests_is_empty_when_nothing_matches() -> None:
    flt = PlatformFilter(["ppc64le"], ["linux"])

    assert select_manifests(SOURCE_INDEX, flt, provenance=True) == []


def test_select_manifests_fails_when_manifests_not_a_list() -> None:
    with pytest.raises(PlatformError, match='"manifests" of the index is not a list'):
        select_manifests({"manifests": {"a": 1}}, DEFAULT_FILTER, provenance=True)


def test_keeps_everything_is_false_for_a_subset() -> None:
    selected = select_manifests(SOURCE_INDEX, DEFAULT_FILTER, provenance=True)

    assert not keeps_everything(SOURCE_INDEX, selected)


def test_build_index_writes_hangar_layout() -> None:
    raw = build_index([AMD64, AMD64_ATT])

    document = json.loads(raw)
    assert list(document) == ["schemaVersion", "mediaType", "manifests"]
    assert document["mediaType"] == OCI_INDEX
    assert list(document["manifests"][1]) == [
        "mediaType", "digest", "size", "annotations", "platform",
    ]
    assert raw.startswith(b'{\n  "schemaVersion": 2,\n  "mediaType": ')


def test_build_index_gives_same_bytes_for_same_input() -> None:
    shuffled = {key: AMD64[key] for key in reversed(list(AMD64))}

    first = build_index([AMD64, ARM64, AMD64_ATT], existing=SOURCE_INDEX)
    second = build_index([shuffled, ARM64, AMD64_ATT], existing=SOURCE_INDEX)

    assert first == second


def test_build_index_merges_new_platform_into_existing_index() -> None:
    existing = json.loads(build_index([AMD64, AMD64_ATT]))

    raw = build_index([ARM64, ARM64_ATT], existing=existing)

    assert names(manifests_of(raw)) == ["amd64", "amd64-att", "arm64", "arm64-att"]


def test_build_index_changes_nothing_when_rerun_with_same_platforms() -> None:
    existing_raw = build_index([AMD64, ARM64, AMD64_ATT, ARM64_ATT])

    raw = build_index([ARM64, ARM64_ATT], existing=json.loads(existing_raw))

    assert raw == existing_raw


def test_build_index_replaces_same_platform_and_drops_its_old_attestation() -> None:
    new_amd64 = manifest("amd64-rebuilt", "linux", "amd64")
    new_att = attestation("amd64-rebuilt-att", new_amd64)
    existing = json.loads(build_index([AMD64, ARM64, AMD64_ATT, ARM64_ATT]))

    raw = build_index([new_amd64, new_att], existing=existing)

    assert names(manifests_of(raw)) == [
        new_amd64["digest"], "arm64", "arm64-att", new_att["digest"],
    ]


def test_build_index_replaces_arm64_when_only_variant_differs() -> None:
    no_variant = manifest("arm64-novariant", "linux", "arm64")

    raw = build_index([no_variant], existing={"manifests": [AMD64, ARM64]})

    assert names(manifests_of(raw)) == ["amd64", no_variant["digest"]]


def test_build_index_keeps_both_arm_variants() -> None:
    armv6 = manifest("armv6", "linux", "arm", "v6")

    raw = build_index([armv6], existing={"manifests": [ARMV7]})

    assert names(manifests_of(raw)) == ["armv7", armv6["digest"]]


def test_build_index_ignores_existing_entries_when_overwrite() -> None:
    existing = json.loads(build_index([AMD64, AMD64_ATT]))

    raw = build_index([ARM64, ARM64_ATT], existing=existing, overwrite=True)

    assert names(manifests_of(raw)) == ["arm64", "arm64-att"]


def test_build_index_drops_attestation_whose_subject_was_not_selected() -> None:
    raw = build_index([AMD64, ARM64_ATT])

    assert names(manifests_of(raw)) == ["amd64"]


def test_build_index_starts_empty_when_existing_is_single_manifest() -> None:
    existing = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}

    raw = build_index([AMD64], existing=existing)

    assert names(manifests_of(raw)) == ["amd64"]


def test_build_index_keeps_docker_child_types_and_sets_list_type_on_request() -> None:
    docker_child = dict(AMD64, mediaType=DOCKER_MANIFEST)

    raw = build_index([docker_child], media_type=DOCKER_MANIFEST_LIST)

    document = json.loads(raw)
    assert document["mediaType"] == DOCKER_MANIFEST_LIST
    assert document["manifests"][0]["mediaType"] == DOCKER_MANIFEST


def test_build_index_writes_sorted_index_annotations_escaped_like_go() -> None:
    raw = build_index([AMD64], annotations={"z": "a<b>&c", "a": "é"})

    assert json.loads(raw)["annotations"] == {"a": "é", "z": "a<b>&c"}
    assert list(json.loads(raw)["annotations"]) == ["a", "z"]
    assert b'"a\\u003cb\\u003e\\u0026c"' in raw
    assert "é".encode() in raw


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"digest": "sha256:../../etc"}, "is not sha256:<64 hex>"),
        ({"size": -1}, "has no valid size"),
        ({"size": "12"}, "has no valid size"),
        ({"mediaType": None}, "has no mediaType"),
    ],
)
def test_build_index_fails_on_broken_descriptor(change: Dict[str, Any], words: str) -> None:
    with pytest.raises(PlatformError, match=words):
        build_index([dict(AMD64, **change)])


@pytest.mark.parametrize(
    ("platform", "expected"),
    [
        (Platform("linux", "amd64"), "latest-linux-amd64"),
        (Platform("linux", "arm64", "v8"), "latest-linux-arm64v8"),
        (Platform("windows", "amd64", os_version="10.0.17763.2114"),
         "latest-windows-10.0.17763.2114-amd64"),
    ],
)
def test_platform_tag_follows_hangar_naming(platform: Platform, expected: str) -> None:
    assert platform_tag("latest", platform) == expected


def test_attestation_tag_uses_attested_digest() -> None:
    assert attestation_tag(AMD64["digest"]) == f"sha256-{AMD64['digest'][7:]}.att"


def test_attestation_tag_refuses_invalid_digest() -> None:
    with pytest.raises(ReferenceError, match='invalid digest "sha256:../x"'):
        attestation_tag("sha256:../x")


def test_helper_tag_names_each_kind_of_descriptor() -> None:
    unknown = dict(NO_PLATFORM, platform={"architecture": "unknown", "os": "unknown"})

    assert helper_tag("1.0", ARM64) == "1.0-linux-arm64v8"
    assert helper_tag("1.0", AMD64_ATT) == f"sha256-{AMD64['digest'][7:]}.att"
    assert helper_tag("1.0", NO_PLATFORM) == f"1.0-{NO_PLATFORM['digest'][7:23]}"
    assert helper_tag("1.0", unknown) == f"1.0-{NO_PLATFORM['digest'][7:23]}"


def test_signature_tags_lists_cosign_tags() -> None:
    hex_part = AMD64["digest"][7:]

    assert signature_tags(AMD64["digest"]) == [
        f"sha256-{hex_part}.sig",
        f"sha256-{hex_part}.att",
        f"sha256-{hex_part}.sbom",
    ]


def test_signature_tags_fit_tag_grammar_for_sha512() -> None:
    tags = signature_tags("sha512:" + "ab" * 64)

    assert all(len(tag) <= 128 for tag in tags)
    assert all(is_signature_tag(tag) for tag in tags)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (f"sha256-{'a' * 64}.sig", True),
        (f"sha256-{'a' * 64}.att", True),
        (f"sha256-{'a' * 64}.sbom", True),
        (f"sha256-{'a' * 63}.sig", False),
        (f"sha256-{'A' * 64}.sig", False),
        (f"sha256-{'a' * 64}.sign", False),
        (f"md5-{'a' * 64}.sig", False),
        ("latest", False),
        ("latest-linux-amd64", False),
    ],
)
def test_is_signature_tag(tag: str, expected: bool) -> None:
    assert is_signature_tag(tag) is expected
