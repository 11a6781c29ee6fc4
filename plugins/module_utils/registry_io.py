# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registries as the source and the target of the copy engine."""

from __future__ import annotations

from typing import Callable, Iterable, List, Optional

from ansible_collections.airgap.hangar.plugins.module_utils.reference import Reference
from ansible_collections.airgap.hangar.plugins.module_utils.registry import (
    AuthenticationRequired,
    Descriptor,
    Manifest,
    ManifestUnknown,
    ProjectNotFound,
    RegistryClient,
)

ClientFor = Callable[[str], RegistryClient]


class RegistrySource:
    """Reads images from the registries named in the references."""

    def __init__(self, client_for: ClientFor) -> None:
        self.client_for = client_for

    def registry_of(self, ref: Reference) -> Optional[str]:
        return ref.registry

    def top(self, ref: Reference) -> Manifest:
        return self.client_for(ref.registry).get_manifest(ref.repository, ref.ident)

    def manifest(self, ref: Reference, digest: str) -> Manifest:
        return self.client_for(ref.registry).get_manifest(ref.repository, digest)

    def read_blob(self, ref: Reference, digest: str) -> bytes:
        return self.client_for(ref.registry).read_blob(ref.repository, digest)

    def blob_opener(self, ref: Reference, digest: str, size: int) -> Callable[[int], Iterable]:
        client = self.client_for(ref.registry)
        return lambda offset: client.open_blob(ref.repository, digest, size)

    def tag_exists(self, ref: Reference, tag: str) -> bool:
        return self.client_for(ref.registry).head_manifest(ref.repository, tag) is not None


class RegistryTarget:
    """Writes images to the registries named in the destination references."""

    accepts_signatures = True

    def __init__(self, client_for: ClientFor, projects_created_later: bool = False) -> None:
        """``projects_created_later``: a missing Harbor project counts as an empty one, because
        it is created before the first write (create_projects)."""
        self.client_for = client_for
        self.projects_created_later = projects_created_later

    def registry_of(self, ref: Reference) -> Optional[str]:
        return ref.registry

    def current(self, ref: Reference, want_document: bool) -> Optional[Manifest]:
        """What the destination tag holds now; the document only when it is needed."""
        client = self.client_for(ref.registry)
        ident = ref.tag or ref.ident
        try:
            if want_document:
                return _manifest_or_none(client, ref.repository, ident)
            descriptor = _head(client, ref.repository, ident)
        except ProjectNotFound:
            if self.projects_created_later:
                return None
            raise
        if descriptor is None:
            return None
        return Manifest(b"", descriptor.media_type, descriptor.digest)

    def holds(self, plan) -> bool:
        """The tag already points at exactly what would be pushed."""
        return plan.current is not None and plan.current.digest == plan.final.digest

    def has_tag(self, ref: Reference, tag: str, digest: str) -> bool:
        descriptor = self.client_for(ref.registry).head_manifest(ref.repository, tag)
        return descriptor is not None and descriptor.digest == digest

    def blob_present(self, ref: Reference, digest: str) -> bool:
        return self.client_for(ref.registry).blob_size(ref.repository, digest) is not None

    def mount_blob(self, ref: Reference, digest: str, from_repository: str) -> bool:
        return self.client_for(ref.registry).mount_blob(ref.repository, digest, from_repository)

    def put_blob(self, ref: Reference, digest: str, size: int,
                 opener: Callable[[int], Iterable]) -> None:
        self.client_for(ref.registry).upload_blob(ref.repository, digest, size, opener)

    def put_child(self, ref: Reference, manifest: Manifest, tags: List[str]) -> None:
        client = self.client_for(ref.registry)
        client.put_manifest(ref.repository, manifest.digest, manifest.raw, manifest.media_type)
        for tag in tags:
            client.put_manifest(ref.repository, tag, manifest.raw, manifest.media_type)

    def finish(self, plan, children) -> None:
        """Point the tag at the final manifest or index: the only write users see."""
        dest = plan.task.destination
        self.client_for(dest.registry).put_manifest(
            dest.repository, dest.tag or plan.final.digest, plan.final.raw, plan.final.media_type)


def _manifest_or_none(client: RegistryClient, repository: str, ident: str) -> Optional[Manifest]:
    try:
        return client.get_manifest(repository, ident)
    except ManifestUnknown:
        return None


def _head(client: RegistryClient, repository: str, ident: str) -> Optional[Descriptor]:
    try:
        return client.head_manifest(repository, ident)
    except AuthenticationRequired:
        # A HEAD answer has no body; the GET's error says why (Harbor: project not found).
        client.get_manifest(repository, ident)
        raise
