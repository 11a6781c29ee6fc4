# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy engine: one image at a time from a source to a target, many images in parallel.

mirror (registry to registry), save (registry to archive) and load (archive to registry) all run
here; only the source and target objects differ. For each image the engine first plans: it
resolves the source, picks the platforms, computes the exact bytes that will end up at the
destination tag and compares them with what is there. Only when they differ does any blob move.
Blobs of all images share one worker pool; each digest is moved once per run and mounted where
another repository of the same registry already received it.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Set

from ansible_collections.airgap.hangar.plugins.module_utils import media_types as mt
from ansible_collections.airgap.hangar.plugins.module_utils.errors import HangarError
from ansible_collections.airgap.hangar.plugins.module_utils.platform import (
    Platform,
    PlatformFilter,
    build_index,
    helper_tag,
    is_attestation,
    is_signature_tag,
    keeps_everything,
    select_manifests,
    signature_tags,
)
from ansible_collections.airgap.hangar.plugins.module_utils.reference import Reference
from ansible_collections.airgap.hangar.plugins.module_utils.registry import (
    Descriptor,
    Manifest,
    compute_digest,
)

NO_PLATFORM_MESSAGE = "no available image for specified arch and os"
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"

# Configs of these types mark artifacts (Helm charts, files): copied whole, never filtered.
ARTIFACT_CONFIG_TYPES = (mt.OCI_EMPTY, "application/vnd.cncf.helm.config.v1+json")

ACTION_COPIED = "copied"
ACTION_PRESENT = "present"
ACTION_SKIPPED = "skipped"
ACTION_FAILED = "failed"
ACTION_WOULD_COPY = "would_copy"


class CopyError(HangarError):
    """One image cannot be copied; the others go on."""


class ImageTimeout(CopyError):
    """An image took longer than image_timeout."""


Opener = Callable[[int], Iterable[bytes]]


class ImageSource(Protocol):
    """Where images come from: a registry, or an archive."""

    def top(self, ref: Reference) -> Manifest: ...

    def manifest(self, ref: Reference, digest: str) -> Manifest: ...

    def read_blob(self, ref: Reference, digest: str) -> bytes: ...

    def blob_opener(self, ref: Reference, digest: str, size: int) -> Opener: ...

    def registry_of(self, ref: Reference) -> Optional[str]: ...

    def tag_exists(self, ref: Reference, tag: str) -> bool: ...


class ImageTarget(Protocol):
    """Where images go: a registry, or an archive."""

    accepts_signatures: bool

    def registry_of(self, ref: Reference) -> Optional[str]: ...

    def current(self, ref: Reference, want_document: bool) -> Optional[Manifest]: ...

    def holds(self, plan: "ImagePlan") -> bool: ...

    def has_tag(self, ref: Reference, tag: str, digest: str) -> bool: ...

    def blob_present(self, ref: Reference, digest: str) -> bool: ...

    def mount_blob(self, ref: Reference, digest: str, from_repository: str) -> bool: ...

    def put_blob(self, ref: Reference, digest: str, size: int, opener: Opener) -> None: ...

    def put_child(self, ref: Reference, manifest: Manifest, tags: List[str]) -> None: ...

    def finish(self, plan: "ImagePlan", children: List["Child"]) -> None: ...


@dataclass(frozen=True)
class CopyOptions:
    platforms: PlatformFilter
    provenance: bool = True
    overwrite: bool = False
    platform_tags: bool = False
    remove_signatures: bool = False
    # A SignaturePolicy (signature_policy.py): check(source, ref, digest) raises to refuse.
    policy: Optional[Any] = None
    check_mode: bool = False
    image_timeout: float = 600.0
    jobs: int = 4


@dataclass(frozen=True)
class CopyTask:
    line: str
    source: Reference
    destination: Reference


@dataclass
class Child:
    """A platform manifest (or attestation) of the image, with where its blobs are."""

    descriptor: Dict[str, Any]
    manifest: Manifest
    config: Optional[Dict[str, Any]] = None

    @property
    def blobs(self) -> List[Descriptor]:
        return manifest_blobs(self.manifest)


@dataclass
class ImagePlan:
    task: CopyTask
    top: Manifest
    final: Manifest
    selected: List[Dict[str, Any]]
    platforms: List[str]
    current: Optional[Manifest]
    single_platform: Optional[Platform] = None
    skipped: bool = False


@dataclass
class Prepared:
    """An image between planning and transfer."""

    result: "ImageResult"
    started: float
    plan: Optional[ImagePlan] = None
    children: List[Child] = field(default_factory=list)
    pending: bool = False

    def fail(self, error: Exception) -> None:
        self.result.action, self.result.error = ACTION_FAILED, str(error)
        self.pending = False

    def blobs(self) -> List[Descriptor]:
        """Every blob this image needs, each digest once."""
        unique: Dict[str, Descriptor] = {}
        for child in self.children:
            for blob in child.blobs:
                unique.setdefault(blob.digest, blob)
        return list(unique.values())


@dataclass
class ImageResult:
    task: CopyTask
    action: str = ACTION_FAILED
    digest: str = ""
    before: Optional[str] = None
    platforms: List[str] = field(default_factory=list)
    bytes: int = 0
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_present: int = 0
    seconds: float = 0.0
    error: str = ""
    warning: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, kind: str, size: int = 0) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + 1)
            if kind == "blobs_copied":
                self.bytes += size

    @property
    def changed(self) -> bool:
        return self.action in (ACTION_COPIED, ACTION_WOULD_COPY)

    def as_dict(self) -> Dict[str, Any]:
        return dict(
            source=str(self.task.source), destination=str(self.task.destination),
            line=self.task.line, digest=self.digest, platforms=self.platforms,
            action=self.action, bytes=self.bytes, blobs_copied=self.blobs_copied,
            blobs_mounted=self.blobs_mounted, blobs_present=self.blobs_present,
            seconds=round(self.seconds, 3), error=self.error or None,
        )


def manifest_blobs(manifest: Manifest) -> List[Descriptor]:
    """Config and layers of an image manifest; foreign layers are left to their URLs."""
    document = manifest.document
    blobs = []
    config = document.get("config")
    if isinstance(config, dict) and config.get("digest"):
        blobs.append(_descriptor(config))
    for layer in document.get("layers") or []:
        if layer.get("mediaType") in mt.FOREIGN_LAYER_TYPES or layer.get("urls"):
            continue
        blobs.append(_descriptor(layer))
    return blobs


def _descriptor(desc: Dict[str, Any]) -> Descriptor:
    size = desc.get("size")
    if not isinstance(size, int) or size < 0:
        raise CopyError(f"descriptor {desc.get('digest')} has no valid size")
    return Descriptor(str(desc.get("mediaType", "")), str(desc["digest"]), size)


def is_cosign_signature(manifest: Manifest) -> bool:
    if manifest.is_index:
        return False
    layers = manifest.document.get("layers") or []
    return any(layer.get("mediaType") == COSIGN_LAYER for layer in layers)


class BlobLedger:
    """Which digests this run already put in which repositories of each target registry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digest_locks: Dict[str, threading.Lock] = {}
        self._repositories: Dict[tuple, Set[str]] = {}

    def digest_lock(self, digest: str) -> threading.Lock:
        with self._lock:
            return self._digest_locks.setdefault(digest, threading.Lock())

    def repositories(self, registry: Optional[str], digest: str) -> Set[str]:
        with self._lock:
            return set(self._repositories.get((registry, digest), ()))

    def record(self, registry: Optional[str], digest: str, repository: str) -> None:
        with self._lock:
            self._repositories.setdefault((registry, digest), set()).add(repository)


class CopyEngine:
    """Copies images from ``source`` to ``target`` according to ``options``."""

    def __init__(self, source: ImageSource, target: ImageTarget, options: CopyOptions,
                 blob_workers: int = 0) -> None:
        self.source = source
        self.target = target
        self.options = options
        self.ledger = BlobLedger()
        self.blob_workers = blob_workers or min(max(4, options.jobs), 16)
        self._blob_pool: Optional[ThreadPoolExecutor] = None

    def run(self, tasks: List[CopyTask],
            before_transfer: Optional[Callable[[List["Prepared"]], None]] = None,
            ) -> List[ImageResult]:
        """Copy every task; a failure of one image never stops the others.

        All images are prepared first (read-only), so ``before_transfer`` sees every image that
        will be written, with its blobs, before the first write; it may raise to stop the run.
        """
        if not tasks:
            return []
        workers = max(1, min(self.options.jobs, len(tasks)))
        with ThreadPoolExecutor(self.blob_workers, "hangar-blob") as blobs, \
                ThreadPoolExecutor(workers, "hangar-image") as images:
            self._blob_pool = blobs
            prepared = list(images.map(self.prepare, tasks))
            if before_transfer is not None:
                before_transfer([item for item in prepared if item.pending])
            return list(images.map(self.transfer, prepared))

    def prepare(self, task: CopyTask) -> "Prepared":
        """Plan one image and, when it must be copied, fetch its platform manifests."""
        item = Prepared(ImageResult(task), time.monotonic())
        try:
            self._prepare(item)
        except HangarError as error:
            item.fail(error)
        return item

    def _prepare(self, item: "Prepared") -> None:
        result = item.result
        plan = item.plan = self.plan(result.task)
        result.platforms = plan.platforms
        if plan.skipped:
            result.action = ACTION_SKIPPED
            result.warning = f"skipped {result.task.source}: {NO_PLATFORM_MESSAGE}"
            return
        result.before = plan.current.digest if plan.current else None
        result.digest = plan.final.digest
        if self.target.holds(plan) and self._helper_tags_present(plan):
            result.action = ACTION_PRESENT
        elif self.options.check_mode:
            result.action = ACTION_WOULD_COPY
        else:
            item.children = self.children(plan)
            item.pending = True

    def transfer(self, item: "Prepared") -> ImageResult:
        """Copy the blobs and manifests of a prepared image; the tag is written last."""
        result = item.result
        if item.pending:
            try:
                self._transfer(item, item.started + self.options.image_timeout)
            except HangarError as error:
                item.fail(error)
        result.seconds = time.monotonic() - item.started
        return result

    def _transfer(self, item: "Prepared", deadline: float) -> None:
        plan, result = item.plan, item.result
        if plan is None:
            raise CopyError(f"{result.task.source}: transfer without a plan")
        self._run_blob_jobs(plan.task, item.blobs(), result, deadline)
        self._push(plan, item.children, deadline)
        result.action = ACTION_COPIED
        if self.target.accepts_signatures and not self.options.remove_signatures:
            self._copy_signatures(plan, result, deadline)

    # -- planning -------------------------------------------------------------------------------

    def plan(self, task: CopyTask) -> ImagePlan:
        """What the destination tag must hold, and what it holds now (read-only)."""
        top = self.source.top(task.source)
        if is_cosign_signature(top) or is_signature_tag(task.source.tag or ""):
            raise CopyError(
                f"{task.source} is a sigstore signature, not an image; copy the signed image "
                "instead (its signatures are copied with it unless remove_signatures is true)")
        if self.options.policy is not None:
            self.options.policy.check(self.source, task.source, top.digest)
        if top.is_index:
            return self._plan_index(task, top)
        return self._plan_single(task, top)

    def _plan_single(self, task: CopyTask, top: Manifest) -> ImagePlan:
        if top.media_type in mt.SCHEMA1_TYPES:
            raise CopyError(
                f"{task.source} is a Docker schema 1 image, which this collection does not "
                "convert yet; convert it once with skopeo copy --format v2s2")
        current = self.target.current(task.destination, want_document=False)
        if current is not None and current.digest == top.digest:
            # Already there byte for byte: the config (one more request per image on every
            # re-run) would only name the platform.
            return ImagePlan(task, top, top, [], [], current)
        config = self._config(task.source, top)
        platform = _config_platform(config)
        if platform is not None and not self.options.platforms.matches(platform):
            return ImagePlan(task, top, top, [], [str(platform)], None, platform, skipped=True)
        platforms = [str(platform)] if platform else []
        return ImagePlan(task, top, top, [], platforms, current, platform)

    def _config(self, ref: Reference, manifest: Manifest) -> Optional[Dict[str, Any]]:
        config = manifest.document.get("config") or {}
        if config.get("mediaType") in ARTIFACT_CONFIG_TYPES or not config.get("digest"):
            return None
        return _json_object(self.source.read_blob(ref, config["digest"]), ref, config["digest"])

    def _plan_index(self, task: CopyTask, top: Manifest) -> ImagePlan:
        index = top.document
        # A reference pinned by digest is copied whole: a filtered index would have another
        # digest, and the pin would no longer name what was copied.
        pinned = task.source.digest is not None and task.source.tag is None
        selected = list(index.get("manifests") or []) if pinned else select_manifests(
            index, self.options.platforms, provenance=self.options.provenance)
        platforms = [str(Platform.from_descriptor(d)) for d in selected
                     if not is_attestation(d) and Platform.from_descriptor(d) is not None]
        if not platforms:
            return ImagePlan(task, top, top, [], [], None, skipped=True)
        keep_all = keeps_everything(index, selected)
        current = self.target.current(task.destination, want_document=not keep_all)
        if keep_all and not self._merges_into(current, top):
            return ImagePlan(task, top, top, selected, platforms, current)
        if current is not None and current.is_index and not current.raw:
            current = self.target.current(task.destination, want_document=True)
        existing = current.document if self._merges_into(current, top) else None
        raw = build_index(selected, existing=existing, overwrite=self.options.overwrite)
        final = Manifest(raw, mt.OCI_INDEX, compute_digest(raw))
        return ImagePlan(task, top, final, selected, platforms, current)

    def _merges_into(self, current: Optional[Manifest], top: Manifest) -> bool:
        """True when the tag holds another index whose other platforms must be kept."""
        return (current is not None and current.is_index and current.digest != top.digest
                and not self.options.overwrite)

    def _helper_tags_present(self, plan: ImagePlan) -> bool:
        if not self.options.platform_tags:
            return True
        return all(self.target.has_tag(plan.task.destination, tag, desc["digest"])
                   for desc, tag in self._helper_tags(plan))

    def _helper_tags(self, plan: ImagePlan) -> List[tuple]:
        tag = plan.task.destination.tag or "latest"
        return [(desc, helper_tag(tag, desc)) for desc in plan.selected]

    # -- transfer -------------------------------------------------------------------------------

    def children(self, plan: ImagePlan) -> List[Child]:
        """The platform manifests to copy, fetched and verified against their digests."""
        if not plan.top.is_index:
            return [Child({"digest": plan.top.digest}, plan.top)]
        children = []
        for desc in plan.selected:
            manifest = self.source.manifest(plan.task.source, desc["digest"])
            if manifest.is_index or manifest.media_type in mt.SCHEMA1_TYPES:
                raise CopyError(
                    f"{plan.task.source}: platform entry {desc['digest']} is a "
                    f"{manifest.media_type}, which cannot be copied as a platform manifest")
            children.append(Child(desc, manifest))
        return children

    def _run_blob_jobs(self, task: CopyTask, blobs: List[Descriptor], result: ImageResult,
                       deadline: float) -> None:
        if self._blob_pool is None:
            raise CopyError("blob transfers run only inside CopyEngine.run")
        futures = [self._blob_pool.submit(self.copy_blob, task, blob, result) for blob in blobs]
        done, pending = wait(futures, timeout=_remaining(deadline, task),
                             return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()
        if pending:
            for future in pending:
                future.cancel()
            raise ImageTimeout(
                f"{task.source}: not copied within image_timeout "
                f"({self.options.image_timeout:g} s); raise image_timeout for large images")

    def copy_blob(self, task: CopyTask, blob: Descriptor, result: ImageResult) -> None:
        """Make ``blob`` present in the destination repository by the cheapest way."""
        dest = task.destination
        registry = self.target.registry_of(dest)
        with self.ledger.digest_lock(blob.digest):
            known = self.ledger.repositories(registry, blob.digest)
            if dest.repository in known or self.target.blob_present(dest, blob.digest):
                result.count("blobs_present")
            elif self._mount(task, blob, known):
                result.count("blobs_mounted")
            else:
                opener = self.source.blob_opener(task.source, blob.digest, blob.size)
                self.target.put_blob(dest, blob.digest, blob.size, opener)
                result.count("blobs_copied", blob.size)
            self.ledger.record(registry, blob.digest, dest.repository)

    def _mount(self, task: CopyTask, blob: Descriptor, known: Set[str]) -> bool:
        candidates = sorted(known)
        same_registry = self.source.registry_of(task.source) == \
            self.target.registry_of(task.destination)
        if same_registry and task.source.repository != task.destination.repository:
            candidates.append(task.source.repository)
        for repository in candidates:
            if self.target.mount_blob(task.destination, blob.digest, repository):
                return True
        return False

    def _push(self, plan: ImagePlan, children: List[Child], deadline: float) -> None:
        """Child manifests by digest (and helper tags), then the tag: the last write."""
        tags = dict((desc["digest"], tag) for desc, tag in self._helper_tags(plan)) \
            if self.options.platform_tags else {}
        if plan.top.is_index:
            for child in children:
                _remaining(deadline, plan.task)
                helper = tags.get(child.manifest.digest)
                self.target.put_child(plan.task.destination, child.manifest,
                                      [helper] if helper else [])
        self.target.finish(plan, children)

    def _copy_signatures(self, plan: ImagePlan, result: ImageResult, deadline: float) -> None:
        """Copy cosign signature and attestation tags of the source digest, when there are any."""
        for tag in signature_tags(plan.top.digest)[:2]:
            if not self.source.tag_exists(plan.task.source, tag):
                continue
            source = plan.task.source.replace(tag=tag, digest=None)
            manifest = self.source.top(source)
            child = Child({"digest": manifest.digest}, manifest)
            destination = plan.task.destination.replace(tag=tag, digest=None)
            task = CopyTask(plan.task.line, source, destination)
            self._run_blob_jobs(task, child.blobs, result, deadline)
            self.target.put_child(task.destination, manifest, [tag])


def _remaining(deadline: float, task: CopyTask) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ImageTimeout(f"{task.source}: not copied within image_timeout; raise image_timeout "
                           "for large images or slow links")
    return left


def _json_object(raw: bytes, ref: Reference, digest: str) -> Dict[str, Any]:
    import json  # pylint: disable=import-outside-toplevel

    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise CopyError(f"config {digest} of {ref} is not valid JSON") from exc
    if not isinstance(document, dict):
        raise CopyError(f"config {digest} of {ref} is not a JSON object")
    return document


def _config_platform(config: Optional[Dict[str, Any]]) -> Optional[Platform]:
    """The platform of a single image; None for artifacts, which are never filtered."""
    if not config or not config.get("architecture"):
        return None
    return Platform.from_config(config)


def summarize(results: List[ImageResult], seconds: float) -> Dict[str, Any]:
    """Totals over all images, as the copy modules return them in ``summary``."""
    counts = {action: 0 for action in (ACTION_COPIED, ACTION_PRESENT, ACTION_SKIPPED,
                                       ACTION_FAILED, ACTION_WOULD_COPY)}
    for result in results:
        counts[result.action] += 1
    total_bytes = sum(result.bytes for result in results)
    rate = total_bytes / (1 << 20) / seconds if seconds > 0 else 0.0
    return dict(total=len(results), bytes=total_bytes, seconds=round(seconds, 3),
                mib_per_second=round(rate, 2), **counts)
