# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hangar archives as the source (load) and the target (save) of the copy engine.

An archive entry is addressed by the reference ``<source>:<tag>`` it was saved under. Saving
stores each platform manifest with its config and layers, plus the source's top-level index
bytes under our extra index key, so a load that keeps every platform pushes those exact bytes
and the destination tag keeps the source digest.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional

from ansible_collections.airgap.hangar.plugins.module_utils import media_types as mt
from ansible_collections.airgap.hangar.plugins.module_utils.archive import (
    ArchiveReader,
    ArchiveWriter,
)
from ansible_collections.airgap.hangar.plugins.module_utils.archive_index import (
    ArchiveMissingBlobError,
    ImageEntry,
    ImageSpec,
    SourceIndex,
)
from ansible_collections.airgap.hangar.plugins.module_utils.copy_engine import (
    Child,
    CopyError,
    ImagePlan,
)
from ansible_collections.airgap.hangar.plugins.module_utils.platform import (
    Platform,
    build_index,
    is_attestation,
)
from ansible_collections.airgap.hangar.plugins.module_utils.reference import Reference
from ansible_collections.airgap.hangar.plugins.module_utils.registry import (
    Manifest,
    compute_digest,
)
from ansible_collections.airgap.hangar.plugins.module_utils.transport import iter_file

UNKNOWN = "unknown"


class NotInArchive(CopyError):
    """The archive has no entry for the reference."""


def entry_for(index_images: List[ImageEntry], ref: Reference) -> Optional[ImageEntry]:
    """The entry saved as ``ref``; Hangar's load uses the last of duplicates, so do we."""
    found = [entry for entry in index_images
             if entry.source == ref.qualified_repository and entry.tag == ref.tag_or_latest]
    return found[-1] if found else None


def spec_descriptor(spec: ImageSpec, size: int) -> Dict[str, Any]:
    """The index descriptor of a saved platform manifest."""
    descriptor: Dict[str, Any] = {"mediaType": spec.media_type or mt.OCI_MANIFEST,
                                  "digest": spec.digest, "size": size}
    if spec.annotations:
        descriptor["annotations"] = dict(spec.annotations)
    platform = {"architecture": spec.arch, "os": spec.os, "os.version": spec.os_version,
                "os.features": list(spec.os_features), "variant": spec.variant}
    descriptor["platform"] = {key: value for key, value in platform.items() if value}
    return descriptor


def _covers(raw: bytes, media_type: str, entry: ImageEntry) -> bool:
    """The saved platforms include every manifest the source index names."""
    saved = {spec.digest for spec in entry.specs}
    if media_type not in mt.INDEX_TYPES:
        return compute_digest(raw) in saved
    return all(item.get("digest") in saved for item in json.loads(raw).get("manifests", []))


class ArchiveSource:
    """Reads images saved in an archive. Blobs stream from the zip without extracting it."""

    def __init__(self, reader: ArchiveReader) -> None:
        self.reader = reader

    def registry_of(self, ref: Reference) -> Optional[str]:
        return None

    def entry(self, ref: Reference) -> ImageEntry:
        """The entry saved as ``ref``, refused before any upload if a member is missing."""
        entry = entry_for(self.reader.images, ref)
        if entry is None:
            raise NotInArchive(f"archive {self.reader.path} holds no image {ref}")
        self.reader.check_image(entry)
        return entry

    def top(self, ref: Reference) -> Manifest:
        """The saved source index when there is one, else an index of the saved platforms."""
        entry = self.entry(ref)
        found = entry.source_index
        if found and self.reader.has_blob(found.digest):
            raw = self.reader.read_blob(found.digest)
            # A save that kept some platforms (arch, os or provenance) still records the
            # source's index; pushing it would need manifests the archive does not hold.
            if _covers(raw, found.media_type, entry):
                return Manifest(raw, found.media_type, found.digest)
        descriptors = [spec_descriptor(spec, self.reader.blob_size(spec.digest))
                       for spec in entry.specs]
        raw = build_index(descriptors, overwrite=True)
        return Manifest(raw, mt.OCI_INDEX, compute_digest(raw))

    def manifest(self, ref: Reference, digest: str) -> Manifest:
        raw = self.reader.read_blob(digest)
        spec = next((s for s in self.entry(ref).specs if s.digest == digest), None)
        media_type = spec.media_type if spec and spec.media_type else \
            self.reader.read_layout_descriptor(digest).get("mediaType", mt.OCI_MANIFEST)
        return Manifest(raw, media_type, digest)

    def read_blob(self, ref: Reference, digest: str) -> bytes:
        return self.reader.read_blob(digest)

    def blob_opener(self, ref: Reference, digest: str, size: int) -> Callable[[int], Iterable]:
        if not self.reader.has_blob(digest):
            raise ArchiveMissingBlobError(
                f"archive {self.reader.path} lacks blob {digest} of {ref}; the archive is "
                "incomplete; save the image again")
        return lambda offset: iter_file(self.reader.open_blob(digest, size))

    def tag_exists(self, ref: Reference, tag: str) -> bool:
        return False


class ArchiveTarget:
    """Writes images into an archive being created or appended to."""

    accepts_signatures = False

    def __init__(self, writer: Optional[ArchiveWriter], existing: Any) -> None:
        """``existing`` has the ``images`` an image counts as present in (reader or writer)."""
        self.writer = writer
        self.existing = existing
        self.entries: List[ImageEntry] = []
        self._lock = threading.Lock()

    def registry_of(self, ref: Reference) -> Optional[str]:
        return None

    def current(self, ref: Reference, want_document: bool) -> Optional[Manifest]:
        # An archive entry is replaced, never merged: it holds exactly what was asked for.
        return None

    def holds(self, plan: ImagePlan) -> bool:
        """The archive has this image with the same platform manifests and source index."""
        entry = entry_for(self.existing.images, plan.task.destination)
        if entry is None:
            return False
        wanted = [d["digest"] for d in plan.selected] if plan.top.is_index else [plan.top.digest]
        # A part of an index is recorded without the index, but Hangar records it anyway.
        saved = entry.source_index.digest if entry.source_index else None
        recorded = (_source_index_digest(plan), plan.top.digest)
        return [spec.digest for spec in entry.specs] == wanted and saved in recorded

    def has_tag(self, ref: Reference, tag: str, digest: str) -> bool:
        return True

    def blob_present(self, ref: Reference, digest: str) -> bool:
        return self.writer.has_blob(digest)

    def mount_blob(self, ref: Reference, digest: str, from_repository: str) -> bool:
        return False

    def put_blob(self, ref: Reference, digest: str, size: int,
                 opener: Callable[[int], Iterable]) -> None:
        """Stream the download into the blob's own slot of the archive, beside other workers.

        The download verifies the digest as it streams, so the slot need not hash it again.
        """
        slot = self.writer.reserve_blob(digest, size, trusted=True)
        if slot is None:
            return
        with slot:
            for chunk in opener(0):
                slot.write(chunk)

    def put_child(self, ref: Reference, manifest: Manifest, tags: List[str]) -> None:
        self.writer.add_platform_manifest(manifest.digest, manifest.raw, manifest.media_type)

    def finish(self, plan: ImagePlan, children: List[Child]) -> None:
        top = plan.top
        whole = _source_index_digest(plan) is not None
        if top.is_index:
            specs = [self._spec(child.descriptor, child.manifest, None) for child in children]
            if whole:
                self.writer.add_blob(top.digest, len(top.raw), top.raw)
        else:
            self.writer.add_platform_manifest(top.digest, top.raw, top.media_type)
            specs = [self._spec({}, top, plan.single_platform)]
        source_index = SourceIndex(top.media_type, top.digest, len(top.raw)) if whole else None
        dest = plan.task.destination
        entry = ImageEntry.build(dest.qualified_repository, dest.tag_or_latest, specs,
                                 source_index)
        with self._lock:
            self.writer.replace_image(entry)
            self.entries.append(entry)

    @staticmethod
    def _spec(descriptor: Dict[str, Any], manifest: Manifest,
              platform: Optional[Platform]) -> ImageSpec:
        document = manifest.document
        annotations = dict(descriptor.get("annotations") or {})
        if is_attestation(descriptor):
            platform = Platform(os=UNKNOWN, architecture=UNKNOWN)
        elif platform is None:
            platform = Platform.from_descriptor(descriptor) or Platform("", "")
        layers = [layer["digest"] for layer in document.get("layers") or []
                  if layer.get("mediaType") not in mt.FOREIGN_LAYER_TYPES
                  and not layer.get("urls")]
        config = (document.get("config") or {}).get("digest", "")
        return ImageSpec(
            digest=manifest.digest, media_type=manifest.media_type, arch=platform.architecture,
            os=platform.os, os_version=platform.os_version or "",
            os_features=list(platform.os_features), variant=platform.variant or "",
            layers=layers, config=config, annotations=annotations)


def _source_index_digest(plan: ImagePlan) -> Optional[str]:
    """The source index is recorded only when every platform is saved: only then can a load
    push it unchanged."""
    return plan.top.digest if plan.final is plan.top else None


def describe_entry(entry: ImageEntry, sizes: Callable[[str], int]) -> Dict[str, Any]:
    """An archive entry as hangar_archive_info and hangar_inspect return it."""
    platforms = []
    for spec in entry.specs:
        layer_sizes = [sizes(layer) for layer in spec.layers]
        platforms.append(dict(
            os=spec.os, architecture=spec.arch, variant=spec.variant, digest=spec.digest,
            media_type=spec.media_type, layers=len(spec.layers), size=sum(layer_sizes)))
    return dict(
        reference=entry.reference, source=entry.source, tag=entry.tag,
        digest=entry.source_index.digest if entry.source_index else None,
        platforms=platforms, size=sum(p["size"] for p in platforms))


def json_document(raw: bytes) -> Dict[str, Any]:
    return json.loads(raw)
