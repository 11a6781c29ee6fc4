# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Describe an image: digest, platforms, layers and config, as hangar_inspect returns them."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from ansible_collections.airgap.hangar.plugins.module_utils import media_types as mt
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.platform import Platform
from ansible_collections.airgap.hangar.plugins.module_utils.reference import Reference
from ansible_collections.airgap.hangar.plugins.module_utils.registry import (
    Manifest,
    ManifestUnknown,
)

# Both the registry and the archive sources of the copy engine can be inspected.
ImageSource = Any


class PlatformNotFound(HangarError):
    """The index has no manifest for the platform asked for."""


def describe_platform(platform: Optional[Platform], digest: str, media_type: str,
                      size: int) -> dict:
    """One entry of ``platforms``; an index entry without a platform has empty fields."""
    platform = platform or Platform(os="", architecture="")
    return dict(os=platform.os, architecture=platform.architecture,
                variant=platform.variant or "", digest=digest, media_type=media_type, size=size)


def index_platforms(index: dict) -> List[dict]:
    entries = []
    for descriptor in index.get("manifests") or []:
        platform = Platform.from_descriptor(descriptor)
        entries.append(describe_platform(platform, descriptor.get("digest", ""),
                                         descriptor.get("mediaType", ""),
                                         int(descriptor.get("size") or 0)))
    return entries


def describe_layers(manifest: dict) -> List[dict]:
    return [dict(digest=layer.get("digest", ""), size=int(layer.get("size") or 0),
                 media_type=layer.get("mediaType", ""))
            for layer in manifest.get("layers") or []]


def pick_platform(platforms: List[dict], arch: str, os: str, variant: Optional[str],
                  where: str) -> dict:
    for entry in platforms:
        if entry["architecture"] != arch or entry["os"] != os:
            continue
        if variant and entry["variant"] != variant:
            continue
        return entry
    wanted = "/".join(part for part in (os, arch, variant) if part)
    available = ", ".join(
        "/".join(p for p in (e["os"], e["architecture"], e["variant"]) if p) for e in platforms)
    raise PlatformNotFound(f"{where} has no {wanted} image; it has {available or 'none'}")


def config_of(source: ImageSource, reference: Reference, manifest: dict) -> Dict[str, Any]:
    descriptor = manifest.get("config") or {}
    digest = descriptor.get("digest")
    if not digest:
        return {}
    return json.loads(source.read_blob(reference, digest))


def describe_manifest(source: ImageSource, reference: Reference, manifest: Manifest,
                      want_config: bool) -> dict:
    """Layers, size, platform and (optionally) config of a single-platform manifest."""
    document = manifest.document
    if manifest.media_type in mt.SCHEMA1_TYPES:
        layers = [dict(digest=layer.get("blobSum", ""), size=0, media_type="")
                  for layer in document.get("fsLayers") or []]
        platform = Platform(os="linux", architecture=document.get("architecture", ""))
        return dict(layers=layers, size=0, platform=platform, config=None)
    layers = describe_layers(document)
    config = config_of(source, reference, document)
    return dict(layers=layers, size=sum(layer["size"] for layer in layers),
                platform=Platform.from_config(config), config=config if want_config else None)


def inspect_image(source: ImageSource, reference: Reference, *, arch: Optional[str] = None,
                  os: str = "linux", variant: Optional[str] = None, raw: bool = False,
                  config: bool = False, missing: tuple = (ManifestUnknown,)) -> dict:
    """Everything hangar_inspect returns about ``reference``; ``exists`` is False if missing.

    ``source`` is a registry or archive source of the copy engine; ``missing`` lists the
    exceptions that mean the image is not there.
    """
    try:
        top = source.top(reference)
    except missing:
        return dict(exists=False)
    result: Dict[str, Any] = dict(exists=True, digest=top.digest, media_type=top.media_type,
                                  manifest=top.document, layers=[], size=0)
    if raw:
        result["raw"] = top.raw.decode("utf-8")
    if top.is_index:
        result["platforms"] = index_platforms(top.document)
        if arch:
            _describe_picked(source, reference, result, arch, os, variant, config)
        return result
    described = describe_manifest(source, reference, top, config)
    result["platforms"] = [describe_platform(described["platform"], top.digest, top.media_type,
                                             len(top.raw))]
    _copy_description(result, described)
    return result


def _describe_picked(source: ImageSource, reference: Reference, result: dict, arch: str,
                     os: str, variant: Optional[str], config: bool) -> None:
    picked = pick_platform(result["platforms"], arch, os, variant, str(reference))
    manifest = source.manifest(reference, picked["digest"])
    result["platform"] = picked
    _copy_description(result, describe_manifest(source, reference, manifest, config))


def _copy_description(result: dict, described: dict) -> None:
    result["layers"] = described["layers"]
    result["size"] = described["size"]
    if described["config"] is not None:
        result["config"] = described["config"]
