# Copyright: (c) 2026, airgap.hangar contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One save run: registry images into a new, rebuilt or appended archive.

Without append the archive must end up holding exactly the requested images. The new archive
is built in a temporary file: images already in the old archive are copied from it (no
download), the others come from their registries, and the old archive is replaced only at
commit. When nothing would change, the temporary file is dropped and the archive is untouched.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List

from ansible_collections.airgap.hangar.plugins.module_utils.archive import (
    ArchiveError,
    ArchiveReader,
    ArchiveWriter,
    ensure_free_space,
)
from ansible_collections.airgap.hangar.plugins.module_utils.archive_index import ImageEntry
from ansible_collections.airgap.hangar.plugins.module_utils.archive_io import (
    ArchiveTarget,
    entry_for,
)
from ansible_collections.airgap.hangar.plugins.module_utils.copy_engine import (
    ACTION_COPIED,
    ACTION_FAILED,
    ACTION_PRESENT,
    ACTION_WOULD_COPY,
    CopyEngine,
    CopyOptions,
    CopyTask,
    ImageResult,
    Prepared,
)

# Room for index.json, layouts and zip records on top of the blobs themselves.
SPACE_MARGIN = 16 << 20


class _NoArchive:
    images: List[ImageEntry] = []


def entry_label(entry: ImageEntry) -> str:
    """``reference@digest`` of an archive entry, as the diff lists it."""
    digest = entry.source_index.digest if entry.source_index else \
        (entry.specs[0].digest if entry.specs else "")
    return f"{entry.reference}@{digest}"


class SaveJob:
    """Saves images into ``dest``; ``changed``, ``before``, ``after`` describe the outcome."""

    def __init__(self, dest: str, *, append: bool, check_mode: bool) -> None:
        self.dest = dest
        self.append = append
        self.check_mode = check_mode
        self.warnings: List[str] = []
        self.removed: List[str] = []
        self.before: List[str] = []
        self.after: List[str] = []
        self.changed = False
        self._final_images: List[ImageEntry] = []

    def run(self, source: Any, options: CopyOptions, tasks: List[CopyTask]) -> List[ImageResult]:
        previous = self._open_previous()
        try:
            self.before = sorted(entry_label(e) for e in previous.images)
            if self.check_mode:
                return self._predict(source, options, tasks, previous)
            return self._save(source, options, tasks, previous)
        finally:
            if isinstance(previous, ArchiveReader):
                previous.close()

    def _open_previous(self) -> Any:
        if not os.path.exists(self.dest):
            if self.append:
                self.warnings.append(f"{self.dest} does not exist; a new archive is created")
            return _NoArchive()
        try:
            return ArchiveReader(self.dest)
        except ArchiveError as error:
            if self.append:
                raise
            self.warnings.append(f"{self.dest} is not a usable archive and is replaced: {error}")
            return _NoArchive()

    def _predict(self, source: Any, options: CopyOptions, tasks: List[CopyTask],
                 previous: Any) -> List[ImageResult]:
        target = ArchiveTarget(None, previous)
        results = CopyEngine(source, target, options).run(tasks)
        self._account(results, previous, [])
        return results

    def _save(self, source: Any, options: CopyOptions, tasks: List[CopyTask],
              previous: Any) -> List[ImageResult]:
        appending = self.append and not isinstance(previous, _NoArchive)
        writer = ArchiveWriter(self.dest, append=appending)
        try:
            existing = writer if self.append else previous
            target = ArchiveTarget(writer, existing)
            engine = CopyEngine(source, target, options)
            results = engine.run(tasks, before_transfer=lambda items: self._check_space(
                items, writer, previous))
            kept = self._keep_previous(results, previous, writer)
            self._account(results, previous, target.entries + kept)
            self._final_images = list(writer.images)
            if self._worth_writing(results, previous):
                writer.commit()
                self.changed = True
            else:
                writer.abort()
            return results
        except BaseException:
            writer.abort()
            raise

    def _worth_writing(self, results: List[ImageResult], previous: Any) -> bool:
        """Whether to put the new archive in place.

        A new archive is written even when empty (an empty list asks for one), but not when
        every image failed: an empty archive would then look like a finished save.
        """
        if self.changed:
            return True
        if not isinstance(previous, _NoArchive):
            return False
        return not (results and all(r.action == ACTION_FAILED for r in results))

    def _keep_previous(self, results: List[ImageResult], previous: Any,
                       writer: ArchiveWriter) -> List[ImageEntry]:
        """Copy requested images the old archive has into a rebuilt archive.

        An image that failed this time keeps its old copy, so a failure loses nothing.
        """
        if self.append:
            return []
        kept = []
        for result in results:
            if result.action not in (ACTION_PRESENT, ACTION_FAILED):
                continue
            entry = entry_for(previous.images, result.task.destination)
            if entry is None:
                continue
            if result.action == ACTION_FAILED:
                self.warnings.append(f"{entry.reference} failed and keeps its earlier copy")
            writer.copy_image_from(previous, entry)
            kept.append(entry)
        return kept

    def _account(self, results: List[ImageResult], previous: Any,
                 written: List[ImageEntry]) -> None:
        requested = {str(result.task.destination) for result in results}
        if not self.append:
            self.removed = sorted(entry.reference for entry in previous.images
                                  if entry.reference not in requested)
        added = any(result.action in (ACTION_COPIED, ACTION_WOULD_COPY) for result in results)
        self.changed = added or bool(self.removed)
        if self.check_mode:
            self.after = self._predicted_after(results, previous)
        else:
            labels = {entry_label(entry) for entry in written}
            if self.append:
                labels |= {entry_label(e) for e in previous.images
                           if not any(e.reference == w.reference for w in written)}
            self.after = sorted(labels)

    def _predicted_after(self, results: List[ImageResult], previous: Any) -> List[str]:
        labels = []
        for result in results:
            if result.action in (ACTION_PRESENT, ACTION_WOULD_COPY):
                labels.append(f"{result.task.destination}@{result.digest}")
        if self.append:
            requested = {str(result.task.destination) for result in results}
            labels += [entry_label(e) for e in previous.images if e.reference not in requested]
        return sorted(labels)

    def _check_space(self, items: List[Prepared], writer: ArchiveWriter, previous: Any) -> None:
        """Fail before the first write when the archive's file system is too small."""
        sizes: Dict[str, int] = {}
        for item in items:
            for blob in item.blobs():
                if not writer.has_blob(blob.digest):
                    sizes[blob.digest] = blob.size
        needed = sum(sizes.values()) + SPACE_MARGIN
        if not self.append and not isinstance(previous, _NoArchive):
            needed += os.path.getsize(self.dest)
        ensure_free_space(os.path.dirname(os.path.abspath(self.dest)), needed)

    def describe(self) -> Dict[str, Any]:
        size = os.path.getsize(self.dest) if os.path.exists(self.dest) else 0
        return dict(path=self.dest, size=size, images=list(self.after))
