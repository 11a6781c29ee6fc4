# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Platforms of multi-arch images: filtering an index, naming helper tags, rebuilding the index.

Hangar copies each selected platform manifest by digest, pushes it under a helper tag
(``<tag>-<os>-<arch><variant>``) and then pushes a new OCI index to the tag, merged with the
index already there. This module holds those rules; it does no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.media_types import (
    ATTESTATION_SUBJECT_KEY,
    ATTESTATION_TYPE,
    ATTESTATION_TYPE_KEY,
    OCI_INDEX,
)
from ansible_collections.airgap.hangar.plugins.module_utils.reference import (
    DIGEST_RE,
    digest_hex,
)

ANY = "*"
UNKNOWN = "unknown"

# cosign keeps signatures, attestations and SBOMs of a manifest in its repository under
# "<alg>-<hex>.<suffix>" tags.
SIGNATURE_SUFFIXES = ("sig", "att", "sbom")

# The tag grammar allows 128 characters, so sha512 hex is cut to 64 as the OCI referrers
# fallback tag schema does; sha256 hex fits whole.
_DIGEST_TAG_HEX = 64
_HELPER_TAG_HEX = 16

# Key order of the index Hangar writes (Go struct order), kept so re-runs give equal bytes.
_DESCRIPTOR_KEYS = (
    "mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType",
)
_PLATFORM_KEYS = ("architecture", "os", "os.version", "os.features", "variant")

# Go's encoding/json writes these as \u escapes; matching it keeps our bytes equal to Hangar's.
_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


class PlatformError(HangarError, ValueError):
    """A platform or index descriptor that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Platform:
    """The platform of one image manifest, from an index descriptor or an image config."""

    os: str
    architecture: str
    variant: Optional[str] = None
    os_version: Optional[str] = None
    os_features: Tuple[str, ...] = ()

    def __str__(self) -> str:
        os_part = f"{self.os}({self.os_version})" if self.os_version else self.os
        parts = [os_part, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)

    @classmethod
    def from_descriptor(cls, desc: Dict[str, Any]) -> Optional[Platform]:
        """The ``platform`` of an index descriptor, or None when it has none."""
        fields = desc.get("platform")
        if fields is None:
            return None
        return cls._from_fields(fields, f"descriptor {desc.get('digest')}")

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> Platform:
        """The platform an image config JSON declares (``os``, ``architecture``, ...)."""
        platform = cls._from_fields(config, "image config")
        if not platform.os or not platform.architecture:
            raise PlatformError(
                "the image config names no os or no architecture; "
                "the image cannot be matched against the arch and os options"
            )
        return platform

    @classmethod
    def _from_fields(cls, fields: Any, where: str) -> Platform:
        if not isinstance(fields, dict):
            raise PlatformError(f"the platform of {where} is not a JSON object")
        return cls(
            os=_text_field(fields, "os", where),
            architecture=_text_field(fields, "architecture", where),
            variant=_text_field(fields, "variant", where) or None,
            os_version=_text_field(fields, "os.version", where) or None,
            os_features=_features_field(fields, where),
        )

    @property
    def is_unknown(self) -> bool:
        """True for a missing or ``unknown`` os or architecture (attestations, artifacts)."""
        return self.os in ("", UNKNOWN) or self.architecture in ("", UNKNOWN)

    def same_as(self, other: Platform) -> bool:
        """Hangar's platform equality: arm64 ignores the variant (``""`` and ``v8`` agree)."""
        ours = (self.os, self.architecture, self.os_version, self.os_features)
        theirs = (other.os, other.architecture, other.os_version, other.os_features)
        if ours != theirs:
            return False
        return self.variant == other.variant or self.architecture == "arm64"

    def as_dict(self) -> Dict[str, Any]:
        """The descriptor ``platform`` object, keys in the OCI order, empty fields left out."""
        values = {
            "architecture": self.architecture,
            "os": self.os,
            "os.version": self.os_version,
            "os.features": list(self.os_features),
            "variant": self.variant,
        }
        return {key: value for key, value in values.items() if value}


@dataclasses.dataclass(frozen=True)
class PlatformFilter:
    """Which platforms to copy. ``*`` in a list, or an empty list, keeps every value.

    As in Hangar the variant is not matched (``arm`` keeps every arm variant), and a platform
    that leaves os or architecture empty passes that part of the test.
    """

    arch: Tuple[str, ...]
    os: Tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", _normal_values(self.arch))
        object.__setattr__(self, "os", _normal_values(self.os))

    def matches(self, platform: Platform) -> bool:
        return _passes(platform.architecture, self.arch) and _passes(platform.os, self.os)


def is_attestation(desc: Dict[str, Any]) -> bool:
    """True for a BuildKit attestation (provenance, SBOM) manifest inside an index."""
    return _annotations(desc).get(ATTESTATION_TYPE_KEY) == ATTESTATION_TYPE


def attestation_subject(desc: Dict[str, Any]) -> Optional[str]:
    """The digest of the platform manifest an attestation descriptor describes."""
    return _annotations(desc).get(ATTESTATION_SUBJECT_KEY)


def select_manifests(
    index: Dict[str, Any], flt: PlatformFilter, *, provenance: bool
) -> List[Dict[str, Any]]:
    """The descriptors of ``index`` to copy, in index order.

    Kept: platform manifests that pass ``flt`` and, with ``provenance``, the attestations of a
    kept manifest. A descriptor without ``platform`` is never kept: it cannot be matched
    against the filter or given a platform helper tag. Hangar skips these in OCI indexes too
    (in Docker lists it lets them through only because empty values pass its filter).
    """
    descriptors = _manifests(index)
    chosen = [_platform_selected(desc, flt) for desc in descriptors]
    kept = {desc.get("digest") for desc, ok in zip(descriptors, chosen) if ok}
    return [
        desc
        for desc, ok in zip(descriptors, chosen)
        if ok or (provenance and is_attestation(desc) and attestation_subject(desc) in kept)
    ]


def keeps_everything(index: Dict[str, Any], selected: List[Dict[str, Any]]) -> bool:
    """True when ``selected`` is every descriptor of ``index``, so the index can go as is."""
    return [d.get("digest") for d in selected] == [d.get("digest") for d in _manifests(index)]


def build_index(
    selected: List[Dict[str, Any]],
    *,
    existing: Optional[Dict[str, Any]] = None,
    overwrite: bool = False,
    media_type: str = OCI_INDEX,
    annotations: Optional[Dict[str, str]] = None,
) -> bytes:
    """The bytes of the index to push to the destination tag (Hangar's index rebuild).

    Unless ``overwrite``, the entries of ``existing`` (the index already at the tag; anything
    without ``manifests`` counts as empty) are kept. Each selected descriptor takes the place
    of the entries it replaces (same platform, arm64 variants alike; for attestations the same
    annotations) or is appended. Attestations whose subject is no longer listed are dropped.
    The JSON is laid out like Hangar's (2-space indent, fixed key order), so the same input
    always gives the same bytes and digest.
    """
    entries = [] if overwrite or not existing else list(_manifests(existing))
    for desc in selected:
        entries = _add_descriptor(entries, desc)

    entries = _drop_orphan_attestations(entries)
    for desc in entries:
        _check_descriptor(desc)

    document: Dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [_ordered_descriptor(desc) for desc in entries],
    }
    if annotations:
        document["annotations"] = dict(sorted(annotations.items()))
    return _encode(document)


def platform_tag(tag: str, platform: Platform) -> str:
    """Hangar's helper tag for a platform manifest: ``latest-linux-arm64v8``.

    Windows images carry their os version: ``1.0-windows-10.0.17763.2114-amd64``.
    """
    arch = f"{platform.architecture}{platform.variant or ''}"
    if platform.os_version:
        return f"{tag}-{platform.os}-{platform.os_version}-{arch}"
    return f"{tag}-{platform.os}-{arch}"


def attestation_tag(digest: str) -> str:
    """Hangar's helper tag for the attestation of the platform manifest ``digest``."""
    return _digest_tag(digest, "att")


def helper_tag(tag: str, desc: Dict[str, Any]) -> str:
    """The helper tag a descriptor of the index is pushed under before the index itself.

    Attestations use ``attestation_tag`` of their subject, known platforms ``platform_tag``,
    and descriptors with no or an ``unknown`` platform ``<tag>-<first 16 hex of digest>``.
    """
    if is_attestation(desc):
        return attestation_tag(str(attestation_subject(desc)))

    platform = Platform.from_descriptor(desc)
    if platform is None or platform.is_unknown:
        return f"{tag}-{digest_hex(str(desc.get('digest')))[:_HELPER_TAG_HEX]}"
    return platform_tag(tag, platform)


def signature_tags(digest: str) -> List[str]:
    """The cosign tags that may hold a signature, attestation or SBOM of ``digest``."""
    return [_digest_tag(digest, suffix) for suffix in SIGNATURE_SUFFIXES]


def is_signature_tag(tag: str) -> bool:
    """True for a cosign ``<alg>-<hex>.sig`` / ``.att`` / ``.sbom`` tag."""
    stem, dot, suffix = tag.rpartition(".")
    alg, dash, hex_part = stem.partition("-")
    return (
        bool(dot)
        and suffix in SIGNATURE_SUFFIXES
        and alg in ("sha256", "sha512")
        and len(hex_part) == _DIGEST_TAG_HEX
        and all(char in "0123456789abcdef" for char in hex_part)
    )


def _text_field(fields: Dict[str, Any], key: str, where: str) -> str:
    value = fields.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PlatformError(f'"{key}" in the platform of {where} is not a string: {value!r}')
    return value


def _features_field(fields: Dict[str, Any], where: str) -> Tuple[str, ...]:
    features = fields.get("os.features") or []
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise PlatformError(f'"os.features" in the platform of {where} is not a list of strings')
    return tuple(features)


def _normal_values(values: Iterable[str]) -> Tuple[str, ...]:
    return tuple(value.strip().lower() for value in values if value.strip())


def _passes(value: str, allowed: Tuple[str, ...]) -> bool:
    return not allowed or ANY in allowed or not value or value in allowed


def _manifests(index: Dict[str, Any]) -> List[Dict[str, Any]]:
    manifests = index.get("manifests") or []
    if not isinstance(manifests, list) or not all(isinstance(d, dict) for d in manifests):
        raise PlatformError('"manifests" of the index is not a list of descriptor objects')
    return manifests


def _annotations(desc: Dict[str, Any]) -> Dict[str, Any]:
    annotations = desc.get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _platform_selected(desc: Dict[str, Any], flt: PlatformFilter) -> bool:
    if is_attestation(desc):
        return False
    platform = Platform.from_descriptor(desc)
    return platform is not None and flt.matches(platform)


def _add_descriptor(
    entries: List[Dict[str, Any]], new: Dict[str, Any]
) -> List[Dict[str, Any]]:
    # In place rather than appended, so merging what is already there changes no byte.
    result: List[Dict[str, Any]] = []
    placed = False
    for old in entries:
        if not _replaces(new, old):
            result.append(old)
        elif not placed:
            result.append(new)
            placed = True
    if not placed:
        result.append(new)
    return result


def _replaces(new: Dict[str, Any], old: Dict[str, Any]) -> bool:
    new_attests, old_attests = is_attestation(new), is_attestation(old)
    if new_attests or old_attests:
        return new_attests and old_attests and _annotations(new) == _annotations(old)

    ours, theirs = Platform.from_descriptor(new), Platform.from_descriptor(old)
    if new.get("digest") == old.get("digest") and ours == theirs:
        return True

    # Unknown platforms (artifacts) say nothing about what they stand for: only digests count.
    if ours is None or theirs is None or ours.is_unknown or theirs.is_unknown:
        return False
    return ours.same_as(theirs)


def _drop_orphan_attestations(entries: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    listed = {desc.get("digest") for desc in entries if not is_attestation(desc)}
    return [
        desc for desc in entries
        if not is_attestation(desc) or attestation_subject(desc) in listed
    ]


def _check_descriptor(desc: Dict[str, Any]) -> None:
    digest = desc.get("digest")
    size = desc.get("size")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise PlatformError(
            f"index descriptor digest {digest!r} is not sha256:<64 hex> or sha512:<128 hex>"
        )
    if not isinstance(desc.get("mediaType"), str):
        raise PlatformError(f"index descriptor {digest} has no mediaType")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise PlatformError(f"index descriptor {digest} has no valid size: {size!r}")


def _ordered_descriptor(desc: Dict[str, Any]) -> Dict[str, Any]:
    ordered = _ordered(desc, _DESCRIPTOR_KEYS)
    if "annotations" in ordered:
        ordered["annotations"] = dict(sorted(ordered["annotations"].items()))
    if isinstance(ordered.get("platform"), dict):
        ordered["platform"] = _ordered(ordered["platform"], _PLATFORM_KEYS)
    return ordered


def _ordered(mapping: Dict[str, Any], keys: Tuple[str, ...]) -> Dict[str, Any]:
    """``mapping`` with ``keys`` first in that order, then any other key alphabetically."""
    known = [(key, mapping[key]) for key in keys if key in mapping]
    others = sorted(key for key in mapping if key not in keys)
    return dict(known + [(key, mapping[key]) for key in others])


def _encode(document: Dict[str, Any]) -> bytes:
    text = json.dumps(document, indent=2, ensure_ascii=False)
    for char, escape in _GO_ESCAPES.items():
        text = text.replace(char, escape)
    return text.encode("utf-8")


def _digest_tag(digest: str, suffix: str) -> str:
    algorithm = digest.split(":", 1)[0]
    return f"{algorithm}-{digest_hex(digest)[:_DIGEST_TAG_HEX]}.{suffix}"
